"""MarketDataService: the hub's bars and quotes over gRPC."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc

from sandtrade.auth import Principal, TokenAuthority
from sandtrade.errors import Conflict, InvalidField, NotFound
from sandtrade.market.hub import FeedStatus, MarketHub
from sandtrade.models import Bar
from sandtrade.rpc import convert
from sandtrade.rpc.errors import relay, streaming, unary
from sandtrade.v1 import market_pb2 as mpb
from sandtrade.v1 import market_pb2_grpc

__all__ = ["MarketDataServicer"]

DEFAULT_CHUNK = 5000
MAX_CHUNK = 20_000


class MarketDataServicer(market_pb2_grpc.MarketDataServiceServicer):
    """History, live bars, quotes and the feed's state; any token with the ``read`` scope.

    :param feed_status: where the host's feed is (None: this host has no feed to report).
    """

    def __init__(self, hub: MarketHub, auth: TokenAuthority, *,
                 feed_status: Callable[[], FeedStatus | None] | None = None) -> None:
        self.hub = hub
        self.auth = auth
        self.feed_status = feed_status

    def _known(self, symbol: str) -> None:
        if not symbol:
            raise InvalidField("symbol", "required")
        if symbol not in self.hub.symbols():
            raise NotFound(f"no market data for symbol {symbol!r} (known: "
                           f"{', '.join(self.hub.symbols()) or 'none yet'})")

    @streaming
    def GetBars(self, request: mpb.GetBarsRequest, context: grpc.ServicerContext,
                principal: Principal) -> Iterator[mpb.GetBarsResponse]:
        principal.require_scope("read")
        self._known(request.symbol)
        if request.limit < 0:
            raise InvalidField("limit", f"must not be negative (got {request.limit})")
        chunk = request.chunk_size or DEFAULT_CHUNK
        if not 1 <= chunk <= MAX_CHUNK:
            raise InvalidField("chunk_size", f"must be between 1 and {MAX_CHUNK} "
                               f"(got {request.chunk_size})")
        start = convert.time_from_pb(request.start) if request.HasField("start") else None
        end = convert.time_from_pb(request.end) if request.HasField("end") else None
        bars = self.hub.bars(request.symbol, start, end, request.limit)
        for i in range(0, len(bars), chunk):
            resp = mpb.GetBarsResponse()
            for bar in bars[i:i + chunk]:
                convert.bar_to_pb(bar, resp.bars.add())
            yield resp

    @streaming
    def StreamBars(self, request: mpb.StreamBarsRequest, context: grpc.ServicerContext,
                   principal: Principal) -> Iterator[mpb.StreamBarsResponse]:
        principal.require_scope("read")

        def message(bar: Bar) -> mpb.StreamBarsResponse:
            resp = mpb.StreamBarsResponse()
            convert.bar_to_pb(bar, resp.bar)
            return resp

        yield from relay(context, self.hub.subscribe(request.symbols), message)

    @unary
    def GetLatestQuote(self, request: mpb.GetLatestQuoteRequest, context: grpc.ServicerContext,
                       principal: Principal) -> mpb.GetLatestQuoteResponse:
        principal.require_scope("read")
        self._known(request.symbol)
        quote = self.hub.latest_quote(request.symbol)
        if quote is None:
            raise NotFound(f"no quote for {request.symbol!r} yet")
        return mpb.GetLatestQuoteResponse(quote=convert.quote_to_pb(quote))

    @unary
    def ListSymbols(self, request: mpb.ListSymbolsRequest, context: grpc.ServicerContext,
                    principal: Principal) -> mpb.ListSymbolsResponse:
        principal.require_scope("read")
        return mpb.ListSymbolsResponse(symbols=self.hub.symbols())

    @unary
    def GetFeedStatus(self, request: mpb.GetFeedStatusRequest, context: grpc.ServicerContext,
                      principal: Principal) -> mpb.GetFeedStatusResponse:
        principal.require_scope("read")
        status = self.feed_status() if self.feed_status is not None else None
        if status is None:
            raise Conflict("this host has no market feed")
        return convert.feed_status_to_pb(status)
