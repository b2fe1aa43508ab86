"""Strategies in a live host: upload, start, stop, delete, watch, and resume after a restart.

The :class:`StrategyManager` keeps uploaded strategies in the store (source, account, symbols,
parameters, and whether each should be running). A strategy is named within its account and
known here by its id, which a delete retires: its runs, status, log and ``ctx.state`` are
kept under the id, so a name used again, or the same name in another account, sees nothing of
them. Every lookup by name is in one account. The manager starts each running one in its
own sandboxed worker (:class:`~sandtrade.sandbox.strategy_run.StrategyRun`) and feeds it the
market: for
every bar, the broker works its orders first (fills at the open), then each strategy that
trades the bar's symbol (or got a fill) gets the bar and its fills in its own mailbox
(:mod:`sandtrade.sandbox.mailbox`).

In the free mode the feed goes on at once: no strategy waits for another, a slow one falls
behind alone (its lag is in its status and its log; past its backlog its bars are coalesced,
dropped or it is stopped, as configured), and its orders reach the broker when it sends them,
to be filled by the next bar the broker works. In the lockstep mode the feed waits until every
such strategy has handled each bar (within the per-event budget) before the next: a replay at
maximum speed then gives a strategy exactly the sequence of a back-test, and the same trades,
but one stalled strategy delays all of them and the feed, up to its hook budget per bar.

A strategy's ``ctx.state`` is committed after every event that changed it, durably, before the
next event. A worker that dies (a limit, a crash) is started again with backoff (1, 2, 4 … 60 s,
at most :data:`MAX_RESTARTS` times in a row); a strategy whose hooks fail
:data:`MAX_ERRORS_IN_A_ROW` events in a row, or half of its last :data:`EVENT_WINDOW` events,
is stopped as failed (a ``ctx.state`` that cannot be saved fails its event too). A host
started again resumes every strategy that was running, warmed up with the hub's recent bars so
its indicators continue where they were.

What is delivered at most once: if the host dies between committing a bar and a strategy
finishing it, that strategy never sees that bar (the broker's work on it is committed, and a
bar is never worked twice).

It is one file because one lock (``_lock``) guards the runs, their statuses and their restart
timers together: a run's end, its restart and an operator's stop must see one consistent
picture, and that lock's rules are easiest to check in one place.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandtrade.auth import ACCOUNT_RE, Principal, TokenAuthority
from sandtrade.broker.durable import DurableBroker
from sandtrade.broker.fills import FillProfile
from sandtrade.errors import (
    CheckFailed,
    Conflict,
    Diagnostic,
    InvalidField,
    NotFound,
    QuotaExceeded,
    SandtradeError,
    StrategyError,
)
from sandtrade.market.hub import MarketHub
from sandtrade.models import Account, Bar, Fill
from sandtrade.sandbox.cpu import CpuPlacement
from sandtrade.sandbox.limits import OPERATOR_MAXIMA, RunQuotas, WorkerLimits
from sandtrade.sandbox.logbook import Logbook, LogBounds
from sandtrade.sandbox.mailbox import FanoutMeter, Mailbox, StrategySettings, Ticket
from sandtrade.sandbox.plotbook import POINTS_PER_SECOND, PlotBatch, PlotBook
from sandtrade.sandbox.runner import inspect_source_in_sandbox
from sandtrade.sandbox.strategy_run import Door, Event, StrategyRun
from sandtrade.sandbox.supervisor import Supervisor
from sandtrade.sandbox.wire import check_json_text, untrusted_text
from sandtrade.store.base import (
    JsonText,
    Store,
    StrategyRecord,
    new_strategy_id,
    strategy_state_key,
)
from sandtrade.streams import EventStream

__all__ = ["LogLine", "StrategyManager", "StrategyStatus", "parse_diagnostics",
           "strategy_not_found"]

log = logging.getLogger(__name__)

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
MAX_SOURCE_BYTES = 1 << 20
MAX_SYMBOLS = 100
#: How much of a strategy's log the store keeps: its own lines (and errors), and the host's
#: notes about it, kept apart so that a flood of its own cannot evict them.
LOG_LINES = 5000
NOTE_LINES = 1000
LOG_BOUNDS = LogBounds(lines=LOG_LINES, note_lines=NOTE_LINES)
MAX_LINE = 4000
MAX_RESTARTS = 5
MAX_ERRORS_IN_A_ROW = 20
#: A run's last events weighed for its failure rate: at least half of them failed (once
#: :data:`MIN_EVENTS_WEIGHED` are in) stops it, however the failures are spread.
EVENT_WINDOW = 100
MIN_EVENTS_WEIGHED = 40
#: Characters of a worker's error or reason the host keeps.
MAX_ERROR = 16_000
#: A strategy's dropped log lines are noted at most this often, in seconds.
LOG_FLOOD_NOTE_SECONDS = 10.0
#: A run that lived this long resets the backoff: its next death starts again at 1 s.
STABLE_SECONDS = 60.0
#: Restarts a strategy may have in any hour: one that dies just after each stable minute
#: would otherwise restart forever.
RESTARTS_PER_HOUR = 30
#: Bars of each symbol a starting strategy is warmed up with (ctx keeps 512 by default).
WARMUP_BARS = 512
#: Limits of a live worker: no wall-time limit; CPU over its whole life, since a worker
#: that reaches it is started again with backoff; 5 s a hook (an operator may allow up to
#: 60), so that a spinning hook is cut well before it matters to its neighbours.
LIVE_LIMITS = WorkerLimits(cpu_seconds=3600, event_seconds=5)
#: How long StopStrategy waits for ``on_stop`` before it answers ``stopping`` (a client's
#: deadline must never be what ends the call).
STOP_WAIT = 2.0
#: How long ``on_stop`` may run, from the stop, before its worker is killed.
STOP_SECONDS = 5.0


def state_key(strategy_id: str) -> str:
    """The host-state key of a strategy's ``ctx.state`` (by its id, never its name)."""
    return strategy_state_key(strategy_id)


