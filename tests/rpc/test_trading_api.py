"""TradingService over a real host: orders fill at the next bar, retries never trade twice,
bad input is refused with the field named, lists paginate, updates stream.

Orders trade AAA, priced by a first bar so that the broker can check them; the bar after an
order is what fills it (the default ``next_open`` fill profile).
"""

from __future__ import annotations

import math
from concurrent.futures import Future
from typing import Any

import grpc
import pytest

from sandtrade.client import Client, InvalidArgument
from sandtrade.host.runtime import HostRuntime
from sandtrade.models import Order, OrderStatus, OrderType
from sandtrade.v1 import common_pb2, trading_pb2, trading_pb2_grpc

from .conftest import (
    CASH,
    WAIT,
    Caller,
    Market,
    Metadata,
    StreamReader,
    field_violations,
    market_order,
)

BUY = common_pb2.ORDER_SIDE_BUY
SELL = common_pb2.ORDER_SIDE_SELL
Stub = trading_pb2_grpc.TradingServiceStub


def submit(trading: Stub, caller: Caller, request: trading_pb2.SubmitOrderRequest
           ) -> trading_pb2.SubmitOrderResponse:
    return trading.SubmitOrder(request, metadata=caller.metadata, timeout=WAIT)


def order_ids(trading: Stub, caller: Caller) -> list[str]:
    """Every order of the caller's account, in the order ListOrders gives them."""
    resp = trading.ListOrders(trading_pb2.ListOrdersRequest(page_size=1000),
                              metadata=caller.metadata, timeout=WAIT)
    assert not resp.next_page_token
    return [o.id for o in resp.orders]


PROBE = "probe"


def live_trade_updates(trading: Stub, caller: Caller
                       ) -> StreamReader[trading_pb2.StreamTradeUpdatesResponse]:
    """The caller's trade updates, returned once the stream is known to be subscribed.

    The server subscribes when the call arrives, which a client cannot observe; so probe with
    reduce-only sells of a symbol the account does not hold (rejected by the broker, changing
    nothing, tagged ``probe``) until one comes back on the stream. :func:`next_update` skips
    the probes' updates.
    """
    call = trading.StreamTradeUpdates(trading_pb2.StreamTradeUpdatesRequest(),
                                      metadata=caller.metadata, timeout=30)
    reader: StreamReader[trading_pb2.StreamTradeUpdatesResponse] = StreamReader(call)
    for _ in range(50):
        submit(trading, caller, market_order("BBB", 1, side=SELL, reduce_only=True, tag=PROBE))
        if reader.get_nowait() is not None:
            return reader
    reader.close()
    raise AssertionError("the trade update stream never delivered a probe order")


def next_update(updates: StreamReader[trading_pb2.StreamTradeUpdatesResponse]
                ) -> trading_pb2.StreamTradeUpdatesResponse:
    """The next update that is not a probe's."""
    while True:
        update = updates.get()
        if update.order.tag != PROBE:
            return update


# ------------------------------------------------------------------ filling


def test_market_order_fills_at_next_bar_open(trading: Stub, market: Market,
                                             alice: Caller) -> None:
    market.publish(100.0)
    order = submit(trading, alice, market_order("AAA", 10)).order
    assert order.status == common_pb2.ORDER_STATUS_ACCEPTED
    market.publish(101.0, close=103.0)

    filled = trading.GetOrder(trading_pb2.GetOrderRequest(order_id=order.id),
                              metadata=alice.metadata, timeout=WAIT).order
    assert filled.status == common_pb2.ORDER_STATUS_FILLED
    assert filled.filled_qty == 10
    assert filled.avg_fill_price == 101.0
    (position,) = trading.ListPositions(trading_pb2.ListPositionsRequest(),
                                        metadata=alice.metadata, timeout=WAIT).positions
    assert (position.symbol, position.qty, position.avg_price) == ("AAA", 10, 101.0)
    assert position.market_price == 103.0
    account = trading.GetAccount(trading_pb2.GetAccountRequest(), metadata=alice.metadata,
                                 timeout=WAIT).account
    assert account.cash == pytest.approx(CASH - 10 * 101.0)
    assert account.equity == pytest.approx(CASH - 10 * 101.0 + 10 * 103.0)


