"""Indicators (``ctx.ta``) agree with reference computations written here, independently.

The references are pandas' rolling windows where pandas has the indicator, and the textbook
definitions in plain Python where it does not (Pine's SMA-seeded EMA, Wilder's RSI and ATR).
Indicators are fed bar by bar through a real :class:`Context`, as the engine feeds them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import numpy as np
import pandas as pd
import pytest

from sandtrade.market import gbm_bars
from sandtrade.models import Bar
from sandtrade.strategy import Context, Series, crossover, crossunder
from sandtrade.strategy.context import advance

nan = math.nan


class _NoBroker:
    """Indicators never trade; any call to the broker port is a bug in the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the indicator tests called the broker ({name})")


def new_context() -> Context:
    return Context(_NoBroker(), {})  # type: ignore[arg-type]


def values(bars: Sequence[Bar], request: Callable[[Context], Series]) -> list[float]:
    """``request(ctx)[0]`` on every bar, the indicator asked for on every bar as Pine wants."""
    ctx = new_context()
    out = []
    for i, bar in enumerate(bars):
        advance(ctx, bar, i)
        out.append(request(ctx)[0])
    return out


def assert_same(ours: Sequence[float], reference: Sequence[float], rtol: float = 1e-10) -> None:
    """Equal to ``rtol``, with nan exactly where the reference has nan."""
    np.testing.assert_allclose(np.array(ours, dtype=float), np.array(reference, dtype=float),
                               rtol=rtol, atol=0, equal_nan=True)


@pytest.fixture(scope="module")
def bars() -> list[Bar]:
    return gbm_bars(300, seed=11, interval="1d")


@pytest.fixture(scope="module")
def frame(bars: list[Bar]) -> pd.DataFrame:
    return pd.DataFrame([b._asdict() for b in bars])


# ---------------------------------------------------------------- references


def ema_reference(xs: Sequence[float], n: int) -> list[float]:
    """Pine's ta.ema: nan for n-1 bars, then the SMA of the first n values, then alpha 2/(n+1)."""
    alpha = 2 / (n + 1)
    out = [nan] * len(xs)
    prev = sum(xs[:n]) / n
    out[n - 1] = prev
    for i in range(n, len(xs)):
        prev = alpha * xs[i] + (1 - alpha) * prev
        out[i] = prev
    return out


def wilder(xs: Sequence[float], n: int) -> list[float]:
    """Wilder's smoothing: the mean of the first n values, then (prev·(n-1) + x) / n."""
    out = [nan] * len(xs)
    prev = sum(xs[:n]) / n
    out[n - 1] = prev
    for i in range(n, len(xs)):
        prev = (prev * (n - 1) + xs[i]) / n
        out[i] = prev
    return out


def rsi_reference(closes: Sequence[float], n: int) -> list[float]:
    changes = [b - a for a, b in pairwise(closes)]
    avg_gain = wilder([max(c, 0.0) for c in changes], n)
    avg_loss = wilder([max(-c, 0.0) for c in changes], n)
    out = [nan]
    for g, lo in zip(avg_gain, avg_loss, strict=True):
        out.append(nan if math.isnan(g) else 100.0 if lo == 0 else 100 - 100 / (1 + g / lo))
    return out


def atr_reference(bars: Sequence[Bar], n: int) -> list[float]:
    tr = [bars[0].high - bars[0].low]
    for prev, bar in pairwise(bars):
        tr.append(max(bar.high - bar.low, abs(bar.high - prev.close), abs(bar.low - prev.close)))
    return wilder(tr, n)


# ---------------------------------------------------------------- indicators


@pytest.mark.parametrize("n", [1, 5, 20])
@pytest.mark.parametrize("source", ["close", "open", "volume"])
def test_sma_matches_pandas_rolling_mean(bars: list[Bar], frame: pd.DataFrame, n: int,
                                         source: str) -> None:
    assert_same(values(bars, lambda ctx: ctx.ta.sma(n, source)),
                frame[source].rolling(n).mean())


