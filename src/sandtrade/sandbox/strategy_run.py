"""The host side of a live run: one sandboxed worker, the events it is fed, its door.

A :class:`StrategyRun` starts a worker for a stored strategy and hands it events one at a time
(warm-up history, ``start``, then bars with the fills they caused, signals, ``stop``), taken
from the run's own :class:`~sandtrade.sandbox.mailbox.Mailbox`: pending bars go to the worker
in batches (one ``bars`` frame), so a run that fell behind catches up cheaply. While
an event is in flight the worker may ask for broker calls (``call`` frames, see
:mod:`sandtrade.sandbox.worker.live_task`); the run hands each one, as the worker sent it, to
its :class:`Door` and sends back the reply. The door is given by whoever starts the run (the
manager, from the host): this room does not know how the broker is reached, and the worker
never holds what reaches it.

A run has no thread of its own: the worker is booted on a life thread and then driven, with
every other live worker, by the one loop of :mod:`sandtrade.sandbox.dispatch`, which calls
:meth:`StrategyRun.next_event`, :meth:`~StrategyRun.event_done`,
:meth:`~StrategyRun.event_over` and :meth:`~StrategyRun.finish`.

Everything a worker sends is untrusted: a frame of the wrong kind ends the run, and a call's
arguments are the door's to check before they become a request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sandtrade.models import Bar, Fill
from sandtrade.sandbox.dispatch import BarFrames, Outgoing, dispatcher
from sandtrade.sandbox.limits import RunQuotas, WorkerLimits
from sandtrade.sandbox.mailbox import LatencyRing, Mailbox, Pending, Ticket
from sandtrade.sandbox.supervisor import SandboxKilled, Supervisor, Worker, WorkerExit
from sandtrade.sandbox.wire import encode_bars, frame_bytes
from sandtrade.store.base import StrategyRecord

__all__ = ["Door", "Event", "StrategyRun"]

log = logging.getLogger(__name__)


class _Unwatched(threading.Event):
    """The ``done`` of a ``bars`` event: nobody waits on one (the tickets of its bars say
    when it is handled), so none is made, a lock and a condition less on every bar. One
    object for all, always set."""

    def __init__(self) -> None:  # no lock or condition of its own: nothing changes
        pass

    def set(self) -> None:
        pass

    def clear(self) -> None:
        raise RuntimeError("an unwatched event is always set")

    def is_set(self) -> bool:
        return True

    def wait(self, timeout: float | None = None) -> bool:
        return True


_UNWATCHED = _Unwatched()


@dataclass
class Event:
    """One event for a worker; ``done`` is set when the worker has handled it (or is gone)."""

    header: dict[str, Any]
    payload: bytes = b""
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None
    #: The pending bars a ``bars`` event carries.
    batch: list[Pending] | None = None


class Door(Protocol):
    """The trading API as one run sees it: the broker calls of its worker, for one account.

    In a host this is :class:`sandtrade.rpc.door.TradingDoor`, which makes each call through
    the trading API's own methods as the run's principal; the run only passes calls through.
    """

    account: str
    #: Why the run should be stopped for flooding the host with refused calls (None: it
    #: is not); the manager reads it after each event.
    flood: str | None

    def handle(self, op: object, args: object, answer: Callable[[dict[str, Any]], None]
               ) -> None:
        """Hand ``answer`` the ``reply`` frame for a worker's call (``op`` and ``args`` as
        the worker sent them: untrusted), exactly once, now or from another thread."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """What the worker needs to post its orders (their ids' prefix, the positions and
        the point in the fills they include), for its task."""
        ...

    def post(self, op: str, args: object) -> str | None:
        """Make a posted order call (``submit``, ``close``), answering nothing; a line for
        the strategy's log when the order was refused."""
        ...

    def settle(self, then: Callable[[str | None], None]) -> bool:
        """The event's calls answered before they were durable: False when none waits, else
        True and ``then(lost)`` once they are settled (``lost``: why one was not stored)."""
        ...

    def close(self) -> None:
        """Release what the door holds; called once, when the run has ended."""
        ...