def test_order_does_not_fill_before_the_next_bar(trading: Stub, market: Market,
                                                 alice: Caller) -> None:
    market.publish(100.0)
    order = submit(trading, alice, market_order("AAA", 10)).order
    market.publish(50.0, symbol="BBB")  # another symbol's bar does not fill it

    got = trading.GetOrder(trading_pb2.GetOrderRequest(order_id=order.id),
                           metadata=alice.metadata, timeout=WAIT).order
    assert got.status == common_pb2.ORDER_STATUS_ACCEPTED
    assert got.filled_qty == 0


def test_resubmitted_client_order_id_returns_the_first_order_and_fills_once(
        trading: Stub, market: Market, alice: Caller) -> None:
    market.publish(100.0)
    first = submit(trading, alice, market_order("AAA", 10, client_order_id="retry-1"))
    again = submit(trading, alice, market_order("AAA", 10, client_order_id="retry-1"))
    market.publish(101.0)
    after_fill = submit(trading, alice, market_order("AAA", 10, client_order_id="retry-1"))

    assert not first.duplicate
    assert again.duplicate and after_fill.duplicate
    assert again.order.id == after_fill.order.id == first.order.id
    assert after_fill.order.status == common_pb2.ORDER_STATUS_FILLED
    assert order_ids(trading, alice) == [first.order.id]
    (position,) = trading.ListPositions(trading_pb2.ListPositionsRequest(),
                                        metadata=alice.metadata, timeout=WAIT).positions
    assert position.qty == 10


def test_concurrent_retries_of_one_client_order_id_create_one_order(
        trading: Stub, market: Market, alice: Caller) -> None:
    market.publish(100.0)
    calls = [trading.SubmitOrder.future(market_order("AAA", 10, client_order_id="once"),
                                        metadata=alice.metadata, timeout=WAIT)
             for _ in range(20)]

    answers = [c.result() for c in calls]
    assert len({a.order.id for a in answers}) == 1
    assert sum(not a.duplicate for a in answers) == 1
    assert order_ids(trading, alice) == [answers[0].order.id]


def test_same_client_order_id_in_two_accounts_makes_two_orders(
        trading: Stub, market: Market, alice: Caller, bob: Caller) -> None:
    market.publish(100.0)
    alices = submit(trading, alice, market_order("AAA", 1, client_order_id="shared"))
    bobs = submit(trading, bob, market_order("AAA", 1, client_order_id="shared"))

    assert not alices.duplicate and not bobs.duplicate
    assert alices.order.id != bobs.order.id


def test_order_the_broker_refuses_is_answered_as_rejected_with_the_reason(
        trading: Stub, market: Market, alice: Caller) -> None:
    market.publish(100.0)
    resp = submit(trading, alice, market_order("AAA", 10_000))

    assert resp.order.status == common_pb2.ORDER_STATUS_REJECTED
    assert "insufficient buying power" in resp.order.reject_reason
    assert order_ids(trading, alice) == [resp.order.id]


def test_order_can_be_found_by_client_order_id(trading: Stub, market: Market,
                                               alice: Caller) -> None:
    market.publish(100.0)
    order = submit(trading, alice, market_order("AAA", 10, client_order_id="mine")).order

    got = trading.GetOrder(trading_pb2.GetOrderRequest(client_order_id="mine"),
                           metadata=alice.metadata, timeout=WAIT).order
    assert got.id == order.id


# ------------------------------------------------------------------ order types


@pytest.mark.parametrize(("prices", "implied"), [
    ({"limit_price": 95.0}, common_pb2.ORDER_TYPE_LIMIT),
    ({"stop_price": 105.0}, common_pb2.ORDER_TYPE_STOP),
    ({"stop_price": 105.0, "limit_price": 106.0}, common_pb2.ORDER_TYPE_STOP_LIMIT),
    ({}, common_pb2.ORDER_TYPE_MARKET),
], ids=["limit", "stop", "stop_limit", "market"])
def test_an_order_without_a_type_gets_the_type_its_prices_imply(
        trading: Stub, market: Market, alice: Caller, prices: dict[str, Any],
        implied: int) -> None:
    market.publish(100.0)
    order = submit(trading, alice, market_order("AAA", 10, **prices)).order

    assert order.type == implied
    assert order.status == common_pb2.ORDER_STATUS_ACCEPTED, order.reject_reason


