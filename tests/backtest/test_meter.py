"""The Meter: equity values paired with the bars they belong to, and measured.

Since a sandboxed back-test measures on the host (the worker only simulates and streams one
equity value per timestamp), the same :class:`Meter` makes every result. The first half of
this file checks the pairing itself on hand-made bars and values, where every figure can be
worked out by hand; the second half checks the promise the split rests on: a back-test run
in a sandbox worker gives *exactly* the result of the same back-test run in-process.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest

from sandtrade.backtest.meter import Meter, MeterError
from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.result import BacktestResult, Simulation
from sandtrade.backtest.runner import InProcessRunner
from sandtrade.broker import BrokerSettings
from sandtrade.errors import DataError
from sandtrade.market import gbm_bars, write_csv
from sandtrade.models import Bar
from sandtrade.sandbox.runner import CHUNK_BARS, FIRST_CHUNK_BARS, SandboxRunner

T0 = datetime(2024, 1, 2, 9, 0)
HOUR = timedelta(hours=1)


def bar(symbol: str, k: int, close: float) -> Bar:
    """A bar of ``symbol`` at hour ``k``; open, high and low around the close."""
    return Bar(symbol, T0 + k * HOUR, close * 0.99, close * 1.02, close * 0.97, close, 100.0)


def simulation(bars: int, *, symbols: list[str], warmup_bars: int = 0) -> Simulation:
    """What an engine that made no trades would report for ``bars`` timestamps."""
    return Simulation(strategy="s.py", symbols=symbols, bars=bars, warmup_bars=warmup_bars)


def test_without_curves_the_statistics_are_the_same() -> None:
    """A sweep's runs keep neither the price nor the equity curve: their statistics are those
    of the same values measured with both."""
    bars = gbm_bars(9_000, symbol="AAA", seed=7)
    equity = [100.0 + (b.close - bars[0].close) * (1 + (k % 5)) for k, b in enumerate(bars)]
    results = []
    for curves in (True, False):
        meter = Meter.for_symbols(["AAA"], prices=curves, equity_curve=curves)
        meter.add_bars(bars)
        for k in range(0, len(equity), 1_000):  # in chunks, as a worker's values arrive
            meter.add_equity(equity[k:k + 1_000])
        results.append(meter.finish(simulation(len(bars), symbols=["AAA"])))
    full, bare = results
    assert bare.stats == full.stats
    assert len(full.equity_curve) > 100 and full.prices["AAA"]
    assert bare.equity_curve == [] and bare.prices == {}


# ---------------------------------------------------------------- one symbol: a value a bar


ONE = [bar("AAA", k, c) for k, c in enumerate([10.0, 11.0, 12.0, 13.0, 14.0])]
ONE_EQUITY = [100.0, 110.0, 105.0, 120.0, 90.0]


def test_ungrouped_values_take_one_bar_each_and_reach_the_stats() -> None:
    """Each value is the equity at the end of its bar: the stats' start, end, final equity,
    peak and drawdown are those of the values fed, at the bars' times."""
    meter = Meter(grouped=False)
    meter.add_bars(ONE)
    meter.add_equity(ONE_EQUITY)
    assert meter.n == 5
    result = meter.finish(simulation(5, symbols=["AAA"]), elapsed_s=1.5)
    s = result.stats
    assert s["Start"] == ONE[0].time.isoformat() and s["End"] == ONE[-1].time.isoformat()
    assert s["Equity Final [$]"] == 90.0
    assert s["Equity Peak [$]"] == 120.0
    assert s["Return [%]"] == pytest.approx(-10.0)
    assert s["Max. Drawdown [%]"] == pytest.approx(-25.0)  # 120 -> 90
    assert s["Buy & Hold Return [%]"] == pytest.approx(40.0)  # the bars' closes, 10 -> 14
    assert [(p.time, p.equity) for p in result.equity_curve] == [
        (b.time, e) for b, e in zip(ONE, ONE_EQUITY, strict=True)]
    assert result.equity_curve[-1].drawdown_pct == pytest.approx(-25.0)
    assert result.prices == {"AAA": ONE}
    assert result.bars == 5 and result.elapsed_s == 1.5


