"""``python -m sandtrade.cli``: the same as the ``sandtrade`` console script."""

import sys

from sandtrade.cli.main import main

sys.exit(main())
