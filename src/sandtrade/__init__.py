"""sandtrade: run strategy code you don't fully trust against a paper-trading broker.

The public face is small: the domain types in :mod:`sandtrade.models`, the back-test entry
point :func:`sandtrade.backtest.run_backtest`, and the ``sandtrade`` command line.
"""

from sandtrade.errors import SandtradeError

__version__ = "0.1.0"

__all__ = ["SandtradeError", "__version__"]