@pytest.mark.parametrize("n", [1, 9, 26])
def test_ema_is_seeded_with_the_sma_of_the_first_length_values(bars: list[Bar], n: int) -> None:
    closes = [b.close for b in bars]
    assert_same(values(bars, lambda ctx: ctx.ta.ema(n)), ema_reference(closes, n))


def test_rma_is_wilders_average(bars: list[Bar]) -> None:
    assert_same(values(bars, lambda ctx: ctx.ta.rma(14, "high")),
                wilder([b.high for b in bars], 14))


@pytest.mark.parametrize("n", [2, 14])
def test_rsi_matches_a_hand_written_wilder_rsi(bars: list[Bar], n: int) -> None:
    closes = [b.close for b in bars]
    ours = values(bars, lambda ctx: ctx.ta.rsi(n))
    assert_same(ours, rsi_reference(closes, n), rtol=1e-9)
    assert all(0 <= v <= 100 for v in ours[n:])


def test_rsi_is_100_when_prices_only_rise_and_0_when_they_only_fall(make_bars: Any) -> None:
    up = values(make_bars([float(x) for x in range(10, 30)]), lambda ctx: ctx.ta.rsi(5))
    down = values(make_bars([float(x) for x in range(30, 10, -1)]), lambda ctx: ctx.ta.rsi(5))
    assert up[5:] == [100.0] * 15
    assert down[5:] == [0.0] * 15
    assert all(math.isnan(v) for v in up[:5] + down[:5])


@pytest.mark.parametrize("n", [1, 14])
def test_atr_is_wilders_average_of_the_true_range(bars: list[Bar], n: int) -> None:
    assert_same(values(bars, lambda ctx: ctx.ta.atr(n)), atr_reference(bars, n))


def test_atr_counts_gaps_from_the_previous_close(make_bars: Any) -> None:
    # The second bar gaps up from 10 to a 20..21 range: its true range is 21 - 10, not 1.
    gap = make_bars([10.0, 21.0], opens=[10.0, 20.0])
    assert values(gap, lambda ctx: ctx.ta.atr(1)) == [0.0, 11.0]


@pytest.mark.parametrize("n", [2, 20])
def test_stdev_is_the_population_standard_deviation(bars: list[Bar], frame: pd.DataFrame,
                                                    n: int) -> None:
    assert_same(values(bars, lambda ctx: ctx.ta.stdev(n)), frame.close.rolling(n).std(ddof=0),
                rtol=1e-8)


def test_bollinger_bands_are_the_sma_plus_and_minus_mult_stdevs(bars: list[Bar],
                                                                frame: pd.DataFrame) -> None:
    ctx = new_context()
    got: list[tuple[float, float, float]] = []
    for i, bar in enumerate(bars):
        advance(ctx, bar, i)
        bands = ctx.ta.bb(20, 2.5)
        got.append((bands.middle[0], bands.upper[0], bands.lower[0]))
    mid = frame.close.rolling(20).mean()
    dev = frame.close.rolling(20).std(ddof=0)
    assert_same([g[0] for g in got], mid)
    assert_same([g[1] for g in got], mid + 2.5 * dev, rtol=1e-9)
    assert_same([g[2] for g in got], mid - 2.5 * dev, rtol=1e-9)


@pytest.mark.parametrize("n", [1, 3, 20])
def test_highest_and_lowest_include_the_current_bar(bars: list[Bar], frame: pd.DataFrame,
                                                    n: int) -> None:
    assert_same(values(bars, lambda ctx: ctx.ta.highest(n)), frame.high.rolling(n).max())
    assert_same(values(bars, lambda ctx: ctx.ta.lowest(n)), frame.low.rolling(n).min())
    assert_same(values(bars, lambda ctx: ctx.ta.highest(n, "close")),
                frame.close.rolling(n).max())


