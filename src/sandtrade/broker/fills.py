"""Fill profiles: at what price, and when, a working order fills.

A profile only answers "does this order fill on this bar (or quote), and at what price"; the
broker does everything else (sizing, buying power, positions, cash).

Order of events inside a bar, for every profile
-----------------------------------------------
When bar *t+1* of a symbol arrives, the broker, in this order:

1. expires ``day`` orders whose session ended before this bar (a day order is good for the
   session of the first bar it could trade on);
2. walks the symbol's working orders in submission order and asks the profile for a price; an
   order submitted while the strategy handled bar *t* meets bar *t+1* first, never bar *t*;
3. cancels what is left of ``ioc`` orders and ``fok`` orders that could not fill in full;
4. marks positions to bar *t+1*'s close.

Then the strategy sees ``on_fill`` for each fill and ``on_bar`` for bar *t+1*. With the
``close`` profile, market orders it submits while handling a bar fill at that bar's close
right after ``on_bar`` returns.

``next_open`` (the default, the same as backtesting.py's)
--------------------------------------------------------
* market: at the open.
* limit buy at L: at the open if the open is at or below L (it gapped through: the better
  price), else at L if the low touches L, else no fill. Limit sell mirrors it with the high.
* stop buy at S: at the open if the open is at or above S (gap), else at S if the high touches
  S. Stop sell mirrors it with the low. A triggered stop is a market order: it may slip.
* stop-limit buy (S, L): triggers as a stop; at the trigger price T (the open on a gap, else S)
  it fills at T when T <= L. Otherwise it rests as a limit order from the next bar on: nobody
  knows whether the price came back to L after the trigger within the same bar, so we assume
  it did not (backtesting.py makes the same pessimistic assumption).
* slippage (``slippage_pct``) moves market and stop fills against the trader, capped at the
  bar's high (buys) or low (sells); limit fills never slip.

* trailing stop (sell; a buy mirrors it with the low): the open first moves the high-water
  mark ``hwm`` up when it is higher, which moves the stop; then the stop is met as a stop's
  (the open when the open is at or below it, else the stop when the low reaches it), and it
  fills as a market order; only when it did not fill does the bar's high move the mark, for
  the next bar. Within a bar we cannot know whether the high came before the low, so we
  assume the low came first: a stop never fills at a level the bar's high set.

Orders of a class (``broker/legs.py``): exits, both touched, gaps
---------------------------------------------------------------
Chosen to agree with backtesting.py 0.6.6 (``_Broker._process_orders``), bar for bar:

* a bracket's (or oto's) exits exist from the entry's first fill on. After a **market**
  entry filled at the open, its exits are worked against the rest of the same bar (as
  backtesting.py re-processes a trade's SL/TP: its issue #119), so a stop loss may fill on
  the entry bar. After a **limit** or **stop-limit** entry they start with the next bar;
  after a **stop** entry too, except when the bar reaches the take profit and not the stop
  loss (the stop entry and the take profit go the same way, so the order is certain):
  backtesting.py's two rules.
* when one bar touches **both** exits, the **stop loss wins**: it is worked first (it comes
  first in the book, as backtesting.py puts SL orders at the front of its queue) and its fill
  cancels the take profit. The bar's path is unknown, so the worse outcome is assumed.
* a bar that **gaps through** an exit fills it at the open: a stop loss at the open when
  the open is beyond its stop (backtesting.py: ``min(open, stop)`` for a sell), a take
  profit at the open when the open is beyond its limit (``max(open, limit)``): the better
  price, as for any limit order.
* a take profit and a stop loss given as a ``percent`` or an ``amount`` are priced from the
  entry's first fill price: ``fill * (1 ± percent / 100)``, ``fill ± amount``.

``close``
---------
Market orders fill at the close of the bar during which they were submitted (backtesting.py's
``trade_on_close=True``); limit and stop orders behave as in ``next_open``.

``quote``
---------
Fills against a bid/ask: market buys at the ask, sells at the bid; a limit buy fills when the
ask is at or below the limit (at the ask), a sell when the bid is at or above it; stops trigger
on the side they would trade. Given real quotes (``PaperBroker.on_quote``) it uses them; given
only bars, it assumes a quote of ``spread_pct`` around each price and otherwise follows
``next_open``.

``signal_price`` (for symbols no market source covers)
------------------------------------------------------
Not a profile the broker is set to: the one a signal's own price is worked under, for a symbol
without a feed (:meth:`~sandtrade.broker.prices.SignalPrices.work_at_price`). The price is a
bar whose open, high, low and close are that one price, worked by the ``next_open`` rules:
market orders fill at it, limits fill at it when it is at or better than the limit, stops
trigger at it. Slippage moves market and stop fills against the trader as ever, but is not
capped by the bar (a one-price bar would cancel it).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from sandtrade.broker.legs import ratchet
from sandtrade.models import Bar, Order, OrderSide, OrderType, Quote

__all__ = [
    "BUILTIN_FILL_PROFILES",
    "CloseProfile",
    "FillProfile",
    "NextOpenProfile",
    "QuoteProfile",
    "SignalPriceProfile",
]

_BUY = OrderSide.BUY
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_STOP = OrderType.STOP
_STOP_LIMIT = OrderType.STOP_LIMIT
_TRAILING = OrderType.TRAILING_STOP


class FillProfile(ABC):
    """Decides fill prices. Subclasses set ``name`` and implement :meth:`bar_price`."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: Market orders submitted while handling a bar fill at that bar's close.
    market_at_close: ClassVar[bool] = False

    def __init__(self, *, slippage_pct: float = 0.0, spread_pct: float = 0.0) -> None:
        self.slippage_pct = slippage_pct
        self.spread_pct = spread_pct

    @abstractmethod
    def bar_price(self, order: Order, bar: Bar) -> float | None:
        """The price at which ``order`` fills on ``bar``, or None. May set ``stop_triggered``."""

    def quote_price(self, order: Order, quote: Quote) -> float | None:
        """The price at which ``order`` fills against ``quote``, or None (default: never)."""
        return None

    def _slip(self, price: float, is_buy: bool, bar: Bar) -> float:
        s = self.slippage_pct
        if not s:
            return price
        return min(price * (1 + s), bar.high) if is_buy else max(price * (1 - s), bar.low)


