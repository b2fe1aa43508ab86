"""Options at expiry: exercise, assignment, cash settlement and expiring worthless.

:class:`Expiry` is the part of :class:`~sandtrade.broker.paper.PaperBroker` that settles the
options accounts hold once their expiry date's session has ended. The session end is 16:00
New York time on the expiry date (:func:`~sandtrade.broker.multileg.session_end`); the broker
settles at the first event (a bar, a quote, a call of :meth:`Expiry.process_expiries`) whose
time is at or after it, before that event's prices are applied, so the underlying's price is
the broker's last price of it before then: with minute bars the close of the 15:59 bar, with
daily bars (stamped at the start of their day) the expiry date's close, met at the next day's
first bar. An option whose underlying has no price yet waits for one.

At the settlement price ``S`` an option is in the money by ``S - K`` (call) or ``K - S`` (put);
by $0.01 or more it is exercised (long) or assigned (short), otherwise it expires worthless
(Alpaca's rule, from its support article "what-is-automatic-exercise"; a pin at the strike
expires). As Alpaca books it (activities OPEXC/OPASN/OPEXP and OPTRD):

- an equity option leaves at price 0 and 100 shares per contract trade at the strike: a long
  call buys them, a long put sells them, a short call is assigned a sale and a short put a
  purchase;
- an index option that settles in cash (roots in :data:`~sandtrade.models.CASH_SETTLED_ROOTS`:
  SPX/SPXW, NDX/NDXP, RUT/RUTW, VIX/VIXW, XSP, settled on the index's price) leaves at its
  intrinsic value, which is paid or received in cash;
- an option that expires worthless leaves at price 0.

Each position settled is an order of its own (tagged ``expiry``, with the reason in words)
whose fills carry their kind (:class:`~sandtrade.models.FillKind`), all committed as one
change: it is journaled, survives a restart, and is seen over gRPC like any fill. Exercise
and assignment ignore buying power, as a broker's automatic exercise does (Alpaca closes
positions an account could not carry before the close; this broker does not). Early
assignment is not modelled: a short option is assigned at expiry only. AM-settled index
options (the monthly SPX) settle here on the session-end price, not the next morning's
opening prints.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sandtrade.broker.lots import SIGN, AccountBook, Lot, book_fill
from sandtrade.broker.multileg import session_end
from sandtrade.models import (
    CASH_SETTLED_ROOTS,
    BrokerChange,
    Fill,
    FillKind,
    Instrument,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    Position,
    trusted,
)

__all__ = ["Expiry"]


class Expiry:
    """Settling expired options (a mixin of :class:`~sandtrade.broker.paper.PaperBroker`)."""

    if TYPE_CHECKING:  # PaperBroker's state and methods expiry uses
        _ids: Callable[[str], str]
        _store: Any
        _instruments: dict[str, Instrument]
        _books: dict[str, AccountBook]
        _lots: dict[tuple[str, str], deque[Lot]]
        _orders: dict[str, Order]
        _working: dict[str, list[Order]]
        _mark: dict[str, float]
        _now: datetime | None
        _bar_index: int | None
        _risk_on: bool
        _expiry_due: datetime | None
        _option_accounts: set[str]
        _mleg_working: list[Order]

        def _persist_mleg(self, change: BrokerChange) -> None: ...
        def _finish(self, order: Order, status: OrderStatus, reason: str | None) -> None: ...
        def _end_mleg(self, order: Order, status: OrderStatus, reason: str) -> None: ...
        def _group_note(self, order: Order | None, fill: Fill) -> None: ...
        def _note_fill(self, account: str, symbol: str, held: float, sign: int, qty: float,
                       when: datetime, inst: Instrument | None) -> None: ...
        def _retire(self, order: Order) -> None: ...

    def process_expiries(self, now: datetime | None = None) -> list[Fill]:
        """Settle every option held whose expiry session has ended by ``now`` (the broker's
        clock when None; see the module). Returns the fills, in settlement order."""
        now = now or self._now
        fills: list[Fill] = []
        if now is None or self._expiry_due is None or now < self._expiry_due:
            return fills
        due: datetime | None = None
        for symbol in sorted({s for b in self._books.values() for s in b.positions}
                             | {s for o in self._working.values() for s in (x.symbol for x in o)}):
            inst = self._instruments.get(symbol)
            if inst is None or inst.expiry is None:
                continue
            end = session_end(inst.expiry)
            if end > now:
                due = end if due is None or end < due else due
                continue
            assert inst.underlying is not None
            under = CASH_SETTLED_ROOTS.get(inst.underlying, inst.underlying)
            price = self._mark.get(under)
            if price is None:
                due = end if due is None or end < due else due
                continue
            self._expire_orders(symbol, inst)
            for book in self._books.values():
                pos = book.positions.get(symbol)
                if pos is not None:
                    self._settle(book, inst, pos.qty, under, price, now, fills)
        for order in list(self._mleg_working):
            for leg in order.legs or ():
                inst = self._instruments.get(leg.symbol)
                if order.is_open and inst is not None and inst.expiry is not None \
                        and session_end(inst.expiry) <= now:
                    self._end_mleg(order, OrderStatus.EXPIRED,
                                   f"{leg.symbol} expired on {inst.expiry.isoformat()}")
        self._expiry_due = due
        return fills

    def _expire_orders(self, symbol: str, inst: Instrument) -> None:
        assert inst.expiry is not None
        for order in list(self._working.get(symbol, ())):
            if order.is_open:
                self._finish(order, OrderStatus.EXPIRED,
                             f"{symbol} expired on {inst.expiry.isoformat()}")
                self._persist_mleg(BrokerChange(orders=[order]))

    def _settle(self, book: AccountBook, inst: Instrument, held: float, under: str,
                price: float, now: datetime, fills: list[Fill]) -> None:
        """Settle one account's position of ``held`` contracts at the underlying's ``price``."""
        assert inst.strike is not None and inst.expiry is not None
        symbol = inst.symbol
        k = inst.strike
        itm = round(price - k if inst.right == "call" else k - price, 6)
        cash_settled = inst.underlying in CASH_SETTLED_ROOTS
        long = held > 0
        contracts = abs(held)
        close_side = OrderSide.SELL if long else OrderSide.BUY
        day = inst.expiry.isoformat()
        where = f"{under} at {price:.2f}, strike {k:g}"
        if itm < 0.01 - 1e-9:
            kind = FillKind.EXPIRY
            how = ("at the money" if abs(itm) < 0.01 - 1e-9 else
                   f"{-itm:.2f} out of the money")
            reason = f"expired worthless at the {day} session end: {where}, {how}"
            legs = [(symbol, close_side, contracts, 0.0, inst.multiplier)]
        else:
            kind = FillKind.EXERCISE if long else FillKind.ASSIGNMENT
            verb = "exercised" if long else "assigned"
            if cash_settled:
                reason = (f"{verb} at the {day} session end: {where}, {itm:.2f} in the money, "
                          f"settled in cash ({itm * inst.multiplier * contracts:,.2f})")
                legs = [(symbol, close_side, contracts, itm, inst.multiplier)]
            else:
                shares = contracts * inst.multiplier
                # A long call buys, a long put sells; an assigned short the other way round.
                buys = (inst.right == "call") == long
                reason = (f"{verb} at the {day} session end: {where}, {itm:.2f} in the money: "
                          f"{'bought' if buys else 'sold'} {shares:g} {under} at {k:g}")
                if under not in self._instruments:
                    self._instruments[under] = Instrument.for_symbol(under)
                legs = [(symbol, close_side, contracts, 0.0, inst.multiplier),
                        (under, OrderSide.BUY if buys else OrderSide.SELL, shares, k, 1.0)]
        order = Order(id=self._ids("o"), account=book.id, symbol=symbol, side=close_side,
                      qty=contracts, status=OrderStatus.ACCEPTED,
                      tag=f"expiry: {symbol} {reason}"[:256], created_at=now, updated_at=now,
                      order_class=OrderClass.SIMPLE)
        self._orders[order.id] = order
        book.orders[order.id] = order
        new: list[Fill] = []
        positions: list[Position] = []
        for sym, side, qty, px, mult in legs:
            sign = SIGN[side]
            if self._risk_on:
                pos = book.positions.get(sym)
                self._note_fill(book.id, sym, pos.qty if pos is not None else 0.0, sign, qty,
                                now, self._instruments.get(sym))
            state = book_fill(book, self._lots, sym, mult, sign, qty, px, 0.0, now,
                              self._bar_index, order.tag)
            positions.append(state.view(self._mark.get(sym, px)))
            fill = trusted(Fill, id=self._ids("f"), order_id=order.id, account=book.id,
                           symbol=sym, side=side, qty=qty, price=px, commission=0.0, time=now,
                           bar_index=self._bar_index, price_source="feed", kind=kind)
            book.fills.append(fill)
            new.append(fill)
            self._group_note(None, fill)
        order.__dict__.update(filled_qty=contracts, avg_fill_price=legs[0][3])
        self._finish(order, OrderStatus.FILLED, None)
        self._mark.pop(symbol, None)
        fills.extend(new)
        self._persist_mleg(BrokerChange(orders=[order], fills=new, positions=positions,
                                        accounts=[book.snapshot()]))

    def expiry_events(self, account: str) -> list[dict[str, Any]]:
        """The account's settled options still in memory (kind, symbol, price, reason)."""
        out: list[dict[str, Any]] = []
        book = self._books[account]
        for fill in book.fills:
            if fill.kind is not FillKind.TRADE:
                order = book.orders.get(fill.order_id)
                if order is None and self._store is not None:  # restored: read it back
                    order = self._store.get_order(fill.order_id)
                out.append({"kind": fill.kind.value, "symbol": fill.symbol,
                            "side": fill.side.value, "qty": fill.qty, "price": fill.price,
                            "reason": order.tag if order is not None else None})
        return out
