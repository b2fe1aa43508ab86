"""Working orders against prices: fill rules, partial fills, sizing at fill, the fill itself.

:class:`Execution` is the part of :class:`~sandtrade.broker.paper.PaperBroker` that runs on
every bar or quote: the fill profile (:mod:`sandtrade.broker.fills`) names a price, and this
decides how much fills there (volume, reduce-only, shorting, buying power at fill), then books
it (:func:`~sandtrade.broker.lots.book_fill`). It is a back-test's hot path: no call here may be
added lightly.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING

from sandtrade.broker.checks import MAX_NOTIONAL
from sandtrade.broker.fills import CloseProfile, FillProfile
from sandtrade.broker.lots import EPS, SIGN, AccountBook, Lot, book_fill
from sandtrade.broker.restore import Ledger
from sandtrade.broker.settings import BrokerSettings
from sandtrade.models import (
    TERMINAL_STATUSES,
    Bar,
    BrokerChange,
    Fill,
    FillKind,
    Instrument,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    Quote,
    TimeInForce,
    trusted,
)

__all__ = ["Execution"]

_BUY = OrderSide.BUY
_IOC_FOK = (TimeInForce.IOC, TimeInForce.FOK)


class Execution:
    """Bars, quotes, the close auction and the end of a feed, applied to working orders; and
    liquidation (a mixin of :class:`~sandtrade.broker.paper.PaperBroker`)."""

    if TYPE_CHECKING:  # PaperBroker's state and methods execution reads
        settings: BrokerSettings
        profile: FillProfile
        _store: Ledger | None
        _ids: Callable[[str], str]
        _instruments: dict[str, Instrument]
        _books: dict[str, AccountBook]
        _lots: dict[tuple[str, str], deque[Lot]]
        _orders: dict[str, Order]
        _working: dict[str, list[Order]]
        _mark: dict[str, float]
        _day_session: dict[str, date]
        _commission_charged: dict[str, tuple[float, float]]
        _now: datetime | None
        _bar_index: int | None
        _no_prices: dict[str, str]
        _unpriced: set[str]
        _price_source: str
        _risk_on: bool
        _risk_today: date | None

        def _risk_new_day(self, today: date) -> None: ...
        def _risk_after_bar(self, symbol: str) -> None: ...
        def _note_fill(self, account: str, symbol: str, held: float, sign: int, qty: float,
                       when: datetime, inst: Instrument | None) -> None: ...
        def _book(self, account_id: str) -> AccountBook: ...
        def _buying_power(self, book: AccountBook) -> float: ...
        def _multiplier(self, symbol: str) -> float: ...
        def _finish(self, order: Order, status: OrderStatus, reason: str | None) -> None: ...
        def _persist(self, change: BrokerChange) -> None: ...
        def _after_fill(self, order: Order, qty: float, price: float) -> list[Order]: ...
        def _oco_mates(self, order: Order) -> list[Order]: ...
        _legs: dict[str, list[Order]]
        _same_bar: list[Order] | None
        _expiry_due: datetime | None
        _mleg_working: list[Order]
        _option_accounts: set[str]

        def process_expiries(self, now: datetime | None = None) -> list[Fill]: ...
        def _work_mleg_for(self, symbol: str) -> list[Fill]: ...
        def _group_note(self, order: Order | None, fill: Fill) -> None: ...

    def on_bar(self, bar: Bar, bar_index: int | None = None) -> list[Fill]:
        """Work the symbol's orders against ``bar`` (see the fill profile), then mark to close."""
        self._now = bar.time
        self._bar_index = bar_index
        symbol = bar.symbol
        # Options settled at an expiry's session end come first among the bar's fills.
        fills: list[Fill] = (self.process_expiries(bar.time) if self._expiry_due is not None
                             and bar.time >= self._expiry_due else [])
        if self._risk_on and bar.time.date() != self._risk_today:
            self._risk_new_day(bar.time.date())
        working = self._working.get(symbol)
        if working:
            self._mark[symbol] = bar.open
            profile = self.profile
            skip_market = profile.market_at_close
            session = bar.time.date()
            volume_left = (None if self.settings.volume_share is None
                           else bar.volume * self.settings.volume_share)
            self._same_bar = []
            for order in list(working):
                if order.status in TERMINAL_STATUSES:  # its sibling's fill canceled it
                    continue
                if order.tif is TimeInForce.DAY:
                    first = self._day_session.setdefault(order.id, session)
                    if first != session:
                        self._finish(order, OrderStatus.EXPIRED, "day order expired at the "
                                     f"end of the {first.isoformat()} session")
                        self._persist(BrokerChange(orders=[order]))
                        continue
                if skip_market and order.type is OrderType.MARKET:
                    continue
                volume_left = self._work(order, bar, volume_left, fills)
            if self._same_bar:
                volume_left = self._exits_on_entry_bar(bar, volume_left, fills)
            self._same_bar = None
        self._mark[symbol] = bar.close
        if self._mleg_working or self._option_accounts:
            fills += self._work_mleg_for(symbol)
        if self._risk_on:
            self._risk_after_bar(symbol)
        return fills

    def _work(self, order: Order, bar: Bar, volume_left: float | None,
              fills: list[Fill]) -> float | None:
        """Work one order against ``bar``; returns the volume left."""
        triggered = order.stop_triggered
        hwm = order.hwm
        price = self.profile.bar_price(order, bar)
        if price is not None:
            volume_left = self._fill(order, price, volume_left, fills)
        if order.stop_triggered is not triggered or order.hwm != hwm:
            self._persist_trigger(order)
        if order.tif in _IOC_FOK and order.is_open:
            self._finish(order, OrderStatus.CANCELED,
                         f"{order.tif.value}: unfilled quantity canceled")
            self._persist(BrokerChange(orders=[order]))
        return volume_left

    def _exits_on_entry_bar(self, bar: Bar, volume_left: float | None,
                            fills: list[Fill]) -> float | None:
        """Work the exits of entries that filled on ``bar`` against the rest of it, when
        backtesting.py would (see :mod:`~sandtrade.broker.fills`)."""
        entries, self._same_bar = self._same_bar or [], None
        for entry in entries:
            legs = self._legs.get(entry.id, ())
            if entry.type is OrderType.STOP:
                # The stop entry and the take profit go the same way; only when the stop
                # loss is out of the bar's range is the order of events certain.
                long = entry.side is OrderSide.BUY
                tp = next((o.limit_price for o in legs if o.type is OrderType.LIMIT), None)
                sl = next((o.stop_price for o in legs if o.type is not OrderType.LIMIT), None)
                if tp is None or not ((tp <= bar.high and (sl is None or sl < bar.low)) if long
                                      else (tp >= bar.low and (sl is None or sl > bar.high))):
                    continue
            elif entry.type is not OrderType.MARKET:
                continue
            for leg in list(legs):
                if leg.is_open:
                    volume_left = self._work(leg, bar, volume_left, fills)
        return volume_left

    def close_auction(self, bar: Bar) -> list[Fill]:
        """With the ``close`` profile: fill working market orders at ``bar``'s close."""
        profile = self.profile
        if not isinstance(profile, CloseProfile):
            return []
        fills: list[Fill] = []
        working = self._working.get(bar.symbol)
        if not working:
            return fills
        volume_left = (None if self.settings.volume_share is None
                       else bar.volume * self.settings.volume_share)
        for order in list(working):
            if order.type is OrderType.MARKET and order.is_open:
                volume_left = self._fill(order, profile.close_price(order, bar), volume_left,
                                         fills)
        return fills

    def on_quote(self, quote: Quote) -> list[Fill]:
        """Work the symbol's orders against a bid/ask (``quote`` profile); marks at the mid."""
        self._now = quote.time
        fills: list[Fill] = (self.process_expiries(quote.time) if self._expiry_due is not None
                             and quote.time >= self._expiry_due else [])
        for order in list(self._working.get(quote.symbol, ())):
            if order.status in TERMINAL_STATUSES:  # its sibling's fill canceled it
                continue
            triggered = order.stop_triggered
            price = self.profile.quote_price(order, quote)
            if price is not None:
                self._fill(order, price, None, fills)
            if order.stop_triggered is not triggered:
                self._persist_trigger(order)
        self._mark[quote.symbol] = quote.mid
        if self._mleg_working or self._option_accounts:
            fills += self._work_mleg_for(quote.symbol)
        return fills

    def end_prices(self, symbol: str, reason: str) -> list[Order]:
        """No more prices will come for ``symbol`` (its feed ended): its working orders expire
        with ``reason``, and new orders on it are rejected with ``reason``, since they could
        never fill. Returns the orders expired."""
        self._no_prices[symbol] = reason
        expired = list(self._working.get(symbol, ()))
        for order in expired:
            self._finish(order, OrderStatus.EXPIRED, reason)
            self._persist(BrokerChange(orders=[order]))
        return expired

    def liquidate(self, account_id: str, reason: str) -> list[Fill]:
        """Cancel every working order and close every position at the last known price."""
        book = self._book(account_id)
        for order in [o for o in book.orders.values() if o.is_open]:
            self._finish(order, OrderStatus.CANCELED, reason)
            self._persist(BrokerChange(orders=[order]))
        fills: list[Fill] = []
        for sym, pos in list(book.positions.items()):
            side = OrderSide.SELL if pos.qty > 0 else _BUY
            order = Order(id=self._ids("o"), account=account_id, symbol=sym, side=side,
                          qty=abs(pos.qty), status=OrderStatus.ACCEPTED, tag="liquidation",
                          created_at=self._now, updated_at=self._now)
            self._orders[order.id] = order
            book.orders[order.id] = order
            self._execute(book, order, self._mark.get(sym, pos.avg_price), abs(pos.qty), fills)
        return fills

    def _fill(self, order: Order, price: float, volume_left: float | None,
              fills: list[Fill]) -> float | None:
        """Fill as much of ``order`` at ``price`` as rules allow; returns the volume left."""
        book = self._books[order.account]
        inst = self._instruments[order.symbol]
        pos = book.positions.get(order.symbol)
        held = pos.qty if pos is not None else 0.0
        sign = SIGN[order.side]
        if order.qty is None:
            qty = self._size_fraction(book, order, price, inst)
            if qty <= 0:
                self._finish(order, OrderStatus.CANCELED,
                             "insufficient buying power for even one lot at fill "
                             f"(buying power {self._buying_power(book):,.2f}, price {price:,.2f})")
                self._persist(BrokerChange(orders=[order]))
                return volume_left
            # pydantic's __setattr__ does these two steps at several times the cost
            order.__dict__["qty"] = qty
            order.__pydantic_fields_set__.add("qty")
        qty = order.remaining_qty
        if self._unpriced and order.id in self._unpriced:
            self._unpriced.discard(order.id)
            assert order.qty is not None  # sized just above when it was a fraction
            value = order.qty * price * inst.multiplier
            if not inst.min_notional <= value < MAX_NOTIONAL:
                self._finish(order, OrderStatus.CANCELED,
                             f"order value {value:,.2f} at the first price of {order.symbol} "
                             f"({price:,.2f}) is outside {inst.min_notional:,.2f} to "
                             f"{MAX_NOTIONAL:,.0f}")
                self._persist(BrokerChange(orders=[order]))
                return volume_left
        if order.reduce_only:
            if held * sign >= 0:
                self._finish(order, OrderStatus.CANCELED,
                             f"reduce-only: no {order.symbol} position left to reduce")
                mates = self._oco_mates(order) if order.parent_id or \
                    order.order_class is OrderClass.OCO else []
                for mate in mates:
                    self._finish(mate, OrderStatus.CANCELED,
                                 f"one cancels other: {order.id} was canceled")
                self._persist(BrokerChange(orders=[order, *mates]))
                return volume_left
            qty = min(qty, abs(held))
        if volume_left is not None:
            cap = inst.round_qty(volume_left)
            if order.tif is TimeInForce.FOK and cap + EPS < qty:
                return volume_left  # canceled by the caller: it cannot fill in full
            qty = min(qty, cap)
            if qty <= 0:
                return volume_left
        closing = min(qty, abs(held)) if held * sign < 0 else 0.0
        opening = qty - closing
        if opening > EPS:
            if sign < 0 and not (self.settings.allow_short and inst.shortable):
                opening = 0.0
                qty = closing
                if qty <= 0:
                    self._finish(order, OrderStatus.CANCELED,
                                 f"short selling {order.symbol} is not allowed")
                    self._persist(BrokerChange(orders=[order]))
                    return volume_left
            else:
                s = self.settings
                margin = s.long_margin if sign > 0 else s.short_margin
                mult = inst.multiplier
                unit = price * mult * margin
                comm = s.commission(qty, price, mult)
                # The closing part frees the margin of the side it closes, not the one it opens.
                held_margin = s.long_margin if held > 0 else s.short_margin
                bp = self._buying_power(book) + closing * price * mult * held_margin - comm
                if opening * unit > bp + 1e-9:
                    self._finish(order, OrderStatus.CANCELED,
                                 f"insufficient buying power at fill: {order.side.value} "
                                 f"{opening:g} {order.symbol} at {price:,.2f} needs "
                                 f"{opening * unit:,.2f}, {max(bp, 0):,.2f} available")
                    self._persist(BrokerChange(orders=[order]))
                    return volume_left
        self._execute(book, order, price, qty, fills, inst.multiplier)
        if volume_left is not None:
            volume_left -= qty
        return volume_left

    def _size_fraction(self, book: AccountBook, order: Order, price: float,
                       inst: Instrument) -> float:
        """Lots that ``equity_fraction`` of buying power buys at ``price``, commission included.

        The arithmetic mirrors backtesting.py's operation for operation, so that both size an
        order identically to the last share.
        """
        f = order.equity_fraction
        assert f is not None
        s = self.settings
        margin = s.long_margin if order.side is _BUY else s.short_margin
        mult = inst.multiplier
        unit_cost = price * mult + s.commission(f, price, mult) / f
        lots = (self._buying_power(book) * (1 / margin) * f) // (unit_cost * inst.lot_size)
        return round(lots * inst.lot_size, 12) if inst.lot_size < 1 else float(lots)

    def _execute(self, book: AccountBook, order: Order, price: float, qty: float,
                 fills: list[Fill], mult: float | None = None) -> None:
        """Apply one fill: cash, FIFO lots, closed trades, the order, and persist it all."""
        symbol = order.symbol
        if mult is None:
            mult = self._multiplier(symbol)
        sign = SIGN[order.side]
        s = self.settings
        commission = s.commission(qty, price, mult)
        if s.commission_min:
            # The minimum is a floor on the order's total, topped up on its first fill: an
            # order filled in pieces pays what it would have paid filled at once.
            raw, charged = self._commission_charged.get(order.id, (0.0, 0.0))
            raw += commission
            owed = max(raw, s.commission_min)
            commission = owed - charged
            self._commission_charged[order.id] = (raw, owed)
        now = self._now or datetime.min
        bar_index = self._bar_index
        if self._risk_on:
            held = book.positions.get(symbol)
            self._note_fill(book.id, symbol, held.qty if held is not None else 0.0, sign, qty,
                            now, self._instruments.get(symbol))
        pos = book_fill(book, self._lots, symbol, mult, sign, qty, price, commission, now,
                        bar_index, order.tag)

        state = order.__dict__
        prev = state["filled_qty"]
        filled = round(prev + qty, 12)
        # Straight into the model's __dict__: pydantic's __setattr__ costs more than the whole
        # fill otherwise, and these values are computed here, not user input.
        state["filled_qty"] = filled
        state["updated_at"] = now
        state["avg_fill_price"] = price if not prev else (
            (state["avg_fill_price"] or price) * prev + price * qty) / filled
        order_qty = state["qty"] or filled
        # A reduce-only order is done when its position is closed (its quantity was capped to
        # it), not after any fill: a volume cap may leave part of the position to sell.
        if filled >= order_qty - EPS or (order.reduce_only and symbol not in book.positions):
            self._finish(order, OrderStatus.FILLED, None)
        else:
            order.status = OrderStatus.PARTIALLY_FILLED
        fill = trusted(
            Fill,
            id=self._ids("f"), order_id=order.id, account=book.id, symbol=symbol,
            side=order.side, qty=qty, price=price, commission=commission, time=now,
            bar_index=bar_index, price_source=self._price_source, kind=FillKind.TRADE)
        book.fills.append(fill)
        fills.append(fill)
        if mult != 1.0:  # an option: its account's buying power and expiry (multileg.py)
            self._group_note(order, fill)
        changed = [order]
        if order.order_class is not OrderClass.SIMPLE:
            changed += self._after_fill(order, qty, price)
        if self._store is not None:
            self._persist(BrokerChange(orders=changed, fills=[fill],
                                       positions=[pos.view(price)], accounts=[book.snapshot()]))

    def _persist_trigger(self, order: Order) -> None:
        """Persist a stop that triggered without filling (it is a limit order from now on),
        or a trailing stop's new mark."""
        if (order.filled_qty == 0.0 or order.hwm is not None) and order.is_open:
            order.updated_at = self._now
            self._persist(BrokerChange(orders=[order]))
