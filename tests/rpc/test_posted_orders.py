"""A live strategy's orders are posted: ``ctx.buy()`` and ``ctx.close_position()`` write their
call and return at once, the worker never sleeping inside its hook for an answer.

So that nothing the strategy sees depends on that answer: the order's id is known in advance
(the run's prefix and a count, on both sides), ``close_position()`` answers from the
strategy's own view of its positions (the start's, then the fills its events bring), and a
refusal by the host is a line of its log at the place of the call, worded as a back-test
writes a rejected order's, never an exception later. A worker that posts any other call is
killed for breaking the protocol.
"""

from __future__ import annotations

import io
import sys
from datetime import datetime
from pathlib import Path

import grpc
import pytest

from sandtrade.host.runtime import HostRuntime
from sandtrade.models import Account, OrderSide
from sandtrade.rpc.door import TradingDoor
from sandtrade.sandbox.dispatch import join_posted_lines
from sandtrade.sandbox.wire import read_frame
from sandtrade.sandbox.worker.live_task import RemoteTrading
from sandtrade.strategy.context import FillView
from sandtrade.strategy.policy import StrategyLog
from sandtrade.v1 import strategies_pb2_grpc

from .conftest import Market, Metadata
from .test_strategies import eventually, log_lines, start, upload, wait_running

Stub = strategies_pb2_grpc.StrategyServiceStub
FAKE = Path(__file__).with_name("live_worker.py")

POSTS = """\
def on_bar(ctx, bar):
    n = ctx.state.get("n", 0)
    ctx.state["n"] = n + 1
    if n == 0:
        ctx.log("flat close", ctx.close_position())
        ctx.log("bought", ctx.buy(3))
        ctx.order("NOPE", "buy", 1)
        ctx.log("went on")
    elif n == 2:
        ctx.log("closing", ctx.close_position())


def on_fill(ctx, fill):
    ctx.log("fill", fill.order_id, fill.side, fill.qty)
"""


@pytest.fixture
def strategies(channel: grpc.Channel) -> Stub:
    return Stub(channel)


def said(lines: list[str]) -> list[str]:
    """The lines without ``ctx.log``'s time stamp."""
    return [line.split(" ", 1)[1] if line[:1].isdigit() else line for line in lines]


def test_posted_orders_have_the_ids_the_strategy_was_given(
        runtime: HostRuntime, strategies: Stub, operator: Metadata, market: Market) -> None:
    upload(strategies, operator, "poster", POSTS, account="post1")
    start(strategies, operator, "poster")
    wait_running(strategies, operator, "poster")
    for price in (100.0, 101.0, 102.0, 103.0):
        market.publish(price)  # lockstep: the strategy has handled the bar
    lines = said(eventually(lambda: log_lines(strategies, operator, "poster"),
                            lambda got: any(" sell " in x for x in got),
                            "the close never filled"))
    bought = next(x for x in lines if x.startswith("bought ")).split()[1]
    prefix = bought.rsplit("-", 1)[0] + "-"
    assert bought == f"{prefix}2", "the flat close counted as the run's first order"
    refused = [x for x in lines if " rejected: " in x]
    assert len(refused) == 1 and refused[0].startswith(
        f"order {prefix}3 (buy NOPE) rejected: symbol: unknown symbol 'NOPE'"), lines
    assert lines[lines.index(f"bought {bought}") + 1:][:2] == [refused[0], "went on"], \
        "the refusal is written where the call was, and the hook went on"
    assert "flat close None" in lines
    assert f"fill {prefix}2 buy 3.0" in lines
    assert f"closing {prefix}4" in lines
    assert f"fill {prefix}4 sell 3.0" in lines
    assert runtime.store is not None
    orders = {o.id: o for o in runtime.store.list_orders("post1")}
    assert set(orders) == {f"{prefix}2", f"{prefix}4"}, "a flat close places nothing"
    assert orders[f"{prefix}4"].reduce_only


def fill(fid: str, side: str, qty: float, symbol: str = "AAA") -> FillView:
    return FillView(fid, "o_1", symbol, side, qty, 100.0, 0.0, datetime(2024, 1, 2))


