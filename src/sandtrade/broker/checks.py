"""Whether an order may be accepted: its fields (fast path and pydantic), the symbol's rules,
buying power.

:func:`validated_order` turns a submission into an :class:`~sandtrade.models.Order` or raises
:class:`~sandtrade.errors.OrderRejected` naming the field; :class:`OrderChecks` is the part of
:class:`~sandtrade.broker.paper.PaperBroker` that says why a well-formed order is refused.
"""

from __future__ import annotations

import difflib
import math
from datetime import datetime
from typing import TYPE_CHECKING

from pydantic import ValidationError

from sandtrade.broker.lots import EPS, SIGN, AccountBook
from sandtrade.broker.settings import BrokerSettings
from sandtrade.errors import OrderRejected
from sandtrade.models import (
    AssetClass,
    Instrument,
    Order,
    OrderClass,
    OrderSide,
    OrderType,
    TimeInForce,
    option_underlying,
    unvalidated,
)

__all__ = ["MAX_NOTIONAL", "OrderChecks", "order_from", "validated_order"]

_INF = math.inf
_type = type  # validated_order has a parameter named ``type``
#: Time in force by value; a StrEnum member hashes and compares as its value, so members
#: find themselves here too.
_TIF = {t.value: t for t in TimeInForce}
#: Order types by value, the same way (a signal's command names its type as text).
_TYPES = {t.value: t for t in OrderType}
_NO_LIMIT = frozenset({OrderType.MARKET, OrderType.STOP})
_NO_STOP = frozenset({OrderType.MARKET, OrderType.LIMIT})
#: Every field of a new order, at its default (the fast path in validated_order overwrites
#: the ones a submission sets).
_ORDER_DEFAULTS = {name: f.default for name, f in Order.model_fields.items()}
#: The fields a submission sets: what pydantic records as set when it builds the order.
_ORDER_SET_FIELDS = frozenset(("id", "account", "symbol", "side", "type", "qty",
                               "equity_fraction", "limit_price", "stop_price", "tif",
                               "reduce_only", "client_order_id", "tag", "created_at",
                               "updated_at"))
#: No order may be worth more than this: beyond it float arithmetic loses cents, and at 1e308
#: it overflows to inf and NaN (found by tests/security).
MAX_NOTIONAL = 1e15
_ALLOWED_TIF = {
    AssetClass.EQUITY: frozenset(TimeInForce),
    AssetClass.CRYPTO: frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK}),
    AssetClass.OPTION: frozenset({TimeInForce.DAY, TimeInForce.GTC}),
}


def order_from(values: dict[str, object]) -> Order:
    """An :class:`Order` with ``values`` (every field, checked) as its state."""
    return unvalidated(Order, values, set(_ORDER_SET_FIELDS))


#: Fields a whole-order check's message may name (the first one named is the field).
_NAMED_FIELDS = ("limit_price", "stop_price", "qty", "take_profit", "stop_loss", "trail_price",
                 "trail_percent", "order_class", "tif", "type")


def _field_named_in(message: str) -> str:
    """The order field a whole-order check's message is about (``order`` when none is)."""
    found = [(message.find(name), name) for name in _NAMED_FIELDS if name in message]
    return min(found)[1] if found else "order"


def validated_order(order_id: str, account: str, symbol: str, side: OrderSide | str,
                    type: OrderType | str, qty: float | None, equity_fraction: float | None,
                    limit_price: float | None, stop_price: float | None,
                    tif: TimeInForce | str, reduce_only: bool, client_order_id: str | None,
                    tag: str | None, now: datetime | None,
                    legs: tuple[object, object, object, object, object] | None = None) -> Order:
    """A new order created at ``now``, validated by pydantic; ``OrderRejected`` naming the
    field if invalid.

    Values of exactly the types a strategy's ``ctx`` sends (plain floats, enum members,
    short strings) that pass every rule of :class:`Order` skip pydantic: its validation
    was 4 µs of each order in a back-test. Anything else, including every value that
    breaks a rule, takes pydantic's path, so errors read the same either way.
    """
    tif_member = _TIF.get(tif) if _type(tif) in (str, TimeInForce) else None
    type_member = _TYPES.get(type) if _type(type) in (str, OrderType) else None
    if (legs is None and tif_member is not None and _type(side) is OrderSide
            and type_member is not None
            and _type(symbol) is str and symbol and _type(account) is str and account
            and _type(reduce_only) is bool
            and (qty is None or (_type(qty) is float and 0.0 < qty < _INF))
            and (equity_fraction is None
                 or (_type(equity_fraction) is float and 0.0 < equity_fraction < 1.0))
            and (qty is not None or equity_fraction is not None)
            and (limit_price is None if type_member in _NO_LIMIT else
                 _type(limit_price) is float and 0.0 < limit_price < _INF)
            and (stop_price is None if type_member in _NO_STOP else
                 _type(stop_price) is float and 0.0 < stop_price < _INF)
            and (client_order_id is None
                 or (_type(client_order_id) is str and len(client_order_id) <= 128))
            and (tag is None or (_type(tag) is str and len(tag) <= 256))):
        values = _ORDER_DEFAULTS.copy()
        values.update(id=order_id, account=account, symbol=symbol, side=side, type=type_member,
                      qty=qty, equity_fraction=equity_fraction, limit_price=limit_price,
                      stop_price=stop_price, tif=tif_member, reduce_only=reduce_only,
                      client_order_id=client_order_id, tag=tag, created_at=now,
                      updated_at=now)
        return order_from(values)
    extra: dict[str, object] = {}
    if legs is not None:
        order_class, take_profit, stop_loss, trail_price, trail_percent = legs
        if order_class is None:
            exits = sum(x is not None for x in (take_profit, stop_loss)) + (
                (trail_price is not None or trail_percent is not None)
                and type != OrderType.TRAILING_STOP)
            order_class = (OrderClass.BRACKET if take_profit is not None and stop_loss is not None
                           else OrderClass.OTO if exits else OrderClass.SIMPLE)
        extra = {"order_class": order_class, "take_profit": take_profit,
                 "stop_loss": stop_loss, "trail_price": trail_price,
                 "trail_percent": trail_percent}
    try:
        return Order(
            id=order_id, account=account, symbol=symbol, side=side, type=type,
            qty=qty, equity_fraction=equity_fraction, limit_price=limit_price,
            stop_price=stop_price, tif=tif, reduce_only=reduce_only,
            client_order_id=client_order_id, tag=tag, created_at=now,
            updated_at=now, **extra)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(x) for x in err["loc"]) or _field_named_in(err["msg"])
        value = f" (got {err['input']!r})" if "input" in err and err["loc"] else ""
        msg = err["msg"].removeprefix("Value error, ")  # pydantic's, not ours
        raise OrderRejected(f"{field}: {msg}{value}", field=field) from None


