"""The store's schema, as an ordered list of forward migrations.

A database records the version it is at in ``schema_version``. Opening a store applies every
migration newer than that, each in its own transaction together with the version bump, so a
crash mid-upgrade leaves the database at the last version that completed. Migrations are never
edited once released: a change to the schema is a new migration at the end of the list.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sandtrade.errors import StoreError
from sandtrade.models import TERMINAL_STATUSES

__all__ = ["LATEST_VERSION", "MIGRATIONS", "Migration", "migrate", "read_schema_version"]


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of the schema: SQL statements run in order, or a function given the connection."""

    version: int
    description: str
    apply: tuple[str, ...] | Callable[[sqlite3.Connection], None]

    def run(self, conn: sqlite3.Connection) -> None:
        """Apply this step on ``conn`` inside the caller's transaction."""
        if callable(self.apply):
            self.apply(conn)
        else:
            for statement in self.apply:
                conn.execute(statement)


# Typed columns hold what queries filter and sort on; ``data`` holds the whole model as JSON and
# is what is read back, so a model round-trips exactly whatever the columns hold.
_V1_CREATE_TABLES = (
    """
    CREATE TABLE accounts (
        id          TEXT PRIMARY KEY,
        currency    TEXT NOT NULL,
        cash        REAL NOT NULL,
        created_at  TEXT,
        data        TEXT NOT NULL
    )
    """,
    """
    CREATE TABLE orders (
        seq             INTEGER PRIMARY KEY,
        id              TEXT NOT NULL UNIQUE,
        account         TEXT NOT NULL REFERENCES accounts (id),
        symbol          TEXT NOT NULL,
        side            TEXT NOT NULL,
        type            TEXT NOT NULL,
        status          TEXT NOT NULL,
        client_order_id TEXT,
        created_at      TEXT,
        updated_at      TEXT,
        data            TEXT NOT NULL
    )
    """,
    "CREATE INDEX orders_by_account ON orders (account, seq)",
    "CREATE INDEX orders_by_account_status ON orders (account, status, seq)",
    """
    CREATE TABLE fills (
        seq         INTEGER PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        order_id    TEXT NOT NULL REFERENCES orders (id),
        account     TEXT NOT NULL REFERENCES accounts (id),
        symbol      TEXT NOT NULL,
        side        TEXT NOT NULL,
        qty         REAL NOT NULL,
        price       REAL NOT NULL,
        commission  REAL NOT NULL,
        time        TEXT NOT NULL,
        data        TEXT NOT NULL
    )
    """,
    "CREATE INDEX fills_by_account ON fills (account, seq)",
    "CREATE INDEX fills_by_order ON fills (order_id, seq)",
    """
    CREATE TABLE positions (
        account     TEXT NOT NULL REFERENCES accounts (id),
        symbol      TEXT NOT NULL,
        qty         REAL NOT NULL,
        data        TEXT NOT NULL,
        PRIMARY KEY (account, symbol)
    )
    """,
    """
    CREATE TABLE runs (
        seq         INTEGER PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        kind        TEXT NOT NULL,
        strategy    TEXT NOT NULL,
        status      TEXT NOT NULL,
        started_at  TEXT NOT NULL,
        started_ts  REAL NOT NULL,
        finished_at TEXT,
        params      TEXT NOT NULL,
        stats       TEXT NOT NULL,
        trades      TEXT NOT NULL,
        error       TEXT
    )
    """,
    "CREATE INDEX runs_by_start ON runs (started_ts, seq)",
)


def _v2_add_orders_is_open(conn: sqlite3.Connection) -> None:
    # A function rather than SQL so the backfill uses the same terminal statuses that
    # Order.is_open uses when the store writes the column.
    conn.execute("ALTER TABLE orders ADD COLUMN is_open INTEGER NOT NULL DEFAULT 1")
    terminal = sorted(s.value for s in TERMINAL_STATUSES)
    marks = ", ".join("?" for _ in terminal)
    conn.execute(f"UPDATE orders SET is_open = 0 WHERE status IN ({marks})", terminal)
    conn.execute("CREATE INDEX orders_open_by_account ON orders (account, is_open, seq)")


