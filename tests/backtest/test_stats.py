"""Every statistic is a real number or absent, whatever the equity path.

A bankrupt back-test ends at or below zero; Python's float arithmetic raises or turns complex
there (``(-0.03) ** 0.5`` is a complex number) where numpy's gives nan or inf. The stats must
still be finite floats, ints, the time and duration strings, or None (NaN and ±inf become
None: JSON's null, the table's "—"), and ``--json`` must print them.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sandtrade.backtest.meter import Meter
from sandtrade.backtest.result import Simulation
from sandtrade.backtest.stats import EquityRecorder, compute_stats
from sandtrade.models import Bar, Trade

TIME_KEYS = {"Start", "End"}
DURATION_KEYS = {"Duration", "Max. Drawdown Duration", "Avg. Drawdown Duration",
                 "Max. Trade Duration", "Avg. Trade Duration"}

finite = st.floats(allow_nan=False, allow_infinity=False)
special = st.sampled_from([0.0, -0.0, 5e-324, -5e-324, 1e-300, 1.0, -1.0, 1e300, -1e300,
                           1.7e308, -1.7e308])
#: An equity value: anything finite (the Meter refuses the rest), often a special one.
equity_value = st.one_of(finite, special, st.floats(-1e6, 1e6))
positive = st.floats(min_value=1e-6, max_value=1e6)

equity_paths = st.one_of(
    st.lists(equity_value, min_size=1, max_size=40),
    # constant, a single bar included
    st.builds(lambda v, n: [v] * n, equity_value, st.integers(1, 40)),
    # a bankruptcy: positive, then at or below zero, as the engine stops
    st.builds(lambda path, last: [*path, last], st.lists(positive, max_size=40),
              st.floats(max_value=0.0, allow_nan=False, allow_infinity=False)),
    # all zeros, or negative from the start
    st.builds(lambda n: [0.0] * n, st.integers(1, 20)),
    st.lists(st.floats(max_value=-1e-9, allow_nan=False, allow_infinity=False),
             min_size=1, max_size=20),
)
spacings = st.sampled_from([timedelta(minutes=1), timedelta(hours=1), timedelta(days=1),
                            timedelta(days=7), timedelta(days=31), timedelta(days=365)])
closes = st.one_of(positive, st.floats(min_value=5e-324, max_value=1.7e308),
                   st.sampled_from([1e-8, 1e300, 1.7e308]))  # ratios past the largest float


@st.composite
def runs(draw: st.DrawFn) -> tuple[Meter, Simulation]:
    """A Meter fed one equity path on one or two symbols' bars, and the Simulation to finish
    it with (random closed and open trades, a random warm-up)."""
    equities = draw(equity_paths)
    n = len(equities)
    step = draw(spacings)
    t0 = datetime(2020, 1, 1) + draw(st.integers(0, 6)) * timedelta(days=1)
    times = [t0 + k * step for k in range(n)]
    symbols = draw(st.sampled_from([["AAA"], ["AAA", "BBB"]]))
    benchmark = draw(st.sampled_from([None, *symbols]))
    bars: list[Bar] = []
    for t in times:
        for symbol in symbols:
            if symbol == "AAA" or draw(st.booleans()):
                c = draw(closes)
                bars.append(Bar(symbol, t, c, c, c, c, 0.0))
    meter = Meter.for_symbols(symbols, benchmark=benchmark)
    meter.add_bars(bars)
    meter.add_equity(equities)

    def trade(k: int) -> Trade:
        a, b = sorted((draw(st.integers(0, n - 1)), draw(st.integers(0, n - 1))))
        return Trade(account="backtest", symbol="AAA", size=draw(finite),
                     entry_time=times[a], entry_price=draw(positive), entry_bar=a,
                     exit_time=times[b], exit_price=draw(positive), exit_bar=b,
                     pnl=draw(st.one_of(finite, special)),
                     return_pct=draw(st.one_of(finite, special, st.floats(-1.0, 1.0))),
                     commission=draw(st.one_of(finite, st.just(0.0))))

    sim = Simulation(strategy="s.py", symbols=symbols, bars=n,
                     warmup_bars=draw(st.integers(0, n + 2)),
                     trades=[trade(k) for k in range(draw(st.integers(0, 5)))],
                     open_trades=[trade(k) for k in range(draw(st.integers(0, 2)))])
    return meter, sim


def assert_real_or_absent(stats: dict[str, Any]) -> None:
    for key, value in stats.items():
        if key in TIME_KEYS:
            datetime.fromisoformat(value)
        elif key in DURATION_KEYS:
            assert value is None or "days" in value, (key, value)
        else:
            assert value is None or type(value) is int or (
                type(value) is float and math.isfinite(value)), (key, value)


@settings(max_examples=400, deadline=None)
@given(run=runs())
def test_every_stat_is_a_real_number_or_absent_and_the_summary_is_json(
        run: tuple[Meter, Simulation]) -> None:
    meter, sim = run
    result = meter.finish(sim)
    assert_real_or_absent(result.stats)
    json.dumps(result.to_json_summary(), allow_nan=False)


def test_a_bankrupt_run_has_no_cagr_rather_than_a_complex_one() -> None:
    """The run in the issue: equity from 10,000 to -349.60 over a year and a bit. Before,
    CAGR was (-100.52-0.975j); backtesting.py (numpy) gives nan, and so do we: None."""
    rec = EquityRecorder()
    t0 = datetime(2004, 8, 19)
    for k, equity in enumerate([10_000.0, 9_000.0, 4_000.0, 120.0, -349.60]):
        rec.record(t0 + k * timedelta(days=100), equity, 100.0 + k)
    stats = compute_stats(rec, [], warmup_bars=0)
    assert math.isnan(stats["CAGR [%]"])
    assert stats["Return [%]"] == (-349.60 - 10_000.0) / 10_000.0 * 100
    for key, value in stats.items():
        assert not isinstance(value, complex), key


def test_a_benchmark_past_the_largest_float_is_absent() -> None:
    """Two symbols that each rise 1.7e308-fold: their equal-weight value has no float."""
    meter = Meter.for_symbols(["AAA", "BBB"])
    t0 = datetime(2020, 1, 1)
    meter.add_bars([Bar(s, t0 + k * timedelta(days=1), c, c, c, c, 0.0)
                    for k, c in enumerate([1.0, 1.7e308]) for s in ("AAA", "BBB")])
    meter.add_equity([1.0, 2.0])
    result = meter.finish(Simulation(strategy="s.py", symbols=["AAA", "BBB"], bars=2))
    assert result.stats["Buy & Hold Return [%]"] is None
    assert_real_or_absent(result.stats)
