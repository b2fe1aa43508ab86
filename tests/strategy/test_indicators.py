"""Every Pine ``ta.*`` indicator against TA-Lib, or against Pine's published definition where
TA-Lib has none or differs from Pine (each case says how and why).

Each runs on two series: GOOG's daily bars (backtesting.py's sample, 2,148 bars) and a random
walk of hourly bars (so that a day holds many bars, for VWAP's sessions). The value-fed cores
are fed one value at a time, as a strategy feeds them; the bar-fed ``ctx.ta`` methods are then
checked to give the cores' values bar for bar, since they share them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import backtesting
import numpy as np
import pandas as pd
import pytest
import talib

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.runner import run_backtest
from sandtrade.errors import StrategyError
from sandtrade.market import gbm_bars, load_csv
from sandtrade.models import Bar
from sandtrade.sandbox.runner import SandboxRunner
from sandtrade.strategy import Context
from sandtrade.strategy import indicators as ind
from sandtrade.strategy.context import advance
from sandtrade.strategy.loader import load_strategy_source

nan = math.nan
Arrays = dict[str, np.ndarray]


def arrays(bars: Sequence[Bar]) -> Arrays:
    out = {k: np.array([getattr(b, k) for b in bars], dtype=float)
           for k in ("open", "high", "low", "close", "volume")}
    out["hlc3"] = (out["high"] + out["low"] + out["close"]) / 3
    return out


@pytest.fixture(scope="module", params=["GOOG", "random"])
def bars(request: pytest.FixtureRequest) -> list[Bar]:
    if request.param == "GOOG":
        return load_csv(Path(backtesting.__file__).parent / "test" / "GOOG.csv", "GOOG")
    return gbm_bars(2000, seed=7, interval="1h", sigma=0.6)


@pytest.fixture(scope="module")
def a(bars: list[Bar]) -> Arrays:
    return arrays(bars)


def feed(core: Any, *columns: np.ndarray) -> np.ndarray:
    """``core.update`` on every bar's values; a 2-d array for a core returning a tuple."""
    return np.array([core.update(*row) for row in zip(*columns, strict=True)], dtype=float)


def same(ours: np.ndarray, reference: np.ndarray, rtol: float = 1e-9) -> None:
    """Equal to ``rtol`` (relative to the value, or to 1 near zero), nan exactly where the
    reference has nan."""
    np.testing.assert_allclose(ours, reference, rtol=rtol, atol=rtol, equal_nan=True)


def settled(ours: np.ndarray, reference: np.ndarray, after: int, rtol: float = 1e-7) -> None:
    """Equal from bar ``after`` on: where only the seed differs, its weight decays as
    (1 - alpha)^k, below 1e-7 within a few hundred bars for these lengths."""
    same(ours[after:], reference[after:], rtol)


# ---------------------------------------------------------------- as TA-Lib computes them


@pytest.mark.parametrize("n", [1, 14, 50])
def test_sma_matches_talib(a: Arrays, n: int) -> None:
    same(feed(ind.Sma(n), a["close"]), talib.SMA(a["close"], n))


@pytest.mark.parametrize("n", [1, 12, 26])
def test_ema_matches_talib_seeded_with_the_sma(a: Arrays, n: int) -> None:
    same(feed(ind.Ema(n), a["close"]), talib.EMA(a["close"], n))


@pytest.mark.parametrize("n", [2, 20])
def test_wma_matches_talib(a: Arrays, n: int) -> None:
    same(feed(ind.Wma(n), a["close"]), talib.WMA(a["close"], n))


def test_vwma_is_talibs_sma_of_price_times_volume_over_sma_of_volume(a: Arrays) -> None:
    c, v = a["close"], a["volume"]
    same(feed(ind.Vwma(20), c, v), talib.SMA(c * v, 20) / talib.SMA(v, 20))


@pytest.mark.parametrize("n", [2, 14])
def test_rsi_matches_talib(a: Arrays, n: int) -> None:
    """TA-Lib's RSI seeds its averages with the mean of the first n changes, as Pine's rma."""
    same(feed(ind.Rsi(n), a["close"]), talib.RSI(a["close"], n))


