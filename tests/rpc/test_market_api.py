"""MarketDataService over a real host: history of the bars published so far, live bars, quotes;
and the standard health and reflection services next to it."""

from __future__ import annotations

from datetime import UTC, datetime

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sandtrade.models import Bar
from sandtrade.v1 import common_pb2, market_pb2, market_pb2_grpc

from .conftest import WAIT, Caller, Market, StreamReader, field_violations

Stub = market_pb2_grpc.MarketDataServiceStub


def timestamp(t: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(t.replace(tzinfo=UTC))
    return ts


def as_bar(m: common_pb2.Bar) -> Bar:
    return Bar(m.symbol, m.time.ToDatetime(), m.open, m.high, m.low, m.close, m.volume)


def get_bars(market_data: Stub, caller: Caller, **fields: object) -> list[list[Bar]]:
    """GetBars' answer as its chunks of bars."""
    responses = market_data.GetBars(market_pb2.GetBarsRequest(**fields),
                                    metadata=caller.metadata, timeout=WAIT)
    return [[as_bar(b) for b in r.bars] for r in responses]


def publish_series(market: Market, count: int, symbol: str = "AAA") -> list[Bar]:
    return [market.publish(100.0 + i, symbol=symbol) for i in range(count)]


# ------------------------------------------------------------------ history


def test_get_bars_returns_the_published_bars_in_chunks(market_data: Stub, market: Market,
                                                       alice: Caller) -> None:
    bars = publish_series(market, 7)

    chunks = get_bars(market_data, alice, symbol="AAA", chunk_size=3)
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert [b for c in chunks for b in c] == bars


def test_get_bars_returns_only_bars_already_published(market_data: Stub, market: Market,
                                                      alice: Caller) -> None:
    first = publish_series(market, 3)
    assert [b for c in get_bars(market_data, alice, symbol="AAA") for b in c] == first

    later = publish_series(market, 2)
    assert [b for c in get_bars(market_data, alice, symbol="AAA") for b in c] == first + later


def test_get_bars_keeps_symbols_apart(market_data: Stub, market: Market,
                                      alice: Caller) -> None:
    aaa = market.publish(100.0, symbol="AAA")
    bbb = market.publish(50.0, symbol="BBB")

    assert get_bars(market_data, alice, symbol="AAA") == [[aaa]]
    assert get_bars(market_data, alice, symbol="BBB") == [[bbb]]


def test_get_bars_range_includes_start_and_excludes_end(market_data: Stub, market: Market,
                                                        alice: Caller) -> None:
    bars = publish_series(market, 6)

    chunks = get_bars(market_data, alice, symbol="AAA", start=timestamp(bars[1].time),
                      end=timestamp(bars[4].time))
    assert [b for c in chunks for b in c] == bars[1:4]


def test_get_bars_limit_without_start_gives_the_newest(market_data: Stub, market: Market,
                                                       alice: Caller) -> None:
    bars = publish_series(market, 6)

    chunks = get_bars(market_data, alice, symbol="AAA", limit=2)
    assert [b for c in chunks for b in c] == bars[-2:]


def test_get_bars_limit_with_start_gives_the_oldest_from_start(
        market_data: Stub, market: Market, alice: Caller) -> None:
    bars = publish_series(market, 6)

    chunks = get_bars(market_data, alice, symbol="AAA", start=timestamp(bars[2].time), limit=2)
    assert [b for c in chunks for b in c] == bars[2:4]


def test_get_bars_of_unknown_symbol_is_not_found(market_data: Stub, market: Market,
                                                 alice: Caller) -> None:
    market.publish(100.0)
    with pytest.raises(grpc.RpcError) as err:
        get_bars(market_data, alice, symbol="ZZZ")

    assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize(("field", "value"), [("chunk_size", -1), ("chunk_size", 20_001),
                                             ("limit", -1)])
def test_get_bars_refuses_out_of_range_argument_naming_it(
        market_data: Stub, market: Market, alice: Caller, field: str, value: int) -> None:
    market.publish(100.0)
    with pytest.raises(grpc.RpcError) as err:
        get_bars(market_data, alice, symbol="AAA", **{field: value})

    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == [field]


def test_get_bars_needs_a_token(market_data: Stub, market: Market) -> None:
    market.publish(100.0)
    with pytest.raises(grpc.RpcError) as err:
        list(market_data.GetBars(market_pb2.GetBarsRequest(symbol="AAA"), timeout=WAIT))

    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


# ------------------------------------------------------------------ quotes and symbols


def test_latest_quote_is_the_last_close(market_data: Stub, market: Market,
                                        alice: Caller) -> None:
    market.publish(100.0, close=101.0)
    last = market.publish(102.0, close=104.5)

    quote = market_data.GetLatestQuote(market_pb2.GetLatestQuoteRequest(symbol="AAA"),
                                       metadata=alice.metadata, timeout=WAIT).quote
    assert (quote.symbol, quote.bid, quote.ask) == ("AAA", 104.5, 104.5)
    assert quote.time.ToDatetime() == last.time


def test_latest_quote_of_unknown_symbol_is_not_found(market_data: Stub, market: Market,
                                                     alice: Caller) -> None:
    market.publish(100.0)
    with pytest.raises(grpc.RpcError) as err:
        market_data.GetLatestQuote(market_pb2.GetLatestQuoteRequest(symbol="ZZZ"),
                                   metadata=alice.metadata, timeout=WAIT)

    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_list_symbols_names_the_symbols_with_bars(market_data: Stub, market: Market,
                                                  alice: Caller) -> None:
    market.publish(50.0, symbol="BBB")
    market.publish(100.0, symbol="AAA")

    resp = market_data.ListSymbols(market_pb2.ListSymbolsRequest(), metadata=alice.metadata,
                                   timeout=WAIT)
    assert list(resp.symbols) == ["AAA", "BBB"]


# ------------------------------------------------------------------ live bars


def test_stream_bars_delivers_published_bars_of_its_symbols(market_data: Stub, market: Market,
                                                            alice: Caller) -> None:
    call = market_data.StreamBars(market_pb2.StreamBarsRequest(symbols=["AAA"]),
                                  metadata=alice.metadata, timeout=30)
    stream: StreamReader[market_pb2.StreamBarsResponse] = StreamReader(call)
    try:
        # The server subscribes when the call arrives, which a client cannot observe: publish
        # AAA bars until one comes through.
        for _ in range(50):
            market.publish(100.0)
            first = stream.get_nowait()
            if first is not None:
                break
        else:
            raise AssertionError("the bar stream never delivered a bar")
        bbb = market.publish(50.0, symbol="BBB")
        bar = market.publish(101.0, 102.0, 99.0, 100.5, volume=1234.0)
        received = [as_bar(first.bar)]
        while received[-1] != bar:
            received.append(as_bar(stream.get().bar))
    finally:
        stream.close()

    assert bbb not in received
    assert all(b in market.published and b.symbol == "AAA" for b in received)


# ------------------------------------------------------------------ health and reflection


@pytest.mark.parametrize("service", ["", "sandtrade.v1.TradingService",
                                     "sandtrade.v1.MarketDataService"])
def test_health_check_reports_serving(channel: grpc.Channel, service: str) -> None:
    health = health_pb2_grpc.HealthStub(channel)

    resp = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=WAIT)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services(channel: grpc.Channel) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)

    (resp,) = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=WAIT)
    names = {s.name for s in resp.list_services_response.service}
    assert {"sandtrade.v1.TradingService", "sandtrade.v1.MarketDataService",
            "grpc.health.v1.Health"} <= names