def test_the_view_of_positions_counts_each_fill_once() -> None:
    out = io.BytesIO()
    log = StrategyLog(1 << 20)
    trading = RemoteTrading(io.BytesIO(), out, log=log, order_prefix="o_run-",
                            positions={"AAA": 5.0}, fills_after="f_0000000000100ffffffff")
    trading.saw_fill(fill("f_000000000009000000000", "buy", 5))  # held at the start
    trading.saw_fill(fill("f_0000000000100ffffffff", "buy", 5))  # the mark itself
    assert trading.positions == {"AAA": 5.0}
    trading.saw_fill(fill("f_000000000011000000000", "sell", 2))
    trading.saw_fill(fill("f_000000000012000000000", "buy", 1, "BBB"))
    assert trading.positions == {"AAA": 3.0, "BBB": 1.0}
    log.lines.append("a line before the close")
    order = trading.close_position("AAA")
    assert order is not None and (order.id, order.side) == ("o_run-1", OrderSide.SELL)
    trading.saw_fill(fill("f_000000000013000000000", "sell", 3))
    assert trading.positions == {"BBB": 1.0}
    assert trading.close_position("AAA") is None, "flat in the view"
    unmarked = RemoteTrading(io.BytesIO(), io.BytesIO(), positions={})
    unmarked.saw_fill(fill("f1", "sell", 2))  # a broker whose ids do not sort by time
    assert unmarked.positions == {"AAA": -2.0}
    out.seek(0)
    sent = [read_frame(out)[0] for _ in range(2)]
    assert [(f["op"], f["args"], f["post"], f["at"]) for f in sent] == [
        ("close", {"symbol": "AAA"}, 1, 1), ("close", {"symbol": "AAA"}, 1, 1)], \
        "a close is sent even when the view is flat: the host closes what it holds"


def test_refusals_join_the_lines_where_the_calls_were() -> None:
    done: dict[str, object] = {"type": "done", "logs": ["a", "b", "c"]}
    join_posted_lines(done, [(0, "first"), (2, "after b"), (2, "after b too"), (99, "late"),
                       ("x", "odd"), (3, "after c")])
    # In call order where two name the same place; a place out of range (only a hostile
    # worker sends one) is the end.
    assert done["logs"] == ["first", "a", "b", "after b", "after b too", "c", "late", "odd",
                            "after c"]
    quiet: dict[str, object] = {"type": "done"}
    join_posted_lines(quiet, [(5, "only")])
    assert quiet["logs"] == ["only"]


def fake_run_ends(runtime: HostRuntime, strategies: Stub, operator: Metadata, market: Market,
                  mode: str, why: str) -> list[str]:
    """Run the fake worker of ``live_worker.py`` in ``mode`` on one bar; its log once a line
    holds ``why`` (the test fails if none comes)."""
    runtime.strategies.supervisor.worker_command = (sys.executable, "-I", str(FAKE))
    upload(strategies, operator, "sly", f"def on_bar(ctx, bar):\n    pass\n# {mode}\n",
           account="mallory")
    start(strategies, operator, "sly")
    wait_running(strategies, operator, "sly")
    market.publish(100.0)
    return eventually(lambda: log_lines(strategies, operator, "sly", tail=1000),
                      lambda lines: any(why in x for x in lines),
                      f"the fake worker in mode {mode!r} was not stopped for it")


def test_a_worker_that_posts_any_other_call_is_killed(
        runtime: HostRuntime, strategies: Stub, operator: Metadata, market: Market) -> None:
    """What a worker could do after an escape: post a call that must be answered."""
    got = fake_run_ends(runtime, strategies, operator, market, "posted cancel",
                        "a posted call must be one of")
    assert any("sly: the sandbox worker broke the protocol: a posted call must be one of "
               "close, submit, got 'cancel'" in x for x in got), got


def test_a_worker_that_keeps_posting_past_its_quota_is_stopped(
        runtime: HostRuntime, strategies: Stub, operator: Metadata, market: Market) -> None:
    """A posted order needs no answer, so nothing slows a worker sending them in a loop: past
    the quota its orders are refused (one line says so), past twice the quota it is killed,
    the reason naming the quota; the host's work for it is bounded either way."""
    got = fake_run_ends(runtime, strategies, operator, market, "posted flood",
                        "went on sending orders")
    assert any("stopped by the sandbox (quota): quota: 1,000 ctx calls in one on_bar "
               "(strategy_ctx_calls): it went on sending orders past it, 2,000 in this event"
               in x for x in got), got


def test_a_start_tells_the_worker_without_changing_the_broker(runtime: HostRuntime) -> None:
    """The snapshot a worker starts from reads the broker and changes nothing in it: an
    account only in the store (never traded) is not loaded by a start (the dashboard shows an
    account once it exists in the broker)."""
    assert runtime.auth is not None and runtime.trading is not None
    assert runtime.store is not None and runtime.live is not None
    runtime.store.create_account(Account(id="fresh", cash=1_000.0, initial_cash=1_000.0))
    principal = runtime.auth.verify(runtime.operator_token_path.read_text().strip())
    door = TradingDoor(runtime.trading, principal, "fresh", "starter-0a1b2c")
    told = door.snapshot()
    assert told["positions"] == {}
    assert told["order_prefix"].startswith("o_") and told["order_prefix"].endswith("-")
    assert told["fills_after"].startswith("f_")
    assert not runtime.live.call(lambda b: b.has_account("fresh"))