def test_rma_is_talibs_wilder_smoothing(a: Arrays) -> None:
    """TA-Lib has no RMA, but its ATR is exactly an RMA of its true range (nan on bar 0)."""
    tr = talib.TRANGE(a["high"], a["low"], a["close"])
    same(feed(ind.Rma(14), tr), talib.ATR(a["high"], a["low"], a["close"], 14))


def test_atr_differs_from_talib_only_by_pines_first_true_range(a: Arrays) -> None:
    """Pine's ``ta.atr`` is ``rma(ta.tr(true))``: bar 0's true range is ``high - low``, so
    the first ATR comes on bar n-1. TA-Lib starts the true range on bar 1 and the ATR on bar
    n. Same smoothing: the two agree once the seed has decayed."""
    h, lo, c = a["high"], a["low"], a["close"]
    tr = talib.TRANGE(h, lo, c)
    tr[0] = h[0] - lo[0]
    ours = feed(ind.Atr(14), h, lo, c)
    same(ours, feed(ind.Rma(14), tr))
    assert math.isnan(ours[12]) and ours[13] == pytest.approx(tr[:14].mean(), rel=1e-12)
    assert math.isnan(talib.ATR(h, lo, c, 14)[13])
    settled(ours, talib.ATR(h, lo, c, 14), 400)


def test_tr_matches_talib_and_handles_the_first_bar_as_asked(a: Arrays) -> None:
    h, lo, c = a["high"], a["low"], a["close"]
    same(feed(ind.Tr(), h, lo, c), talib.TRANGE(h, lo, c))
    with_na = feed(ind.Tr(handle_na=True), h, lo, c)
    assert with_na[0] == h[0] - lo[0]
    same(with_na[1:], talib.TRANGE(h, lo, c)[1:])


def test_macd_is_two_talib_emas_and_an_ema_of_their_difference(a: Arrays) -> None:
    """Pine's MACD is ``ema(fast) - ema(slow)`` and an EMA of that from its first value.
    TA-Lib's MACD starts its fast EMA late (at the slow one's first bar), so its first values
    differ; built from TA-Lib's EMA it is the same, and TA-Lib's own MACD agrees later."""
    c = a["close"]
    got = feed(ind.Macd(12, 26, 9), c)
    line = talib.EMA(c, 12) - talib.EMA(c, 26)
    signal = np.full_like(c, nan)
    signal[25:] = talib.EMA(line[25:], 9)
    same(got[:, 0], line)
    same(got[:, 1], signal)
    same(got[:, 2], line - signal)
    m, s, _hist = talib.MACD(c, 12, 26, 9)
    settled(got[:, 0], m, 300)
    settled(got[:, 1], s, 300)


def test_stoch_is_talibs_fast_k(a: Arrays) -> None:
    k, _ = talib.STOCHF(a["high"], a["low"], a["close"], 14, 1, talib.MA_Type.SMA)
    same(feed(ind.Stoch(14), a["close"], a["high"], a["low"]), k)


@pytest.mark.parametrize("n", [2, 20])
def test_stdev_is_talibs_population_stddev(a: Arrays, n: int) -> None:
    same(feed(ind.Stdev(n), a["close"]), talib.STDDEV(a["close"], n, 1), rtol=1e-7)


def test_bb_matches_talibs_bbands_on_an_sma(a: Arrays) -> None:
    upper, middle, lower = talib.BBANDS(a["close"], 20, 2.5, 2.5, talib.MA_Type.SMA)
    got = feed(ind.Bb(20, 2.5), a["close"])
    same(got[:, 0], middle)
    same(got[:, 1], upper, rtol=1e-7)
    same(got[:, 2], lower, rtol=1e-7)


@pytest.mark.parametrize("n", [2, 5, 30])
def test_highest_and_lowest_match_talibs_max_and_min(a: Arrays, n: int) -> None:
    same(feed(ind.Highest(n), a["high"]), talib.MAX(a["high"], n))
    same(feed(ind.Lowest(n), a["low"]), talib.MIN(a["low"], n))


