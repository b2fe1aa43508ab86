"""Synthetic GBM bars: the same bars for a seed, always sane, annualised as documented."""

from __future__ import annotations

import math
import statistics
from datetime import datetime, timedelta
from itertools import pairwise

import pytest

from sandtrade.market import gbm_bars, iter_gbm_bars
from sandtrade.models import Bar


def test_the_same_seed_gives_the_same_bars() -> None:
    assert gbm_bars(2_000, seed=7) == gbm_bars(2_000, seed=7)


def test_different_seeds_give_different_bars() -> None:
    a, b = gbm_bars(100, seed=1), gbm_bars(100, seed=2)
    assert [x.close for x in a] != [x.close for x in b]
    assert all(x.close != y.close for x, y in zip(a[1:], b[1:], strict=True))


def test_seed_42_gives_the_documented_series() -> None:
    # Pinned values: a change here changes every series users have generated.
    bars = gbm_bars(1_000)
    assert bars[0].time == datetime(2000, 1, 1)
    assert bars[0].open == 100.0
    assert bars[0].volume == 9935.0
    assert bars[0].close == pytest.approx(100.07872259372188, rel=1e-12)
    assert bars[0].high == pytest.approx(100.15844388816056, rel=1e-12)
    assert bars[0].low == pytest.approx(99.79910356043136, rel=1e-12)
    assert bars[999].time == datetime(2000, 2, 11, 15)
    assert bars[999].close == pytest.approx(88.34037815626412, rel=1e-12)
    assert bars[999].volume == 2428.0


def test_iter_gbm_bars_yields_what_gbm_bars_returns() -> None:
    assert list(iter_gbm_bars(500, seed=3, interval="1d")) == gbm_bars(500, seed=3,
                                                                       interval="1d")


def test_100k_bars_are_all_sane_and_gapless() -> None:
    bars = gbm_bars(100_000, seed=11)
    assert len(bars) == 100_000
    for bar in bars:
        assert Bar.checked(*bar) == bar  # positive, finite, high/low contain open/close
        assert bar.high >= max(bar.open, bar.close) and bar.low <= min(bar.open, bar.close)
        assert 1_000 <= bar.volume < 10_000 and bar.volume.is_integer()
    assert all(b.open == a.close for a, b in pairwise(bars))
    assert all(b.time - a.time == timedelta(hours=1)
               for a, b in pairwise(bars))
    assert any(b.high > max(b.open, b.close) for b in bars)  # wicks exist


def test_volatility_is_annualised_over_a_365_day_year() -> None:
    bars = gbm_bars(100_000, seed=5, sigma=0.30)
    log_returns = [math.log(b.close / b.open) for b in bars]
    annualised = statistics.stdev(log_returns) * math.sqrt(365 * 24)
    assert annualised == pytest.approx(0.30, rel=0.02)


def test_explicit_periods_per_year_changes_the_scale() -> None:
    bars = gbm_bars(50_000, seed=5, sigma=0.30, interval="1d", periods_per_year=252)
    log_returns = [math.log(b.close / b.open) for b in bars]
    assert statistics.stdev(log_returns) * math.sqrt(252) == pytest.approx(0.30, rel=0.02)


def test_skip_weekends_leaves_out_saturdays_and_sundays() -> None:
    bars = gbm_bars(300, interval="1d", start=datetime(2024, 1, 6), skip_weekends=True)
    assert bars[0].time == datetime(2024, 1, 8)  # a Saturday start moves to the Monday
    assert {b.time.weekday() for b in bars} == {0, 1, 2, 3, 4}
    assert bars[4].time == datetime(2024, 1, 12) and bars[5].time == datetime(2024, 1, 15)


def test_skip_weekends_annualises_over_weekdays() -> None:
    bars = gbm_bars(50_000, seed=9, sigma=0.25, interval="1d", skip_weekends=True)
    log_returns = [math.log(b.close / b.open) for b in bars]
    per_year = 365 * 5 / 7
    assert statistics.stdev(log_returns) * math.sqrt(per_year) == pytest.approx(0.25, rel=0.02)


def test_skip_weekends_works_for_intraday_bars() -> None:
    bars = gbm_bars(24 * 10, interval="1h", start=datetime(2024, 1, 5), skip_weekends=True)
    assert all(b.time.weekday() < 5 for b in bars)
    assert bars[24].time == datetime(2024, 1, 8)


def test_symbol_volume_range_and_s0_are_used() -> None:
    bars = gbm_bars(1_000, symbol="XYZ", s0=25.0, volume_range=(5, 6))
    assert bars[0].open == 25.0
    assert {b.symbol for b in bars} == {"XYZ"}
    assert {b.volume for b in bars} == {5.0}


def test_zero_bars_is_an_empty_series() -> None:
    assert gbm_bars(0) == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"n": -1}, "n must be a whole number of bars"),
    ({"n": 1.5}, "n must be a whole number of bars"),
    ({"n": 1, "s0": 0.0}, "s0 must be a positive price"),
    ({"n": 1, "sigma": -0.1}, "sigma finite and >= 0"),
    ({"n": 1, "periods_per_year": 0}, "periods_per_year must be positive"),
    ({"n": 1, "volume_range": (10, 10)}, "volume_range must be"),
    ({"n": 1, "interval": "0h"}, "an interval must be positive"),
    ({"n": 1, "interval": "1w", "start": datetime(2024, 1, 6), "skip_weekends": True},
     "needs a weekday start"),
])
def test_bad_arguments_are_refused_up_front(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        iter_gbm_bars(**kwargs)  # type: ignore[arg-type]
