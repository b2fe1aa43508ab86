"""Multi-leg options orders (``mleg``): checks, atomic fills, position groups, options levels
and the buying power options hold.

:class:`MultiLeg` is the part of :class:`~sandtrade.broker.paper.PaperBroker` that trades
spreads. Option quotes come from a provider the broker is given (``quotes``: symbol -> the
latest :class:`~sandtrade.models.Quote`, None when not priced); the broker knows no market
room.

- **Prices.** A leg's price comes from its quote under the fill profile named by the
  ``multileg_fill`` setting: ``mid``, ``natural`` (a buy pays the ask, a sell receives the bid)
  or ``share`` (a buy pays ``bid + s x (ask - bid)``, a sell receives ``ask - s x (ask - bid)``,
  ``s`` = ``multileg_spread_share``; 0.5 is the mid, 1 the natural price). The net price per
  spread is ``sum(sign x ratio x price x multiplier) / 100``: an option's price for option legs,
  and a buy-write (100 shares and a short call) quotes as the stock's price minus the premium.
  Positive is a debit, negative a credit. A limit order fills once the net price is at or
  below its limit (a debit no higher, a credit no smaller). A stock leg without a quote is
  priced at the broker's last price of the stock.
- **Atomic fills.** Every leg fills at once, in one :class:`~sandtrade.models.BrokerChange`
  (one transaction), or none does: an order whose legs are not all quoted keeps working.
  Orders are worked when submitted, at each bar or quote of their underlying or of a leg, and
  by :meth:`MultiLeg.work_multileg`.
- **Groups.** The legs an order opened are a position group named by the order's id
  (:meth:`MultiLeg.position_groups`), closed as one by :meth:`MultiLeg.close_group`. Groups are
  not stored: they follow from the stored orders and fills, and are rebuilt with them.
- **Options levels** (Alpaca's, docs.alpaca.markets/docs/options-trading): 0 no options; 1
  covered calls and cash-secured puts; 2 also long calls and puts; 3 also spreads, i.e. every
  multi-leg order. A new account is at the ``options_level`` setting (3, as Alpaca's paper
  accounts); an account's risk rules may lower it. Alpaca offers no uncovered short calls at
  any level; here a single-leg uncovered call needs level 3 and is margined as below.
- **Buying power.** A group holds what it can still lose: its value now less its lowest value
  at expiry over every price of the underlying (a debit spread holds its debit, a credit
  spread its width less the credit, an iron condor the wider wing less the credit). Legs that
  expire later count at their intrinsic value when long and at their most (the stock price for
  a call, the strike for a put) when short, so a calendar holds its debit. A group whose loss
  has no bound, and option positions held outside groups, are margined per leg: a long option
  at its value; an uncovered short option by the Reg-T-style rule of FINRA Rule 4210(f)(2)(G)
  and the CBOE Margin Manual: 100 % of the option's value plus 20 % of the underlying's value
  less the amount it is out of the money, at least the option's value plus 10 % of the
  underlying's value (calls) or of the strike (puts); 15 % instead of 20 % for the
  broad-based indexes that settle in cash. A short put at level 1 or 2 is cash-secured (the
  strike x 100 held).

It is one file because a spread's check, its fill and the buying power it holds all rest on
the same payoff bounds and position groups: the net price refused as impossible and the loss
a group holds are one computation (:func:`payoff_bounds`), and splitting them would let the
two drift apart.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from sandtrade.broker.lots import EPS, SIGN, AccountBook, Lot, book_fill
from sandtrade.broker.settings import BrokerSettings
from sandtrade.errors import OrderRejected
from sandtrade.models import (
    CASH_SETTLED_ROOTS,
    AssetClass,
    BrokerChange,
    Fill,
    FillKind,
    Instrument,
    Leg,
    LegIntent,
    Order,
    OrderClass,
    OrderSide,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    TimeInForce,
    option_underlying,
    trusted,
)

if TYPE_CHECKING:
    from sandtrade.broker.risk import RiskRules

__all__ = ["CONTRACT", "MultiLeg", "PositionGroup", "QuoteProvider", "session_end"]

#: The net price's unit: a spread's value per 100 shares of its underlying (one contract).
CONTRACT = 100.0
#: symbol -> its latest quote, or None when it is not priced.
QuoteProvider = Callable[[str], Quote | None]
_SHARES = {"mid": 0.5, "natural": 1.0}


def session_end(expiry: date) -> datetime:
    """16:00 New York time on ``expiry``, as a naive UTC time (the broker clock's kind): 20:00
    UTC while US daylight saving time is on (second Sunday of March to first Sunday of
    November, the rule since 2007), 21:00 otherwise. Computed, not read from a time-zone
    database, so a sandboxed worker needs no files."""
    march = date(expiry.year, 3, 8)
    dst_start = march.replace(day=8 + (6 - march.weekday()) % 7)
    nov = date(expiry.year, 11, 1)
    dst_end = nov.replace(day=1 + (6 - nov.weekday()) % 7)
    hour = 20 if dst_start <= expiry < dst_end else 21
    return datetime(expiry.year, expiry.month, expiry.day, hour)


class PositionGroup:
    """The legs one multi-leg order opened, still held: ``legs`` maps a symbol to the signed
    units (contracts, shares) the group holds of it."""

    __slots__ = ("account", "id", "legs")

    def __init__(self, account: str, group_id: str) -> None:
        self.account = account
        self.id = group_id
        self.legs: dict[str, float] = {}

    def to_json(self) -> dict[str, Any]:
        """As plain JSON values."""
        return {"id": self.id, "account": self.account, "legs": dict(self.legs)}


def _intrinsic(inst: Instrument, s: float) -> float:
    assert inst.strike is not None
    return max(s - inst.strike, 0.0) if inst.right == "call" else max(inst.strike - s, 0.0)


def payoff_bounds(units: Mapping[str, float], instruments: Mapping[str, Instrument]
                  ) -> tuple[float | None, float | None]:
    """``(lowest, highest)`` value at the nearest expiry of holding ``units`` (symbol ->
    signed units), over every price of the underlying from 0 up; None where there is no bound.
    Legs that expire later count at a bound of their value (long: intrinsic, short: the most a
    call or put can be worth), and the highest value is only given when every option expires
    together (otherwise None)."""
    opts = {s: instruments[s] for s in units if instruments[s].expiry is not None}
    first = min(i.expiry for i in opts.values() if i.expiry is not None)
    exact = all(i.expiry == first for i in opts.values())

    def value(s: float) -> float:
        total = 0.0
        for sym, u in units.items():
            inst = instruments[sym]
            mult = inst.multiplier
            if inst.expiry is None:
                total += u * s * mult
            elif inst.expiry == first or u > 0:
                total += u * _intrinsic(inst, s) * mult
            else:  # a short that expires later is worth at most S (call) or K (put)
                assert inst.strike is not None
                total += u * (s if inst.right == "call" else inst.strike) * mult
        return total

    # Beyond the highest strike the value is linear; its slope decides the bounds there.
    slope = 0.0
    for sym, u in units.items():
        inst = instruments[sym]
        if inst.expiry is None or inst.right == "call":
            slope += u * inst.multiplier
    points = [0.0, *sorted({i.strike for i in opts.values() if i.strike is not None})]
    values = [value(p) for p in points]
    low: float | None = min(values)
    high: float | None = max(values) if exact else None
    if slope < -EPS:
        low = None
    if slope > EPS:
        high = None
    return low, high


class MultiLeg:
    """Multi-leg orders, position groups, options levels and their buying power (a mixin of
    :class:`~sandtrade.broker.paper.PaperBroker`)."""

    if TYPE_CHECKING:  # PaperBroker's state and methods multi-leg orders use
        settings: BrokerSettings
        _ids: Callable[[str], str]
        _store: Any
        _batch: list[BrokerChange] | None
        _instruments: dict[str, Instrument]
        _books: dict[str, AccountBook]
        _lots: dict[tuple[str, str], deque[Lot]]
        _orders: dict[str, Order]
        _working: dict[str, list[Order]]
        _mark: dict[str, float]
        _now: datetime | None
        _bar_index: int | None
        _risk_on: bool
        _price_source: str

        def _book(self, account_id: str) -> AccountBook: ...
        def _buying_power(self, book: AccountBook) -> float: ...
        def _persist(self, change: BrokerChange) -> None: ...
        def _retire(self, order: Order) -> None: ...
        def _finish(self, order: Order, status: OrderStatus, reason: str | None) -> None: ...
        def _note_fill(self, account: str, symbol: str, held: float, sign: int, qty: float,
                       when: datetime, inst: Instrument | None) -> None: ...
        def _risk_accepted(self, account: str) -> None: ...
        def rules(self, account: str) -> RiskRules: ...
        def find_client_order(self, account_id: str, client_order_id: str) -> Order | None: ...
        def position_qty(self, account_id: str, symbol: str) -> float: ...
        def _marks_for(self, account_id: str) -> dict[str, float]: ...
        _own_marks: dict[str, dict[str, float]]

    def _multileg_init(self, quotes: QuoteProvider | None) -> None:
        self._quotes = quotes
        self._mleg_working: list[Order] = []
        # account -> group id -> group
        self._groups: dict[str, dict[str, PositionGroup]] = {}
        # accounts that hold (or held) options: their buying power takes the options path
        self._option_accounts: set[str] = set()
        # the earliest session end of a held option's expiry (None: no option held)
        self._expiry_due: datetime | None = None

    # ------------------------------------------------------------------ set-up and views

    def set_quote_provider(self, quotes: QuoteProvider | None) -> None:
        """Where option quotes come from: ``symbol -> Quote | None`` (a host's chain pricer,
        a recorded chain). Without one, every option leg is unquoted."""
        self._quotes = quotes

    def options_level(self, account: str) -> int:
        """The account's options level (its risk rules', else the broker's setting)."""
        level = self.rules(account).options_level
        return self.settings.options_level if level is None else level

    def position_groups(self, account: str) -> list[PositionGroup]:
        """The account's open multi-leg position groups, oldest first."""
        self._book(account)
        return list(self._groups.get(account, {}).values())

    def option_instrument(self, symbol: str) -> Instrument | None:
        """The instrument of ``symbol`` (an OCC option symbol registered on first use)."""
        inst = self._instruments.get(symbol)
        if inst is None and option_underlying(symbol) is not None:
            inst = self._instruments[symbol] = Instrument.option(symbol)
        return inst

    def _leg_quote(self, symbol: str, inst: Instrument) -> Quote | None:
        quote = self._quotes(symbol) if self._quotes is not None else None
        if quote is None and inst.asset_class is not AssetClass.OPTION:
            last = self._mark.get(symbol)
            if last is not None:
                return Quote(symbol, self._now or datetime.min, last, last)
        return quote

    def _leg_price(self, side: OrderSide, quote: Quote) -> float:
        s = self.settings
        share = _SHARES.get(s.multileg_fill, s.multileg_spread_share)
        spread = quote.ask - quote.bid
        return quote.bid + share * spread if side is OrderSide.BUY else quote.ask - share * spread

    # ------------------------------------------------------------------ submitting

    def submit_multileg(self, account: str, legs: Iterable[Leg | Mapping[str, Any]],
                        qty: float, *, type: OrderType | str | None = None,
                        limit_price: float | None = None,
                        tif: TimeInForce | str = TimeInForce.DAY,
                        client_order_id: str | None = None, tag: str | None = None,
                        close_group: str | None = None,
                        source: OrderSource | None = None) -> Order:
        """Check a multi-leg order and accept it (it is worked at once), or record it as
        rejected with the reason. ``qty`` is the number of spreads, ``limit_price`` the net
        price per spread (positive a debit, negative a credit); without it the order is a
        market order. ``close_group`` names a position group to close as one: its legs are
        the group's, reversed (give no ``legs`` then).

        Malformed orders raise :class:`OrderRejected` naming the field (``legs[1].ratio``);
        well-formed orders the broker refuses come back ``rejected`` with ``reject_reason``.
        A repeated ``client_order_id`` returns the order first submitted with it. ``source``
        is the door it came through.
        """
        book = self._book(account)
        if client_order_id is not None:
            first = self.find_client_order(account, client_order_id)
            if first is not None:
                return first
        leg_list: list[Leg | Mapping[str, Any]] = list(legs)
        if close_group is not None:
            if leg_list:
                raise OrderRejected("legs: give legs or close_group, not both", field="legs")
            closing, spreads = self._closing_legs(account, close_group)
            leg_list = list(closing)
            qty = spreads * qty if qty else spreads
        parsed: list[Leg] = []
        for i, leg in enumerate(leg_list):
            try:
                parsed.append(leg if isinstance(leg, Leg) else Leg.model_validate(leg))
            except ValidationError as e:
                err = e.errors()[0]
                where = ".".join(str(x) for x in err["loc"])
                field = f"legs[{i}]" + (f".{where}" if where else "")
                raise OrderRejected(f"{field}: {err['msg']} (got {err.get('input')!r})",
                                    field=field) from None
        if len(parsed) > self.settings.max_legs:
            raise OrderRejected(
                f"legs: {len(parsed)} legs; this broker takes 2 to {self.settings.max_legs} "
                "(the operator's max_legs setting)", field="legs")
        symbol = next((u for u in map(option_underlying, (p.symbol for p in parsed)) if u),
                      parsed[0].symbol if parsed else "?")
        if type is None:
            type = OrderType.LIMIT if limit_price is not None else OrderType.MARKET
        try:
            order = Order(id=self._ids("o"), account=account, symbol=symbol, side=OrderSide.BUY,
                          type=type, qty=qty, limit_price=limit_price, tif=tif,
                          client_order_id=client_order_id, tag=tag, created_at=self._now,
                          updated_at=self._now, order_class=OrderClass.MLEG, legs=parsed,
                          parent_id=close_group, source=source)
        except ValidationError as e:
            err = e.errors()[0]
            msg = err["msg"].removeprefix("Value error, ")
            field = ".".join(str(x) for x in err["loc"]) or msg.split(":", 1)[0].split(" ")[0]
            text = f"{field}: {msg}" if err["loc"] else msg
            raise OrderRejected(text, field=field) from None
        reason = self._mleg_check(book, order)
        self._orders[order.id] = order
        book.orders[order.id] = order
        if client_order_id is not None:
            book.client_ids[client_order_id] = order.id
        if reason:
            order.__dict__.update(status=OrderStatus.REJECTED, reject_reason=reason)
            self._retire(order)
            self._persist_mleg(BrokerChange(orders=[order]))
            return order
        order.__dict__["status"] = OrderStatus.ACCEPTED
        self._mleg_working.append(order)
        if self._risk_on:
            self._risk_accepted(account)
        self._persist_mleg(BrokerChange(orders=[order]))
        self._work_mleg(order, [])
        return order

    def close_group(self, account: str, group_id: str, *, limit_price: float | None = None,
                    tif: TimeInForce | str = TimeInForce.DAY,
                    client_order_id: str | None = None, tag: str | None = None,
                    source: OrderSource | None = None) -> Order:
        """Close a position group as one multi-leg order (its legs reversed), at market or
        at a net ``limit_price``."""
        return self.submit_multileg(account, [], 0, limit_price=limit_price, tif=tif,
                                    client_order_id=client_order_id, tag=tag, source=source,
                                    close_group=group_id)

    def _closing_legs(self, account: str, group_id: str) -> tuple[list[Leg], float]:
        group = self._groups.get(account, {}).get(group_id)
        if group is None:
            raise OrderRejected(f"close_group: account {account!r} has no open position group "
                                f"{group_id!r}", field="close_group")
        units = {s: u for s, u in group.legs.items() if abs(u) > EPS}
        g = 0
        for u in units.values():
            g = math.gcd(g, round(abs(u)))
        legs = [Leg(symbol=s, side=OrderSide.SELL if u > 0 else OrderSide.BUY,
                    ratio=round(abs(u)) // g, intent=LegIntent.CLOSE) for s, u in units.items()]
        return legs, float(g)

    def _persist_mleg(self, change: BrokerChange) -> None:
        if self._store is not None or self._batch is not None:
            self._persist(change)

    def _mleg_check(self, book: AccountBook, order: Order) -> str | None:
        """Why the broker refuses a well-formed multi-leg order now, or None."""
        assert order.legs is not None and order.qty is not None
        level = self.options_level(book.id)
        if level < 3:
            return (f"options level: a multi-leg order needs options level 3 (spreads); "
                    f"account {book.id!r} is at level {level}")
        units: dict[str, float] = {}
        net = 0.0
        for i, leg in enumerate(order.legs):
            inst = self.option_instrument(leg.symbol)
            if inst is None:
                inst = self._instruments[leg.symbol] = Instrument.for_symbol(leg.symbol)
            if inst.expiry is not None and self._now is not None \
                    and session_end(inst.expiry) <= self._now:
                return (f"legs[{i}].symbol: {leg.symbol} expired on {inst.expiry.isoformat()} "
                        f"(the broker's time is {self._now.isoformat(sep=' ')})")
            problem = self._intent_problem(book, order, i, leg)
            if problem is not None:
                return problem
            units[leg.symbol] = SIGN[leg.side] * leg.ratio
            quote = self._leg_quote(leg.symbol, inst)
            if quote is None:
                return f"no quote for {leg.symbol}"
            net += SIGN[leg.side] * leg.ratio * self._leg_price(leg.side, quote) \
                * inst.multiplier / CONTRACT
        low, high = payoff_bounds(units, self._instruments)
        lp = order.limit_price
        if lp is not None:
            if high is not None and lp > high / CONTRACT + 1e-9:
                return (f"limit_price: a net debit of {lp:.2f} per spread is impossible: the "
                        f"legs are worth at most {high / CONTRACT:.2f} at expiry, whatever "
                        f"{order.symbol} does")
            if low is not None and lp < low / CONTRACT - 1e-9:
                what = (f"a net credit of {-lp:.2f}" if lp < 0 else f"a net price of {lp:.2f}")
                return (f"limit_price: {what} per spread is impossible: the legs are worth at "
                        f"least {low / CONTRACT:.2f} at expiry, whatever {order.symbol} does "
                        f"(a credit can be at most the spread's width)")
        return self._mleg_buying_power_problem(book, order, net, "")

    def _intent_problem(self, book: AccountBook, order: Order, i: int, leg: Leg) -> str | None:
        pos = book.positions.get(leg.symbol)
        held = pos.qty if pos is not None else 0.0
        sign = SIGN[leg.side]
        units = (order.qty or 0.0) * leg.ratio
        if leg.intent is LegIntent.CLOSE and (held * sign >= 0 or abs(held) < units - EPS):
            want = "long" if sign < 0 else "short"
            return (f"legs[{i}].intent: close, but the account holds {held:g} {leg.symbol}; a "
                    f"{leg.side.value} to close needs a {want} position of at least {units:g}")
        if leg.intent is LegIntent.OPEN and held * sign < 0:
            return (f"legs[{i}].intent: open, but the account holds {held:g} {leg.symbol}, "
                    f"which a {leg.side.value} would close; use intent close or auto")
        return None

    def _mleg_buying_power_problem(self, book: AccountBook, order: Order, net: float,
                                   when: str) -> str | None:
        """Why the account cannot afford ``order`` at ``net``, or None: its buying power
        after the fill (the legs booked, the group formed) must not be negative."""
        assert order.legs is not None and order.qty is not None
        before = self._buying_power(book)
        after = self._buying_power_after(book, order)
        if after >= -1e-9 or after >= before:  # an order that frees buying power passes
            return None
        needed = before - after
        return (f"insufficient buying power{when}: the {len(order.legs)}-leg order at a net "
                f"{net:.2f} per spread needs {needed:,.2f}, {max(before, 0.0):,.2f} available")

    def _buying_power_after(self, book: AccountBook, order: Order) -> float:
        """Buying power were ``order`` filled now at its legs' prices (the books unchanged)."""
        assert order.legs is not None and order.qty is not None
        extra: dict[str, tuple[float, float]] = {}
        cash = 0.0
        for leg in order.legs:
            inst = self._instruments[leg.symbol]
            quote = self._leg_quote(leg.symbol, inst)
            price = self._leg_price(leg.side, quote) if quote is not None else 0.0
            u = SIGN[leg.side] * leg.ratio * order.qty
            extra[leg.symbol] = (u, price)
            cash -= u * price * inst.multiplier
        return self._options_buying_power(book, extra, cash, order)

    # ------------------------------------------------------------------ working and filling

    def work_multileg(self) -> list[Fill]:
        """Work every working multi-leg order against its legs' quotes now (a host calls it
        when option quotes change)."""
        fills: list[Fill] = []
        for order in list(self._mleg_working):
            if order.is_open:
                self._work_mleg(order, fills)
        return fills

    def _work_mleg_for(self, symbol: str) -> list[Fill]:
        """After a price of ``symbol``: work the multi-leg orders on it (its underlying or a
        leg), and mark the options of it that accounts hold."""
        fills: list[Fill] = []
        for order in list(self._mleg_working):
            if order.is_open and (order.symbol == symbol or any(
                    leg.symbol == symbol for leg in order.legs or ())):
                self._work_mleg(order, fills)
        if self._option_accounts and self._quotes is not None:
            for book in self._books.values():
                for sym in book.positions:
                    inst = self._instruments.get(sym)
                    if inst is not None and inst.underlying is not None and (
                            option_underlying(sym) == symbol or sym == symbol):
                        q = self._quotes(sym)
                        if q is not None:
                            self._mark[sym] = q.mid
        return fills

    def _work_mleg(self, order: Order, fills: list[Fill]) -> None:
        """Fill every leg of ``order`` now if its quotes and limit allow, in one change."""
        assert order.legs is not None and order.qty is not None
        now = self._now
        if order.tif is TimeInForce.DAY and now is not None and order.created_at is not None \
                and now.date() > order.created_at.date():
            self._end_mleg(order, OrderStatus.EXPIRED, "day order expired at the end of the "
                           f"{order.created_at.date().isoformat()} session")
            return
        prices: list[float] = []
        net = 0.0
        for leg in order.legs:
            inst = self._instruments[leg.symbol]
            quote = self._leg_quote(leg.symbol, inst)
            if quote is None:
                return  # not all quoted: keeps working
            price = max(self._leg_price(leg.side, quote), 0.0)
            prices.append(price)
            net += SIGN[leg.side] * leg.ratio * price * inst.multiplier / CONTRACT
        if order.type is OrderType.LIMIT and order.limit_price is not None \
                and net > order.limit_price + 1e-9:
            return
        book = self._books[order.account]
        for i, leg in enumerate(order.legs):
            problem = self._intent_problem(book, order, i, leg)
            if problem is not None:
                self._end_mleg(order, OrderStatus.CANCELED, f"at fill: {problem}")
                return
        problem = self._mleg_buying_power_problem(book, order, net, " at fill")
        if problem is not None:
            self._end_mleg(order, OrderStatus.CANCELED, problem)
            return
        self._execute_mleg(book, order, prices, net, fills)

    def _end_mleg(self, order: Order, status: OrderStatus, reason: str) -> None:
        self._finish(order, status, reason)
        self._persist_mleg(BrokerChange(orders=[order]))

    def _execute_mleg(self, book: AccountBook, order: Order, prices: list[float], net: float,
                      fills: list[Fill]) -> None:
        """Book every leg of ``order`` and persist them as one change."""
        assert order.legs is not None and order.qty is not None
        s = self.settings
        now = self._now or datetime.min
        new: list[Fill] = []
        positions: list[Position] = []
        total_comm = 0.0
        for leg, price in zip(order.legs, prices, strict=True):
            inst = self._instruments[leg.symbol]
            units = order.qty * leg.ratio
            comm = s.commission(units, price, inst.multiplier)
            if not total_comm and not new and s.commission_min:
                legs_comm = sum(s.commission(order.qty * lg.ratio, p,
                                             self._instruments[lg.symbol].multiplier)
                                for lg, p in zip(order.legs, prices, strict=True))
                comm += max(0.0, s.commission_min - legs_comm)
            total_comm += comm
            sign = SIGN[leg.side]
            if self._risk_on:
                held = book.positions.get(leg.symbol)
                self._note_fill(book.id, leg.symbol, held.qty if held is not None else 0.0,
                                sign, units, now, inst)
            pos = book_fill(book, self._lots, leg.symbol, inst.multiplier, sign, units, price,
                            comm, now, self._bar_index, order.tag)
            positions.append(pos.view(price))
            self._mark[leg.symbol] = price if inst.expiry is None else \
                self._mark.get(leg.symbol, price)
            fill = trusted(Fill, id=self._ids("f"), order_id=order.id, account=book.id,
                           symbol=leg.symbol, side=leg.side, qty=units, price=price,
                           commission=comm, time=now, bar_index=self._bar_index,
                           price_source="feed", kind=FillKind.TRADE)
            book.fills.append(fill)
            new.append(fill)
            self._group_note(order, fill)
        order.__dict__.update(filled_qty=order.qty, avg_fill_price=net, updated_at=now)
        self._finish(order, OrderStatus.FILLED, None)
        self._remark_options(order)
        fills.extend(new)
        self._persist_mleg(BrokerChange(orders=[order], fills=new, positions=positions,
                                        accounts=[book.snapshot()]))

    def _remark_options(self, order: Order) -> None:
        for leg in order.legs or ():
            inst = self._instruments[leg.symbol]
            if inst.expiry is not None and self._quotes is not None:
                q = self._quotes(leg.symbol)
                if q is not None:
                    self._mark[leg.symbol] = q.mid

    # ------------------------------------------------------------------ groups

    def _group_note(self, order: Order | None, fill: Fill) -> None:
        """Follow ``fill`` into the account's position groups (live and when restoring)."""
        inst = self._instruments.get(fill.symbol)
        if inst is not None and inst.expiry is not None:
            self._option_accounts.add(fill.account)
            end = session_end(inst.expiry)
            if self._expiry_due is None or end < self._expiry_due:
                self._expiry_due = end
        groups = self._groups.get(fill.account)
        signed = fill.side.sign * fill.qty
        if fill.kind is not FillKind.TRADE or order is None \
                or order.order_class is not OrderClass.MLEG:
            if groups and fill.kind is not FillKind.TRADE:
                for group in list(groups.values()):  # the contract is gone from every group
                    if fill.symbol in group.legs:
                        del group.legs[fill.symbol]
                        if not group.legs:
                            del groups[group.id]
            return
        if groups is None:
            groups = self._groups[fill.account] = {}
        group_id = order.parent_id or order.id
        found = groups.get(group_id)
        if found is None:
            if order.parent_id is not None:
                return  # closing a group that is already gone
            found = groups[group_id] = PositionGroup(fill.account, group_id)
        group = found
        left = round(group.legs.get(fill.symbol, 0.0) + signed, 9)
        if abs(left) <= EPS:
            group.legs.pop(fill.symbol, None)
        else:
            group.legs[fill.symbol] = left
        if not group.legs:
            del groups[group_id]

    # ------------------------------------------------------------------ buying power

    def _options_buying_power(self, book: AccountBook,
                              extra: Mapping[str, tuple[float, float]] | None = None,
                              cash: float = 0.0, order: Order | None = None) -> float:
        """Buying power of an account that trades options (see the module's rules), with
        ``extra`` units at their prices (symbol -> (units, price)) and ``cash`` added as if
        ``order`` had filled."""
        s = self.settings
        mark = self._marks_for(book.id) if self._own_marks else self._mark
        qty = {sym: pos.qty for sym, pos in book.positions.items()}
        price = {sym: mark.get(sym, pos.avg_price) for sym, pos in book.positions.items()}
        eq = book.basis
        for sym, pos in book.positions.items():
            eq += (price[sym] * pos.qty - pos.cost) * pos.multiplier
        groups = [dict(g.legs) for g in self._groups.get(book.id, {}).values()]
        if extra:
            eq += cash
            for sym, (u, p) in extra.items():
                qty[sym] = qty.get(sym, 0.0) + u
                price.setdefault(sym, p)
                eq += u * p * self._instruments[sym].multiplier
            assert order is not None
            if order.parent_id is not None:
                for g, src in zip(groups, self._groups.get(book.id, {}).values(), strict=True):
                    if src.id == order.parent_id:
                        for sym, (u, _) in extra.items():
                            g[sym] = g.get(sym, 0.0) + u
            else:
                groups.append({sym: u for sym, (u, _) in extra.items()})
        grouped: dict[str, float] = {}
        used = 0.0
        level = self.options_level(book.id)
        for legs in groups:
            legs = {k: v for k, v in legs.items() if abs(v) > EPS}
            if not legs:
                continue
            low = payoff_bounds(legs, self._instruments)[0] if any(
                self._instruments[k].expiry is not None for k in legs) else None
            if low is None:
                continue  # no bound: margined per leg below
            value = sum(u * price.get(k, 0.0) * self._instruments[k].multiplier
                        for k, u in legs.items())
            used += max(0.0, value - low)
            for k, u in legs.items():
                grouped[k] = grouped.get(k, 0.0) + u
        for sym, q in qty.items():
            free = q - grouped.get(sym, 0.0)
            if abs(free) <= EPS:
                continue
            inst = self._instruments.get(sym)
            mult = inst.multiplier if inst is not None else 1.0
            px = price.get(sym, 0.0)
            v = free * px * mult
            if inst is None or inst.expiry is None:
                used += v * s.long_margin if v >= 0 else -v * s.short_margin
            elif free > 0:
                used += v
            else:
                used += self._naked_requirement(inst, -free, px, level)
        return max(0.0, eq - used) if not extra else eq - used

    def _naked_requirement(self, inst: Instrument, contracts: float, price: float,
                           level: int) -> float:
        """What ``contracts`` uncovered short options hold (the module's rule)."""
        assert inst.strike is not None and inst.underlying is not None
        mult = inst.multiplier
        under = CASH_SETTLED_ROOTS.get(inst.underlying, inst.underlying)
        s = self._mark.get(under)
        if s is None and self._quotes is not None:
            q = self._quotes(under)
            s = q.mid if q is not None else None
        if s is None:
            s = inst.strike
        if inst.right == "put" and level < 3:
            return contracts * inst.strike * mult  # cash-secured
        broad = 0.15 if inst.underlying in CASH_SETTLED_ROOTS else 0.20
        otm = max(inst.strike - s, 0.0) if inst.right == "call" else max(s - inst.strike, 0.0)
        floor = 0.10 * (s if inst.right == "call" else inst.strike)
        per_share = price + max(broad * s - otm, floor)
        return contracts * per_share * mult

    def _option_order_problem(self, book: AccountBook, order: Order, inst: Instrument,
                              held: float) -> str | None:
        """Why a single-leg option order breaks the account's options level, or None."""
        level = self.options_level(book.id)
        if level == 0:
            return f"options level: account {book.id!r} is at level 0 (no options trading)"
        sign = SIGN[order.side]
        units = order.qty or 0.0
        closing = min(units, abs(held)) if held * sign < 0 else 0.0
        opening = units - closing
        if opening <= EPS:
            return None
        if sign > 0:
            if level < 2:
                return (f"options level: buying {order.symbol} needs options level 2 (long "
                        f"calls and puts); account {book.id!r} is at level {level}")
            return None
        if inst.right == "call":
            assert inst.underlying is not None
            shares = self.position_qty(book.id, inst.underlying)
            short_calls = sum(-p.qty for s, p in book.positions.items()
                              if p.qty < 0 and (i := self._instruments.get(s)) is not None
                              and i.right == "call" and i.underlying == inst.underlying)
            covered = shares - short_calls * inst.multiplier
            if covered + EPS >= opening * inst.multiplier:
                return None
            if level < 3:
                return (f"options level: selling {opening:g} {order.symbol} uncovered needs "
                        f"options level 3; account {book.id!r} is at level {level} and "
                        f"holds {max(covered, 0):g} uncommitted {inst.underlying} shares "
                        f"({opening * inst.multiplier:g} cover it)")
        return None

    # ------------------------------------------------------------------ restore

    def _restore_multileg(self) -> None:
        """After the orders are restored: working multi-leg orders back to their list."""
        for orders in list(self._working.values()):
            for order in [o for o in orders if o.order_class is OrderClass.MLEG]:
                orders.remove(order)
                self._mleg_working.append(order)

