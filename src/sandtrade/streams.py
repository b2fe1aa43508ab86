"""A bounded, closable stream of events from a producer thread to one consumer.

The broker's trade updates and the market hub's live bars reach gRPC streams through these.
A consumer that falls more than ``backlog`` events behind is cut off (``overflowed``) rather
than letting the host's memory grow without bound; its stream then ends with an error and the
client reconnects.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["EventStream"]

T = TypeVar("T")


class EventStream(Generic[T]):
    """Events in the order they were offered; ``on_close`` runs once when the stream ends."""

    def __init__(self, backlog: int, on_close: Callable[[EventStream[T]], None]) -> None:
        self._queue: queue.Queue[T | None] = queue.Queue(backlog)
        self._on_close = on_close
        self.overflowed = False
        self.closed = False

    def offer(self, event: T) -> None:
        """Hand over an event (producer side); never blocks."""
        if self.closed:
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.overflowed = True
            self.close()

    def get(self, timeout: float | None = None) -> T | None:
        """The next event; None when ``timeout`` passed or the stream ended."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop receiving; a waiting :meth:`get` returns None."""
        if self.closed:
            return
        self.closed = True
        self._on_close(self)
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(None)
