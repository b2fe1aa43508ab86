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
            for prefix, n in (("a_", 1_200), ("b_", 700)):
                store.commit_many((), None, (), _signals(n, prefix))
                want = {f"{prefix}{i:04d}" for i in range(n)}
                deadline = time.monotonic() + 30
                while not want <= set(seen) and time.monotonic() < deadline:
                    events, _ = watch.after(last)
                    for e in events:
                        last = e.id
                        if e.kind == "signal":
                            seen.append(e.data["id"])
                    time.sleep(0.01)
                assert want <= set(seen), f"{len(want - set(seen))} of {n} never came"
            assert len(seen) == len(set(seen)) == 1_900, "each once, history not at all"
        finally:
            watch.stop()
            live.close()
