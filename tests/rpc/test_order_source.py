"""Every door sets the source of the orders it places, and no request can name its own: a
gRPC call is ``grpc`` with its token's id, the Python client and the command line say who
they are in their metadata (``client``, ``cli``) but can claim nothing else, a strategy
run's orders are its strategy's, and the source comes back over gRPC (GetOrder, trade
updates) as the store keeps it."""

from __future__ import annotations

import grpc

from sandtrade import __version__
from sandtrade.client import Client
from sandtrade.host.runtime import HostRuntime
from sandtrade.models import OrderSource
from sandtrade.rpc import convert
from sandtrade.v1 import common_pb2, strategies_pb2_grpc, trading_pb2_grpc
from sandtrade.v1 import trading_pb2 as tpb

from .conftest import WAIT, Caller, Market, Metadata, market_order
from .test_strategies import eventually, start, upload

Trading = trading_pb2_grpc.TradingServiceStub


def _token_id(runtime: HostRuntime, token: str) -> str:
    assert runtime.auth is not None
    return runtime.auth.verify(token).token_id


def _submit(trading: Trading, metadata: Metadata) -> tpb.SubmitOrderResponse:
    return trading.SubmitOrder(market_order(), metadata=metadata, timeout=WAIT)


def test_a_grpc_order_is_sourced_grpc_with_the_token_id(
        trading: Trading, alice: Caller, runtime: HostRuntime) -> None:
    order = _submit(trading, alice.metadata).order
    assert order.source.kind == common_pb2.ORDER_SOURCE_KIND_GRPC
    assert order.source.ref == _token_id(runtime, alice.token)
    again = trading.GetOrder(tpb.GetOrderRequest(order_id=order.id), metadata=alice.metadata,
                             timeout=WAIT).order
    assert convert.source_from_pb(again.source) == OrderSource(
        kind="grpc", ref=_token_id(runtime, alice.token))


def test_the_client_and_the_cli_name_themselves_but_cannot_claim_another_door(
        trading: Trading, alice: Caller, runtime: HostRuntime) -> None:
    assert runtime.rpc is not None
    with Client(runtime.rpc.address, alice.token) as client:
        mine = client.submit_order("AAA", "buy", 1)
    assert mine.source == OrderSource(kind="client", ref=_token_id(runtime, alice.token),
                                      label=f"python/{__version__}")
    with Client(runtime.rpc.address, alice.token, agent="cli/9.9") as cli:
        assert cli.submit_order("AAA", "buy", 1).source.kind == "cli"  # type: ignore[union-attr]
    for claim in ("tradingview/1.0", "strategy/x", "replay/1", "python/1 evil", "x" * 300):
        order = _submit(trading, (*alice.metadata, ("x-sandtrade-client", claim))).order
        assert order.source.kind == common_pb2.ORDER_SOURCE_KIND_GRPC, claim
        assert order.source.label == "", claim


def test_streamed_orders_carry_the_stream_callers_source(
        trading: Trading, alice: Caller) -> None:
    requests = [tpb.SubmitOrderStreamRequest(order=market_order(client_order_id=f"s{i}"))
                for i in range(3)]
    answers = list(trading.SubmitOrderStream(
        iter(requests), metadata=(*alice.metadata, ("x-sandtrade-client", "python/1.2")),
        timeout=WAIT))
    assert [a.result.order.source.kind for a in answers] == \
        [common_pb2.ORDER_SOURCE_KIND_CLIENT] * 3


BUYER = """\
def on_bar(ctx, bar):
    if not ctx.state.get("done"):
        ctx.buy(1)
        ctx.state["done"] = True
"""


def test_a_strategys_orders_are_sourced_strategy_with_its_name(
        channel: grpc.Channel, trading: Trading, operator: Metadata, market: Market,
        runtime: HostRuntime) -> None:
    stub = strategies_pb2_grpc.StrategyServiceStub(channel)
    upload(stub, operator, "buyer-1", BUYER, account="s1")
    start(stub, operator, "buyer-1")
    market.publish(10.0)
    store = runtime.store
    assert store is not None
    orders = eventually(lambda: store.list_orders("s1"), bool, "the strategy's order")
    assert orders[0].source == OrderSource(kind="strategy", ref="buyer-1", label="buyer-1")
