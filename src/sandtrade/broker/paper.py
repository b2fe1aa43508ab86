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
"""

from __future__ import annotations

import difflib
import itertools
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import date, datetime

from pydantic import ValidationError

from sandtrade.broker.fills import BUILTIN_FILL_PROFILES, CloseProfile, FillProfile
from sandtrade.broker.restore import Ledger
from sandtrade.broker.settings import BrokerSettings
from sandtrade.errors import OrderRejected, StoreError
from sandtrade.models import (
    Account,
    AssetClass,
    Bar,
    BrokerChange,
    Fill,
    Instrument,
    Order,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    TimeInForce,
    Trade,
    trusted,
)

__all__ = ["PaperBroker", "sequential_ids", "unique_ids"]

_BUY = OrderSide.BUY
_INF = math.inf
_type = type  # PaperBroker methods have a parameter named ``type``
#: Time in force by value; a StrEnum member hashes and compares as its value, so members
#: find themselves here too.
_TIF = {t.value: t for t in TimeInForce}
_NO_LIMIT = frozenset({OrderType.MARKET, OrderType.STOP})
_NO_STOP = frozenset({OrderType.MARKET, OrderType.LIMIT})
#: Every field of a new order, at its default (the fast path in _validated_order overwrites
#: the ones a submission sets).
_ORDER_DEFAULTS = {name: f.default for name, f in Order.model_fields.items()}
#: The fields a submission sets: what pydantic records as set when it builds the order.
_ORDER_SET_FIELDS = frozenset(("id", "account", "symbol", "side", "type", "qty",
                               "equity_fraction", "limit_price", "stop_price", "tif",
                               "reduce_only", "client_order_id", "tag", "created_at",
                               "updated_at"))


def _order_from(values: dict[str, object]) -> Order:
    """An :class:`Order` with ``values`` (every field, checked) as its state."""
    order = Order.__new__(Order)
    _setattr(order, "__dict__", values)
    _setattr(order, "__pydantic_fields_set__", set(_ORDER_SET_FIELDS))
    _setattr(order, "__pydantic_extra__", None)
    _setattr(order, "__pydantic_private__", None)
    return order


_setattr = object.__setattr__
#: ``OrderSide.sign`` as a dict: a property read on an enum member costs more, per order.
_SIGN = {OrderSide.BUY: 1, OrderSide.SELL: -1}
#: Finished orders (and fills) each account keeps in memory; the store keeps all of them.
#: Without a bound, a long run (or a strategy that keeps sending orders it cannot afford)
#: would grow without limit.
KEEP_FINISHED = 1000
#: No order may be worth more than this: beyond it float arithmetic loses cents, and at 1e308
#: it overflows to inf and NaN (found by tests/security).
MAX_NOTIONAL = 1e15
_EPS = 1e-9
_ALLOWED_TIF = {
    AssetClass.EQUITY: frozenset(TimeInForce),
    AssetClass.CRYPTO: frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK}),
    AssetClass.OPTION: frozenset({TimeInForce.DAY, TimeInForce.GTC}),
}


def unique_ids() -> Callable[[str], str]:
    """Ids unique across restarts and hosts that sort by creation time: ``o_`` + 12 hex digits
    of microseconds since the epoch + 8 random hex digits. For live brokers, whose store keys
    orders and fills by id alone."""
    last = 0

    def make(kind: str) -> str:
        nonlocal last
        now = max(time.time_ns() // 1000, last + 1)
        last = now
        return f"{kind}_{now:012x}{secrets.token_hex(4)}"

    return make


def sequential_ids() -> Callable[[str], str]:
    """Deterministic ids: ``o1, o2, …`` for orders, ``f1, …`` for fills. For back-tests."""
    counters: dict[str, itertools.count[int]] = {}

    def make(kind: str) -> str:
        counter = counters.get(kind)
        if counter is None:  # not setdefault: that would build a counter on every call
            counter = counters[kind] = itertools.count(1)
        return f"{kind}{next(counter)}"

    return make


def _field_named_in(message: str) -> str:
    """The order field a whole-order check's message is about (``order`` when none is)."""
    for name in ("limit_price", "stop_price", "qty"):
        if name in message:
            return name
    return "order"