def test_ungrouped_values_may_arrive_in_batches_after_their_bars() -> None:
    """The engine measures every few thousand bars, the host as equity frames arrive: the
    batches must not change the figures."""
    whole = Meter(grouped=False)
    whole.add_bars(ONE)
    whole.add_equity(ONE_EQUITY)
    batched = Meter(grouped=False)
    batched.add_bars(ONE[:3])
    batched.add_equity(ONE_EQUITY[:1])
    batched.add_equity(ONE_EQUITY[1:3])
    batched.add_bars(ONE[3:])
    batched.add_equity([])
    batched.add_equity(ONE_EQUITY[3:])
    sim = simulation(5, symbols=["AAA"])
    assert batched.finish(sim) == whole.finish(sim)


# ---------------------------------------------------------------- a value a timestamp

# Which symbols trade at each hour: AAA is missing at hours 1, 3 and 5, so its close must be
# carried forward there (the last group holds no AAA at all).
CALENDAR = [("AAA", "BBB", "CCC"), ("BBB",), ("AAA", "CCC"), ("CCC",), ("AAA", "BBB"),
            ("BBB", "CCC")]
AAA_CLOSES = {0: 10.0, 2: 12.5, 4: 8.0}
OTHER_CLOSES = {"BBB": 200.0, "CCC": 3000.0}  # far from AAA's: a mix-up shows
GROUPED = [bar(sym, k, AAA_CLOSES[k] if sym == "AAA" else OTHER_CLOSES[sym] + k)
           for k, syms in enumerate(CALENDAR) for sym in syms]
GROUPED_EQUITY = [1000.0, 1010.0, 990.0, 1050.0, 1020.0, 1100.0]
#: AAA's close as of each hour (the last one seen).
CARRIED = [10.0, 10.0, 12.5, 12.5, 8.0, 8.0]


def grouped_result(meter: Meter, warmup_bars: int = 0) -> BacktestResult:
    """The result of the six timestamps of ``GROUPED`` with no trades."""
    return meter.finish(simulation(6, symbols=["AAA", "BBB", "CCC"], warmup_bars=warmup_bars))


def beta_of(equity: list[float], market: list[float]) -> float:
    """Beta by its textbook formula: covariance of the log returns over the market's variance."""
    eq = [math.log(b / a) for a, b in pairwise(equity)]
    mkt = [math.log(b / a) for a, b in pairwise(market)]
    mean_eq, mean_mkt = sum(eq) / len(eq), sum(mkt) / len(mkt)
    return (sum((x - mean_eq) * (y - mean_mkt) for x, y in zip(eq, mkt, strict=True))
            / sum((y - mean_mkt) ** 2 for y in mkt))


@pytest.mark.parametrize("warmup", range(6))
def test_a_chosen_benchmark_runs_from_its_first_close_to_its_last_whatever_the_warmup(
        warmup: int) -> None:
    """In a portfolio, Buy & Hold of a chosen symbol runs from its first close to its last
    (AAA: 10 -> 8); the warm-up does not move it (a portfolio's warm-up can fall after the
    benchmark's last bar: it once read 0 % there), nor does a timestamp without its bar."""
    meter = Meter(grouped=True, benchmark="AAA")
    meter.add_bars(GROUPED)
    meter.add_equity(GROUPED_EQUITY)
    result = grouped_result(meter, warmup)
    assert result.stats["Buy & Hold Return [%]"] == pytest.approx(-20.0)
    assert result.settings["benchmark"] == "AAA"


def test_grouped_values_take_one_timestamp_each() -> None:
    """Six timestamps of eleven bars: six equity points at the group times, each symbol's
    price curve holds exactly its own bars, and the beta is computed against the carried
    bench closes (a 0 or a foreign close at a gap would change it or make it undefined)."""
    meter = Meter(grouped=True, benchmark="AAA")
    meter.add_bars(GROUPED)
    meter.add_equity(GROUPED_EQUITY)
    assert meter.n == 6
    result = grouped_result(meter)
    assert [(p.time, p.equity) for p in result.equity_curve] == [
        (T0 + k * HOUR, e) for k, e in enumerate(GROUPED_EQUITY)]
    assert result.prices == {s: [b for b in GROUPED if b.symbol == s]
                             for s in ("AAA", "BBB", "CCC")}
    assert result.stats["Equity Final [$]"] == 1100.0
    assert result.stats["End"] == (T0 + 5 * HOUR).isoformat()
    assert result.stats["Beta"] == pytest.approx(beta_of(GROUPED_EQUITY, CARRIED))


