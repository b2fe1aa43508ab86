"""The host's watch log sees every journaled signal, however many arrive between rounds."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from sandtrade.broker import BrokerSettings, PaperBroker
from sandtrade.broker.durable import DurableBroker
from sandtrade.signal_model import SignalRecord, SignalStatus
from sandtrade.store import JournalEntry, SQLiteStore
from sandtrade.watch import HostWatch


def _signals(n: int, prefix: str) -> list[JournalEntry]:
    out = []
    for i in range(n):
        record = SignalRecord(id=f"{prefix}{i:04d}", source="test",
                              received_at=datetime.now(UTC), raw_body=f"buy {i + 1} AAA",
                              account="paper", destination="paper:paper")
        record.step(SignalStatus.EXECUTED, record.received_at, "done")
        out.append(JournalEntry(record))
    return out


def watching(watch: HostWatch) -> None:
    """Read once, and return when the pump has seen the reader (it makes signal events only
    while someone reads)."""
    watch.after(0)
    deadline = time.monotonic() + 10
    while watch.idle and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not watch.idle, "the watch never noticed its reader"


def read_signals(watch: HostWatch, last: int, want: int, timeout: float = 10
                 ) -> tuple[list[str], int]:
    """The ids of the signal events after ``last`` until ``want`` came, and the last id."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while len(seen) < want and time.monotonic() < deadline:
        events, _ = watch.after(last)
        for e in events:
            last = e.id
            if e.kind == "signal":
                seen.append(e.data["id"])
        time.sleep(0.01)
    return seen, last


def test_more_signals_than_one_round_reads_each_come_once(tmp_path: Path) -> None:
    """1,200 signals journaled at once, then 700 more: each has its event, once (a round
    reads 500; the rounds after it read on from where it stopped)."""
    with SQLiteStore(tmp_path / "host.db") as store:
        store.commit_many((), None, (), _signals(3, "old_"))  # history: not events
        live = DurableBroker(lambda: PaperBroker(BrokerSettings(), store=store), store)
        watch = HostWatch(live=live, store=store, poll=0.01).start()
        try:
            seen: list[str] = []
            last = 0
            watching(watch)
            for prefix, n in (("a_", 1_200), ("b_", 700)):
                store.commit_many((), None, (), _signals(n, prefix))
                want = {f"{prefix}{i:04d}" for i in range(n)}
                got, last = read_signals(watch, last, n, timeout=30)
                seen += got
                assert want <= set(seen), f"{len(want - set(seen))} of {n} never came"
            assert len(seen) == len(set(seen)) == 1_900, "each once, history not at all"
        finally:
            watch.stop()
            live.close()


def test_an_unwatched_host_reads_no_signals_and_its_next_reader_catches_up(
        tmp_path: Path) -> None:
    """Nobody reads: the journal is not read for signal events (none is made). The first
    reader after that gets the events of what came meanwhile, late, each once, then those
    of what comes next; after an idle spell with more than ``catch_up`` signals it gets a
    ``reset`` instead (the state read afresh covers them)."""
    with SQLiteStore(tmp_path / "host.db") as store:
        live = DurableBroker(lambda: PaperBroker(BrokerSettings(), store=store), store)
        watch = HostWatch(live=live, store=store, poll=0.01, idle_after=0.2,
                          catch_up=50).start()
        try:
            store.commit_many((), None, (), _signals(40, "quiet_"))
            time.sleep(0.3)  # many rounds of the pump, nobody reading: it must stay idle
            assert watch.idle and watch.last_id == 0, "events made for nobody"
            watching(watch)
            seen, last = read_signals(watch, 0, 40)
            assert seen == [f"quiet_{i:04d}" for i in range(40)], seen
            store.commit_many((), None, (), _signals(5, "next_"))
            seen, last = read_signals(watch, last, 5)
            assert seen == [f"next_{i:04d}" for i in range(5)], seen
            # The reader goes away; more than catch_up signals come before the next one.
            deadline = time.monotonic() + 10
            while not watch.idle and time.monotonic() < deadline:
                time.sleep(0.02)
            assert watch.idle, "the watch goes on reading the journal for nobody"
            store.commit_many((), None, (), _signals(60, "flood_"))
            watching(watch)
            events, _ = watch.after(last)
            assert [e.kind for e in events] == ["reset"], events
            store.commit_many((), None, (), _signals(3, "after_"))
            seen, _ = read_signals(watch, events[-1].id, 3)
            assert seen == [f"after_{i:04d}" for i in range(3)], seen
        finally:
            watch.stop()
            live.close()
