"""The store checkpoints its write-ahead log on a thread of its own: a commit never waits for a
checkpoint, and the log still stops growing while a host writes without pause."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import sandtrade.store.sqlite as sqlite_store
from sandtrade.store.sqlite import SQLiteStore

PAGE = 4096
BIG = 25 * PAGE  # host state values of about 25 pages


def write(store: SQLiteStore, commits: int) -> None:
    for i in range(commits):
        # A value that differs from the last one: SQLite skips pages that did not change.
        store.commit_many((), {f"k{i % 7}": f"{i:08d}" * (BIG // 8)})


def wal_size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def until(what: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def checkpoint_threads() -> set[threading.Thread]:
    """The checkpoint threads alive now (other tests' stores in this process included)."""
    return {t for t in threading.enumerate() if t.name == "store-checkpoint"}


def test_commits_do_not_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The checkpoint thread waits an hour: whatever the log holds, the commits left it there.
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 3600.0)
    path = tmp_path / "s.db"
    before = checkpoint_threads()
    store = SQLiteStore(path)
    try:
        write(store, 60)  # about 1,500 pages: SQLite's own rule checkpoints at 1,000
        assert store.checkpoints == 0
        assert wal_size(path) > 1_400 * PAGE, "a commit checkpointed (the log was reused)"
        ours = checkpoint_threads() - before
        assert len(ours) == 1
    finally:
        store.close()
    assert not any(t.is_alive() for t in ours), "close() ends the checkpoint thread"
    with SQLiteStore(path) as again:
        last = max(i for i in range(60) if i % 7 == 6)
        assert again.get_state("k6") == f"{last:08d}" * (BIG // 8), \
            "everything committed is there after reopening"


def test_the_log_stops_growing_while_writes_go_on(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 0.01)
    monkeypatch.setattr(sqlite_store, "WAL_FRAMES_LIMIT", 600)
    path = tmp_path / "s.db"
    before = checkpoint_threads()
    with SQLiteStore(path) as store:
        sizes = []
        for _ in range(8):
            # Writes without pause, about 500 frames a batch; a checkpoint after each batch.
            seen = store.checkpoints
            write(store, 20)
            until(lambda s=seen: store.checkpoints > s)
            sizes.append(wal_size(path))
        # Passive checkpoints alone never caught up here: the log grew to over 4,000 frames.
        assert max(sizes) < 2_000 * (PAGE + 24), sizes
        assert store.checkpoint_restarts >= 1
        ours = checkpoint_threads() - before
    assert not any(t.is_alive() for t in ours)


def test_a_store_only_read_starts_no_thread(tmp_path: Path) -> None:
    before = checkpoint_threads()
    with SQLiteStore(tmp_path / "s.db") as store:
        store.get_state("nothing")
        assert checkpoint_threads() <= before


def test_an_in_memory_store_checkpoints_nothing() -> None:
    before = checkpoint_threads()
    with SQLiteStore(sqlite_store.MEMORY) as store:
        write(store, 2)
        assert store.checkpoints == 0 and checkpoint_threads() <= before
