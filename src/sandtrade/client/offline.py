"""The client's offline queue: requests kept in a SQLite file until the host takes them.

Rows are sent in the order they were queued. A row leaves the queue only once the host has
answered it (accepted, or refused for good); a refused row moves to ``failed`` with the
reason, so one bad request cannot block the ones behind it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FailedRequest", "OfflineQueue", "QueuedRequest"]


@dataclass(frozen=True, slots=True)
class QueuedRequest:
    """A request waiting in the queue."""

    seq: int
    kind: str
    key: str
    payload: bytes
    queued_at: float


@dataclass(frozen=True, slots=True)
class FailedRequest:
    """A queued request the host refused, and why."""

    seq: int
    kind: str
    key: str
    payload: bytes
    error: str


class OfflineQueue:
    """A durable FIFO of serialized requests (one SQLite file, WAL, synchronous=FULL)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                     timeout=10)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS pending (seq INTEGER PRIMARY KEY, "
                           "kind TEXT NOT NULL, key TEXT NOT NULL, payload BLOB NOT NULL, "
                           "queued_at REAL NOT NULL)")
        self._conn.execute("CREATE TABLE IF NOT EXISTS failed (seq INTEGER PRIMARY KEY, "
                           "kind TEXT NOT NULL, key TEXT NOT NULL, payload BLOB NOT NULL, "
                           "error TEXT NOT NULL)")

    def put(self, kind: str, key: str, payload: bytes) -> QueuedRequest:
        """Append a request durably."""
        now = time.time()
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO pending (kind, key, payload, queued_at) VALUES (?, ?, ?, ?)",
                (kind, key, payload, now))
        assert cur.lastrowid is not None
        return QueuedRequest(cur.lastrowid, kind, key, payload, now)

    def peek(self) -> QueuedRequest | None:
        """The oldest waiting request, or None."""
        with self._lock:
            row = self._conn.execute("SELECT seq, kind, key, payload, queued_at FROM pending "
                                     "ORDER BY seq LIMIT 1").fetchone()
        return None if row is None else QueuedRequest(*row)

    def done(self, seq: int) -> None:
        """The host answered ``seq``: forget it."""
        with self._lock:
            self._conn.execute("DELETE FROM pending WHERE seq = ?", (seq,))

    def fail(self, item: QueuedRequest, error: str) -> None:
        """The host refused ``item`` for good: move it to ``failed``."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            self._conn.execute("INSERT INTO failed (seq, kind, key, payload, error) VALUES "
                               "(?, ?, ?, ?, ?)", (item.seq, item.kind, item.key, item.payload,
                                                   error))
            self._conn.execute("DELETE FROM pending WHERE seq = ?", (item.seq,))
            self._conn.execute("COMMIT")

    def __len__(self) -> int:
        with self._lock:
            (n,) = self._conn.execute("SELECT COUNT(*) FROM pending").fetchone()
        return int(n)

    def failed(self) -> list[FailedRequest]:
        """Requests the host refused, oldest first."""
        with self._lock:
            rows = self._conn.execute("SELECT seq, kind, key, payload, error FROM failed "
                                      "ORDER BY seq").fetchall()
        return [FailedRequest(*r) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
