"""Market data: bars from CSV files and from a seeded generator, resampling, and a sample file.

``load_csv``/``iter_csv`` read the files that backtesting.py, Yahoo Finance and pandas write;
``gbm_bars`` makes reproducible synthetic bars; ``resample`` turns fine bars into coarse ones;
``sample_csv_path()`` is the shipped demo history (weekday bars of the made-up symbol DEMO).
"""

from __future__ import annotations

import atexit
from contextlib import ExitStack
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path

from sandtrade.market.csvdata import DataWarning, iter_csv, load_csv, write_csv
from sandtrade.market.intervals import describe_interval, parse_interval
from sandtrade.market.resample import resample
from sandtrade.market.synthetic import gbm_bars, iter_gbm_bars

__all__ = [
    "DataWarning",
    "describe_interval",
    "gbm_bars",
    "iter_csv",
    "iter_gbm_bars",
    "load_csv",
    "parse_interval",
    "resample",
    "sample_csv_path",
    "write_csv",
]


@cache
def sample_csv_path() -> Path:
    """The path of the shipped sample history ``DEMO.csv``: 2,500 synthetic weekday bars.

    The file is the output of :func:`sandtrade.market.synthetic.demo_bars`. When the package
    is installed as a zip, it is extracted to a temporary file that lives until the process
    exits.
    """
    resource = files(__name__).joinpath("sample_data", "DEMO.csv")
    if isinstance(resource, Path):
        return resource
    stack = ExitStack()  # pragma: no cover - zipped installs only
    atexit.register(stack.close)  # pragma: no cover
    return stack.enter_context(as_file(resource))  # pragma: no cover
