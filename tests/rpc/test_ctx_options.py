"""``ctx.options`` live, through a real host: chains, orders, greeks and expiry events over a
strategy's door; the example condor's live replay equals its back-test trade for trade; a
strategy of several symbols replayed in lockstep equals its back-test; hostile calls are
refused with what was wrong named.

Each host is the ``runtime`` fixture of ``rpc/conftest.py`` (a real HostRuntime, its sqlite
store, its gRPC server, its sandboxed workers), fed daily bars by the ``steps`` source in
lockstep (``bars_per_second = 0``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.host.runtime import HostRuntime
from sandtrade.market import iter_csv, sample_csv_path
from sandtrade.market.samples import sample_path
from sandtrade.models import Bar, Fill
from sandtrade.options.templates import build_strategy
from sandtrade.sandbox.runner import SandboxRunner

from .conftest import Metadata, StepSource
from .test_strategies import (
    Stub,
    eventually,
    log_lines,
    start,
    strategies,  # noqa: F401 (the fixture)
    trade_key,
    upload,
    wait_running,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "strategies_examples"


def renamed(path: Path, symbol: str, n: int) -> list[Bar]:
    """The first ``n`` bars of a CSV history, as ``symbol``'s."""
    return [Bar(symbol, b.time, b.open, b.high, b.low, b.close, b.volume)
            for b in iter_csv(str(path))][:n]


def replay(runtime: HostRuntime, bars: list[Bar]) -> None:
    """Push ``bars`` through the host's feed; returns once every one is handled (lockstep:
    by the strategies too)."""
    assert isinstance(runtime.source, StepSource)
    for bar in bars:
        runtime.source.push(bar)
    runtime.source.wait_handled(len(bars), timeout=240)


def fill_key(f: Fill) -> tuple[Any, ...]:
    return (f.symbol, f.side.value, f.qty, round(f.price, 9), f.time, f.kind.value)


def live_account(runtime: HostRuntime, account: str) -> tuple[list[Any], list[Fill]]:
    """The account's closed trades and fills in the host's broker."""
    assert runtime.live is not None
    return runtime.live.call(lambda b: (list(b.closed_trades(account)), b.fills(account)))


def backtest_fills(source: str, data: dict[str, list[Bar]], cash: float,
                   params: dict[str, Any] | None = None) -> tuple[list[Any], list[str]]:
    """Back-test ``source`` in a sandboxed worker: its trades, and the fills it logged."""
    request = BacktestRequest(strategy="s.py", data=[DataSpec(path=s) for s in data],
                              cash=cash, params=params or {})
    result = SandboxRunner().run_source(source, request, data)
    return result.trades, result.logs


# ------------------------------------------------------------------ through the door

LIVE = '''
import json

def on_bar(ctx, bar):
    if ctx.bar_index == 1:
        rows = ctx.options.chain(expiry="weekly")
        ctx.log(json.dumps({"rows": len(rows), "first": list(rows[0])}))
        ctx.state["id"] = ctx.options.order("straddle", 1, expiry="weekly")
    elif ctx.bar_index == 2:
        g = ctx.options.greeks()
        ctx.log(json.dumps({"greeks": list(g), "groups": [list(x.legs) for x in
                                                          ctx.options.groups()]}))

def on_fill(ctx, fill):
    ctx.log(json.dumps({"fill": [fill.kind, fill.symbol, fill.side, fill.qty,
                                 fill.order_id == ctx.state.get("id")]}))
'''


def logged(stub: Stub, operator: Metadata, name: str) -> list[dict[str, Any]]:
    return [json.loads(line.split(" ", 1)[1]) for line in log_lines(stub, operator, name, 500)
            if " {" in line]


