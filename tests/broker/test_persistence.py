"""With a store, everything the broker holds is in the database, one transaction per event."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandtrade.broker import PaperBroker
from sandtrade.store import SQLiteStore

from .conftest import ACCOUNT, MakeBroker, Tape


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """The broker's database file."""
    return tmp_path / "x.db"


@pytest.fixture
def stored_broker(make_broker: MakeBroker, db_path: Path) -> Iterator[PaperBroker]:
    """A broker writing to a SQLite file; the store is closed after the test."""
    with SQLiteStore(db_path) as store:
        yield make_broker(store=store, commission_pct=0.001, volume_share=0.1)


def trade(broker: PaperBroker) -> None:
    """Submits, a rejection, partial and whole fills, a cancel, a replace, a triggered
    stop-limit resting as a limit, and an expired day order."""
    tape = Tape(broker)
    broker.open_account("b", 20_000.0)
    broker.submit(ACCOUNT, "ACME", "buy", 150)
    broker.submit(ACCOUNT, "XYZ", "sell", 20)
    broker.submit(ACCOUNT, "ACMEE", "buy", 1)  # rejected
    doomed = broker.submit("b", "ACME", "buy", 10, type="limit", limit_price=90.0)
    moved = broker.submit("b", "ACME", "buy", 5, type="limit", limit_price=91.0)
    resting = broker.submit(ACCOUNT, "ACME", "buy", 5, type="stop_limit", stop_price=102.0,
                            limit_price=103.0)
    expiring = broker.submit("b", "XYZ", "buy", 10, type="limit", limit_price=45.0, tif="day")
    tape.bar(100.0, 101.0, 99.0, 100.5, volume=1_000)  # 100 of the 150 fill
    tape.bar(50.0, 50.0, 49.0, 49.5, symbol="XYZ", volume=1_000)
    broker.cancel(doomed.id)
    broker.replace(moved.id, limit_price=92.0)
    tape.bar(104.0, 105.0, 103.5, 104.5, volume=1_000)  # the rest; stop-limit triggered
    assert resting.stop_triggered and resting.is_open
    broker.submit(ACCOUNT, "ACME", "sell", 60)
    tape.bar(105.0, volume=1_000)
    tape.bar(49.0, 49.5, 48.5, 49.0, symbol="XYZ", volume=1_000, new_session=True)
    assert expiring.status.value == "expired"


def assert_store_matches(broker: PaperBroker, store: SQLiteStore) -> None:
    for account_id in (ACCOUNT, "b"):
        assert [o.model_dump() for o in store.list_orders(account_id)] == [
            o.model_dump() for o in broker.orders(account_id)]
        assert [f.model_dump() for f in store.list_fills(account_id)] == [
            f.model_dump() for f in broker.fills(account_id)]
        stored = [(p.symbol, p.qty, p.avg_price, p.realized_pnl)
                  for p in store.list_positions(account_id)]
        assert stored == [(p.symbol, p.qty, p.avg_price, p.realized_pnl)
                          for p in broker.positions(account_id)]
        account = store.get_account(account_id)
        live = broker.account(account_id)
        assert account is not None
        assert (account.cash, account.commissions, account.realized_pnl) == (
            live.cash, live.commissions, live.realized_pnl)


def test_store_holds_the_brokers_orders_fills_positions_and_cash(
        stored_broker: PaperBroker, db_path: Path) -> None:
    trade(stored_broker)

    with SQLiteStore(db_path) as reopened:
        assert_store_matches(stored_broker, reopened)
        assert len(reopened.list_fills(ACCOUNT)) == 4
        assert [p.symbol for p in reopened.list_positions(ACCOUNT)] == ["ACME", "XYZ"]


def test_store_holds_a_liquidated_account(stored_broker: PaperBroker, db_path: Path) -> None:
    trade(stored_broker)

    stored_broker.liquidate(ACCOUNT, "risk limit")

    with SQLiteStore(db_path) as reopened:
        assert_store_matches(stored_broker, reopened)
        assert reopened.list_positions(ACCOUNT) == []
        assert reopened.list_orders(ACCOUNT, open_only=True) == []


def test_store_records_a_rejected_order(stored_broker: PaperBroker, db_path: Path) -> None:
    order = stored_broker.submit(ACCOUNT, "ACME", "buy", 1_000_000)

    with SQLiteStore(db_path) as reopened:
        stored = reopened.get_order(order.id)
    assert stored is not None
    assert stored.model_dump() == order.model_dump()
