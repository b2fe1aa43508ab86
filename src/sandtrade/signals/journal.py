"""The signal journal: received signals appended durably, in groups, with the broker's commit.

One thread takes what arrived meanwhile and writes it through the durable broker's group
commit, so one fsync covers those signals and the broker's pending changes together. A paper
signal whose lane is free is executed there and then, under the broker's lock, and journaled
in the state it ends in, in the same transaction as its orders (docs/webhook_load.md). Each
record is encoded once, here: the check that the store can write it is the JSON it writes. Only
once a group is durable is it handed on to be executed, and then each sender answered: the
journal's order is the execution order, and an answered signal survives a SIGKILL.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING

from sandtrade.errors import StoreError
from sandtrade.signal_model import SignalRecord
from sandtrade.store.base import JournalEntry, JsonText

if TYPE_CHECKING:
    from sandtrade.broker.durable import DurableBroker
    from sandtrade.broker.paper import PaperBroker
    from sandtrade.signals.lanes import Lanes

__all__ = ["SignalJournal"]

log = logging.getLogger(__name__)

#: At most this many signals in one group commit.
_BATCH = 2048


class SignalJournal:
    """Appends signals durably in groups, on a thread of its own.

    :param after: called with each stored group's signals left to execute, in order, before
        the senders are answered.
    :param failed: called with the signals that could not be stored (their senders get the
        error).
    :param lanes: when given, the paper signals whose lane is free execute in their group's
        own commit (:meth:`Lanes.claim_inline`): one transaction holds each signal, in its
        final state, with its orders.
    :param executed: called with the signals of a stored group that executed in it.
    """

    def __init__(self, live: DurableBroker, after: Callable[[list[SignalRecord]], None],
                 failed: Callable[[list[SignalRecord]], None], *, lanes: Lanes | None = None,
                 executed: Callable[[list[SignalRecord]], None] | None = None) -> None:
        self._live = live
        self._after = after
        self._failed = failed
        self._lanes = lanes
        self._executed = executed or (lambda records: None)
        self._queue: queue.SimpleQueue[_Item | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="signal-journal", daemon=True)
        self._thread.start()

    def _fail(self, items: list[_Item], error: Exception) -> None:
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
            self._store(batch)
            if stop:
                return

    def _store(self, batch: list[_Item]) -> None:
        # A record the store could not write would fail the whole group (broker
        # changes included): each is encoded alone first, and the store writes that text
        # (a record has no number of its own the store would refuse: only what
        # model_dump_json refuses is refused). A signal that executes in the group is
        # encoded without the fields its execution writes (every field a sender wrote is
        # among the others): after execution only those are encoded, and joined to it.
        records = [item[0] for item in batch]
        claimed_all = (self._lanes.claim_inline(records) if self._lanes is not None
                       else [False] * len(batch))
        storable = []
        entries = []
        claimed = []
        for item, c in zip(batch, claimed_all, strict=True):
            try:
                data = JsonText(item[0].model_dump_json(exclude=_EXECUTION_FIELDS) if c
                                else item[0].model_dump_json())
            except Exception as e:
                self._fail([item], e)
            else:
                storable.append(item)
                entries.append(JournalEntry(item[0], item[1], data))
                claimed.append(c)
        if not storable:
            return
        inline = [item for item, c in zip(storable, claimed, strict=True) if c]
        rest = [item for item, c in zip(storable, claimed, strict=True) if not c]
        try:
            if not inline:
                self._live.settle(self._live.journal(entries))
                lost_inline, lost_rest = None, None
            else:
                bound_seq, free_seq = self._live.journal_executing(
                    functools.partial(self._execute, entries, claimed))
                with contextlib.suppress(StoreError):  # which part was lost: asked below
                    self._live.settle(free_seq)
                lost_inline, lost_rest = self._live.lost(bound_seq), self._live.lost(free_seq)
        except Exception as e:
            self._fail(storable, e)
            return
        if lost_inline is not None:
            self._fail(inline, StoreError(lost_inline))
            inline = []
        if lost_rest is not None:
            self._fail(rest, StoreError(lost_rest))
            rest = []
        # Hand to the lanes before answering: the journal order is the execution order.
        try:
            if rest:
                self._after([r for r, _, _ in rest])
            if inline:
                self._executed([r for r, _, _ in inline])
        except Exception:  # a lane problem must not cost the answer
            log.exception("signals journaled but not queued for execution")
        for _, _, fut in inline + rest:
            fut.set_result(None)

    def _execute(self, entries: list[JournalEntry], claimed: list[bool], b: PaperBroker
                 ) -> list[tuple[JournalEntry, bool]]:
        """Under the broker's lock: execute the claimed signals, each journaled in the
        state it ends in (the fields its execution wrote, encoded now, joined to the rest,
        encoded before)."""
        assert self._lanes is not None
        out = []
        for entry, c in zip(entries, claimed, strict=True):
            if not c:
                out.append((entry, False))
                continue
            record = entry.record
            self._lanes.execute_inline(b, record)
            data: JsonText | None = None
            try:
                done = record.model_dump_json(include=_EXECUTION_FIELDS)
                if entry.data is not None and len(entry.data) > 2 and len(done) > 2:
                    data = JsonText(f"{entry.data[:-1]},{done[1:]}")
            except Exception:  # the store's own encoding says why, and fails the group
                log.exception("signal %s executed but cannot be encoded", record.id)
            out.append((JournalEntry(record, entry.dedup_hash, data), True))
        return out


#: What executing a signal writes to its record (the journal encodes them after execution).
_EXECUTION_FIELDS: set[str] = {"status", "reason", "orders", "market_position",
                                "price_source", "history"}

_Item = tuple[SignalRecord, str | None, Future[None]]
