"""The paper broker: accounts, order checks, fills, positions and cash. Deterministic.

One :class:`PaperBroker` holds many accounts; each account trades many symbols from one pool
of cash. Prices arrive as bars (:meth:`PaperBroker.on_bar`) or quotes
(:meth:`PaperBroker.on_quote`); the fill profile (:mod:`sandtrade.broker.fills`) decides fill
prices, the broker does the rest: sizing, buying power, FIFO lots, realized P&L, commission.

Every state change is handed to the store, when there is one, as one :class:`BrokerChange`
(one transaction). The broker knows nothing of HTTP, gRPC or strategies.

Margin model: ``equity = cash + Σ qty·price·multiplier`` (shorts count negative);
``buying power = max(0, equity - Σ |qty|·price·multiplier·margin)`` with ``long_margin`` for
longs and ``short_margin`` for shorts. At a fill, open positions are marked at the price of
that moment (the bar's open for the symbol being filled, the last close for the others); orders
sized by ``equity_fraction`` get ``floor(buying_power / margin · fraction / unit cost)`` lots,
where the unit cost includes the commission: the rule backtesting.py uses for ``buy()``.

The class is one object assembled from mixins, a module per concern:
:mod:`~sandtrade.broker.checks` (whether an order may be accepted),
:mod:`~sandtrade.broker.execution` (working orders against prices),
:mod:`~sandtrade.broker.legs` (order classes: exits, one-cancels-other, trailing stops) and
:mod:`~sandtrade.broker.restore` (what it needs from a store, and rebuilding from it), over the
books of :mod:`~sandtrade.broker.lots` and the names of :mod:`~sandtrade.broker.ids`. Mixins
rather than collaborating objects because a fill crosses every part: a method on ``self`` costs
one attribute lookup wherever it is defined, where a delegate would add a hop on every bar. This
module is the public face: set-up, accounts and views, submitting, canceling and replacing
orders, and batching changes.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable
from datetime import date, datetime

from pydantic import ValidationError

from sandtrade.broker.checks import OrderChecks, validated_order
from sandtrade.broker.execution import Execution
from sandtrade.broker.expiry import Expiry
from sandtrade.broker.fills import BUILTIN_FILL_PROFILES, FillProfile
from sandtrade.broker.ids import sequential_ids
from sandtrade.broker.legs import Legs, ratchet
from sandtrade.broker.lots import KEEP_FINISHED, AccountBook, Lot
from sandtrade.broker.multileg import MultiLeg, QuoteProvider
from sandtrade.broker.prices import SignalPrices
from sandtrade.broker.restore import Ledger, Restore
from sandtrade.broker.risk import RiskChecks
from sandtrade.broker.settings import BrokerSettings
from sandtrade.errors import OrderRejected, StoreError
from sandtrade.models import (
    Account,
    BrokerChange,
    ExitSpec,
    Fill,
    Instrument,
    Order,
    OrderClass,
    OrderSide,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
    Trade,
)

__all__ = ["PaperBroker"]


class PaperBroker(OrderChecks, RiskChecks, Execution, Legs, MultiLeg, Expiry, Restore,
                  SignalPrices):
    """A deterministic multi-account paper broker.

    :param settings: costs, fill profile, partial fills and margin.
    :param instruments: tradable instruments; orders for any other symbol are rejected.
    :param store: where every state change is persisted (one transaction each): a
        :class:`~sandtrade.broker.restore.Ledger`, which every store is; None keeps
        everything in memory, as a back-test does.
    :param ids: id factory (``kind -> id``); defaults to
        :func:`~sandtrade.broker.ids.sequential_ids`.
    :param profiles: extra fill profiles by name (plugins contribute them).
    :param quotes: where option quotes come from (symbol -> the latest quote, None when not
        priced; see :mod:`~sandtrade.broker.multileg`); also :meth:`set_quote_provider`.
    """

    def __init__(self, settings: BrokerSettings | None = None, *,
                 instruments: Iterable[Instrument] = (), store: Ledger | None = None,
                 ids: Callable[[str], str] | None = None,
                 profiles: Iterable[type[FillProfile]] = (),
                 quotes: QuoteProvider | None = None) -> None:
        self.settings = settings or BrokerSettings()
        self._store = store
        self._ids = ids or sequential_ids()
        known = {p.name: p for p in (*BUILTIN_FILL_PROFILES, *profiles)}
        try:
            profile_cls = known[self.settings.fill_profile]
        except KeyError:
            raise OrderRejected(
                f"unknown fill profile {self.settings.fill_profile!r} "
                f"(known: {', '.join(sorted(known))})", field="fill_profile") from None
        self.profile = profile_cls(slippage_pct=self.settings.slippage_pct,
                                   spread_pct=self.settings.spread_pct)
        self._instruments: dict[str, Instrument] = {i.symbol: i for i in instruments}
        self._books: dict[str, AccountBook] = {}
        self._lots: dict[tuple[str, str], deque[Lot]] = {}
        self._orders: dict[str, Order] = {}
        self._working: dict[str, list[Order]] = {}
        self._mark: dict[str, float] = {}
        self._day_session: dict[str, date] = {}
        # order id -> (commission the rates alone would charge, commission charged so far)
        self._commission_charged: dict[str, tuple[float, float]] = {}
        self._now: datetime | None = None
        self._bar_index: int | None = None
        self._batch: list[BrokerChange] | None = None
        # symbol -> why no more prices will come (its feed ended): orders on it are refused
        self._no_prices: dict[str, str] = {}
        # Market orders accepted before their symbol's first price: their value is checked
        # when they fill (see _check). Not persisted: a restart forgets it, and such an order
        # is then only held to the buying-power check every fill makes.
        self._unpriced: set[str] = set()
        # account -> symbol -> the last price its signals carried, for symbols no market
        # source covers (see broker.prices); what fills are stamped with as their source.
        self._own_marks: dict[str, dict[str, float]] = {}
        self._price_source = "feed"
        # entry (or oco) id -> its exits (legs.py); entries whose exits were made on this bar
        self._legs: dict[str, list[Order]] = {}
        self._same_bar: list[Order] | None = None
        self._risk_init()
        self._multileg_init(quotes)

    # ------------------------------------------------------------------ set-up

    def register(self, instrument: Instrument) -> None:
        """Make ``instrument`` tradable (replacing an earlier definition of the symbol)."""
        self._instruments[instrument.symbol] = instrument

    def instrument(self, symbol: str) -> Instrument | None:
        """The registered instrument for ``symbol``, or None."""
        return self._instruments.get(symbol)

    def open_account(self, account_id: str, cash: float, *,
                     time: datetime | None = None) -> Account:
        """Create an account funded with ``cash``; its id must be new."""
        if account_id in self._books:
            raise OrderRejected(f"account {account_id!r} already exists", field="account")
        try:
            account = Account(id=account_id, cash=cash, initial_cash=cash, created_at=time)
        except ValidationError as e:
            err = e.errors()[0]
            raise OrderRejected(
                f"account {account_id!r}: {'.'.join(map(str, err['loc']))}: {err['msg']} "
                f"(got {err.get('input')!r})", field=str(err["loc"][0])) from None
        self._books[account_id] = AccountBook(account)
        if self._store is not None:
            self._store.create_account(account)
        return self.account(account_id)

    def has_account(self, account_id: str) -> bool:
        return account_id in self._books

    def ensure_account(self, account_id: str) -> bool:
        """Make sure the broker holds ``account_id``: an account another process created in
        the store (``sandtrade tokens create``) is taken over. False when it exists nowhere."""
        if account_id in self._books:
            return True
        stored = self._store.get_account(account_id) if self._store is not None else None
        if stored is None:
            return False
        self.adopt_account(stored)
        return True

    def adopt_account(self, account: Account) -> None:
        """Take over an account that is already stored but has never traded (created by
        another process, e.g. ``sandtrade tokens create``); nothing is written."""
        if account.id in self._books:
            raise OrderRejected(f"account {account.id!r} already exists", field="account")
        if self._store is not None and self._store.list_fills(account.id, limit=1):
            raise StoreError(f"account {account.id!r} has fills this broker never saw; "
                             "restart the host to load it")
        self._books[account.id] = AccountBook(account)

    def symbols(self) -> list[str]:
        """The tradable symbols, sorted."""
        return sorted(self._instruments)

    @property
    def now(self) -> datetime | None:
        """The broker's clock: the time of the bar or quote it last worked (None before)."""
        return self._now

    def set_time(self, time: datetime, bar_index: int | None = None) -> None:
        """Set the broker's clock (stamps orders created outside bar processing)."""
        self._now = time
        self._bar_index = bar_index

    # ------------------------------------------------------------------ views

    def _book(self, account_id: str) -> AccountBook:
        try:
            return self._books[account_id]
        except KeyError:
            raise OrderRejected(f"unknown account {account_id!r}", field="account") from None

    def account(self, account_id: str) -> Account:
        """A snapshot of the account with equity and buying power at the last known prices."""
        book = self._book(account_id)
        long_v = short_v = 0.0
        mark = self._marks_for(account_id) if self._own_marks else self._mark
        for sym, pos in book.positions.items():
            v = pos.qty * mark.get(sym, pos.avg_price) * pos.multiplier
            if v >= 0:
                long_v += v
            else:
                short_v += v
        return book.snapshot(equity=self.equity(account_id),
                             buying_power=self._buying_power(book),
                             long_market_value=long_v, short_market_value=short_v)

    def equity(self, account_id: str) -> float:
        """Cash plus the value of every position at the last known prices."""
        book = self._books[account_id]
        eq = book.basis
        mark = self._marks_for(account_id) if self._own_marks else self._mark
        for sym, pos in book.positions.items():
            eq += (mark.get(sym, pos.avg_price) * pos.qty - pos.cost) * pos.multiplier
        return eq

    def buying_power(self, account_id: str) -> float:
        """Equity less the initial margin of open positions, never below zero."""
        return self._buying_power(self._book(account_id))

    def _buying_power(self, book: AccountBook) -> float:
        if self._option_accounts and book.id in self._option_accounts:
            return self._options_buying_power(book)
        eq = book.basis
        used = 0.0
        s = self.settings
        mark = self._marks_for(book.id) if self._own_marks else self._mark
        for sym, pos in book.positions.items():
            price = mark.get(sym, pos.avg_price)
            eq += (price * pos.qty - pos.cost) * pos.multiplier
            v = pos.qty * price * pos.multiplier
            used += v * s.long_margin if v >= 0 else -v * s.short_margin
        return max(0.0, eq - used)

    def position(self, account_id: str, symbol: str) -> Position:
        """The position in ``symbol`` (flat when none), marked to the last known price."""
        pos = self._book(account_id).positions.get(symbol)
        price = self._mark.get(symbol)
        if price is None and self._own_marks:
            price = self.last_signal_price(account_id, symbol)
        if pos is None:
            inst = self._instruments.get(symbol)
            return Position(account=account_id, symbol=symbol, market_price=price,
                            multiplier=inst.multiplier if inst else 1.0)
        return pos.view(price)

    def positions(self, account_id: str) -> list[Position]:
        """Every non-flat position of the account, by symbol."""
        book = self._book(account_id)
        return [self.position(account_id, s) for s in sorted(book.positions)]

    def position_state(self, account_id: str, symbol: str
                       ) -> tuple[float, float, float, float | None, float]:
        """``(qty, avg_price, realized_pnl, last price, multiplier)`` without building a model
        (a fast path for strategies that look at their position on every bar). Flat: zeros."""
        pos = self._book(account_id).positions.get(symbol)
        mark = self._mark.get(symbol)
        if pos is None:
            return 0.0, 0.0, 0.0, mark, 1.0
        return pos.qty, pos.avg_price, pos.realized_pnl, mark, pos.multiplier

    def account_state(self, account_id: str) -> tuple[float, float, float, float, float]:
        """``(cash, equity, buying_power, realized_pnl, commissions)`` without a model."""
        book = self._book(account_id)
        return (book.cash, self.equity(account_id), self._buying_power(book),
                book.realized_pnl, book.commissions)

    def position_qty(self, account_id: str, symbol: str) -> float:
        """Signed quantity held (fast path for strategies)."""
        pos = self._books[account_id].positions.get(symbol)
        return pos.qty if pos is not None else 0.0

    def get_order(self, order_id: str) -> Order:
        """The order with this id; raises ``OrderRejected`` when there is none."""
        try:
            return self._orders[order_id]
        except KeyError:
            raise OrderRejected(f"unknown order {order_id!r}", field="order_id") from None

    def working_orders(self, account_id: str, symbol: str) -> list[Order]:
        """The account's working orders in ``symbol``, in submission order (without walking
        every order the account has)."""
        return [o for o in self._working.get(symbol, ()) if o.account == account_id
                and o.is_open]

    def working_count(self, account_id: str) -> int:
        """How many orders the account has working, in every symbol."""
        return sum(1 for orders in self._working.values() for o in orders
                   if o.account == account_id and o.is_open)

    def orders(self, account_id: str, *, open_only: bool = False) -> list[Order]:
        """The account's orders in submission order."""
        orders = self._book(account_id).orders.values()
        return [o for o in orders if o.is_open] if open_only else list(orders)

    def fills(self, account_id: str) -> list[Fill]:
        """The account's fills in execution order."""
        return list(self._book(account_id).fills)

    def closed_trades(self, account_id: str) -> list[Trade]:
        """Round trips closed so far (FIFO-matched lots), in closing order."""
        return self._book(account_id).closed_trades

    def open_trades(self, account_id: str) -> list[Trade]:
        """Open lots as trades marked to the last known price (not yet closed)."""
        out = []
        for (acct, sym), lots in self._lots.items():
            if acct != account_id:
                continue
            price = self._mark.get(sym)
            mult = self._multiplier(sym)
            for lot in lots:
                px = lot.price if price is None else price
                gross = lot.qty * (px - lot.price) * mult
                out.append(Trade(
                    account=acct, symbol=sym, size=lot.qty, entry_time=lot.time,
                    entry_price=lot.price, entry_bar=lot.bar, pnl=gross - lot.commission,
                    return_pct=math.copysign(1, lot.qty) * (px / lot.price - 1)
                    - lot.commission / (abs(lot.qty) * lot.price * mult),
                    commission=lot.commission, tag=lot.tag))
        return out

    def _multiplier(self, symbol: str) -> float:
        inst = self._instruments.get(symbol)
        return inst.multiplier if inst else 1.0

    # ------------------------------------------------------------------ orders

    def new_id(self, kind: str) -> str:
        """A fresh id of ``kind`` (``o``, ``f``), used for nothing else: a live broker's ids
        sort by time after their ``_``, so one marks a point in its stream of fills."""
        return self._ids(kind)

    def submit(self, account: str, symbol: str, side: OrderSide | str,
               qty: float | None = None, *, equity_fraction: float | None = None,
               type: OrderType | str = OrderType.MARKET, limit_price: float | None = None,
               stop_price: float | None = None, tif: TimeInForce | str = TimeInForce.GTC,
               reduce_only: bool = False, client_order_id: str | None = None,
               tag: str | None = None, new_client_id: bool = False,
               order_class: OrderClass | str | None = None,
               take_profit: ExitSpec | dict[str, float] | None = None,
               stop_loss: ExitSpec | dict[str, float] | None = None,
               trail_price: float | None = None,
               trail_percent: float | None = None,
               source: OrderSource | None = None, order_id: str | None = None) -> Order:
        """Check an order and accept it, or record it as rejected with the reason.

        ``order_id`` is the id the caller chose for it (a strategy run's door: ids its worker
        knows without asking, see :meth:`new_id`); it must be new (else ``OrderRejected``).

        ``source`` is the door it came through (set by the door, kept by the order's exits
        and by a replacement).

        ``take_profit``/``stop_loss`` (:class:`~sandtrade.models.ExitSpec`) and
        ``trail_price``/``trail_percent`` make an order of a class (see
        :mod:`~sandtrade.broker.legs`). Without ``order_class`` the class follows from what
        is given: both exits a bracket, one exit (or a trail on an order that is not a
        trailing stop) an oto, neither a simple order. An oco is named (``order_class="oco"``)
        and needs no type: it is a limit order at ``take_profit.price``.

        Malformed requests (a negative quantity, a limit order without a limit price, an
        unknown account) raise :class:`OrderRejected` naming the field. Orders that are well
        formed but that the broker refuses (unknown symbol, not a whole number of lots,
        insufficient buying power, a price outside the sanity band) come back with status
        ``rejected`` and ``reject_reason``. A repeated ``client_order_id`` returns the order
        first submitted with it, unchanged: a retry never trades twice. ``new_client_id``
        says the caller knows the id was never used (it names something created just now),
        which spares a look into the store.
        """
        book = self._books.get(account) or self._book(account)  # _book names a missing one
        if client_order_id is not None and not new_client_id:
            first = self.find_client_order(account, client_order_id)
            if first is not None:
                return first
        if qty is not None and equity_fraction is not None:
            raise OrderRejected("give qty or equity_fraction, not both", field="qty")
        legs = None
        if (order_class is not None or take_profit is not None or stop_loss is not None
                or trail_price is not None or trail_percent is not None):
            legs = (order_class, take_profit, stop_loss, trail_price, trail_percent)
            if str(order_class) == OrderClass.OCO and isinstance(take_profit, (ExitSpec, dict)):
                tp = take_profit if isinstance(take_profit, dict) else take_profit.model_dump()
                if type == OrderType.MARKET and limit_price is None:
                    type, limit_price = OrderType.LIMIT, tp.get("price")
                reduce_only = True
        if order_id is None:
            order_id = self._ids("o")
        elif order_id in self._orders:
            raise OrderRejected(f"order id {order_id!r} is taken", field="order_id")
        order = validated_order(order_id, account, symbol, side, type, qty,
                                equity_fraction, limit_price, stop_price, tif, reduce_only,
                                client_order_id, tag, self._now, legs)
        if source is not None:
            order.__dict__["source"] = source
        reason = self._check(book, order)
        self._orders[order.id] = order
        book.orders[order.id] = order
        if client_order_id is not None:
            book.client_ids[client_order_id] = order.id
        changed = [order]
        if reason:
            order.__dict__.update(status=OrderStatus.REJECTED, reject_reason=reason)
            self._retire(order)
        else:
            order.__dict__["status"] = OrderStatus.ACCEPTED
            self._working.setdefault(symbol, []).append(order)
            if order.type is OrderType.TRAILING_STOP:
                ratchet(order, self._mark[symbol])  # _check made sure there is a price
            elif order.order_class is OrderClass.OCO:
                assert order.stop_loss is not None and order.qty is not None
                changed.append(self._exit_leg(order, "stop_loss", order.stop_loss, order.qty,
                                              0.0))
                self._stop_before(order)
            if self._risk_on:
                self._risk_accepted(account)
        if self._store is not None or self._batch is not None:  # none in a back-test
            self._persist(BrokerChange(orders=changed))
        return order

    def _register(self, order: Order) -> None:
        """Hold a working order the broker made itself (an exit of a group)."""
        self._orders[order.id] = order
        self._books[order.account].orders[order.id] = order
        self._working.setdefault(order.symbol, []).append(order)

    def _retire(self, order: Order) -> None:
        """Note a finished order; forget the oldest once more than KEEP_FINISHED are held."""
        book = self._books[order.account]
        book.finished.append(order.id)
        while len(book.finished) > KEEP_FINISHED:
            old = book.orders.pop(book.finished.popleft(), None)
            if old is None:
                continue
            self._orders.pop(old.id, None)
            if old.client_order_id is not None and \
                    book.client_ids.get(old.client_order_id) == old.id:
                del book.client_ids[old.client_order_id]

    def cancel(self, order_id: str, reason: str = "canceled by request") -> Order:
        """Cancel a working order and every working order of its group (a bracket's entry
        and exits, an oco's two legs) in one change; canceling a finished order is an error
        naming its status, unless exits of it are still working (they are canceled)."""
        order = self.get_order(order_id)
        group = self._group(order) if order.order_class is not OrderClass.SIMPLE else []
        if not order.is_open and not group:
            raise OrderRejected(
                f"order {order_id} is {order.status.value}; only working orders can be canceled",
                field="order_id")
        changed = []
        for o in ([order] if order.is_open else []) + group:
            self._finish(o, OrderStatus.CANCELED,
                         reason if o is order else f"{reason} (its group's {order_id})")
            changed.append(o)
        self._persist(BrokerChange(orders=changed))
        return order

    def replace(self, order_id: str, *, qty: float | None = None,
                limit_price: float | None = None, stop_price: float | None = None,
                tif: TimeInForce | str | None = None) -> Order:
        """Cancel a working, unfilled order and submit its amended copy in one step.

        The new order keeps the old one's side, type and flags; its ``replaces`` names the old
        order, whose ``replaced_by`` names the new one. When the amendment is refused, the old
        order keeps working unchanged.
        """
        old = self.get_order(order_id)
        if old.status is not OrderStatus.ACCEPTED:
            raise OrderRejected(
                f"order {order_id} is {old.status.value}; only accepted orders with no fills "
                "can be replaced (cancel it and submit a new one)", field="order_id")
        if old.order_class is OrderClass.MLEG:
            raise OrderRejected(
                f"order {order_id} is a multi-leg order; it cannot be replaced (cancel it and "
                "submit a new one)", field="order_id")
        if old.parent_id is not None or old.order_class is OrderClass.OCO:
            raise OrderRejected(
                f"order {order_id} is a leg of a {old.order_class.value} order; legs cannot be "
                "replaced (cancel the group and submit a new one)", field="order_id")
        working = self._working[old.symbol]
        place = working.index(old)  # a refused amendment puts it back here: it keeps its turn
        del working[place]
        old.status = OrderStatus.CANCELED  # so the check sees the book without it
        try:
            new = self.submit(
                old.account, old.symbol, old.side,
                qty if qty is not None else old.qty,
                equity_fraction=None if (qty is not None or old.qty is not None)
                else old.equity_fraction,
                type=old.type,
                limit_price=limit_price if limit_price is not None else old.limit_price,
                stop_price=stop_price if stop_price is not None else old.stop_price,
                tif=tif if tif is not None else old.tif, reduce_only=old.reduce_only,
                tag=old.tag,
                order_class=None if old.order_class is OrderClass.SIMPLE else old.order_class,
                take_profit=old.take_profit, stop_loss=old.stop_loss,
                trail_price=old.trail_price, trail_percent=old.trail_percent,
                source=old.source)
        except OrderRejected as e:
            old.status = OrderStatus.ACCEPTED
            working.insert(place, old)
            raise OrderRejected(f"replacement of {order_id} refused: invalid amendment: {e}",
                                field=e.field or "order_id") from None
        if new.status is OrderStatus.REJECTED:
            old.status = OrderStatus.ACCEPTED
            working.insert(place, old)
            raise OrderRejected(f"replacement of {order_id} refused: {new.reject_reason}",
                                field="order_id")
        new.replaces = old.id
        old.replaced_by = new.id
        old.reject_reason = f"replaced by {new.id}"
        old.updated_at = self._now
        self._day_session.pop(old.id, None)
        self._persist(BrokerChange(orders=[old, new]))
        return new

    def _finish(self, order: Order, status: OrderStatus, reason: str | None) -> None:
        order.transition(status)
        state = order.__dict__
        if reason:
            state["reject_reason"] = reason
        state["updated_at"] = self._now
        working = self._working.get(order.symbol)
        if working:
            if working[0] is order:  # the usual case: orders fill in the order they came
                del working[0]
            else:
                _unwork(working, order)
        # Day orders and minimum commissions only: most runs have neither.
        if self._day_session:
            self._day_session.pop(order.id, None)
        if self._commission_charged:
            self._commission_charged.pop(order.id, None)
        if order.order_class is not OrderClass.SIMPLE:
            if order.order_class is OrderClass.MLEG and order in self._mleg_working:
                self._mleg_working.remove(order)
            self._forget_group(order)
        self._retire(order)

    # ------------------------------------------------------------------ prices

    def mark(self, symbol: str, price: float) -> None:
        """Set the last known price of ``symbol`` (valuation and order checks use it)."""
        self._mark[symbol] = price

    def last_price(self, symbol: str) -> float | None:
        """The last known price of ``symbol``, or None."""
        return self._mark.get(symbol)

    # ------------------------------------------------------------------ persistence and live use

    def _persist(self, change: BrokerChange) -> None:
        if self._batch is not None:
            self._batch.append(change)
        elif self._store is not None:
            self._store.commit(change)

    def begin_batch(self) -> None:
        """Hold every change from now on instead of committing each (see :meth:`end_batch`).

        A live host applies many requests and commits their changes in one transaction (group
        commit): one fsync for a batch instead of one per order.
        """
        if self._batch is not None:
            raise RuntimeError("PaperBroker.begin_batch: a batch is already open")
        self._batch = []

    def end_batch(self) -> list[BrokerChange]:
        """The changes held since :meth:`begin_batch`, in order; the caller commits them."""
        batch, self._batch = self._batch, None
        if batch is None:
            raise RuntimeError("PaperBroker.end_batch: no batch is open")
        return batch


def _unwork(working: list[Order], order: Order) -> None:
    """Take ``order`` off its symbol's working list: found by identity, newest first (an
    order finishing is most often the one just placed), else by id. ``order in working``
    compared pydantic models field by field: with thousands of orders working in a symbol
    (brackets' exits left after their positions closed) that was most of a signal's cost."""
    for i in range(len(working) - 1, -1, -1):
        if working[i] is order:
            del working[i]
            return
    for i, o in enumerate(working):
        if o.id == order.id:
            del working[i]
            return