def test_ctx_options_through_a_real_host(strategies: Stub, operator: Metadata,  # noqa: F811
                                         runtime: HostRuntime) -> None:
    """A live strategy reads the host's chain, opens a straddle that fills at once (its
    fills reach on_fill), reads its greeks and group, and sees the straddle exercised and
    expired at the expiry's session end."""
    upload(strategies, operator, "opt", LIVE, account="o1")
    start(strategies, operator, "opt")
    wait_running(strategies, operator, "opt")
    replay(runtime, renamed(sample_csv_path(), "AAA", 14))

    got = eventually(lambda: logged(strategies, operator, "opt"),
                     lambda x: any(e.get("fill", [""])[0] != "trade" for e in x if "fill" in e),
                     "expiry fills in the strategy's log")
    chain = next(e for e in got if "rows" in e)
    assert chain["rows"] == 82 and chain["first"][1] == "AAA"
    fills = [e["fill"] for e in got if "fill" in e]
    assert [f[0] for f in fills[:2]] == ["trade", "trade"] and all(f[4] for f in fills[:2])
    assert {f[0] for f in fills[2:]} == {"exercise", "expiry"}
    state = next(e for e in got if "greeks" in e)
    assert state["greeks"][3] > 0  # a long straddle is long vega
    assert [len(legs) for legs in state["groups"]] == [2]
    assert runtime.store is not None  # the straddle's order says who placed it: the door's
    [straddle] = [o for o in runtime.store.list_orders("o1", limit=100) if o.legs]
    assert straddle.source is not None and (straddle.source.kind, straddle.source.ref) == (
        "strategy", "opt"), straddle.source


# ------------------------------------------------------------------ parity


def test_the_example_condor_live_equals_its_backtest(strategies: Stub,  # noqa: F811
                                                     operator: Metadata,
                                                     runtime: HostRuntime) -> None:
    """The example iron condor replayed through the host for a year of daily bars fills
    exactly what its sandboxed back-test fills: same contracts, sides, sizes, prices, times,
    and the same closed trades."""
    source = (EXAMPLES / "iron_condor.py").read_text()
    upload(strategies, operator, "condor", source, account="c1")
    start(strategies, operator, "condor")
    wait_running(strategies, operator, "condor")
    bars = renamed(sample_csv_path(), "AAA", 252)
    replay(runtime, bars)
    live_trades, live_fills = live_account(runtime, "c1")

    spy = source + '''

def log_fill(ctx, fill):
    ctx.log("FILL", fill.symbol, fill.side, fill.qty, repr(fill.price), fill.time, fill.kind)
'''
    spy = spy.replace("def on_fill(ctx, fill):\n    s = ctx.state",
                      "def on_fill(ctx, fill):\n    log_fill(ctx, fill)\n    s = ctx.state")
    trades, logs = backtest_fills(spy, {"AAA": bars}, runtime.settings.cash)
    back = [line.split(" FILL ", 1)[1] for line in logs if " FILL " in line]
    live = [f"{f.symbol} {f.side.value} {f.qty:g} {f.price!r} {f.time} {f.kind.value}"
            for f in live_fills]
    back = [" ".join([*x.split(" ")[:2], f"{float(x.split(' ')[2]):g}", *x.split(" ")[3:]])
            for x in back]
    assert len(live) >= 40, "the comparison is not vacuous"
    assert live == back
    assert [trade_key(t) for t in live_trades] == [trade_key(t) for t in trades]
    assert [t.pnl for t in live_trades] == pytest.approx([t.pnl for t in trades])


PAIR = '''
PARAMS = {"n": 5}

def on_bar(ctx, bar):
    # Trades BBB on AAA's bar, and reads BBB's bar of the same time.
    if bar.symbol != "AAA":
        return
    closes = ctx.history(ctx.params["n"])
    other = ctx.history(1, symbol="BBB")
    if len(closes) < ctx.params["n"] or not other:
        return
    ctx.log("seen", bar.time, "BBB", other[-1])
    mean = sum(closes) / len(closes)
    held = ctx.position("BBB").qty
    if bar.close > mean and not held:
        ctx.buy(10, symbol="BBB")
    elif bar.close < mean and held:
        ctx.close_position("BBB")
'''


