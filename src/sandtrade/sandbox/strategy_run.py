"""The host side of a live run: one sandboxed worker, the thread that feeds it, its door.

A :class:`StrategyRun` starts a worker for a stored strategy and hands it events one at a time
(warm-up history, ``start``, then bars with the fills they caused, signals, ``stop``). While
an event is in flight the worker may ask for broker calls (``call`` frames, see
:mod:`sandtrade.sandbox.worker.live_task`); the run hands each one, as the worker sent it, to
its :class:`Door` and sends back the reply. The door is given by whoever starts the run (the
manager, from the host): this room does not know how the broker is reached, and the worker
never holds what reaches it.

Everything a worker sends is untrusted: a frame of the wrong kind ends the run, and a call's
arguments are the door's to check before they become a request.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sandtrade.models import Bar, Fill
from sandtrade.sandbox.supervisor import SandboxKilled, Supervisor, Worker, WorkerExit
from sandtrade.sandbox.wire import encode_bars, untrusted_text
from sandtrade.store.base import StrategyRecord

__all__ = ["Door", "Event", "StrategyRun"]

log = logging.getLogger(__name__)


@dataclass
class Event:
    """One event for a worker; ``done`` is set when the worker has handled it (or is gone)."""

    header: dict[str, Any]
    payload: bytes = b""
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


class Door(Protocol):
    """The trading API as one run sees it: the broker calls of its worker, for one account.

    In a host this is :class:`sandtrade.rpc.door.TradingDoor`, which makes each call through
    the host's own gRPC server (its docstring says why); the run only passes calls through.
    """

    account: str

    def handle(self, op: object, args: object) -> dict[str, Any]:
        """The ``reply`` frame for a worker's call (``op`` and ``args`` as the worker sent
        them: untrusted)."""
        ...

    def close(self) -> None:
        """Release what the door holds; called once, when the run has ended."""
        ...


def fill_frame(fill: Fill) -> dict[str, Any]:
    """A fill as a worker receives it."""
    return {"id": fill.id, "order_id": fill.order_id, "symbol": fill.symbol,
            "side": fill.side.value, "qty": fill.qty, "price": fill.price,
            "commission": fill.commission, "time": fill.time.isoformat()}


class StrategyRun:
    """One live run of a stored strategy in its own sandboxed worker.

    :param history: bars to warm the strategy's indicators with before ``on_start`` (oldest
        first); taken when the run is registered, so no bar is both history and an event.
    :param on_done: called with each ``done`` frame (logs, state, error), on the run's thread.
    :param on_exit: called once when the worker is gone, with how it ended.
    """

    def __init__(self, record: StrategyRecord, *, supervisor: Supervisor, door: Door,
                 state: dict[str, Any], history: list[Bar],
                 on_done: Callable[[StrategyRun, dict[str, Any]], None],
                 on_exit: Callable[[StrategyRun], None]) -> None:
        self.record = record
        self.name = record.name
        self.account = record.account
        self.symbols = tuple(record.symbols)
        self.index = {s: k for k, s in enumerate(self.symbols)}
        self._supervisor = supervisor
        self.door = door
        self._state = state
        self._history = history
        self._on_done = on_done
        self._on_exit = on_exit
        self.inbox: queue.Queue[Event] = queue.Queue()
        self.worker: Worker | None = None
        self.exit: WorkerExit | None = None
        self.failure: str | None = None
        self.stopping = False
        #: The id of the run's token (the manager revokes it when the run ends).
        self.token_id: str | None = None
        self.created = time.monotonic()
        #: Set (by the manager) to end the run after the current event, with this reason.
        self.give_up: str | None = None
        self.alive = True
        self.started = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"strategy-{self.name}",
                                        daemon=True)

    def start(self) -> StrategyRun:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def submit(self, header: dict[str, Any], payload: bytes = b"") -> Event:
        """Queue an event; a run that has ended answers at once with an error."""
        event = Event(header, payload)
        if not self.alive:
            event.error = "the strategy is not running"
            event.done.set()
            return event
        self.inbox.put(event)
        if not self.alive:  # ended meanwhile: make sure nobody waits on it
            self._drain()
        return event

    def bar_event(self, bar: Bar, fills: Iterable[Fill]) -> dict[str, Any] | None:
        """The ``bar`` event for ``bar`` and this account's ``fills``, or None when the run
        has nothing to do with either."""
        mine = [fill_frame(f) for f in fills if f.account == self.account]
        wants = bar.symbol in self.index
        if not (wants or mine):
            return None
        return {"type": "bar", "count": 1 if wants else 0, "fills": mine}

    def send_bar(self, bar: Bar, fills: Iterable[Fill]) -> Event | None:
        header = self.bar_event(bar, fills)
        if header is None:
            return None
        payload = encode_bars([bar], self.index)[1] if header["count"] else b""
        return self.submit(header, payload)

    def stop(self) -> Event:
        """Ask the worker to run ``on_stop`` and end."""
        self.stopping = True
        return self.submit({"type": "stop"})

    def kill(self, reason: str, detail: str) -> None:
        """End the worker now, without ``on_stop``."""
        self.stopping = True
        if self.worker is not None:
            self.worker.kill(reason, detail)
        else:
            self.alive = False
            self._drain()

    # ------------------------------------------------------------------ the run's thread

    def _main(self) -> None:
        task = {"task": "live", "path": f"{self.name}.py", "source": self.record.source,
                "params": self.record.params, "symbols": list(self.symbols),
                "state": self._state}
        try:
            self.worker = self._supervisor.start(task, name=self.name, wall_limit=False)
            if self._history:
                count, payload = encode_bars(self._history, self.index)
                self._run_event(Event({"type": "history", "count": count}, payload))
            self._history = []
            self._run_event(Event({"type": "start"}))
            self.started.set()
            while True:
                event = self.inbox.get()
                self._run_event(event)
                if event.header["type"] == "stop":
                    break
                if self.give_up is not None:
                    self.worker.kill("errors", self.give_up)
                    break
        except SandboxKilled as e:
            self.failure = str(e)
        except Exception as e:  # a bug of ours: report it rather than lose the thread
            log.exception("strategy %s: run failed", self.name)
            self.failure = f"{self.name}: the host side of the run failed: {e}"
        finally:
            self.alive = False
            if self.worker is not None:
                self.exit = self.worker.wait_exit()
                self.worker.close()
            self._drain()
            self.started.set()
            self.door.close()
            self._on_exit(self)

    def _drain(self) -> None:
        while True:
            try:
                event = self.inbox.get_nowait()
            except queue.Empty:
                return
            event.error = event.error or "the strategy is not running"
            event.done.set()

    def _run_event(self, event: Event) -> None:
        worker = self.worker
        assert worker is not None
        try:
            worker.send(event.header, event.payload)
            worker.expect_progress = True
            while True:
                header, _ = worker.recv()
                kind = header.get("type")
                if kind == "call":
                    worker.send(self.door.handle(header.get("op"), header.get("args")))
                elif kind == "done":
                    worker.expect_progress = False
                    error = header.get("error")
                    event.error = None if error is None else untrusted_text(str(error), 16_000)
                    self._on_done(self, header)
                    return
                elif kind == "error":  # the worker could not go on (out of memory, ...)
                    message = untrusted_text(str(header.get("message", "failed")), 16_000)
                    reason = "memory" if header.get("reason") == "memory" else "error"
                    worker.kill(reason, message)
                    raise SandboxKilled(f"{self.name}: {message}", reason)
                else:
                    worker.kill("protocol", f"unexpected frame {kind!r} during an event")
        except BaseException as e:
            event.error = str(e)
            raise
        finally:
            worker.expect_progress = False
            event.done.set()

