"""Multi-leg options orders over gRPC: legs on SubmitOrder and Order with a status per leg,
the client's submit_multileg, no partial multi-leg in trade updates, fills' kinds."""

from __future__ import annotations

import contextlib
import threading
import time

import grpc
import pytest

from broker.options_table import QuoteTable, occ
from sandtrade.client import Client
from sandtrade.host.runtime import HostRuntime
from sandtrade.models import FillKind, OrderClass, OrderStatus
from sandtrade.v1 import common_pb2, trading_pb2, trading_pb2_grpc

from .conftest import Caller, Market, field_violations

C100, C105, P95, P90 = (occ(100, root="AAA"), occ(105, root="AAA"),
                        occ(95, "P", root="AAA"), occ(90, "P", root="AAA"))
CONDOR = [{"symbol": P90, "side": "buy"}, {"symbol": P95, "side": "sell"},
          {"symbol": C105, "side": "sell"}, {"symbol": C100, "side": "buy"}]


@pytest.fixture
def table(runtime: HostRuntime) -> QuoteTable:
    """Option quotes for AAA's contracts, given to the host's broker."""
    quotes = QuoteTable({C100: (2.9, 3.1), C105: (1.4, 1.6), P95: (1.9, 2.1), P90: (0.9, 1.1)})
    assert runtime.live is not None
    runtime.live.call(lambda b: b.set_quote_provider(quotes))
    return quotes


def test_the_host_prices_legs_from_its_own_chain_once_the_underlying_has_a_price(
        runtime: HostRuntime, market: Market, alice: Caller) -> None:
    """With no option data configured, the host's synthetic chain ([options]) quotes every
    contract of an underlying the feed prices: a leg whose underlying has no bar yet is
    refused naming it; once it has one, the condor fills at the natural price of the quotes
    the broker reads (each leg's ask bought, bid sold)."""
    assert runtime.rpc is not None and runtime.options is not None
    with Client(runtime.rpc.address, token=alice.token) as client:
        order = client.submit_multileg(CONDOR, 1)
        assert order.status is OrderStatus.REJECTED
        assert order.reject_reason == f"no quote for {P90}"

        market.publish(100.0)
        quotes = {leg["symbol"]: runtime.options.quote(leg["symbol"]) for leg in CONDOR}
        assert all(q is not None and 0 < q.bid < q.ask for q in quotes.values()), quotes
        order = client.submit_multileg(CONDOR, 1)
    assert order.status is OrderStatus.FILLED, order.reject_reason
    natural = sum((q.ask if leg["side"] == "buy" else -q.bid)
                  for leg in CONDOR for q in [quotes[leg["symbol"]]])
    assert order.avg_fill_price == pytest.approx(natural, abs=1e-9), (order, natural)


def test_an_iron_condor_over_grpc_fills_with_its_four_legs_and_no_partial_update(
        runtime: HostRuntime, market: Market, alice: Caller, table: QuoteTable) -> None:
    market.publish(100.0)
    assert runtime.rpc is not None
    seen: list[tuple[str, int, str]] = []
    kinds: set[FillKind] = set()
    with Client(runtime.rpc.address, token=alice.token) as client:
        updates = client.trade_updates()

        def watch() -> None:
            with contextlib.suppress(Exception):  # the client closing ends the stream
                for update in updates:
                    seen.append((update.order.status.value, len(update.order.legs or ()),
                                 update.fill.symbol if update.fill else ""))
                    if update.fill is not None:
                        kinds.add(update.fill.kind)

        threading.Thread(target=watch, daemon=True).start()
        # a canary order shows the stream is subscribed before the spread is sent
        deadline = time.monotonic() + 30
        while not seen and time.monotonic() < deadline:
            client.submit_order("AAA", "buy", 1, limit_price=50.0)
            time.sleep(0.05)
        canaries = len(seen)
        order = client.submit_multileg(CONDOR, 2, limit_price=1.00)
        while len([s for s in seen[canaries:] if s[2]]) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)

        assert order.order_class is OrderClass.MLEG and order.status is OrderStatus.FILLED
        assert order.avg_fill_price == pytest.approx(0.9)
        assert [lg.symbol for lg in order.legs or ()] == [P90, P95, C105, C100]
    # every update carries the order filled: never a partial multi-leg
    spread = [s for s in seen[canaries:] if s[1] == 4]
    assert [s[2] for s in spread if s[2]] == [P90, P95, C105, C100]
    assert all(s[0] in ("accepted", "filled") for s in spread)
    assert all(s[0] == "filled" for s in spread if s[2])
    assert kinds == {FillKind.TRADE}


