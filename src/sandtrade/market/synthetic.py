"""Synthetic OHLCV bars: a seeded geometric Brownian motion, the same on every run and machine.

Each bar draws, in this order, from one ``random.Random(seed)``: a standard normal for the
log return, two standard normals for the upper and lower wicks, and an integer volume. That
order is part of the contract: changing it changes every series generated from a seed.

- ``close = previous close * exp((mu - sigma**2 / 2) * dt + sigma * sqrt(dt) * z)``, with
  ``dt = 1 / periods_per_year``; the first bar opens at ``s0``, every later one at the previous
  close, so the series has no gaps;
- ``high = max(open, close) * exp(|z_up| * sigma * sqrt(dt) / 2)`` and
  ``low = min(open, close) * exp(-|z_down| * sigma * sqrt(dt) / 2)``: the wicks always contain
  open and close and the low stays positive;
- ``volume`` is uniform over ``volume_range`` (low inclusive, high exclusive).

The Mersenne Twister behind :class:`random.Random` is specified bit for bit, so the draws are
the same everywhere; the prices go through ``math.exp``, which platforms' C libraries may round
differently in the last bit in rare cases.

This series is *not* the numpy-generated one of the research notes (same parameters, other
random numbers), so its back-test results differ from the figures quoted there.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Final

from sandtrade.market.intervals import parse_interval
from sandtrade.models import Bar

__all__ = ["demo_bars", "gbm_bars", "iter_gbm_bars"]

_YEAR: Final = timedelta(days=365)
_WEEK: Final = timedelta(weeks=1)


def iter_gbm_bars(
    n: int,
    *,
    symbol: str = "SYN",
    seed: int = 42,
    start: datetime = datetime(2000, 1, 1),
    interval: timedelta | str = timedelta(hours=1),
    s0: float = 100.0,
    mu: float = 0.05,
    sigma: float = 0.30,
    periods_per_year: float | None = None,
    skip_weekends: bool = False,
    volume_range: tuple[int, int] = (1_000, 10_000),
) -> Iterator[Bar]:
    """Yield ``n`` bars of a seeded geometric Brownian motion, one every ``interval``.

    ``mu`` and ``sigma`` are annual drift and volatility. ``periods_per_year`` defaults to the
    number of intervals in a 365-day year (8,760 for hourly bars, 365 for daily), times 5/7
    with ``skip_weekends`` (about 261 daily bars a year). ``skip_weekends`` leaves out bars
    that would start on a Saturday or Sunday, for equity-like data; a ``start`` on a weekend
    moves to the Monday. The same arguments give the same bars; see the module docstring.
    """
    step = parse_interval(interval)
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a whole number of bars >= 0, got {n!r}")
    if not (math.isfinite(s0) and s0 > 0):
        raise ValueError(f"s0 must be a positive price, got {s0!r}")
    if not (math.isfinite(sigma) and sigma >= 0) or not math.isfinite(mu):
        raise ValueError(f"mu must be finite and sigma finite and >= 0, got {mu!r}, {sigma!r}")
    low_vol, high_vol = volume_range
    if not 0 <= low_vol < high_vol:
        raise ValueError(f"volume_range must be (low, high) with 0 <= low < high, "
                         f"got {volume_range!r}")
    if periods_per_year is None:
        periods_per_year = _YEAR / step * (5 / 7 if skip_weekends else 1)
    if not (math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year!r}")
    if skip_weekends and step % _WEEK == timedelta(0) and start.weekday() >= 5:
        raise ValueError(f"skip_weekends with a whole-week interval needs a weekday start, "
                         f"got {start:%A %Y-%m-%d}")
    return _generate(n, symbol, seed, start, step, s0, mu, sigma, periods_per_year,
                     skip_weekends, low_vol, high_vol)


def _generate(n: int, symbol: str, seed: int, start: datetime, step: timedelta, s0: float,
              mu: float, sigma: float, periods_per_year: float, skip_weekends: bool,
              low_vol: int, high_vol: int) -> Iterator[Bar]:
    rng = random.Random(seed)
    normal, randrange, exp = rng.normalvariate, rng.randrange, math.exp
    dt = 1.0 / periods_per_year
    drift = (mu - 0.5 * sigma * sigma) * dt
    vol = sigma * math.sqrt(dt)
    wick = 0.5 * vol
    new = tuple.__new__
    t = start
    price = s0
    for _ in range(n):
        while skip_weekends and t.weekday() >= 5:
            t += step
        o = price
        c = o * exp(drift + vol * normal(0.0, 1.0))
        up = exp(abs(normal(0.0, 1.0)) * wick)
        down = exp(-abs(normal(0.0, 1.0)) * wick)
        v = float(randrange(low_vol, high_vol))
        if c >= o:
            h, lo = c * up, o * down
        else:
            h, lo = o * up, c * down
        yield new(Bar, (symbol, t, o, h, lo, c, v))
        price = c
        t += step


def gbm_bars(
    n: int,
    *,
    symbol: str = "SYN",
    seed: int = 42,
    start: datetime = datetime(2000, 1, 1),
    interval: timedelta | str = timedelta(hours=1),
    s0: float = 100.0,
    mu: float = 0.05,
    sigma: float = 0.30,
    periods_per_year: float | None = None,
    skip_weekends: bool = False,
    volume_range: tuple[int, int] = (1_000, 10_000),
) -> list[Bar]:
    """The bars of :func:`iter_gbm_bars` as a list; same arguments, same bars."""
    return list(iter_gbm_bars(
        n, symbol=symbol, seed=seed, start=start, interval=interval, s0=s0, mu=mu, sigma=sigma,
        periods_per_year=periods_per_year, skip_weekends=skip_weekends,
        volume_range=volume_range,
    ))


def demo_bars() -> list[Bar]:
    """The bars of the shipped sample file ``sample_data/DEMO.csv``: its recipe, kept runnable.

    About ten years of weekday bars of an equity-like path (8 % drift, 25 % volatility) with
    prices rounded to cents. Rounding each price on its own keeps every bar sane, since rounding
    never reorders values. A test checks that the file still matches; regenerate it with
    ``write_csv(demo_bars(), "src/sandtrade/market/sample_data/DEMO.csv")``.
    """
    bars = iter_gbm_bars(
        2_500, symbol="DEMO", seed=14, start=datetime(2015, 1, 2), interval=timedelta(days=1),
        s0=50.0, mu=0.08, sigma=0.25, skip_weekends=True, volume_range=(200_000, 2_000_000),
    )
    return [b._replace(open=round(b.open, 2), high=round(b.high, 2), low=round(b.low, 2),
                       close=round(b.close, 2)) for b in bars]



def reference_gbm_frame(n: int, seed: int = 42) -> Any:
    """The hourly GBM series of the research notes (numpy generator, seed 42) as a pandas
    DataFrame with backtesting.py's columns: the data the published backtesting.py figures
    (11,074 trades / $768.61 at commission 0 on 200,000 bars) were measured on.

    For comparisons with backtesting.py only: needs numpy and pandas (the ``test`` extra).
    """
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    dt = 1.0 / (24 * 365)
    rets = (0.05 - 0.5 * 0.3**2) * dt + 0.3 * np.sqrt(dt) * rng.standard_normal(n)
    close = 100.0 * np.exp(np.cumsum(rets))
    open_ = np.empty(n)
    open_[0] = 100.0
    open_[1:] = close[:-1]
    wick = np.abs(rng.standard_normal((2, n))) * 0.3 * np.sqrt(dt) * 0.5
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    vol = rng.integers(1_000, 10_000, n).astype(float)
    idx = pd.date_range("2000-01-01", periods=n, freq="h")
    return pd.DataFrame({"Open": open_, "High": high, "Low": low, "Close": close,
                         "Volume": vol}, index=idx)
