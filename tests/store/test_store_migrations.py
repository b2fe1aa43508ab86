"""Schema versions: a new database gets every migration, an old one is upgraded, a newer refused."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandtrade.errors import StoreError
from sandtrade.models import Account, Order, OrderSide, OrderStatus
from sandtrade.store import SQLiteStore
from sandtrade.store.base import new_strategy_id, strategy_state_key
from sandtrade.store.migrations import LATEST_VERSION, MIGRATIONS, migrate, read_schema_version

T0 = datetime(2026, 3, 2, 14, 30, tzinfo=UTC)


def test_migration_versions_run_one_two_three_without_gaps() -> None:
    assert [m.version for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert LATEST_VERSION == MIGRATIONS[-1].version >= 2
    assert all(m.description for m in MIGRATIONS)


def test_a_new_database_is_created_at_the_latest_version(db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        assert store.schema_version == LATEST_VERSION
    conn = sqlite3.connect(db_path)
    try:
        tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master "
                                                   "WHERE type = 'table'")}
        assert {"accounts", "orders", "fills", "positions", "runs", "schema_version"} <= tables
    finally:
        conn.close()


def test_reopening_a_current_database_changes_nothing(db_path: Path) -> None:
    account = Account(id="acct", cash=1.0, initial_cash=1.0)
    with SQLiteStore(db_path) as store:
        store.create_account(account)
    with SQLiteStore(db_path) as store:
        assert store.schema_version == LATEST_VERSION
        assert store.list_accounts() == [account]


def _v1_order(order_id: str, status: OrderStatus) -> Order:
    return Order(id=order_id, account="acct", symbol="AAPL", side=OrderSide.BUY, qty=1.0,
                 status=status, created_at=T0)


def test_a_v1_database_is_upgraded_to_the_latest_when_opened(db_path: Path) -> None:
    # Build the database as sandtrade at schema version 1 wrote it: v1 tables, no is_open.
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        assert migrate(conn, where=str(db_path), target=1) == 1
        columns = {row[1] for row in conn.execute("PRAGMA table_info(orders)")}
        assert "is_open" not in columns
        account = Account(id="acct", cash=1.0, initial_cash=1.0)
        conn.execute("INSERT INTO accounts (id, currency, cash, data) VALUES (?, ?, ?, ?)",
                     (account.id, account.currency, account.cash, account.model_dump_json()))
        orders = [_v1_order("o-open", OrderStatus.ACCEPTED),
                  _v1_order("o-filled", OrderStatus.FILLED),
                  _v1_order("o-partial", OrderStatus.PARTIALLY_FILLED),
                  _v1_order("o-canceled", OrderStatus.CANCELED)]
        for o in orders:
            conn.execute(
                "INSERT INTO orders (id, account, symbol, side, type, status, created_at, data)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (o.id, o.account, o.symbol, o.side.value, o.type.value, o.status.value,
                 o.created_at.isoformat() if o.created_at else None, o.model_dump_json()),
            )
    finally:
        conn.close()

    with SQLiteStore(db_path) as store:
        assert store.schema_version == LATEST_VERSION
        assert store.list_orders("acct") == orders
        # v2's backfill: only the orders still working are open.
        assert [o.id for o in store.list_orders("acct", open_only=True)] == ["o-open",
                                                                              "o-partial"]


def test_a_database_newer_than_this_sandtrade_is_refused(db_path: Path) -> None:
    SQLiteStore(db_path).close()
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        conn.execute("UPDATE schema_version SET version = ?", (LATEST_VERSION + 1,))
    finally:
        conn.close()
    expected = (f"database at schema version {LATEST_VERSION + 1} but this sandtrade knows up "
                f"to {LATEST_VERSION}; upgrade sandtrade")
    with pytest.raises(StoreError, match=rf"sandtrade\.db: {expected}$"):
        SQLiteStore(db_path)


def test_a_sqlite_database_of_another_program_is_refused(db_path: Path) -> None:
    conn = sqlite3.connect(db_path)
    try:
        conn.execute("CREATE TABLE customers (id INTEGER)")
        conn.commit()
    finally:
        conn.close()
    with pytest.raises(StoreError, match=r"sandtrade\.db: not a sandtrade database \(it has "
                                         r"tables customers but no schema_version table\)"):
        SQLiteStore(db_path)


def test_a_failed_migration_leaves_the_previous_version(db_path: Path) -> None:
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        migrate(conn, where="test.db", target=1)
        # Sabotage v2: the index it creates already exists under that name.
        conn.execute("CREATE INDEX orders_open_by_account ON orders (account)")
        with pytest.raises(StoreError, match=r"test\.db: could not migrate to schema version 2 "
                                             r".*orders_open_by_account already exists"):
            migrate(conn, where="test.db")
        assert read_schema_version(conn) == 1
        assert "is_open" not in {row[1] for row in conn.execute("PRAGMA table_info(orders)")}
    finally:
        conn.close()


def _v6_strategy(conn: sqlite3.Connection, name: str, account: str, desired: str) -> None:
    conn.execute(
        "INSERT INTO strategies (name, account, source, source_sha256, params, symbols,"
        " desired, uploaded_at) VALUES (?, ?, 'def on_bar(ctx, bar):\n    pass\n', ?, '{}',"
        " '[\"AAA\"]', ?, ?)", (name, account, "0" * 64, desired, T0.isoformat()))


def test_v6_to_v7_keeps_strategies_and_moves_their_state_under_their_ids(
        db_path: Path) -> None:
    """A database at version 6 (strategy names global, ctx.state under the name) is upgraded:
    each strategy keeps its account, source and desired state and gets a stg_ id, its
    ctx.state (and one set aside as unreadable) now reads back under that id, the old keys are
    gone, other host state is untouched, and names are then unique per account only."""
    conn = sqlite3.connect(db_path, isolation_level=None)
    try:
        assert migrate(conn, where=str(db_path), target=6) == 6
        _v6_strategy(conn, "alice-bot", "alice", "running")
        _v6_strategy(conn, "bob-bot", "bob", "stopped")
        conn.executemany("INSERT INTO host_state (key, value) VALUES (?, ?)", [
            ("strategy:alice-bot:state", '{"n": 3}'),
            ("strategy:bob-bot:state", '{"n": 7}'),
            ("strategy:bob-bot:state.bad", '"[[["'),
            ("feed:AAA:position", "12")])
    finally:
        conn.close()

    with SQLiteStore(db_path) as store:
        assert store.schema_version == LATEST_VERSION
        alice = store.get_strategy("alice", "alice-bot")
        bob = store.get_strategy("bob", "bob-bot")
        assert alice is not None and bob is not None
        assert [(r.account, r.name, r.desired) for r in store.list_strategies()] == [
            ("alice", "alice-bot", "running"), ("bob", "bob-bot", "stopped")]
        assert re.fullmatch(r"stg_[0-9a-f]{16}", alice.id) and alice.id != bob.id
        assert store.get_state(strategy_state_key(alice.id)) == {"n": 3}
        assert store.get_state(strategy_state_key(bob.id)) == {"n": 7}
        assert store.get_state(f"{strategy_state_key(bob.id)}.bad") == "[[["
        for old in ("strategy:alice-bot:state", "strategy:bob-bot:state",
                    "strategy:bob-bot:state.bad"):
            assert store.get_state_text(old) is None, old
        assert store.get_state("feed:AAA:position") == 12
        # A name is now unique within its account only, and each account sees its own.
        assert store.get_strategy("bob", "alice-bot") is None
        store.save_strategy(replace(alice, id=new_strategy_id(), account="bob"))
        assert [r.account for r in store.find_strategies("alice-bot")] == ["alice", "bob"]
        assert store.get_strategy("alice", "alice-bot") == alice
