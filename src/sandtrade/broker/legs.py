"""Order classes: a bracket's or an OTO's exits, OCO siblings, and trailing stops' marks.

The rules, as Alpaca's paper broker has them, with the choices it leaves open:

* **bracket** (an entry with a take profit and a stop loss) and **oto** (an entry with one
  exit: a take profit, a stop loss or a trailing stop): the exits are created when the entry
  first fills, in the same commit as that fill, sized to what filled and priced from that
  fill's price when given as ``percent``/``amount``. Each later fill of the entry adds its
  quantity to every exit still working (partial fills resize). The exits are ``reduce_only``:
  they close what the entry opened and never trade past flat. They carry the entry's class,
  time in force and tag, and name it in ``parent_id``; a stop loss comes before the take
  profit in the book, so when a bar touches both the stop loss is worked first
  (:mod:`~sandtrade.broker.fills` says why).
* **oco** (exit-only): the order itself is the take profit (a limit at
  ``take_profit.price``); its stop loss is created beside it when it is accepted, naming it
  in ``parent_id``. Both are ``reduce_only``.
* **one cancels other**: an exit that fills completely cancels its sibling in the same
  commit (the same :class:`~sandtrade.models.BrokerChange`); a partial fill takes as much off
  the sibling, so the two never sell more than the position they protect. When an exit fills
  completely while its entry is still working, the rest of the entry is canceled too: the
  bracket is done.
* **canceling** any order of a group by request cancels every order of it still working (the
  entry, the exits; for an entry already filled, its exits). When the broker itself ends an
  entry's remainder (an ``ioc`` remainder, a ``day`` entry that expires), the exits of what
  did fill keep working: they protect a position that exists.
* **trailing stop**: ``hwm`` is the high-water mark of a sell (a buy's low-water mark); its
  stop is ``hwm - trail_price`` or ``hwm * (1 - trail_percent / 100)`` (a buy's mirrors it).
  It starts at the last price when the order is accepted, or at the entry's fill price for an
  oto's trailing exit. See :mod:`~sandtrade.broker.fills` for how a bar moves it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from sandtrade.broker.lots import EPS, AccountBook
from sandtrade.models import (
    ExitSpec,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
)

__all__ = ["Legs", "trail_stop"]

_ENTRY_CLASSES = frozenset({OrderClass.BRACKET, OrderClass.OTO})


def trail_stop(order: Order, mark: float) -> float:
    """A trailing stop's stop price for the mark ``mark`` (its ``hwm``)."""
    sell = order.side is OrderSide.SELL
    if order.trail_price is not None:
        return mark - order.trail_price if sell else mark + order.trail_price
    pct = (order.trail_percent or 0.0) / 100
    return mark * (1 - pct) if sell else mark * (1 + pct)


def ratchet(order: Order, price: float) -> None:
    """Move a trailing stop's mark (and stop) to ``price`` when it is beyond the mark: up for
    a sell, down for a buy. Never back."""
    hwm = order.hwm
    if hwm is None or (price > hwm if order.side is OrderSide.SELL else price < hwm):
        order.__dict__.update(hwm=price, stop_price=trail_stop(order, price))


