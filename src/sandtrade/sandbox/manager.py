"""Strategies in a live host: upload, start, stop, watch, and resume after a restart.

The :class:`StrategyManager` keeps uploaded strategies in the store (source, account, symbols,
parameters, and whether each should be running), starts each running one in its own sandboxed
worker (:class:`~sandtrade.sandbox.strategy_run.StrategyRun`) and feeds it the market in lockstep:
for every bar, the broker works its orders first (fills at the open), then each strategy
that trades the bar's symbol (or got a fill) gets the bar and its fills, and the feed waits
until every such strategy has handled it (within the per-event budget) before the next bar.
So a replay at maximum speed gives a strategy exactly the sequence of a back-test, and the
same trades.

A strategy's ``ctx.state`` is committed after every event that changed it, durably, before the
next event. A worker that dies (a limit, a crash) is started again with backoff (1, 2, 4 … 60 s,
at most :data:`MAX_RESTARTS` times in a row); a strategy whose hooks fail
:data:`MAX_ERRORS_IN_A_ROW` events in a row is stopped as failed. A host started again
resumes every strategy that was running, warmed up with the hub's recent bars so its
indicators continue where they were.

What is delivered at most once: if the host dies between committing a bar and a strategy
finishing it, that strategy never sees that bar (the broker's work on it is committed, and a
bar is never worked twice).
"""

from __future__ import annotations

import hashlib
import heapq
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandtrade.auth import ACCOUNT_RE, TokenAuthority
from sandtrade.broker.durable import DurableBroker
from sandtrade.broker.fills import FillProfile
from sandtrade.errors import (
    CheckFailed,
    Conflict,
    Diagnostic,
    InvalidField,
    NotFound,
    SandtradeError,
    StrategyError,
)
from sandtrade.market.hub import MarketHub
from sandtrade.models import Account, Bar, Fill
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.runner import check_source_in_sandbox
from sandtrade.sandbox.strategy_run import Door, Event, StrategyRun
from sandtrade.sandbox.supervisor import Supervisor
from sandtrade.sandbox.wire import untrusted_text
from sandtrade.store.base import Store, StrategyRecord
from sandtrade.strategy.loader import resolve_params
from sandtrade.streams import EventStream

__all__ = ["LogLine", "StrategyManager", "StrategyStatus", "parse_diagnostics"]

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
MAX_SOURCE_BYTES = 1 << 20
MAX_SYMBOLS = 100
LOG_LINES = 5000
MAX_LINE = 4000
MAX_RESTARTS = 5
MAX_ERRORS_IN_A_ROW = 20
#: Characters of a worker's error or reason the host keeps.
MAX_ERROR = 16_000
#: A strategy's dropped log lines are noted at most this often, in seconds.
LOG_FLOOD_NOTE_SECONDS = 10.0
#: A run that lived this long resets the backoff: its next death starts again at 1 s.
STABLE_SECONDS = 60.0
#: Bars of each symbol a starting strategy is warmed up with (ctx keeps 512 by default).
WARMUP_BARS = 512
#: Limits of a live worker: no wall-time limit; CPU over its whole life, since a worker
#: that reaches it is started again with backoff.
LIVE_LIMITS = WorkerLimits(cpu_seconds=3600)


def state_key(name: str) -> str:
    """The host-state key of a strategy's ``ctx.state``."""
    return f"strategy:{name}:state"


_DIAG_RE = re.compile(r"^(?P<file>[^\s:][^:\n]*?)(?::(?P<line>\d+))?: (?P<msg>.+)$")


def parse_diagnostics(text: str, fallback: str) -> list[Diagnostic]:
    """``file:line: message`` lines (a check's error) as diagnostics; traceback lines that
    follow a diagnostic are appended to it."""
    out: list[Diagnostic] = []
    for line in text.splitlines():
        m = _DIAG_RE.match(line)
        if m and not line.startswith(" "):
            out.append(Diagnostic(m["file"], int(m["line"] or 0), m["msg"]))
        elif out:
            last = out[-1]
            out[-1] = Diagnostic(last.file, last.line, f"{last.message}\n{line}")
        elif line.strip():
            out.append(Diagnostic(fallback, 0, line.strip()))
    return out