class _Lot:
    """An open lot: the unmatched part of one opening fill (FIFO)."""

    __slots__ = ("bar", "commission", "price", "qty", "tag", "time")

    def __init__(self, qty: float, price: float, time: datetime, bar: int | None,
                 commission: float, tag: str | None) -> None:
        self.qty = qty
        self.price = price
        self.time = time
        self.bar = bar
        self.commission = commission
        self.tag = tag


class _Pos:
    """A position's mutable state (plain slots: it changes on every fill)."""

    __slots__ = ("account", "avg_price", "cost", "multiplier", "qty", "realized_pnl", "symbol")

    def __init__(self, account: str, symbol: str, multiplier: float) -> None:
        self.account = account
        self.symbol = symbol
        self.multiplier = multiplier
        self.qty = 0.0
        self.avg_price = 0.0
        self.realized_pnl = 0.0
        #: Σ lot qty × entry price of the open lots, summed in FIFO order (see _Book.basis).
        self.cost = 0.0

    def view(self, market_price: float | None) -> Position:
        """The position as a domain model, marked at ``market_price``."""
        return Position(account=self.account, symbol=self.symbol, qty=self.qty,
                        avg_price=self.avg_price, realized_pnl=self.realized_pnl,
                        market_price=market_price, multiplier=self.multiplier)


class _Book:
    """One account's mutable state; :meth:`snapshot` makes the domain model."""

    __slots__ = ("basis", "cash", "client_ids", "closed_trades", "commissions", "fills",
                 "finished", "id", "opened", "orders", "positions", "realized_pnl")

    def __init__(self, account: Account) -> None:
        self.opened = account
        self.id = account.id
        self.cash = account.cash
        # Equity is computed as basis + Σ (price × qty - cost): the same operations, in the
        # same order, as backtesting.py's ``cash + (last × size - Σ size × entry)``. Summing
        # ``cash + qty × price`` instead is equal in exact arithmetic but not in floats, and a
        # 1e-11 difference is enough to split one of its drawdown periods in two.
        self.basis = account.cash
        self.commissions = account.commissions
        self.realized_pnl = account.realized_pnl
        self.positions: dict[str, _Pos] = {}
        self.orders: dict[str, Order] = {}
        self.client_ids: dict[str, str] = {}
        self.closed_trades: list[Trade] = []
        self.fills: deque[Fill] = deque(maxlen=KEEP_FINISHED)
        self.finished: deque[str] = deque()

    def snapshot(self, **extra: object) -> Account:
        """The account as a domain model (cash and running totals; ``extra`` adds the rest)."""
        return self.opened.model_copy(update={
            "cash": self.cash, "commissions": self.commissions,
            "realized_pnl": self.realized_pnl, **extra})


