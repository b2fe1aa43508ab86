"""``ctx.options`` in a back-test: chains synthesised from the underlying's bars, multi-leg
orders from a template or explicit legs filled by the back-test's broker, greeks, position
groups closed as one, and expiry events reaching ``on_fill``.

Strategies run compiled under the sandbox's policy (RestrictedPython), in process and in a
real sandboxed worker.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.runner import run_backtest
from sandtrade.errors import StrategyError
from sandtrade.market import gbm_bars
from sandtrade.models import Bar
from sandtrade.options.settings import OptionsSettings
from sandtrade.sandbox.runner import SandboxRunner
from sandtrade.strategy.loader import load_strategy_source

EXAMPLES = Path(__file__).resolve().parents[2] / "strategies_examples"


def daily(n: int, symbol: str = "AAA", seed: int = 3) -> list[Bar]:
    """``n`` daily bars of ``symbol`` from 2024-01-02 near 100."""
    return gbm_bars(n, symbol=symbol, seed=seed, start=datetime(2024, 1, 2),
                    interval=timedelta(days=1), s0=100.0, sigma=0.2)


def run(source: str, bars: list[Bar], **kw: object) -> list[dict[str, object]]:
    """Back-test ``source`` (restricted) on ``bars``; the JSON objects it logged."""
    strategy = load_strategy_source(source, "opt.py", restricted=True, check=True)
    result = run_backtest(strategy, {bars[0].symbol: bars}, cash=100_000.0, **kw)  # type: ignore[arg-type]
    return [json.loads(line.split(" ", 1)[1]) for line in result.logs]


CHAIN = '''
import json

def on_bar(ctx, bar):
    if ctx.bar_index == 0:
        rows = ctx.options.chain(expiry="30d")
        ctx.log(json.dumps({"n": len(rows), "rows": [list(r) for r in rows[:3]],
                            "expiries": sorted({r.expiry for r in ctx.options.chain()}),
                            "spot": bar.close}))
'''


def test_chain_rows_are_priced_from_the_bar_and_the_volatility_setting() -> None:
    bars = daily(5)
    [got] = run(CHAIN, bars, options=OptionsSettings(volatility=0.3, skew=0, smile=0))
    assert got["n"] == 2 * 41  # calls and puts on 2 x 20 + 1 strikes of one expiry
    first = got["rows"][0]  # type: ignore[index]
    symbol, underlying, expiry, right, strike, bid, ask, mark, iv, delta = first[:10]
    assert expiry in got["expiries"]  # type: ignore[operator]
    assert underlying == "AAA" and right in ("call", "put") and symbol.startswith("AAA")
    assert 0 < bid < ask and mark == pytest.approx((bid + ask) / 2)
    assert iv == pytest.approx(0.3, abs=1e-9)  # a flat smile: the setting itself
    assert -1 <= delta <= 1 and strike > 0
    assert len(got["expiries"]) >= 4  # type: ignore[arg-type]


EVERY_ORDER = '''
import json

def on_bar(ctx, bar):
    s = ctx.state
    i = ctx.bar_index
    if i == 1:
        s["spread"] = ctx.options.order("bull_put_spread", 2, expiry="30d", width=5)
    elif i == 2:
        rows = ctx.options.chain(expiry="30d")
        calls = [r for r in rows if r.right == "call"]
        atm = min(calls, key=lambda r: abs(r.strike - bar.close))
        wing = [r for r in calls if r.strike == atm.strike + 5][0]
        s["legs"] = ctx.options.order([(atm.symbol, "buy"), {"symbol": wing.symbol,
                                       "side": "sell"}], 1, limit=atm.ask - wing.bid + 0.5)
    elif i == 3:
        g = ctx.options.greeks()
        ctx.log(json.dumps({"greeks": list(g), "groups": [[x.id, len(x.legs), x.value]
                                                         for x in ctx.options.groups()]}))
        s["closing"] = ctx.options.close(s["spread"])
    elif i == 4:
        ctx.log(json.dumps({"groups": [x.id for x in ctx.options.groups()]}))

def on_fill(ctx, fill):
    ctx.log(json.dumps({"fill": [fill.order_id, fill.symbol, fill.side, fill.qty,
                                 fill.kind, str(fill.time)]}))
'''


def test_every_kind_of_options_order_fills_and_a_group_closes_as_one() -> None:
    bars = daily(8)
    logged = run(EVERY_ORDER, bars)
    fills = [x["fill"] for x in logged if "fill" in x]
    by_order: dict[str, list[list[object]]] = {}
    for f in fills:
        by_order.setdefault(str(f[0]), []).append(f)
    assert [len(v) for v in by_order.values()] == [2, 2, 2]  # open spread, legs, close
    spread, legs, closing = by_order.values()
    assert legs[0][3] == 1.0
    assert {f[3] for f in spread} == {2.0} and {f[4] for f in fills} == {"trade"}
    # the template's fills reached on_fill right after the hook, at the bar's time
    assert str(spread[0][5]) == str(bars[1].time)
    assert {f[1] for f in closing} == {f[1] for f in spread}
    assert {f[2] for f in closing} == {"buy" if f[2] == "sell" else "sell" for f in spread}
    [state] = [x for x in logged if "greeks" in x]
    delta, gamma, theta, vega = state["greeks"][:4]  # type: ignore[index]
    assert delta != 0 and vega != 0 and gamma != 0 and theta != 0  # two spreads held
    assert [n for _, n, _ in state["groups"]] == [2, 2]  # type: ignore[union-attr]
    [after] = [x for x in logged if "groups" in x and "greeks" not in x]
    assert after["groups"] == [list(by_order)[1]]  # the spread is closed, the legs remain


EXPIRY = '''
import json

def on_bar(ctx, bar):
    if ctx.bar_index == 0:
        ctx.options.order("straddle", 1, expiry="weekly")

def on_fill(ctx, fill):
    ctx.log(json.dumps([fill.kind, fill.symbol, fill.side, fill.qty, fill.price]))
'''


def test_expiry_exercise_and_expiry_worthless_reach_on_fill() -> None:
    bars = daily(20)
    logged = run(EXPIRY, bars)
    kinds = [x[0] for x in logged]
    assert kinds[:2] == ["trade", "trade"]
    settled = [x for x in logged if x[0] != "trade"]
    # one leg of the straddle is in the money at expiry (exercised into 100 shares), the
    # other expires worthless
    assert sorted({x[0] for x in settled}) == ["exercise", "expiry"]
    shares = [x for x in settled if x[1] == "AAA"]
    assert len(shares) == 1 and shares[0][3] == 100


def test_a_bad_template_parameter_is_named_at_the_strategy_line() -> None:
    source = ("def on_bar(ctx, bar):\n"
              "    ctx.options.order('iron_condor', 1, wingspan=5)\n")
    with pytest.raises(StrategyError, match=r"opt.py:2.*unknown parameter\(s\) wingspan"):
        run(source, daily(3))


def test_the_example_condor_in_a_sandboxed_worker_equals_in_process() -> None:
    """The same file, back-tested in a real sandboxed worker and in process, trades the
    same: the worker imports the options room before it confines itself."""
    source = (EXAMPLES / "iron_condor.py").read_text()
    bars = daily(200)
    request = BacktestRequest(strategy="iron_condor.py", data=[DataSpec(path="AAA")],
                              cash=100_000.0)
    sandboxed = SandboxRunner().run_source(source, request, {"AAA": bars})
    strategy = load_strategy_source(source, "iron_condor.py", restricted=True)
    local = run_backtest(strategy, {"AAA": bars}, cash=100_000.0)
    assert len(local.trades) >= 8, "the comparison is not vacuous"
    assert [(t.symbol, t.size, t.entry_price, t.exit_price) for t in sandboxed.trades] == \
        [(t.symbol, t.size, t.entry_price, t.exit_price) for t in local.trades]
