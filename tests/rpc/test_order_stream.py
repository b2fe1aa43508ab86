"""SubmitOrderStream and Client.submit_orders: many orders over one stream, one answer each."""

from __future__ import annotations

import sqlite3

from sandtrade.client import Client, InvalidArgument, PermissionDenied
from sandtrade.host.runtime import HostRuntime
from sandtrade.models import Order, OrderStatus

from .conftest import Caller, Market


def client_for(runtime: HostRuntime, caller: Caller) -> Client:
    assert runtime.rpc is not None
    return Client(runtime.rpc.address, caller.token, retry_for=1.0)


def test_a_stream_answers_every_order_in_order_and_stores_each_once(
        runtime: HostRuntime, market: Market, alice: Caller) -> None:
    market.publish(100.0)
    specs = [{"symbol": "AAA", "side": "buy", "qty": 1, "client_order_id": f"s{i}"}
             for i in range(300)]
    with client_for(runtime, alice) as client:
        results = list(client.submit_orders(specs))
    assert [r.client_order_id for r in results if isinstance(r, Order)] == \
        [s["client_order_id"] for s in specs]
    assert all(isinstance(r, Order) and r.status is OrderStatus.ACCEPTED for r in results)
    db = sqlite3.connect(runtime.data_dir / "sandtrade.db")
    (n,) = db.execute("SELECT COUNT(DISTINCT client_order_id) FROM orders WHERE account = ?",
                      (alice.account,)).fetchone()
    assert n == 300


def test_a_bad_order_in_a_stream_is_refused_alone(runtime: HostRuntime, market: Market,
                                                  alice: Caller, bob: Caller) -> None:
    market.publish(100.0)
    specs = [
        {"symbol": "AAA", "side": "buy", "qty": 1, "client_order_id": "good-1"},
        {"symbol": "ZZZ", "side": "buy", "qty": 1, "client_order_id": "unknown-symbol"},
        {"symbol": "AAA", "side": "buy", "qty": 1, "type": "limit", "client_order_id": "no-px"},
        {"symbol": "AAA", "side": "buy", "qty": 1, "account": bob.account,
         "client_order_id": "not-mine"},
        {"symbol": "AAA", "side": "buy", "qty": 1, "account": "nobody",
         "client_order_id": "no-account"},
        {"symbol": "AAA", "side": "sell", "qty": 1, "client_order_id": "good-2"},
    ]
    with client_for(runtime, alice) as client:
        results = list(client.submit_orders(specs))
    assert isinstance(results[0], Order) and isinstance(results[5], Order)
    assert isinstance(results[1], InvalidArgument) and results[1].field == "symbol"
    assert isinstance(results[2], InvalidArgument) and results[2].field == "limit_price"
    assert isinstance(results[3], PermissionDenied)
    assert isinstance(results[4], PermissionDenied), "alice's token acts for alice alone"


def test_a_resent_stream_executes_nothing_twice(runtime: HostRuntime, market: Market,
                                                alice: Caller) -> None:
    market.publish(100.0)
    specs = [{"symbol": "AAA", "side": "buy", "qty": 2, "client_order_id": f"r{i}"}
             for i in range(20)]
    with client_for(runtime, alice) as client:
        first = list(client.submit_orders(specs))
        again = list(client.submit_orders(specs))
        market.publish(101.0)
        position = client.positions()[0]
    assert [o.id for o in first if isinstance(o, Order)] == \
        [o.id for o in again if isinstance(o, Order)]
    assert position.qty == 40