def strategy_not_found(name: str) -> NotFound:
    """The one answer for a strategy a caller cannot reach: none of that name in its account,
    whatever other accounts have."""
    return NotFound(f"strategy {name!r} does not exist (upload it first)")


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


class FailureWindow:
    """Whether each of the last ``size`` events failed, and how many did (counted as events
    come and go: summing the window on every event cost the host about 3 % of its time at
    100 strategies)."""

    def __init__(self, size: int) -> None:
        self._events: deque[bool] = deque(maxlen=size)
        self.failures = 0

    def add(self, failed: bool) -> None:
        events = self._events
        if len(events) == events.maxlen and events[0]:
            self.failures -= 1
        events.append(failed)
        self.failures += failed

    def clear(self) -> None:
        self._events.clear()
        self.failures = 0

    def __len__(self) -> int:
        return len(self._events)

@dataclass
class StrategyStatus:
    """What the host knows of a strategy's life (kept in memory)."""

    state: str = "stopped"  # stopped | starting | running | stopping | failed
    restarts: int = 0
    kill_reason: str = ""
    last_errors: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    errors_in_a_row: int = 0
    #: Whether each of the run's last events failed (a hook's error or an unsaved state).
    recent_events: FailureWindow = field(default_factory=lambda: FailureWindow(EVENT_WINDOW))
    backoff: int = 0
    #: When its workers were restarted, the last hour's (monotonic seconds).
    restart_times: deque[float] = field(default_factory=deque)
    #: Bytes of ctx.state it may still commit now (a token bucket), and when that was.
    state_tokens: float = -1.0
    state_stamp: float = 0.0
    #: Its latest checked ctx.state not yet committed (over its byte rate), how many changes
    #: were held back so, and when that was last noted.
    pending_state: JsonText | None = None
    state_held: int = 0
    state_noted: float = float("-inf")
    cpu_seconds: float = 0.0
    rss_bytes: int = 0
    followers: list[EventStream[LogLine]] = field(default_factory=list)
    #: Bars pending in its mailbox now, and the age of the oldest of them.
    lag_bars: int = 0
    lag_seconds: float = 0.0
    #: Bars merged into a later one, or dropped, under the lag policy (over all its runs).
    bars_coalesced: int = 0
    bars_dropped: int = 0
    lag_noted: float = 0.0
    #: Log lines its workers dropped (the rate or an event's cap) not yet noted, and when the
    #: last such note was (monotonic seconds).
    log_dropped: int = 0
    log_flood_noted: float = float("-inf")
    #: Its account's log rate when its run started (named in the log flood note).
    log_lines_quota: float = 0.0
    #: Plotted points the host refused, not yet noted, and when the last such note was.
    plots_dropped: int = 0
    plots_flood_noted: float = float("-inf")


