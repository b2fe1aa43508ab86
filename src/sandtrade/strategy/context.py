"""``ctx``: the strategy's only door to the outside.

A strategy sees market data through ``ctx.history``/``ctx.ta``, trades through ``ctx.buy``,
``ctx.sell``, ``ctx.order``, ``ctx.cancel`` and ``ctx.close_position``, trades options through
``ctx.options`` (chains, multi-leg orders from a template or explicit legs, greeks, closing a
position group), and reads its state through ``ctx.position``, ``ctx.account`` and
``ctx.orders``. Everything it gets back is plain data: floats, strings, tuples and small
read-only records.

Fills reach ``on_fill``: those a bar caused before the bar's ``on_bar``, and those an order
made at once (a multi-leg order fills when it is placed, at its legs' quotes) right after the
hook that placed it. A fill's ``kind`` says what made it: ``trade``, or an option's
``exercise``, ``assignment`` or ``expiry`` at its expiry date's session end.

It is one file because the sandbox hides only ``_`` names from a strategy: ``ctx.ta``,
``ctx.options`` and the runner functions at the end reach the context's private state, which
only this module may touch, so splitting it would make that state public to strategies.

The context trades through a :class:`Trading` port. In a back-test that port is the paper
broker in the same process; in live paper trading it is the gRPC API. The strategy file is the
same in both.
"""

from __future__ import annotations

import functools
import math
import sys
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol

from sandtrade.models import (
    Bar,
    ExitSpec,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    TimeInForce,
)
from sandtrade.strategy import ta as _ta
from sandtrade.strategy.indicators import check_length, settings_of
from sandtrade.strategy.pine import PineRuntime
from sandtrade.strategy.pine_builtins import MathFunctions
from sandtrade.strategy.plots import PlotOutbox, PlotRecorder

__all__ = ["API_TYPES", "AccountView", "Context", "FillView", "GreeksView", "GroupView",
           "OptionRowView", "Options", "OrderView", "PositionView", "SignalView",
           "SymbolHistory", "Trading", "advance", "fills_made", "plots_of", "symbol_history",
           "take_fills"]

#: ``buy()`` with no size: all of the buying power, in whole units. Not 0.9999: backtesting.py
#: uses 1 - epsilon, and sizing with 0.9999 buys one share less now and then.
FULL_EQUITY = 1 - sys.float_info.epsilon
#: Bars kept per symbol for ``ctx.history`` and late indicators; grows on request.
DEFAULT_HISTORY = 512


class Trading(Protocol):
    """What the context needs from a broker, for one account."""

    def submit(self, symbol: str, side: OrderSide, qty: float | None, *,
               equity_fraction: float | None, type: OrderType, limit_price: float | None,
               stop_price: float | None, tif: str, reduce_only: bool,
               tag: str | None, take_profit: ExitSpec | None = None,
               stop_loss: ExitSpec | None = None, trail_price: float | None = None,
               trail_percent: float | None = None) -> Order:
        """Submit an order; returns it accepted or rejected. Exits and a trail make it a
        bracket (both exits) or an oto (one exit) order, as the broker infers."""
        ...

    def cancel(self, order_id: str) -> bool:
        """Cancel a working order; False when it is no longer working."""
        ...

    def close_position(self, symbol: str) -> Order | None:
        """Close the whole position in ``symbol`` with a reduce-only market order (GTC),
        the position read and the order placed in one step; None when flat."""
        ...

    def signal(self, body: str) -> tuple[str, str, str]:
        """Send ``body`` as a signal of the account, as an alert would be sent: journaled,
        routed and executed by the host's signal pipeline. ``(id, status, reason)``."""
        ...

    def position(self, symbol: str) -> PositionView:
        """The position in ``symbol`` (flat when none)."""
        ...

    def account(self) -> AccountView:
        """Cash, equity and buying power now."""
        ...

    def open_orders(self) -> list[Order]:
        """Working orders, in submission order."""
        ...

    def option_chain(self, symbol: str, expiry: str | None) -> list[OptionRowView]:
        """``symbol``'s option chain now (one expiry, as ``expiry`` selects it, or all)."""
        ...

    def option_order(self, symbol: str, template: str | None, legs: list[dict[str, Any]],
                     qty: float, *, limit_price: float | None, tif: str, tag: str | None,
                     params: dict[str, Any]) -> tuple[Order, list[Fill]]:
        """Submit a multi-leg order: template ``template`` on ``symbol`` built from the chain
        now with ``params``, or the explicit ``legs``. Returns the order and the fills it
        made at once."""
        ...

    def option_close(self, group_id: str, *, limit_price: float | None, tag: str | None
                     ) -> tuple[Order, list[Fill]]:
        """Close the account's position group ``group_id`` as one order."""
        ...

    def option_greeks(self) -> GreeksView:
        """The account's greeks, market value and unrealised P&L now."""
        ...

    def option_groups(self) -> list[GroupView]:
        """The account's open position groups."""
        ...


class PositionView(NamedTuple):
    """A position as the strategy sees it. ``qty`` is negative for a short."""

    symbol: str
    qty: float
    avg_price: float
    market_price: float
    unrealized_pnl: float
    realized_pnl: float

    @property
    def is_long(self) -> bool:
        """True when holding a long position."""
        return self.qty > 0

    @property
    def is_short(self) -> bool:
        """True when holding a short position."""
        return self.qty < 0


class AccountView(NamedTuple):
    """The account as the strategy sees it."""

    cash: float
    equity: float
    buying_power: float
    realized_pnl: float
    commissions: float


class OrderView(NamedTuple):
    """A working order as the strategy sees it."""

    id: str
    symbol: str
    side: str
    type: str
    qty: float
    filled_qty: float
    limit_price: float | None
    stop_price: float | None
    status: str
    tag: str | None


class FillView(NamedTuple):
    """A fill of one of the strategy's orders."""

    id: str
    order_id: str
    symbol: str
    side: str
    qty: float
    price: float
    commission: float
    time: datetime

    #: What made the fill: ``trade``; or, for an option at its expiry date's session end,
    #: ``exercise`` (a long option in the money), ``assignment`` (a short one) or ``expiry``
    #: (worthless). The shares an exercise or assignment delivers carry the same kind.
    kind: str = "trade"

    @classmethod
    def of(cls, fill: Fill) -> FillView:
        """The strategy's view of a broker fill."""
        return cls(fill.id, fill.order_id, fill.symbol, fill.side.value, fill.qty, fill.price,
                   fill.commission, fill.time, fill.kind.value)


