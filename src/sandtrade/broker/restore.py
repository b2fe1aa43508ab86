"""What the paper broker needs from a store: the :class:`Ledger` protocol.

The broker persists through these eight calls and nothing else. Every
:class:`~sandtrade.store.base.Store` satisfies the protocol structurally, so the broker room
names no store module: a back-test (and so the sandboxed worker) imports the broker without
importing persistence.
"""

from __future__ import annotations

from typing import Protocol

from sandtrade.models import Account, BrokerChange, Fill, Order

__all__ = ["Ledger"]


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