@pytest.mark.parametrize("n", [1, 10])
def test_change_and_mom_match_talibs_mom(a: Arrays, n: int) -> None:
    same(feed(ind.Change(n), a["close"]), talib.MOM(a["close"], n))
    same(feed(ind.Mom(n), a["close"]), talib.MOM(a["close"], n))


def test_cci_on_the_typical_price_matches_talib(a: Arrays) -> None:
    same(feed(ind.Cci(20), a["hlc3"]), talib.CCI(a["high"], a["low"], a["close"], 20),
         rtol=1e-7)


def test_dmi_agrees_with_talib_once_the_seeds_have_decayed(a: Arrays) -> None:
    """Pine smooths the directional moves and the true range with ``rma`` (an SMA seed);
    TA-Lib with Wilder's running sums, seeded with n-1 values: the DIs and ADX differ at the
    start by the seed only, and agree once it has decayed."""
    h, lo, c = a["high"], a["low"], a["close"]
    got = feed(ind.Dmi(14, 14), h, lo, c)
    assert np.isnan(got[:14, 0]).all() and not np.isnan(got[14:, 0]).any()
    settled(got[:, 0], talib.PLUS_DI(h, lo, c, 14), 400)
    settled(got[:, 1], talib.MINUS_DI(h, lo, c, 14), 400)
    settled(got[:, 2], talib.ADX(h, lo, c, 14), 600)


def test_kc_is_an_ema_banded_by_talibs_ema_of_the_true_range(a: Arrays) -> None:
    """Keltner channels are not in TA-Lib; Pine defines them as ``ema(source)`` ±
    ``mult * ema(tr(true))`` (or of ``high - low``), which TA-Lib's EMA and TRANGE build."""
    h, lo, c = a["high"], a["low"], a["close"]
    tr = talib.TRANGE(h, lo, c)
    tr[0] = h[0] - lo[0]
    basis, span = talib.EMA(c, 20), talib.EMA(tr, 20)
    got = feed(ind.Kc(20, 1.5), c, h, lo, c)
    same(got[:, 0], basis)
    same(got[:, 1], basis + 1.5 * span)
    same(got[:, 2], basis - 1.5 * span)
    ranged = feed(ind.Kc(20, 2.0, False), c, h, lo, c)
    same(ranged[:, 1], basis + 2.0 * talib.EMA(h - lo, 20))


# ---------------------------------------------------------------- Pine's own definitions


def supertrend_reference(h: np.ndarray, lo: np.ndarray, c: np.ndarray, factor: float,
                         period: int) -> tuple[list[float], list[float]]:
    """The reference manual's ``pine_supertrend``, line by line (``ta.atr`` as above, ``nz``
    of the previous bands; the warm-up left out as nan)."""
    tr = talib.TRANGE(h, lo, c)
    tr[0] = h[0] - lo[0]
    atr = np.full_like(c, nan)
    atr[period - 1] = tr[:period].mean()
    for i in range(period, len(c)):
        atr[i] = (atr[i - 1] * (period - 1) + tr[i]) / period
    values, dirs = [], []
    upper_prev = lower_prev = st_prev = nan
    for i in range(len(c)):
        src = (h[i] + lo[i]) / 2
        upper, lower = src + factor * atr[i], src - factor * atr[i]
        pl = 0.0 if math.isnan(lower_prev) else lower_prev
        pu = 0.0 if math.isnan(upper_prev) else upper_prev
        close_prev = c[i - 1] if i else nan
        lower = lower if (lower > pl or close_prev < pl) else pl
        upper = upper if (upper < pu or close_prev > pu) else pu
        if i == 0 or math.isnan(atr[i - 1]):
            direction = 1
        elif st_prev == pu:
            direction = -1 if c[i] > upper else 1
        else:
            direction = 1 if c[i] < lower else -1
        st = lower if direction == -1 else upper
        upper_prev, lower_prev, st_prev = upper, lower, st
        ok = not math.isnan(atr[i])
        values.append(st if ok else nan)
        dirs.append(float(direction) if ok else nan)
    return values, dirs