_V3_TOKENS_AND_CLIENT_IDS = (
    """
    CREATE TABLE tokens (
        seq         INTEGER PRIMARY KEY,
        id          TEXT NOT NULL UNIQUE,
        account     TEXT NOT NULL,
        scopes      TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        created_at  TEXT NOT NULL,
        revoked_at  TEXT,
        label       TEXT
    )
    """,
    "CREATE INDEX orders_by_client_id ON orders (account, client_order_id)",
    """
    CREATE TABLE host_state (
        key         TEXT PRIMARY KEY,
        value       TEXT NOT NULL
    )
    """,
)


_V4_STRATEGIES = (
    """
    CREATE TABLE strategies (
        seq           INTEGER PRIMARY KEY,
        name          TEXT NOT NULL UNIQUE,
        account       TEXT NOT NULL,
        source        TEXT NOT NULL,
        source_sha256 TEXT NOT NULL,
        params        TEXT NOT NULL,
        symbols       TEXT NOT NULL,
        desired       TEXT NOT NULL,
        uploaded_at   TEXT NOT NULL
    )
    """,
)


_V5_SIGNALS = (
    # The signal journal: every signal received, accepted or not, with its raw body (in data).
    "CREATE TABLE signals ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " id TEXT NOT NULL UNIQUE,"
    " account TEXT NOT NULL,"
    " source TEXT NOT NULL,"
    " status TEXT NOT NULL,"
    " received_ts REAL NOT NULL,"
    " idempotency_key TEXT,"
    " dedup_hash TEXT,"
    " data TEXT NOT NULL)",
    "CREATE INDEX signals_by_account ON signals (account, seq)",
    "CREATE INDEX signals_by_time ON signals (received_ts)",
    "CREATE INDEX signals_by_key ON signals (account, idempotency_key)"
    " WHERE idempotency_key IS NOT NULL",
    "CREATE INDEX signals_unfinished ON signals (seq)"
    " WHERE status IN ('received', 'validated', 'routed')",
)

_V6_ACCOUNT_SETTINGS = (
    # An account's own settings set over gRPC (its risk rules under "risk"), as one JSON
    # object; accounts without a row trade under the host's configured ones.
    "CREATE TABLE account_settings (account TEXT PRIMARY KEY, data TEXT NOT NULL)",
)


def _v7_strategies_per_account(conn: sqlite3.Connection) -> None:
    # A function rather than SQL: SQLite cannot drop the UNIQUE of a column, so the table is
    # rebuilt, and each strategy's id is made here (stg_ and 16 hex digits of a hash of its
    # seq and name: the same on every copy of a database). Its ctx.state moves from under its
    # name to under its id; the old keys are all read before any new one is written, so a
    # name that looks like an id cannot be overwritten.
    conn.execute(
        """
        CREATE TABLE strategies_v7 (
            seq           INTEGER PRIMARY KEY,
            id            TEXT NOT NULL UNIQUE,
            name          TEXT NOT NULL,
            account       TEXT NOT NULL,
            source        TEXT NOT NULL,
            source_sha256 TEXT NOT NULL,
            params        TEXT NOT NULL,
            symbols       TEXT NOT NULL,
            desired       TEXT NOT NULL,
            uploaded_at   TEXT NOT NULL,
            UNIQUE (account, name)
        )
        """
    )
    moves: list[tuple[str, str]] = []
    for seq, name in conn.execute("SELECT seq, name FROM strategies ORDER BY seq").fetchall():
        digest = hashlib.sha256(f"{seq}:{name}".encode()).hexdigest()[:16]
        strategy_id = f"stg_{digest}"
        conn.execute(
            "INSERT INTO strategies_v7 (seq, id, name, account, source, source_sha256, params,"
            " symbols, desired, uploaded_at) SELECT seq, ?, name, account, source,"
            " source_sha256, params, symbols, desired, uploaded_at FROM strategies"
            " WHERE seq = ?", (strategy_id, seq))
        for suffix in ("state", "state.bad"):
            moves.append((f"strategy:{name}:{suffix}", f"strategy:{strategy_id}:{suffix}"))
    values = {}
    for old, new in moves:
        row = conn.execute("SELECT value FROM host_state WHERE key = ?", (old,)).fetchone()
        if row is not None:
            values[new] = row[0]
            conn.execute("DELETE FROM host_state WHERE key = ?", (old,))
    conn.executemany("INSERT OR REPLACE INTO host_state (key, value) VALUES (?, ?)",
                     list(values.items()))
    conn.execute("DROP TABLE strategies")
    conn.execute("ALTER TABLE strategies_v7 RENAME TO strategies")
    conn.execute("CREATE INDEX strategies_by_name ON strategies (name, account)")


