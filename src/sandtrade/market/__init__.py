"""Market data: bars from CSV files and from a seeded generator, resampling, and a sample file.

``load_csv``/``iter_csv`` read the files that backtesting.py, Yahoo Finance and pandas write;
``gbm_bars`` makes reproducible synthetic bars; ``resample`` turns fine bars into coarse ones;
``sample_csv_path()`` is the shipped demo history (weekday bars of the made-up symbol DEMO),
``SAMPLES`` all the shipped histories (``sandtrade data list``).
"""

from __future__ import annotations

from pathlib import Path

from sandtrade.market.csvdata import DataWarning, iter_csv, load_csv, write_csv
from sandtrade.market.intervals import describe_interval, parse_interval
from sandtrade.market.resample import resample
from sandtrade.market.samples import SAMPLES, Sample, resolve_data_path, sample_path
from sandtrade.market.synthetic import gbm_bars, iter_gbm_bars

__all__ = [
    "SAMPLES",
    "DataWarning",
    "Sample",
    "describe_interval",
    "gbm_bars",
    "iter_csv",
    "iter_gbm_bars",
    "load_csv",
    "parse_interval",
    "resample",
    "resolve_data_path",
    "sample_csv_path",
    "sample_path",
    "write_csv",
]


def sample_csv_path() -> Path:
    """The path of the shipped sample history ``DEMO.csv``: 2,500 synthetic weekday bars.

    The file is the output of :func:`sandtrade.market.synthetic.demo_bars`; the other samples
    are in :data:`SAMPLES`.
    """
    return sample_path("DEMO")