class OrderChecks:
    """The broker's refusals of well-formed orders: symbol, time in force, lots, price band,
    notional and buying power (a mixin of :class:`~sandtrade.broker.paper.PaperBroker`)."""

    if TYPE_CHECKING:  # PaperBroker's state and methods these checks read
        settings: BrokerSettings
        _instruments: dict[str, Instrument]
        _mark: dict[str, float]
        _working: dict[str, list[Order]]
        _no_prices: dict[str, str]
        _unpriced: set[str]
        _own_marks: dict[str, dict[str, float]]
        _risk_on: bool

        def _risk_problem(self, book: AccountBook, order: Order, inst: Instrument,
                          held: float, ref: float | None) -> str | None: ...
        def position_qty(self, account_id: str, symbol: str) -> float: ...
        def _buying_power(self, book: AccountBook) -> float: ...
        def _option_order_problem(self, book: AccountBook, order: Order, inst: Instrument,
                                  held: float) -> str | None: ...

    def working_total(self) -> int:
        """How many orders are working, all accounts together (a bound of any one's: the
        open-orders quota counts an account's only when the total reaches it)."""
        return sum(map(len, self._working.values()))

    def _check(self, book: AccountBook, order: Order) -> str | None:
        """Why the broker refuses ``order``, or None when it accepts it."""
        sym = order.symbol
        inst = self._instruments.get(sym)
        if inst is None and option_underlying(sym) is not None:  # any OCC contract trades
            inst = self._instruments[sym] = Instrument.option(sym)
        if inst is None:
            close = difflib.get_close_matches(sym, self._instruments, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            return f"unknown symbol {sym!r}{hint}"
        if self._no_prices and sym in self._no_prices:
            return self._no_prices[sym]
        if order.tif not in _ALLOWED_TIF[inst.asset_class]:
            allowed = ", ".join(sorted(t.value for t in _ALLOWED_TIF[inst.asset_class]))
            return (f"time in force {order.tif.value!r} is not available for "
                    f"{inst.asset_class.value} {sym} (allowed: {allowed})")
        if order.qty is not None and (order.qty < inst.lot_size * (1 - 1e-9)
                                      or not inst.is_whole_lots(order.qty)):
            # The same words the signal pipeline uses to refuse such a quantity up front.
            return inst.quantity_problem(order.qty)
        ref = self._mark.get(sym)
        if ref is None and self._own_marks:  # a symbol priced by the account's signals
            ref = self._own_marks.get(book.id, {}).get(sym)
        if order.limit_price is not None or order.stop_price is not None:
            for label, px in (("limit", order.limit_price), ("stop", order.stop_price)):
                if px is None:
                    continue
                if ref is not None and abs(px / ref - 1) > self.settings.price_band_pct:
                    return (f"{label} price {px:g} is {abs(px / ref - 1):.0%} away from the "
                            f"last price {ref:g} of {sym}; orders must be within "
                            f"±{self.settings.price_band_pct:.0%}")
            if ref is None:
                ref = order.limit_price or order.stop_price
        pos = book.positions.get(sym)  # position_qty, inlined: once per order
        held = pos.qty if pos is not None else 0.0
        sign = SIGN[order.side]
        if inst.expiry is not None:
            problem = self._option_order_problem(book, order, inst, held)
            if problem is not None:
                return problem
        if order.order_class is not OrderClass.SIMPLE or order.type is OrderType.TRAILING_STOP:
            problem = self._class_problem(order, held, sign, ref)
            if problem is not None:
                return problem
        if self._risk_on:
            problem = self._risk_problem(book, order, inst, held, ref)
            if problem is not None:
                return problem
        if order.reduce_only:
            if held * sign >= 0:
                return f"reduce-only {order.side.value} order but no {sym} position to reduce"
            return None
        if order.qty is None:  # sized from buying power when it fills
            if sign < 0 and held <= 0 and not (self.settings.allow_short and inst.shortable):
                return f"short selling {sym} is not allowed"
            return None
        if ref is None:
            # A market order before the symbol's first price (a host that has just started, a
            # new symbol), taken as a broker takes one before the open: it fills at the first
            # bar's open, where buying power is checked as at every fill and its value against
            # the limits below (self._unpriced).
            self._unpriced.add(order.id)
            return None
        notional = order.qty * ref * inst.multiplier
        if not notional < MAX_NOTIONAL:  # also catches inf/nan from absurd quantities
            return (f"order value of {order.qty:g} {sym} at ~{ref:,.2f} is beyond any account "
                    f"(limit {MAX_NOTIONAL:,.0f})")
        if notional < inst.min_notional:
            return (f"order value {notional:,.2f} is below {sym}'s minimum notional "
                    f"{inst.min_notional:,.2f}")
        closing = min(order.qty, abs(held)) if held * sign < 0 else 0.0
        opening = order.qty - closing
        if opening <= EPS:
            return None
        if sign < 0 and not (self.settings.allow_short and inst.shortable):
            return (f"short selling {sym} is not allowed: the order sells {order.qty:g} "
                    f"but the account holds {max(held, 0):g}")
        margin = self.settings.long_margin if sign > 0 else self.settings.short_margin
        needed = opening * ref * inst.multiplier * margin + self._commission_estimate(
            order, opening, ref, inst)
        available = self._buying_power(book) + self._pending_release(book, order)
        if needed > available + 1e-9:
            return (f"insufficient buying power: {order.side.value} {order.qty:g} {sym} at "
                    f"~{ref:,.2f} needs {needed:,.2f}, {available:,.2f} available")
        return None

    def _class_problem(self, order: Order, held: float, sign: int,
                       ref: float | None) -> str | None:
        """Why an order of a class (or a trailing stop) cannot be accepted now, or None."""
        sym = order.symbol
        if order.type is OrderType.TRAILING_STOP and sym not in self._mark:
            return (f"trail_price/trail_percent: a trailing stop trails the last price, and "
                    f"{sym} has none yet")
        if order.order_class is OrderClass.OCO:
            if held * sign >= 0:
                return (f"order_class: an oco order is exit-only, and there is no {sym} "
                        f"position for a {order.side.value} to exit")
            return None
        if ref is None or order.order_class is OrderClass.SIMPLE:
            return None
        # An entry's absolute exits must lie on the right side of where it will fill.
        entry = order.limit_price if order.type is OrderType.LIMIT else (
            order.stop_price if order.type is not OrderType.MARKET else ref)
        assert entry is not None
        above = sign > 0
        for name, spec, profit in (("take_profit", order.take_profit, True),
                                   ("stop_loss", order.stop_loss, False)):
            if spec is None or spec.price is None:
                continue
            want_above = above if profit else not above
            if (spec.price <= entry) if want_above else (spec.price >= entry):
                return (f"{name}.price {spec.price:g} must be "
                        f"{'above' if want_above else 'below'} the entry price {entry:g} of "
                        f"a {order.side.value} {order.order_class.value} order")
        return None

    def _commission_estimate(self, order: Order, qty: float, price: float,
                             inst: Instrument) -> float:
        return max(self.settings.commission(qty, price, inst.multiplier),
                   self.settings.commission_min)

    def _pending_release(self, book: AccountBook, new: Order) -> float:
        """Margin that working orders and ``new`` will free by reducing positions (closing
        before opening); a position frees its margin once, however many orders reduce it."""
        # Only orders against a held position can reduce it: look at those symbols' working
        # orders alone (a host with thousands of working orders checks each new one).
        reducing: dict[str, float] = {}
        for sym, pos in book.positions.items():
            held = pos.qty
            total = 0.0
            for o in self._working.get(sym, ()):
                if o.account == book.id and o.qty is not None and held * o.side.sign < 0:
                    total += o.remaining_qty
            if (new.symbol == sym and new.qty is not None and held * new.side.sign < 0
                    and new.id not in book.orders):
                total += new.remaining_qty
            if total:
                reducing[sym] = total
        release = 0.0
        for sym, qty in reducing.items():
            pos = book.positions[sym]
            m = self.settings.long_margin if pos.qty > 0 else self.settings.short_margin
            release += (min(qty, abs(pos.qty)) * self._mark.get(sym, pos.avg_price)
                        * pos.multiplier * m)
        return release
