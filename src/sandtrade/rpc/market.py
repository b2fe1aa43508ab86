"""MarketDataService: the hub's bars and quotes, option chains and greeks, over gRPC."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import grpc

from sandtrade.auth import Principal, TokenAuthority
from sandtrade.errors import Conflict, InvalidField, NotFound
from sandtrade.market.hub import FeedStatus, MarketHub
from sandtrade.models import Bar, Position
from sandtrade.options.chain import ChainRow, OptionChain
from sandtrade.options.greeks import account_greeks
from sandtrade.options.sources import OptionQuotes
from sandtrade.rpc import convert
from sandtrade.rpc.errors import relay, streaming, unary
from sandtrade.v1 import market_pb2 as mpb
from sandtrade.v1 import market_pb2_grpc

__all__ = ["MarketDataServicer", "chain_of", "chain_rows"]

DEFAULT_CHUNK = 5000
MAX_CHUNK = 20_000


class MarketDataServicer(market_pb2_grpc.MarketDataServiceServicer):
    """History, live bars, quotes and the feed's state; any token with the ``read`` scope.

    :param feed_status: where the host's feed is (None: this host has no feed to report).
    :param options: the host's option chains and quotes (None: it has none).
    :param positions: an account's positions as a principal may read them (the trading
        API's own check, ``TradingServicer.positions_op``), for GetOptionGreeks.
    """

    def __init__(self, hub: MarketHub, auth: TokenAuthority, *,
                 feed_status: Callable[[], FeedStatus | None] | None = None,
                 options: OptionQuotes | None = None,
                 positions: Callable[[Principal, str], list[Position]] | None = None) -> None:
        self.hub = hub
        self.auth = auth
        self.feed_status = feed_status
        self.options = options
        self.positions = positions

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

    @unary
    def GetOptionChain(self, request: mpb.GetOptionChainRequest, context: grpc.ServicerContext,
                       principal: Principal) -> mpb.GetOptionChainResponse:
        principal.require_scope("read")
        options = self._options()
        chain = chain_of(options, request.underlying)
        rows = chain_rows(chain, request.expiry or None,
                          request.min_strike if request.HasField("min_strike") else None,
                          request.max_strike if request.HasField("max_strike") else None,
                          request.strikes_around_spot)
        return convert.chain_to_pb(chain, rows, options.source.name)

    @unary
    def GetOptionGreeks(self, request: mpb.GetOptionGreeksRequest,
                        context: grpc.ServicerContext,
                        principal: Principal) -> mpb.GetOptionGreeksResponse:
        options = self._options()
        if self.positions is None:
            raise Conflict("this host does not serve positions")
        account = principal.require("read", request.account or None)
        held = self.positions(principal, account)
        entry = {p.symbol: p.avg_price for p in held}
        measured = account_greeks(held, options.row, options.last_price)
        out = mpb.GetOptionGreeksResponse(account=account, market_value=measured.market_value,
                                          unrealized_pnl=measured.unrealized_pnl)
        convert.greeks_to_pb(measured.delta, measured.gamma, measured.theta, measured.vega,
                             out.total)
        for p in sorted(measured.positions, key=lambda p: p.symbol):
            row = options.row(p.symbol) if p.symbol != p.underlying else None
            convert.position_greeks_to_pb(p, out.positions.add(), avg_price=entry[p.symbol],
                                          iv=None if row is None else row.iv)
        for underlying, (d, g, t, v) in sorted(measured.by_underlying().items()):
            convert.greeks_to_pb(d, g, t, v, out.underlyings.add(underlying=underlying).greeks)
        return out

    def _options(self) -> OptionQuotes:
        if self.options is None:
            raise Conflict("this host has no option chains (its broker was given its own "
                           "quote provider)")
        return self.options


def chain_of(options: OptionQuotes, underlying: str) -> OptionChain:
    """``underlying``'s chain now; INVALID_ARGUMENT without a name, NOT_FOUND when the host
    cannot price it (no price of the underlying yet, not in a recorded chain)."""
    if not underlying:
        raise InvalidField("underlying", "required")
    try:
        chain = options.chain(underlying.strip().upper())
    except ValueError as e:
        raise InvalidField("underlying", str(e)) from None
    if chain is None:
        price = options.last_price(underlying.strip().upper())
        why = ("it has no price yet" if price is None
               else f"the {options.source.name} chain source has none")
        raise NotFound(f"no option chain for {underlying!r}: {why}")
    return chain


def chain_rows(chain: OptionChain, expiry: str | None, min_strike: float | None,
               max_strike: float | None, around: int) -> list[ChainRow]:
    """The rows of ``chain`` a GetOptionChain request asks for (see its fields), by expiry,
    strike, the call first; each wrong field named."""
    if around < 0:
        raise InvalidField("strikes_around_spot", f"must not be negative (got {around})")
    for name, value in (("min_strike", min_strike), ("max_strike", max_strike)):
        if value is not None and not math.isfinite(value):
            raise InvalidField(name, f"must be a finite number (got {value})")
    if min_strike is not None and max_strike is not None and min_strike > max_strike:
        raise InvalidField("max_strike", f"{max_strike:g} is below min_strike {min_strike:g}")
    if expiry:
        try:
            expiries = [chain.select_expiry(expiry)]
        except ValueError as e:
            raise InvalidField("expiry", str(e)) from None
    else:
        expiries = chain.expiries()
    out: list[ChainRow] = []
    for when in expiries:
        rows = [r for r in chain.rows_for(when)
                if (min_strike is None or r.strike >= min_strike - 1e-9)
                and (max_strike is None or r.strike <= max_strike + 1e-9)]
        strikes = sorted({r.strike for r in rows})
        if around and chain.spot is not None and strikes:
            centre = min(range(len(strikes)), key=lambda k: abs(strikes[k] - (chain.spot or 0)))
            keep = set(strikes[max(0, centre - around):centre + around + 1])
            rows = [r for r in rows if r.strike in keep]
        out.extend(sorted(rows, key=lambda r: (r.strike, r.right.value != "call")))
    return out