class StrategyManager:
    """Uploaded strategies and their live runs, in one host.

    :param open_door: the door a run's broker calls go through, given the run's principal,
        its account and its run id (the host passes :class:`sandtrade.rpc.door.TradingDoor`);
        the principal is issued here for that run, its door shut and its token revoked when
        the run ends.
    :param settings: the mode (free or lockstep) and each run's backlog and lag policy.
    :param lockstep: whether :meth:`on_bar` waits for the strategies (the host decides it
        from ``settings.mode`` and the market's pace).
    :param running_quota: how many strategies an account may have running at once (its
        ``[quotas] strategies_running``); a start past it is refused.
    """

    def __init__(self, *, store: Store, live: DurableBroker, hub: MarketHub,
                 auth: TokenAuthority, cash: float, symbols: Callable[[], Iterable[str]],
                 open_door: Callable[[Principal, str, str], Door],
                 limits: WorkerLimits = LIVE_LIMITS,
                 fill_profiles: Iterable[type[FillProfile]] = (),
                 settings: StrategySettings | None = None, lockstep: bool = True,
                 running_quota: Callable[[str], int] = lambda account: 1_000_000,
                 run_quotas: Callable[[str], RunQuotas] | None = None,
                 stop_wait: float = STOP_WAIT, stop_seconds: float = STOP_SECONDS,
                 sandbox: Mapping[str, Any] | None = None,
                 account_modules: Callable[[str], list[str] | None] = lambda account: None
                 ) -> None:
        self.store = store
        self.live = live
        self.hub = hub
        self.auth = auth
        self.cash = cash
        self._known_symbols = symbols
        self._open_door = open_door
        self.limits = limits
        self.settings = settings or StrategySettings()
        self.lockstep = lockstep
        self._running_quota = running_quota
        self._run_quotas = run_quotas or (lambda account: limits.run_quotas())
        #: Publish → last strategy done, per bar.
        self.meter = FanoutMeter()
        self.stop_wait = stop_wait
        self.stop_seconds = stop_seconds
        # A spare worker stays booted: starting a strategy, restarting a crashed one and an
        # RPC back-test skip the worker's ~140 ms boot. Its workers import the plugins' fill
        # profiles (an RPC back-test may select one).
        #: Where each worker's CPU share is enforced (a cgroup, nice, or nothing).
        self.cpu = CpuPlacement.probe(self.settings.cpu_share)
        self.supervisor = Supervisor(limits, keep_spare=True, fill_profiles=fill_profiles,
                                     cpu=self.cpu, zygote=self.settings.zygote,
                                     **(sandbox or {}))
        #: ``[accounts.NAME] modules``: what an account's strategies may import, narrowed
        #: further (None: the host's list).
        self.account_modules = account_modules
        # Upload checks: workers of their own (no spare), forked from the same zygote.
        self.checker = self.supervisor.sharing_zygote()
        self._lock = threading.RLock()
        #: Workers that ended unasked, by kind (the supervisor's exit reason: ``memory``,
        #: ``cpu``, ``timeout``, ``crash``, ..., or ``gave_up`` for a run the host stopped
        #: for failing), since the host started: for ``/metrics``.
        self.kills: dict[str, int] = {}
        #: The strategies' logs, kept in the store (a restart keeps them) by its own writer.
        self.logbook = Logbook(store, LOG_BOUNDS)
        #: What live strategies plot, a recent window each, in memory (see plotbook).
        self.plotbook = PlotBook()
        # Each keyed by the strategy's id: a name means something only within its account,
        # and a name used again after a delete is another strategy.
        self._runs: dict[str, StrategyRun] = {}
        #: The runs of several symbols (the only ones that hold a timestamp's bars).
        self._several: dict[str, StrategyRun] = {}
        self._status: dict[str, StrategyStatus] = {}
        self._timers: dict[str, threading.Timer] = {}
        self._last_bar: dict[str, datetime] = {}
        self._closing = False

    # ------------------------------------------------------------------ operator actions

    def upload(self, account: str, name: str, source: str, *, symbols: list[str],
               params: dict[str, Any]) -> StrategyRecord:
        """Check and store a strategy of ``account`` (replacing that account's stopped one of
        the same name, whose id, ``ctx.state`` and log are kept). Raises
        :class:`InvalidField`, :class:`Conflict` (the account's own strategy of that name is
        running) or :class:`CheckFailed`."""
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
        existing = self.store.get_strategy(account, name)
        with self._lock:
            if existing is not None and self._is_running(existing.id):
                raise Conflict(f"strategy {name!r} is running; stop it before uploading a "
                               "new version")
        path = f"{name}.py"
        try:
            checked = inspect_source_in_sandbox(source, path, supervisor=self.checker,
                                                modules=self.account_modules(account))
        except StrategyError as e:
            raise CheckFailed(f"strategy {name!r}", parse_diagnostics(
                untrusted_text(str(e), MAX_ERROR), path)) from None
        try:
            checked.resolve(params)
        except StrategyError as e:
            raise InvalidField("params", str(e)) from None
        record = StrategyRecord(
            id=existing.id if existing is not None else new_strategy_id(), name=name,
            account=account, source=source,
            source_sha256=hashlib.sha256(source.encode()).hexdigest(), params=dict(params),
            symbols=tuple(symbols), desired="stopped", uploaded_at=datetime.now(UTC))
        self.store.save_strategy(record)
        # As stored: an upload of the same new name at the same time may have won the id.
        record = self._record(account, name)
        self._note(record.id, f"uploaded (sha256 {record.source_sha256[:12]}, account "
                   f"{account}, symbols {', '.join(symbols)})")
        return record

    def start(self, account: str, name: str) -> StrategyRecord:
        """Start a strategy's worker and mark it running (NotFound when unknown). It is marked
        running only once its run is launched, so a launch that fails leaves it stopped."""
        record = self._record(account, name)
        with self._lock:
            limit = self._running_quota(account)
            mine = sum(1 for sid, run in self._runs.items()
                       if run.account == account and run.alive and sid != record.id)
            if mine >= limit:
                raise QuotaExceeded(
                    f"quota: {limit:,} running strategies for account {account} "
                    "(strategies_running); stop one first", quota="strategies_running",
                    subject=f"account:{account}")
            status = self._status_of(record.id)
            status.backoff = 0
            status.restart_times.clear()
            self._cancel_timer(record.id)
            self._launch(record)
        self.store.set_strategy_desired(record.id, "running")
        return self._record(account, name)

    def stop(self, account: str, name: str, timeout: float | None = None) -> StrategyRecord:
        """Mark a strategy stopped; its worker runs ``on_stop`` and ends. Returns within
        ``timeout`` (default ``stop_wait``): an ``on_stop`` still running then goes on in the
        background (state ``stopping``) until it ends or is killed at ``stop_seconds``."""
        sid = self._record(account, name).id
        self.store.set_strategy_desired(sid, "stopped")
        with self._lock:
            self._cancel_timer(sid)
            run = self._runs.get(sid)
            self._status_of(sid).state = "stopped"
        if run is not None:
            self._stop_run(run, timeout)
        return self._record(account, name)

    def delete(self, account: str, name: str, timeout: float | None = None) -> StrategyRecord:
        """Stop a strategy if it runs (its ``on_stop`` runs), then forget it: its record, its
        ``ctx.state``, its log and status. The name may be used again, by a new strategy
        with a new id that sees nothing of this one. Returns the deleted record."""
        record = self.stop(account, name, timeout)
        with self._lock:
            run = self._runs.get(record.id)
        if run is not None and run.stopping and run.alive:  # on_stop still going: end it now
            run.kill("exit", "the strategy was deleted")
            run.join(self.stop_seconds)
        with self._lock:
            if self._is_running(record.id):  # started again while it stopped
                raise Conflict(f"strategy {name!r} was started again while it was being "
                               "deleted; stop it and delete it again")
            self._cancel_timer(record.id)
            self._runs.pop(record.id, None)
            self._several.pop(record.id, None)
            status = self._status.pop(record.id, None)
            self.logbook.forget(record.id)
            self.plotbook.forget(record.id)
            self.store.delete_strategy(record.id)
        for stream in status.followers if status is not None else ():
            stream.close()
        return record

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
                names.append(f"{record.account}/{record.name}")
        return names

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop every worker (``on_stop`` runs) without changing what should be running."""
        with self._lock:
            self._closing = True
            for sid in list(self._timers):
                self._cancel_timer(sid)
            runs = list(self._runs.values())
        self.supervisor.close()  # the spare worker, and no new one
        events = [(run, run.stop()) for run in runs]
        for run, event in events:
            event.done.wait(timeout or self.stop_seconds)
            if run.alive:
                run.kill("exit", "the host shut down")
            run.join(10)
        self.cpu.close()
        self.logbook.close()

    # ------------------------------------------------------------------ reading

    def get(self, account: str, name: str) -> tuple[StrategyRecord, str]:
        """The account's strategy of that name and its state (stopped, starting, running,
        failed); NotFound when the account has none (no other account's is looked at)."""
        record = self._record(account, name)
        return record, self.state_of(record.id)

    def record(self, account: str, name: str) -> StrategyRecord:
        """The account's strategy of that name; NotFound when the account has none (the
        same whatever other accounts have: their rows are not read)."""
        return self._record(account, name)

    def find(self, name: str) -> list[StrategyRecord]:
        """Every account's strategy of that name, by account (for the operator)."""
        return self.store.find_strategies(name)

    def list_all(self, account: str | None = None) -> list[tuple[StrategyRecord, str]]:
        """The account's strategies with their state by name, or every account's by account
        and name."""
        return [(r, self.state_of(r.id)) for r in self.store.list_strategies(account)]

    def run(self, account: str, name: str) -> StrategyRun | None:
        """The run of a strategy that has a worker (starting, running or ending), or None."""
        record = self.store.get_strategy(account, name)
        with self._lock:
            return None if record is None else self._runs.get(record.id)

    def running(self) -> list[str]:
        """The strategies that have a run (starting, running or ending), as account/name."""
        with self._lock:
            return sorted(f"{run.account}/{run.name}" for run in self._runs.values())

    def state_of(self, strategy_id: str) -> str:
        """Where the strategy of that id is: stopped, starting, running or failed."""
        with self._lock:
            run = self._runs.get(strategy_id)
            if run is None:
                return self._status_of(strategy_id).state
            if run.alive:
                if run.stopping:
                    return "stopping"
                return "running" if run.started.is_set() else "starting"
        # The worker has ended and its thread is recording why (the last thing it does):
        # wait for that, so that the state and the kill reason are read together.
        run.join(5)
        with self._lock:
            return self._status_of(strategy_id).state

    def status(self, account: str, name: str) -> tuple[StrategyRecord, str, StrategyStatus]:
        """Record, state and status (with the worker's resource use now)."""
        record = self._record(account, name)
        sid = record.id
        state = self.state_of(sid)
        with self._lock:
            status = self._status_of(sid)
            run = self._runs.get(sid)
            status.lag_bars, status.lag_seconds = 0, 0.0
            if run is not None:
                status.lag_bars, status.lag_seconds = run.mailbox.lag()
                if run.worker is not None:
                    status.cpu_seconds = run.worker.cpu_seconds
                    status.rss_bytes = run.worker.rss
            coalesced, dropped = self._lag_counts(sid, run)
        view = StrategyStatus(**{**status.__dict__, "bars_coalesced": coalesced,
                                 "bars_dropped": dropped})
        return record, state, view

    def logs(self, account: str, name: str, tail: int) -> list[LogLine]:
        """The last ``tail`` lines of a strategy's log (all when 0) the store keeps (up to
        :data:`LOG_BOUNDS` of its own and of the host's notes), across restarts."""
        sid = self._record(account, name).id
        return [LogLine(x.time, x.line, x.origin) for x in self.logbook.read(sid, tail)]

    def follow_logs(self, account: str, name: str) -> EventStream[LogLine]:
        """New log lines of a strategy from now on (the stream ends if it is deleted)."""
        sid = self._record(account, name).id
        with self._lock:
            status = self._status_of(sid)

            def gone(stream: EventStream[LogLine]) -> None:
                with self._lock:
                    if stream in status.followers:
                        status.followers.remove(stream)

            stream: EventStream[LogLine] = EventStream(10_000, gone)
            status.followers.append(stream)
        return stream

    def state(self, account: str, name: str) -> dict[str, Any]:
        """A strategy's committed ``ctx.state`` ({} when there is none or it is unreadable)."""
        return self._stored_state(self._record(account, name).id)[0]

    def _stored_state(self, sid: str) -> tuple[dict[str, Any], str | None]:
        """The committed ``ctx.state`` and, when it fails the checks a worker's state passes
        (written before they existed, or by hand), why; then the state is {}."""
        text = self.store.get_state_text(state_key(sid))
        checked = _checked_state("{}" if text is None else text, self.limits.state_bytes)
        return (json.loads(checked), None) if isinstance(checked, JsonText) else ({}, checked)

    # ------------------------------------------------------------------ the market

    def on_bar(self, bar: Bar, fills: list[Fill]) -> None:
        """Hand a worked bar and its fills to every strategy concerned. In the free mode,
        return at once; in lockstep, when each has handled it (or its hook budget passed)."""
        with self._lock:
            self._last_bar[bar.symbol] = bar.time
            runs = list(self._runs.values())
        ticket = Ticket(self.meter)
        # Each run gets its account's fills, sorted out once (not once per run); a list of
        # its own, which its mailbox may merge into.
        by_account: dict[str, list[Fill]] = {}
        for fill in fills:
            by_account.setdefault(fill.account, []).append(fill)
        for run in runs:
            mine = by_account.get(run.account)
            if not run.offer_bar(bar, list(mine) if mine else [], ticket) \
                    and run.mailbox.overflowed \
                    and run.give_up is None:
                backlog = run.mailbox.backlog
                run.give_up = (f"fell behind the market by {backlog:,} bars (its backlog) and "
                               "[strategies] on_lag is \"stop\"")
                run.kill("lag", run.give_up)
        ticket.seal()
        if self.lockstep:
            ticket.done.wait(self.limits.event_seconds + 2)

    def flush_before(self, time: datetime) -> None:
        """Hand on every timestamp held for a strategy of several symbols that ends before
        ``time`` (one of its symbols had no bar then); the host calls it before the broker
        works a bar of ``time``, so that what the strategy does on that timestamp meets the
        next bars as in a back-test. In lockstep, returns once they have handled it."""
        with self._lock:
            runs = [r for r in self._several.values() if r.holds_before(time)]
        if not runs:
            return
        ticket = Ticket(self.meter)
        for run in runs:
            run.release(ticket)
        ticket.seal()
        if self.lockstep:
            ticket.done.wait(self.limits.event_seconds + 2)

    def fanout(self, latest: int = 0) -> dict[str, Any]:
        """Publish → last strategy done (p50/p99/max ms of the latest bars, or of the
        ``latest`` ones), the mode, and each run's lag (bars pending, seconds) and p99, by
        name and account."""
        with self._lock:
            runs = sorted(self._runs.values(), key=lambda r: (r.name, r.account))
        lags = []
        for run in runs:
            bars, seconds = run.mailbox.lag()
            lags.append({"name": run.name, "account": run.account, "bars": bars,
                         "seconds": round(seconds, 3), "events": run.latency.count,
                         "p99_ms": run.latency.p99_ms(latest)})
        return {**self.meter.figures(latest), "mode": "lockstep" if self.lockstep else "free",
                "strategies": len(runs), "lag": lags}

    def signal(self, account: str, name: str, signal: dict[str, Any], /) -> Event:
        """Hand a routed signal to the account's running strategy's ``on_signal`` (only that
        account's strategies are looked at)."""
        record = self._record(account, name)
        with self._lock:
            run = self._runs.get(record.id)
        if run is None:
            raise Conflict(f"strategy {name!r} is not running")
        return run.submit({"type": "signal", "signal": signal})

    # ------------------------------------------------------------------ internals

    def _record(self, account: str, name: str) -> StrategyRecord:
        """The account's strategy of that name; the same NotFound whether another account
        has one of that name or none has, since no other account's row is read."""
        record = self.store.get_strategy(account, name)
        if record is None:
            raise strategy_not_found(name)
        return record

    def _status_of(self, sid: str) -> StrategyStatus:
        status = self._status.get(sid)
        if status is None:
            status = self._status[sid] = StrategyStatus()
        return status

    def _is_running(self, sid: str) -> bool:
        run = self._runs.get(sid)
        return run is not None and run.alive

    def _cancel_timer(self, sid: str) -> None:
        timer = self._timers.pop(sid, None)
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
        sid = record.id
        if self._closing or self._is_running(sid):
            return
        if self.store.get_account(record.account) is None:
            self.store.create_account(Account(id=record.account, cash=self.cash,
                                              initial_cash=self.cash))
        # "signal": ctx.signal sends its account's signals through the pipeline.
        principal, _ = self.auth.issue_ephemeral(record.account, ("read", "trade", "signal"))
        run_id = f"{record.name}-{secrets.token_hex(8)}"
        door = self._open_door(principal, record.account, run_id)
        state, unreadable = self._stored_state(sid)
        if unreadable is not None:
            self._quarantine_state(sid, unreadable)
        quotas = self._run_quotas(record.account).within(OPERATOR_MAXIMA)
        run = StrategyRun(record, supervisor=self.supervisor, door=door,
                          modules=self.account_modules(record.account),
                          state=state, history=self._history(record.symbols),
                          on_done=self._on_done, on_exit=self._on_exit,
                          mailbox=Mailbox(self.settings.backlog, self.settings.on_lag),
                          quotas=quotas)
        self._runs[sid] = run
        if len(run.symbols) > 1:
            self._several[sid] = run
        else:
            self._several.pop(sid, None)
        run.token_id = principal.token_id
        status = self._status_of(sid)
        status.log_lines_quota = quotas.log_lines_per_s
        status.state = "starting"
        status.errors_in_a_row = 0
        status.recent_events.clear()
        self._note(sid, f"starting (run {run_id})")
        run.start()

    def _quarantine_state(self, sid: str, problem: str) -> None:
        """Move an unreadable stored ``ctx.state`` aside (under ``…:state.bad``, as a JSON
        string of its text) and leave {} in its place; say so in the strategy's log."""
        key = state_key(sid)
        bad = JsonText(json.dumps(self.store.get_state_text(key) or ""))
        where = f"kept aside as {key}.bad"
        def move(_: object) -> None:
            for k, v in ((f"{key}.bad", bad), (key, JsonText("{}"))):
                self.live.note_state_json(k, v)
        try:
            self.live.call(move)
        except SandtradeError as e:
            where = f"it could not be moved aside: {e}"
        self._note(sid, f"stored ctx.state was unreadable ({problem}); started with an "
                   f"empty state ({where})")

    def _stop_run(self, run: StrategyRun, timeout: float | None) -> None:
        wait = self.stop_wait if timeout is None else timeout
        deadline = time.monotonic() + wait
        event = run.stop()
        if event.done.wait(wait):
            run.join(max(0.0, deadline - time.monotonic()))
            return
        timer = threading.Timer(max(0.0, self.stop_seconds - wait), self._stop_overdue,
                                args=(run,))
        timer.daemon = True
        timer.start()

    def _stop_overdue(self, run: StrategyRun) -> None:
        """``on_stop`` ran past ``stop_seconds``: its worker is killed."""
        if run.alive:
            calls = run.worker.event_calls if run.worker is not None else 0
            run.kill("timeout", f"on_stop ran past its {self.stop_seconds:g} s budget"
                     + (f" while calling ctx {calls:,} times" if calls else ""))

    def _note(self, sid: str, line: str) -> None:
        """A line of the host's own about a strategy, in its log."""
        self._log_lines(sid, [line], "host")

    def _log_lines(self, sid: str, lines: Iterable[str], origin: str = "strategy") -> None:
        """Add lines to a strategy's log. A worker's lines are untrusted: each is made safe
        to keep and send (:func:`~sandtrade.sandbox.wire.untrusted_text`) here, on intake."""
        now = datetime.now(UTC)
        entries = [LogLine(now, untrusted_text(line, MAX_LINE), origin) for line in lines]
        self.logbook.add(sid, ((e.time, e.line, e.origin) for e in entries))
        with self._lock:
            status = self._status.get(sid)
            followers = list(status.followers) if status is not None else []
        for stream in followers:
            for entry in entries:
                stream.offer(entry)

    def _on_done(self, run: StrategyRun, header: dict[str, Any]) -> None:
        """A worker finished an event (on the run's thread): logs, state, errors."""
        sid = run.record.id
        lines = header.get("logs")
        if isinstance(lines, list) and lines:
            self._log_lines(sid, (x for x in lines if isinstance(x, str)))
        dropped = header.get("dropped")
        self._count_dropped(sid, dropped if type(dropped) is int and dropped > 0 else 0)
        if "plots" in header:
            self._count_plots_dropped(sid, self.plotbook.add(
                sid, run.record.account, run.record.name, header["plots"],
                header.get("plot_styles")))
        # One outcome per market item of the event (the run counts them; the worker only
        # names which failed), so a lagging strategy's batches weigh as the bars they hold.
        outcomes = [False] * max(1, run.event_items)
        error = header.get("error")
        if isinstance(error, str):
            self._error(run, error)
            failed = header.get("failed")
            if isinstance(failed, list) and failed and all(
                    type(k) is int and 0 <= k < len(outcomes) for k in failed):
                for k in failed:
                    outcomes[k] = True
            else:  # the event as a whole failed (its ctx.state was not kept): each of its bars
                outcomes = [True] * len(outcomes)
        if "state_json" in header:
            problem = self._save_state(sid, header["state_json"], run.quotas.state_bytes)
            if problem is not None:
                self._error(run, f"ctx.state was not saved: {problem}")
                outcomes = [True] * len(outcomes)
        self._count_event(run, outcomes)
        if run.door.flood is not None and run.give_up is None:
            run.give_up = f"{run.door.flood}; fix the strategy and start it again"
        self._note_lag(run)

    def _save_state(self, sid: str, text: object, max_bytes: int) -> str | None:
        """Commit a worker's ``state_json`` once it passes the checks again here (it is
        untrusted); why not, when it does not. Only checked text joins a group commit.

        A strategy commits at most ``[strategies] state_bytes_per_second`` of state (after a
        burst of four seconds' worth): a state of 256 KiB changed on every bar would otherwise
        write megabytes a second into the group commit every strategy waits on. A change over
        that rate is kept here, not written; the next change within the rate (or the run's
        end) writes the latest, so a throttled strategy loses no state, only its durability
        for the moments in between, and its log says so."""
        checked = _checked_state(text, max_bytes)
        if not isinstance(checked, JsonText):
            return checked
        rate = self.settings.state_bytes_per_second
        now = time.monotonic()
        with self._lock:
            status = self._status_of(sid)
            if status.state_tokens < 0:
                status.state_tokens, status.state_stamp = 4 * rate, now
            status.state_tokens = min(4 * rate, status.state_tokens
                                      + (now - status.state_stamp) * rate)
            status.state_stamp = now
            if status.state_tokens < len(checked):
                status.pending_state = checked
                status.state_held += 1
                held, note = status.state_held, now - status.state_noted >= 10.0
                if note:
                    status.state_noted = now
            else:
                status.state_tokens -= len(checked)
                status.pending_state = None
                held = 0
        if held:
            if note:
                self._note(sid, f"state flood: {held:,} ctx.state changes held back so far "
                           f"(quota {rate:,.0f} bytes/s of state); the latest is saved at the "
                           "next change within the quota, or when the run ends")
            return None
        return self._commit_state(sid, checked)

    def _commit_state(self, sid: str, checked: JsonText) -> str | None:
        key = state_key(sid)
        try:
            self.live.call(lambda b: self.live.note_state_json(key, checked))
        except SandtradeError as e:
            return str(e)
        return None

    def _note_lag(self, run: StrategyRun) -> None:
        """A host note when a run falls a second behind, then at most every 10 s."""
        bars, seconds = run.mailbox.lag()
        if seconds < 1.0:
            return
        now = time.monotonic()
        with self._lock:
            status = self._status_of(run.record.id)
            if now - status.lag_noted < 10.0:
                return
            status.lag_noted = now
            coalesced, dropped = self._lag_counts(run.record.id, run)
        more = ""
        if coalesced:
            more += f"; {coalesced:,} bars coalesced so far"
        if dropped:
            more += f"; {dropped:,} bars dropped so far"
        self._note(run.record.id,
                   f"falling behind: {bars:,} bars queued ({seconds:.1f} s){more}")

    def _lag_counts(self, sid: str, run: StrategyRun | None) -> tuple[int, int]:
        """Bars coalesced and dropped over the strategy's runs (with the lock held)."""
        status = self._status_of(sid)
        if run is None:
            return status.bars_coalesced, status.bars_dropped
        return (status.bars_coalesced + run.mailbox.coalesced,
                status.bars_dropped + run.mailbox.dropped)

    def _count_dropped(self, sid: str, dropped: int, *, flush: bool = False) -> None:
        """Add a worker's dropped log lines; note them at most every
        :data:`LOG_FLOOD_NOTE_SECONDS` (or now, with ``flush``), never once per event."""
        status = self._status.get(sid)
        if not dropped and (status is None or not status.log_dropped):
            return  # the common case, on every event: nothing to count, no lock
        now = time.monotonic()
        with self._lock:
            status = self._status_of(sid)
            status.log_dropped += dropped
            pending = status.log_dropped
            if not pending or (not flush
                               and now - status.log_flood_noted < LOG_FLOOD_NOTE_SECONDS):
                return
            status.log_dropped = 0
            status.log_flood_noted = now
            quota = status.log_lines_quota or self.limits.log_lines_per_s
        self._note(sid, f"log flood: {pending:,} lines dropped (quota {quota:,g} lines/s)")

    def _count_plots_dropped(self, sid: str, dropped: int) -> None:
        """Plotted points the plot book refused; noted as the log's floods are."""
        if not dropped:
            return
        now = time.monotonic()
        with self._lock:
            status = self._status_of(sid)
            status.plots_dropped += dropped
            pending = status.plots_dropped
            if now - status.plots_flood_noted < LOG_FLOOD_NOTE_SECONDS:
                return
            status.plots_dropped = 0
            status.plots_flood_noted = now
        self._note(sid, f"plot flood: {pending:,} plotted points dropped (malformed, over "
                   f"16 series, or over the quota of {POINTS_PER_SECOND:,g} points/s)")

    def plots(self, account: str, name: str) -> list[dict[str, Any]]:
        """What a strategy plotted lately (its series, their last points), since the host
        started: ``{name, pane, color, symbol, points: [[time, value], ...]}`` each."""
        return self.plotbook.series(self._record(account, name).id)

    def follow_plots(self) -> EventStream[PlotBatch]:
        """Every strategy's newly plotted points from now on (for the host's watch)."""
        return self.plotbook.follow()

    def _error(self, run: StrategyRun, message: str) -> None:
        """A hook's error (a worker's text, made safe here) counts against the run."""
        message = untrusted_text(message, MAX_ERROR)
        with self._lock:
            self._status_of(run.record.id).last_errors.append(message)
        self._log_lines(run.record.id, message.splitlines(), "error")

    def _count_event(self, run: StrategyRun, outcomes: list[bool]) -> None:
        """Weigh one finished event (each of its market items: True for a failure); give up
        on a run that fails too many."""
        with self._lock:
            status = self._status_of(run.record.id)
            for failed in outcomes:
                status.recent_events.add(failed)
                status.errors_in_a_row = status.errors_in_a_row + 1 if failed else 0
            weighed = len(status.recent_events)
            failures = status.recent_events.failures
            last = (status.last_errors[-1] if status.last_errors else "").split("\n")[0]
            if status.errors_in_a_row >= MAX_ERRORS_IN_A_ROW:
                why = f"its hooks failed {MAX_ERRORS_IN_A_ROW} events in a row"
            elif weighed >= MIN_EVENTS_WEIGHED and 2 * failures >= weighed:
                why = f"its hooks failed {failures} of the last {weighed} events"
            else:
                return
        run.give_up = f"{why} (the last: {last[:500]}); fix the strategy and start it again"

    def _on_exit(self, run: StrategyRun) -> None:
        """A worker is gone: record why; start it again with backoff unless it was asked
        to stop or gave up."""
        sid = run.record.id
        if run.give_up is not None:
            # No longer marked to run before anyone can read it failed: a status that says
            # FAILED never stands beside a record that would start it again.
            self.store.set_strategy_desired(sid, "stopped")
        with self._lock:
            if self._runs.get(sid) is run:
                del self._runs[sid]
                self._several.pop(sid, None)
            status = self._status_of(sid)
            status.bars_coalesced += run.mailbox.coalesced
            status.bars_dropped += run.mailbox.dropped
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
                # By kind, not by text (a worker's words would make a label per line).
                kind = ("gave_up" if run.give_up is not None
                        else exit_.reason if exit_ is not None else "ended")
                self.kills[kind] = self.kills.get(kind, 0) + 1
        if run.token_id is not None:
            self.auth.revoke(run.token_id)
        with self._lock:
            pending, status.pending_state = status.pending_state, None
        if pending is not None:  # a throttled state is written when its run ends
            self._commit_state(sid, pending)
        self._count_dropped(sid, 0, flush=True)
        if reason is None:
            if exit_ is not None and exit_.reason == "timeout":  # on_stop was cut short
                self._note(sid, f"stopped ({exit_.detail})")
            else:
                self._note(sid, "stopped")
            with self._lock:  # started again while it was stopping: start the new run now
                record = self.store.get_strategy(run.record.account, run.record.name)
                if not self._closing and record is not None and record.id == sid \
                        and record.desired == "running":
                    self._launch(record)
            return
        self._note(sid, f"worker ended: {reason}")
        if run.give_up is not None:
            return
        with self._lock:
            if self._closing:
                return
            record = self.store.get_strategy(run.account, run.name)
            if record is None or record.id != sid or record.desired != "running":
                return
            if time.monotonic() - run.created > STABLE_SECONDS:
                status.backoff = 0
            if status.backoff >= MAX_RESTARTS:
                status.kill_reason = f"{reason} (gave up after {MAX_RESTARTS} restarts in a row)"
                self._note(sid, f"not restarted: {MAX_RESTARTS} restarts in a row failed; "
                           "start it again when fixed")
                return
            now = time.monotonic()
            while status.restart_times and now - status.restart_times[0] > 3600:
                status.restart_times.popleft()
            if len(status.restart_times) >= RESTARTS_PER_HOUR:
                status.kill_reason = (f"restart loop: {len(status.restart_times)} restarts in "
                                      f"the last hour (the limit is {RESTARTS_PER_HOUR}); "
                                      f"the last: {reason}")
                self._note(sid, f"not restarted: {status.kill_reason}; start it again when "
                           "fixed")
                return
            status.restart_times.append(now)
            delay = min(60.0, 2.0 ** status.backoff)
            status.backoff += 1
            status.restarts += 1
            timer = threading.Timer(delay, self._restart, args=(run.account, run.name, sid))
            timer.daemon = True
            self._timers[sid] = timer
            timer.start()
        self._note(sid, f"restarting in {delay:g} s")

    def _restart(self, account: str, name: str, sid: str) -> None:
        with self._lock:
            self._timers.pop(sid, None)
            record = self.store.get_strategy(account, name)
            if record is None or record.id != sid or record.desired != "running" \
                    or self._closing:
                return
            self._launch(record)


def _checked_state(text: object, max_bytes: int) -> JsonText | str:
    """``ctx.state`` text from a worker or the store, checked: as canonical :class:`JsonText`,
    or why it is refused."""
    try:
        checked = check_json_text(text, where="ctx.state", max_bytes=max_bytes)
    except ValueError as e:
        return str(e)
    return JsonText(checked) if checked.startswith("{") else "ctx.state must be a dict"
