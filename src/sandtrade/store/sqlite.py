"""The SQLite store: one file in WAL mode, every mutating call one durable transaction.

It is one file because SQLiteStore is the one implementation of the Store interface: each
method is a few SQL statements run through the connection, lock and transaction helpers defined
here, next to the other statements that touch the same tables (the schema itself is in
:mod:`.migrations`). A second backend would be a second file beside this one.

Durability: ``synchronous=FULL`` makes SQLite fsync the write-ahead log at every commit, so a
transaction that :meth:`SQLiteStore.commit` returned from survives a killed process and a power
cut; a transaction cut short is rolled back when the database is next opened. Writers take the
write lock up front (``BEGIN IMMEDIATE``) and wait up to the busy timeout for another process to
release it.

Checkpoints: SQLite copies the log back into the database (a checkpoint, with its own fsync
of the database file) inside whichever COMMIT first finds the log past a thousand pages, so
one commit in a few dozen would wait for it. A live host commits a bar's fills and its
strategies' orders many times a second, and that wait is the tail of their latency. Here a
thread with a connection of its own checkpoints the log (passively: writers go on meanwhile)
at most every :data:`CHECKPOINT_EVERY` seconds after a write, and commits never do. Should
writes never pause long enough for the log to start over, the thread waits for a pause once
the log passes :data:`WAL_FRAMES_LIMIT` frames, most of it copied already.

Each table holds the typed columns that queries filter and sort on plus the whole model as JSON
in ``data``; reads validate ``data``, so what comes back is exactly what went in.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from sandtrade.errors import StoreError
from sandtrade.models import Account, BrokerChange, Fill, Order, OrderStatus, Position
from sandtrade.signal_model import SignalRecord
from sandtrade.store.base import (
    ApiToken,
    JournalEntry,
    JsonText,
    LogBound,
    RunRecord,
    StoredLogLine,
    StrategyRecord,
    SweepRecord,
    strategy_state_key,
)
from sandtrade.store.migrations import migrate, read_schema_version

__all__ = ["MEMORY", "SQLiteStore"]

log = logging.getLogger(__name__)

MEMORY = ":memory:"
"""The path that opens a private, in-memory database (gone when the store is closed)."""

_M = TypeVar("_M", bound=BaseModel)

#: Seconds between the background checkpoints of a store being written to.
CHECKPOINT_EVERY = 0.5
#: Frames in the log past which the checkpoint thread waits for a pause in the writes to finish
#: (a passive checkpoint copies the log while commits go on, but the log only starts over
#: when a checkpoint has caught up with the last commit, which writes without pause may
#: never let happen).
WAL_FRAMES_LIMIT = 8000
#: The write-ahead log is cut back to this size after a checkpoint (it is reused from its
#: start once checkpointed, so it stays at its largest size otherwise).
WAL_SIZE_LIMIT = 64 << 20


class _Checkpointer:
    """Checkpoints a store's write-ahead log on a thread of its own (see the module's
    docstring). Commits :meth:`nudge` it; :meth:`stop` ends it."""

    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._wake = threading.Event()
        self._stop = threading.Event()
        #: Checkpoints run so far, and how many of them had to wait for a pause in the writes.
        self.checkpoints = 0
        self.restarts = 0
        self._thread = threading.Thread(target=self._run, name="store-checkpoint", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join()

    def _run(self) -> None:
        store = self._store
        try:
            conn = sqlite3.connect(store.path, timeout=store.busy_timeout,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error as e:
            self._give_up(e)
            return
        try:
            while True:
                self._wake.wait()
                # The writes of the next moment join this one: one checkpoint for them all.
                if self._stop.wait(CHECKPOINT_EVERY):
                    return
                self._wake.clear()
                _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if frames > WAL_FRAMES_LIMIT:
                    # Most of the log is copied by now: the writers wait for the rest only.
                    conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                    self.restarts += 1
                self.checkpoints += 1
        except sqlite3.Error as e:
            self._give_up(e)
        finally:
            conn.close()

    def _give_up(self, e: Exception) -> None:
        # Commits checkpoint again as SQLite does by default: slower at times, never unbounded.
        self._store._checkpoint_in_commits(e)  # noqa: SLF001


class SQLiteStore:
    """A :class:`~sandtrade.store.base.Store` kept in one SQLite file, or in memory.

    One connection, guarded by a lock, serves every thread of the process; other processes may
    open the same file, and SQLite serialises their writes. Opening applies any pending schema
    migrations. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 5.0) -> None:
        self._path = os.fspath(path)
        self._where = "in-memory SQLite store" if self._path == MEMORY else self._path
        self._busy_timeout = busy_timeout
        self._lock = threading.RLock()
        try:
            conn = sqlite3.connect(self._path, timeout=busy_timeout, isolation_level=None,
                                   check_same_thread=False)
        except sqlite3.Error as e:
            raise StoreError(
                f"cannot open SQLite database {self._where}: {e} "
                "(does its directory exist, and may this process write there?)"
            ) from e
        try:
            self._configure(conn)
            migrate(conn, where=self._where)
        except BaseException:
            conn.close()
            raise
        self._conn: sqlite3.Connection | None = conn
        self._checkpointer: _Checkpointer | None = None
        self._checkpoints_apart = self._path != MEMORY

    def _configure(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self._busy_timeout * 1000)}")
            (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            if self._path != MEMORY:
                # Checkpoints happen on the store's checkpoint thread, not in commits.
                conn.execute("PRAGMA wal_autocheckpoint = 0")
                conn.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
        except sqlite3.DatabaseError as e:
            raise StoreError(
                f"cannot open SQLite database {self._where}: {e} "
                "(is it a SQLite file, and may this process write to it?)"
            ) from e
        if self._path != MEMORY and str(mode).lower() != "wal":
            raise StoreError(
                f"{self._where}: SQLite would not switch to WAL journal mode (it stayed in "
                f"{mode!r}); the store needs WAL, which does not work on network file systems"
            )

    # ------------------------------------------------------------------ plumbing

    @property
    def busy_timeout(self) -> float:
        """Seconds a writer waits for another connection's write lock."""
        return self._busy_timeout

    @property
    def checkpoints(self) -> int:
        """Checkpoints the store's checkpoint thread has run (0 before the first write)."""
        return 0 if self._checkpointer is None else self._checkpointer.checkpoints

    @property
    def checkpoint_restarts(self) -> int:
        """Of :attr:`checkpoints`, those that waited for a pause in the writes."""
        return 0 if self._checkpointer is None else self._checkpointer.restarts

    def _checkpoint_in_commits(self, error: Exception) -> None:
        """The checkpoint thread failed: commits checkpoint again, as SQLite does by default
        (slower at times, but the log never grows without bound)."""
        log.warning("%s: background checkpoints stopped (%s); commits checkpoint from now on",
                    self._where, error)
        with self._lock:
            self._checkpoints_apart = False
            if self._conn is not None:
                self._conn.execute("PRAGMA wal_autocheckpoint = 1000")

    @property
    def path(self) -> str:
        """The file the store is kept in, or ``":memory:"``."""
        return self._path

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"SQLiteStore({self._path!r}, {state})"

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _connection(self, op: str) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{op}: the store {self._where} is closed")
        return self._conn

    @contextmanager
    def _reading(self, op: str) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, with SQLite errors turned into ``StoreError``."""
        with self._lock:
            conn = self._connection(op)
            try:
                yield conn
            except sqlite3.Error as e:
                raise StoreError(f"{op} failed on {self._where}: {e}") from e

    @contextmanager
    def _writing(self, op: str) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE`` transaction: committed when the block ends, else rolled back."""
        with self._lock:
            conn = self._connection(op)
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                    if self._checkpoints_apart:
                        if self._checkpointer is None:
                            self._checkpointer = _Checkpointer(self)
                        self._checkpointer.nudge()
                except BaseException:
                    # Some errors (disk full, I/O) have already rolled the transaction back.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as e:
                hint = ""
                if "locked" in str(e) or "busy" in str(e):
                    hint = (f" (another connection held the write lock for more than "
                            f"{self._busy_timeout:g} s)")
                raise StoreError(
                    f"{op} failed on {self._where}: {e}{hint}; nothing was written"
                ) from e
            except sqlite3.Error as e:
                raise StoreError(f"{op} failed on {self._where}: {e}; nothing was written") from e

    def _load(self, model: type[_M], data: str, what: str) -> _M:
        try:
            return model.model_validate_json(data)
        except ValidationError as e:
            raise StoreError(
                f"{self._where}: stored {what} no longer validates as {model.__name__}: {e}"
            ) from e

    def _dump(self, model: BaseModel, what: str, op: str) -> str:
        # pydantic writes NaN and infinity as JSON null, which would not validate when read back;
        # refuse them here rather than store a row nobody can load.
        # __dict__ rather than iterating the model: pydantic's __iter__ is a Python-level
        # generator, and this runs for every order, fill and position a live host commits.
        # ``v - v`` is 0.0 for every finite float, nan for nan and both infinities.
        for value in model.__dict__.values():
            if isinstance(value, float) and value - value != 0.0:
                for name, v in model.__dict__.items():
                    if isinstance(v, float) and not math.isfinite(v):
                        raise StoreError(
                            f"{op}: {what} has {name}={v!r}; only finite numbers can be "
                            f"stored in {self._where}"
                        )
        return model.model_dump_json()

    def _page_start(self, conn: sqlite3.Connection, table: Literal["orders", "fills"],
                    after: str, account: str, op: str) -> int:
        row = conn.execute(f"SELECT seq, account FROM {table} WHERE id = ?", (after,)).fetchone()
        if row is None or row[1] != account:
            noun = "an order" if table == "orders" else "a fill"
            raise StoreError(
                f"{op}: after={after!r} is not the id of {noun} of account {account!r} in "
                f"{self._where}; pass the id of the last {table[:-1]} of the previous page"
            )
        return int(row[0])

    @staticmethod
    def _check_limit(limit: int, op: str) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise StoreError(f"{op}: limit must be a whole number of at least 1, got {limit!r}")

    # ------------------------------------------------------------------ Store

    @property
    def schema_version(self) -> int:
        """The schema version the open database is at."""
        with self._reading("schema_version") as conn:
            return read_schema_version(conn)

    def pragma(self, name: str) -> object:
        """The value of ``PRAGMA name`` on the store's own connection (the first column of its
        first row; None when it returns none): ``pragma("synchronous")`` is 2 (FULL),
        ``pragma("integrity_check")`` is ``"ok"`` for a sound file.

        For diagnostics and tests: some settings (``synchronous``, ``foreign_keys``,
        ``busy_timeout``) belong to a connection, so only the store's own can tell them. Nothing
        is assigned, but a pragma that acts when read (``wal_checkpoint``) still acts.
        """
        if not (name.isascii() and name.isidentifier()):
            raise StoreError(f"pragma: {name!r} is not a pragma name (letters, digits and _)")
        with self._reading(f"PRAGMA {name}") as conn:
            row = conn.execute(f"PRAGMA {name}").fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        """Flush and release the database; closing twice is harmless."""
        with self._lock:
            self._checkpoints_apart = False
            checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()  # not under the lock: its last step may take it
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.close()
                except sqlite3.Error as e:
                    raise StoreError(f"closing {self._where} failed: {e}") from e
                finally:
                    self._conn = None

    # accounts

    def create_account(self, account: Account) -> None:
        """Insert a new account; raises ``StoreError`` if the id exists."""
        op = f"create_account({account.id!r})"
        with self._writing(op) as conn:
            exists = conn.execute("SELECT 1 FROM accounts WHERE id = ?", (account.id,)).fetchone()
            if exists:
                raise StoreError(f"{op}: account {account.id!r} already exists in {self._where}")
            self._upsert_account(conn, account, op)

    def get_account(self, account_id: str) -> Account | None:
        """The account, or None."""
        op = f"get_account({account_id!r})"
        with self._reading(op) as conn:
            row = conn.execute("SELECT data FROM accounts WHERE id = ?", (account_id,)).fetchone()
        return None if row is None else self._load(Account, row[0], f"account {account_id!r}")

    def list_accounts(self) -> list[Account]:
        """All accounts, ordered by id."""
        with self._reading("list_accounts") as conn:
            rows = conn.execute("SELECT id, data FROM accounts ORDER BY id").fetchall()
        return [self._load(Account, data, f"account {id_!r}") for id_, data in rows]

    # broker state

    def commit(self, change: BrokerChange) -> None:
        """Apply one broker change (upsert orders, append fills, upsert positions and accounts)
        in a single transaction.

        Accounts are written first, then orders, fills and positions, so a change may create the
        account or order that its other parts refer to. A fill id that is already stored is an
        error, as is any reference to an account or order that does not exist; either way
        nothing of the change is written.
        """
        self.commit_many([change])

    def commit_many(self, changes: Sequence[BrokerChange],
                    state: dict[str, Any] | None = None,
                    signals: Sequence[SignalRecord] = (),
                    new_signals: Sequence[JournalEntry] = ()) -> None:
        """Apply several broker changes, in order, set host ``state`` keys (JSON values,
        or :class:`JsonText` written as it is), journal ``new_signals`` (with their duplicate
        hashes, and their JSON when the journal encoded it: written as it is) and update
        journaled ``signals``, all in one transaction (a group commit).

        A value that cannot be stored (not JSON, or nested too deep to encode) is a
        :class:`StoreError` naming it, and nothing of the group is written."""
        try:
            self._commit_many(changes, state, signals, new_signals)
        except (RecursionError, ValueError) as e:
            why = str(e) or type(e).__name__
            raise StoreError(f"commit_many: a value could not be encoded ({why}); nothing "
                             "was written") from None

    def _commit_many(self, changes: Sequence[BrokerChange], state: dict[str, Any] | None,
                     signals: Sequence[SignalRecord],
                     new_signals: Sequence[JournalEntry]) -> None:
        changes = [c for c in changes if c]
        if not changes and not state and not signals and not new_signals:
            return
        # Within one transaction only the last version of an account, order or position
        # matters: a bar that fills a thousand orders of one account writes its row once.
        accounts: dict[str, Account] = {}
        orders: dict[str, Order] = {}
        positions: dict[tuple[str, str], Position] = {}
        fills: list[Fill] = []
        if any(change.state for change in changes):
            state = dict(state or {})
            for change in changes:
                state.update(change.state)
        for change in changes:
            for account in change.accounts:
                accounts[account.id] = account
            for order in change.orders:
                orders[order.id] = order
            fills.extend(change.fills)
            for position in change.positions:
                positions[(position.account, position.symbol)] = position
        op = (f"commit_many({len(changes)} changes: {len(orders)} orders, {len(fills)} fills, "
              f"{len(positions)} positions, {len(accounts)} accounts)")
        with self._writing(op) as conn:
            for key, value in (state or {}).items():
                conn.execute("INSERT INTO host_state (key, value) VALUES (?, ?) ON CONFLICT "
                             "(key) DO UPDATE SET value = excluded.value",
                             (key, value if isinstance(value, JsonText)
                              else self._json(value, key, op)))
            for account in accounts.values():
                self._upsert_account(conn, account, op)
            for order in orders.values():
                self._upsert_order(conn, order, op)
            for fill in fills:
                self._insert_fill(conn, fill, op)
            for position in positions.values():
                self._upsert_position(conn, position, op)
            if new_signals:
                self._insert_signals(conn, [e.record for e in new_signals],
                                     [e.dedup_hash for e in new_signals], op,
                                     [e.data for e in new_signals])
            for record in signals:
                self._update_signal(conn, record, op)

    def find_client_order(self, account: str, client_order_id: str) -> Order | None:
        """The account's order submitted with ``client_order_id``, or None."""
        with self._reading(f"find_client_order({account!r}, {client_order_id!r})") as conn:
            row = conn.execute(
                "SELECT id, data FROM orders WHERE account = ? AND client_order_id = ? "
                "ORDER BY seq LIMIT 1", (account, client_order_id)).fetchone()
        return None if row is None else self._load(Order, row[1], f"order {row[0]!r}")

    def _upsert_account(self, conn: sqlite3.Connection, account: Account, op: str) -> None:
        data = self._dump(account, f"account {account.id!r}", op)
        conn.execute(
            "INSERT INTO accounts (id, currency, cash, created_at, data) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET currency = excluded.currency, cash = excluded.cash, "
            "created_at = excluded.created_at, data = excluded.data",
            (account.id, account.currency, account.cash, _iso(account.created_at), data),
        )

    def _upsert_order(self, conn: sqlite3.Connection, order: Order, op: str) -> None:
        what = f"order {order.id!r}"
        data = self._dump(order, what, op)
        try:
            cur = conn.execute(
                "INSERT INTO orders (id, account, symbol, side, type, status, is_open,"
                " client_order_id, created_at, updated_at, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET side = excluded.side, type = excluded.type,"
                " status = excluded.status, is_open = excluded.is_open,"
                " client_order_id = excluded.client_order_id, created_at = excluded.created_at,"
                " updated_at = excluded.updated_at, data = excluded.data"
                " WHERE orders.account = excluded.account AND orders.symbol = excluded.symbol",
                (order.id, order.account, order.symbol, order.side.value, order.type.value,
                 order.status.value, int(order.is_open), order.client_order_id,
                 _iso(order.created_at), _iso(order.updated_at), data),
            )
        except sqlite3.IntegrityError as e:
            raise StoreError(
                f"{op}: {what} belongs to account {order.account!r}, which is not in "
                f"{self._where}; create the account first. Nothing of this change was written"
            ) from e
        if cur.rowcount == 0:
            account, symbol = conn.execute(
                "SELECT account, symbol FROM orders WHERE id = ?", (order.id,)
            ).fetchone()
            raise StoreError(
                f"{op}: {what} is stored for account {account!r} and symbol {symbol!r}; an "
                f"update may not move it to account {order.account!r} and symbol "
                f"{order.symbol!r}. Nothing of this change was written"
            )

    def _insert_fill(self, conn: sqlite3.Connection, fill: Fill, op: str) -> None:
        what = f"fill {fill.id!r} of order {fill.order_id!r}"
        data = self._dump(fill, what, op)
        try:
            conn.execute(
                "INSERT INTO fills (id, order_id, account, symbol, side, qty, price, commission,"
                " time, price_source, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (fill.id, fill.order_id, fill.account, fill.symbol, fill.side.value, fill.qty,
                 fill.price, fill.commission, fill.time.isoformat(), fill.price_source, data),
            )
        except sqlite3.IntegrityError as e:
            if conn.execute("SELECT 1 FROM fills WHERE id = ?", (fill.id,)).fetchone():
                problem = "is already stored; a fill is recorded once"
            elif not conn.execute("SELECT 1 FROM orders WHERE id = ?",
                                  (fill.order_id,)).fetchone():
                problem = "refers to an order that is not stored; commit the order with it"
            else:
                problem = f"belongs to account {fill.account!r}, which is not stored"
            raise StoreError(
                f"{op}: {what} {problem} ({self._where}). Nothing of this change was written"
            ) from e

    def _upsert_position(self, conn: sqlite3.Connection, position: Position, op: str) -> None:
        # Flat positions are kept: their realized P&L is still worth reading.
        what = f"position {position.account!r}/{position.symbol!r}"
        data = self._dump(position, what, op)
        try:
            conn.execute(
                "INSERT INTO positions (account, symbol, qty, data) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (account, symbol) DO UPDATE SET qty = excluded.qty,"
                " data = excluded.data",
                (position.account, position.symbol, position.qty, data),
            )
        except sqlite3.IntegrityError as e:
            raise StoreError(
                f"{op}: {what} belongs to account {position.account!r}, which is not in "
                f"{self._where}; create the account first. Nothing of this change was written"
            ) from e

    def get_order(self, order_id: str) -> Order | None:
        """The order, or None."""
        with self._reading(f"get_order({order_id!r})") as conn:
            row = conn.execute("SELECT data FROM orders WHERE id = ?", (order_id,)).fetchone()
        return None if row is None else self._load(Order, row[0], f"order {order_id!r}")

    def list_orders(self, account: str, *, status: OrderStatus | None = None,
                    open_only: bool = False, limit: int = 100,
                    after: str | None = None) -> list[Order]:
        """Orders of an account in creation order, paginated by ``after`` (an order id)."""
        op = f"list_orders({account!r})"
        self._check_limit(limit, op)
        sql = "SELECT id, data FROM orders WHERE account = ?"
        args: list[Any] = [account]
        if status is not None:
            sql += " AND status = ?"
            args.append(OrderStatus(status).value)
        if open_only:
            sql += " AND is_open = 1"
        with self._reading(op) as conn:
            if after is not None:
                sql += " AND seq > ?"
                args.append(self._page_start(conn, "orders", after, account, op))
            rows = conn.execute(sql + " ORDER BY seq LIMIT ?", (*args, limit)).fetchall()
        return [self._load(Order, data, f"order {id_!r}") for id_, data in rows]

    def list_fills(self, account: str, *, order_id: str | None = None, limit: int = 1000,
                   after: str | None = None) -> list[Fill]:
        """Fills of an account in execution order, paginated by ``after`` (a fill id)."""
        op = f"list_fills({account!r})"
        self._check_limit(limit, op)
        sql = "SELECT id, data FROM fills WHERE account = ?"
        args: list[Any] = [account]
        if order_id is not None:
            sql += " AND order_id = ?"
            args.append(order_id)
        with self._reading(op) as conn:
            if after is not None:
                sql += " AND seq > ?"
                args.append(self._page_start(conn, "fills", after, account, op))
            rows = conn.execute(sql + " ORDER BY seq LIMIT ?", (*args, limit)).fetchall()
        return [self._load(Fill, data, f"fill {id_!r}") for id_, data in rows]

    def list_positions(self, account: str) -> list[Position]:
        """Non-flat positions of an account, ordered by symbol."""
        with self._reading(f"list_positions({account!r})") as conn:
            rows = conn.execute(
                "SELECT symbol, data FROM positions WHERE account = ? AND qty != 0"
                " ORDER BY symbol", (account,)
            ).fetchall()
        return [self._load(Position, data, f"position {account!r}/{sym!r}") for sym, data in rows]

    def get_state(self, key: str) -> Any:
        """A host state value (as committed by :meth:`commit_many`), or None."""
        with self._reading(f"get_state({key!r})") as conn:
            row = conn.execute("SELECT value FROM host_state WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except (RecursionError, ValueError) as e:
            raise StoreError(f"{self._where}: the stored host state {key!r} cannot be read "
                             f"back ({e or 'nested too deep'})") from None

    def get_state_text(self, key: str) -> str | None:
        """A host state value as its stored JSON text, or None."""
        with self._reading(f"get_state_text({key!r})") as conn:
            row = conn.execute("SELECT value FROM host_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # account settings

    def get_account_settings(self, account: str) -> dict[str, Any] | None:
        """``account``'s own settings (a JSON object), or None when it has none."""
        with self._reading(f"get_account_settings({account!r})") as conn:
            row = conn.execute("SELECT data FROM account_settings WHERE account = ?",
                               (account,)).fetchone()
        return None if row is None else dict(json.loads(row[0]))

    def list_account_settings(self) -> dict[str, dict[str, Any]]:
        """Every account's own settings, by account."""
        with self._reading("list_account_settings") as conn:
            rows = conn.execute("SELECT account, data FROM account_settings ORDER BY account"
                                ).fetchall()
        return {account: dict(json.loads(data)) for account, data in rows}

    def save_account_settings(self, account: str, data: dict[str, Any] | None) -> None:
        """Replace ``account``'s own settings (None removes them)."""
        op = f"save_account_settings({account!r})"
        with self._writing(op) as conn:
            if data is None:
                conn.execute("DELETE FROM account_settings WHERE account = ?", (account,))
            else:
                conn.execute("INSERT INTO account_settings (account, data) VALUES (?, ?) ON "
                             "CONFLICT (account) DO UPDATE SET data = excluded.data",
                             (account, self._json(data, "settings", op)))

    # API tokens

    def save_token(self, token: ApiToken) -> None:
        """Store a new token (its secret's hash only); raises ``StoreError`` if the id exists."""
        op = f"save_token({token.id!r})"
        with self._writing(op) as conn:
            if conn.execute("SELECT 1 FROM tokens WHERE id = ?", (token.id,)).fetchone():
                raise StoreError(f"{op}: token {token.id!r} already exists in {self._where}")
            conn.execute(
                "INSERT INTO tokens (id, account, scopes, secret_hash, created_at, revoked_at,"
                " label) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (token.id, token.account, ",".join(token.scopes), token.secret_hash,
                 _iso(token.created_at), _iso(token.revoked_at), token.label))

    def get_token(self, token_id: str) -> ApiToken | None:
        """The token with this id (revoked or not), or None."""
        with self._reading(f"get_token({token_id!r})") as conn:
            row = conn.execute(
                "SELECT id, account, scopes, secret_hash, created_at, revoked_at, label "
                "FROM tokens WHERE id = ?", (token_id,)).fetchone()
        return None if row is None else _token_from_row(row)

    def list_tokens(self) -> list[ApiToken]:
        """Every token, oldest first."""
        with self._reading("list_tokens") as conn:
            rows = conn.execute(
                "SELECT id, account, scopes, secret_hash, created_at, revoked_at, label "
                "FROM tokens ORDER BY seq").fetchall()
        return [_token_from_row(r) for r in rows]

    def revoke_token(self, token_id: str, when: datetime) -> bool:
        """Mark a token revoked; False when there is no such token or it was revoked already."""
        with self._writing(f"revoke_token({token_id!r})") as conn:
            cur = conn.execute("UPDATE tokens SET revoked_at = ? WHERE id = ? AND "
                               "revoked_at IS NULL", (_iso(when), token_id))
            return cur.rowcount == 1

    # strategies

    def save_strategy(self, strategy: StrategyRecord) -> None:
        """Insert the strategy, or replace the one of this account and name (its source,
        symbols, parameters; its id is kept)."""
        op = f"save_strategy({strategy.account!r}, {strategy.name!r})"
        row = (strategy.id, strategy.name, strategy.account, strategy.source,
               strategy.source_sha256, self._json(strategy.params, "params", op),
               self._json(list(strategy.symbols), "symbols", op), strategy.desired,
               _iso(strategy.uploaded_at))
        with self._writing(op) as conn:
            conn.execute(
                "INSERT INTO strategies (id, name, account, source, source_sha256, params,"
                " symbols, desired, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (account, name) DO UPDATE SET source = excluded.source,"
                " source_sha256 = excluded.source_sha256, params = excluded.params,"
                " symbols = excluded.symbols, desired = excluded.desired,"
                " uploaded_at = excluded.uploaded_at", row)

    def get_strategy(self, account: str, name: str) -> StrategyRecord | None:
        """The account's strategy of this name, or None (no other account's row is read)."""
        with self._reading(f"get_strategy({account!r}, {name!r})") as conn:
            row = conn.execute(f"SELECT {_STRATEGY_COLUMNS} FROM strategies"
                               " WHERE account = ? AND name = ?", (account, name)).fetchone()
        return None if row is None else _strategy_from_row(row)

    def find_strategies(self, name: str) -> list[StrategyRecord]:
        """The strategies of this name in every account, by account (for the operator)."""
        with self._reading(f"find_strategies({name!r})") as conn:
            rows = conn.execute(f"SELECT {_STRATEGY_COLUMNS} FROM strategies WHERE name = ?"
                                " ORDER BY account", (name,)).fetchall()
        return [_strategy_from_row(r) for r in rows]

    def list_strategies(self, account: str | None = None) -> list[StrategyRecord]:
        """The account's strategies by name, or every account's by account and name."""
        with self._reading(f"list_strategies({account!r})") as conn:
            if account is None:
                rows = conn.execute(f"SELECT {_STRATEGY_COLUMNS} FROM strategies"
                                    " ORDER BY account, name").fetchall()
            else:
                rows = conn.execute(f"SELECT {_STRATEGY_COLUMNS} FROM strategies"
                                    " WHERE account = ? ORDER BY name", (account,)).fetchall()
        return [_strategy_from_row(r) for r in rows]

    def set_strategy_desired(self, strategy_id: str, desired: str) -> bool:
        """Record whether a strategy should run; False when there is no such strategy."""
        with self._writing(f"set_strategy_desired({strategy_id!r}, {desired!r})") as conn:
            cur = conn.execute("UPDATE strategies SET desired = ? WHERE id = ?",
                               (desired, strategy_id))
            return cur.rowcount == 1

    def delete_strategy(self, strategy_id: str) -> bool:
        """Remove a strategy and its host state (its ``ctx.state`` and one set aside), in
        one transaction; False when there is no such strategy."""
        key = strategy_state_key(strategy_id)
        with self._writing(f"delete_strategy({strategy_id!r})") as conn:
            cur = conn.execute("DELETE FROM strategies WHERE id = ?", (strategy_id,))
            conn.execute("DELETE FROM host_state WHERE key IN (?, ?)", (key, f"{key}.bad"))
            conn.execute("DELETE FROM strategy_logs WHERE strategy_id = ?", (strategy_id,))
            return cur.rowcount == 1

    # equity over time

    def append_equity_points(self, points: Sequence[tuple[str, float, float]]) -> None:
        """Store ``(account, unix time, equity)`` points (one already there at that time is
        replaced)."""
        if not points:
            return
        with self._writing(f"append_equity_points({len(points)} points)") as conn:
            conn.executemany("INSERT OR REPLACE INTO equity_points (account, t, equity)"
                             " VALUES (?, ?, ?)", points)

    def equity_points(self, account: str, *, until: float | None = None
                      ) -> list[tuple[float, float]]:
        """``(unix time, equity)`` of ``account``, oldest first (before ``until`` only)."""
        with self._reading(f"equity_points({account!r})") as conn:
            rows = conn.execute("SELECT t, equity FROM equity_points WHERE account = ?"
                                " AND t < ? ORDER BY t",
                                (account, math.inf if until is None else until)).fetchall()
        return [(float(t), float(e)) for t, e in rows]

    def latest_equity_point(self, account: str) -> tuple[float, float] | None:
        """``account``'s newest ``(unix time, equity)``, or None."""
        with self._reading(f"latest_equity_point({account!r})") as conn:
            row = conn.execute("SELECT t, equity FROM equity_points WHERE account = ?"
                               " ORDER BY t DESC LIMIT 1", (account,)).fetchone()
        return None if row is None else (float(row[0]), float(row[1]))

    def thin_equity_points(self, before: float, every: float) -> int:
        """Keep, of the points older than ``before``, the last of each ``every`` seconds of
        each account; returns how many went."""
        with self._writing("thin_equity_points") as conn:
            cur = conn.execute(
                "DELETE FROM equity_points WHERE t < ? AND (account, t) NOT IN"
                " (SELECT account, MAX(t) FROM equity_points WHERE t < ?"
                "  GROUP BY account, CAST(t / ? AS INTEGER))", (before, before, every))
            return cur.rowcount

    # strategy logs

    def append_strategy_logs(self, lines: Sequence[StoredLogLine],
                             trim: Sequence[LogBound] = ()) -> dict[tuple[str, str],
                                                                    tuple[int, int]]:
        """Add log lines (their ``seq`` given by the caller) and trim each ring named in
        ``trim`` to its bound, oldest first, in one transaction; (lines, bytes) of each
        trimmed ring after."""
        if not lines and not trim:
            return {}
        op = f"append_strategy_logs({len(lines)} lines)"
        rows = [(x.seq, x.strategy_id, x.ring, x.origin, _sort_key(x.time),
                 len(x.line.encode("utf-8", "surrogatepass")), x.line) for x in lines]
        sizes: dict[tuple[str, str], tuple[int, int]] = {}
        with self._writing(op) as conn:
            conn.executemany("INSERT INTO strategy_logs (seq, strategy_id, ring, origin, ts,"
                             " bytes, line) VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            for bound in trim:
                # The newest line past either bound, counted from the newest: it and every
                # older line go.
                row = conn.execute(
                    "SELECT seq FROM (SELECT seq, ROW_NUMBER() OVER w AS n,"
                    " SUM(bytes) OVER w AS total FROM strategy_logs"
                    " WHERE strategy_id = ? AND ring = ?"
                    " WINDOW w AS (ORDER BY seq DESC ROWS UNBOUNDED PRECEDING))"
                    " WHERE n > ? OR total > ? ORDER BY seq DESC LIMIT 1",
                    (bound.strategy_id, bound.ring, bound.lines, bound.bytes)).fetchone()
                if row is not None:
                    conn.execute("DELETE FROM strategy_logs WHERE strategy_id = ? AND ring = ?"
                                 " AND seq <= ?", (bound.strategy_id, bound.ring, row[0]))
                count, total = conn.execute(
                    "SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM strategy_logs"
                    " WHERE strategy_id = ? AND ring = ?",
                    (bound.strategy_id, bound.ring)).fetchone()
                sizes[(bound.strategy_id, bound.ring)] = (int(count), int(total))
        return sizes

    def strategy_log_size(self, strategy_id: str) -> dict[str, tuple[int, int]]:
        """(lines, bytes) of each ring of a strategy's stored log."""
        with self._reading(f"strategy_log_size({strategy_id!r})") as conn:
            rows = conn.execute("SELECT ring, COUNT(*), SUM(bytes) FROM strategy_logs"
                                " WHERE strategy_id = ? GROUP BY ring",
                                (strategy_id,)).fetchall()
        return {ring: (int(n), int(b)) for ring, n, b in rows}

    def list_strategy_logs(self, strategy_id: str, *, tail: int = 0) -> list[StoredLogLine]:
        """A strategy's stored log in order (the last ``tail`` lines; all when 0)."""
        sql = ("SELECT seq, ring, origin, ts, line FROM strategy_logs WHERE strategy_id = ?"
               " ORDER BY seq DESC")
        args: tuple[Any, ...] = (strategy_id,)
        if tail:
            sql += " LIMIT ?"
            args = (strategy_id, tail)
        with self._reading(f"list_strategy_logs({strategy_id!r})") as conn:
            rows = conn.execute(sql, args).fetchall()
        return [StoredLogLine(seq, strategy_id, ring, origin, datetime.fromtimestamp(ts, UTC),
                              line) for seq, ring, origin, ts, line in reversed(rows)]

    def activity_counts(self) -> dict[str, list[tuple[Any, ...]]]:
        """What ``/metrics`` counts, read in one go: ``signals`` as (source, status, count),
        ``orders`` as (status, count), ``fills`` as (count,)."""
        with self._reading("activity_counts") as conn:
            return {
                "signals": conn.execute("SELECT source, status, COUNT(*) FROM signals"
                                        " GROUP BY source, status").fetchall(),
                "orders": conn.execute("SELECT status, COUNT(*) FROM orders GROUP BY status"
                                       ).fetchall(),
                "fills": conn.execute("SELECT COUNT(*) FROM fills").fetchall(),
            }

    def last_log_seq(self) -> int:
        """The highest log line number stored (0 when none)."""
        with self._reading("last_log_seq") as conn:
            (seq,) = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM strategy_logs").fetchone()
        return int(seq)

    # signals

    def append_signals(self, records: Sequence[SignalRecord],
                       dedup_hashes: Sequence[str | None] | None = None) -> None:
        """Journal new signals, in order, in one transaction."""
        if not records:
            return
        hashes = list(dedup_hashes) if dedup_hashes is not None else [None] * len(records)
        op = f"append_signals({len(records)} signals)"
        with self._writing(op) as conn:
            self._insert_signals(conn, records, hashes, op)

    def _insert_signals(self, conn: sqlite3.Connection, records: Sequence[SignalRecord],
                        hashes: Sequence[str | None], op: str,
                        encoded: Sequence[JsonText | None] | None = None) -> None:
        rows = [(r.id, r.account, r.source, r.status.value, _sort_key(r.received_at),
                 r.idempotency_key, h, self._dump(r, "signal", op) if data is None else data)
                for r, h, data in zip(records, hashes, encoded or [None] * len(records),
                                      strict=True)]
        conn.executemany(
            "INSERT INTO signals (id, account, source, status, received_ts, "
            "idempotency_key, dedup_hash, data) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)

    def update_signals(self, records: Sequence[SignalRecord]) -> None:
        """Store the new status (and history) of journaled signals, in one transaction."""
        if not records:
            return
        op = f"update_signals({len(records)} signals)"
        with self._writing(op) as conn:
            for record in records:
                self._update_signal(conn, record, op)

    def _update_signal(self, conn: sqlite3.Connection, record: SignalRecord, op: str) -> None:
        cur = conn.execute("UPDATE signals SET status = ?, account = ?, data = ? WHERE id = ?",
                           (record.status.value, record.account,
                            self._dump(record, "signal", op), record.id))
        if cur.rowcount != 1:
            raise StoreError(f"{op}: signal {record.id!r} is not in the journal")

    def get_signal(self, signal_id: str) -> SignalRecord | None:
        """The journaled signal, or None."""
        with self._reading(f"get_signal({signal_id!r})") as conn:
            row = conn.execute("SELECT data FROM signals WHERE id = ?", (signal_id,)).fetchone()
        return None if row is None else self._load(SignalRecord, row[0], f"signal {signal_id}")

    def list_signals(self, *, account: str | None = None, since: datetime | None = None,
                     until: datetime | None = None, before_seq: int | None = None,
                     limit: int = 100, oldest_first: bool = False
                     ) -> list[tuple[int, SignalRecord]]:
        """Journaled signals with their sequence numbers, newest first (or oldest first),
        of one account or all, received in ``[since, until)``, before ``before_seq``."""
        self._check_limit(limit, "list_signals")
        where: list[str] = []
        args: list[Any] = []
        if account is not None:
            where.append("account = ?")
            args.append(account)
        if since is not None:
            where.append("received_ts >= ?")
            args.append(_sort_key(since))
        if until is not None:
            where.append("received_ts < ?")
            args.append(_sort_key(until))
        if before_seq is not None:
            where.append("seq < ?" if not oldest_first else "seq > ?")
            args.append(before_seq)
        sql = "SELECT seq, data FROM signals"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += f" ORDER BY seq {'ASC' if oldest_first else 'DESC'} LIMIT ?"
        with self._reading("list_signals") as conn:
            rows = conn.execute(sql, (*args, limit)).fetchall()
        return [(seq, self._load(SignalRecord, data, f"signal #{seq}")) for seq, data in rows]

    def unfinished_signals(self) -> list[SignalRecord]:
        """Signals accepted but not yet executed, failed or dropped, oldest first."""
        with self._reading("unfinished_signals") as conn:
            rows = conn.execute(
                "SELECT seq, data FROM signals WHERE status IN ('received', 'validated', "
                "'routed') ORDER BY seq").fetchall()
        return [self._load(SignalRecord, data, f"signal #{seq}") for seq, data in rows]

    def recent_signal_keys(self, since: datetime
                           ) -> list[tuple[str, str | None, str | None, str, float]]:
        """(account, idempotency key, dedup hash, id, received_ts) of signals received since
        ``since`` that were not duplicates themselves, oldest first: the duplicate index."""
        with self._reading("recent_signal_keys") as conn:
            rows = conn.execute(
                "SELECT account, idempotency_key, dedup_hash, id, received_ts FROM signals "
                "WHERE received_ts >= ? AND (idempotency_key IS NOT NULL OR dedup_hash IS NOT "
                "NULL) ORDER BY seq", (_sort_key(since),)).fetchall()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    # runs

    def save_run(self, run: RunRecord) -> None:
        """Insert or replace a run record.

        ``params``, ``stats`` and ``trades`` are stored as JSON and must hold only JSON values
        (dicts with string keys, lists, strings, numbers, booleans, None), so that they read
        back equal; anything else raises ``StoreError`` naming where it is.
        """
        op = f"save_run({run.id!r})"
        row = (
            run.id, run.kind, run.strategy, run.status, run.started_at.isoformat(),
            _sort_key(run.started_at), _iso(run.finished_at),
            self._json(run.params, "params", op), self._json(run.stats, "stats", op),
            self._json(run.trades, "trades", op), run.error,
        )
        with self._writing(op) as conn:
            conn.execute(
                "INSERT INTO runs (id, kind, strategy, status, started_at, started_ts,"
                " finished_at, params, stats, trades, error)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET kind = excluded.kind,"
                " strategy = excluded.strategy, status = excluded.status,"
                " started_at = excluded.started_at, started_ts = excluded.started_ts,"
                " finished_at = excluded.finished_at, params = excluded.params,"
                " stats = excluded.stats, trades = excluded.trades, error = excluded.error",
                row,
            )

    def _json(self, value: object, name: str, op: str) -> str:
        problem = _json_problem(value, name)
        if problem:
            raise StoreError(f"{op}: {problem}; store JSON values only (dicts with string keys, "
                             "lists, strings, numbers, booleans, None)")
        return json.dumps(value, separators=(",", ":"))

    def get_run(self, run_id: str) -> RunRecord | None:
        """The run, or None."""
        with self._reading(f"get_run({run_id!r})") as conn:
            row = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?",
                               (run_id,)).fetchone()
        return None if row is None else _run_from_row(row)

    def list_runs(self, *, limit: int = 100) -> list[RunRecord]:
        """Most recent runs first (by ``started_at``; runs started together, last saved first)."""
        self._check_limit(limit, "list_runs")
        with self._reading("list_runs") as conn:
            rows = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY started_ts DESC, seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [_run_from_row(row) for row in rows]


    # sweeps

    def save_sweep(self, sweep: SweepRecord) -> None:
        """Insert a sweep, or update its status (its id, strategy and spec never change)."""
        op = f"save_sweep({sweep.id!r})"
        spec = self._json(sweep.spec, "spec", op)
        with self._writing(op) as conn:
            conn.execute(
                "INSERT INTO sweeps (id, strategy, created_at, spec, status)"
                " VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET status = excluded.status",
                (sweep.id, sweep.strategy, sweep.created_at.isoformat(), spec, sweep.status))

    def get_sweep(self, sweep_id: str) -> SweepRecord | None:
        """The sweep, or None."""
        with self._reading(f"get_sweep({sweep_id!r})") as conn:
            row = conn.execute("SELECT id, strategy, created_at, spec, status FROM sweeps "
                               "WHERE id = ?", (sweep_id,)).fetchone()
        if row is None:
            return None
        return SweepRecord(id=row[0], strategy=row[1],
                           created_at=datetime.fromisoformat(row[2]), spec=json.loads(row[3]),
                           status=row[4])

    def save_sweep_runs(self, sweep_id: str, runs: Sequence[RunRecord]) -> None:
        """Store finished runs of a sweep, all in one transaction (their ids are the sweep's
        id, ``/``, and the run's own)."""
        op = f"save_sweep_runs({sweep_id!r})"
        rows = [(run.id, run.kind, run.strategy, run.status, run.started_at.isoformat(),
                 _sort_key(run.started_at), _iso(run.finished_at),
                 self._json(run.params, "params", op), self._json(run.stats, "stats", op),
                 self._json(run.trades, "trades", op), run.error, sweep_id) for run in runs]
        if not rows:
            return
        with self._writing(op) as conn:
            conn.executemany(
                "INSERT INTO runs (id, kind, strategy, status, started_at, started_ts,"
                " finished_at, params, stats, trades, error, sweep_id)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
                " finished_at = excluded.finished_at, params = excluded.params,"
                " stats = excluded.stats, error = excluded.error", rows)

    def list_sweep_runs(self, sweep_id: str) -> list[RunRecord]:
        """The stored runs of a sweep, in the order they were stored."""
        with self._reading(f"list_sweep_runs({sweep_id!r})") as conn:
            rows = conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE sweep_id = ? "
                                "ORDER BY seq", (sweep_id,)).fetchall()
        return [_run_from_row(row) for row in rows]


_STRATEGY_COLUMNS = ("id, name, account, source, source_sha256, params, symbols, desired, "
                     "uploaded_at")


def _strategy_from_row(row: tuple[Any, ...]) -> StrategyRecord:
    id_, name, account, source, sha, params, symbols, desired, uploaded = row
    return StrategyRecord(id=id_, name=name, account=account, source=source, source_sha256=sha,
                          params=json.loads(params), symbols=tuple(json.loads(symbols)),
                          desired=desired, uploaded_at=datetime.fromisoformat(uploaded))


_RUN_COLUMNS = "id, kind, strategy, status, started_at, finished_at, params, stats, trades, error"


def _token_from_row(row: tuple[Any, ...]) -> ApiToken:
    return ApiToken(id=row[0], account=row[1], scopes=tuple(row[2].split(",")),
                    secret_hash=row[3], created_at=datetime.fromisoformat(row[4]),
                    revoked_at=None if row[5] is None else datetime.fromisoformat(row[5]),
                    label=row[6])


def _run_from_row(row: tuple[Any, ...]) -> RunRecord:
    id_, kind, strategy, status, started, finished, params, stats, trades, error = row
    return RunRecord(
        id=id_, kind=kind, strategy=strategy, status=status,
        started_at=datetime.fromisoformat(started),
        finished_at=None if finished is None else datetime.fromisoformat(finished),
        params=json.loads(params), stats=json.loads(stats), trades=json.loads(trades),
        error=error,
    )


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _sort_key(value: datetime) -> float:
    """Seconds since the epoch; a naive time is taken as UTC so naive and aware runs sort."""
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


#: How deep a stored JSON value may nest (the JSON encoder itself gives up near 1,000).
MAX_JSON_DEPTH = 200
#: Levels of a value's path named in an error; deeper spots are elided with "…".
_SPOT_LEVELS = 8


def _json_problem(value: object, where: str) -> str | None:
    """Why ``value`` would not read back equal from JSON, naming the spot; None when it would.

    The walk keeps its own stack and a depth bound: a value nested thousands deep is reported,
    never a ``RecursionError`` in the middle of a group commit."""
    stack: list[tuple[object, int, str]] = [(value, 0, where)]
    while stack:
        item, depth, spot = stack.pop()
        if item is None or isinstance(item, (str, bool, int, float)):
            continue
        if isinstance(item, (dict, list)) and depth >= MAX_JSON_DEPTH:
            return f"{spot} is nested deeper than {MAX_JSON_DEPTH}"
        named = depth < _SPOT_LEVELS
        if isinstance(item, dict):
            for key, sub in item.items():
                if not isinstance(key, str):
                    return f"{spot} has the key {key!r:.100}, which is not a string"
                stack.append((sub, depth + 1, f"{spot}[{key!r:.100}]" if named
                              else spot.removesuffix("…") + "…"))
        elif isinstance(item, list):
            sub_spot = spot.removesuffix("…") + "…"
            stack.extend((sub, depth + 1, f"{spot}[{i}]" if named else sub_spot)
                         for i, sub in enumerate(item))
        else:
            return f"{spot} is {item!r:.200}, a {type(item).__name__}"
    return None
