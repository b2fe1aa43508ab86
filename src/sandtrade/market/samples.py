"""The sample histories shipped inside the package, so the README's commands run as written.

Every sample is synthetic (seeded GBM, see :mod:`sandtrade.market.synthetic`): no licence
question, and each file is the output of a recipe kept here, which a test checks. The names are
made up or generic on purpose (``DEMO``, ``ACME``), except ``BTCUSD``, whose name says what
kind of instrument it imitates: a crypto pair, traded in fractions, around the clock.

``sandtrade data list`` shows them; ``sandtrade data path NAME`` prints a file's path; and
wherever a command takes a CSV file (``sandtrade backtest --data``, ``sandtrade serve
--data``), a sample's name works when no file of that name exists.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from importlib.resources import as_file, files
from pathlib import Path

from sandtrade.errors import DataError
from sandtrade.market.synthetic import demo_bars, iter_gbm_bars
from sandtrade.models import Bar

__all__ = ["SAMPLES", "Sample", "resolve_data_path", "sample_path"]


def _cents(bars: list[Bar]) -> list[Bar]:
    return [b._replace(open=round(b.open, 2), high=round(b.high, 2), low=round(b.low, 2),
                       close=round(b.close, 2)) for b in bars]


def acme_bars() -> list[Bar]:
    """``ACME.csv``: a second, calmer equity on DEMO's calendar, for portfolio back-tests."""
    return _cents(list(iter_gbm_bars(
        2_500, symbol="ACME", seed=7, start=datetime(2015, 1, 2), interval=timedelta(days=1),
        s0=120.0, mu=0.06, sigma=0.18, skip_weekends=True, volume_range=(100_000, 900_000))))


def btcusd_bars() -> list[Bar]:
    """``BTCUSD.csv``: 90 days of hourly bars of a volatile crypto-like pair near 60,000."""
    return _cents(list(iter_gbm_bars(
        24 * 90, symbol="BTCUSD", seed=2024, start=datetime(2024, 1, 1),
        interval=timedelta(hours=1), s0=60_000.0, mu=0.3, sigma=0.6, volume_range=(5, 400))))


@dataclass(frozen=True)
class Sample:
    """One shipped history: its name (also its symbol), what it is, and its recipe."""

    name: str
    description: str
    recipe: Callable[[], list[Bar]]

    @property
    def path(self) -> Path:
        """The file's path on disk."""
        return sample_path(self.name)


#: The shipped samples, by name.
SAMPLES: dict[str, Sample] = {s.name: s for s in (
    Sample("DEMO", "a made-up equity, weekdays", demo_bars),
    Sample("ACME", "a second made-up equity, calmer, DEMO's days", acme_bars),
    Sample("BTCUSD", "a crypto pair, around the clock, fractional", btcusd_bars),
)}


@cache
def sample_path(name: str) -> Path:
    """The path of the shipped sample ``NAME.csv`` (any case, ``.csv`` optional).

    When the package is installed as a zip, the file is extracted to a temporary file that
    lives until the process exits. An unknown name raises :class:`DataError` listing the
    samples.
    """
    key = name.upper().removesuffix(".CSV")
    if key not in SAMPLES:
        raise DataError(f"{name!r} is not a bundled sample (there are: {', '.join(SAMPLES)}; "
                        "`sandtrade data list` shows them)")
    resource = files("sandtrade.market").joinpath("sample_data", f"{key}.csv")
    if isinstance(resource, Path):
        return resource
    stack = ExitStack()  # pragma: no cover - zipped installs only
    atexit.register(stack.close)  # pragma: no cover
    return stack.enter_context(as_file(resource))  # pragma: no cover


def resolve_data_path(text: str) -> str:
    """``text`` itself when it names a file (or anything but a sample); else the sample's path.

    A file always wins over a sample of the same name, so a user's own ``DEMO.csv`` is read.
    A path that exists nowhere and names no sample is returned unchanged: the reader then
    reports it (see :func:`missing_file_hint` for the words).
    """
    if Path(text).exists():
        return text
    key = Path(text).name.upper().removesuffix(".CSV")
    if key in SAMPLES and Path(text).parent == Path("."):
        return str(sample_path(key))
    return text


def missing_file_hint() -> str:
    """What to say after 'no such file': the samples that ship, and how to list them."""
    return (f"bundled samples you can name instead: {', '.join(SAMPLES)} "
            "(`sandtrade data list`)")
