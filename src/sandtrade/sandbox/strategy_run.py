"""The host side of a live run: one sandboxed worker, the thread that feeds it, its door.

A :class:`StrategyRun` starts a worker for a stored strategy and hands it events one at a time
(warm-up history, ``start``, then bars with the fills they caused, signals, ``stop``), taken
from the run's own :class:`~sandtrade.sandbox.mailbox.Mailbox`: pending bars go to the worker
in batches (one ``bars`` frame), so a run that fell behind catches up cheaply. While
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
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sandtrade.models import Bar, Fill
from sandtrade.sandbox.mailbox import LatencyRing, Mailbox, Pending, Ticket
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
    #: Why the run should be stopped for flooding the host with refused calls (None: it
    #: is not); the manager reads it after each event.
    flood: str | None

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


def hook_of(header: dict[str, Any]) -> str:
    """The hook(s) an event runs, as a kill reason or a quota names them."""
    kind = header.get("type")
    if kind == "bars":
        items = header.get("items") or []
        bars = any(item[0] for item in items)
        fills = any(item[1] for item in items)
        return "on_fill/on_bar" if bars and fills else "on_bar" if bars else "on_fill"
    return _HOOKS.get(str(kind), f"the {kind} event")


_HOOKS = {"history": "the warm-up", "start": "on_start", "signal": "on_signal",
          "stop": "on_stop"}


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
                 on_exit: Callable[[StrategyRun], None],
                 mailbox: Mailbox | None = None) -> None:
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
        self.mailbox = mailbox or Mailbox()
        #: Publish → done of this run's latest bars.
        self.latency = LatencyRing()
        #: Market items in the event in flight (the bars of a batch; 1 for other events).
        self.event_items = 1
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

    def submit(self, header: dict[str, Any], payload: bytes = b"", *,
               skip_bars: bool = False) -> Event:
        """Queue a control event (a signal, ``stop``); a run that has ended answers at once
        with an error."""
        event = Event(header, payload)
        if not (self.alive and self.mailbox.put(event, skip_bars=skip_bars)):
            event.error = "the strategy is not running"
            event.done.set()
        return event

    def offer_bar(self, bar: Bar, fills: Iterable[Fill], ticket: Ticket | None) -> bool:
        """Queue ``bar`` (when the run trades its symbol) with this account's ``fills``;
        False when the run has nothing to do with either, or could not take it (ended, or
        past its backlog under the ``stop`` policy: see :attr:`Mailbox.overflowed`)."""
        mine = [f for f in fills if f.account == self.account]
        wants = bar.symbol in self.index
        if not (wants or mine):
            return False
        pending = Pending(bar if wants else None, mine)
        if ticket is not None:
            ticket.hold()
            pending.tickets.append(ticket)
        if not self.alive:
            for t in pending.tickets:
                t.finish()
            return False
        return self.mailbox.put_bar(pending)

    def stop(self) -> Event:
        """Ask the worker to run ``on_stop`` and end."""
        self.stopping = True
        return self.submit({"type": "stop"}, skip_bars=True)

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
                item = self.mailbox.take()
                if item is None:
                    break
                if isinstance(item, list):
                    self._run_bars(item)
                else:
                    assert isinstance(item, Event)
                    self._run_event(item)
                    if item.header["type"] == "stop":
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
        """Close the mailbox and answer what was pending: nobody waits on an ended run."""
        bars, events = self.mailbox.close()
        for pending in bars:
            for ticket in pending.tickets:
                ticket.finish()
        for event in events:
            assert isinstance(event, Event)
            event.error = event.error or "the strategy is not running"
            event.done.set()

    def _run_bars(self, batch: list[Pending]) -> None:
        """Hand pending bars to the worker as one ``bars`` event: for each, its fills
        (``on_fill``) then the bar (``on_bar``)."""
        try:
            count, payload = encode_bars([p.bar for p in batch if p.bar is not None],
                                         self.index)
            items = [[p.bar is not None, [fill_frame(f) for f in p.fills]] for p in batch]
            self.event_items = len(batch)
            self._run_event(Event({"type": "bars", "count": count, "items": items}, payload))
        finally:
            self.event_items = 1
            now = time.monotonic()
            for pending in batch:
                self.latency.record(now - pending.published)
                for ticket in pending.tickets:
                    ticket.finish()

    def _run_event(self, event: Event) -> None:
        worker = self.worker
        assert worker is not None
        hook = hook_of(event.header)
        quota = worker.limits.ctx_calls_per_event
        try:
            # Counted here, never by the worker: the count bounds what the broker does for
            # one event, and names the calls in a kill for the hook budget.
            worker.event_hook, worker.event_calls = hook, 0
            worker.send(event.header, event.payload)
            worker.expect_progress = True
            while True:
                header, _ = worker.recv()
                kind = header.get("type")
                if kind == "call":
                    worker.event_calls += 1
                    if worker.event_calls > quota:
                        worker.send({"type": "reply", "error": (
                            f"quota: {quota:,} ctx calls in one {hook} (ctx_calls_per_event); "
                            "the rest of this event's calls are refused (RESOURCE_EXHAUSTED)")})
                        continue
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

