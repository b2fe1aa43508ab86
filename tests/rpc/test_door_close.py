"""``ctx.close_position()`` through a strategy run's door: one call, in which the host reads
the position and places its reduce-only market order under the broker's lock (nothing can
trade the account in between). The reply comes from the broker's memory; the call is durable
once the door's ``settle`` says so (the run's event ends only then)."""

from __future__ import annotations

import queue
from typing import Any

import pytest

from rpc.conftest import WAIT, Market
from sandtrade.host.runtime import HostRuntime
from sandtrade.rpc.door import TradingDoor


def call(door: TradingDoor, op: str, **args: Any) -> dict[str, Any]:
    """The door's reply frame to one call (it may come from the broker's commit thread)."""
    replies: queue.Queue[dict[str, Any]] = queue.Queue()
    door.handle(op, args, replies.put)
    reply = replies.get(timeout=WAIT)
    assert replies.empty(), "a call is answered exactly once"
    return reply


@pytest.fixture
def door(runtime: HostRuntime) -> TradingDoor:
    assert runtime.auth is not None and runtime.trading is not None
    principal = runtime.auth.verify(runtime.operator_token_path.read_text().strip())
    return TradingDoor(runtime.trading, principal, "paper", "closer-0a1b2c")


def buy(door: TradingDoor, qty: float, side: str = "buy") -> dict[str, Any]:
    reply = call(door, "submit", symbol="AAA", side=side, type="market", tif="gtc", qty=qty)
    assert "error" not in reply, reply
    return reply["result"]


def test_close_places_one_reduce_only_order_for_the_whole_position(
        runtime: HostRuntime, market: Market, door: TradingDoor) -> None:
    market.publish(100.0)
    buy(door, 7)
    market.publish(101.0)  # fills the buy at the open

    reply = call(door, "close", symbol="AAA")
    order = reply["result"]
    assert (order["side"], order["qty"], order["type"], order["reduce_only"]) == \
        ("sell", 7.0, "market", True)
    assert order["source"]["kind"] == "strategy" and order["source"]["ref"] == "closer"
    settled: queue.Queue[str | None] = queue.Queue()
    assert door.settle(settled.put), "the close waits for its group commit"
    assert settled.get(timeout=WAIT) is None
    assert runtime.store is not None
    stored = runtime.store.get_order(order["id"])
    assert stored is not None and stored.reduce_only, "durable once settled"
    assert not door.settle(settled.put), "nothing more of this event to wait for"

    market.publish(102.0)
    assert call(door, "close", symbol="AAA") == {"type": "reply", "result": None}, \
        "flat: nothing to close, no order"
    assert runtime.live is not None
    assert runtime.live.call(lambda b: b.position_qty("paper", "AAA")) == 0.0


def test_close_of_a_short_buys_it_back(market: Market, door: TradingDoor) -> None:
    market.publish(50.0)
    buy(door, 3, side="sell")
    market.publish(50.0)
    order = call(door, "close", symbol="AAA")["result"]
    assert (order["side"], order["qty"]) == ("buy", 3.0)


def test_close_refuses_a_symbol_that_is_not_a_string(door: TradingDoor) -> None:
    assert call(door, "close", symbol=["AAA"]) == {"type": "reply",
                                                   "error": "symbol must be a string"}