def fill_frame(fill: Fill) -> dict[str, Any]:
    """A fill as a worker receives it."""
    return {"id": fill.id, "order_id": fill.order_id, "symbol": fill.symbol,
            "side": fill.side.value, "qty": fill.qty, "price": fill.price,
            "commission": fill.commission, "time": fill.time.isoformat(),
            "kind": fill.kind.value}


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
    :param on_done: called with each ``done`` frame (logs, state, error), one at a time: on
        the live runs' loop, so it must not block, except for a frame that carries a
        ``state_json``, which it may wait to commit (on a door thread; the next event waits).
    :param on_exit: called once when the worker is gone, with how it ended.
    """

    def __init__(self, record: StrategyRecord, *, supervisor: Supervisor, door: Door,
                 state: dict[str, Any], history: list[Bar],
                 on_done: Callable[[StrategyRun, dict[str, Any]], None],
                 on_exit: Callable[[StrategyRun], None],
                 mailbox: Mailbox | None = None, quotas: RunQuotas | None = None,
                 modules: list[str] | None = None) -> None:
        self.record = record
        #: What the run may do per event and per second (its account's quotas).
        self.quotas = quotas or WorkerLimits().run_quotas()
        #: What this run's strategy may import, narrowed for its account (None: the host's).
        self.modules = modules
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
        # A strategy of several symbols: the items of the timestamp being published, held
        # until it is complete (a bar of each symbol) or a later time comes (see release).
        self._held: list[Pending] = []
        self._held_time: datetime | None = None
        self._held_symbols: set[str] = set()
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
        self._intro: deque[Event] = deque()
        self._ended = threading.Event()

    def start(self) -> StrategyRun:
        """Boot the worker (on a life thread: a worker dies with the thread that spawned it,
        so never on a short-lived one) and hand it to the live runs' loop."""
        dispatcher().life.submit(self._boot)
        return self

    def join(self, timeout: float | None = None) -> None:
        """Wait until the run has ended and its end is recorded (``on_exit`` returned)."""
        self._ended.wait(timeout)

    def submit(self, header: dict[str, Any], payload: bytes = b"", *,
               skip_bars: bool = False) -> Event:
        """Queue a control event (a signal, ``stop``); a run that has ended answers at once
        with an error."""
        event = Event(header, payload)
        if not (self.alive and self.mailbox.put(event, skip_bars=skip_bars)):
            event.error = "the strategy is not running"
            event.done.set()
        else:
            dispatcher().wake(self)
        return event

    def offer_bar(self, bar: Bar, mine: list[Fill], ticket: Ticket | None) -> bool:
        """Queue ``bar`` (when the run trades its symbol) with ``mine``, the fills of this
        run's account on it; False when the run has nothing to do with either, or could not
        take it (ended, or past its backlog under the ``stop`` policy: see
        :attr:`Mailbox.overflowed`)."""
        wants = bar.symbol in self.index
        if not (wants or mine):
            return False
        pending = Pending(bar if wants else None, mine)
        if len(self.symbols) > 1 and (wants or self._held):
            # One timestamp's bars go to the worker together, as a back-test groups them.
            if self._held and self._held_time != bar.time:
                self.release(ticket)  # late: the feed's flush_before comes first
            if not self.alive:
                return False
            self._held.append(pending)
            self._held_time = bar.time
            if wants:
                self._held_symbols.add(bar.symbol)
            if len(self._held_symbols) == len(self.symbols):
                return self.release(ticket)
            return True
        if ticket is not None:
            ticket.hold()
            pending.tickets.append(ticket)
        if not self.alive:
            for t in pending.tickets:
                t.finish()
            return False
        if not self.mailbox.put_bar(pending):
            return False
        dispatcher().wake(self)
        return True

    def holds_before(self, time: datetime) -> bool:
        """Whether the run holds a timestamp's items from before ``time``."""
        return bool(self._held) and self._held_time is not None and self._held_time < time

    def release(self, ticket: Ticket | None) -> bool:
        """Queue the held timestamp's items as one group (``ticket`` done when the worker has
        handled it); False when there was none or the run could not take it."""
        held, self._held = self._held, []
        self._held_time = None
        self._held_symbols = set()
        if not held:
            return False
        if ticket is not None:
            ticket.hold()
            held[-1].tickets.append(ticket)
        if not self.alive:
            for t in held[-1].tickets:
                t.finish()
            return False
        if not self.mailbox.put_group(held):
            return False
        dispatcher().wake(self)
        return True

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

    # ------------------------------------------------------------------ driven by the loop

    def _boot(self) -> None:
        """On a life thread: start the worker, then the loop drives it."""
        task = {"task": "live", "path": f"{self.name}.py", "source": self.record.source,
                "params": self.record.params, "symbols": list(self.symbols),
                "state": self._state, "quotas": list(self.quotas)}
        if self.modules is not None:
            task["modules"] = list(self.modules)
        try:
            task.update(self.door.snapshot())
        except Exception as e:  # the broker is shut down, or a bug of ours
            self.finish(_HostFailure(f"{self.name}: the account could not be read: {e}"), None)
            return
        try:
            self.worker = self._supervisor.start(task, name=self.name, wall_limit=False,
                                                 threads=False)
        except SandboxKilled as e:
            self.finish(e, None)
            return
        except Exception as e:  # a bug of ours: report it rather than lose the run
            log.exception("strategy %s: run failed", self.name)
            self.finish(_HostFailure(f"{self.name}: the host side of the run failed: {e}"),
                        None)
            return
        if not self.alive:  # killed while it booted
            self.worker.kill("exit", "the run ended before its worker started")
            self.finish(None, None)
            return
        if self._history:
            count, payload = encode_bars(self._history, self.index)
            self._intro.append(Event({"type": "history", "count": count}, payload))
        self._history = []
        self._intro.append(Event({"type": "start"}))
        dispatcher().attach(self, self.worker)

    def next_event(self, bars: BarFrames) -> Outgoing | None:
        """The next event for the worker (the warm-up and ``start`` first, then what the
        mailbox holds), or None when there is none now. On the loop."""
        if self._intro:
            event = self._intro.popleft()
            return Outgoing(event, frame_bytes(event.header, event.payload),
                            hook_of(event.header))
        item = self.mailbox.take(timeout=0)
        if item is None:
            return None
        if isinstance(item, list):
            return self._bars_event(item, bars)
        assert isinstance(item, Event)
        return Outgoing(item, frame_bytes(item.header, item.payload), hook_of(item.header))

    def _bars_event(self, batch: list[Pending], bars: BarFrames) -> Outgoing:
        """Pending bars as one ``bars`` event: for each, its fills (``on_fill``) then the bar
        (``on_bar``). One bar without fills is encoded once for every run of its symbol."""
        self.event_items = len(batch)
        first = batch[0]
        if len(batch) == 1 and first.bar is not None and not first.fills:
            event = Event({"type": "bars", "count": 1, "items": [[True, []]]}, done=_UNWATCHED,
                          batch=batch)
            return Outgoing(event, bars.frame(first.bar, self.index[first.bar.symbol]),
                            "on_bar")
        count, payload = encode_bars([p.bar for p in batch if p.bar is not None], self.index)
        items = [[p.bar is not None, [fill_frame(f) for f in p.fills], *([1] if p.joined else [])]
                 for p in batch]
        event = Event({"type": "bars", "count": count, "items": items}, payload, _UNWATCHED,
                      batch=batch)
        return Outgoing(event, frame_bytes(event.header, payload), hook_of(event.header))

    def call(self, op: object, args: object, answer: Callable[[dict[str, Any]], None]
             ) -> None:
        """A worker's broker call, through the door (on the loop or a door thread);
        ``answer`` gets the reply (a broker call's before it is durable: the event ends only
        once it is, :meth:`settle_calls`)."""
        self.door.handle(op, args, answer)

    def post(self, op: str, args: object) -> str | None:
        """A worker's posted order call, through the door (on the loop)."""
        return self.door.post(op, args)

    def settle_calls(self, then: Callable[[str | None], None]) -> bool:
        """Wait for the event's calls to be durable before it ends (see the door)."""
        return self.door.settle(then)

    def event_done(self, event: Event, header: dict[str, Any]) -> None:
        """The worker's ``done`` for ``event``: to ``on_done`` (on the loop, or on a door
        thread when it carries a state to commit)."""
        self._on_done(self, header)

    def event_over(self, event: Event) -> bool:
        """Account for a finished event; False when the run ends after it (``stop``, or
        the run was given up on: its worker is killed)."""
        self._settle(event)
        if event.header["type"] == "start":
            self.started.set()
        if event.header["type"] == "stop":
            return False
        if self.give_up is not None:
            assert self.worker is not None
            self.worker.kill("errors", self.give_up)
            return False
        return True

    def _settle(self, event: Event) -> None:
        """An event is over: the latency and tickets of its bars, and its waiters."""
        if event.batch is not None:
            self.event_items = 1
            now = time.monotonic()
            for pending in event.batch:
                self.latency.record(now - pending.published)
                for ticket in pending.tickets:
                    ticket.finish()
        event.done.set()

    def finish(self, cause: BaseException | None, event: Event | None) -> None:
        """The run is over (on a life thread): why, the worker's exit, and ``on_exit``."""
        try:
            if cause is not None:
                if isinstance(cause, SandboxKilled | _HostFailure):
                    self.failure = str(cause)
                elif self.worker is not None:
                    self.failure = str(self.worker.death(cause))
                else:
                    self.failure = f"{self.name}: {cause}"
            if event is not None:
                event.error = self.failure or "the strategy is not running"
                self._settle(event)
        finally:
            self.alive = False
            try:
                if self.worker is not None:
                    self.exit = self.worker.wait_exit()
                    self.worker.close()
                self._drain()
                self.started.set()
                self.door.close()
                self._on_exit(self)
            finally:
                self._ended.set()

    def _drain(self) -> None:
        """Close the mailbox and answer what was pending: nobody waits on an ended run."""
        bars, events = self.mailbox.close()
        for pending in bars:
            for ticket in pending.tickets:
                ticket.finish()
        for event in [*self._intro, *events]:
            assert isinstance(event, Event)
            event.error = event.error or "the strategy is not running"
            event.done.set()
        self._intro.clear()


class _HostFailure(Exception):
    """A bug of the host's side of a run (reported as the run's failure)."""
