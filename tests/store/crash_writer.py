"""The writer half of the crash test: commits broker changes to a store until it is killed.

Run as ``python crash_writer.py DB_PATH``. It continues from whatever the database holds, then
commits change after change; each is fill number ``k`` of the stream, together with its order's
new filled quantity and status, the position and the account's cash, and after each commit
returns it prints ``k`` on stdout. The quantities and prices are a pure function of ``k``
(small whole quantities, prices in quarters), so every sum is exact in floats and the test can
check the invariants with ``==``.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta

from sandtrade.models import (
    Account,
    BrokerChange,
    Fill,
    Order,
    OrderSide,
    OrderStatus,
    Position,
)
from sandtrade.store import SQLiteStore

ACCOUNT = "crash"
SYMBOL = "AAPL"
INITIAL_CASH = 1_000_000.0
FILLS_PER_ORDER = 3
T0 = datetime(2026, 1, 2, 14, 30, tzinfo=UTC)


def fill_qty(k: int) -> float:
    """Quantity of fill ``k``."""
    return float(1 + k % 5)


def fill_price(k: int) -> float:
    """Price of fill ``k``."""
    return 100.0 + (k % 7) * 0.25


def order_id(k: int) -> str:
    """The order fill ``k`` belongs to."""
    return f"o{k // FILLS_PER_ORDER:06d}"


def fill_id(k: int) -> str:
    """Id of fill ``k``; sorts in stream order."""
    return f"f{k:07d}"


def order_qty(order_index: int) -> float:
    """Full quantity of order number ``order_index``: the sum of its fills."""
    first = order_index * FILLS_PER_ORDER
    return sum(fill_qty(k) for k in range(first, first + FILLS_PER_ORDER))


def main(db_path: str) -> None:
    """Continue the stream in ``db_path`` until killed."""
    store = SQLiteStore(db_path)
    account = store.get_account(ACCOUNT)
    if account is None:
        account = Account(id=ACCOUNT, cash=INITIAL_CASH, initial_cash=INITIAL_CASH)
        store.create_account(account)
    k = 0
    after: str | None = None
    while page := store.list_fills(ACCOUNT, after=after):
        k += len(page)
        after = page[-1].id
    positions = store.list_positions(ACCOUNT)
    position = positions[0] if positions else Position(account=ACCOUNT, symbol=SYMBOL)
    while True:
        oid = order_id(k)
        order = store.get_order(oid) or Order(
            id=oid, account=ACCOUNT, symbol=SYMBOL, side=OrderSide.BUY,
            qty=order_qty(k // FILLS_PER_ORDER), status=OrderStatus.ACCEPTED, created_at=T0)
        qty, price = fill_qty(k), fill_price(k)
        filled = order.filled_qty + qty
        order = order.model_copy(update={
            "filled_qty": filled,
            "status": OrderStatus.FILLED if filled == order.qty else OrderStatus.PARTIALLY_FILLED,
        })
        fill = Fill(id=fill_id(k), order_id=oid, account=ACCOUNT, symbol=SYMBOL,
                    side=OrderSide.BUY, qty=qty, price=price, time=T0 + timedelta(minutes=k))
        position = position.model_copy(update={"qty": position.qty + qty, "market_price": price})
        account = account.model_copy(update={"cash": account.cash - qty * price})
        store.commit(BrokerChange(orders=[order], fills=[fill], positions=[position],
                                  accounts=[account]))
        print(k, flush=True)
        k += 1


if __name__ == "__main__":
    main(sys.argv[1])