def test_a_type_that_contradicts_the_prices_is_refused_naming_the_type_they_make(
        trading: Stub, market: Market, alice: Caller) -> None:
    market.publish(100.0)
    with pytest.raises(grpc.RpcError) as err:
        submit(trading, alice, market_order("AAA", 10, type=common_pb2.ORDER_TYPE_MARKET,
                                            limit_price=95.0))

    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["limit_price"]
    assert err.value.details() == (
        "limit_price: limit_price=95.0 given for a market order; the prices given make a limit "
        "order: leave the type out (it follows from the prices) or use type 'limit'")
    assert order_ids(trading, alice) == []


def test_the_client_sends_a_limit_price_alone_as_a_limit_order(
        runtime: HostRuntime, market: Market, alice: Caller) -> None:
    market.publish(100.0)
    assert runtime.rpc is not None
    with Client(runtime.rpc.address, token=alice.token) as client:
        order = client.submit_order("AAA", "buy", 10, limit_price=95.0)
        stop = client.submit_order("AAA", "sell", 5, stop_price=90.0, limit_price=89.0)
        with pytest.raises(InvalidArgument, match="make a limit order"):
            client.submit_order("AAA", "buy", 10, type="market", limit_price=95.0)

    assert isinstance(order, Order) and isinstance(stop, Order)
    assert (order.type, order.status, order.limit_price) == (
        OrderType.LIMIT, OrderStatus.ACCEPTED, 95.0)
    assert (stop.type, stop.status) == (OrderType.STOP_LIMIT, OrderStatus.ACCEPTED)


# ------------------------------------------------------------------ bad input


BAD_ORDERS = [
    pytest.param(trading_pb2.SubmitOrderRequest(side=BUY, qty=1), "symbol",
                 id="missing_symbol"),
    pytest.param(trading_pb2.SubmitOrderRequest(symbol="AAA", qty=1), "side",
                 id="unspecified_side"),
    pytest.param(market_order("AAA", -5), "qty", id="negative_qty"),
    pytest.param(market_order("AAA", 0), "qty", id="zero_qty"),
    pytest.param(market_order("AAA", math.nan), "qty", id="nan_qty"),
    pytest.param(market_order("AAA", math.inf), "qty", id="infinite_qty"),
    pytest.param(trading_pb2.SubmitOrderRequest(symbol="AAA", side=BUY), "qty",
                 id="neither_qty_nor_equity_fraction"),
    pytest.param(trading_pb2.SubmitOrderRequest(symbol="AAA", side=BUY, equity_fraction=1.5),
                 "equity_fraction", id="equity_fraction_above_one"),
    pytest.param(market_order("AAA", 1, type=common_pb2.ORDER_TYPE_LIMIT), "limit_price",
                 id="limit_order_without_limit_price"),
    pytest.param(market_order("AAA", 1, type=common_pb2.ORDER_TYPE_STOP), "stop_price",
                 id="stop_order_without_stop_price"),
    pytest.param(market_order("AAA", 1, type=common_pb2.ORDER_TYPE_MARKET, limit_price=10.0),
                 "limit_price", id="limit_price_on_a_market_order"),
    pytest.param(market_order("AAA", 1, client_order_id="x" * 129), "client_order_id",
                 id="client_order_id_too_long"),
    pytest.param(market_order("AAA", 1, tag="x" * 129), "tag", id="tag_too_long"),
    pytest.param(market_order("AAA", 1, tif=99), "tif", id="unknown_time_in_force"),
    pytest.param(market_order("ZZZ", 1), "symbol", id="unknown_symbol"),
]


@pytest.mark.parametrize(("request_", "field"), BAD_ORDERS)
def test_invalid_order_is_refused_naming_the_field(
        trading: Stub, market: Market, alice: Caller,
        request_: trading_pb2.SubmitOrderRequest, field: str) -> None:
    market.publish(100.0)
    with pytest.raises(grpc.RpcError) as err:
        submit(trading, alice, request_)

    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == [field]
    assert order_ids(trading, alice) == []