def test_order_legs_carry_a_status_each(runtime: HostRuntime, market: Market, alice: Caller,
                                        table: QuoteTable,
                                        trading: trading_pb2_grpc.TradingServiceStub) -> None:
    market.publish(100.0)
    request = trading_pb2.SubmitOrderRequest(
        order_class=common_pb2.ORDER_CLASS_MLEG, qty=1, limit_price=0.50,
        tif=common_pb2.TIME_IN_FORCE_GTC, client_order_id="spread-1",
        legs=[common_pb2.Leg(symbol=C100, side=common_pb2.ORDER_SIDE_BUY),
              common_pb2.Leg(symbol=C105, side=common_pb2.ORDER_SIDE_SELL)])
    working = trading.SubmitOrder(request, metadata=alice.metadata).order
    assert working.status == common_pb2.ORDER_STATUS_ACCEPTED
    assert [(x.leg.symbol, x.status, x.filled_qty) for x in working.legs] == [
        (C100, common_pb2.ORDER_STATUS_ACCEPTED, 0), (C105, common_pb2.ORDER_STATUS_ACCEPTED, 0)]
    again = trading.SubmitOrder(request, metadata=alice.metadata)
    assert again.duplicate and again.order.id == working.id

    table.set(C100, 1.8, 1.9)
    market.publish(100.0)  # a bar of the underlying works its spreads
    got = trading.GetOrder(trading_pb2.GetOrderRequest(order_id=working.id),
                           metadata=alice.metadata).order
    assert got.status == common_pb2.ORDER_STATUS_FILLED
    assert [(x.status, x.filled_qty) for x in got.legs] == [
        (common_pb2.ORDER_STATUS_FILLED, 1), (common_pb2.ORDER_STATUS_FILLED, 1)]


def test_a_malformed_multileg_order_is_invalid_argument_naming_the_field(
        runtime: HostRuntime, alice: Caller, table: QuoteTable,
        trading: trading_pb2_grpc.TradingServiceStub) -> None:
    request = trading_pb2.SubmitOrderRequest(
        order_class=common_pb2.ORDER_CLASS_MLEG, qty=1,
        legs=[common_pb2.Leg(symbol=C100, side=common_pb2.ORDER_SIDE_BUY, ratio=2),
              common_pb2.Leg(symbol=C105, side=common_pb2.ORDER_SIDE_SELL, ratio=4)])
    with pytest.raises(grpc.RpcError) as caught:
        trading.SubmitOrder(request, metadata=alice.metadata)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "ratios 2:4 are not in lowest terms" in (caught.value.details() or "")
    assert field_violations(caught.value) == ["legs"]


def test_a_group_closes_as_one_through_the_client(runtime: HostRuntime, market: Market,
                                                   alice: Caller, table: QuoteTable) -> None:
    market.publish(100.0)
    assert runtime.rpc is not None
    with Client(runtime.rpc.address, token=alice.token) as client:
        opened = client.submit_multileg(CONDOR, 1)
        closed = client.submit_multileg([], close_group=opened.id)
        assert closed.status is OrderStatus.FILLED and closed.parent_id == opened.id
        assert client.positions() == [] or all(p.qty == 0 for p in client.positions())
