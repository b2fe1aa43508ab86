"""FIFO lots, positions and an account's cash and totals; booking one fill; shared by fills and
restore.

These are the broker's mutable books: plain slotted classes rather than models, because they
change on every fill. :class:`AccountBook.snapshot` and :meth:`PositionState.view` turn them
into the domain models the rest of sandtrade sees.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime

from sandtrade.models import Account, Fill, Order, OrderSide, Position, Trade, trusted, unvalidated

__all__ = ["EPS", "KEEP_FINISHED", "SIGN", "AccountBook", "Lot", "PositionState", "book_fill"]

#: ``OrderSide.sign`` as a dict: a property read on an enum member costs more, per order.
SIGN = {OrderSide.BUY: 1, OrderSide.SELL: -1}
#: Finished orders (and fills) each account keeps in memory; the store keeps all of them.
#: Without a bound, a long run (or a strategy that keeps sending orders it cannot afford)
#: would grow without limit.
KEEP_FINISHED = 1000
#: Tolerance for quantities: what is left of a lot or an order below it is nothing.
EPS = 1e-9


class Lot:
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


class PositionState:
    """A position's mutable state (plain slots: it changes on every fill)."""

    __slots__ = ("account", "avg_price", "cost", "multiplier", "qty", "realized_pnl", "symbol")

    def __init__(self, account: str, symbol: str, multiplier: float) -> None:
        self.account = account
        self.symbol = symbol
        self.multiplier = multiplier
        self.qty = 0.0
        self.avg_price = 0.0
        self.realized_pnl = 0.0
        #: Σ lot qty × entry price of the open lots, summed in FIFO order (see AccountBook.basis).
        self.cost = 0.0

    def view(self, market_price: float | None) -> Position:
        """The position as a domain model, marked at ``market_price``."""
        return trusted(Position, account=self.account, symbol=self.symbol, qty=self.qty,
                       avg_price=self.avg_price, realized_pnl=self.realized_pnl,
                       market_price=market_price, multiplier=self.multiplier)


class AccountBook:
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
        self.positions: dict[str, PositionState] = {}
        self.orders: dict[str, Order] = {}
        self.client_ids: dict[str, str] = {}
        self.closed_trades: list[Trade] = []
        self.fills: deque[Fill] = deque(maxlen=KEEP_FINISHED)
        self.finished: deque[str] = deque()

    def snapshot(self, **extra: object) -> Account:
        """The account as a domain model (cash and running totals; ``extra`` adds the rest):
        ``opened`` copied with them, as ``model_copy(update=...)`` would (without its
        Python-level steps: a live bar's every fill takes one)."""
        update = {"cash": self.cash, "commissions": self.commissions,
                  "realized_pnl": self.realized_pnl, **extra}
        return unvalidated(Account, {**self.opened.__dict__, **update},
                           self.opened.__pydantic_fields_set__ | update.keys())


def book_fill(book: AccountBook, open_lots: dict[tuple[str, str], deque[Lot]], symbol: str,
              mult: float, sign: float, qty: float, price: float, commission: float,
              now: datetime, bar_index: int | None, tag: str | None) -> PositionState:
    """Book one fill into cash, FIFO lots, closed trades and the position (which it returns,
    flat positions included); shared by live fills and restore. ``open_lots`` holds every
    account's open lots by ``(account, symbol)``."""
    book.cash -= sign * qty * price * mult + commission
    book.commissions += commission

    pos = book.positions.get(symbol)
    if pos is None:
        pos = book.positions[symbol] = PositionState(book.id, symbol, mult)
    key = (book.id, symbol)
    lots = open_lots.get(key)
    if lots is None:
        lots = open_lots[key] = deque()
    remaining = qty
    while remaining > EPS and lots and lots[0].qty * sign < 0:
        lot = lots[0]
        lot_abs = abs(lot.qty)
        take = lot_abs if lot_abs <= remaining + EPS else remaining
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
        if take >= lot_abs - EPS:
            lots.popleft()
        else:
            lot.qty -= lot_sign * take
            lot.commission -= entry_comm
        remaining -= take
    if remaining > EPS:
        open_comm = commission * (remaining / qty)
        book.basis -= open_comm
        lots.append(Lot(sign * remaining, price, now, bar_index, open_comm, tag))
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
        del open_lots[key]
    return pos
