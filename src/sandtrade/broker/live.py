"""The paper broker in a live host: one thread owns it, and changes are committed in groups.

Every request (an order, a cancel, a bar from the market hub, a read) is a function run on the
broker's own thread, in arrival order, so no two requests ever interleave. The thread takes
whatever requests are waiting (up to ``max_batch``), runs them, writes all their changes in one
transaction, and only then answers them: an order is durable before it is acknowledged, and a
burst of orders costs one fsync instead of one each (group commit).

When a commit fails, nothing of the batch is acknowledged (each request gets the error) and the
broker is rebuilt from the store, which holds exactly what was acknowledged before.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from sandtrade.broker.paper import PaperBroker
from sandtrade.errors import StoreError
from sandtrade.models import Fill, Order
from sandtrade.store.base import BrokerChange, Store

__all__ = ["LiveBroker", "Subscription", "TradeUpdate"]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: Updates a subscriber may fall behind by before it is cut off (its stream then ends with an
#: error instead of the host's memory growing without bound).
SUBSCRIBER_BACKLOG = 10_000


@dataclass(frozen=True, slots=True)
class TradeUpdate:
    """An order after a change, and the fill that caused it when it was a fill."""

    order: Order
    fill: Fill | None = None


class Subscription:
    """Trade updates of one account (or of every account), in commit order."""

    def __init__(self, owner: LiveBroker, account: str | None) -> None:
        self._owner = owner
        self.account = account
        self._queue: queue.Queue[TradeUpdate | None] = queue.Queue(SUBSCRIBER_BACKLOG)
        self.overflowed = False
        self.closed = False

    def _offer(self, update: TradeUpdate) -> None:
        if self.closed:
            return
        try:
            self._queue.put_nowait(update)
        except queue.Full:
            self.overflowed = True
            self.close()

    def get(self, timeout: float | None = None) -> TradeUpdate | None:
        """The next update; None when ``timeout`` passed or the subscription ended."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop receiving; a waiting :meth:`get` returns None."""
        if self.closed:
            return
        self.closed = True
        self._owner._unsubscribe(self)
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)


_STOP = object()


class LiveBroker:
    """Serialises every use of a :class:`PaperBroker` onto one thread, with group commit.

    :param make_broker: builds the broker, restored from ``store`` (called again to rebuild
        it after a failed commit).
    :param store: where each batch's changes are committed.
    :param max_batch: most requests committed in one transaction.
    """

    def __init__(self, make_broker: Callable[[], PaperBroker], store: Store, *,
                 max_batch: int = 512) -> None:
        self._make_broker = make_broker
        self._store = store
        self._max_batch = max_batch
        self._broker = make_broker()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._subs: list[Subscription] = []
        self._subs_lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="sandtrade-broker", daemon=True)
        self._started = False
        self._closed = False
        self._state: dict[str, Any] = {}
        self.batches = 0
        self.requests = 0

    def start(self) -> LiveBroker:
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def close(self) -> None:
        """Finish the requests already queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        if self._started:
            self._queue.put(_STOP)
            self._thread.join()
        with self._subs_lock:
            subs = list(self._subs)
        for sub in subs:
            sub.close()

    def __enter__(self) -> LiveBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ requests

    def call_async(self, fn: Callable[[PaperBroker], T]) -> Future[T]:
        """Run ``fn(broker)`` on the broker thread; the future resolves once its changes are
        durable (or with the exception ``fn`` or the commit raised)."""
        if self._closed:
            raise StoreError("the broker is shut down; nothing was done")
        fut: Future[T] = Future()
        self._queue.put((fn, fut))
        return fut

    def note_state(self, key: str, value: Any) -> None:
        """Commit ``key = value`` (host state, JSON) with the current batch's changes. Call it
        from inside a request function, on the broker thread."""
        self._state[key] = value

    def call(self, fn: Callable[[PaperBroker], T], timeout: float | None = None) -> T:
        """:meth:`call_async` and wait for the answer."""
        return self.call_async(fn).result(timeout)

    # ------------------------------------------------------------------ updates

    def subscribe(self, account: str | None) -> Subscription:
        """Trade updates of ``account`` (None: every account) from now on."""
        sub = Subscription(self, account)
        with self._subs_lock:
            self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._subs_lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def _publish(self, changes: list[BrokerChange]) -> None:
        with self._subs_lock:
            subs = list(self._subs)
        if not subs:
            return
        for change in changes:
            fill_by_order = {f.order_id: f for f in change.fills}
            for order in change.orders:
                # The order object keeps changing on the broker thread: hand out a copy.
                update = TradeUpdate(order.model_copy(), fill_by_order.get(order.id))
                for sub in subs:
                    if sub.account is None or sub.account == order.account:
                        sub._offer(update)

    # ------------------------------------------------------------------ the thread

    def _loop(self) -> None:
        q = self._queue
        while True:
            item = q.get()
            stop = item is _STOP
            items = [] if stop else [item]
            while len(items) < self._max_batch:
                try:
                    nxt = q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                items.append(nxt)
            if items:
                self._run_batch(items)
            if stop:
                return

    def _run_batch(self, items: list[tuple[Callable[[PaperBroker], Any], Future[Any]]]) -> None:
        broker = self._broker
        broker.begin_batch()
        outcomes: list[tuple[Future[Any], Any, BaseException | None]] = []
        for fn, fut in items:
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                outcomes.append((fut, fn(broker), None))
            except Exception as e:  # handed to the caller; the thread goes on
                outcomes.append((fut, None, e))
        changes = broker.end_batch()
        state, self._state = self._state, {}
        try:
            self._store.commit_many(changes, state)
        except Exception as e:
            log.error("group commit of %d requests failed: %s; rebuilding the broker from "
                      "the store", len(outcomes), e)
            err = StoreError(f"{e}; the request was not carried out (nothing of it is stored)")
            for fut, _, _ in outcomes:
                fut.set_exception(err)
            self._broker = self._make_broker()
            return
        self.batches += 1
        self.requests += len(outcomes)
        self._publish(changes)
        for fut, result, error in outcomes:
            if error is None:
                fut.set_result(result)
            else:
                fut.set_exception(error)
