"""One I/O loop for every live run: the thread ``sandbox-io`` drives all live workers' pipes.

Each live run used to hold three threads (its run thread, a frame reader and a stderr reader)
and handed every frame from one to the other through a queue: at 50 strategies the host spent
more than half a millisecond of its own CPU per strategy and bar, mostly switching threads.
Now one ``selectors`` (epoll) thread does, for every live worker:

* **writes** an event as soon as the run is idle and has one (non-blocking, through a
  per-worker out buffer: a worker that stops reading fills its own pipe and buffer, never
  the loop);
* **reads** frames as they come (:class:`~sandtrade.sandbox.wire.FrameReader`, the caps and
  error texts of ``read_frame``: a frame over a cap kills the worker for the protocol);
* a ``call`` (a broker call of the strategy; the worker waits for its reply) is made on the
  loop when it never waits (:data:`INLINE_CALLS`: the door answers them at once, from the
  broker's memory), else on the ``sandbox-door`` pool, at most one per run, the loop writing
  the reply when the door hands it over; past the per-event quota it is refused here; a
  posted ``call`` (``submit``, ``close``: the worker did not wait) is made on the loop and
  answered with nothing, a refusal joining the event's log lines where the call was;
* a ``done`` ends the event once the broker calls answered in it are durable (one wait on
  the broker's commit thread for the event; if their commit failed, the worker is killed and
  the run restarts from what is stored): its logs, errors and state go to the run's
  ``on_done``. When it
  carries a ``ctx.state``, whose commit waits for the broker's group commit, that runs on a
  pool thread and the next event is sent only once it returned: the state is durable before
  the next event. Otherwise it runs on the loop (it only takes the manager's lock briefly);
* **stderr** is kept within its cap (past it the worker is killed, as before);
* **EOF** (the worker died, was killed by the watchdog, or exited after ``stop``) ends the
  run: what blocks (waiting for the process, closing the door, the manager's ``on_exit``)
  runs on the ``sandbox-life`` pool, which also boots workers.

Booting stays threaded (:meth:`Supervisor.start` with ``threads=False`` hands the worker over
at the frame boundary after ``ready``), and so do back-tests (:mod:`sandtrade.sandbox.runner`).
The watchdog still kills by pid and heartbeat: a kill shows here as EOF.

A ``bars`` frame of one bar without fills is the same bytes for every run that maps the bar's
symbol to the same index (one payload and one header for all the single-symbol strategies of
a symbol): it is encoded once, in a small cache of the latest bars.

It is one file because it is one thread's state machine: every step of a channel (write,
read, call, done, settle, end) changes the same ``_Channel`` fields and hands on to the next
step, and splitting them would spread one sequence of states over several modules.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import selectors
import threading
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from sandtrade.models import Bar
from sandtrade.sandbox.limits import RunQuotas
from sandtrade.sandbox.supervisor import SandboxKilled, Worker
from sandtrade.sandbox.wire import (
    POSTED_CALLS,
    FrameReader,
    FrameTooLarge,
    ProtocolError,
    encode_bars,
    frame_bytes,
    untrusted_text,
)

__all__ = ["Dispatcher", "LiveRun", "Outgoing", "dispatcher", "join_posted_lines"]

log = logging.getLogger(__name__)

#: Threads that make the workers' broker calls (each may wait on the broker's group commit).
DOOR_THREADS = 8
#: Threads that boot workers and end runs (both wait on processes).
LIFE_THREADS = 4
#: Bytes read from a pipe at once.
READ_BYTES = 1 << 16
#: Frames of one worker read ahead of the run's state (a worker must wait for each reply):
#: past this its stdout is no longer read until they are handled.
READ_AHEAD = 16
#: Calls the loop makes itself: the door answers them at once, from the broker's memory (their
#: commit is waited for when the event ends), so a pool thread would only add two hops.
INLINE_CALLS = frozenset({"submit", "close", "position", "account"})
#: Encoded one-bar frames kept for the runs that have not taken them yet.
CACHED_BARS = 512


@dataclass
class Outgoing:
    """An event for a worker: ``frame`` is what goes down its pipe; ``hook`` names the hooks
    it runs (for the quota's refusal)."""

    event: Any
    frame: bytes
    hook: str


class LiveRun(Protocol):
    """What the loop drives (:class:`sandtrade.sandbox.strategy_run.StrategyRun`; a protocol,
    so that this module does not import the run that imports it)."""

    name: str
    worker: Worker | None
    quotas: RunQuotas

    def next_event(self, bars: BarFrames) -> Outgoing | None:
        """The next event to send, or None when there is none now (on the loop)."""
        ...

    def call(self, op: object, args: object, answer: Callable[[dict[str, Any]], None]
             ) -> None:
        """Answer a worker's broker call (on a door thread): ``answer(reply)`` exactly
        once, on this thread or a later one."""
        ...

    def post(self, op: str, args: object) -> str | None:
        """Make a worker's posted order call (``submit``, ``close``: it waits for no
        answer), on the loop; a line for the strategy's log when the order was refused."""
        ...

    def settle_calls(self, then: Callable[[str | None], None]) -> bool:
        """The event's broker calls were answered before they were durable: False when
        none waits, else True and ``then(lost)`` follows once they are settled (on the
        broker's commit thread; ``lost``: why one was not stored, None when all are)."""
        ...

    def event_done(self, event: Any, header: dict[str, Any]) -> None:
        """The worker finished ``event`` with this ``done`` frame (logs, state, error)."""
        ...

    def event_over(self, event: Any) -> bool:
        """``event`` is over (its tickets, its latency); False when the run ends after it."""
        ...

    def finish(self, cause: BaseException | None, event: Any) -> None:
        """The run is over (``cause``: why its channel failed, None after ``stop`` or a
        give-up); ``event`` was in flight. On a life thread: it may wait."""
        ...


class BarFrames:
    """One-bar ``bars`` frames, each encoded once per (bar, symbol index) (loop thread only).

    Keyed by the bar's identity, kept alive by the cache itself (so no other bar takes its
    id meanwhile): the feed hands the same bar object to every mailbox."""

    def __init__(self, size: int = CACHED_BARS) -> None:
        self.size = size
        self._frames: OrderedDict[tuple[int, int], tuple[Bar, bytes]] = OrderedDict()

    def frame(self, bar: Bar, index: int) -> bytes:
        key = (id(bar), index)
        hit = self._frames.get(key)
        if hit is not None and hit[0] is bar:
            return hit[1]
        count, payload = encode_bars([bar], {bar.symbol: index})
        data = frame_bytes({"type": "bars", "count": count, "items": [[True, []]]}, payload)
        self._frames[key] = (bar, data)
        if len(self._frames) > self.size:
            self._frames.popitem(last=False)
        return data


@dataclass(eq=False)
class _Channel:
    """One live run's pipes and where its event stands (loop thread only, but ``queued``)."""

    run: LiveRun
    worker: Worker
    stdin: int
    stdout: int
    stderr: int
    reader: FrameReader
    out: bytearray = field(default_factory=bytearray)
    frames: deque[tuple[dict[str, Any], bytes]] = field(default_factory=deque)
    #: The event in flight and its hooks, or None while idle.
    event: Any = None
    hook: str = ""
    #: A call or a commit of this run is on a pool thread.
    busy: bool = False
    #: Why the channel failed (EOF, a protocol error), once it did: the run ends as soon as
    #: nothing of it is in flight.
    over: BaseException | None = None
    ended: bool = False
    #: The run's end, waiting for what was in flight on a door thread.
    finish_later: Callable[[], None] | None = None
    reading: bool = True
    writing: bool = False
    queued: bool = False
    #: This event's lines about posted orders the host refused: (where among the worker's
    #: lines, the line), joined to its ``done``.
    posted: list[tuple[object, str]] = field(default_factory=list)


class Dispatcher:
    """The loop thread and its two pools; one per process (:func:`dispatcher`)."""

    def __init__(self) -> None:
        self._selector = selectors.EpollSelector()
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._lock = threading.Lock()
        self._soon: deque[Callable[[], None]] = deque()
        self._woken = False
        self._channels: dict[int, _Channel] = {}  # by id(run)
        self._bars = BarFrames()
        self.door = ThreadPoolExecutor(DOOR_THREADS, thread_name_prefix="sandbox-door")
        self.life = ThreadPoolExecutor(LIFE_THREADS, thread_name_prefix="sandbox-life")
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ any thread

    def attach(self, run: LiveRun, worker: Worker) -> None:
        """Drive ``run``'s ``worker`` (started with ``threads=False``) from now on."""
        self._ensure_thread()
        self.soon(lambda: self._attach(run, worker))

    def wake(self, run: LiveRun) -> None:
        """``run`` may have a new event (its mailbox got one)."""
        self.soon(lambda: self._wake(run))

    def soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop thread."""
        with self._lock:
            self._soon.append(fn)
            if self._woken:
                return
            self._woken = True
        with contextlib.suppress(BlockingIOError):  # full: the loop is awake anyway
            os.write(self._wake_w, b"\0")

    def driving(self) -> int:
        """How many runs the loop drives now."""
        return len(self._channels)

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="sandbox-io",
                                                daemon=True)
                self._thread.start()

    # ------------------------------------------------------------------ the loop

    def _loop(self) -> None:
        while True:
            for key, _ in self._selector.select():
                if key.data is None:
                    self._run_soon()
                    continue
                ch, which = key.data
                if ch.ended:  # ended while handling an earlier key of this same select()
                    continue
                try:
                    if which == "out":
                        self._readable(ch)
                    elif which == "err":
                        self._stderr(ch)
                    else:
                        self._flush(ch)
                except Exception as e:  # a bug of ours: end that run, keep the loop
                    self._failed(ch, e)

    def _run_soon(self) -> None:
        while True:
            try:
                if not os.read(self._wake_r, 4096):
                    break
            except BlockingIOError:
                break
        with self._lock:
            todo = list(self._soon)
            self._soon.clear()
            self._woken = False
        for fn in todo:
            try:
                fn()
            except Exception:
                log.exception("sandbox-io: a scheduled step failed")

    def _failed(self, ch: _Channel, e: BaseException) -> None:
        log.exception("strategy %s: the host side of the run failed", ch.run.name,
                      exc_info=e)
        ch.worker.kill("exit", "the host side of the run failed")
        self._end(ch, _HostFailure(f"{ch.run.name}: the host side of the run failed: {e}"))

    def _attach(self, run: LiveRun, worker: Worker) -> None:
        assert worker.proc.stdin and worker.proc.stdout and worker.proc.stderr
        ch = _Channel(run, worker, worker.proc.stdin.fileno(), worker.proc.stdout.fileno(),
                      worker.proc.stderr.fileno(),
                      FrameReader(max_header=1 << 20, max_payload=worker.limits.result_bytes))
        for fd in (ch.stdin, ch.stdout, ch.stderr):
            os.set_blocking(fd, False)
        self._channels[id(run)] = ch
        self._selector.register(ch.stdout, selectors.EVENT_READ, (ch, "out"))
        self._selector.register(ch.stderr, selectors.EVENT_READ, (ch, "err"))
        self._guarded(ch, self._pump)

    def _wake(self, run: LiveRun) -> None:
        ch = self._channels.get(id(run))
        if ch is not None and ch.run is run:
            self._guarded(ch, self._pump)

    def _guarded(self, ch: _Channel, step: Callable[[_Channel], None]) -> None:
        try:
            step(ch)
        except Exception as e:
            self._failed(ch, e)

    def _pump(self, ch: _Channel) -> None:
        """Send the run's next event if it is idle and has one."""
        if ch.ended or ch.event is not None or ch.busy:
            return
        if ch.over is not None:
            self._end(ch, ch.over)
            return
        out = ch.run.next_event(self._bars)
        if out is None:
            return
        worker = ch.worker
        # Counted here, never by the worker: the count bounds what the broker does for one
        # event, and names the calls in a kill for the hook budget.
        worker.event_hook, worker.event_calls = out.hook, 0
        ch.event, ch.hook = out.event, out.hook
        # From now on its hooks must start within the budget, also while the frame waits
        # in the pipe of a worker that does not read it.
        worker.expect_progress = True
        self._send(ch, out.frame)
        self._handle(ch)

    def _send(self, ch: _Channel, data: bytes) -> None:
        if ch.ended:
            return
        if ch.out:
            ch.out += data
            return
        try:
            n = os.write(ch.stdin, data)
        except BlockingIOError:
            n = 0
        except OSError:  # the worker is gone: its EOF follows on stdout
            return
        if n < len(data):
            ch.out += memoryview(data)[n:]
            if not ch.writing:
                ch.writing = True
                self._selector.register(ch.stdin, selectors.EVENT_WRITE, (ch, "in"))

    def _flush(self, ch: _Channel) -> None:
        if ch.ended or not ch.writing:
            return
        try:
            n = os.write(ch.stdin, ch.out)
        except BlockingIOError:
            return
        except OSError:
            n = len(ch.out)
        del ch.out[:n]
        if not ch.out:
            ch.writing = False
            self._selector.unregister(ch.stdin)

    def _readable(self, ch: _Channel) -> None:
        try:
            data = os.read(ch.stdout, READ_BYTES)
        except BlockingIOError:
            return
        except OSError as e:
            data, ch.over = b"", e
        if not data:
            ch.over = ch.over or EOFError("channel closed")
            self._stop_reading(ch)
        else:
            ch.reader.feed(data)
            self._parse(ch)
        self._handle(ch)

    def _parse(self, ch: _Channel) -> None:
        """Take the complete frames read, up to :data:`READ_AHEAD` waiting."""
        try:
            while len(ch.frames) < READ_AHEAD:
                frame = ch.reader.next()
                if frame is None:
                    break
                ch.frames.append(frame)
        except ProtocolError as e:
            ch.worker.kill("protocol", f"the worker sent {e}" if isinstance(e, FrameTooLarge)
                           else str(e))
            ch.over = e
            self._stop_reading(ch)
        if len(ch.frames) >= READ_AHEAD:
            self._stop_reading(ch)

    def _stop_reading(self, ch: _Channel) -> None:
        if ch.reading:
            ch.reading = False
            self._selector.unregister(ch.stdout)

    def _stderr(self, ch: _Channel) -> None:
        try:
            chunk = os.read(ch.stderr, READ_BYTES)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        cap = ch.worker.limits.stderr_bytes
        if chunk and len(ch.worker.stderr) + len(chunk) <= cap:
            ch.worker.stderr.extend(chunk)
            return
        if chunk:
            ch.worker.kill("output", f"wrote more than {cap:,} bytes to stderr")
        self._selector.unregister(ch.stderr)
        ch.stderr = -1

    def _handle(self, ch: _Channel) -> None:
        """Work through the frames read, as far as the run's state allows."""
        worker = ch.worker
        while True:
            self._frames(ch, worker)
            if ch.ended or ch.over is not None or ch.reading or len(ch.frames) >= READ_AHEAD:
                break
            ch.reading = True  # room again: read on, starting with what the reader holds
            self._selector.register(ch.stdout, selectors.EVENT_READ, (ch, "out"))
            self._parse(ch)
            if not ch.frames:
                break
        if ch.over is not None and not ch.busy and not ch.ended and not (
                ch.event is not None and ch.frames):
            self._end(ch, ch.over)

    def _frames(self, ch: _Channel, worker: Worker) -> None:
        while ch.frames and ch.event is not None and not ch.busy and not ch.ended:
            header, _ = ch.frames.popleft()
            kind = header.get("type")
            if kind == "call":
                worker.event_calls += 1
                quota = ch.run.quotas.ctx_calls_per_event
                op, args = header.get("op"), header.get("args")
                posted = "post" in header
                if posted and not (type(op) is str and op in POSTED_CALLS):
                    self._kill(ch, "protocol", f"a posted call must be one of "
                               f"{', '.join(sorted(POSTED_CALLS))}, got {str(op)[:40]!r}")
                    return
                if worker.event_calls > quota:
                    refusal = (f"quota: {quota:,} ctx calls in one {ch.hook} "
                               "(strategy_ctx_calls); the rest of this event's calls are "
                               "refused (RESOURCE_EXHAUSTED)")
                    if not posted:
                        self._send(ch, frame_bytes({"type": "reply", "error": refusal}))
                    elif worker.event_calls == quota + 1:  # one line for all that follow
                        ch.posted.append((header.get("at"), f"order ({op}) rejected: {refusal}"))
                    elif worker.event_calls >= 2 * quota:
                        # Posted orders need no answer, so nothing slows a worker that keeps
                        # sending them: past twice the quota it is stopped.
                        self._kill(ch, "quota", f"quota: {quota:,} ctx calls in one "
                                   f"{ch.hook} (strategy_ctx_calls): it went on sending "
                                   f"orders past it, {worker.event_calls:,} in this event")
                        return
                    continue
                if posted:
                    # The worker went on at once: nothing is answered; a refusal is a line of
                    # its log, where the worker was when it sent the order.
                    try:
                        line = ch.run.post(op, args)  # type: ignore[arg-type]
                    except Exception as e:
                        self._failed(ch, e)
                        return
                    if line is not None:
                        ch.posted.append((header.get("at"), line))
                    continue
                if type(op) is str and op in INLINE_CALLS:
                    # Answered from the broker's memory, never waiting for a commit: made
                    # here, without a trip through the door pool and back.
                    reply = self._call_here(ch, op, args)
                    if ch.ended:
                        return
                    if reply is not None:
                        self._send(ch, frame_bytes(reply))
                    continue
                ch.busy = True
                self.door.submit(self._call, ch, op, args)
            elif kind == "done":
                worker.expect_progress = False
                if ch.posted:
                    join_posted_lines(header, ch.posted)
                    ch.posted = []
                error = header.get("error")
                ch.event.error = None if error is None else untrusted_text(str(error), 16_000)
                # The event's broker calls were answered before they were durable: it ends
                # once they are (one wait for the event, not one per call).
                if ch.run.settle_calls(functools.partial(self._settle_soon, ch, header)):
                    ch.busy = True
                else:
                    self._done(ch, header)
            elif kind == "error":  # the worker could not go on (out of memory, ...)
                message = untrusted_text(str(header.get("message", "failed")), 16_000)
                reason = "memory" if header.get("reason") == "memory" else "error"
                worker.kill(reason, message)
                self._end(ch, SandboxKilled(f"{ch.run.name}: {message}", reason))
                return
            else:  # its EOF follows, and the run ends with the kill's reason
                worker.kill("protocol", f"unexpected frame {kind!r} during an event")

    def _kill(self, ch: _Channel, reason: str, detail: str) -> None:
        """Kill the worker for what it sent and end the run now: the frames it sent after
        that are never read (its EOF may sit behind them)."""
        ch.worker.kill(reason, detail)
        name = ch.run.name  # worded as the supervisor words a death (Worker.death)
        self._end(ch, SandboxKilled(
            f"{name}: the sandbox worker broke the protocol: {detail}" if reason == "protocol"
            else f"{name}: stopped by the sandbox ({reason}): {detail}", reason))

    def _done(self, ch: _Channel, header: dict[str, Any]) -> None:
        """The worker's ``done``, its calls durable: its state committed, then the next."""
        if "state_json" in header:  # its commit waits for the group's
            ch.busy = True
            self.door.submit(self._commit, ch, ch.event, header)
        else:
            ch.run.event_done(ch.event, header)
            self._over(ch)

    def _settle_soon(self, ch: _Channel, header: dict[str, Any], lost: str | None) -> None:
        """The event's calls are settled (on the broker's commit thread): on to the loop."""
        self.soon(lambda: self._guarded(ch, lambda c: self._settled(c, header, lost)))

    def _settled(self, ch: _Channel, header: dict[str, Any], lost: str | None) -> None:
        if not self._unbusy(ch):
            return
        if lost is not None:
            # The worker was told of requests the store then lost: what it knows is no
            # longer true. It restarts from what is stored (its state of this event is not).
            message = f"the host could not store this event's orders: {lost}"
            ch.worker.kill("error", message)
            self._end(ch, SandboxKilled(f"{ch.run.name}: {message}", "error"))
            return
        self._done(ch, header)
        self._handle(ch)

    def _over(self, ch: _Channel) -> None:
        """The event in flight is done: account for it, then the next one."""
        event, ch.event = ch.event, None
        if not ch.run.event_over(event):
            self._end(ch, None)
            return
        self._pump(ch)

    # ------------------------------------------------------------------ pool threads

    def _call(self, ch: _Channel, op: object, args: object) -> None:
        def answer(reply: dict[str, Any]) -> None:
            self.soon(lambda: self._guarded(ch, lambda c: self._replied(c, reply)))

        try:
            ch.run.call(op, args, answer)
        except Exception as e:
            self.soon(functools.partial(self._fail_busy, ch, e))

    def _call_here(self, ch: _Channel, op: object, args: object) -> dict[str, Any] | None:
        """Make one of :data:`INLINE_CALLS` on the loop: its reply (None when the run failed:
        the door answers these at once, on the calling thread, or it is a bug of ours)."""
        got: list[dict[str, Any]] = []
        try:
            ch.run.call(op, args, got.append)
            if len(got) != 1:
                raise RuntimeError(f"the door answered a {op!r} call {len(got)} times at once")
        except Exception as e:
            self._failed(ch, e)
            return None
        return got[0]

    def _replied(self, ch: _Channel, reply: dict[str, Any]) -> None:
        if self._unbusy(ch):
            self._send(ch, frame_bytes(reply))
            self._handle(ch)

    def _commit(self, ch: _Channel, event: Any, header: dict[str, Any]) -> None:
        try:
            ch.run.event_done(event, header)
        except Exception as e:
            self.soon(functools.partial(self._fail_busy, ch, e))
            return
        self.soon(lambda: self._guarded(ch, self._committed))

    def _committed(self, ch: _Channel) -> None:
        if self._unbusy(ch):
            self._over(ch)
            self._handle(ch)

    def _fail_busy(self, ch: _Channel, failure: BaseException) -> None:
        self._unbusy(ch, failure)

    def _unbusy(self, ch: _Channel, failure: BaseException | None = None) -> bool:
        """A pool thread's work for the run is over; False when the run ended meanwhile
        (its end goes on now) or the work failed."""
        ch.busy = False
        if failure is not None:
            self._failed(ch, failure)
        if ch.ended:
            later, ch.finish_later = ch.finish_later, None
            if later is not None:
                self.life.submit(later)
            return False
        return True

    # ------------------------------------------------------------------ the end

    def _end(self, ch: _Channel, cause: BaseException | None) -> None:
        """Stop driving the run; it is finished on a life thread."""
        if ch.ended:
            return
        ch.ended = True
        for fd, on in ((ch.stdout, ch.reading), (ch.stderr, ch.stderr >= 0),
                       (ch.stdin, ch.writing)):
            if on:
                self._selector.unregister(fd)
        ch.reading = ch.writing = False
        if self._channels.get(id(ch.run)) is ch:
            del self._channels[id(ch.run)]
        event, ch.event = ch.event, None
        busy = ch.busy
        run = ch.run

        def finish() -> None:
            try:
                run.finish(cause, event)
            except Exception:
                log.exception("strategy %s: ending the run failed", run.name)

        if busy:  # a call or a commit still runs on a door thread: it ends first
            ch.finish_later = finish
        else:
            self.life.submit(finish)


class _HostFailure(Exception):
    """A bug of the host's side of a run (reported as the run's failure)."""


_DISPATCHER: Dispatcher | None = None
_DISPATCHER_LOCK = threading.Lock()


def join_posted_lines(done: dict[str, Any], lines: list[tuple[object, str]]) -> None:
    """Put the host's lines about an event's posted orders among the worker's own in its
    ``done`` (each where the worker was when it sent the order: ``at``, untrusted, else at
    the end), so the log reads as a back-test's, where the same line is written at the call."""
    logs = done.get("logs")
    own: list[object] = logs if isinstance(logs, list) else []
    n = len(own)
    placed = sorted((at if type(at) is int and 0 <= at <= n else n, k, line)
                    for k, (at, line) in enumerate(lines))  # in call order where equal
    merged: list[object] = []
    taken = 0
    for where, _, line in placed:
        merged.extend(own[taken:where])
        taken = max(taken, where)
        merged.append(line)
    merged.extend(own[taken:])
    done["logs"] = merged


def dispatcher() -> Dispatcher:
    """The process's one loop for live runs."""
    global _DISPATCHER
    with _DISPATCHER_LOCK:
        if _DISPATCHER is None:
            _DISPATCHER = Dispatcher()
        return _DISPATCHER