def test_an_indicator_on_another_symbol_sees_only_that_symbols_bars(make_bars: Any) -> None:
    a = make_bars([1.0, 2.0, 3.0, 4.0], symbol="A")
    b = make_bars([10.0, 20.0, 30.0, 40.0], symbol="B")
    ctx = new_context()
    seen = []
    for i, (bar_a, bar_b) in enumerate(zip(a, b, strict=True)):
        advance(ctx, bar_a, i)
        advance(ctx, bar_b, i)
        seen.append(ctx.ta.sma(2, symbol="B")[0])
    assert seen[1:] == [15.0, 25.0, 35.0]


# ---------------------------------------------------------------- Series


@pytest.fixture
def sma3(make_bars: Any) -> Series:
    """sma(3) after the closes 1..6: values nan, nan, 2, 3, 4, 5."""
    ctx = new_context()
    for i, bar in enumerate(make_bars([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])):
        advance(ctx, bar, i)
    return ctx.ta.sma(3)


def test_series_index_0_is_now_and_k_is_k_bars_ago(sma3: Series) -> None:
    assert (sma3[0], sma3[1], sma3[2], sma3[3]) == (5.0, 4.0, 3.0, 2.0)


def test_series_is_nan_during_warm_up_and_before_the_first_bar(sma3: Series) -> None:
    assert math.isnan(sma3[4])
    assert math.isnan(sma3[5])
    assert math.isnan(sma3[6])  # before the first bar


def test_a_series_with_no_value_yet_is_not_ready(make_bars: Any) -> None:
    ctx = new_context()
    advance(ctx, make_bars([1.0])[0], 0)
    s = ctx.ta.sma(2)
    assert not s.ready
    assert math.isnan(s.value)
    assert not s > 0 and not s < 0 and not s >= 0 and not s <= 0  # nan compares False


@pytest.mark.parametrize("k", [-1, 1.0, "1", None])
def test_series_index_must_be_a_whole_number_of_bars_ago(sma3: Series, k: object) -> None:
    with pytest.raises(IndexError, match=r"whole number of bars ago"):
        sma3[k]  # type: ignore[index]


def test_series_compares_and_computes_as_its_current_value(sma3: Series) -> None:
    assert sma3.ready and sma3.value == 5.0 and float(sma3) == 5.0
    assert sma3 > 4 and sma3 >= 5 and sma3 < 6.5 and sma3 <= 5
    assert (sma3 + 1, 1 + sma3, sma3 - 1, 10 - sma3) == (6.0, 6.0, 4.0, 5.0)
    assert (sma3 * 2, 2 * sma3, sma3 / 2, 10 / sma3) == (10.0, 10.0, 2.5, 2.0)
    assert sma3 - sma3 == 0.0
    with pytest.raises(TypeError, match="expected a number or a series, got str"):
        sma3 + "1"  # type: ignore[operator]


def test_the_same_arguments_give_the_same_series(make_bars: Any) -> None:
    ctx = new_context()
    advance(ctx, make_bars([1.0])[0], 0)
    assert ctx.ta.sma(20) is ctx.ta.sma(20)
    assert ctx.ta.sma(20) is not ctx.ta.sma(20, "open")
    assert ctx.ta.bb(20) is ctx.ta.bb(20, 2.0)


@pytest.mark.parametrize("length", [0, -3, 10_001, 2.5, True, "20"])
def test_length_must_be_a_whole_number_from_1_to_10000(length: object) -> None:
    with pytest.raises(ValueError, match="length must be a whole number from 1 to 10000"):
        new_context().ta.sma(length)  # type: ignore[arg-type]


def test_source_must_be_a_bar_field() -> None:
    with pytest.raises(ValueError, match="source must be one of open, high, low, close, volume"):
        new_context().ta.ema(10, "Close")


# ---------------------------------------------------------------- crossover / crossunder


def crossings(make_bars: Any, closes: list[float], level: float,
              cross: Callable[..., bool] = crossover) -> list[bool]:
    ctx = new_context()
    out = []
    for i, bar in enumerate(make_bars(closes)):
        advance(ctx, bar, i)
        out.append(cross(ctx.ta.sma(1), level))
    return out


