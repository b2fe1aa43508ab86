"""DurableBroker over a real SQLite store: group commit, and a failing row that fails only its
own request."""

from __future__ import annotations

import queue
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sandtrade.broker import BrokerSettings, PaperBroker
from sandtrade.broker.durable import DurableBroker
from sandtrade.errors import StoreError
from sandtrade.models import Account, OrderStatus
from sandtrade.signal_model import SignalRecord, SignalStatus
from sandtrade.store import JournalEntry, JsonText, SQLiteStore

from .conftest import LAST_PRICES, instruments


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    with SQLiteStore(tmp_path / "broker.db") as s:
        for account in ("alice", "bob"):
            s.create_account(Account(id=account, cash=100_000.0, initial_cash=100_000.0))
        yield s


@pytest.fixture
def live(store: SQLiteStore) -> Iterator[DurableBroker]:
    def make() -> PaperBroker:
        broker = PaperBroker(BrokerSettings(), instruments=instruments(), store=store)
        broker.restore()
        for symbol, price in LAST_PRICES.items():
            broker.mark(symbol, price)
        return broker

    with DurableBroker(make, store) as live:
        yield live


def deep(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_a_bad_state_row_fails_only_its_request(live: DurableBroker,
                                                store: SQLiteStore) -> None:
    """Alice's request notes a state the store refuses; Bob's order is in the same group.
    Bob's order is committed and acknowledged, a good state noted in the same group is
    stored, only Alice's request fails (naming her key), and the broker is not rebuilt."""
    bad, _, _ = live.apply(lambda b: live.note_state("strategy:alice:state",
                                                     {"x": deep(5_000)}))
    good, _, _ = live.apply(lambda b: live.note_state_json("strategy:carol:state",
                                                           JsonText('{"n":1}')))
    seq, order, error = live.apply(lambda b: b.submit("bob", "ACME", "buy", 10))
    assert error is None
    live.settle(seq)  # one group: all three

    assert store.get_order(order.id) is not None
    assert store.get_order(order.id).status == OrderStatus.ACCEPTED
    assert store.get_state("strategy:carol:state") == {"n": 1}
    assert store.get_state_text("strategy:alice:state") is None
    assert live.lost(seq) is None and live.lost(good) is None
    why = live.lost(bad)
    assert why is not None and "strategy:alice:state" in why and "deeper than 200" in why
    with pytest.raises(StoreError, match="strategy:alice:state"):
        live.settle(bad)
    assert live.rebuilds == 0
    # The broker kept its state: Bob's order is still working in it and more orders go in.
    assert live.call(lambda b: [o.id for o in b.orders("bob")]) == [order.id]
    assert live.call(lambda b: b.submit("alice", "ACME", "buy", 1)).status == \
        OrderStatus.ACCEPTED


def test_a_broker_change_the_store_refuses_still_rebuilds_the_broker(
        live: DurableBroker, store: SQLiteStore) -> None:
    """When the broker's own changes cannot be committed the whole group fails, as before,
    and the broker is rebuilt from the store (counted)."""
    seq, _, _ = live.apply(lambda b: b.submit("bob", "ACME", "buy", 10))
    store.close()  # every commit now fails
    with pytest.raises(StoreError):
        live.settle(seq)
    assert live.lost(seq) is not None
    assert live.rebuilds == 1


def test_settle_later_answers_each_request_once_it_is_durable(live: DurableBroker,
                                                               store: SQLiteStore) -> None:
    """Requests handed to the commit thread are answered there, each exactly once, after
    their group is stored: None for the durable ones, the reason for one whose own row was
    refused (the others of its group unharmed)."""
    answers: queue.SimpleQueue[tuple[int, str | None, bool]] = queue.SimpleQueue()
    orders = []
    for _ in range(20):
        seq, order, error = live.apply(lambda b: b.submit("bob", "ACME", "buy", 1))
        assert error is None
        orders.append((seq, order.id))
    bad, _, _ = live.apply(lambda b: live.note_state("strategy:alice:state",
                                                     {"x": deep(5_000)}))
    for seq, order_id in orders:
        live.settle_later(seq, lambda lost, s=seq, o=order_id: answers.put(
            (s, lost, store.get_order(o) is not None)))
    live.settle_later(bad, lambda lost: answers.put((bad, lost, False)))

    got = {}
    for _ in range(len(orders) + 1):
        seq, lost, stored = answers.get(timeout=30)
        assert seq not in got, f"request {seq} was answered twice"
        got[seq] = (lost, stored)
    assert all(got[seq] == (None, True) for seq, _ in orders), got
    lost, _ = got[bad]
    assert lost is not None and "strategy:alice:state" in lost
    assert answers.empty()


def test_settle_later_reports_a_failed_group_to_every_request_in_it(
        live: DurableBroker, store: SQLiteStore) -> None:
    seq, _, _ = live.apply(lambda b: b.submit("bob", "ACME", "buy", 10))
    store.close()  # every commit now fails
    answers: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    live.settle_later(seq, answers.put)
    lost = answers.get(timeout=30)
    assert lost is not None and "not carried out" in lost


def _signal(sid: str) -> SignalRecord:
    record = SignalRecord(id=sid, source="test", received_at=datetime.now(UTC),
                          raw_body="buy 10 ACME", account="bob", destination="paper:bob")
    record.step(SignalStatus.VALIDATED, record.received_at)
    return record


def test_signals_executed_in_a_group_are_committed_with_the_broker_changes(
        live: DurableBroker, store: SQLiteStore) -> None:
    """A group split apart by a refused state row: the signal executed with the journal is
    stored with its order (the broker's part), the one journaled beside it alone, and only
    the state row's request fails."""
    bad, _, _ = live.apply(lambda b: live.note_state("strategy:alice:state",
                                                     {"x": deep(5_000)}))
    executed, waiting = _signal("sig_executed"), _signal("sig_waiting")
    placed = []

    def execute(b: PaperBroker) -> list[tuple[JournalEntry, bool]]:
        placed.append(b.submit("bob", "ACME", "buy", 10))
        executed.step(SignalStatus.EXECUTED, datetime.now(UTC), "placed")
        return [(JournalEntry(executed), True), (JournalEntry(waiting), False)]

    bound, free = live.journal_executing(execute)
    live.settle(free)
    assert live.lost(bound) is None and live.lost(free) is None and live.lost(bad) is not None
    stored = store.get_signal("sig_executed")
    assert stored is not None and stored.status is SignalStatus.EXECUTED
    assert store.get_order(placed[0].id) is not None
    assert store.get_signal("sig_waiting") is not None
    assert live.rebuilds == 0


def test_signals_whose_execution_raised_leave_nothing_pending_committed(
        live: DurableBroker, store: SQLiteStore) -> None:
    """Execution that raises half way (a bug): its order is not committed without its
    signal; the group is lost and the broker rebuilt from the store."""
    before, order, _ = live.apply(lambda b: b.submit("bob", "ACME", "buy", 1))
    placed = []

    def execute(b: PaperBroker) -> list[tuple[JournalEntry, bool]]:
        placed.append(b.submit("bob", "ACME", "buy", 10))
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError, match="a bug"):
        live.journal_executing(execute)
    with pytest.raises(StoreError, match="executing signals in the journal failed: a bug"):
        live.settle(before)
    assert store.get_order(placed[0].id) is None and store.get_order(order.id) is None
    assert live.rebuilds == 1
    assert live.call(lambda b: b.orders("bob")) == []