class OptionRowView(NamedTuple):
    """One contract of a chain (``ctx.options.chain``): its quote and greeks per share;
    None where the chain gave nothing. ``expiry`` is an ISO date, ``right`` call or put."""

    symbol: str
    underlying: str
    expiry: str
    right: str
    strike: float
    bid: float
    ask: float
    mark: float
    iv: float | None
    delta: float | None
    gamma: float | None
    theta: float | None
    vega: float | None


class GreeksView(NamedTuple):
    """The account's position greeks summed (``ctx.options.greeks()``): delta in shares,
    theta per day and vega per volatility point, in dollars, as the options room gives them."""

    delta: float
    gamma: float
    theta: float
    vega: float
    market_value: float
    unrealized_pnl: float


class GroupView(NamedTuple):
    """An open position group: the legs one multi-leg order opened, still held.

    ``legs`` pairs each symbol with the signed units held (contracts, shares); ``value`` is
    what the legs are worth now at their marks, in dollars (negative: closing it costs)."""

    id: str
    legs: tuple[tuple[str, float], ...]
    value: float


#: The largest body ``ctx.signal`` sends (the webhook takes larger ones; a strategy's alerts
#: are a line or a small JSON object).
MAX_SIGNAL_BYTES = 16 << 10


class SignalSent(NamedTuple):
    """What ``ctx.signal`` got back: the journaled signal's id, its status (``received``,
    ``validated``, ..., ``rejected`` with the ``reason``), or ``not_sent`` in a back-test."""

    id: str
    status: str
    reason: str


class SignalView(NamedTuple):
    """An external signal routed to the strategy (``on_signal``), e.g. a TradingView alert.

    ``action`` is what the sender asked for (buy, sell, close, long, short, flat, or a word
    of the sender's own); ``qty`` and ``price`` are None when the signal did not say.
    """

    id: str
    source: str
    symbol: str
    action: str
    qty: float | None
    price: float | None
    comment: str
    time: datetime | None


class SymbolHistory:
    """One symbol's bars that a context holds (oldest first) and the updaters of the indicators
    on that symbol, each called with every new bar and its index."""

    __slots__ = ("bars", "updaters")

    def __init__(self, size: int) -> None:
        self.bars: deque[Bar] = deque(maxlen=size)
        self.updaters: list[Callable[[Bar, int], None]] = []


