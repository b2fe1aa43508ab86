"""The paper broker in a live host: requests take turns on it, and changes commit in groups.

Every request (an order, a cancel, a bar from the market hub, a read) is a function applied to
the broker under one lock, on the caller's own thread, so no two requests ever interleave and
no thread hop is added to a call. Its changes join a pending group; then the request waits
until its group is durable: the first waiter to get the commit lock writes every pending
change in one transaction (group commit), and everyone whose changes were in it returns. An
order is thus durable before it is acknowledged, a burst of concurrent orders costs one fsync
instead of one each, and a request never returns before what it saw is durable.

A caller that must not hold a thread while it waits (a strategy run's door: two hundred
strategies trading on one bar would queue behind a handful of door threads, each parked in
:meth:`settle`) applies with :meth:`apply` and hands the wait to :meth:`settle_later`: one
commit thread settles everything pending in one group and then calls each caller back.

Host state rows and newly journaled signals do not depend on the broker's changes (except
signals the journal executed in the same request, :meth:`DurableBroker.journal_executing`:
those are part of the broker's changes). When a
group commit fails and it held some, the group is tried again without them, then each state
key and each journal batch alone: a row the store refuses (a strategy's ``ctx.state`` that got
past its checks, say) fails only the requests that wrote it, never another tenant's order.
Only when the broker's own changes cannot be committed does every request whose changes were
pending get the error (nothing of them is stored), and the broker is rebuilt from the store,
which holds exactly what was acknowledged. (Taken apart, a bar's feed cursor lands a moment
after the bar's broker changes, in its own transaction.)
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from sandtrade.broker.paper import PaperBroker
from sandtrade.errors import StoreError
from sandtrade.models import BrokerChange, Fill, TradeUpdate, copied
from sandtrade.signal_model import SignalRecord
from sandtrade.store.base import JournalEntry, JsonText, Store
from sandtrade.streams import EventStream

__all__ = ["DurableBroker", "Subscription"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Requests whose own rows failed, remembered for :meth:`DurableBroker.lost` (the oldest are
#: forgotten first; a caller asks right after its settle).
FAILED_REQUESTS_KEPT = 10_000

#: Updates a subscriber may fall behind by before it is cut off (its stream then ends with an
#: error instead of the host's memory growing without bound).
SUBSCRIBER_BACKLOG = 10_000


class Subscription(EventStream[TradeUpdate]):
    """Trade updates of one account (or of every account), in commit order."""

    def __init__(self, owner: DurableBroker, account: str | None) -> None:
        # Private to this module: a subscription ends by its own close(), which calls this.
        super().__init__(SUBSCRIBER_BACKLOG, owner._unsubscribe)  # noqa: SLF001
        self.account = account


class DurableBroker:
    """Serialises every use of a :class:`PaperBroker`, with group commit.

    :param make_broker: builds the broker, restored from ``store`` (called again to rebuild
        it after a failed commit).
    :param store: where changes are committed.
    """

    def __init__(self, make_broker: Callable[[], PaperBroker], store: Store) -> None:
        self._make_broker = make_broker
        self._store = store
        self._broker = make_broker()
        self._apply_lock = threading.Lock()
        self._commit_lock = threading.Lock()
        self._pending: list[BrokerChange] = []
        self._state: dict[str, Any] = {}
        self._state_by: dict[str, list[int]] = {}  # key -> the requests that noted it
        self._signals: dict[str, SignalRecord] = {}
        self._new_signals: list[JournalEntry] = []
        # Journaled with the broker's changes that executed them: never committed apart.
        self._bound_signals: list[JournalEntry] = []
        #: Why what is pending must not be committed (see journal_executing), or None.
        self._broken: str | None = None
        self._journal_by: list[tuple[int, list[JournalEntry]]] = []
        self._applied = 0   # sequence number of the last request applied
        self._durable = 0   # every request up to this number is settled (committed or failed)
        self._lost: list[tuple[int, int, str]] = []  # (first, last, error) of failed groups
        self._failed: OrderedDict[int, str] = OrderedDict()  # request -> why its rows failed
        #: How many times the broker was rebuilt from the store after a failed commit.
        self.rebuilds = 0
        self._subs: list[Subscription] = []
        self._subs_lock = threading.Lock()
        self._closed = False
        self._later: list[tuple[int, Callable[[str | None], None]]] = []
        self._later_ready = threading.Condition(threading.Lock())
        self._committer: threading.Thread | None = None

    def close(self) -> None:
        """Refuse new requests, commit what was applied and not yet settled (a bar the feed
        handed to the commit thread, say), end every subscription."""
        with self._apply_lock:
            self._closed = True
            last = self._applied
        try:
            self.settle(last)
        except StoreError as e:
            log.error("the last changes could not be stored at shutdown: %s", e)
        with self._subs_lock:
            subs = list(self._subs)
        for sub in subs:
            sub.close()

    def __enter__(self) -> DurableBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    def call(self, fn: Callable[[PaperBroker], T]) -> T:
        """Apply ``fn(broker)``; return its result (or raise its exception) once every change
        it made or saw is durable. Raises :class:`StoreError` when the commit failed."""
        seq, result, error = self.apply(fn)
        self.settle(seq)
        if error is not None:
            raise error
        return result

    def apply(self, fn: Callable[[PaperBroker], T]) -> tuple[int, T, Exception | None]:
        """Apply ``fn(broker)`` without waiting for durability: its sequence number, result
        and exception. Nothing of it may be reported to anyone before :meth:`settle` of that
        number returns; applying many and settling the last commits them together."""
        with self._apply_lock:
            if self._closed:
                raise StoreError("the broker is shut down; nothing was done")
            broker = self._broker
            broker.begin_batch()
            error: Exception | None = None
            result: Any = None
            try:
                result = fn(broker)
            except Exception as e:  # handed to the caller after the commit
                error = e
            finally:
                # Orders keep changing after this request: commit (and publish) a snapshot
                # of each as it is now. Fills, positions and accounts are snapshots already.
                for change in broker.end_batch():
                    change.orders = [copied(o) for o in change.orders]
                    self._pending.append(change)
            self._applied += 1
            return self._applied, result, error

    def note_state(self, key: str, value: Any) -> None:
        """Commit ``key = value`` (host state, JSON) with the changes of the request being
        applied. Call it from inside a request function."""
        self._state[key] = value
        self._state_by.setdefault(key, []).append(self._applied + 1)

    def note_state_json(self, key: str, text: JsonText) -> None:
        """:meth:`note_state` for a value already checked and encoded (a strategy's
        ``ctx.state`` from :func:`sandtrade.sandbox.wire.check_json`): the store writes the
        text as it is. Call it from inside a request function."""
        if not isinstance(text, JsonText):
            raise TypeError("note_state_json takes checked JsonText; use note_state for a "
                            "value")
        self.note_state(key, text)

    def note_signal(self, record: SignalRecord) -> None:
        """Commit this state of a journaled signal with the changes of the request being
        applied (its orders and its ``executed`` status land together or not at all). Call
        it from inside a request function."""
        self._signals[record.id] = record.snapshot()

    def journal(self, records: list[JournalEntry]) -> int:
        """Append new signals (with their duplicate hashes, and their JSON if encoded) to the
        journal in the next group commit, with whatever broker changes are pending: one fsync
        for both. Returns the sequence number to :meth:`settle`. The records must be storable
        (checked by the caller): a record the store refuses would fail the whole group."""
        with self._apply_lock:
            if self._closed:
                raise StoreError("the host is shutting down; nothing was journaled")
            return self._journal_free(records)

    def _journal_free(self, records: list[JournalEntry]) -> int:
        self._new_signals.extend(records)
        self._applied += 1
        self._journal_by.append((self._applied, list(records)))
        return self._applied

    def journal_executing(self, execute: Callable[[PaperBroker], list[tuple[JournalEntry, bool]]]
                          ) -> tuple[int, int]:
        """Apply ``execute(broker)`` and journal the signals it returns, in its order, under
        one hold of the broker's lock: those flagged True (executed by it) are bound to its
        changes, the others are journaled as :meth:`journal` does. No settle can commit the
        changes without the bound signals: they land in one transaction or not at all (a
        failed group commit retried apart keeps them with the broker's part).

        Returns the sequence numbers of the bound part and of the free part, to
        :meth:`settle` and ask :meth:`lost` about each. ``execute`` must not raise (it
        handles each signal's failure itself); if it does, nothing is journaled and its
        changes are rolled back with the group (the error is raised here)."""
        with self._apply_lock:
            if self._closed:
                raise StoreError("the host is shutting down; nothing was journaled")
            broker = self._broker
            broker.begin_batch()
            try:
                entries = execute(broker)
            except Exception as e:
                # Its changes are half made and their signals are not journaled: nothing
                # pending may be committed; the next settle rebuilds the broker instead.
                self._broken = f"executing signals in the journal failed: {e}"
                raise
            finally:
                for change in broker.end_batch():
                    change.orders = [copied(o) for o in change.orders]
                    self._pending.append(change)
            bound = [e for e, executed in entries if executed]
            self._new_signals.extend(e for e, _ in entries)
            self._bound_signals.extend(bound)
            self._applied += 1
            bound_seq = self._applied
            free_seq = self._journal_free([])
            self._journal_by[-1] = (free_seq, [e for e, executed in entries if not executed])
            return bound_seq, free_seq

    def settle(self, seq: int) -> None:
        """Return once every request up to ``seq`` is committed; raise :class:`StoreError`
        if request ``seq``'s group failed (nothing of it is stored), or a host state or
        journal row of its own was refused (the rest of its group is stored)."""
        with self._commit_lock:
            if self._durable < seq:
                with self._apply_lock:
                    changes, self._pending = self._pending, []
                    state, self._state = self._state, {}
                    state_by, self._state_by = self._state_by, {}
                    signals, self._signals = list(self._signals.values()), {}
                    new, self._new_signals = self._new_signals, []
                    bound, self._bound_signals = self._bound_signals, []
                    journal_by, self._journal_by = self._journal_by, []
                    broken, self._broken = self._broken, None
                    upto = self._applied
                try:
                    if broken is not None:
                        raise StoreError(broken)
                    self._store.commit_many(changes, state, signals, new)
                except Exception as e:
                    if broken is not None or not self._commit_apart(
                            e, changes, signals, bound, state, state_by, journal_by):
                        log.error("group commit of requests %d-%d failed: %s; rebuilding "
                                  "the broker from the store", self._durable + 1, upto, e)
                        with self._apply_lock:
                            # Requests applied meanwhile built on the lost changes: lost too.
                            upto = self._applied
                            self._pending, self._state, self._signals = [], {}, {}
                            self._state_by, self._new_signals, self._journal_by = {}, [], []
                            self._bound_signals, self._broken = [], None
                            self._lost.append((self._durable + 1, upto, str(e)))
                            self.rebuilds += 1
                            self._broker = self._make_broker()
                        self._durable = upto
                    else:
                        self._durable = upto
                        self._publish(changes)
                else:
                    self._durable = upto
                    self._publish(changes)
        err = self.lost(seq)
        if err is not None:
            raise StoreError(err)

    def settle_later(self, seq: int, then: Callable[[str | None], None]) -> None:
        """Settle request ``seq`` on the broker's commit thread, then call ``then`` there
        with why it was not stored (:meth:`lost`), or None when it is durable. ``then``
        must be quick (hand the answer on) and is always called exactly once."""
        with self._later_ready:
            self._later.append((seq, then))
            if self._committer is None:
                self._committer = threading.Thread(target=self._commit_later,
                                                   name="broker-commit", daemon=True)
                self._committer.start()
            self._later_ready.notify()

    def _commit_later(self) -> None:
        while True:
            with self._later_ready:
                while not self._later:
                    self._later_ready.wait()
                todo, self._later = self._later, []
            broken: str | None = None
            try:
                self.settle(max(seq for seq, _ in todo))
            except StoreError:
                pass  # reported to each caller whose request it was, below
            except Exception as e:  # a bug of ours: every caller still gets an answer
                log.exception("settling requests %s failed", [seq for seq, _ in todo])
                broken = f"the commit failed: {e}"
            for seq, then in todo:
                try:
                    then(broken or self.lost(seq))
                except Exception:
                    log.exception("the answer to request %d failed", seq)

    def _commit_apart(self, error: Exception, changes: list[BrokerChange],
                      signals: list[SignalRecord], bound: list[JournalEntry],
                      state: dict[str, Any],
                      state_by: dict[str, list[int]],
                      journal_by: list[tuple[int, list[JournalEntry]]]
                      ) -> bool:
        """After a failed group commit (under the commit lock): commit the broker's changes
        and signal updates without the host state and journal rows, then each of those
        alone, failing only the requests whose own row was refused. Signals executed in the
        group (``bound``) are part of the broker's. False when the broker's part itself cannot
        be committed (then nothing of the group is stored)."""
        if not state and not any(records for _, records in journal_by):
            return False
        try:
            self._store.commit_many(changes, None, signals, bound)
        except Exception:
            return False
        failed: dict[int, str] = {}
        for key, value in state.items():
            try:
                self._store.commit_many((), {key: value})
            except Exception as e:
                for seq in state_by.get(key, ()):
                    failed[seq] = f"{e}; host state {key!r} of this request was not stored"
        for seq, records in journal_by:
            if not records:
                continue
            try:
                self._store.commit_many((), None, (), records)
            except Exception as e:
                failed[seq] = (f"{e}; the request was not carried out (nothing of it is "
                               "stored)")
        log.warning("group commit failed (%s); committed it again without %d host state "
                    "row(s) and %d journal batch(es), of which %d request(s) failed alone",
                    error, len(state), len(journal_by), len(failed))
        with self._apply_lock:
            self._failed.update(failed)
            while len(self._failed) > FAILED_REQUESTS_KEPT:
                self._failed.popitem(last=False)
        return True

    def lost(self, seq: int) -> str | None:
        """Why settled request ``seq`` (or a row of it) was not stored, or None when it
        was."""
        failed = self._failed.get(seq)
        if failed is not None:
            return failed
        for first, last, err in self._lost:
            if first <= seq <= last:
                return f"{err}; the request was not carried out (nothing of it is stored)"
        return None

    # ------------------------------------------------------------------ updates

    def subscribe(self, account: str | None) -> Subscription:
        """Trade updates of ``account`` (None: every account) from now on."""
        sub = Subscription(self, account)
        with self._subs_lock:
            self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: EventStream[TradeUpdate]) -> None:
        with self._subs_lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def _publish(self, changes: list[BrokerChange]) -> None:
        with self._subs_lock:
            subs = list(self._subs)
        if not subs:
            return
        for change in changes:
            fills_by_order: dict[str, list[Fill]] = {}
            for f in change.fills:
                fills_by_order.setdefault(f.order_id, []).append(f)
            for order in change.orders:
                # A multi-leg order's legs fill in one change: one update per leg's fill,
                # each with the order already filled (never a partial multi-leg).
                for fill in fills_by_order.get(order.id) or [None]:  # type: ignore[list-item]
                    update = TradeUpdate(order, fill)
                    for sub in subs:
                        if sub.account is None or sub.account == order.account:
                            sub.offer(update)