class NextOpenProfile(FillProfile):
    """Market orders at the next bar's open; limits and stops against the next bar's range."""

    name = "next_open"
    description = "market orders at the next bar's open; limit/stop against its range"

    def bar_price(self, order: Order, bar: Bar) -> float | None:
        """See the module docstring for the rules."""
        is_buy = order.side is _BUY
        typ = order.type
        if typ is _MARKET:
            return self._slip(bar.open, is_buy, bar)
        if typ is _LIMIT:
            return self._limit(order.limit_price, is_buy, bar)  # type: ignore[arg-type]
        if typ is _TRAILING:
            return self._trailing(order, is_buy, bar)
        stop = order.stop_price
        assert stop is not None
        if typ is _STOP:
            trig = self._trigger(stop, is_buy, bar)
            return None if trig is None else self._slip(trig, is_buy, bar)
        # stop-limit
        limit = order.limit_price
        assert limit is not None
        if order.stop_triggered:
            return self._limit(limit, is_buy, bar)
        trig = self._trigger(stop, is_buy, bar)
        if trig is None:
            return None
        order.stop_triggered = True
        if (is_buy and trig <= limit) or (not is_buy and trig >= limit):
            return trig
        return None

    def _trailing(self, order: Order, is_buy: bool, bar: Bar) -> float | None:
        # The open comes first: it moves the mark; then the stop is met (at the open on a
        # gap, at the stop when the range reaches it); only then the far end of the range
        # moves the mark for the next bar (we cannot know it came before the low).
        ratchet(order, bar.open)
        stop = order.stop_price
        assert stop is not None
        trig = self._trigger(stop, is_buy, bar)
        if trig is not None:
            return self._slip(trig, is_buy, bar)
        ratchet(order, bar.low if is_buy else bar.high)
        return None

    @staticmethod
    def _limit(limit: float, is_buy: bool, bar: Bar) -> float | None:
        if is_buy:
            if bar.open <= limit:
                return bar.open
            return limit if bar.low <= limit else None
        if bar.open >= limit:
            return bar.open
        return limit if bar.high >= limit else None

    @staticmethod
    def _trigger(stop: float, is_buy: bool, bar: Bar) -> float | None:
        if is_buy:
            if bar.open >= stop:
                return bar.open
            return stop if bar.high >= stop else None
        if bar.open <= stop:
            return bar.open
        return stop if bar.low <= stop else None


class CloseProfile(NextOpenProfile):
    """Market orders at the close of the bar they were placed on; limits/stops as next_open."""

    name = "close"
    description = "market orders at the same bar's close (trade_on_close); limit/stop as next_open"
    market_at_close = True

    def close_price(self, order: Order, bar: Bar) -> float:
        """Fill price of a market order at ``bar``'s close (with slippage, capped by the bar)."""
        return self._slip(bar.close, order.side is _BUY, bar)


class QuoteProfile(NextOpenProfile):
    """Fills against bid/ask: real quotes when given, else ``spread_pct`` around bar prices."""

    name = "quote"
    description = "fills at the bid/ask; from bars, an assumed spread around each price"

    def bar_price(self, order: Order, bar: Bar) -> float | None:
        """``next_open`` rules seen through a synthetic quote of ``spread_pct`` around prices."""
        half = self.spread_pct / 2
        if not half:
            return super().bar_price(order, bar)
        is_buy = order.side is _BUY
        # The trader buys at the ask and sells at the bid: shift the bar by half the spread
        # against them, then apply the ordinary rules to the shifted bar.
        k = 1 + half if is_buy else 1 - half
        shifted = bar._replace(open=bar.open * k, high=bar.high * k, low=bar.low * k,
                               close=bar.close * k)
        return super().bar_price(order, shifted)

    def quote_price(self, order: Order, quote: Quote) -> float | None:
        """Marketable against the quote: buys at the ask, sells at the bid."""
        is_buy = order.side is _BUY
        px = quote.ask if is_buy else quote.bid
        if px <= 0:
            return None
        typ = order.type
        if typ is _TRAILING:
            ratchet(order, px)
            stop = order.stop_price
            assert stop is not None
            return px if (px >= stop if is_buy else px <= stop) else None
        if typ in (_STOP, _STOP_LIMIT) and not order.stop_triggered:
            stop = order.stop_price
            assert stop is not None
            if (is_buy and px < stop) or (not is_buy and px > stop):
                return None
            order.stop_triggered = True
        if typ in (_LIMIT, _STOP_LIMIT):
            limit = order.limit_price
            assert limit is not None
            if (is_buy and px > limit) or (not is_buy and px < limit):
                return None
        return px


class SignalPriceProfile(NextOpenProfile):
    """The price a signal carried, as a one-price bar; slippage not capped by it."""

    name = "signal_price"
    description = "a signal's own price, for symbols no market source covers"

    def _slip(self, price: float, is_buy: bool, bar: Bar) -> float:
        s = self.slippage_pct
        return price * (1 + s) if is_buy else price * (1 - s)


BUILTIN_FILL_PROFILES: tuple[type[FillProfile], ...] = (NextOpenProfile, CloseProfile, QuoteProfile)