def test_the_default_benchmark_is_an_equal_weight_buy_and_hold_of_every_symbol() -> None:
    """Each symbol gets a third of the cash at its first close and keeps it to its last:
    AAA 10 -> 8, BBB 200 -> 205, CCC 3000 -> 3005. Beta is measured against the value of
    that portfolio at each hour, each symbol at its close as of that hour."""
    meter = Meter.for_symbols(["AAA", "BBB", "CCC"])
    meter.add_bars(GROUPED)
    meter.add_equity(GROUPED_EQUITY)
    result = grouped_result(meter)
    bh = ((8 / 10 + 205 / 200 + 3005 / 3000) / 3 - 1) * 100
    assert result.stats["Buy & Hold Return [%]"] == pytest.approx(bh, rel=1e-12)
    carried = {"AAA": CARRIED,
               "BBB": [200.0, 201.0, 201.0, 201.0, 204.0, 205.0],
               "CCC": [3000.0, 3000.0, 3002.0, 3003.0, 3003.0, 3005.0]}
    value = [sum(carried[s][k] / carried[s][0] for s in carried) / 3 for k in range(6)]
    beta = beta_of(GROUPED_EQUITY, value)
    assert result.stats["Beta"] == pytest.approx(beta, rel=1e-9)
    assert result.stats["Alpha [%]"] == pytest.approx(
        result.stats["Return [%]"] - beta * bh, rel=1e-9)
    assert result.settings["benchmark"] == "equal-weight"


#: AAA trades from hour 0, BBB from hour 2 (after AAA has doubled), CCC from hour 4 only.
LATE_STARTS = [bar("AAA", 0, 10.0), bar("AAA", 1, 15.0), bar("AAA", 2, 20.0),
               bar("BBB", 2, 50.0), bar("AAA", 3, 20.0), bar("BBB", 3, 40.0),
               bar("AAA", 4, 30.0), bar("BBB", 4, 60.0), bar("CCC", 4, 7.0),
               bar("CCC", 5, 14.0)]


def test_equal_weight_shares_stay_cash_until_their_symbol_starts() -> None:
    """A third of the cash each: AAA's at 10 (ends at 30: x3), BBB's at its first close of
    50 two hours later (ends at 60: x1.2), CCC's at 7 at hour 4 (ends at 14: x2). Before
    its first close a share is cash, so the portfolio's value moves with the others only;
    the late starts do not make Buy & Hold undefined, nor count AAA's rise before BBB
    started for BBB."""
    meter = Meter.for_symbols(["AAA", "BBB", "CCC"])
    meter.add_bars(LATE_STARTS)
    equity = [100.0, 110.0, 105.0, 120.0, 125.0, 130.0]
    meter.add_equity(equity)
    result = meter.finish(simulation(6, symbols=["AAA", "BBB", "CCC"], warmup_bars=3))
    assert result.stats["Buy & Hold Return [%]"] == pytest.approx((3 + 1.2 + 2) / 3 * 100 - 100)
    value = [(1.0 + 1 + 1) / 3, (1.5 + 1 + 1) / 3, (2 + 1 + 1) / 3, (2 + 0.8 + 1) / 3,
             (3 + 1.2 + 1) / 3, (3 + 1.2 + 2) / 3]
    assert result.stats["Beta"] == pytest.approx(beta_of(equity, value), rel=1e-9)


@pytest.mark.parametrize("order", [["AAA", "BBB", "CCC"], ["CCC", "BBB", "AAA"],
                                   ["BBB", "CCC", "AAA"]])
def test_the_order_of_the_symbols_does_not_change_the_benchmark(order: list[str]) -> None:
    """The engine merges the streams in the order it is given them, so the bars of one
    timestamp arrive in that order: Buy & Hold must come out the same to the last bit."""
    meter = Meter.for_symbols(order)
    meter.add_bars(sorted(GROUPED, key=lambda b: (b.time, order.index(b.symbol))))
    meter.add_equity(GROUPED_EQUITY)
    result = grouped_result(meter)
    reference = Meter.for_symbols(["AAA", "BBB", "CCC"])
    reference.add_bars(GROUPED)
    reference.add_equity(GROUPED_EQUITY)
    expected = grouped_result(reference).stats
    assert result.stats["Buy & Hold Return [%]"] == expected["Buy & Hold Return [%]"]
    assert result.stats["Beta"] == pytest.approx(expected["Beta"], rel=1e-12)