def test_supertrend_follows_pines_published_definition(a: Arrays) -> None:
    """Not in TA-Lib: checked against the reference manual's ``pine_supertrend`` written
    out above with TA-Lib's true range."""
    h, lo, c = a["high"], a["low"], a["close"]
    got = feed(ind.Supertrend(3.0, 10), h, lo, c)
    values, dirs = supertrend_reference(h, lo, c, 3.0, 10)
    same(got[:, 0], np.array(values))
    same(got[:, 1], np.array(dirs))
    assert set(np.unique(got[10:, 1])) == {-1.0, 1.0}
    up = got[10:, 1] == -1
    assert (got[10:, 0][up] <= c[10:][up]).all()  # the line is under the price in an up trend


def test_supertrend_direction_is_minus_one_in_a_rising_market() -> None:
    st = ind.Supertrend(2.0, 3)
    out = [st.update(x + 1, x - 1, x) for x in np.arange(10.0, 40.0)]
    assert out[-1][1] == -1 and out[-1][0] < 39


def pivot_reference(x: np.ndarray, left: int, right: int, high: bool) -> np.ndarray:
    """A pivot on bar p, reported on bar p + right: no bar to its left beats it, and none to
    its right reaches it (TradingView's tie rule: of equal highs the later one is the pivot)."""
    s = x if high else -x
    out = np.full_like(x, nan)
    for i in range(left + right, len(x)):
        p = i - right
        if all(s[k] <= s[p] for k in range(p - left, p)) and \
                all(s[k] < s[p] for k in range(p + 1, i + 1)):
            out[i] = x[p]
    return out


@pytest.mark.parametrize("left, right", [(2, 2), (5, 3), (0, 1), (4, 0)])
def test_pivots_are_confirmed_right_bars_later(a: Arrays, left: int, right: int) -> None:
    """Not in TA-Lib: checked against the definition, written out above."""
    same(feed(ind.Pivothigh(left, right), a["high"]), pivot_reference(a["high"], left, right,
                                                                      True))
    same(feed(ind.Pivotlow(left, right), a["low"]), pivot_reference(a["low"], left, right,
                                                                    False))


def test_of_two_equal_highs_the_later_is_the_pivot() -> None:
    got = feed(ind.Pivothigh(1, 1), np.array([1.0, 2.0, 2.0, 1.0]))
    assert math.isnan(got[2]) and got[3] == 2.0
    low = feed(ind.Pivotlow(2, 1), np.array([3.0, 1.0, 1.0, 2.0]))
    assert math.isnan(low[2]) and low[3] == 1.0


def test_vwap_restarts_each_session(bars: list[Bar], a: Arrays) -> None:
    """Not in TA-Lib: the cumulative sums of price·volume and volume since the session's
    first bar (a calendar day here), from pandas."""
    days = pd.Series([b.time.date() for b in bars])
    new = (days != days.shift()).to_numpy()
    pv = pd.Series(a["hlc3"] * a["volume"]).groupby(days).cumsum()
    vol = pd.Series(a["volume"]).groupby(days).cumsum()
    same(feed(ind.Vwap(), a["hlc3"], a["volume"], new), (pv / vol).to_numpy())


def test_crossover_crossunder_and_cross_are_pines() -> None:
    """Pine's crossover counts ``a[1] == b[1]`` as below (``ctx.ta.crossover`` stays strict,
    as backtesting.py's)."""
    a = [1.0, 2.0, 3.0, 2.0, 1.0, 1.0, 2.0]
    b = [2.0] * 7
    over, under, both = ind.Crossover(), ind.Crossunder(), ind.Cross()
    got = [(over.update(x, y), under.update(x, y), both.update(x, y))
           for x, y in zip(a, b, strict=True)]
    assert [g[0] for g in got] == [False, False, True, False, False, False, False]
    assert [g[1] for g in got] == [False, False, False, False, True, False, False]
    assert [g[2] for g in got] == [False, False, True, False, True, False, False]