def _check_number(name: str, value: object, *, positive: bool = True) -> float:
    if type(value) not in (int, float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)  # type: ignore[arg-type]
    if not math.isfinite(v) or (positive and v <= 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return v


def _exit(name: str, price: object, pct_name: str, percent: object) -> ExitSpec | None:
    if price is not None and percent is not None:
        raise ValueError(f"give {name} (a price) or {pct_name} (percent from the entry's "
                         "fill price), not both")
    if price is not None:
        return ExitSpec(price=_check_number(name, price))
    if percent is not None:
        return ExitSpec(percent=_check_number(pct_name, percent))
    return None


def _exits(sl: object, tp: object, sl_percent: object, tp_percent: object,
           trail_percent: object, trail_price: object
           ) -> tuple[ExitSpec | None, ExitSpec | None, float | None, float | None]:
    """``(stop_loss, take_profit, trail_percent, trail_price)`` from ``buy``'s arguments."""
    stop_loss = _exit("sl", sl, "sl_percent", sl_percent)
    take_profit = _exit("tp", tp, "tp_percent", tp_percent)
    t_pct = None if trail_percent is None else _check_number("trail_percent", trail_percent)
    t_px = None if trail_price is None else _check_number("trail_price", trail_price)
    if (t_pct is not None or t_px is not None) and (stop_loss or take_profit):
        raise ValueError("a trailing stop (trail_percent/trail_price) is the only exit of its "
                         "order: it cannot be a bracket leg (Alpaca's rule); drop sl/tp")
    if t_pct is not None and t_pct >= 100:
        raise ValueError(f"trail_percent must be below 100, got {trail_percent!r}")
    return stop_loss, take_profit, t_pct, t_px


_TIFS = frozenset(t.value for t in TimeInForce)


def _check_tif(value: object) -> str:
    """A time in force, checked here rather than by the broker: a live run's order is posted
    (its worker does not wait for the host), so a bad one must fail at the call, in a
    back-test and live alike."""
    tif = _check_str("tif", value)
    if tif not in _TIFS:
        raise ValueError(f"tif must be one of {', '.join(sorted(_TIFS))}, got {tif!r}")
    return tif


def _check_str(name: str, value: object) -> str:
    if type(value) is not str:
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    return value


def _indicator(kind: str, make: Callable[[str, str, int], tuple[_ta.Series, Any]],
               default_length: int | None, default_source: str, doc: str) -> Any:
    """A ``ctx.ta`` method: the cached series on every call after the first.

    The cache lookup is inlined in each method (not a call to ``TA._series``) because a
    strategy calls its indicators on every bar.
    """

    def method(self: TA, length: Any = default_length, source: Any = default_source, *,
               symbol: str | None = None) -> _ta.Series:
        if type(length) is int:
            hit = self._cache.get((self._ctx.symbol if symbol is None else symbol, kind,
                                   source, length))
            if hit is not None:
                return hit  # type: ignore[no-any-return]
        if length is None:
            raise TypeError(f"ta.{kind}() needs a length, e.g. ta.{kind}(20)")
        return self._series(kind, length, source, symbol, make)

    method.__name__ = method.__qualname__ = kind
    method.__doc__ = doc
    return method


class TA:
    """``ctx.ta``: indicators on the current symbol (or ``symbol=``), cached per arguments."""

    __slots__ = ("_cache", "_ctx")

    crossover = staticmethod(_ta.crossover)
    crossunder = staticmethod(_ta.crossunder)
    cross = staticmethod(_ta.cross)

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._cache: dict[tuple[Any, ...], Any] = {}

    def _get(self, key: tuple[Any, ...], make: Callable[[], tuple[Any, Any]]) -> Any:
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        ctx = self._ctx
        series, update = make()
        data = symbol_history(ctx, key[0])
        start = ctx.bar_index - len(data.bars) + 1
        for k, bar in enumerate(data.bars):  # warm up from the bars still held
            update(bar, start + k)
        data.updaters.append(update)
        ctx._series.append(series)
        self._cache[key] = series
        return series

    def _sym(self, symbol: str | None) -> str:
        return self._ctx.symbol if symbol is None else _check_str("symbol", symbol)

    @staticmethod
    def _length(length: object) -> int:
        if type(length) is not int or not 1 <= length <= 10_000:  # type: ignore[operator]
            raise ValueError(f"length must be a whole number from 1 to 10000, got {length!r}")
        return length  # type: ignore[return-value]

    @staticmethod
    def _source(source: object) -> str:
        if source not in _ta.FIELDS:
            raise ValueError(f"source must be one of {', '.join(_ta.FIELDS)}, got {source!r}")
        return source  # type: ignore[return-value]

    def _series(self, kind: str, length: object, source: object, symbol: str | None,
                make: Callable[[str, str, int], tuple[_ta.Series, Any]]) -> _ta.Series:
        """The cached series ``kind(source, length)`` of a symbol, created on first use."""
        if type(length) is int:
            hit = self._cache.get((self._ctx.symbol if symbol is None else symbol, kind,
                                   source, length))
            if hit is not None:
                return hit  # type: ignore[no-any-return]
        sym, n, src = self._sym(symbol), self._length(length), self._any_source(source)
        if src in _ta.FIELDS:
            return self._get((sym, kind, src, n),  # type: ignore[no-any-return]
                             lambda: make(f"{kind}({src},{n})", src, n))
        read = _ta.SOURCES[src]  # a derived price (hl2, ...): the value-fed core on it
        return self._get((sym, kind, src, n),  # type: ignore[no-any-return]
                         lambda: _ta.make_fed(f"{kind}({src},{n})",
                                              _ta.INDICATORS[kind](n), lambda b: (read(b),)))

    @staticmethod
    def _any_source(source: object) -> str:
        if source not in _ta.SOURCES:
            raise ValueError(f"source must be one of {', '.join(_ta.SOURCES)}, got {source!r}")
        return source  # type: ignore[return-value]

    def _fed(self, key: tuple[Any, ...], name: str, core: Callable[[], Any],
             read: Callable[[Bar], tuple[float, ...]], parts: tuple[str, ...] = ()) -> Any:
        """The cached bar-fed indicator ``key`` (symbol first): a value-fed core fed ``read(bar)``
        on every bar of the symbol, as one series or a tuple of them (``parts``)."""
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        made = self._get(key, lambda: _ta.make_fed(name, core(), read, parts))
        if parts:  # the warm-up counts each line
            self._ctx._series.remove(made)
            self._ctx._series.extend(made)
        return made

    sma = _indicator("sma", _ta.make_sma, None, "close",
                     "Simple moving average (Pine ``ta.sma``).")
    ema = _indicator("ema", _ta.make_ema, None, "close",
                     "Exponential moving average (Pine ``ta.ema``).")
    rma = _indicator("rma", _ta.make_rma, None, "close",
                     "Wilder's moving average (Pine ``ta.rma``).")
    rsi = _indicator("rsi", _ta.make_rsi, 14, "close",
                     "Relative strength index, 0..100 (Pine ``ta.rsi``).")

    def atr(self, length: int = 14, *, symbol: str | None = None) -> _ta.Series:
        """Average true range (Pine ``ta.atr``)."""
        return self._series("atr", length, "close", symbol,
                            lambda name, _src, n: _ta.make_atr(f"atr({n})", n))

    stdev = _indicator("stdev", _ta.make_stdev, None, "close",
                       "Population standard deviation (Pine ``ta.stdev``).")
    highest = _indicator("highest", functools.partial(_ta.make_extreme, highest=True), None,
                         "high", "Highest value over ``length`` bars, the current one "
                         "included (Pine ``ta.highest``).")
    lowest = _indicator("lowest", functools.partial(_ta.make_extreme, highest=False), None,
                        "low", "Lowest value over ``length`` bars, the current one included "
                        "(Pine ``ta.lowest``).")

    def bb(self, length: int = 20, mult: float = 2.0, source: str = "close", *,
           symbol: str | None = None) -> _ta.Bands:
        """Bollinger bands ``(middle, upper, lower)`` (Pine ``ta.bb``)."""
        sym, n, src = self._sym(symbol), self._length(length), self._source(source)
        m = _check_number("mult", mult)

        def make() -> tuple[Any, Any]:
            bands, update = _ta.make_bollinger(f"bb({src},{n},{m:g})", src, n, m)
            return bands, update

        key = (sym, "bb", src, n, m)
        hit = self._cache.get(key)
        if hit is None:
            hit = self._get(key, make)
            self._ctx._series.remove(hit)
            self._ctx._series.extend(hit)
        return hit  # type: ignore[no-any-return]

    # ------------------------------------------------------------ on the value-fed cores

    def wma(self, length: int, source: str = "close", *, symbol: str | None = None
            ) -> _ta.Series:
        """Weighted moving average, weights length … 1 from the newest bar (Pine ``ta.wma``)."""
        sym, n, src = self._sym(symbol), self._length(length), self._any_source(source)
        read = _ta.SOURCES[src]
        return self._fed((sym, "wma", src, n), f"wma({src},{n})", lambda: _ta.Wma(n),
                         lambda b: (read(b),))

    def vwma(self, length: int, source: str = "close", *, symbol: str | None = None
             ) -> _ta.Series:
        """Volume-weighted moving average, ``sma(source * volume) / sma(volume)`` (Pine
        ``ta.vwma``)."""
        sym, n, src = self._sym(symbol), self._length(length), self._any_source(source)
        read = _ta.SOURCES[src]
        return self._fed((sym, "vwma", src, n), f"vwma({src},{n})", lambda: _ta.Vwma(n),
                         lambda b: (read(b), b.volume))

    def macd(self, fast: int = 12, slow: int = 26, signal: int = 9, source: str = "close", *,
             symbol: str | None = None) -> _ta.MacdLines:
        """MACD ``(macd, signal, hist)``: ``ema(fast) - ema(slow)``, its ``ema(signal)`` and
        their difference (Pine ``ta.macd``)."""
        sym, src = self._sym(symbol), self._any_source(source)
        f, sl, sg = self._length(fast), self._length(slow), self._length(signal)
        read = _ta.SOURCES[src]
        lines = self._fed((sym, "macd", src, f, sl, sg), f"macd({src},{f},{sl},{sg})",
                          lambda: _ta.Macd(f, sl, sg), lambda b: (read(b),),
                          _ta.MacdLines._fields)
        return _ta.MacdLines(*lines)

    def stoch(self, length: int = 14, source: str = "close", *, symbol: str | None = None
              ) -> _ta.Series:
        """Stochastic %K (raw), ``100 * (source - lowest low) / (highest high - lowest low)``
        over ``length`` bars (Pine ``ta.stoch(close, high, low, length)``); smooth it with
        ``ctx.ta.stream("sma", 3)`` for %D."""
        sym, n, src = self._sym(symbol), self._length(length), self._any_source(source)
        read = _ta.SOURCES[src]
        return self._fed((sym, "stoch", src, n), f"stoch({src},{n})", lambda: _ta.Stoch(n),
                         lambda b: (read(b), b.high, b.low))

    def tr(self, handle_na: bool = False, *, symbol: str | None = None) -> _ta.Series:
        """True range (Pine ``ta.tr``); on the first bar nan, or ``high - low`` with
        ``handle_na=True``."""
        sym = self._sym(symbol)
        if type(handle_na) is not bool:
            raise TypeError(f"handle_na must be True or False, got {handle_na!r}")
        return self._fed((sym, "tr", handle_na), f"tr({handle_na})",
                         lambda: _ta.Tr(handle_na), lambda b: (b.high, b.low, b.close))

    def change(self, length: int = 1, source: str = "close", *, symbol: str | None = None
               ) -> _ta.Series:
        """``source - source[length]`` (Pine ``ta.change``)."""
        sym, n, src = self._sym(symbol), self._length(length), self._any_source(source)
        read = _ta.SOURCES[src]
        return self._fed((sym, "change", src, n), f"change({src},{n})",
                         lambda: _ta.Change(n), lambda b: (read(b),))

    def mom(self, length: int = 10, source: str = "close", *, symbol: str | None = None
            ) -> _ta.Series:
        """Momentum, ``source - source[length]`` (Pine ``ta.mom``)."""
        sym, n, src = self._sym(symbol), self._length(length), self._any_source(source)
        read = _ta.SOURCES[src]
        return self._fed((sym, "mom", src, n), f"mom({src},{n})", lambda: _ta.Mom(n),
                         lambda b: (read(b),))

    def cci(self, length: int = 20, source: str = "hlc3", *, symbol: str | None = None
            ) -> _ta.Series:
        """Commodity channel index, ``(source - sma) / (0.015 * mean deviation)`` (Pine
        ``ta.cci``; the typical price ``hlc3`` by default, as the CCI indicator)."""
        sym, n, src = self._sym(symbol), self._length(length), self._any_source(source)
        read = _ta.SOURCES[src]
        return self._fed((sym, "cci", src, n), f"cci({src},{n})", lambda: _ta.Cci(n),
                         lambda b: (read(b),))

    def kc(self, length: int = 20, mult: float = 1.5, source: str = "close",
           use_true_range: bool = True, *, symbol: str | None = None) -> _ta.Bands:
        """Keltner channels ``(middle, upper, lower)``: ``ema(source)`` ± mult · the EMA of
        the true range (or of ``high - low``) (Pine ``ta.kc``)."""
        sym, n, src = self._sym(symbol), self._length(length), self._any_source(source)
        m = _check_number("mult", mult)
        if type(use_true_range) is not bool:
            raise TypeError(f"use_true_range must be True or False, got {use_true_range!r}")
        read = _ta.SOURCES[src]
        lines = self._fed((sym, "kc", src, n, m, use_true_range),
                          f"kc({src},{n},{m:g})", lambda: _ta.Kc(n, m, use_true_range),
                          lambda b: (read(b), b.high, b.low, b.close), _ta.Bands._fields)
        return _ta.Bands(*lines)

    def dmi(self, di_length: int = 14, adx_length: int = 14, *, symbol: str | None = None
            ) -> _ta.DmiLines:
        """Directional movement ``(plus, minus, adx)``: +DI, -DI and the ADX (Pine
        ``ta.dmi``)."""
        sym, d, a = self._sym(symbol), self._length(di_length), self._length(adx_length)
        lines = self._fed((sym, "dmi", d, a), f"dmi({d},{a})", lambda: _ta.Dmi(d, a),
                          lambda b: (b.high, b.low, b.close), _ta.DmiLines._fields)
        return _ta.DmiLines(*lines)

    def supertrend(self, factor: float = 3.0, atr_period: int = 10, *,
                   symbol: str | None = None) -> _ta.SupertrendLines:
        """SuperTrend ``(value, direction)``: the ATR band under the price in an up trend
        (direction -1, Pine's sign) and over it in a down trend (1) (Pine
        ``ta.supertrend``)."""
        sym, n = self._sym(symbol), self._length(atr_period)
        f = _check_number("factor", factor)
        lines = self._fed((sym, "supertrend", f, n), f"supertrend({f:g},{n})",
                          lambda: _ta.Supertrend(f, n), lambda b: (b.high, b.low, b.close),
                          _ta.SupertrendLines._fields)
        return _ta.SupertrendLines(*lines)

    def vwap(self, source: str = "hlc3", *, symbol: str | None = None) -> _ta.Series:
        """Volume-weighted average price since the session began (Pine ``ta.vwap``): a
        session is a calendar day of the bars' times (UTC)."""
        sym, src = self._sym(symbol), self._any_source(source)
        read = _ta.SOURCES[src]
        day: list[Any] = [None]

        def fields(b: Bar) -> tuple[float, float, bool]:
            d = b.time.date()
            new = d != day[0]
            day[0] = d
            return read(b), b.volume, new  # type: ignore[return-value]

        return self._fed((sym, "vwap", src), f"vwap({src})", _ta.Vwap,
                         fields)  # type: ignore[arg-type]

    def pivothigh(self, left: int, right: int, source: str = "high", *,
                  symbol: str | None = None) -> _ta.Series:
        """The value of a pivot high, on the bar ``right`` bars after it that confirms it,
        nan on every other bar (Pine ``ta.pivothigh``)."""
        return self._pivot("pivothigh", left, right, source, symbol)

    def pivotlow(self, left: int, right: int, source: str = "low", *,
                 symbol: str | None = None) -> _ta.Series:
        """The value of a pivot low, on the bar that confirms it (Pine ``ta.pivotlow``)."""
        return self._pivot("pivotlow", left, right, source, symbol)

    def _pivot(self, kind: str, left: object, right: object, source: object,
               symbol: str | None) -> _ta.Series:
        sym, src = self._sym(symbol), self._any_source(source)
        lft = check_length("left", left, minimum=0)
        rgt = check_length("right", right, minimum=0)
        read = _ta.SOURCES[src]
        core = _ta.INDICATORS[kind]
        return self._fed((sym, kind, src, lft, rgt), f"{kind}({src},{lft},{rgt})",
                         lambda: core(lft, rgt), lambda b: (read(b),))

    def stream(self, name: str, *settings: Any) -> Any:
        """A fresh value-fed indicator for values the strategy computes itself:
        ``ctx.ta.stream("sma", 20)`` is Pine's ``ta.sma(x, 20)`` fed with ``.update(x)`` once
        per bar, returning this bar's value (nan while warming up). ``name`` is any Pine
        ``ta.*`` name (sma, ema, rma, wma, vwma, rsi, macd, stoch, tr, atr, bb, stdev,
        highest, lowest, change, mom, crossover, crossunder, cross, barssince, valuewhen,
        pivothigh, pivotlow, supertrend, vwap, cci, kc, dmi); ``settings`` are its lengths
        and factors, as Pine's after the sources. Create it once (in ``on_start``) and keep
        it: a new one starts from nothing."""
        cls = _ta.INDICATORS.get(name) if type(name) is str else None
        if cls is None:
            raise ValueError(f"ta.stream: no indicator {name!r} "
                             f"(available: {', '.join(sorted(_ta.INDICATORS))})")
        for k, v in enumerate(settings):
            if type(v) not in (int, float, bool):
                raise TypeError(f"ta.stream({name!r}): setting {k + 1} must be a number, got "
                                f"{type(v).__name__}")
        try:
            return cls(*settings)
        except TypeError:
            raise TypeError(f"ta.stream({name!r}): {len(settings)} setting(s) given; it takes "
                            f"{settings_of(cls)}") from None


#: What ``ctx.options.order`` takes at most: legs of an explicit order, template parameters.
MAX_OPTION_LEGS = 8
MAX_TEMPLATE_PARAMS = 16
_LEG_KEYS = frozenset({"symbol", "side", "ratio", "intent"})


def _option_leg(i: int, leg: object) -> dict[str, Any]:
    """One explicit leg as the broker takes it: ``{"symbol", "side", "ratio", "intent"}``
    from a dict or a ``(symbol, side[, ratio])`` tuple."""
    where = f"legs[{i}]"
    if isinstance(leg, tuple | list) and 2 <= len(leg) <= 3:
        d: dict[str, Any] = {"symbol": leg[0], "side": leg[1]}
        if len(leg) == 3:
            d["ratio"] = leg[2]
    elif isinstance(leg, dict):
        unknown = sorted(str(k) for k in leg if k not in _LEG_KEYS)
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)} "
                             f"(allowed: {', '.join(sorted(_LEG_KEYS))})")
        d = dict(leg)
    else:
        raise TypeError(f"{where} must be a dict or a (symbol, side, ratio) tuple, "
                        f"got {type(leg).__name__}")
    _check_str(f"{where}.symbol", d.get("symbol"))
    if d.get("side") not in ("buy", "sell"):
        raise ValueError(f"{where}.side must be 'buy' or 'sell', got {d.get('side')!r}")
    ratio = d.get("ratio", 1)
    if type(ratio) is not int or not 1 <= ratio <= 100:
        raise ValueError(f"{where}.ratio must be a whole number from 1 to 100, got {ratio!r}")
    if d.get("intent", "auto") not in ("open", "close", "auto"):
        raise ValueError(f"{where}.intent must be 'open', 'close' or 'auto', "
                         f"got {d.get('intent')!r}")
    return d


