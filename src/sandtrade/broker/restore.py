"""What the broker needs from a store, and rebuilding every account from it.

The broker persists through the nine calls of :class:`Ledger` and nothing else. Every
:class:`~sandtrade.store.base.Store` satisfies the protocol structurally, so the broker room
names no store module: a back-test (and so the sandboxed worker) imports the broker without
importing persistence. :class:`Restore` is the part of
:class:`~sandtrade.broker.paper.PaperBroker` that reads it back when a host starts.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sandtrade.broker.lots import AccountBook, Lot, book_fill
from sandtrade.broker.risk import risk_state_key
from sandtrade.errors import StoreError
from sandtrade.models import (
    Account,
    BrokerChange,
    Fill,
    FillKind,
    Instrument,
    Order,
    OrderClass,
)

__all__ = ["Ledger", "Restore"]


class Ledger(Protocol):
    """The store calls the paper broker makes: accounts, its history to restore, and commits."""

    def create_account(self, account: Account) -> None:
        """Insert a new account; raises ``StoreError`` if the id exists."""
        ...

    def get_account(self, account_id: str) -> Account | None:
        """The account, or None."""
        ...

    def list_accounts(self) -> list[Account]:
        """All accounts, ordered by id."""
        ...

    def list_fills(self, account: str, *, limit: int = 1000,
                   after: str | None = None) -> list[Fill]:
        """Fills of an account in execution order, paginated by ``after`` (a fill id)."""
        ...

    def list_orders(self, account: str, *, open_only: bool = False, limit: int = 100,
                    after: str | None = None) -> list[Order]:
        """Orders of an account in creation order, paginated by ``after`` (an order id)."""
        ...

    def get_order(self, order_id: str) -> Order | None:
        """The order, or None."""
        ...

    def find_client_order(self, account: str, client_order_id: str) -> Order | None:
        """The account's order submitted with ``client_order_id``, or None."""
        ...

    def commit(self, change: BrokerChange) -> None:
        """Apply one broker change in a single transaction."""
        ...

    def get_state(self, key: str) -> Any:
        """A host state value committed with a change (``BrokerChange.state``), or None."""
        ...


class Restore:
    """Client order ids looked up in memory or the store, and the broker rebuilt from the store
    (a mixin of :class:`~sandtrade.broker.paper.PaperBroker`)."""

    if TYPE_CHECKING:  # PaperBroker's state and methods restoring reads
        _store: Ledger | None
        _books: dict[str, AccountBook]
        _lots: dict[tuple[str, str], deque[Lot]]
        _orders: dict[str, Order]
        _working: dict[str, list[Order]]
        _instruments: dict[str, Instrument]
        _risk_on: bool
        _legs: dict[str, list[Order]]

        def _book(self, account_id: str) -> AccountBook: ...
        def _note_fill(self, account: str, symbol: str, held: float, sign: int, qty: float,
                       when: datetime, inst: Instrument | None) -> None: ...
        def _load_risk_day(self, account: str, data: dict[str, Any]) -> None: ...
        def _multiplier(self, symbol: str) -> float: ...
        def _restore_instrument(self, store: Ledger, symbol: str, tried: set[str]) -> None: ...
        def _restore_signal_prices(self, store: Ledger, account: str) -> None: ...
        def _stop_before(self, take: Order) -> None: ...
        def _group_note(self, order: Order | None, fill: Fill) -> None: ...
        def _restore_multileg(self) -> None: ...
        def option_instrument(self, symbol: str) -> Instrument | None: ...

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
        orders (a bracket's exits with their group), by replaying the stored fills in order,
        and the risk rules' state (the day's start equity, halt and orders from the store, day
        trades from the fills). Returns the number of fills replayed.

        Called once on an empty broker when a host starts, so that a host killed at any moment
        resumes exactly where its last committed transaction left it.
        """
        store = self._store
        if store is None:
            raise RuntimeError("PaperBroker.restore needs a store")
        if self._books:
            raise RuntimeError("PaperBroker.restore must run on a broker with no accounts")
        replayed = 0
        tried: set[str] = set()  # symbols looked up among the instruments signals registered
        self._risk_on = True  # a live broker: day trades are counted whatever the rules
        for stored in store.list_accounts():
            opened = stored.model_copy(update={"cash": stored.initial_cash, "commissions": 0.0,
                                               "realized_pnl": 0.0})
            book = self._books[stored.id] = AccountBook(opened)
            tags: dict[str, str | None] = {}
            mlegs: dict[str, Order] = {}  # multi-leg orders: their fills form groups
            after: str | None = None
            while True:
                page = store.list_fills(stored.id, limit=5000, after=after)
                if not page:
                    break
                for fill in page:
                    if fill.symbol not in self._instruments:
                        self._restore_instrument(store, fill.symbol, tried)
                        self.option_instrument(fill.symbol)
                    if fill.order_id not in tags:
                        order = store.get_order(fill.order_id)
                        tags[fill.order_id] = order.tag if order else None
                        if order is not None and order.order_class is OrderClass.MLEG:
                            mlegs[order.id] = order
                    pos = book.positions.get(fill.symbol)
                    self._note_fill(stored.id, fill.symbol, pos.qty if pos is not None else 0.0,
                                    fill.side.sign, fill.qty, fill.time,
                                    self._instruments.get(fill.symbol))
                    book_fill(book, self._lots, fill.symbol, self._multiplier(fill.symbol),
                              fill.side.sign, fill.qty, fill.price, fill.commission, fill.time,
                              fill.bar_index, tags[fill.order_id])
                    book.fills.append(fill)
                    if self._multiplier(fill.symbol) != 1.0 or fill.order_id in mlegs \
                            or fill.kind is not FillKind.TRADE:
                        self._group_note(mlegs.get(fill.order_id), fill)
                    replayed += 1
                after = page[-1].id
            after = None
            while True:
                orders = store.list_orders(stored.id, open_only=True, limit=1000, after=after)
                if not orders:
                    break
                for order in orders:
                    if order.symbol not in self._instruments:
                        self._restore_instrument(store, order.symbol, tried)
                    for leg in order.legs or ():
                        if self.option_instrument(leg.symbol) is None:
                            self._restore_instrument(store, leg.symbol, tried)
                    self._orders[order.id] = order
                    book.orders[order.id] = order
                    if order.client_order_id is not None:
                        book.client_ids[order.client_order_id] = order.id
                    self._working.setdefault(order.symbol, []).append(order)
                    if order.parent_id is not None:  # an exit: its group (legs.py) again
                        self._legs.setdefault(order.parent_id, []).append(order)
                after = orders[-1].id
            self._restore_multileg()
            for parent_id in list(self._legs):
                parent = self._orders.get(parent_id)
                if parent is not None and parent.order_class is OrderClass.OCO:
                    self._stop_before(parent)
            if abs(book.cash - stored.cash) > 1e-6 * max(1.0, abs(stored.cash)):
                raise StoreError(
                    f"account {stored.id!r}: replaying its {replayed} stored fills gives cash "
                    f"{book.cash:,.2f} but the store says {stored.cash:,.2f}; the store is "
                    "inconsistent")
            book.cash = stored.cash  # bit-identical to what was last committed
            self._restore_signal_prices(store, stored.id)
            day = store.get_state(risk_state_key(stored.id))
            if isinstance(day, dict):
                self._load_risk_day(stored.id, day)
        return replayed
