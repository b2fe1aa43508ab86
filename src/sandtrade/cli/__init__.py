"""``sandtrade …``: the command line (the top wing: it may import every other wing).

One module per group of commands: :mod:`.main` (the parser, ``backtest``, ``check``,
``doctor``, ``data``), :mod:`.host` (``serve``, ``tokens`` and the commands that talk to a
running host), :mod:`.signals`, :mod:`.strategies`, :mod:`.demo`. Helpers shared by several
commands are public names of :mod:`.common`, :mod:`.tables` and :mod:`.terminal`; no command
module imports another command module.
"""

from sandtrade.cli.main import main

__all__ = ["main"]