class Options:
    """``ctx.options``: option chains, multi-leg orders, position groups and greeks of the
    strategy's account; the same in a back-test (chains synthesised from the underlying's
    bars) and live (the host's chains)."""

    __slots__ = ("_ctx",)

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx

    def chain(self, symbol: str | None = None, expiry: str | None = None
              ) -> tuple[OptionRowView, ...]:
        """The option chain of ``symbol`` (the bar's symbol by default) now: every listed
        contract, or those of one ``expiry`` (``"2026-12-18"``, ``"30d"`` = the expiry
        nearest 30 days away, ``"monthly"``, ``"weekly"``), by expiry, strike and right."""
        sym = self._ctx.ta._sym(symbol)
        exp = None if expiry is None else _check_str("expiry", expiry)
        if exp is not None and len(exp) > 32:
            raise ValueError(f"expiry: at most 32 characters, got {len(exp)}")
        return tuple(self._ctx._trading.option_chain(sym, exp))

    def order(self, template_or_legs: str | list[Any] | tuple[Any, ...], qty: float = 1, *,
              symbol: str | None = None, limit: float | None = None, tif: str = "day",
              tag: str | None = None, **params: Any) -> str:
        """Place a multi-leg order of ``qty`` spreads; returns the order id.

        ``template_or_legs`` is a template's name (``"iron_condor"``, ``"bull_put_spread"``,
        ...: built on ``symbol``, the bar's symbol by default, from the chain now with
        ``params`` such as ``expiry="30d", short_delta=0.16, width=5``) or explicit legs
        (``[("AAA240119P00095000", "buy"), ("AAA240119P00100000", "sell")]`` or dicts with
        symbol, side, ratio and intent). ``limit`` is the net price per spread (positive a
        debit, negative a credit); without it the order is a market order. The legs fill
        together at once or not at all; what fills reaches ``on_fill`` after this hook.
        """
        ctx = self._ctx
        q = _check_number("qty", qty)
        lim = None if limit is None else _check_number("limit", limit, positive=False)
        tif_s = _check_tif(tif)
        tag_s = None if tag is None else _check_str("tag", tag)
        if isinstance(template_or_legs, str):
            if len(params) > MAX_TEMPLATE_PARAMS:
                raise ValueError(f"at most {MAX_TEMPLATE_PARAMS} template parameters, "
                                 f"got {len(params)}")
            for key, value in params.items():
                if value is not None and type(value) not in (int, float, str, bool):
                    raise TypeError(f"{key} must be a number or a string, "
                                    f"got {type(value).__name__}")
            sym = ctx.ta._sym(symbol)
            order, fills = ctx._trading.option_order(
                sym, template_or_legs, [], q, limit_price=lim, tif=tif_s, tag=tag_s,
                params=dict(params))
        elif isinstance(template_or_legs, list | tuple):
            if params or symbol is not None:
                extra = sorted([*params, *(["symbol"] if symbol is not None else [])])
                raise TypeError("explicit legs take no symbol or template parameters "
                                f"(got {', '.join(extra)})")
            if not 1 <= len(template_or_legs) <= MAX_OPTION_LEGS:
                raise ValueError(f"legs: 1 to {MAX_OPTION_LEGS} legs, "
                                 f"got {len(template_or_legs)}")
            legs = [_option_leg(i, leg) for i, leg in enumerate(template_or_legs)]
            order, fills = ctx._trading.option_order(
                "", None, legs, q, limit_price=lim, tif=tif_s, tag=tag_s, params={})
        else:
            raise TypeError("give a template's name or a list of legs, "
                            f"got {type(template_or_legs).__name__}")
        return _placed(ctx, order, fills)

    def close(self, group_or_order_id: str, *, limit: float | None = None,
              tag: str | None = None) -> str:
        """Close a position group (named by the id of the order that opened it) as one
        order, at market or at a net ``limit``; returns the closing order's id."""
        ctx = self._ctx
        gid = _check_str("group_or_order_id", group_or_order_id)
        lim = None if limit is None else _check_number("limit", limit, positive=False)
        tag_s = None if tag is None else _check_str("tag", tag)
        order, fills = ctx._trading.option_close(gid, limit_price=lim, tag=tag_s)
        return _placed(ctx, order, fills)

    def greeks(self) -> GreeksView:
        """The account's delta, gamma, theta and vega (summed over its positions, shares
        count as delta), its market value and unrealised P&L, now."""
        return self._ctx._trading.option_greeks()

    def groups(self) -> tuple[GroupView, ...]:
        """The account's open position groups (what each multi-leg order opened and still
        holds), oldest first."""
        return tuple(self._ctx._trading.option_groups())


