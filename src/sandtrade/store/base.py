"""The one narrow interface every store implements.

The broker and the rest of the host talk to persistence only through :class:`Store`, so that a
PostgreSQL store can follow the SQLite one without touching them. Every mutating call is one
transaction: either all of it is durable or none of it is.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple, Protocol, runtime_checkable

from sandtrade.models import Account, BrokerChange, Fill, Order, OrderStatus, Position
from sandtrade.signal_model import SignalRecord

__all__ = ["ApiToken", "JournalEntry", "JsonText", "LogBound", "RunRecord", "Store",
           "StoredLogLine", "StrategyRecord", "new_strategy_id", "strategy_state_key"]


class JsonText(str):
    """JSON text already checked by its maker (plain, bounded in depth and size: see
    :func:`sandtrade.sandbox.wire.check_json`), stored as it is: a host state value given as
    ``JsonText`` to :meth:`Store.commit_many` is written without being walked again."""

    __slots__ = ()


class JournalEntry(NamedTuple):
    """A new signal for the journal: the record, the body hash it is known by as a resend (if
    any), and its JSON as the journal encoded it (None: the store encodes it), so that a
    signal is serialized once on its way in."""

    record: SignalRecord
    dedup_hash: str | None = None
    data: JsonText | None = None


@dataclass(slots=True)
class RunRecord:
    """The stored result of a back-test or paper-trading run."""

    id: str
    kind: str  # "backtest" | "paper"
    strategy: str
    started_at: datetime
    finished_at: datetime | None = None
    params: dict[str, Any] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    trades: list[dict[str, Any]] = field(default_factory=list)
    status: str = "finished"
    error: str | None = None


@dataclass(slots=True)
class SweepRecord:
    """A stored sweep (``sandtrade optimize``): its id (derived from what it runs, so the
    same sweep started again resumes), its strategy, what it is (``spec``: the grid, the
    data, the settings, as JSON) and its status (``running``, ``finished``, ``stopped``)."""

    id: str
    strategy: str
    created_at: datetime
    spec: dict[str, Any]
    status: str = "running"


@dataclass(frozen=True, slots=True)
class ApiToken:
    """An API token as stored: never the secret itself, only its SHA-256."""

    id: str
    account: str
    scopes: tuple[str, ...]
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None = None
    label: str | None = None


@dataclass(frozen=True, slots=True)
class StoredLogLine:
    """A line of a strategy's log as the store keeps it: ``ring`` is ``own`` (what the
    strategy wrote, and its errors) or ``host`` (the host's notes about it), each bounded
    apart; ``origin`` says whose the text is (``strategy``, ``error`` or ``host``); ``seq``
    orders every line of the host."""

    seq: int
    strategy_id: str
    ring: str
    origin: str
    time: datetime
    line: str


@dataclass(frozen=True, slots=True)
class LogBound:
    """Trim one ring of a strategy's log to at most ``lines`` lines and ``bytes`` bytes of
    text (UTF-8), the oldest first."""

    strategy_id: str
    ring: str
    lines: int
    bytes: int


def new_strategy_id() -> str:
    """A fresh strategy id, ``stg_`` and 16 hex digits: never one used before, so what was
    kept under a deleted strategy's id is never another's."""
    return f"stg_{secrets.token_hex(8)}"


def strategy_state_key(strategy_id: str) -> str:
    """The host-state key of a strategy's ``ctx.state`` (``…:state.bad`` holds an unreadable
    one set aside)."""
    return f"strategy:{strategy_id}:state"


@dataclass(frozen=True, slots=True)
class StrategyRecord:
    """An uploaded strategy: its source, where it trades, and whether it should be running.

    A strategy is named within its account: ``(account, name)`` is unique, and ``id`` is
    given at the first upload of that name in that account and kept by later uploads; its
    ``ctx.state`` is stored under the id, so a name used again after a delete starts afresh.
    ``desired`` is "running" or "stopped": what the operator asked for last, so that a host
    starting again resumes exactly the strategies that were running.
    """

    id: str
    name: str
    account: str
    source: str
    source_sha256: str
    params: dict[str, Any]
    symbols: tuple[str, ...]
    desired: str
    uploaded_at: datetime


@runtime_checkable
class Store(Protocol):
    """Persistence for accounts, orders, fills, positions and runs."""

    @property
    def schema_version(self) -> int:
        """The schema version the open database is at."""
        ...

    def close(self) -> None:
        """Flush and release the database."""
        ...

    # accounts
    def create_account(self, account: Account) -> None:
        """Insert a new account; raises ``StoreError`` if the id exists."""
        ...

    def get_account(self, account_id: str) -> Account | None:
        """The account, or None."""
        ...

    def list_accounts(self) -> list[Account]:
        """All accounts, ordered by id."""
        ...

    # broker state
    def commit(self, change: BrokerChange) -> None:
        """Apply one broker change (upsert orders, append fills, upsert positions and accounts)
        in a single transaction."""
        ...

    def commit_many(self, changes: Sequence[BrokerChange], state: dict[str, Any] | None = None,
                    signals: Sequence[SignalRecord] = (),
                    new_signals: Sequence[JournalEntry] = ()) -> None:
        """Several changes, host state keys, new signals and signal updates in one
        transaction."""
        ...

    def append_signals(self, records: Sequence[SignalRecord],
                       dedup_hashes: Sequence[str | None] | None = None) -> None:
        """Journal new signals in one transaction."""
        ...

    def update_signals(self, records: Sequence[SignalRecord]) -> None:
        """Store the new status of journaled signals."""
        ...

    def get_signal(self, signal_id: str) -> SignalRecord | None:
        """A journaled signal, or None."""
        ...

    def list_signals(self, *, account: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, before_seq: int | None = None,
                     limit: int = 100, oldest_first: bool = False
                     ) -> list[tuple[int, SignalRecord]]:
        """Journaled signals with their sequence numbers."""
        ...

    def unfinished_signals(self) -> list[SignalRecord]:
        """Accepted signals not yet finished, oldest first."""
        ...

    def recent_signal_keys(self, since: datetime
                           ) -> list[tuple[str, str | None, str | None, str, float]]:
        """The duplicate index since ``since``."""
        ...

    def get_state(self, key: str) -> Any:
        """A host state value set by :meth:`commit_many`, or None."""
        ...

    def get_state_text(self, key: str) -> str | None:
        """A host state value as its stored JSON text (unparsed: the caller checks it), or
        None."""
        ...

    def find_client_order(self, account: str, client_order_id: str) -> Order | None:
        """The account's order submitted with ``client_order_id``, or None."""
        ...

    def get_account_settings(self, account: str) -> dict[str, Any] | None:
        """``account``'s own settings (a JSON object), or None when it has none."""
        ...

    def list_account_settings(self) -> dict[str, dict[str, Any]]:
        """Every account's own settings, by account."""
        ...

    def save_account_settings(self, account: str, data: dict[str, Any] | None) -> None:
        """Replace ``account``'s own settings (None removes them)."""
        ...

    def save_token(self, token: ApiToken) -> None:
        """Store a new API token."""
        ...

    def get_token(self, token_id: str) -> ApiToken | None:
        """The token with this id, or None."""
        ...

    def list_tokens(self) -> list[ApiToken]:
        """Every token, oldest first."""
        ...

    def revoke_token(self, token_id: str, when: datetime) -> bool:
        """Revoke a token; False when unknown or already revoked."""
        ...

    def save_strategy(self, strategy: StrategyRecord) -> None:
        """Insert the strategy, or replace the one of this account and name (whose id is
        kept)."""
        ...

    def get_strategy(self, account: str, name: str) -> StrategyRecord | None:
        """The account's strategy of this name, or None (no other account's row is read)."""
        ...

    def find_strategies(self, name: str) -> list[StrategyRecord]:
        """The strategies of this name in every account, by account (for the operator)."""
        ...

    def list_strategies(self, account: str | None = None) -> list[StrategyRecord]:
        """The account's strategies by name, or every account's by account and name."""
        ...

    def set_strategy_desired(self, strategy_id: str, desired: str) -> bool:
        """Record whether a strategy should run; False when there is no such strategy."""
        ...

    def delete_strategy(self, strategy_id: str) -> bool:
        """Remove a strategy, its host state (its ``ctx.state``) and its log, in one
        transaction; False when there is no such strategy."""
        ...

    def append_strategy_logs(self, lines: Sequence[StoredLogLine],
                             trim: Sequence[LogBound] = ()) -> dict[tuple[str, str],
                                                                    tuple[int, int]]:
        """Add log lines and trim the rings named in ``trim``, in one transaction; the
        (lines, bytes) each trimmed ring holds after."""
        ...

    def strategy_log_size(self, strategy_id: str) -> dict[str, tuple[int, int]]:
        """(lines, bytes) of each ring of a strategy's stored log."""
        ...

    def list_strategy_logs(self, strategy_id: str, *, tail: int = 0) -> list[StoredLogLine]:
        """A strategy's stored log in order (the last ``tail`` lines; all when 0)."""
        ...

    def last_log_seq(self) -> int:
        """The highest log line number stored (0 when none)."""
        ...

    def append_equity_points(self, points: Sequence[tuple[str, float, float]]) -> None:
        """Store ``(account, unix time, equity)`` points (one already there at that time is
        replaced)."""
        ...

    def equity_points(self, account: str, *, until: float | None = None
                      ) -> list[tuple[float, float]]:
        """``(unix time, equity)`` of ``account``, oldest first (before ``until`` only)."""
        ...

    def latest_equity_point(self, account: str) -> tuple[float, float] | None:
        """``account``'s newest ``(unix time, equity)``, or None."""
        ...

    def thin_equity_points(self, before: float, every: float) -> int:
        """Keep, of the points older than ``before``, the last of each ``every`` seconds of
        each account; returns how many went."""
        ...

    def activity_counts(self) -> dict[str, list[tuple[Any, ...]]]:
        """What ``/metrics`` counts, read in one go: ``signals`` as (source, status, count),
        ``orders`` as (status, count), ``fills`` as (count,)."""
        ...

    def get_order(self, order_id: str) -> Order | None:
        """The order, or None."""
        ...

    def list_orders(self, account: str, *, status: OrderStatus | None = None,
                    open_only: bool = False, limit: int = 100,
                    after: str | None = None) -> list[Order]:
        """Orders of an account in creation order, paginated by ``after`` (an order id)."""
        ...

    def list_fills(self, account: str, *, order_id: str | None = None, limit: int = 1000,
                   after: str | None = None) -> list[Fill]:
        """Fills of an account in execution order, paginated by ``after`` (a fill id)."""
        ...

    def list_positions(self, account: str) -> list[Position]:
        """Non-flat positions of an account, ordered by symbol."""
        ...

    # runs
    def save_run(self, run: RunRecord) -> None:
        """Insert or replace a run record."""
        ...

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""
        ...

    def list_runs(self, *, limit: int = 100) -> list[RunRecord]:
        """Most recent runs first."""
        ...

    def save_sweep(self, sweep: SweepRecord) -> None:
        """Insert a sweep, or update its status."""
        ...

    def get_sweep(self, sweep_id: str) -> SweepRecord | None:
        """The sweep, or None."""
        ...

    def save_sweep_runs(self, sweep_id: str, runs: Sequence[RunRecord]) -> None:
        """Store finished runs of a sweep, in one transaction."""
        ...

    def list_sweep_runs(self, sweep_id: str) -> list[RunRecord]:
        """The stored runs of a sweep, in the order they were stored."""
        ...