def test_crossover_is_true_on_the_bar_that_goes_from_below_to_above(make_bars: Any) -> None:
    assert crossings(make_bars, [1, 3, 1, 3], 2.0) == [False, True, False, True]


def test_crossover_does_not_count_touching_the_level_from_below(make_bars: Any) -> None:
    # 1 -> 2 -> 3: the bar at 2 is not above 2, and the next starts from 2, not below it.
    assert crossings(make_bars, [1, 2, 3], 2.0) == [False, False, False]


def test_crossunder_is_crossover_the_other_way(make_bars: Any) -> None:
    assert crossings(make_bars, [3, 1, 3, 1], 2.0, crossunder) == [False, True, False, True]
    assert crossings(make_bars, [3, 2, 1], 2.0, crossunder) == [False, False, False]


def test_crossover_of_two_series_needs_strict_order_on_both_bars(make_bars: Any) -> None:
    ctx = new_context()
    bars = make_bars([2.0, 3.0, 3.0, 2.0, 4.0], opens=[3.0, 2.0, 3.0, 3.0, 3.0])
    up, down = [], []
    for i, bar in enumerate(bars):
        advance(ctx, bar, i)
        close, open_ = ctx.ta.sma(1), ctx.ta.sma(1, "open")
        up.append(crossover(close, open_))
        down.append(crossunder(close, open_))
    # close vs open: below, above, equal, below, above
    assert up == [False, True, False, False, True]
    assert down == [False, False, False, False, False]  # above -> equal -> below is no cross


def test_crossover_is_false_until_the_series_has_two_values(make_bars: Any) -> None:
    ctx = new_context()
    got = []
    for i, bar in enumerate(make_bars([1.0, 1.0, 5.0, 5.0])):
        advance(ctx, bar, i)
        got.append(crossover(ctx.ta.sma(2), 0.5))  # sma(2) is above 0.5 from its first value
    assert got == [False, False, False, False]


def test_two_numbers_never_cross() -> None:
    assert not crossover(3.0, 2) and not crossover(1, 2.0)
    assert not crossunder(1, 2.0) and not crossunder(3.0, 2)


def test_ctx_ta_crossover_is_the_module_function() -> None:
    ta = new_context().ta
    assert ta.crossover is crossover and ta.crossunder is crossunder


# ---------------------------------------------------------------- late requests


LATE = {
    "sma": lambda ctx: ctx.ta.sma(20),
    "ema": lambda ctx: ctx.ta.ema(20),
    "rma": lambda ctx: ctx.ta.rma(10, "low"),
    "rsi": lambda ctx: ctx.ta.rsi(14),
    "atr": lambda ctx: ctx.ta.atr(14),
    "stdev": lambda ctx: ctx.ta.stdev(10),
    "highest": lambda ctx: ctx.ta.highest(30),
    "lowest": lambda ctx: ctx.ta.lowest(30),
    "bb.upper": lambda ctx: ctx.ta.bb(20).upper,
}


@pytest.mark.parametrize("name", list(LATE))
def test_an_indicator_first_asked_for_late_is_warmed_up_from_the_held_bars(
        bars: list[Bar], name: str) -> None:
    request = LATE[name]
    early, late = new_context(), new_context()
    for i, bar in enumerate(bars):
        advance(early, bar, i)
        advance(late, bar, i)
        a = request(early)
        if i >= 200:  # all 300 bars are still held (the context keeps 512)
            b = request(late)
            assert (a[0], a[1], a[5]) == (b[0], b[1], b[5])
    assert b.first_valid_bar == a.first_valid_bar
    assert late.warmup_bars() == early.warmup_bars()


def test_a_window_indicator_asked_for_after_old_bars_were_dropped_still_agrees() -> None:
    bars = gbm_bars(1_000, seed=3, interval="1d")
    early, late = new_context(), new_context()
    for i, bar in enumerate(bars):
        advance(early, bar, i)
        advance(late, bar, i)
        a = early.ta.sma(50)
        if i >= 900:
            assert late.ta.sma(50)[0] == pytest.approx(a[0], rel=1e-12)