@pytest.mark.parametrize("benchmark", [None, "LATE"])
def test_a_symbol_starting_after_ten_thousand_timestamps_still_counts(
        benchmark: str | None) -> None:
    """Buy & Hold once looked at the first 10,000 timestamps only: a benchmark that started
    later had none and read as undefined. Here LATE starts at hour 12,000, at 50, and ends
    at 75; EARLY stays at 10."""
    n, start = 13_000, 12_000
    bars: list[Bar] = []
    for k in range(n):
        bars.append(bar("EARLY", k, 10.0))
        if k >= start:
            bars.append(bar("LATE", k, 50.0 + 25.0 * (k - start) / (n - 1 - start)))
    meter = Meter.for_symbols(["EARLY", "LATE"], benchmark=benchmark)
    meter.add_bars(bars)
    meter.add_equity([1000.0 + k % 7 for k in range(n)])
    result = meter.finish(simulation(n, symbols=["EARLY", "LATE"], warmup_bars=20))
    expected = 50.0 if benchmark else 25.0  # LATE alone x1.5; or half of the cash in it
    assert result.stats["Buy & Hold Return [%]"] == pytest.approx(expected)


def test_an_unknown_benchmark_names_it_and_the_symbols_there_are() -> None:
    with pytest.raises(DataError) as info:
        Meter.for_symbols(["AAA", "BBB"], benchmark="MSFT")
    assert str(info.value) == ("benchmark 'MSFT' is not a symbol of this back-test (its "
                               "symbols: AAA, BBB); name one of them, or none for an "
                               "equal-weight buy and hold of them all")


def test_one_stream_is_its_own_benchmark_and_refuses_another() -> None:
    """A run over one stream of bars (no symbol known in advance) checks the benchmark
    against the symbol of its first bar."""
    same = Meter.for_symbols(None, benchmark="AAA")
    same.add_bars(ONE)
    same.add_equity(ONE_EQUITY)
    assert same.finish(simulation(5, symbols=["AAA"])).stats["Buy & Hold Return [%]"] == \
        pytest.approx(40.0)
    other = Meter.for_symbols(None, benchmark="BBB")
    other.add_bars(ONE)
    with pytest.raises(DataError, match=r"'BBB' is not a symbol .* AAA"):
        other.add_equity(ONE_EQUITY)


def test_a_timestamp_split_across_add_bars_calls_is_still_one_group() -> None:
    """The host sends bars in chunks of a fixed size, so a chunk may end inside a timestamp
    (here hour 2: AAA in one chunk, CCC in the next). Values for the timestamps before it
    arrive while only half of it is in; the rest of it arrives before its own value (the
    worker cannot close a timestamp before it has seen the next one)."""
    whole = Meter(grouped=True, benchmark="AAA")
    whole.add_bars(GROUPED)
    whole.add_equity(GROUPED_EQUITY)
    split = GROUPED.index(bar("AAA", 2, 12.5)) + 1
    assert GROUPED[split].time == GROUPED[split - 1].time  # the chunk ends mid-timestamp
    streamed = Meter(grouped=True, benchmark="AAA")
    streamed.add_bars(GROUPED[:split])
    streamed.add_equity(GROUPED_EQUITY[:2])
    streamed.add_bars(GROUPED[split:split + 3])
    streamed.add_bars(GROUPED[split + 3:])
    streamed.add_equity(GROUPED_EQUITY[2:])
    result = grouped_result(streamed)
    assert result == grouped_result(whole)
    assert [len(result.prices[s]) for s in ("AAA", "BBB", "CCC")] == [3, 4, 4]


# ---------------------------------------------------------------- values that do not fit


def test_more_values_than_bars_is_refused_and_the_message_names_both_counts() -> None:
    meter = Meter(grouped=False)
    meter.add_bars(ONE[:3])
    with pytest.raises(MeterError, match=r"^4 equity values for 3 bars$"):
        meter.add_equity(ONE_EQUITY[:4])
    assert meter.n == 0  # nothing was taken


def test_more_values_than_timestamps_is_refused_when_grouped() -> None:
    """Four timestamps in (the fourth, hour 3, complete), five values: the fifth is refused
    and the message says which value it was."""
    meter = Meter(grouped=True, benchmark="AAA")
    meter.add_bars([b for b in GROUPED if b.time <= T0 + 3 * HOUR])
    with pytest.raises(MeterError, match=r"^more equity values than timestamps \(5\)$"):
        meter.add_equity(GROUPED_EQUITY[:5])


