"""Order classes over gRPC: a bracket sent through a real server, its exits listed once the
entry fills, one cancels the other; the same through the client and the CLI."""

from __future__ import annotations

import json

import grpc
import pytest

from sandtrade.cli import main
from sandtrade.client import Client
from sandtrade.host.runtime import HostRuntime
from sandtrade.models import ExitSpec, OrderClass, OrderStatus, OrderType
from sandtrade.v1 import common_pb2, strategies_pb2_grpc, trading_pb2, trading_pb2_grpc

from .conftest import WAIT, Caller, Market, field_violations, market_order
from .test_strategies import eventually, start, stop, upload, wait_running

Stub = trading_pb2_grpc.TradingServiceStub


def orders(trading: Stub, caller: Caller) -> list[trading_pb2.Order]:
    return list(trading.ListOrders(trading_pb2.ListOrdersRequest(page_size=1000),
                                   metadata=caller.metadata, timeout=WAIT).orders)


def test_bracket_through_the_server_lists_its_exits_after_the_entry_fills(
        trading: Stub, market: Market, alice: Caller) -> None:
    market.publish(100.0)
    request = market_order("AAA", 10)
    request.take_profit.price = 110.0
    request.stop_loss.percent = 5.0
    entry = trading.SubmitOrder(request, metadata=alice.metadata, timeout=WAIT).order
    assert entry.order_class == common_pb2.ORDER_CLASS_BRACKET
    assert (entry.take_profit.price, entry.stop_loss.percent) == (110.0, 5.0)
    assert [o.id for o in orders(trading, alice)] == [entry.id]  # no exits yet

    market.publish(102.0)

    stop, take = [o for o in orders(trading, alice) if o.parent_id == entry.id]
    assert (stop.type, stop.stop_price, stop.qty) == (common_pb2.ORDER_TYPE_STOP,
                                                      pytest.approx(96.9), 10)
    assert (take.type, take.limit_price) == (common_pb2.ORDER_TYPE_LIMIT, 110.0)
    assert {stop.status, take.status} == {common_pb2.ORDER_STATUS_ACCEPTED}

    market.publish(105.0, high=111.0)

    by_id = {o.id: o for o in orders(trading, alice)}
    assert by_id[take.id].status == common_pb2.ORDER_STATUS_FILLED
    assert by_id[stop.id].status == common_pb2.ORDER_STATUS_CANCELED
    assert "one cancels other" in by_id[stop.id].reject_reason


def test_bracket_with_exits_on_the_wrong_side_is_refused_naming_the_field(
        trading: Stub, market: Market, alice: Caller) -> None:
    market.publish(100.0)
    request = market_order("AAA", 10)
    request.take_profit.price = 90.0
    request.stop_loss.price = 95.0
    with pytest.raises(grpc.RpcError) as e:
        trading.SubmitOrder(request, metadata=alice.metadata, timeout=WAIT)
    assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "take_profit" in field_violations(e.value)

    request = market_order("AAA", 10)
    request.take_profit.price = 110.0
    request.take_profit.percent = 2.0
    with pytest.raises(grpc.RpcError) as e:
        trading.SubmitOrder(request, metadata=alice.metadata, timeout=WAIT)
    assert "take_profit" in field_violations(e.value)


def test_client_trailing_stop_and_oco(runtime: HostRuntime, market: Market,
                                      alice: Caller) -> None:
    market.publish(100.0)
    with Client(runtime.rpc.address, token=alice.token) as client:
        entry = client.submit_order("AAA", "buy", 10, trail_percent=5.0)
        assert entry.order_class is OrderClass.OTO  # type: ignore[union-attr]
        market.publish(100.0, high=110.0)
        (trail,) = client.legs(entry.id)  # type: ignore[union-attr]
        assert (trail.type, trail.hwm, trail.stop_price) == (
            OrderType.TRAILING_STOP, 110.0, pytest.approx(104.5))
        client.cancel_order(entry.id)  # the filled entry's exit goes with it
        assert client.get_order(trail.id).status is OrderStatus.CANCELED

        take = client.submit_order("AAA", "sell", 10, order_class="oco", take_profit=120.0,
                                   stop_loss=ExitSpec(price=95.0))
        assert (take.type, take.limit_price) == (OrderType.LIMIT, 120.0)  # type: ignore[union-attr]
        (stop,) = client.legs(take.id)  # type: ignore[union-attr]
        market.publish(94.0)
        assert client.get_order(stop.id).status is OrderStatus.FILLED
        assert client.get_order(take.id).status is OrderStatus.CANCELED  # type: ignore[union-attr]


def test_cli_buy_with_tp_and_sl(runtime: HostRuntime, market: Market, alice: Caller,
                                capsys: pytest.CaptureFixture[str]) -> None:
    market.publish(190.0)
    code = main(["buy", "AAA", "10", "--tp", "200", "--sl", "180", "--json",
                 "--grpc", runtime.rpc.address, "--token", alice.token])
    out = capsys.readouterr().out
    assert code == 0, out
    (order,) = json.loads(out)
    assert (order["order_class"], order["take_profit"]["price"],
            order["stop_loss"]["price"]) == ("bracket", 200.0, 180.0)

    code = main(["buy", "AAA", "10", "--tp", "200", "--tp-percent", "2",
                 "--grpc", runtime.rpc.address, "--token", alice.token])
    assert code == 1
    assert "--tp-percent" in capsys.readouterr().err


LIVE_BRACKET = """\
def on_bar(ctx, bar):
    if not ctx.state.get("ordered"):
        ctx.buy(10, sl_percent=5, tp=110)
        ctx.state["ordered"] = True
"""


def test_live_strategy_bracket_goes_through_the_worker(
        trading: Stub, operator: tuple[tuple[str, str], ...], market: Market,
        channel: grpc.Channel) -> None:
    """``ctx.buy(sl_percent=, tp=)`` in a sandboxed live run: the worker sends the exits,
    the host checks them and the broker makes a bracket, as in a back-test."""
    stub = strategies_pb2_grpc.StrategyServiceStub(channel)
    upload(stub, operator, "bracketeer", LIVE_BRACKET, account="s1")
    start(stub, operator, "bracketeer")
    wait_running(stub, operator, "bracketeer")

    def s1_orders() -> list[trading_pb2.Order]:
        return list(trading.ListOrders(trading_pb2.ListOrdersRequest(account="s1"),
                                       metadata=operator, timeout=WAIT).orders)

    market.publish(100.0)
    (entry,) = eventually(s1_orders, lambda o: len(o) == 1, "the strategy's entry")
    assert entry.order_class == common_pb2.ORDER_CLASS_BRACKET
    market.publish(100.0)  # the entry fills at 100: stop loss 95, take profit 110
    market.publish(104.0, high=112.0)

    exits = [o for o in s1_orders() if o.parent_id == entry.id]
    assert [(o.type, o.status) for o in exits] == [
        (common_pb2.ORDER_TYPE_STOP, common_pb2.ORDER_STATUS_CANCELED),
        (common_pb2.ORDER_TYPE_LIMIT, common_pb2.ORDER_STATUS_FILLED)]
    assert exits[0].stop_price == pytest.approx(95.0)
    stop(stub, operator, "bracketeer")