def test_order_for_unknown_account_is_not_found(trading: Stub, market: Market,
                                                operator: Metadata) -> None:
    market.publish(100.0)
    with pytest.raises(grpc.RpcError) as err:
        trading.SubmitOrder(market_order("AAA", 1, account="nope"), metadata=operator,
                            timeout=WAIT)

    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'nope'" in (err.value.details() or "")


def test_account_of_unknown_account_is_not_found(trading: Stub, operator: Metadata) -> None:
    with pytest.raises(grpc.RpcError) as err:
        trading.GetAccount(trading_pb2.GetAccountRequest(account="nope"), metadata=operator,
                           timeout=WAIT)

    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_oversized_request_is_resource_exhausted(trading: Stub, market: Market,
                                                 alice: Caller) -> None:
    market.publish(100.0)
    with pytest.raises(grpc.RpcError) as err:
        submit(trading, alice, market_order("AAA", 1, tag="x" * (5 * 1024 * 1024)))

    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert order_ids(trading, alice) == []


def test_rejected_input_loses_no_accepted_order(trading: Stub, market: Market,
                                                alice: Caller) -> None:
    """Valid and invalid orders sent together (committed in the same batches) - the invalid
    ones are refused, every valid one is accepted and stored."""
    market.publish(100.0)
    good = [market_order("AAA", 1, client_order_id=f"good-{i}") for i in range(20)]
    bad = [market_order("ZZZ", 1), market_order("AAA", -1),
           market_order("AAA", 1, type=common_pb2.ORDER_TYPE_LIMIT),
           market_order("AAA", 1, tag="x" * (5 * 1024 * 1024))] * 5
    calls: list[Future[trading_pb2.SubmitOrderResponse]] = []
    for good_request, bad_request in zip(good, bad, strict=True):
        calls.append(trading.SubmitOrder.future(good_request, metadata=alice.metadata,
                                                timeout=WAIT))
        calls.append(trading.SubmitOrder.future(bad_request, metadata=alice.metadata,
                                                timeout=WAIT))

    answers = [c.result() if c.exception() is None else c.exception() for c in calls]
    accepted = [a.order.id for a in answers if isinstance(a, trading_pb2.SubmitOrderResponse)]
    refused = [a for a in answers if isinstance(a, grpc.RpcError)]
    assert len(accepted) == len(good) and len(refused) == len(bad)
    assert sorted(order_ids(trading, alice)) == sorted(accepted)
    listed = trading.ListOrders(trading_pb2.ListOrdersRequest(page_size=1000),
                                metadata=alice.metadata, timeout=WAIT).orders
    assert {o.client_order_id for o in listed} == {r.client_order_id for r in good}
    assert all(o.status == common_pb2.ORDER_STATUS_ACCEPTED for o in listed)


# ------------------------------------------------------------------ canceling


def test_cancel_of_working_order_cancels_it(trading: Stub, market: Market,
                                            alice: Caller) -> None:
    market.publish(100.0)
    order = submit(trading, alice, market_order("AAA", 10)).order

    canceled = trading.CancelOrder(trading_pb2.CancelOrderRequest(order_id=order.id),
                                   metadata=alice.metadata, timeout=WAIT).order
    market.publish(101.0)
    assert canceled.status == common_pb2.ORDER_STATUS_CANCELED
    got = trading.GetOrder(trading_pb2.GetOrderRequest(order_id=order.id),
                           metadata=alice.metadata, timeout=WAIT).order
    assert got.status == common_pb2.ORDER_STATUS_CANCELED and got.filled_qty == 0


def test_cancel_of_filled_order_is_failed_precondition(trading: Stub, market: Market,
                                                       alice: Caller) -> None:
    market.publish(100.0)
    order = submit(trading, alice, market_order("AAA", 10)).order
    market.publish(101.0)

    with pytest.raises(grpc.RpcError) as err:
        trading.CancelOrder(trading_pb2.CancelOrderRequest(order_id=order.id),
                            metadata=alice.metadata, timeout=WAIT)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "filled" in (err.value.details() or "")