@pytest.mark.parametrize("grouped", [False, True])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_value_that_is_not_a_finite_number_is_refused(grouped: bool, bad: float) -> None:
    """A NaN or an infinity would poison every statistic after it; the batch is refused
    whole, before anything is taken."""
    meter = Meter(grouped=grouped)
    meter.add_bars(GROUPED if grouped else ONE)
    with pytest.raises(MeterError, match="not a finite number"):
        meter.add_equity([1000.0, bad, 1000.0])
    assert meter.n == 0


@pytest.mark.parametrize("claimed", [4, 6])
def test_finish_refuses_a_simulation_that_claims_another_bar_count(claimed: int) -> None:
    meter = Meter(grouped=False)
    meter.add_bars(ONE)
    meter.add_equity(ONE_EQUITY)
    with pytest.raises(MeterError) as info:
        meter.finish(simulation(claimed, symbols=["AAA"]))
    assert str(info.value) == (f"the simulation reports {claimed} bars but 5 equity values "
                               "arrived")


# ---------------------------------------------------------------- sandbox == in-process

SMA_CROSS = '''
PARAMS = {"fast": 5, "slow": 20}


def on_bar(ctx, bar):
    fast = ctx.ta.sma(ctx.params["fast"])
    slow = ctx.ta.sma(ctx.params["slow"])
    if ctx.ta.crossover(fast, slow):
        ctx.close_position()
        ctx.buy()
    elif ctx.ta.crossunder(fast, slow):
        ctx.close_position()
        ctx.sell()


def on_stop(ctx):
    ctx.log("done at", ctx.bar_index)
'''

#: Long on each symbol's own crossover with a third of the buying power (``ctx.symbol`` is the
#: symbol whose bar is handled, and the indicators and orders default to it).
PORTFOLIO = '''
def on_bar(ctx, bar):
    fast = ctx.ta.sma(5)
    slow = ctx.ta.sma(15)
    if ctx.ta.crossover(fast, slow):
        ctx.buy(0.3)
    elif ctx.ta.crossunder(fast, slow) and ctx.position().qty:
        ctx.close_position()
        ctx.log("closed", ctx.symbol)
'''

#: Quiet until bar 1,500, then short with everything (5x margin) into a steep rally.
SHORT_INTO_RALLY = '''
def on_bar(ctx, bar):
    if ctx.bar_index >= 1500 and not ctx.position().qty:
        ctx.sell()
'''


def both(tmp_path: Path, source: str, bars: dict[str, list[Bar]], **settings: Any
         ) -> tuple[BacktestResult, BacktestResult]:
    """``source`` back-tested on ``bars`` (written to CSV files) in-process and in a sandbox
    worker; the same request for both."""
    path = tmp_path / "strategy.py"
    path.write_text(source)
    data = []
    for symbol, rows in bars.items():
        csv = tmp_path / f"{symbol.lower()}.csv"
        write_csv(rows, csv)
        data.append(DataSpec(path=str(csv), symbol=symbol))
    request = BacktestRequest(strategy=str(path), data=data, **settings)
    return InProcessRunner().run(request), SandboxRunner().run(request)


def assert_same(local: BacktestResult, sandboxed: BacktestResult) -> None:
    """Everything equal but the timing: stats, trades, curves, logs, warnings."""
    assert sandboxed.model_dump(exclude={"elapsed_s"}) == local.model_dump(exclude={"elapsed_s"})


def test_sandbox_measures_one_symbol_exactly_as_in_process(tmp_path: Path) -> None:
    """18,000 bars cross the pipe in five chunks that grow (1,000, 2,000, 4,000, 8,000, then
    the 3,000 left) and come back in five equity frames (the engine measures every 4,096
    bars), and the curves are decimated as they go: none of it may change a figure."""
    n = FIRST_CHUNK_BARS + CHUNK_BARS + 1_000
    rows = gbm_bars(n, symbol="ACME", seed=3)
    local, sandboxed = both(tmp_path, SMA_CROSS, {"ACME": rows})
    assert_same(local, sandboxed)
    assert local.bars == n and len(local.trades) > 100
    assert local.logs == [f"{rows[-1].time.isoformat()} done at {n - 1}"]
    assert 2_000 <= len(local.equity_curve) < 4_000  # decimated, not empty
    assert len({p.equity for p in local.equity_curve}) > 1_000
    prices = local.prices["ACME"]
    assert 2_000 <= len(prices) < 4_000
    assert prices[0].open == rows[0].open and prices[-1].close == rows[-1].close
    assert max(b.high for b in prices) == max(b.high for b in rows)