class PaperBroker:
    """A deterministic multi-account paper broker.

    :param settings: costs, fill profile, partial fills and margin.
    :param instruments: tradable instruments; orders for any other symbol are rejected.
    :param store: where every state change is persisted (one transaction each): a
        :class:`~sandtrade.broker.restore.Ledger`, which every store is; None keeps
        everything in memory, as a back-test does.
    :param ids: id factory (``kind -> id``); defaults to :func:`sequential_ids`.
    :param profiles: extra fill profiles by name (plugins contribute them).
    """

    def __init__(self, settings: BrokerSettings | None = None, *,
                 instruments: Iterable[Instrument] = (), store: Ledger | None = None,
                 ids: Callable[[str], str] | None = None,
                 profiles: Iterable[type[FillProfile]] = ()) -> None:
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
        self._books: dict[str, _Book] = {}
        self._lots: dict[tuple[str, str], deque[_Lot]] = {}
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
        self._books[account_id] = _Book(account)
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
        self._books[account.id] = _Book(account)

    def symbols(self) -> list[str]:
        """The tradable symbols, sorted."""
        return sorted(self._instruments)

    def set_time(self, time: datetime, bar_index: int | None = None) -> None:
        """Set the broker's clock (stamps orders created outside bar processing)."""
        self._now = time
        self._bar_index = bar_index

    # ------------------------------------------------------------------ views

    def _book(self, account_id: str) -> _Book:
        try:
            return self._books[account_id]
        except KeyError:
            raise OrderRejected(f"unknown account {account_id!r}", field="account") from None

    def account(self, account_id: str) -> Account:
        """A snapshot of the account with equity and buying power at the last known prices."""
        book = self._book(account_id)
        long_v = short_v = 0.0
        for sym, pos in book.positions.items():
            v = pos.qty * self._mark.get(sym, pos.avg_price) * pos.multiplier
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
        mark = self._mark
        for sym, pos in book.positions.items():
            eq += (mark.get(sym, pos.avg_price) * pos.qty - pos.cost) * pos.multiplier
        return eq

    def buying_power(self, account_id: str) -> float:
        """Equity less the initial margin of open positions, never below zero."""
        return self._buying_power(self._book(account_id))

    def _buying_power(self, book: _Book) -> float:
        eq = book.basis
        used = 0.0
        s = self.settings
        mark = self._mark
        for sym, pos in book.positions.items():
            price = mark.get(sym, pos.avg_price)
            eq += (price * pos.qty - pos.cost) * pos.multiplier
            v = pos.qty * price * pos.multiplier
            used += v * s.long_margin if v >= 0 else -v * s.short_margin
        return max(0.0, eq - used)

    def position(self, account_id: str, symbol: str) -> Position:
        """The position in ``symbol`` (flat when none), marked to the last known price."""
        pos = self._book(account_id).positions.get(symbol)
        if pos is None:
            inst = self._instruments.get(symbol)
            return Position(account=account_id, symbol=symbol, market_price=self._mark.get(symbol),
                            multiplier=inst.multiplier if inst else 1.0)
        return pos.view(self._mark.get(symbol))

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

    def submit(self, account: str, symbol: str, side: OrderSide | str,
               qty: float | None = None, *, equity_fraction: float | None = None,
               type: OrderType | str = OrderType.MARKET, limit_price: float | None = None,
               stop_price: float | None = None, tif: TimeInForce | str = TimeInForce.GTC,
               reduce_only: bool = False, client_order_id: str | None = None,
               tag: str | None = None, new_client_id: bool = False) -> Order:
        """Check an order and accept it, or record it as rejected with the reason.

        Malformed requests (a negative quantity, a limit order without a limit price, an
        unknown account) raise :class:`OrderRejected` naming the field. Orders that are well
        formed but that the broker refuses (unknown symbol, not a whole number of lots,
        insufficient buying power, a price outside the sanity band) come back with status
        ``rejected`` and ``reject_reason``. A repeated ``client_order_id`` returns the order
        first submitted with it, unchanged: a retry never trades twice. ``new_client_id``
        says the caller knows the id was never used (it names something created just now),
        which spares a look into the store.
        """
        book = self._book(account)
        if client_order_id is not None and not new_client_id:
            first = self.find_client_order(account, client_order_id)
            if first is not None:
                return first
        if qty is not None and equity_fraction is not None:
            raise OrderRejected("give qty or equity_fraction, not both", field="qty")
        order = self._validated_order(self._ids("o"), account, symbol, side, type, qty,
                                      equity_fraction, limit_price, stop_price, tif,
                                      reduce_only, client_order_id, tag)
        reason = self._check(book, order)
        self._orders[order.id] = order
        book.orders[order.id] = order
        if client_order_id is not None:
            book.client_ids[client_order_id] = order.id
        if reason:
            order.__dict__.update(status=OrderStatus.REJECTED, reject_reason=reason)
            self._retire(order)
        else:
            order.__dict__["status"] = OrderStatus.ACCEPTED
            self._working.setdefault(symbol, []).append(order)
        if self._store is not None or self._batch is not None:  # none in a back-test
            self._persist(BrokerChange(orders=[order]))
        return order

    def _validated_order(self, order_id: str, account: str, symbol: str,
                         side: OrderSide | str, type: OrderType | str, qty: float | None,
                         equity_fraction: float | None, limit_price: float | None,
                         stop_price: float | None, tif: TimeInForce | str, reduce_only: bool,
                         client_order_id: str | None, tag: str | None) -> Order:
        """A new order validated by pydantic; ``OrderRejected`` naming the field if invalid.

        Values of exactly the types a strategy's ``ctx`` sends (plain floats, enum members,
        short strings) that pass every rule of :class:`Order` skip pydantic: its validation
        was 4 µs of each order in a back-test. Anything else, including every value that
        breaks a rule, takes pydantic's path, so errors read the same either way.
        """
        tif_member = _TIF.get(tif) if _type(tif) in (str, TimeInForce) else None
        if (tif_member is not None and _type(side) is OrderSide and _type(type) is OrderType
                and _type(symbol) is str and symbol and _type(account) is str and account
                and _type(reduce_only) is bool
                and (qty is None or (_type(qty) is float and 0.0 < qty < _INF))
                and (equity_fraction is None
                     or (_type(equity_fraction) is float and 0.0 < equity_fraction < 1.0))
                and (qty is not None or equity_fraction is not None)
                and (limit_price is None if type in _NO_LIMIT else
                     _type(limit_price) is float and 0.0 < limit_price < _INF)
                and (stop_price is None if type in _NO_STOP else
                     _type(stop_price) is float and 0.0 < stop_price < _INF)
                and (client_order_id is None
                     or (_type(client_order_id) is str and len(client_order_id) <= 128))
                and (tag is None or (_type(tag) is str and len(tag) <= 256))):
            values = _ORDER_DEFAULTS.copy()
            values.update(id=order_id, account=account, symbol=symbol, side=side, type=type,
                          qty=qty, equity_fraction=equity_fraction, limit_price=limit_price,
                          stop_price=stop_price, tif=tif_member, reduce_only=reduce_only,
                          client_order_id=client_order_id, tag=tag, created_at=self._now,
                          updated_at=self._now)
            return _order_from(values)
        try:
            return Order(
                id=order_id, account=account, symbol=symbol, side=side, type=type,
                qty=qty, equity_fraction=equity_fraction, limit_price=limit_price,
                stop_price=stop_price, tif=tif, reduce_only=reduce_only,
                client_order_id=client_order_id, tag=tag, created_at=self._now,
                updated_at=self._now)
        except ValidationError as e:
            err = e.errors()[0]
            field = ".".join(str(x) for x in err["loc"]) or _field_named_in(err["msg"])
            value = f" (got {err['input']!r})" if "input" in err and err["loc"] else ""
            msg = err["msg"].removeprefix("Value error, ")  # pydantic's, not ours
            raise OrderRejected(f"{field}: {msg}{value}", field=field) from None

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

    def _check(self, book: _Book, order: Order) -> str | None:
        """Why the broker refuses ``order``, or None when it accepts it."""
        sym = order.symbol
        inst = self._instruments.get(sym)
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
        for label, px in (("limit", order.limit_price), ("stop", order.stop_price)):
            if px is None:
                continue
            if ref is not None and abs(px / ref - 1) > self.settings.price_band_pct:
                return (f"{label} price {px:g} is {abs(px / ref - 1):.0%} away from the last "
                        f"price {ref:g} of {sym}; orders must be within "
                        f"±{self.settings.price_band_pct:.0%}")
        if ref is None:
            ref = order.limit_price or order.stop_price
        held = self.position_qty(book.id, sym)
        sign = _SIGN[order.side]
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
        if opening <= _EPS:
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

    def _commission_estimate(self, order: Order, qty: float, price: float,
                             inst: Instrument) -> float:
        return max(self.settings.commission(qty, price, inst.multiplier),
                   self.settings.commission_min)

    def _pending_release(self, book: _Book, new: Order) -> float:
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

    def cancel(self, order_id: str, reason: str = "canceled by request") -> Order:
        """Cancel a working order; canceling a finished order is an error naming its status."""
        order = self.get_order(order_id)
        if not order.is_open:
            raise OrderRejected(
                f"order {order_id} is {order.status.value}; only working orders can be canceled",
                field="order_id")
        self._finish(order, OrderStatus.CANCELED, reason)
        self._persist(BrokerChange(orders=[order]))
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
                tag=old.tag)
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
        if reason:
            order.__dict__["reject_reason"] = reason
        order.__dict__["updated_at"] = self._now
        working = self._working.get(order.symbol)
        if working is not None and order in working:
            working.remove(order)
        self._day_session.pop(order.id, None)
        self._commission_charged.pop(order.id, None)
        self._retire(order)

    # ------------------------------------------------------------------ market events

    def on_bar(self, bar: Bar, bar_index: int | None = None) -> list[Fill]:
        """Work the symbol's orders against ``bar`` (see the fill profile), then mark to close."""
        self._now = bar.time
        self._bar_index = bar_index
        symbol = bar.symbol
        working = self._working.get(symbol)
        fills: list[Fill] = []
        if working:
            self._mark[symbol] = bar.open
            profile = self.profile
            skip_market = profile.market_at_close
            session = bar.time.date()
            volume_left = (None if self.settings.volume_share is None
                           else bar.volume * self.settings.volume_share)
            for order in list(working):
                if order.tif is TimeInForce.DAY:
                    first = self._day_session.setdefault(order.id, session)
                    if first != session:
                        self._finish(order, OrderStatus.EXPIRED, "day order expired at the "
                                     f"end of the {first.isoformat()} session")
                        self._persist(BrokerChange(orders=[order]))
                        continue
                if skip_market and order.type is OrderType.MARKET:
                    continue
                triggered = order.stop_triggered
                price = profile.bar_price(order, bar)
                if price is not None:
                    volume_left = self._fill(order, price, volume_left, fills)
                if order.stop_triggered is not triggered:
                    self._persist_trigger(order)
                if order.is_open and order.tif in (TimeInForce.IOC, TimeInForce.FOK):
                    self._finish(order, OrderStatus.CANCELED,
                                 f"{order.tif.value}: unfilled quantity canceled")
                    self._persist(BrokerChange(orders=[order]))
        self._mark[symbol] = bar.close
        return fills

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
            if order.type is OrderType.MARKET:
                volume_left = self._fill(order, profile.close_price(order, bar), volume_left,
                                         fills)
        return fills

    def on_quote(self, quote: Quote) -> list[Fill]:
        """Work the symbol's orders against a bid/ask (``quote`` profile); marks at the mid."""
        self._now = quote.time
        fills: list[Fill] = []
        for order in list(self._working.get(quote.symbol, ())):
            triggered = order.stop_triggered
            price = self.profile.quote_price(order, quote)
            if price is not None:
                self._fill(order, price, None, fills)
            if order.stop_triggered is not triggered:
                self._persist_trigger(order)
        self._mark[quote.symbol] = quote.mid
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

    def mark(self, symbol: str, price: float) -> None:
        """Set the last known price of ``symbol`` (valuation and order checks use it)."""
        self._mark[symbol] = price

    def last_price(self, symbol: str) -> float | None:
        """The last known price of ``symbol``, or None."""
        return self._mark.get(symbol)

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

    # ------------------------------------------------------------------ execution

    def _fill(self, order: Order, price: float, volume_left: float | None,
              fills: list[Fill]) -> float | None:
        """Fill as much of ``order`` at ``price`` as rules allow; returns the volume left."""
        book = self._books[order.account]
        inst = self._instruments[order.symbol]
        pos = book.positions.get(order.symbol)
        held = pos.qty if pos is not None else 0.0
        sign = _SIGN[order.side]
        if order.qty is None:
            qty = self._size_fraction(book, order, price, inst)
            if qty <= 0:
                self._finish(order, OrderStatus.CANCELED,
                             "insufficient buying power for even one lot at fill "
                             f"(buying power {self._buying_power(book):,.2f}, price {price:,.2f})")
                self._persist(BrokerChange(orders=[order]))
                return volume_left
            order.qty = qty
        qty = order.remaining_qty
        if self._unpriced and order.id in self._unpriced:
            self._unpriced.discard(order.id)
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
                self._persist(BrokerChange(orders=[order]))
                return volume_left
            qty = min(qty, abs(held))
        if volume_left is not None:
            cap = inst.round_qty(volume_left)
            if order.tif is TimeInForce.FOK and cap + _EPS < qty:
                return volume_left  # canceled by the caller: it cannot fill in full
            qty = min(qty, cap)
            if qty <= 0:
                return volume_left
        closing = min(qty, abs(held)) if held * sign < 0 else 0.0
        opening = qty - closing
        if opening > _EPS:
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

    def _size_fraction(self, book: _Book, order: Order, price: float,
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

    def _execute(self, book: _Book, order: Order, price: float, qty: float,
                 fills: list[Fill], mult: float | None = None) -> None:
        """Apply one fill: cash, FIFO lots, closed trades, the order, and persist it all."""
        symbol = order.symbol
        if mult is None:
            mult = self._multiplier(symbol)
        sign = _SIGN[order.side]
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
        pos = self._book_fill(book, symbol, mult, sign, qty, price, commission, now,
                              bar_index, order.tag)

        prev = order.filled_qty
        filled = round(prev + qty, 12)
        # Straight into the model's __dict__: pydantic's __setattr__ costs more than the whole
        # fill otherwise, and these values are computed here, not user input.
        order.__dict__.update(
            filled_qty=filled, updated_at=now,
            avg_fill_price=price if not prev else
            ((order.avg_fill_price or price) * prev + price * qty) / filled)
        order_qty = order.qty or filled
        # A reduce-only order is done when its position is closed (its quantity was capped to
        # it), not after any fill: a volume cap may leave part of the position to sell.
        if filled >= order_qty - _EPS or (order.reduce_only and symbol not in book.positions):
            self._finish(order, OrderStatus.FILLED, None)
        else:
            order.status = OrderStatus.PARTIALLY_FILLED
        fill = trusted(
            Fill,
            id=self._ids("f"), order_id=order.id, account=book.id, symbol=symbol,
            side=order.side, qty=qty, price=price, commission=commission, time=now,
            bar_index=bar_index)
        book.fills.append(fill)
        fills.append(fill)
        if self._store is not None:
            self._persist(BrokerChange(orders=[order], fills=[fill],
                                       positions=[pos.view(price)], accounts=[book.snapshot()]))

    def _book_fill(self, book: _Book, symbol: str, mult: float, sign: float, qty: float,
                   price: float, commission: float, now: datetime, bar_index: int | None,
                   tag: str | None) -> _Pos:
        """Book one fill into cash, FIFO lots, closed trades and the position (which it returns,
        flat positions included); shared by live fills and :meth:`restore`."""
        book.cash -= sign * qty * price * mult + commission
        book.commissions += commission

        pos = book.positions.get(symbol)
        if pos is None:
            pos = book.positions[symbol] = _Pos(book.id, symbol, mult)
        key = (book.id, symbol)
        lots = self._lots.get(key)
        if lots is None:
            lots = self._lots[key] = deque()
        remaining = qty
        while remaining > _EPS and lots and lots[0].qty * sign < 0:
            lot = lots[0]
            lot_abs = abs(lot.qty)
            take = lot_abs if lot_abs <= remaining + _EPS else remaining
            lot_sign = 1.0 if lot.qty > 0 else -1.0
            entry_comm = lot.commission * (take / lot_abs)
            exit_comm = commission * (take / qty)
            gross = lot_sign * take * (price - lot.price) * mult
            total_comm = entry_comm + exit_comm
            book.closed_trades.append(trusted(
                Trade,
                account=book.id, symbol=symbol, size=lot_sign * take, entry_time=lot.time,
                entry_price=lot.price, entry_bar=lot.bar, exit_time=now, exit_price=price,
                exit_bar=bar_index, pnl=gross - total_comm,
                return_pct=lot_sign * (price / lot.price - 1)
                - total_comm / (take * lot.price * mult),
                commission=total_comm, tag=lot.tag))
            pos.realized_pnl += gross
            book.realized_pnl += gross
            book.basis += gross - exit_comm
            if take >= lot_abs - _EPS:
                lots.popleft()
            else:
                lot.qty -= lot_sign * take
                lot.commission -= entry_comm
            remaining -= take
        if remaining > _EPS:
            open_comm = commission * (remaining / qty)
            book.basis -= open_comm
            lots.append(_Lot(sign * remaining, price, now, bar_index, open_comm, tag))
        if lots:
            total = 0.0
            cost = 0.0
            for lot in lots:
                total += lot.qty
                cost += lot.qty * lot.price
            pos.qty = round(total, 12)
            pos.cost = cost
            pos.avg_price = cost / total if total else 0.0
        else:
            pos.qty = 0.0
            pos.avg_price = 0.0
            del book.positions[symbol]
            del self._lots[key]
        return pos

    def _persist_trigger(self, order: Order) -> None:
        """Persist a stop that triggered without filling: it is a limit order from now on."""
        if order.filled_qty == 0.0 and order.is_open:
            order.updated_at = self._now
            self._persist(BrokerChange(orders=[order]))

    def _persist(self, change: BrokerChange) -> None:
        if self._batch is not None:
            self._batch.append(change)
        elif self._store is not None:
            self._store.commit(change)

    # ------------------------------------------------------------------ live use

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

    def find_client_order(self, account_id: str, client_order_id: str) -> Order | None:
        """The order that ``client_order_id`` named in the account, from memory or the store."""
        book = self._book(account_id)
        order_id = book.client_ids.get(client_order_id)
        if order_id is not None:
            return self._orders[order_id]
        if self._store is None:
            return None
        return self._store.find_client_order(account_id, client_order_id)

    def restore(self) -> int:
        """Rebuild every account from the store: cash, lots, positions, closed trades and working
        orders, by replaying the stored fills in order. Returns the number of fills replayed.

        Called once on an empty broker when a host starts, so that a host killed at any moment
        resumes exactly where its last committed transaction left it.
        """
        store = self._store
        if store is None:
            raise RuntimeError("PaperBroker.restore needs a store")
        if self._books:
            raise RuntimeError("PaperBroker.restore must run on a broker with no accounts")
        replayed = 0
        for stored in store.list_accounts():
            opened = stored.model_copy(update={"cash": stored.initial_cash, "commissions": 0.0,
                                               "realized_pnl": 0.0})
            book = self._books[stored.id] = _Book(opened)
            tags: dict[str, str | None] = {}
            after: str | None = None
            while True:
                page = store.list_fills(stored.id, limit=5000, after=after)
                if not page:
                    break
                for fill in page:
                    if fill.order_id not in tags:
                        order = store.get_order(fill.order_id)
                        tags[fill.order_id] = order.tag if order else None
                    self._book_fill(book, fill.symbol, self._multiplier(fill.symbol),
                                    fill.side.sign, fill.qty, fill.price, fill.commission,
                                    fill.time, fill.bar_index, tags[fill.order_id])
                    book.fills.append(fill)
                    replayed += 1
                after = page[-1].id
            after = None
            while True:
                orders = store.list_orders(stored.id, open_only=True, limit=1000, after=after)
                if not orders:
                    break
                for order in orders:
                    self._orders[order.id] = order
                    book.orders[order.id] = order
                    if order.client_order_id is not None:
                        book.client_ids[order.client_order_id] = order.id
                    self._working.setdefault(order.symbol, []).append(order)
                after = orders[-1].id
            if abs(book.cash - stored.cash) > 1e-6 * max(1.0, abs(stored.cash)):
                raise StoreError(
                    f"account {stored.id!r}: replaying its {replayed} stored fills gives cash "
                    f"{book.cash:,.2f} but the store says {stored.cash:,.2f}; the store is "
                    "inconsistent")
            book.cash = stored.cash  # bit-identical to what was last committed
        return replayed