def test_crossover_on_random_series_matches_its_definition(a: Arrays) -> None:
    fast, slow = talib.SMA(a["close"], 5), talib.SMA(a["close"], 20)
    got = feed(ind.Crossover(), fast, slow)
    ref = np.zeros(len(fast))
    ref[1:] = (fast[1:] > slow[1:]) & (fast[:-1] <= slow[:-1])
    assert (got == ref).all() and ref.sum() > 5


def test_barssince_and_valuewhen_count_back_to_the_condition(a: Arrays) -> None:
    c = a["close"]
    cond = np.zeros(len(c), dtype=bool)
    cond[1:] = c[1:] > c[:-1] * 1.01
    since, when = np.full_like(c, nan), np.full_like(c, nan)
    hits: list[int] = []
    for i in range(len(c)):
        if cond[i]:
            hits.append(i)
        if hits:
            since[i] = i - hits[-1]
        if len(hits) > 1:
            when[i] = c[hits[-2]]
    assert len(hits) > 10
    same(feed(ind.Barssince(), cond), since)
    same(feed(ind.Valuewhen(1), cond, c), when)


# ---------------------------------------------------------------- na and warm-up


def test_a_nan_input_makes_the_window_nan_until_it_leaves() -> None:
    xs = np.array([1.0, 2.0, nan, 4.0, 5.0, 6.0, 7.0])
    same(feed(ind.Sma(2), xs), np.array([nan, 1.5, nan, nan, 4.5, 5.5, 6.5]))
    same(feed(ind.Wma(2), xs), np.array([nan, 5 / 3, nan, nan, 14 / 3, 17 / 3, 20 / 3]))
    same(feed(ind.Highest(2), xs), np.array([nan, 2.0, nan, nan, 5.0, 6.0, 7.0]))


def test_an_ema_after_a_nan_seeds_again_from_the_sma() -> None:
    """``na(prev) ? sma(src, n) : alpha * src + (1 - alpha) * prev``, as the manual's
    ``pine_rma``/``pine_ema``."""
    got = feed(ind.Ema(2), np.array([1.0, 3.0, nan, 5.0, 7.0, 9.0]))
    assert got[1] == 2.0 and math.isnan(got[2]) and math.isnan(got[3])
    assert got[4] == 6.0 and got[5] == pytest.approx(6.0 * (1 / 3) + 9.0 * (2 / 3))


def test_settings_are_checked_with_the_name_of_what_is_wrong() -> None:
    with pytest.raises(ValueError, match="length must be a whole number from 1 to 10000"):
        ind.Sma(0)
    with pytest.raises(ValueError, match="slow must be a whole number"):
        ind.Macd(12, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="factor must be a finite number"):
        ind.Supertrend(math.inf, 10)
    with pytest.raises(TypeError, match="an indicator takes numbers, got str"):
        ind.Sma(3).update("1")  # type: ignore[arg-type]


def test_the_registry_names_every_pine_function_of_the_subset() -> None:
    assert set(ind.INDICATORS) == {
        "sma", "ema", "rma", "wma", "vwma", "rsi", "macd", "stoch", "tr", "atr", "bb", "stdev",
        "highest", "lowest", "change", "mom", "crossover", "crossunder", "cross", "barssince",
        "valuewhen", "pivothigh", "pivotlow", "supertrend", "vwap", "cci", "kc", "dmi"}


# ---------------------------------------------------------------- ctx.ta shares the cores


class _NoBroker:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"the indicator tests called the broker ({name})")


def bar_fed(bars: Sequence[Bar], request: Callable[[Context], Any]) -> np.ndarray:
    """``request(ctx)`` on every bar (asked for on every bar, as Pine wants), each series'
    value now."""
    ctx = Context(_NoBroker(), {})  # type: ignore[arg-type]
    out = []
    for i, bar in enumerate(bars):
        advance(ctx, bar, i)
        got = request(ctx)
        out.append([s[0] for s in got] if isinstance(got, tuple) else got[0])
    return np.array(out, dtype=float)