def test_a_strategy_trading_b_on_a_bar_live_equals_its_backtest(
        strategies: Stub, operator: Metadata, runtime: HostRuntime) -> None:  # noqa: F811
    """A strategy of two symbols that trades BBB on AAA's bars, replayed in lockstep, gets
    each timestamp's bars together as a back-test does: it sees BBB's bar of the same time,
    its orders fill at BBB's next open, and it closes the same trades."""
    upload(strategies, operator, "pair", PAIR, account="p1", symbols=("AAA", "BBB"))
    start(strategies, operator, "pair")
    wait_running(strategies, operator, "pair")
    a = renamed(sample_csv_path(), "AAA", 150)
    b = renamed(sample_path("ACME"), "BBB", 150)
    assert [x.time for x in a] == [x.time for x in b]
    replay(runtime, [bar for pair in zip(a, b, strict=True) for bar in pair])
    live_trades, _ = live_account(runtime, "p1")

    trades, logs = backtest_fills(PAIR, {"AAA": a, "BBB": b}, runtime.settings.cash)
    assert len(trades) >= 8, "the comparison is not vacuous"
    assert [trade_key(t) for t in live_trades] == [trade_key(t) for t in trades]
    seen_live = [line.split(" ", 1)[1] for line in
                 log_lines(strategies, operator, "pair", 1000) if " seen " in line]
    seen_back = [line.split(" ", 1)[1] for line in logs if " seen " in line]
    assert seen_live[-20:] == seen_back[-20:]


# ------------------------------------------------------------------ hostile


HOSTILE = '''
PARAMS = {"victim": ""}

def on_bar(ctx, bar):
    if ctx.bar_index != 1:
        return
    attempts = [
        lambda: ctx.options.close(ctx.params["victim"]),
        lambda: ctx.options.order("bull_put_spread", 1e9, width=5),
        lambda: ctx.options.order("nope", 1),
        lambda: ctx.options.order("bull_put_spread", 1, expiry="yesterday", width=5),
        lambda: ctx.options.order([("AAA", "buy")] * 100, 1),
        lambda: ctx.options.order([("AAA240119C00100000", "steal")], 1),
        lambda: ctx.options.chain("AAA", expiry="x" * 1000),
        lambda: ctx.options.chain("ZZZ"),
    ]
    for attempt in attempts:
        try:
            attempt()
            print("ACCEPTED")
        except Exception as e:
            print("REFUSED", e)
'''


def test_hostile_options_calls_are_refused_naming_what(
        strategies: Stub, operator: Metadata, runtime: HostRuntime,  # noqa: F811
        make_account: Any) -> None:
    """Another account's position group, an absurd size, an unknown template, a bad expiry,
    too many legs, a bad side, a huge selector and an unpriced symbol: each refused, with
    what was wrong named; nothing is traded."""
    make_account("bob")
    replay(runtime, renamed(sample_csv_path(), "AAA", 1))
    assert runtime.options is not None and runtime.live is not None
    chain = runtime.options.chain("AAA")
    assert chain is not None
    legs = build_strategy("bull_put_spread", chain, width=5).legs
    victim = runtime.live.call(
        lambda b: b.ensure_account("bob") and b.submit_multileg("bob", legs, 1)).id

    upload(strategies, operator, "evil", HOSTILE, account="e1", victim=victim)
    start(strategies, operator, "evil")
    wait_running(strategies, operator, "evil")
    replay(runtime, renamed(sample_csv_path(), "AAA", 3)[1:])
    lines = eventually(lambda: [x for x in log_lines(strategies, operator, "evil", 200)
                                if "REFUSED" in x or "ACCEPTED" in x],
                       lambda x: len(x) >= 8, "eight answers in the log")
    assert not [x for x in lines if "ACCEPTED" in x]
    expected = [
        f"close_group: account 'e1' has no open position group '{victim}'",
        "qty must be a number of spreads above 0, at most 10,000",
        "unknown strategy 'nope'",
        "expiry 'yesterday' is not an expiry selector",
        "legs: 1 to 8 legs, got 100",
        "legs[0].side must be 'buy' or 'sell', got 'steal'",
        "expiry: at most 32 characters",
        "no option chain for 'ZZZ'",
    ]
    for line, want in zip(lines, expected, strict=True):
        assert want in line, (want, line)
    _, fills = live_account(runtime, "e1")
    assert fills == []
    _, bobs = live_account(runtime, "bob")
    assert len(bobs) == 2  # bob's spread is still his, untouched