def test_cancel_of_unknown_order_is_not_found(trading: Stub, alice: Caller) -> None:
    with pytest.raises(grpc.RpcError) as err:
        trading.CancelOrder(trading_pb2.CancelOrderRequest(order_id="o_nonexistent"),
                            metadata=alice.metadata, timeout=WAIT)

    assert err.value.code() == grpc.StatusCode.NOT_FOUND


# ------------------------------------------------------------------ listing


def test_list_orders_pages_through_every_order_once_in_creation_order(
        trading: Stub, market: Market, alice: Caller) -> None:
    market.publish(100.0)
    created = [submit(trading, alice, market_order("AAA", 1)).order.id for _ in range(7)]

    pages: list[list[str]] = []
    token = ""
    while True:
        resp = trading.ListOrders(trading_pb2.ListOrdersRequest(page_size=3, page_token=token),
                                  metadata=alice.metadata, timeout=WAIT)
        pages.append([o.id for o in resp.orders])
        token = resp.next_page_token
        if not token:
            break
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for page in pages for i in page] == created


@pytest.mark.parametrize("size", [-1, 1001])
def test_list_orders_refuses_page_size_out_of_range(trading: Stub, alice: Caller,
                                                    size: int) -> None:
    with pytest.raises(grpc.RpcError) as err:
        trading.ListOrders(trading_pb2.ListOrdersRequest(page_size=size),
                           metadata=alice.metadata, timeout=WAIT)

    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["page_size"]


def test_list_orders_refuses_page_token_of_another_listing(trading: Stub, market: Market,
                                                           alice: Caller, bob: Caller) -> None:
    market.publish(100.0)
    bobs = submit(trading, bob, market_order("AAA", 1)).order.id

    with pytest.raises(grpc.RpcError) as err:
        trading.ListOrders(trading_pb2.ListOrdersRequest(page_token=bobs),
                           metadata=alice.metadata, timeout=WAIT)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["page_token"]


def test_list_orders_filters_working_orders(trading: Stub, market: Market,
                                            alice: Caller) -> None:
    market.publish(100.0)
    filled = submit(trading, alice, market_order("AAA", 1)).order.id
    market.publish(100.0)
    working = submit(trading, alice, market_order("AAA", 1)).order.id

    resp = trading.ListOrders(trading_pb2.ListOrdersRequest(open_only=True),
                              metadata=alice.metadata, timeout=WAIT)
    assert [o.id for o in resp.orders] == [working]
    resp = trading.ListOrders(
        trading_pb2.ListOrdersRequest(status=common_pb2.ORDER_STATUS_FILLED),
        metadata=alice.metadata, timeout=WAIT)
    assert [o.id for o in resp.orders] == [filled]


# ------------------------------------------------------------------ streaming


def test_trade_updates_stream_the_accept_and_the_fill_of_an_order(
        trading: Stub, market: Market, alice: Caller) -> None:
    market.publish(100.0)
    updates = live_trade_updates(trading, alice)
    try:
        order = submit(trading, alice, market_order("AAA", 10)).order
        accepted = next_update(updates)
        market.publish(101.0)
        filled = next_update(updates)
    finally:
        updates.close()

    assert accepted.order.id == order.id
    assert accepted.order.status == common_pb2.ORDER_STATUS_ACCEPTED
    assert not accepted.HasField("fill")
    assert filled.order.id == order.id
    assert filled.order.status == common_pb2.ORDER_STATUS_FILLED
    assert (filled.fill.order_id, filled.fill.qty, filled.fill.price) == (order.id, 10, 101.0)


def test_trade_updates_stream_only_the_tokens_account(trading: Stub, market: Market,
                                                      alice: Caller, bob: Caller) -> None:
    market.publish(100.0)
    updates = live_trade_updates(trading, alice)
    try:
        submit(trading, bob, market_order("AAA", 10))
        mine = submit(trading, alice, market_order("AAA", 5)).order
        first = next_update(updates)
    finally:
        updates.close()

    assert first.order.id == mine.id
    assert first.order.account == "alice"