BAR_FED: list[tuple[str, Callable[[Context], Any], Callable[[Arrays], np.ndarray]]] = [
    ("wma", lambda ctx: ctx.ta.wma(10), lambda a: feed(ind.Wma(10), a["close"])),
    ("vwma", lambda ctx: ctx.ta.vwma(10), lambda a: feed(ind.Vwma(10), a["close"],
                                                         a["volume"])),
    ("macd", lambda ctx: ctx.ta.macd(), lambda a: feed(ind.Macd(), a["close"])),
    ("stoch", lambda ctx: ctx.ta.stoch(14), lambda a: feed(ind.Stoch(14), a["close"],
                                                           a["high"], a["low"])),
    ("tr", lambda ctx: ctx.ta.tr(True), lambda a: feed(ind.Tr(True), a["high"], a["low"],
                                                       a["close"])),
    ("change", lambda ctx: ctx.ta.change(3), lambda a: feed(ind.Change(3), a["close"])),
    ("mom", lambda ctx: ctx.ta.mom(), lambda a: feed(ind.Mom(10), a["close"])),
    ("cci", lambda ctx: ctx.ta.cci(20), lambda a: feed(ind.Cci(20), a["hlc3"])),
    ("kc", lambda ctx: ctx.ta.kc(20, 1.5), lambda a: feed(ind.Kc(20, 1.5), a["close"],
                                                          a["high"], a["low"], a["close"])),
    ("dmi", lambda ctx: ctx.ta.dmi(), lambda a: feed(ind.Dmi(), a["high"], a["low"],
                                                     a["close"])),
    ("supertrend", lambda ctx: ctx.ta.supertrend(3, 10),
     lambda a: feed(ind.Supertrend(3, 10), a["high"], a["low"], a["close"])),
    ("pivothigh", lambda ctx: ctx.ta.pivothigh(3, 2),
     lambda a: feed(ind.Pivothigh(3, 2), a["high"])),
    ("pivotlow", lambda ctx: ctx.ta.pivotlow(3, 2), lambda a: feed(ind.Pivotlow(3, 2),
                                                                   a["low"])),
    ("sma hlc3", lambda ctx: ctx.ta.sma(10, "hlc3"), lambda a: feed(ind.Sma(10), a["hlc3"])),
    ("rsi hlc3", lambda ctx: ctx.ta.rsi(14, "hlc3"), lambda a: feed(ind.Rsi(14), a["hlc3"])),
    ("sma close", lambda ctx: ctx.ta.sma(10), lambda a: feed(ind.Sma(10), a["close"])),
    ("ema close", lambda ctx: ctx.ta.ema(10), lambda a: feed(ind.Ema(10), a["close"])),
    ("rsi close", lambda ctx: ctx.ta.rsi(14), lambda a: feed(ind.Rsi(14), a["close"])),
    ("atr", lambda ctx: ctx.ta.atr(14), lambda a: feed(ind.Atr(14), a["high"], a["low"],
                                                       a["close"])),
]


@pytest.mark.parametrize("name, request_, core", BAR_FED, ids=[b[0] for b in BAR_FED])
def test_the_bar_fed_method_gives_the_cores_values(bars: list[Bar], a: Arrays, name: str,
                                                   request_: Callable[[Context], Any],
                                                   core: Callable[[Arrays], np.ndarray]
                                                   ) -> None:
    same(bar_fed(bars[:600], request_), core({k: v[:600] for k, v in a.items()}), rtol=1e-9)


def test_the_bar_fed_sma_is_the_core_to_the_last_bit() -> None:
    """``ctx.ta.sma`` runs its own inlined copy of :class:`Sma`'s sums: the same bits for
    every value, through the cases the core treats apart (values leaving and entering the
    window, runs of one value, zeros of either sign, negatives, whole numbers, nan)."""
    rng = np.random.default_rng(7)
    closes: list[Any] = list(rng.normal(100.0, 30.0, 400) * rng.choice([1e-3, 1.0, 1e3], 400))
    closes[50:80] = [123.456789] * 30
    closes[100:130] = [0.0, -0.0] * 15
    closes[150:170] = list(-rng.random(20))
    closes[200:210] = list(range(10))
    closes[250] = nan
    t0 = pd.Timestamp("2024-01-01").to_pydatetime()
    bars = [Bar("X", t0 + pd.Timedelta(hours=k), c, c, c, c, 1.0)
            for k, c in enumerate(closes)]
    for n in (1, 3, 10, 40):
        ours = bar_fed(bars, lambda ctx, n=n: ctx.ta.sma(n))  # type: ignore[misc]
        core = feed(ind.Sma(n), np.array(closes, dtype=float))
        assert ours.tobytes() == core.tobytes(), n


