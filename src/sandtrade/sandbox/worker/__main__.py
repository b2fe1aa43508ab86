"""``python -I -m sandtrade.sandbox.worker``: run one worker, then leave without cleanup."""

import os
import sys

from sandtrade.sandbox.worker.boot import main

code = main()
sys.stderr.flush()
os._exit(code)