_V8_FILL_PRICE_SOURCE = (
    # Where a fill's price came from: a market source's bar ("feed"), the price a signal
    # carried for a symbol no source covers ("signal"), or the account's last such price
    # ("last"). Fills stored before are the feed's.
    "ALTER TABLE fills ADD COLUMN price_source TEXT NOT NULL DEFAULT 'feed'",
)


_V9_STRATEGY_LOGS = (
    # A strategy's log, kept across restarts: its own lines and errors (ring "own") and, apart
    # so that a flood of its own can never push them out, the host's notes (ring "host"); each
    # ring bounded in lines and bytes, the oldest trimmed. seq orders every line of the host.
    "CREATE TABLE strategy_logs ("
    " seq INTEGER PRIMARY KEY,"
    " strategy_id TEXT NOT NULL,"
    " ring TEXT NOT NULL,"
    " origin TEXT NOT NULL,"
    " ts REAL NOT NULL,"
    " bytes INTEGER NOT NULL,"
    " line TEXT NOT NULL)",
    "CREATE INDEX strategy_logs_by_ring ON strategy_logs (strategy_id, ring, seq)",
    "CREATE INDEX strategy_logs_by_strategy ON strategy_logs (strategy_id, seq)",
)

# A live host writes every order twice (accepted, then filled), each write updating every index
# of the table. An index of the open orders alone is a few rows per account instead of its
# whole history, and a write leaves it when the order finishes; the index by status served
# only list_orders(status=...), an operator's query that the index by account answers well.
_LEANER_ORDER_INDEXES = (
    "DROP INDEX orders_by_account_status",
    "DROP INDEX orders_open_by_account",
    "CREATE INDEX orders_open ON orders (account, seq) WHERE is_open = 1",
)


_V11_SWEEPS = (
    # A sweep (sandtrade optimize): its id (derived from the strategy, the data and the grid,
    # so the same sweep started again finds its runs and resumes), what it is, and its state.
    "CREATE TABLE sweeps ("
    " id TEXT PRIMARY KEY,"
    " strategy TEXT NOT NULL,"
    " created_at TEXT NOT NULL,"
    " spec TEXT NOT NULL,"
    " status TEXT NOT NULL)",
    # Its runs are runs (kind 'sweep'), each with the sweep it belongs to.
    "ALTER TABLE runs ADD COLUMN sweep_id TEXT",
    "CREATE INDEX runs_by_sweep ON runs (sweep_id, seq)",
)


_V12_EQUITY_POINTS = (
    # An account's equity over time, for the dashboard's curve since the account opened (the
    # host keeps the last two hours at one point a second in memory; the store a point a
    # minute, thinned to one an hour past thirty days). t: seconds since 1970.
    "CREATE TABLE equity_points ("
    " account TEXT NOT NULL,"
    " t REAL NOT NULL,"
    " equity REAL NOT NULL,"
    " PRIMARY KEY (account, t)) WITHOUT ROWID",
)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "accounts, orders, fills, positions and runs", _V1_CREATE_TABLES),
    Migration(2, "orders.is_open, indexed, for list_orders(open_only=True)",
              _v2_add_orders_is_open),
    Migration(3, "API tokens (hashed); orders by client order id; host state (feed cursors)",
              _V3_TOKENS_AND_CLIENT_IDS),
    Migration(4, "uploaded strategies and whether each should be running",
              _V4_STRATEGIES),
    Migration(5, "the signal journal", _V5_SIGNALS),
    Migration(6, "per-account settings (risk rules)", _V6_ACCOUNT_SETTINGS),
    Migration(7, "strategies named within their account, with an id; ctx.state by id",
              _v7_strategies_per_account),
    Migration(8, "fills.price_source: feed, signal or last", _V8_FILL_PRICE_SOURCE),
    Migration(9, "strategy logs, bounded per strategy", _V9_STRATEGY_LOGS),
    Migration(10, "open orders indexed alone; no index by status", _LEANER_ORDER_INDEXES),
    Migration(11, "sweeps, and the sweep each run belongs to", _V11_SWEEPS),
    Migration(12, "each account's equity over time", _V12_EQUITY_POINTS),
)