def test_the_bar_fed_vwap_starts_a_session_each_calendar_day() -> None:
    bars = gbm_bars(100, seed=3, interval="1h")
    a = arrays(bars)
    days = [b.time.date() for b in bars]
    new = np.array([i == 0 or days[i] != days[i - 1] for i in range(len(days))])
    same(bar_fed(bars, lambda ctx: ctx.ta.vwap()), feed(ind.Vwap(), a["hlc3"], a["volume"],
                                                         new))


def test_stream_gives_a_fresh_core_for_computed_values() -> None:
    ctx = Context(_NoBroker(), {})  # type: ignore[arg-type]
    one, two = ctx.ta.stream("sma", 2), ctx.ta.stream("sma", 2)
    assert one is not two and isinstance(one, ind.Sma)
    assert [one.update(x) for x in (1.0, 3.0, 5.0)][1:] == [2.0, 4.0]
    assert isinstance(ctx.ta.stream("macd", 3, 6, 2), ind.Macd)
    with pytest.raises(ValueError, match=r"ta.stream: no indicator 'ichimoku' \(available: "
                                         r"atr, barssince, bb,"):
        ctx.ta.stream("ichimoku")
    with pytest.raises(TypeError, match=r"ta.stream\('macd'\): 4 setting\(s\) given; it takes "
                                        r"\(fast=12, slow=26, signal=9\)"):
        ctx.ta.stream("macd", 1, 2, 3, 4)
    with pytest.raises(TypeError, match=r"setting 1 must be a number, got list"):
        ctx.ta.stream("sma", [])


# ---------------------------------------------------------------- in a strategy, sandboxed

STREAMING = '''
STREAMS = {}


def on_start(ctx):
    STREAMS["range"] = ctx.ta.stream("ema", 5)
    STREAMS["cross"] = ctx.ta.stream("crossover")


def on_bar(ctx, bar):
    macd = ctx.ta.macd(12, 26, 9)
    trend = ctx.ta.supertrend(3, 10)
    smooth = STREAMS["range"].update(bar.high - bar.low)
    up = STREAMS["cross"].update(macd.macd[0], macd.signal[0])
    ctx.plot("hist", macd.hist[0], pane="below")
    if up and trend.direction[0] == -1 and smooth == smooth:
        ctx.buy()
    elif ctx.ta.crossunder(macd.macd, macd.signal):
        ctx.close_position()
'''


def test_a_sandboxed_strategy_uses_the_new_indicators_and_streams_as_in_process() -> None:
    bars = gbm_bars(600, symbol="AAA", seed=9, interval="1d")
    request = BacktestRequest(strategy="streams.py", data=[DataSpec(path="AAA")])
    sandboxed = SandboxRunner().run_source(STREAMING, request, {"AAA": bars})
    local = run_backtest(load_strategy_source(STREAMING, "streams.py", restricted=True),
                         {"AAA": bars})
    assert len(local.trades) >= 5, "the comparison is not vacuous"
    assert [(t.entry_time, t.exit_time, t.size) for t in sandboxed.trades] == \
        [(t.entry_time, t.exit_time, t.size) for t in local.trades]


@pytest.mark.parametrize("line, message", [
    ("s.length = 5", "attribute-less object"),
    ("s._win.append(1)", "invalid attribute name because it starts with"),
    ("getattr(s, '_win')", "names starting with '_' are not allowed"),
])
def test_a_stream_is_read_only_to_the_strategy(line: str, message: str) -> None:
    source = f"def on_bar(ctx, bar):\n    s = ctx.ta.stream('sma', 3)\n    {line}\n"
    with pytest.raises(StrategyError, match=message):
        run_backtest(load_strategy_source(source, "s.py", restricted=True),
                     {"AAA": gbm_bars(3, symbol="AAA")})