def calendars(n: int) -> dict[str, list[Bar]]:
    """Three symbols over ``n`` hours on different calendars: AAA trades every hour, BBB
    skips every 7th and stops at 90 %, CCC starts at hour 50 and skips every 5th."""
    aaa = gbm_bars(n, symbol="AAA", seed=11)
    bbb = [b for k, b in enumerate(gbm_bars(n, symbol="BBB", seed=12, s0=40.0))
           if k % 7 != 3 and k < n * 9 // 10]
    ccc = [b for k, b in enumerate(gbm_bars(n, symbol="CCC", seed=13, s0=250.0))
           if k % 5 != 1 and k >= 50]
    return {"AAA": aaa, "BBB": bbb, "CCC": ccc}


@pytest.mark.parametrize("benchmark", [None, "CCC"])
def test_sandbox_measures_a_portfolio_on_uneven_calendars_exactly_as_in_process(
        tmp_path: Path, benchmark: str | None) -> None:
    """One equity value per timestamp of the merged bars, where timestamps hold one, two or
    three bars and the host's first chunk ends inside a timestamp: the host must give each
    value the same group of bars as the engine in-process did, and measure the same
    benchmark (the equal-weight default, or CCC, which starts late)."""
    data = calendars(2_500)
    merged = sorted((b for rows in data.values() for b in rows),
                    key=lambda b: (b.time, "ABC".index(b.symbol[0])))
    first_chunk_end = merged[FIRST_CHUNK_BARS - 1].time
    assert merged[FIRST_CHUNK_BARS].time == first_chunk_end  # the chunk splits a timestamp
    local, sandboxed = both(tmp_path, PORTFOLIO, data, close_at_end=True, benchmark=benchmark)
    assert_same(local, sandboxed)
    assert local.settings["benchmark"] == (benchmark or "equal-weight")
    own = {s: rows[-1].close / rows[0].close for s, rows in data.items()}
    bh = (own["CCC"] if benchmark else sum(own.values()) / 3) * 100 - 100
    assert local.stats["Buy & Hold Return [%]"] == pytest.approx(bh, rel=1e-12)
    assert local.bars == 2_500
    assert sorted(local.prices) == ["AAA", "BBB", "CCC"]
    assert all(len(curve) > 100 for curve in local.prices.values())
    assert {t.symbol for t in local.trades} == {"AAA", "BBB", "CCC"}
    assert [p.time for p in local.equity_curve[:3]] == [b.time for b in data["AAA"][:3]]


def test_sandbox_refuses_an_unknown_benchmark_before_it_starts_a_worker(tmp_path: Path
                                                                        ) -> None:
    path = tmp_path / "strategy.py"
    path.write_text(PORTFOLIO)
    data = []
    for symbol, rows in calendars(100).items():
        write_csv(rows, tmp_path / f"{symbol}.csv")
        data.append(DataSpec(path=str(tmp_path / f"{symbol}.csv")))
    runner = SandboxRunner()
    with pytest.raises(DataError, match=r"^benchmark 'MSFT' .*\(its symbols: AAA, BBB, CCC\)"):
        runner.run(BacktestRequest(strategy=str(path), data=data, benchmark="MSFT"))
    assert runner.last_worker is None


def test_sandbox_measures_a_bankrupt_run_exactly_as_in_process(tmp_path: Path) -> None:
    """The run stops at the bankruptcy while the host has sent (and holds) every bar: the
    result counts only the bars simulated, and the price curve ends where the equity does."""
    n = 5_000
    rally = gbm_bars(n, symbol="ACME", seed=4, mu=10.0, sigma=0.2)
    local, sandboxed = both(tmp_path, SHORT_INTO_RALLY, {"ACME": rally},
                            broker=BrokerSettings(short_margin=0.2))
    assert_same(local, sandboxed)
    assert FIRST_CHUNK_BARS < local.bars < n  # after the first chunk, bars left over
    last = rally[local.bars - 1].time
    assert any(w.startswith(f"{last}: equity reached") for w in local.warnings)
    assert local.equity_curve[-1].time == last
    assert local.prices["ACME"][-1].time <= local.equity_curve[-1].time
    assert local.prices["ACME"][-1] == rally[local.bars - 1]