def _placed(ctx: Context, order: Order, fills: list[Fill]) -> str:
    """An options order placed: its fills wait for ``on_fill``; a refusal is reported."""
    if order.status is OrderStatus.REJECTED and order.reject_reason \
            and ctx._on_reject is not None:
        ctx._on_reject(order)
    ctx._made.extend(FillView.of(f) for f in fills)
    return order.id


def _float_array(values: tuple[Any, ...]) -> Any:
    """A fresh float64 numpy array of ``values``: ``ctx.history(..., as_array=True)``.

    :mod:`sandtrade.strategy.numeric` registers the sandbox's array guards when it is
    imported; a worker imports it before it confines itself when the strategy's source asks
    for arrays (or imports numpy), so the import here is a lookup in ``sys.modules``.
    """
    global _make_array
    if _make_array is None:
        try:
            from sandtrade.strategy import numeric
        except (ImportError, OSError):
            raise RuntimeError("ctx.history(..., as_array=True): numpy is not available in "
                               "this sandbox worker") from None
        _make_array = numeric.float_array
    return _make_array(values)


_make_array: Callable[[tuple[Any, ...]], Any] | None = None


class Context:
    """What a strategy's hooks receive as ``ctx``."""

    __slots__ = ("_data", "_history_size", "_logs", "_made", "_on_reject", "_pine", "_plots",
                 "_series",
                 "_trading", "bar_index", "options", "params", "state", "symbol", "ta", "time")

    def __init__(self, trading: Trading, params: Mapping[str, Any], *,
                 state: dict[str, Any] | None = None,
                 log: Callable[[str], None] | None = None,
                 on_reject: Callable[[Order], None] | None = None,
                 plots: PlotRecorder | PlotOutbox | None = None) -> None:
        self._trading = trading
        #: Where ctx.plot's values go: kept for a back-test's result, or sent live per event.
        self._plots = plots if plots is not None else PlotRecorder()
        self.params: Mapping[str, Any] = MappingProxyType(dict(params))
        self.state: dict[str, Any] = state if state is not None else {}
        self.time: datetime | None = None
        self.symbol: str = ""
        self.bar_index: int = -1
        self.ta = TA(self)
        self.options = Options(self)
        #: Fills orders made at once during a hook, for ``on_fill`` after it (take_fills).
        self._made: list[FillView] = []
        self._data: dict[str, SymbolHistory] = {}
        self._series: list[Any] = []
        self._history_size = DEFAULT_HISTORY
        self._logs = log or (lambda line: None)
        self._on_reject = on_reject
        self._pine: PineRuntime | None = None

    @property
    def pine(self) -> PineRuntime:
        """The runtime of a strategy imported from Pine Script (``sandtrade pine import``):
        Pine's series, indicators on computed values and named orders; see
        :mod:`sandtrade.strategy.pine`."""
        if self._pine is None:
            self._pine = PineRuntime(self, send=self._send, trading=self._trading)
        return self._pine

    def warmup_bars(self) -> int:
        """Bars before every indicator had a value (backtesting.py's warm-up), 0 if none."""
        firsts = [s.first_valid_bar for s in self._series]
        return max((f for f in firsts if f is not None), default=0)

    # ---------------------------------------------------------------- market data

    def history(self, n: int, field: str = "close", *, symbol: str | None = None,
                as_array: bool = False) -> Any:
        """The last ``n`` values of ``field`` (oldest first), the current bar included: a
        tuple of floats, or with ``as_array=True`` a fresh float64 numpy array (a copy of its
        own, never a view of the engine's bars).

        Fewer than ``n`` come back while the history is still shorter. Asking for more than the
        context holds (512 bars by default) makes it hold more from now on.
        """
        if as_array is not False and as_array is not True:
            raise TypeError(f"as_array must be True or False, got {as_array!r}")
        if type(n) is not int or n < 1:
            raise ValueError(f"n must be a whole number of bars, 1 or more, got {n!r}")
        src = self.ta._source(field)
        sym = self.ta._sym(symbol)
        data = self._data.get(sym)
        if data is None:
            return _float_array(()) if as_array else ()
        if n > (data.bars.maxlen or 0):
            self._history_size = max(self._history_size, n)
            data.bars = deque(data.bars, maxlen=n)
        idx = _ta.FIELDS[src]
        bars = data.bars
        start = max(0, len(bars) - n)
        values = tuple(bars[k][idx] for k in range(start, len(bars)))
        return _float_array(values) if as_array else values

    def bars(self, n: int, *, symbol: str | None = None) -> tuple[Bar, ...]:
        """The last ``n`` bars (oldest first), the current one included."""
        closes = self.history(n, symbol=symbol)
        data = self._data.get(self.ta._sym(symbol))
        if data is None:  # a symbol with no bars yet, as history() answers
            return ()
        return tuple(data.bars)[len(data.bars) - len(closes):]

    # ---------------------------------------------------------------- trading

    def _submit(self, side: OrderSide, size: object, symbol: str | None, limit: object,
                stop: object, tif: object, tag: object,
                exits: tuple[object, ...] = (None,) * 6) -> str:
        sym = self.ta._sym(symbol)
        qty: float | None = None
        fraction: float | None = None
        if size is None:
            fraction = FULL_EQUITY
        else:
            s = _check_number("size", size)
            if s < 1:
                fraction = s
            else:
                qty = s
        return self._send(side, sym, qty, fraction, limit, stop, tif, tag, False, exits)

    def _send(self, side: OrderSide, symbol: str, qty: float | None, fraction: float | None,
              limit: object, stop: object, tif: object, tag: object, reduce_only: bool,
              exits: tuple[object, ...] = (None,) * 6) -> str:
        lim = None if limit is None else _check_number("limit", limit)
        stp = None if stop is None else _check_number("stop", stop)
        if lim is not None and stp is not None:
            typ = OrderType.STOP_LIMIT
        elif lim is not None:
            typ = OrderType.LIMIT
        elif stp is not None:
            typ = OrderType.STOP
        else:
            typ = OrderType.MARKET
        tif_s = _check_tif(tif)
        tag_s = None if tag is None else _check_str("tag", tag)
        if exits[0] is None and exits[1] is None and exits[2] is None and exits[3] is None \
                and exits[4] is None and exits[5] is None:
            order = self._trading.submit(
                symbol, side, qty, equity_fraction=fraction, type=typ, limit_price=lim,
                stop_price=stp, tif=tif_s, reduce_only=reduce_only, tag=tag_s)
        else:
            sl, tp, trail_pct, trail_px = _exits(*exits)
            order = self._trading.submit(
                symbol, side, qty, equity_fraction=fraction, type=typ, limit_price=lim,
                stop_price=stp, tif=tif_s, reduce_only=reduce_only, tag=tag_s,
                take_profit=tp, stop_loss=sl, trail_percent=trail_pct, trail_price=trail_px)
        if order.reject_reason and self._on_reject is not None:
            self._on_reject(order)
        return order.id

    def buy(self, size: float | None = None, *, symbol: str | None = None,
            limit: float | None = None, stop: float | None = None, tif: str = "gtc",
            tag: str | None = None, sl: float | None = None, tp: float | None = None,
            sl_percent: float | None = None, tp_percent: float | None = None,
            trail_percent: float | None = None, trail_price: float | None = None) -> str:
        """Buy; returns the order id.

        ``size`` None buys as much as the buying power allows in whole units (the price of the
        fill and the commission counted), a number in (0, 1) that share of the buying power,
        a number of 1 or more that many units. ``limit`` and/or ``stop`` make it a limit, stop
        or stop-limit order.

        Exits, as backtesting.py's ``buy(sl=, tp=)``: ``sl`` (stop loss) and ``tp`` (take
        profit) are absolute prices; ``sl_percent``/``tp_percent`` put them that many percent
        from the entry's fill price (2 = 2 %). Both exits make a bracket (one cancels the
        other), one of them an oto; they work once the entry fills, sized to what filled.
        ``trail_percent``/``trail_price`` add a trailing stop as the only exit instead.
        """
        return self._submit(OrderSide.BUY, size, symbol, limit, stop, tif, tag,
                            (sl, tp, sl_percent, tp_percent, trail_percent, trail_price))

    def sell(self, size: float | None = None, *, symbol: str | None = None,
             limit: float | None = None, stop: float | None = None, tif: str = "gtc",
             tag: str | None = None, sl: float | None = None, tp: float | None = None,
             sl_percent: float | None = None, tp_percent: float | None = None,
             trail_percent: float | None = None, trail_price: float | None = None) -> str:
        """Sell (or sell short); sizes and exits as :meth:`buy` (a short's stop loss lies
        above the entry, its take profit below). Returns the order id."""
        return self._submit(OrderSide.SELL, size, symbol, limit, stop, tif, tag,
                            (sl, tp, sl_percent, tp_percent, trail_percent, trail_price))

    def order(self, symbol: str, side: str, qty: float, *, limit: float | None = None,
              stop: float | None = None, tif: str = "gtc", tag: str | None = None) -> str:
        """Submit an order for exactly ``qty`` units (fractions allowed where the instrument
        allows them, e.g. 0.5 BTC). ``side`` is "buy" or "sell". Returns the order id."""
        sym = _check_str("symbol", symbol)
        if side not in ("buy", "sell"):
            raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
        q = _check_number("qty", qty)
        return self._send(OrderSide(side), sym, q, None, limit, stop, tif, tag, False)

    def cancel(self, order_id: str) -> bool:
        """Cancel a working order; False when it has already finished."""
        return self._trading.cancel(_check_str("order_id", order_id))

    def close_position(self, symbol: str | None = None) -> str | None:
        """Close the whole position in ``symbol`` with a reduce-only market order.

        Returns the order id, or None when flat. Calling it again before the order fills
        cannot flip the position: a reduce-only order never trades past flat.
        """
        order = self._trading.close_position(self.ta._sym(symbol))
        if order is None:
            return None
        if order.reject_reason and self._on_reject is not None:
            self._on_reject(order)
        return order.id

    # ---------------------------------------------------------------- state views

    def position(self, symbol: str | None = None) -> PositionView:
        """The position in ``symbol`` (the current bar's symbol by default)."""
        return self._trading.position(self.ta._sym(symbol))

    @property
    def account(self) -> AccountView:
        """Cash, equity and buying power of the strategy's account."""
        return self._trading.account()

    def orders(self) -> tuple[OrderView, ...]:
        """Working orders, oldest first."""
        return tuple(
            OrderView(o.id, o.symbol, o.side.value, o.type.value,
                      o.qty if o.qty is not None else 0.0, o.filled_qty, o.limit_price,
                      o.stop_price, o.status.value, o.tag)
            for o in self._trading.open_orders())

    def plot(self, name: str, value: float, *, pane: str = "price",
             color: str | None = None) -> None:
        """Draw ``value`` in the series ``name`` on this bar (the last value written on a bar
        wins; nan or None leaves a gap): on the price chart (``pane="price"``) or in a pane
        below it (``pane="below"``), in ``color`` (``"#ff9800"``, ``"orange"``; None: one
        the chart picks). A back-test's report and result carry the series; a live run's
        appear on the dashboard's chart. At most 16 series, names of up to 40 printable
        characters."""
        self._plots.record(name, value, pane, color, self.symbol, self.bar_index, self.time)

    def signal(self, body: str | dict[str, Any]) -> SignalSent:
        """Send a signal of the strategy's account, as a TradingView alert is sent: ``body``
        in any form the webhook reads (``"buy 5 AAPL"``, a TradersPost or TradingView JSON
        object). The host journals it, routes it (paper, a strategy, a live broker) and
        executes it like any signal, its source ``strategy:NAME``; the answer says what the
        journal made of it (a body it cannot read comes back ``rejected`` with the reason,
        never as an exception). A back-test sends nothing: it answers ``not_sent``."""
        if isinstance(body, dict):
            import json

            try:
                text = json.dumps(body)
            except (TypeError, ValueError) as e:
                raise ValueError(f"ctx.signal: the object cannot be sent as JSON: {e}") from None
        elif isinstance(body, str):
            text = body
        else:
            raise TypeError(f"ctx.signal takes a string or a dict, not {type(body).__name__}")
        if len(text.encode("utf-8", "replace")) > MAX_SIGNAL_BYTES:
            raise ValueError(f"ctx.signal: the body is larger than {MAX_SIGNAL_BYTES:,} bytes")
        return SignalSent(*self._trading.signal(text))

    def log(self, *parts: object) -> None:
        """Write a line to the run's log, stamped with the bar time."""
        stamp = self.time.isoformat() if self.time else "-"
        self._logs(f"{stamp} {' '.join(str(p) for p in parts)}")


