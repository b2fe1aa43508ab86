"""The signal journal: received signals appended durably, in groups, with the broker's commit.

One thread takes what arrived meanwhile and writes it through the durable broker's group
commit, so one fsync covers those signals and the broker's pending changes together. Each
record is encoded once, here: the check that the store can write it is the JSON it writes. Only
once a group is durable is it handed on to be executed, and then each sender answered: the
journal's order is the execution order, and an answered signal survives a SIGKILL.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from sandtrade.signal_model import SignalRecord
from sandtrade.store.base import JournalEntry, JsonText

if TYPE_CHECKING:
    from sandtrade.broker.durable import DurableBroker

__all__ = ["SignalJournal"]

log = logging.getLogger(__name__)

#: At most this many signals in one group commit.
_BATCH = 2048


class SignalJournal:
    """Appends signals durably in groups, on a thread of its own.

    :param after: called with each stored group, in order, before the senders are answered.
    :param failed: called with the signals that could not be stored (their senders get the
        error).
    """

    def __init__(self, live: DurableBroker, after: Callable[[list[SignalRecord]], None],
                 failed: Callable[[list[SignalRecord]], None]) -> None:
        self._live = live
        self._after = after
        self._failed = failed
        self._queue: queue.SimpleQueue[tuple[SignalRecord, str | None, Future[None]] | None] = \
            queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="signal-journal", daemon=True)
        self._thread.start()

    def _fail(self, items: list[tuple[SignalRecord, str | None, Future[None]]],
              error: Exception) -> None:
        self._failed([r for r, _, _ in items])
        for _, _, fut in items:
            fut.set_exception(error)

    def append(self, record: SignalRecord, dedup_hash: str | None) -> Future[None]:
        """Queue ``record`` (with the body hash it is known by as a resend, if any); the
        future is done once it is durable, or fails with why it could not be stored."""
        fut: Future[None] = Future()
        self._queue.put((record, dedup_hash, fut))
        return fut

    def close(self) -> None:
        """Store what was appended so far, then stop."""
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < _BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            # A record the store could not write would fail the whole group (broker
            # changes included): each is encoded alone first, and the store writes that text
            # (a record has no number of its own the store would refuse: only what
            # model_dump_json refuses is refused).
            storable = []
            entries = []
            for item in batch:
                try:
                    data = JsonText(item[0].model_dump_json())
                except Exception as e:
                    self._fail([item], e)
                else:
                    storable.append(item)
                    entries.append(JournalEntry(item[0], item[1], data))
            stored = []
            if storable:
                try:
                    self._live.settle(self._live.journal(entries))
                    stored = storable
                except Exception as e:
                    self._fail(storable, e)
            if stored:
                # Hand to the lanes before answering: the journal order is the execution order.
                try:
                    self._after([r for r, _, _ in stored])
                except Exception:  # a lane problem must not cost the answer
                    log.exception("signals journaled but not queued for execution")
                for _, _, fut in stored:
                    fut.set_result(None)
            if stop:
                return