@dataclass(frozen=True)
class LogLine:
    """A line a strategy logged (``print``, ``ctx.log``) or the host logged about it.

    ``origin`` says whose it is: ``strategy`` (its own text, which may read like anything),
    ``host`` (the host's note about it) or ``error`` (one of its hooks failed). The line's text
    never says so, so a strategy cannot pass its words off as the host's.
    """

    time: datetime
    line: str
    origin: str = "strategy"  # strategy | host | error


@dataclass
class StrategyStatus:
    """What the host knows of a strategy's life (kept in memory)."""

    state: str = "stopped"  # stopped | starting | running | failed
    restarts: int = 0
    kill_reason: str = ""
    last_errors: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    errors_in_a_row: int = 0
    backoff: int = 0
    cpu_seconds: float = 0.0
    rss_bytes: int = 0
    logs: deque[LogLine] = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    followers: list[EventStream[LogLine]] = field(default_factory=list)
    #: Log lines its workers dropped (the rate or an event's cap) not yet noted, and when the
    #: last such note was (monotonic seconds).
    log_dropped: int = 0
    log_flood_noted: float = float("-inf")


class StrategyManager:
    """Uploaded strategies and their live runs, in one host.

    :param open_door: the door a run's broker calls go through, given the run's token, its
        account and its run id (the host passes :class:`sandtrade.rpc.door.TradingDoor`); the
        token is issued here for that run and revoked when the run ends.
    """

    def __init__(self, *, store: Store, live: DurableBroker, hub: MarketHub,
                 auth: TokenAuthority, cash: float, symbols: Callable[[], Iterable[str]],
                 open_door: Callable[[str, str, str], Door],
                 limits: WorkerLimits = LIVE_LIMITS,
                 fill_profiles: Iterable[type[FillProfile]] = ()) -> None:
        self.store = store
        self.live = live
        self.hub = hub
        self.auth = auth
        self.cash = cash
        self._known_symbols = symbols
        self._open_door = open_door
        self.limits = limits
        # A spare worker stays booted: starting a strategy, restarting a crashed one and an
        # RPC back-test skip the worker's ~140 ms boot. Its workers import the plugins' fill
        # profiles (an RPC back-test may select one).
        self.supervisor = Supervisor(limits, keep_spare=True, fill_profiles=fill_profiles)
        self._lock = threading.RLock()
        self._runs: dict[str, StrategyRun] = {}
        self._status: dict[str, StrategyStatus] = {}
        self._timers: dict[str, threading.Timer] = {}
        self._last_bar: dict[str, datetime] = {}
        self._closing = False

    # ------------------------------------------------------------------ operator actions

    def upload(self, name: str, source: str, *, account: str, symbols: list[str],
               params: dict[str, Any]) -> StrategyRecord:
        """Check and store a strategy (replacing a stopped one of the same name; its
        ``ctx.state`` is kept). Raises :class:`InvalidField`, :class:`Conflict` or
        :class:`CheckFailed`."""
        if not NAME_RE.fullmatch(name):
            raise InvalidField("name", f"{name!r} is not a strategy name: use 1-64 letters, "
                               "digits, '-' or '_', starting with a letter or digit")
        if not source.strip():
            raise InvalidField("source", "required: the strategy's Python source")
        if len(source.encode()) > MAX_SOURCE_BYTES:
            raise InvalidField("source", f"larger than {MAX_SOURCE_BYTES:,} bytes")
        if not ACCOUNT_RE.fullmatch(account):
            raise InvalidField("account", f"{account!r} is not an account name")
        if not symbols:
            raise InvalidField("symbols", "name at least one symbol whose bars the strategy "
                               "receives")
        if len(symbols) > MAX_SYMBOLS:
            raise InvalidField("symbols", f"at most {MAX_SYMBOLS} symbols")
        known = set(self._known_symbols())
        for k, s in enumerate(symbols):
            if s not in known:
                raise InvalidField(f"symbols[{k}]", f"unknown symbol {s!r} (the market has: "
                                   f"{', '.join(sorted(known)) or 'none'})")
        if len(set(symbols)) != len(symbols):
            raise InvalidField("symbols", "a symbol is named twice")
        with self._lock:
            if self._is_running(name):
                raise Conflict(f"strategy {name!r} is running; stop it before uploading a "
                               "new version")
        path = f"{name}.py"
        try:
            _, defaults = check_source_in_sandbox(source, path, self.limits)
        except StrategyError as e:
            raise CheckFailed(f"strategy {name!r}", parse_diagnostics(
                untrusted_text(str(e), MAX_ERROR), path)) from None
        try:
            resolve_params(defaults, params, where=path)
        except StrategyError as e:
            raise InvalidField("params", str(e)) from None
        record = StrategyRecord(
            name=name, account=account, source=source,
            source_sha256=hashlib.sha256(source.encode()).hexdigest(), params=dict(params),
            symbols=tuple(symbols), desired="stopped", uploaded_at=datetime.now(UTC))
        self.store.save_strategy(record)
        self._note(name, f"uploaded (sha256 {record.source_sha256[:12]}, account "
                   f"{account}, symbols {', '.join(symbols)})")
        return record

    def start(self, name: str) -> StrategyRecord:
        """Mark a strategy running and start its worker (NotFound when unknown)."""
        record = self._record(name)
        self.store.set_strategy_desired(name, "running")
        with self._lock:
            status = self._status_of(name)
            status.backoff = 0
            self._cancel_timer(name)
            self._launch(record)
        return self._record(name)

    def stop(self, name: str, timeout: float | None = None) -> StrategyRecord:
        """Mark a strategy stopped; its worker runs ``on_stop`` and ends."""
        self._record(name)
        self.store.set_strategy_desired(name, "stopped")
        with self._lock:
            self._cancel_timer(name)
            run = self._runs.get(name)
            self._status_of(name).state = "stopped"
        if run is not None:
            self._stop_run(run, timeout)
        return self._record(name)

    def resume(self) -> list[str]:
        """Start every strategy whose stored state says it should be running, warmed up with
        the hub's history (call before the feed starts: every bar in the hub is worked)."""
        with self._lock:
            for symbol in self.hub.symbols():
                last = self.hub.bars(symbol, limit=1)
                if last:
                    self._last_bar[symbol] = last[-1].time
        names = []
        for record in self.store.list_strategies():
            if record.desired == "running":
                with self._lock:
                    self._launch(record)
                names.append(record.name)
        return names

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop every worker (``on_stop`` runs) without changing what should be running."""
        with self._lock:
            self._closing = True
            for name in list(self._timers):
                self._cancel_timer(name)
            runs = list(self._runs.values())
        self.supervisor.close()  # the spare worker, and no new one
        events = [(run, run.stop()) for run in runs]
        for run, event in events:
            event.done.wait(timeout or self.limits.event_seconds + 5)
            if run.alive:
                run.kill("exit", "the host shut down")
            run.join(10)

    # ------------------------------------------------------------------ reading

    def get(self, name: str) -> tuple[StrategyRecord, str]:
        """The record and its state (stopped, starting, running, failed)."""
        record = self._record(name)
        return record, self.state_of(name)

    def list_all(self) -> list[tuple[StrategyRecord, str]]:
        """Every strategy with its state, by name."""
        return [(r, self.state_of(r.name)) for r in self.store.list_strategies()]

    def run(self, name: str) -> StrategyRun | None:
        """The run of a strategy that has a worker (starting, running or ending), or None."""
        with self._lock:
            return self._runs.get(name)

    def running(self) -> list[str]:
        """The names of the strategies that have a run (starting, running or ending)."""
        with self._lock:
            return sorted(self._runs)

    def state_of(self, name: str) -> str:
        with self._lock:
            run = self._runs.get(name)
            if run is None:
                return self._status_of(name).state
            if run.alive:
                return "running" if run.started.is_set() else "starting"
        # The worker has ended and its thread is recording why (the last thing it does):
        # wait for that, so that the state and the kill reason are read together.
        run.join(5)
        with self._lock:
            return self._status_of(name).state

    def status(self, name: str) -> tuple[StrategyRecord, str, StrategyStatus]:
        """Record, state and status (with the worker's resource use now)."""
        record = self._record(name)
        state = self.state_of(name)
        with self._lock:
            status = self._status_of(name)
            run = self._runs.get(name)
            if run is not None and run.worker is not None:
                status.cpu_seconds = run.worker.cpu_seconds
                status.rss_bytes = run.worker.rss
        return record, state, status

    def logs(self, name: str, tail: int) -> list[LogLine]:
        self._record(name)
        with self._lock:
            lines = list(self._status_of(name).logs)
        return lines[-tail:] if tail else lines

    def follow_logs(self, name: str) -> EventStream[LogLine]:
        """New log lines of a strategy from now on."""
        self._record(name)
        with self._lock:
            status = self._status_of(name)

            def gone(stream: EventStream[LogLine]) -> None:
                with self._lock:
                    if stream in status.followers:
                        status.followers.remove(stream)

            stream: EventStream[LogLine] = EventStream(10_000, gone)
            status.followers.append(stream)
        return stream

    def state(self, name: str) -> dict[str, Any]:
        """A strategy's committed ``ctx.state``."""
        value = self.store.get_state(state_key(name))
        return value if isinstance(value, dict) else {}

    # ------------------------------------------------------------------ the market

    def on_bar(self, bar: Bar, fills: list[Fill]) -> None:
        """Hand a worked bar and its fills to every strategy concerned; return when each has
        handled it (the lockstep that makes a fast replay equal a back-test)."""
        with self._lock:
            self._last_bar[bar.symbol] = bar.time
            runs = list(self._runs.values())
        events: list[Event] = []
        for run in runs:
            event = run.send_bar(bar, fills)
            if event is not None:
                events.append(event)
        budget = self.limits.event_seconds * 2 + 10
        for event in events:
            event.done.wait(budget)

    def signal(self, name: str, signal: dict[str, Any]) -> Event:
        """Hand a routed signal to a running strategy's ``on_signal``."""
        with self._lock:
            run = self._runs.get(name)
        if run is None:
            raise Conflict(f"strategy {name!r} is not running")
        return run.submit({"type": "signal", "signal": signal})

    # ------------------------------------------------------------------ internals

    def _record(self, name: str) -> StrategyRecord:
        record = self.store.get_strategy(name)
        if record is None:
            raise NotFound(f"strategy {name!r} does not exist (upload it first)")
        return record

    def _status_of(self, name: str) -> StrategyStatus:
        status = self._status.get(name)
        if status is None:
            status = self._status[name] = StrategyStatus()
        return status

    def _is_running(self, name: str) -> bool:
        run = self._runs.get(name)
        return run is not None and run.alive

    def _cancel_timer(self, name: str) -> None:
        timer = self._timers.pop(name, None)
        if timer is not None:
            timer.cancel()

    def _history(self, symbols: Iterable[str]) -> list[Bar]:
        """Recent bars of ``symbols`` already handed to strategies, merged by time."""
        series = []
        for s in symbols:
            last = self._last_bar.get(s)
            if last is None:
                continue
            bars = self.hub.bars(s, end=None, limit=WARMUP_BARS + 1)
            series.append([b for b in bars if b.time <= last][-WARMUP_BARS:])
        return list(heapq.merge(*series, key=lambda b: b.time))

    def _launch(self, record: StrategyRecord) -> None:
        """Start a worker for ``record`` unless one runs (call with the lock held)."""
        name = record.name
        if self._closing or self._is_running(name):
            return
        if self.store.get_account(record.account) is None:
            self.store.create_account(Account(id=record.account, cash=self.cash,
                                              initial_cash=self.cash))
        principal, token = self.auth.issue_ephemeral(record.account, ("read", "trade"))
        run_id = f"{name}-{secrets.token_hex(4)}"
        door = self._open_door(token, record.account, run_id)
        run = StrategyRun(record, supervisor=self.supervisor, door=door,
                          state=self.state(name), history=self._history(record.symbols),
                          on_done=self._on_done, on_exit=self._on_exit)
        self._runs[name] = run
        run.token_id = principal.token_id
        status = self._status_of(name)
        status.state = "starting"
        status.errors_in_a_row = 0
        self._note(name, f"starting (run {run_id})")
        run.start()

    def _stop_run(self, run: StrategyRun, timeout: float | None) -> None:
        event = run.stop()
        event.done.wait(timeout or self.limits.event_seconds + 5)
        if run.alive:
            run.kill("exit", "did not stop in time")
        run.join(10)

    def _note(self, name: str, line: str) -> None:
        """A line of the host's own about a strategy, in its log."""
        self._log_lines(name, [line], "host")

    def _log_lines(self, name: str, lines: Iterable[str], origin: str = "strategy") -> None:
        """Add lines to a strategy's log. A worker's lines are untrusted: each is made safe
        to keep and send (:func:`~sandtrade.sandbox.wire.untrusted_text`) here, on intake."""
        now = datetime.now(UTC)
        with self._lock:
            status = self._status_of(name)
            entries = [LogLine(now, untrusted_text(line, MAX_LINE), origin) for line in lines]
            status.logs.extend(entries)
            followers = list(status.followers)
        for stream in followers:
            for entry in entries:
                stream.offer(entry)

    def _on_done(self, run: StrategyRun, header: dict[str, Any]) -> None:
        """A worker finished an event (on the run's thread): logs, state, errors."""
        name = run.name
        lines = header.get("logs")
        if isinstance(lines, list):
            self._log_lines(name, (x for x in lines if isinstance(x, str)))
        dropped = header.get("dropped")
        self._count_dropped(name, dropped if type(dropped) is int and dropped > 0 else 0)
        state = header.get("state")
        if isinstance(state, dict):
            key = state_key(name)
            try:
                self.live.call(lambda b: self.live.note_state(key, state))
            except SandtradeError as e:
                self._error(run, f"ctx.state was not saved: {e}")
        error = header.get("error")
        if isinstance(error, str):
            self._error(run, error)
        else:
            with self._lock:
                self._status_of(name).errors_in_a_row = 0

    def _count_dropped(self, name: str, dropped: int, *, flush: bool = False) -> None:
        """Add a worker's dropped log lines; note them at most every
        :data:`LOG_FLOOD_NOTE_SECONDS` (or now, with ``flush``), never once per event."""
        status = self._status.get(name)
        if not dropped and (status is None or not status.log_dropped):
            return  # the common case, on every event: nothing to count, no lock
        now = time.monotonic()
        with self._lock:
            status = self._status_of(name)
            status.log_dropped += dropped
            pending = status.log_dropped
            if not pending or (not flush
                               and now - status.log_flood_noted < LOG_FLOOD_NOTE_SECONDS):
                return
            status.log_dropped = 0
            status.log_flood_noted = now
        self._note(name, f"log flood: {pending:,} lines dropped (quota "
                   f"{self.limits.log_lines_per_s:,g} lines/s)")

    def _error(self, run: StrategyRun, message: str) -> None:
        """A hook's error (a worker's text, made safe here) counts against the run."""
        message = untrusted_text(message, MAX_ERROR)
        with self._lock:
            status = self._status_of(run.name)
            status.last_errors.append(message)
            status.errors_in_a_row += 1
            give_up = status.errors_in_a_row >= MAX_ERRORS_IN_A_ROW
        self._log_lines(run.name, message.splitlines(), "error")
        if give_up:
            run.give_up = (f"its hooks failed {MAX_ERRORS_IN_A_ROW} events in a row; "
                           "fix the strategy and start it again")

    def _on_exit(self, run: StrategyRun) -> None:
        """A worker is gone: record why; start it again with backoff unless it was asked
        to stop or gave up."""
        name = run.name
        with self._lock:
            if self._runs.get(name) is run:
                del self._runs[name]
            status = self._status_of(name)
            exit_ = run.exit
            if run.stopping and run.give_up is None:
                status.state = "stopped"
                reason = None
            else:
                reason = untrusted_text(run.give_up or run.failure or (
                    f"{exit_.reason}: {exit_.detail}" if exit_ else "ended"), MAX_ERROR)
                status.kill_reason = reason
                status.last_errors.append(reason)
                status.state = "failed"
        if run.token_id is not None:
            self.auth.revoke(run.token_id)
        self._count_dropped(name, 0, flush=True)
        if reason is None:
            self._note(name, "stopped")
            return
        self._note(name, f"worker ended: {reason}")
        if run.give_up is not None:
            self.store.set_strategy_desired(name, "stopped")
            return
        with self._lock:
            if self._closing:
                return
            record = self.store.get_strategy(name)
            if record is None or record.desired != "running":
                return
            if time.monotonic() - run.created > STABLE_SECONDS:
                status.backoff = 0
            if status.backoff >= MAX_RESTARTS:
                status.kill_reason = f"{reason} (gave up after {MAX_RESTARTS} restarts in a row)"
                self._note(name, f"not restarted: {MAX_RESTARTS} restarts in a row failed; "
                           "start it again when fixed")
                return
            delay = min(60.0, 2.0 ** status.backoff)
            status.backoff += 1
            status.restarts += 1
            timer = threading.Timer(delay, self._restart, args=(name,))
            timer.daemon = True
            self._timers[name] = timer
            timer.start()
        self._note(name, f"restarting in {delay:g} s")

    def _restart(self, name: str) -> None:
        with self._lock:
            self._timers.pop(name, None)
            record = self.store.get_strategy(name)
            if record is None or record.desired != "running" or self._closing:
                return
            self._launch(record)
