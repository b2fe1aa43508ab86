"""Strategy logs kept in the store, written in batches off the live loop.

A run's thread hands its lines to :meth:`Logbook.add`, which only appends them to a list in
memory: no strategy ever waits on SQLite for a line. One writer thread takes what has
gathered every :data:`FLUSH_SECONDS` (or sooner past :data:`FLUSH_LINES`) and stores it in one
transaction, trimming each ring of a strategy to its bound in the same transaction, so the
store never holds more than the bound once a batch is committed. Each strategy has two rings:
its own lines and errors (``own``), and the host's notes about it (``host``), bounded apart so
that a flood of its own can never push the host's notes out.

The writer knows how much each ring holds (read from the store at its first line in this
process, then counted), so a ring is trimmed only when a batch takes it past its bound, and
then down to nine tenths of it: a flooding strategy costs one trim every few hundred lines,
not one per batch.

Reading (:meth:`Logbook.read`) merges what is stored with what is not yet, by line number,
so a line is readable the moment it was added and after a restart alike. A batch the store
refuses is logged and tried again with the next; past :data:`MAX_PENDING` lines waiting, the
oldest are dropped (and counted in :attr:`Logbook.dropped`), so a broken disk cannot grow
the host's memory without bound.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sandtrade.store.base import LogBound, Store, StoredLogLine

__all__ = ["FLUSH_LINES", "FLUSH_SECONDS", "LogBounds", "Logbook"]

log = logging.getLogger(__name__)

#: How often the writer stores what has gathered, in seconds.
FLUSH_SECONDS = 0.25
#: Lines waiting that wake the writer before its time.
FLUSH_LINES = 2000
#: Lines waiting (the store failing) past which the oldest are dropped.
MAX_PENDING = 100_000
#: A ring over its bound is trimmed to this share of it.
TRIM_TO = 0.9


@dataclass(frozen=True, slots=True)
class LogBounds:
    """How much of each strategy's log the store keeps: its own lines (and errors), and the
    host's notes about it, each in lines and bytes of text."""

    lines: int = 5000
    bytes: int = 2 << 20
    note_lines: int = 1000
    note_bytes: int = 256 << 10

    def of(self, ring: str) -> tuple[int, int]:
        """(lines, bytes) of ``ring`` (``own`` or ``host``)."""
        return (self.note_lines, self.note_bytes) if ring == "host" else (self.lines,
                                                                         self.bytes)


class Logbook:
    """Strategy log lines, kept in ``store`` by one writer thread."""

    def __init__(self, store: Store, bounds: LogBounds | None = None,
                 flush_seconds: float = FLUSH_SECONDS) -> None:
        self.store = store
        self.bounds = bounds or LogBounds()
        self._flush_seconds = flush_seconds
        self._cond = threading.Condition(threading.Lock())
        self._pending: list[StoredLogLine] = []
        self._in_flight: list[StoredLogLine] = []
        self._seq = store.last_log_seq()
        #: (strategy id, ring) -> [lines, bytes] the store holds (counted since first read).
        self._sizes: dict[tuple[str, str], list[int]] = {}
        self._retired: set[str] = set()
        self._write_lock = threading.Lock()  # one batch at a time (the writer, a flush)
        self._closed = False
        #: Lines dropped because the store refused them for too long.
        self.dropped = 0
        #: Lines stored, over the logbook's life.
        self.written = 0
        self._thread = threading.Thread(target=self._run, name="sandtrade-logbook",
                                        daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the live side

    def add(self, strategy_id: str, entries: Iterable[tuple[datetime, str, str]]) -> list[int]:
        """Queue lines of a strategy, each (time, text made safe, origin: ``strategy``,
        ``error`` or ``host``); their line numbers. Never waits for the store."""
        with self._cond:
            if strategy_id in self._retired:
                return []
            seqs = []
            for when, text, origin in entries:
                self._seq += 1
                ring = "host" if origin == "host" else "own"
                self._pending.append(StoredLogLine(self._seq, strategy_id, ring, origin, when,
                                                   text))
                seqs.append(self._seq)
            if len(self._pending) > MAX_PENDING:
                over = len(self._pending) - MAX_PENDING
                del self._pending[:over]
                self.dropped += over
            if len(self._pending) >= FLUSH_LINES:
                self._cond.notify()
        return seqs

    def read(self, strategy_id: str, tail: int = 0) -> list[StoredLogLine]:
        """A strategy's log in order, stored and not yet (the last ``tail`` lines; all when
        0)."""
        stored = self.store.list_strategy_logs(strategy_id, tail=tail)
        with self._cond:
            waiting = [x for x in (*self._in_flight, *self._pending)
                       if x.strategy_id == strategy_id]
        last = stored[-1].seq if stored else 0
        # A batch committed between the two reads is in both: keep each line once.
        lines = stored + [x for x in waiting if x.seq > last]
        return lines[-tail:] if tail else lines

    def forget(self, strategy_id: str) -> None:
        """A strategy is being deleted: drop its lines not yet stored and any that come
        later (its stored ones go with its record, in the store's delete)."""
        with self._write_lock, self._cond:
            self._retired.add(strategy_id)
            self._pending = [x for x in self._pending if x.strategy_id != strategy_id]
            for key in [k for k in self._sizes if k[0] == strategy_id]:
                del self._sizes[key]

    def flush(self) -> None:
        """Store every line added so far (the writer's work, done now on this thread)."""
        self._write()

    def close(self) -> None:
        """Store what is left and stop the writer."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(10)
        self._write()

    # ------------------------------------------------------------------ the writer

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._closed and len(self._pending) < FLUSH_LINES:
                    self._cond.wait(self._flush_seconds)
                if self._closed:
                    return
            try:
                self._write()
            except Exception:  # a bug of ours: the writer must go on
                log.exception("storing strategy log lines failed")

    def _write(self) -> None:
        with self._write_lock:
            with self._cond:
                batch, self._pending = self._pending, []
                self._in_flight = batch
            if not batch:
                return
            try:
                trim = self._over_bounds(batch)
                sizes = self.store.append_strategy_logs(batch, trim)
            except Exception as e:
                log.warning("%d strategy log lines not stored yet: %s", len(batch), e)
                with self._cond:  # tried again with the next batch, oldest first
                    self._pending = [x for x in batch if x.strategy_id not in self._retired] \
                        + self._pending
                    self._in_flight = []
                for key in {(x.strategy_id, x.ring) for x in batch}:
                    self._sizes.pop(key, None)  # counted again from the store
                return
            for key, (lines, nbytes) in sizes.items():
                self._sizes[key] = [lines, nbytes]
            self.written += len(batch)
            with self._cond:
                self._in_flight = []

    def _over_bounds(self, batch: list[StoredLogLine]) -> list[LogBound]:
        """Count the batch into each ring's size; the rings it takes past their bound."""
        trim = []
        for x in batch:
            key = (x.strategy_id, x.ring)
            size = self._sizes.get(key)
            if size is None:
                stored = self.store.strategy_log_size(x.strategy_id)
                for ring in ("own", "host"):
                    self._sizes[(x.strategy_id, ring)] = list(stored.get(ring, (0, 0)))
                size = self._sizes[key]
            size[0] += 1
            size[1] += len(x.line.encode("utf-8", "surrogatepass"))
        for (sid, ring), (lines, nbytes) in self._sizes.items():
            max_lines, max_bytes = self.bounds.of(ring)
            if lines > max_lines or nbytes > max_bytes:
                trim.append(LogBound(sid, ring, int(max_lines * TRIM_TO),
                                     int(max_bytes * TRIM_TO)))
        return trim
