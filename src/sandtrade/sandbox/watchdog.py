"""The watchdog: one thread that watches every worker of this process against its limits.

A worker is registered when it is spawned and unregistered when it is closed (or seen gone).
Twenty times a second the thread reads each worker's heartbeat page (a hook's budget is
measured to 50 ms); five times a second it reads ``/proc/PID/stat`` (CPU time) and
``/proc/PID/statm`` (resident memory) straight from the kernel (the kernel's own rlimits stop
an allocation or a CPU overrun at once; this gives the reason and the status figures); once a
second it reads the worker's children from ``/proc/PID/task/*/children``. It kills a worker
past its memory, CPU, wall-time or per-hook budget, or one that started a process after it
confined itself, with the reason a person reads in the strategy's status.

Why one thread and ``/proc``: a thread per worker polling psutil's ``children(recursive=True)``
read every process on the box on every tick, so the host's CPU grew with the square of the
number of workers (16 CPU-s per 15 s at 50 idle workers; see docs/plans/many-strategies.md).

Only a hook's start is progress (the heartbeat the worker increments before each hook, or
the host beginning to wait): a frame is not, because a hook that calls ``ctx`` in a loop
sends a frame per call and must still meet its budget.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Protocol

from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.zygote import WorkerProcess

__all__ = ["CHILDREN_EVERY", "TICK_SECONDS", "USAGE_EVERY", "Watchable", "Watchdog", "watchdog"]

#: How often every worker's memory, CPU and budgets are read.
TICK_SECONDS = 0.05
#: How often every worker's memory and CPU are read from /proc.
USAGE_EVERY = 0.2
#: How often every worker's children are listed (a worker may have none once confined).
CHILDREN_EVERY = 1.0

log = logging.getLogger(__name__)

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def _read(path: str) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        return os.read(fd, 4096)
    finally:
        os.close(fd)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of process ``pid`` (its own, not its children's)."""
    stat = _read(f"/proc/{pid}/stat")
    # The command name (field 2) is in parentheses and may hold anything, spaces included:
    # the fields that follow are counted from the last ')'. utime and stime are fields 14-15.
    fields = stat[stat.rindex(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def resident_bytes(pid: int) -> int:
    """Resident memory of process ``pid``, in bytes."""
    return int(_read(f"/proc/{pid}/statm").split()[1]) * _PAGE


def first_child(pid: int) -> int | None:
    """A child of any thread of process ``pid``, or None (a grandchild has a child parent)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            children = _read(f"/proc/{pid}/task/{tid}/children").split()
        except OSError:
            continue
        if children:
            return int(children[0])
    return None


class Watchable(Protocol):
    """What the watchdog reads and writes of a worker
    (:class:`sandtrade.sandbox.supervisor.Worker`; a protocol, so that this module does not
    import the supervisor that imports it)."""

    limits: WorkerLimits
    proc: WorkerProcess
    started: float
    wall_limit: bool
    confined: bool
    expecting_since: float
    peak_rss: int
    rss: int
    cpu_seconds: float
    event_hook: str
    event_calls: int

    @property
    def pid(self) -> int: ...

    @property
    def expect_progress(self) -> bool: ...

    def beats(self) -> int: ...

    def kill(self, reason: str, detail: str) -> None: ...


@dataclass
class _Watched:
    """What the watchdog remembers of one worker between ticks."""

    worker: Watchable
    last_beats: int = -1
    last_change: float = 0.0
    next_children: float = 0.0
    next_usage: float = 0.0


class Watchdog:
    """One thread for all workers; it starts with the first worker registered and stays."""

    def __init__(self, tick: float = TICK_SECONDS, children_every: float = CHILDREN_EVERY
                 ) -> None:
        self.tick = tick
        self.children_every = children_every
        self._watched: dict[int, _Watched] = {}
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def register(self, worker: Watchable) -> None:
        """Watch ``worker`` from now until it is unregistered or gone."""
        # A first reading at once: a worker forked by the zygote may be running its task
        # before the next tick, and its status should not show 0 bytes meanwhile.
        try:
            worker.rss = worker.peak_rss = resident_bytes(worker.pid)
            worker.cpu_seconds = cpu_seconds(worker.pid)
        except (OSError, ValueError, IndexError):
            pass  # gone already: the first tick sees it
        with self._cond:
            self._watched[id(worker)] = _Watched(worker, last_change=time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sandbox-watchdog",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def unregister(self, worker: Watchable) -> None:
        """Stop watching ``worker`` (closed by its owner)."""
        with self._cond:
            entry = self._watched.get(id(worker))
            if entry is not None and entry.worker is worker:  # not a newer one at its id
                del self._watched[id(worker)]

    def watching(self) -> int:
        """How many workers are watched now."""
        with self._cond:
            return len(self._watched)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._watched:  # idle: no tick until a worker is registered
                    self._cond.wait()
                entries = list(self._watched.values())
            now = time.monotonic()
            for entry in entries:
                try:
                    alive = self._check(entry, now)
                except Exception:  # a bug of ours: the one thread must go on for the others
                    log.exception("watchdog: checking worker %s failed", entry.worker.pid)
                    alive = True
                if not alive:
                    self.unregister(entry.worker)
            time.sleep(self.tick)

    def _check(self, entry: _Watched, now: float) -> bool:
        """Apply every limit to one worker; False once it is gone."""
        worker = entry.worker
        lim = worker.limits
        usage = now >= entry.next_usage
        if usage:
            entry.next_usage = now + USAGE_EVERY
            if worker.proc.poll() is not None:
                return False
            confined = worker.confined  # read before sampling: children seen are post-ready
            pid = worker.pid
            try:
                rss = resident_bytes(pid)
                cpu = cpu_seconds(pid)
            except (OSError, ValueError, IndexError):
                return False  # gone between the poll and the read
            worker.peak_rss = max(worker.peak_rss, rss)
            worker.rss = rss
            worker.cpu_seconds = cpu
            child = None
            if now >= entry.next_children:
                entry.next_children = now + self.children_every
                child = first_child(pid)
            if rss > lim.memory_mb * 1024 * 1024:
                worker.kill("memory", f"resident memory {rss / 2**20:,.0f} MiB passed the "
                            f"limit of {lim.memory_mb} MiB")
                return True
            if cpu > lim.cpu_seconds + 1:
                worker.kill("cpu", f"used more than its {lim.cpu_seconds} s of CPU time")
                return True
            if child is not None and confined:
                worker.kill("child", f"started a child process (pid {child})")
                return True
        beats = worker.beats()
        if beats != entry.last_beats or worker.expecting_since > entry.last_change:
            entry.last_beats, entry.last_change = beats, now
        if worker.wall_limit and now - worker.started > lim.wall_seconds:
            worker.kill("timeout", f"ran longer than its {lim.wall_seconds:.0f} s")
        elif worker.expect_progress and now - entry.last_change > lim.event_seconds:
            calls = worker.event_calls
            worker.kill("timeout", f"{worker.event_hook} ran past its {lim.event_seconds:g} s "
                        "budget" + (f" while calling ctx {calls:,} times" if calls else ""))
        return True


_WATCHDOG = Watchdog()


def watchdog() -> Watchdog:
    """The process's one watchdog."""
    return _WATCHDOG
