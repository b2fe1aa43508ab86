"""When a symbol's prices end (its source has no more bars and market.then is stop), the host
says so (gRPC GetFeedStatus, HTTP /health), expires the orders working on it and refuses new
ones with the reason, and a signal trading it fails with that reason instead of passing as
executed."""

from __future__ import annotations

import json
import time
import urllib.request

import grpc

from sandtrade.client import Client, SignalInfo
from sandtrade.host.runtime import HostRuntime
from sandtrade.v1 import common_pb2, market_pb2, market_pb2_grpc, trading_pb2, trading_pb2_grpc

from .conftest import WAIT, Caller, MakeToken, Market, market_order

ENDED = market_pb2.FEED_STATE_ENDED
REASON = ("no more prices for AAA: the steps ended at 2024-01-02 09:31 (bar 2 of 2); --then "
          "loop or synthetic keeps a market going")


def end_source(runtime: HostRuntime) -> None:
    """The source yields its last bar; return once the feed has dealt with its end."""
    assert runtime.source is not None and runtime.feed is not None
    runtime.source.push(None)  # type: ignore[attr-defined]
    assert runtime.feed.done.wait(WAIT), "the feed did not end"


def test_working_orders_expire_and_new_ones_are_refused_with_the_reason(
        runtime: HostRuntime, market: Market, trading: trading_pb2_grpc.TradingServiceStub,
        alice: Caller) -> None:
    market.publish(100.0)
    working = trading.SubmitOrder(market_order("AAA", 5, type=common_pb2.ORDER_TYPE_LIMIT,
                                               limit_price=90.0),
                                  metadata=alice.metadata, timeout=WAIT).order
    market.publish(101.0)
    pending = trading.SubmitOrder(market_order("AAA", 1), metadata=alice.metadata,
                                  timeout=WAIT).order
    assert (working.status, pending.status) == (common_pb2.ORDER_STATUS_ACCEPTED,) * 2

    end_source(runtime)

    for order in (working, pending):
        now = trading.GetOrder(trading_pb2.GetOrderRequest(order_id=order.id),
                               metadata=alice.metadata, timeout=WAIT).order
        assert (now.status, now.reject_reason) == (common_pb2.ORDER_STATUS_EXPIRED, REASON)
    late = trading.SubmitOrder(market_order("AAA", 1), metadata=alice.metadata,
                               timeout=WAIT).order
    assert (late.status, late.reject_reason) == (common_pb2.ORDER_STATUS_REJECTED, REASON)


def test_grpc_and_http_say_the_feed_ended(runtime: HostRuntime, market: Market,
                                          market_data: market_pb2_grpc.MarketDataServiceStub,
                                          alice: Caller) -> None:
    market.publish(100.0)
    status = market_data.GetFeedStatus(market_pb2.GetFeedStatusRequest(),
                                       metadata=alice.metadata, timeout=WAIT)
    assert (status.state, status.then, status.position) == (market_pb2.FEED_STATE_RUNNING,
                                                            "stop", 1)
    assert status.symbols[0].message == ("steps of AAA: bar 1 at 2024-01-02 09:30; when the "
                                         "data ends: stop")

    end_source(runtime)

    status = market_data.GetFeedStatus(market_pb2.GetFeedStatusRequest(),
                                       metadata=alice.metadata, timeout=WAIT)
    assert status.state == ENDED
    aaa, bbb = status.symbols
    assert (aaa.symbol, aaa.state, aaa.source_bars) == ("AAA", ENDED, 1)
    assert aaa.ended_at.ToDatetime().isoformat() == "2024-01-02T09:30:00"
    assert aaa.message == ("steps of AAA ended at 2024-01-02 09:30 (bar 1 of 1); orders on "
                           "AAA cannot fill")
    assert (bbb.symbol, bbb.state) == ("BBB", ENDED)
    assert bbb.message == "steps of BBB ended without a bar; orders on BBB cannot fill"
    assert runtime.http is not None
    with urllib.request.urlopen(f"{runtime.http.url}/health", timeout=WAIT) as resp:
        health = json.load(resp)
    assert health["status"] == "ok"
    assert health["market"]["state"] == "ended"
    assert health["market"]["symbols"]["AAA"]["message"] == aaa.message


def test_feed_status_needs_a_token_that_may_read(
        runtime: HostRuntime, market_data: market_pb2_grpc.MarketDataServiceStub,
        make_token: MakeToken, alice: Caller) -> None:
    signal_only = make_token("alice", ("signal",))
    try:
        market_data.GetFeedStatus(market_pb2.GetFeedStatusRequest(),
                                  metadata=(("authorization", f"Bearer {signal_only}"),),
                                  timeout=WAIT)
    except grpc.RpcError as e:
        assert e.code() is grpc.StatusCode.PERMISSION_DENIED
    else:
        raise AssertionError("GetFeedStatus answered a token without the read scope")


def test_a_signal_for_a_symbol_without_prices_fails_with_the_reason(
        runtime: HostRuntime, market: Market, make_token: MakeToken, alice: Caller) -> None:
    market.publish(100.0)
    market.publish(101.0)
    end_source(runtime)
    assert runtime.rpc is not None
    with Client(runtime.rpc.address, make_token("alice", ("signal", "read"))) as client:
        sent = client.send_signal("buy 1 AAA")
        assert isinstance(sent, SignalInfo)
        deadline = time.monotonic() + WAIT
        signal = client.get_signal(sent.id)
        while signal.status in ("received", "validated", "routed"):
            assert time.monotonic() < deadline, f"signal still {signal.status}"
            time.sleep(0.02)
            signal = client.get_signal(sent.id)
    assert signal.status == "failed"
    assert signal.reason.endswith(f"was rejected: {REASON}")