class Legs:
    """Creating, resizing and canceling the orders of a group (a mixin of
    :class:`~sandtrade.broker.paper.PaperBroker`)."""

    if TYPE_CHECKING:  # PaperBroker's state and methods legs read
        _ids: Callable[[str], str]
        _books: dict[str, AccountBook]
        _orders: dict[str, Order]
        _working: dict[str, list[Order]]
        _now: datetime | None
        _legs: dict[str, list[Order]]
        _same_bar: list[Order] | None  # entries whose exits were made on this bar

        def _finish(self, order: Order, status: OrderStatus, reason: str | None) -> None: ...
        def _register(self, order: Order) -> None: ...

    def children(self, order_id: str) -> list[Order]:
        """The exits of an entry (or the stop loss of an oco), in creation order, as long as
        the broker holds them (the store holds them all)."""
        legs = self._legs.get(order_id)
        if legs is not None:
            return list(legs)
        parent = self._orders.get(order_id)
        if parent is None:
            return []
        return [o for o in self._books[parent.account].orders.values()
                if o.parent_id == order_id]

    def _exit_leg(self, parent: Order, kind: str, spec: ExitSpec | None, qty: float,
                  entry: float) -> Order:
        """A new exit of ``parent`` for ``qty`` units, priced from ``entry`` (the fill price)."""
        side = parent.side if parent.order_class is OrderClass.OCO else (
            OrderSide.SELL if parent.side is OrderSide.BUY else OrderSide.BUY)
        up = 1 if parent.side is OrderSide.BUY else -1  # where profit lies
        limit = stop = hwm = None
        if kind == "take_profit":
            assert spec is not None
            typ, limit = OrderType.LIMIT, spec.resolve(entry, up)
        elif kind == "stop_loss":
            assert spec is not None
            stop = spec.resolve(entry, -up)
            typ = OrderType.STOP if spec.limit_price is None else OrderType.STOP_LIMIT
            limit = spec.limit_price
        else:
            typ, hwm = OrderType.TRAILING_STOP, entry
        child = Order(
            id=self._ids("o"), account=parent.account, symbol=parent.symbol, side=side,
            type=typ, qty=qty, limit_price=limit, stop_price=stop, tif=parent.tif,
            reduce_only=True, tag=parent.tag, source=parent.source,
            status=OrderStatus.ACCEPTED,
            order_class=parent.order_class, parent_id=parent.id,
            trail_price=parent.trail_price if hwm is not None else None,
            trail_percent=parent.trail_percent if hwm is not None else None,
            created_at=self._now, updated_at=self._now)
        if hwm is not None:
            ratchet(child, hwm)
        self._register(child)
        self._legs.setdefault(parent.id, []).append(child)
        return child

    def _after_fill(self, order: Order, qty: float, price: float) -> list[Order]:
        """What a fill of ``qty`` at ``price`` does to ``order``'s group; the orders it
        changed (to commit with the fill)."""
        cls = order.order_class
        if cls in _ENTRY_CLASSES and order.parent_id is None:
            return self._entry_filled(order, qty, price)
        mates = self._oco_mates(order)
        if not mates:
            return []
        changed: list[Order] = []
        done = order.status is OrderStatus.FILLED
        for mate in mates:
            if done:
                self._finish(mate, OrderStatus.CANCELED, f"one cancels other: {order.id} filled")
            else:
                mate.__dict__["qty"] = max(mate.filled_qty, (mate.qty or 0.0) - qty)
                if mate.remaining_qty <= EPS:
                    self._finish(mate, OrderStatus.CANCELED,
                                 f"one cancels other: {order.id} filled its quantity")
            changed.append(mate)
        entry = self._orders.get(order.parent_id) if order.parent_id else None
        if done and entry is not None and entry.is_open and entry.order_class in _ENTRY_CLASSES:
            self._finish(entry, OrderStatus.CANCELED,
                         f"its exit {order.id} filled: the {entry.order_class.value} is done")
            changed.append(entry)
        return changed

    def _entry_filled(self, entry: Order, qty: float, price: float) -> list[Order]:
        legs = self._legs.get(entry.id)
        if legs is None:
            legs = []
            # Stop loss first: worked first when a bar touches both (see fills.py).
            if entry.stop_loss is not None:
                legs.append(self._exit_leg(entry, "stop_loss", entry.stop_loss, qty, price))
            if entry.trail_price is not None or entry.trail_percent is not None:
                legs.append(self._exit_leg(entry, "trail", None, qty, price))
            if entry.take_profit is not None:
                legs.append(self._exit_leg(entry, "take_profit", entry.take_profit, qty, price))
            if self._same_bar is not None:
                self._same_bar.append(entry)
            return legs
        changed = []
        for leg in legs:
            if leg.is_open:
                leg.__dict__.update(qty=round((leg.qty or 0.0) + qty, 12), updated_at=self._now)
                changed.append(leg)
        return changed

    def _oco_mates(self, order: Order) -> list[Order]:
        """The working orders that one-cancels-other ties to ``order``."""
        if order.parent_id is not None:
            mates = [o for o in self._legs.get(order.parent_id, ()) if o is not order]
            parent = self._orders.get(order.parent_id)
            if parent is not None and parent.order_class is OrderClass.OCO:
                mates.append(parent)
        elif order.order_class is OrderClass.OCO:
            mates = list(self._legs.get(order.id, ()))
        else:
            return []
        return [o for o in mates if o.is_open]

    def _group(self, order: Order) -> list[Order]:
        """Every working order of ``order``'s group but ``order`` itself."""
        root = order.parent_id or order.id
        members = list(self._legs.get(root, ()))
        parent = self._orders.get(root)
        if parent is not None:
            members.append(parent)
        return [o for o in members if o is not order and o.is_open]

    def _forget_group(self, order: Order) -> None:
        """Drop a group from memory once none of it can trade any more (from ``_finish``)."""
        root = order.parent_id or order.id
        legs = self._legs.get(root)
        if legs is None:
            return
        parent = self._orders.get(root)
        if (parent is None or not parent.is_open) and not any(o.is_open for o in legs):
            del self._legs[root]

    def _stop_before(self, take: Order) -> None:
        """Put an oco's stop loss before its take profit in the book: when a bar touches
        both, the stop loss is worked first, as a bracket's is."""
        working = self._working[take.symbol]
        for leg in self._legs.get(take.id, ()):
            if leg in working:
                working.remove(leg)
                working.insert(working.index(take), leg)