#: The strategy API's own types: every public attribute of theirs is safe to hand a strategy,
#: so the language layer skips its slow checks on them (the worker registers them in
#: :data:`sandtrade.strategy.policy.FAST_ATTRIBUTE_TYPES` before it runs strategy code).
API_TYPES: frozenset[type] = frozenset({
    Context, TA, Options, PositionView, AccountView, OrderView, FillView, SignalView,
    OptionRowView, GreeksView, GroupView, _ta.Series, _ta.Bands, _ta.MacdLines, _ta.DmiLines,
    _ta.SupertrendLines, Bar, *_ta.INDICATORS.values(), PineRuntime, MathFunctions})


# ------------------------------------------------------------------------ fed by the runner
# Module functions, not methods: the sandbox hides only ``_`` names from a strategy, and
# ``sandtrade check`` takes ctx's attributes from ``dir(Context)``, so a public method would
# let a strategy feed itself bars. The runners (the back-test engine, the worker's live task)
# call these; a strategy cannot reach this module.


def symbol_history(ctx: Context, symbol: str) -> SymbolHistory:
    """What ``ctx`` holds of ``symbol``, created empty on first use."""
    data = ctx._data.get(symbol)
    if data is None:
        data = ctx._data[symbol] = SymbolHistory(ctx._history_size)
    return data


def advance(ctx: Context, bar: Bar, bar_index: int) -> None:
    """Take in a new bar before the strategy's on_bar sees it: the context's time, symbol and
    bar index, the symbol's history and its indicators."""
    ctx.time = bar.time
    ctx.symbol = bar.symbol
    ctx.bar_index = bar_index
    data = ctx._data.get(bar.symbol)
    if data is None:
        data = symbol_history(ctx, bar.symbol)
    data.bars.append(bar)
    for update in data.updaters:
        update(bar, bar_index)


def plots_of(ctx: Context) -> PlotRecorder | PlotOutbox:
    """Where ``ctx``'s plotted values are (a back-test's recorder, a live run's outbox)."""
    return ctx._plots


def fills_made(ctx: Context) -> list[FillView]:
    """The list (always the same object) where fills that orders made at once wait for
    ``on_fill``: a runner may test it for emptiness on every bar at no cost."""
    return ctx._made


def take_fills(ctx: Context) -> list[FillView]:
    """The fills orders made at once during the hook that just ran (for ``on_fill``)."""
    made = ctx._made
    out = list(made)
    made.clear()
    return out