def _check_sequence(migrations: Sequence[Migration]) -> int:
    for expected, m in enumerate(migrations, start=1):
        if m.version != expected:
            raise RuntimeError(
                f"sandtrade.store.migrations: migration #{expected} has version {m.version}; "
                "versions must run 1, 2, 3, ... without gaps"
            )
    return len(migrations)


LATEST_VERSION: int = _check_sequence(MIGRATIONS)
"""The schema version this sandtrade creates and understands."""


def read_schema_version(conn: sqlite3.Connection) -> int:
    """The version recorded in ``schema_version``; 0 for a database without that table."""
    has_table = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if has_table is None:
        return 0
    row = conn.execute("SELECT version FROM schema_version WHERE id = 1").fetchone()
    return 0 if row is None else int(row[0])


def _bootstrap(conn: sqlite3.Connection, where: str) -> None:
    """Create ``schema_version`` in a new database; refuse a database that is someone else's."""
    if conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone():
        conn.execute("INSERT OR IGNORE INTO schema_version (id, version) VALUES (1, 0)")
        return
    foreign = [
        name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
    ]
    if foreign:
        raise StoreError(
            f"{where}: not a sandtrade database (it has tables {', '.join(foreign)} but no "
            "schema_version table); point the store at a new file or an existing sandtrade one"
        )
    conn.execute(
        "CREATE TABLE schema_version ("
        " id INTEGER PRIMARY KEY CHECK (id = 1), version INTEGER NOT NULL)"
    )
    conn.execute("INSERT INTO schema_version (id, version) VALUES (1, 0)")


def migrate(conn: sqlite3.Connection, *, where: str, target: int | None = None) -> int:
    """Bring the database on ``conn`` up to ``target`` (default: the latest); return its version.

    ``conn`` must be in autocommit mode (``isolation_level=None``): each migration runs in its
    own ``BEGIN IMMEDIATE`` transaction with its version bump. ``where`` names the database in
    error messages. Raises :class:`StoreError` for a database newer than this code.
    """
    if conn.isolation_level is not None:
        raise ValueError("migrate() needs a connection opened with isolation_level=None")
    goal = LATEST_VERSION if target is None else target
    if not 0 <= goal <= LATEST_VERSION:
        raise ValueError(
            f"target schema version must be between 0 and {LATEST_VERSION}, got {goal}"
        )
    _in_transaction(conn, where, "create the schema_version table", lambda: _bootstrap(conn, where))
    current = read_schema_version(conn)
    if current > LATEST_VERSION:
        raise StoreError(
            f"{where}: database at schema version {current} but this sandtrade knows up to "
            f"{LATEST_VERSION}; upgrade sandtrade"
        )
    for m in MIGRATIONS:
        if m.version <= current or m.version > goal:
            continue

        def step(m: Migration = m) -> None:
            # Another process may have applied this step while we waited for the write lock.
            if read_schema_version(conn) >= m.version:
                return
            m.run(conn)
            conn.execute("UPDATE schema_version SET version = ? WHERE id = 1", (m.version,))

        _in_transaction(conn, where, f"migrate to schema version {m.version} ({m.description})",
                        step)
    return read_schema_version(conn)


def _in_transaction(conn: sqlite3.Connection, where: str, what: str,
                    body: Callable[[], None]) -> None:
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            body()
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    except sqlite3.Error as e:
        raise StoreError(f"{where}: could not {what}: {e}; the database was left as it was") from e
