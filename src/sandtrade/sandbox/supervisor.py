"""The supervisor: the host side of the sandbox. Starts, watches, kills and records workers.

A killed child cannot report its own death, so the supervisor owns the record of a worker's
life: it watches from outside (stderr volume here; resident memory, CPU time, wall time of the
run and of each hook and child processes through the process's one
:mod:`~sandtrade.sandbox.watchdog`), kills the whole process group when a limit is passed,
and says why. Every frame the worker sends is untrusted input, and so is the shared
heartbeat page: it is sealed at its 8 bytes (``F_SEAL_SHRINK``/``GROW``), because a worker that
truncated it made the supervisor's next read die of SIGBUS (found by tests/security).

It is one file because a :class:`Worker` is the supervisor's record of one process's life:
the boot that fills it (spawn, cgroup, uid, the ``ready`` frame) and the reading, killing and
classifying of its end share its fields and their order of events, read best together.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import queue
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sandtrade.broker.fills import BUILTIN_FILL_PROFILES, FillProfile
from sandtrade.errors import SandtradeError
from sandtrade.sandbox.cpu import CpuPlacement, CpuSlot
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.watchdog import watchdog
from sandtrade.sandbox.wire import (
    FrameReader,
    FrameTooLarge,
    ProtocolError,
    read_frame,
    write_frame,
)
from sandtrade.sandbox.zygote import WorkerProcess, Zygote, ZygoteChild, ZygoteError, ZygoteSlot
from sandtrade.strategy.modules import (
    BUILTIN_STRATEGY_MODULES,
    STANDARD_MODULES,
    StrategyModule,
    imported_modules,
    may_price_options,
    narrowed,
)

__all__ = ["SandboxKilled", "Supervisor", "Worker", "WorkerExit", "worker_uid"]


def _options_wanted(task: dict[str, Any] | None) -> bool:
    """Whether a worker loads QuantLib before it confines itself: always when its task is not
    known yet (a spare), else when the task may price options (see may_price_options)."""
    source = task.get("source") if task is not None else None
    if not isinstance(source, str):
        return True
    symbols = task.get("symbols") if task is not None else None
    return may_price_options(source, symbols if isinstance(symbols, list) else ())

NOBODY = 65534
#: Workers run as uid (and gid) WORKER_UID_BASE + their pid when the host is root: a uid of
#: their own, unique among live processes, so that no worker can signal, trace or share files
#: with another (or with a spare waiting for the next strategy) even where seccomp and
#: Landlock are missing. 0x70000000 starts the range systemd leaves unused (UIDS-GIDS.md:
#: above the container range, below 2^31, which some tools treat as signed).
WORKER_UID_BASE = 0x70000000
#: Size asked for the pipe that carries bars to the worker (Linux caps it at pipe-max-size).
PIPE_BYTES = 1 << 20
#: With ``keep_spare``: how long a started task runs before the next spare boots (unless it
#: ends sooner).
SPARE_DELAY = 1.0
#: The most module names a worker may list in its ``ready`` frame (``report_modules``); a
#: booted worker holds about 300.
MAX_MODULES = 5_000
#: The two sizes that start every frame.
_FRAME_HEAD = 8


def _ids_mapped(first: int, count: int) -> bool:
    """Whether this process's user namespace maps uids and gids ``first .. first+count-1``."""

    def mapped(table: str) -> bool:
        try:
            lines = Path(f"/proc/self/{table}").read_text().splitlines()
        except OSError:
            return False
        for line in lines:
            inside, _outside, length = (int(x) for x in line.split())
            if inside <= first and first + count <= inside + length:
                return True
        return False

    return mapped("uid_map") and mapped("gid_map")


def _pid_max() -> int:
    try:
        return int(Path("/proc/sys/kernel/pid_max").read_text())
    except (OSError, ValueError):
        return 1 << 22  # the kernel's largest


_OWN_UIDS: bool | None = None


def worker_uid(pid: int) -> int:
    """The uid the worker with ``pid`` drops to (as root): its own, or ``nobody`` where the
    user namespace does not map the range (a container with a partial uid map)."""
    global _OWN_UIDS
    if _OWN_UIDS is None:
        _OWN_UIDS = _ids_mapped(WORKER_UID_BASE, _pid_max() + 1)
    return WORKER_UID_BASE + pid if _OWN_UIDS else NOBODY


_SPAWNER: ThreadPoolExecutor | None = None
_SPAWNER_LOCK = threading.Lock()


def _spawner() -> ThreadPoolExecutor:
    """The thread that boots spare workers. A worker's parent-death signal (PR_SET_PDEATHSIG)
    fires when the *thread* that spawned it ends, not the process: a spare spawned by a
    short-lived thread was killed as soon as that thread finished (found by
    tests/security/test_spare.py). A pool thread lives as long as the process."""
    global _SPAWNER
    with _SPAWNER_LOCK:
        if _SPAWNER is None:
            _SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-spare")
        return _SPAWNER


class SandboxKilled(SandtradeError):
    """A worker ended abnormally: killed for a limit, crashed, or broke the protocol."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass
class WorkerExit:
    """How and why a worker ended. ``reason``: exit, error, memory, cpu, timeout, output,
    child, crash, protocol, killed."""

    reason: str
    detail: str
    returncode: int | None


@dataclass
class Worker:
    """One running worker process and what the supervisor knows about it."""

    proc: WorkerProcess
    workdir: str
    limits: WorkerLimits
    name: str
    started: float = field(default_factory=time.monotonic)
    frames: queue.Queue[tuple[dict[str, Any], bytes] | BaseException] = field(
        default_factory=queue.Queue)
    stderr: bytearray = field(default_factory=bytearray)
    kill_reason: tuple[str, str] | None = None
    _expecting: bool = False
    #: When the host last began to wait for the worker's hooks (see :attr:`expect_progress`).
    expecting_since: float = 0.0
    #: Set once the worker reported ``ready``: before that, its trusted start-up may run
    #: helpers (``ctypes.util.find_library`` shells out), after it no process may have children.
    confined: bool = False
    #: Resident memory (peak and now) and CPU time, as the watchdog last read them.
    peak_rss: int = 0
    rss: int = 0
    cpu_seconds: float = 0.0
    #: The hook the host waits for and the ``ctx`` calls it made so far, set by whoever
    #: drives the worker: they name what ran past its budget in the kill reason.
    event_hook: str = "a hook"
    event_calls: int = 0
    #: False for a live run, which has no end: its CPU, memory and per-event limits still hold.
    wall_limit: bool = True
    layers: dict[str, str] = field(default_factory=dict)
    #: The modules the worker held before it confined itself, sorted; None unless the
    #: supervisor asked for them (``report_modules``).
    modules: list[str] | None = None
    heartbeat: mmap.mmap | None = None
    #: Called once when the worker is closed (the supervisor boots the next spare then).
    on_close: Callable[[], None] | None = None
    #: Its place in the CPU shares, released when it is closed.
    cpu_slot: CpuSlot | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def expect_progress(self) -> bool:
        """True while the host waits for the worker's hooks: each must start within the
        per-event budget. The budget counts from when this was set, not from the worker's
        last sign of life: a spare, or a live strategy between bars, may have been quiet
        for much longer than one hook may take."""
        return self._expecting

    @expect_progress.setter
    def expect_progress(self, value: bool) -> None:
        if value and not self._expecting:
            self.expecting_since = time.monotonic()
        self._expecting = value

    def beats(self) -> int:
        """How many hook calls the worker has started (read from shared memory)."""
        if self.heartbeat is None or self.heartbeat.closed:
            return 0
        try:
            return int(struct.unpack_from("=Q", self.heartbeat)[0])
        except ValueError:  # closed meanwhile by close(), on another thread
            return 0

    @property
    def pid(self) -> int:
        """The worker's pid (also its process group id)."""
        return self.proc.pid

    def send(self, header: dict[str, Any], payload: bytes = b"") -> None:
        """Write one frame to the worker; a dead worker surfaces as ``SandboxKilled`` later."""
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ValueError, OSError):
            write_frame(self.proc.stdin, header, payload)

    def close_input(self) -> None:
        """Close the worker's stdin (no more frames)."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()

    def recv(self, timeout: float | None = None) -> tuple[dict[str, Any], bytes]:
        """The next frame; raises ``SandboxKilled`` when the worker is gone or was killed."""
        try:
            item = self.frames.get(timeout=timeout)
        except queue.Empty:
            self.kill("timeout", f"no answer within {timeout:.0f} s")
            item = self.frames.get()
        if isinstance(item, BaseException):
            raise self.death(item)
        return item

    def kill(self, reason: str, detail: str) -> None:
        """Kill the whole process group, remembering the first reason given."""
        with self._lock:
            if self.kill_reason is None:
                self.kill_reason = (reason, detail)
        if self.proc.returncode is not None:
            return  # ended and reaped: its pid may be another process's by now
        if isinstance(self.proc, ZygoteChild):
            self.proc.kill()
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def death(self, cause: BaseException) -> SandboxKilled:
        """What ended the worker whose channel failed with ``cause`` (EOF, a protocol error):
        waits for the process, so that the reason is the one it died of."""
        exit_ = self.wait_exit()
        msg = f"{self.name}: stopped by the sandbox ({exit_.reason}): {exit_.detail}"
        if isinstance(cause, FrameTooLarge):  # what it sent, not a riddle about frames
            msg = f"{self.name}: the worker sent {cause}"
            exit_.reason = "protocol"
        elif isinstance(cause, ProtocolError):
            msg = f"{self.name}: the sandbox worker broke the protocol: {cause}"
            exit_.reason = "protocol"
        return SandboxKilled(msg, exit_.reason)

    def wait_exit(self, timeout: float = 5.0) -> WorkerExit:
        """Wait for the process to end and classify how it ended."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill("timeout", "did not exit")
            code = self.proc.wait()
        if self.kill_reason is not None:
            return WorkerExit(*self.kill_reason, code)
        if code == 0:
            return WorkerExit("exit", "finished", code)
        if code < 0:
            sig = -code
            if sig == signal.SIGXCPU:
                return WorkerExit("cpu", f"used its {self.limits.cpu_seconds} s of CPU time "
                                  "(killed by the kernel)", code)
            if sig == signal.SIGKILL:
                return WorkerExit("killed", "killed by SIGKILL from outside the supervisor",
                                  code)
            return WorkerExit("crash", f"crashed with signal {signal.Signals(sig).name}", code)
        tail = bytes(self.stderr[-400:]).decode(errors="replace").strip()
        return WorkerExit("crash", f"exited with status {code}" + (f": {tail}" if tail else ""),
                          code)

    def close(self) -> None:
        """Make sure the process group is gone and the private directory removed."""
        if self.proc.poll() is None:
            self.kill("exit", "closed by the host")
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=5)
        watchdog().unregister(self)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        if isinstance(self.proc, ZygoteChild) and self.proc.returncode is not None:
            self.proc.release()
        shutil.rmtree(self.workdir, ignore_errors=True)
        if self.cpu_slot is not None:
            self.cpu_slot.release()
        if self.heartbeat is not None:
            with contextlib.suppress(BufferError, ValueError):
                self.heartbeat.close()
        callback, self.on_close = self.on_close, None
        if callback is not None:
            callback()


class Supervisor:
    """Starts workers and watches them. One supervisor serves many workers.

    With ``keep_spare``, the supervisor boots the next worker when a task it handed out ends,
    or after it has run :data:`SPARE_DELAY` seconds, so the next :meth:`start` finds a worker
    already warm and confined (a worker boots in about 140 ms, most of it importing). A spare
    is used once, for one task, like every worker: nothing of one strategy run can meet
    another. It costs one idle process (about
    36 MiB); a long-lived host turns it on, a one-shot command does not. :meth:`close` ends it.

    ``fill_profiles`` are the fill profiles the host's plugins contribute: each worker imports
    them by reference (``module:QualName``) before it confines itself, so a class must be
    importable by that name (defined at a module's top level). Built-ins are left out: every
    worker has them. The worker never loads plugins itself. With ``report_modules``, each
    worker lists the modules it holds (:attr:`Worker.modules`; ``sandtrade doctor
    --worker-modules``). With ``cpu``, each worker is moved into its CPU share right after it
    is spawned (:mod:`sandtrade.sandbox.cpu`).

    ``strategy_modules`` are the modules plugins contribute for strategies to import
    (``sandtrade_strategy_modules``; None: the built-ins, numpy and talib): each worker builds
    them by reference before it confines itself (only those its strategy imports, when the
    task is known before the worker boots). ``modules`` narrows what strategies may import
    (``[sandbox] modules``); ``python`` is the interpreter workers (and the zygote) run
    (``[sandbox] python``; None: this one).

    With ``zygote``, workers are forked from a warm template process
    (:mod:`sandtrade.sandbox.zygote`) instead of booted cold: a few milliseconds instead of
    about 140 ms of CPU each; they confine themselves exactly as before. Should the zygote
    fail, workers are started as processes of their own (the zygote is tried again after
    ``ZYGOTE_RETRY`` s); :attr:`worker_start` says which. After :meth:`close` the zygote forks
    no more and ends with the last worker it forked.
    """

    #: How a worker is started. The security suite replaces it with a program that speaks the
    #: protocol as a worker would after an escape from the language layer, to test what the
    #: host does with whatever such a worker sends.
    worker_command: tuple[str, ...] = (sys.executable, "-I", "-m", "sandtrade.sandbox.worker")

    def __init__(self, limits: WorkerLimits | None = None, *, keep_spare: bool = False,
                 fill_profiles: Iterable[type[FillProfile]] = (),
                 report_modules: bool = False, cpu: CpuPlacement | None = None,
                 zygote: bool = False,
                 strategy_modules: Iterable[StrategyModule] | None = None,
                 modules: Iterable[str] | None = None, python: str | None = None) -> None:
        self.limits = limits or WorkerLimits()
        #: The modules plugins contribute (``sandtrade_strategy_modules``) as the boot frame
        #: names them (``[name, factory]``); each worker builds them before it confines
        #: itself. None: the built-ins (numpy, talib).
        self.strategy_modules: tuple[tuple[str, str], ...] = tuple(
            (m.name, m.factory) for m in (BUILTIN_STRATEGY_MODULES if strategy_modules is None
                                          else strategy_modules))
        #: ``[sandbox] modules``: what strategies may import, narrowed (None: everything).
        self.modules: tuple[str, ...] | None = None if modules is None else tuple(modules)
        #: ``[sandbox] python``: the interpreter workers run (None: this one).
        self.python = python
        if python is not None:
            self.worker_command = (python, *self.worker_command[1:])
        self.cpu = cpu
        self.keep_spare = keep_spare
        #: The plugins' fill profiles, as the boot frame names them (``module:QualName``).
        self.fill_profiles: tuple[str, ...] = tuple(
            f"{p.__module__}:{p.__qualname__}" for p in fill_profiles
            if p not in BUILTIN_FILL_PROFILES)
        self.report_modules = report_modules
        self._spare: Worker | None = None
        self._spare_lock = threading.Lock()
        self._booting: Future[None] | None = None
        self._closed = False
        self.zygote_wanted = zygote
        self._slot = ZygoteSlot(self.fill_profiles, self.strategy_modules, python)
        self._owns_slot = True

    @property
    def zygote(self) -> Zygote | None:
        """The zygote workers are forked from (started by the first worker), or None."""
        return self._slot.zygote

    @property
    def zygote_error(self) -> str | None:
        """Why the zygote is not used, once it failed."""
        return self._slot.error

    def sharing_zygote(self, limits: WorkerLimits | None = None) -> Supervisor:
        """Another supervisor (no spare, ``limits`` or these) whose workers fork from this
        one's zygote; this one's :meth:`close` ends the zygote."""
        other = Supervisor(limits or self.limits, cpu=self.cpu, zygote=self.zygote_wanted,
                           modules=self.modules, python=self.python)
        other.fill_profiles = self.fill_profiles
        other.strategy_modules = self.strategy_modules
        other._slot, other._owns_slot = self._slot, False
        return other

    @property
    def worker_start(self) -> str:
        """How workers start, for people (``sandtrade doctor``)."""
        if not self.zygote_wanted:
            return "process: each worker boots on its own (zygote off)"
        zygote = self._slot.zygote
        if zygote is not None and zygote.alive:
            return (f"zygote: workers fork from a warm template (pid {zygote.pid}) "
                    "and confine themselves")
        if self.zygote_error is not None:
            return f"process: each worker boots on its own (the zygote failed: " \
                f"{self.zygote_error})"
        return "zygote: not started yet"

    @property
    def spare(self) -> Worker | None:
        """The spare worker waiting for a task (``keep_spare``), or None."""
        return self._spare

    @property
    def spare_boot(self) -> Future[None] | None:
        """The boot of the latest spare: running, or done once that spare is waiting (or
        failed, or was closed); None before the first."""
        return self._booting

    def start(self, task: dict[str, Any], *, name: str, wall_limit: bool = True,
              threads: bool = True) -> Worker:
        """Start a worker for ``task`` (sent once the worker has confined itself); returns
        the worker, whose ``layers`` say which OS layers are on. A live run passes
        ``wall_limit=False``: it runs until it is stopped.

        With ``threads`` (a back-test), two threads read the worker's stdout (into
        :attr:`Worker.frames`, for :meth:`Worker.recv`) and its stderr. Without (a live run),
        nobody reads them: the caller drives the worker's pipes itself
        (:mod:`sandtrade.sandbox.dispatch`), from the frame boundary after ``ready``."""
        worker = self._take_spare() or self._boot(name, task=task)
        worker.name = name
        worker.started = time.monotonic()  # the run's wall time starts with its task
        worker.wall_limit = wall_limit
        worker.send({**task, "type": "task"})
        if threads:
            threading.Thread(target=self._read_frames, args=(worker,), daemon=True).start()
            threading.Thread(target=self._read_stderr, args=(worker,), daemon=True).start()
        if self.keep_spare:
            # Not at once: booting is a CPU-bound 0.14 s that would compete with the task
            # just started (on two cores, with the host's feeder, it cost a back-test 0.1 s).
            # When the task ends, or once it has run SPARE_DELAY, whichever comes first.
            timer = threading.Timer(SPARE_DELAY, self._refill)
            timer.daemon = True

            def ended() -> None:
                timer.cancel()  # its task is over: it must not boot one more later
                self._refill()

            worker.on_close = ended
            timer.start()
        return worker

    def close(self) -> None:
        """Stop keeping a spare and end the one waiting (workers given a task are the
        caller's to close)."""
        with self._spare_lock:
            self._closed = True
            spare, self._spare = self._spare, None
            booting = self._booting
        if spare is not None:
            spare.close()
        if booting is not None:  # a spare still booting closes itself (see _boot_spare)
            with contextlib.suppress(Exception):
                booting.result(timeout=35)
        if self._owns_slot:
            self._slot.close()

    def _take_spare(self) -> Worker | None:
        with self._spare_lock:
            spare, self._spare = self._spare, None
        if spare is not None and (spare.proc.poll() is not None or spare.kill_reason):
            spare.close()  # died while it waited (killed from outside, out of memory)
            return None
        return spare

    def _refill(self) -> None:
        with self._spare_lock:
            if self._closed or self._spare is not None or (
                    self._booting is not None and not self._booting.done()):
                return
            self._booting = _spawner().submit(self._boot_spare)

    def _boot_spare(self) -> None:
        try:
            spare = self._boot("spare worker", wall_limit=False)
        except Exception:  # the next start boots a worker of its own and says what failed
            return
        with self._spare_lock:
            if not self._closed and self._spare is None:
                self._spare = spare
                return
        spare.close()

    def importable(self) -> list[str]:
        """What strategies of this supervisor's workers may import (before an account's own
        narrowing)."""
        return narrowed([*STANDARD_MODULES, *(m[0] for m in self.strategy_modules)],
                        self.modules)

    def _modules_to_build(self, task: dict[str, Any] | None) -> list[list[str]]:
        """The strategy modules a worker builds before it confines itself (the boot frame's
        ``[name, factory]`` pairs): those ``[sandbox] modules`` keeps, and, when the task is
        known before the worker boots (not a spare's), only those its source imports."""
        wanted = [m for m in self.strategy_modules
                  if self.modules is None or m[0] in self.modules]
        source = task.get("source") if task is not None else None
        used = imported_modules(source) if isinstance(source, str) else None
        return [list(m) for m in wanted if used is None or m[0] in used]

    def _boot(self, name: str, *, wall_limit: bool = True,
              task: dict[str, Any] | None = None) -> Worker:
        """Spawn a worker and wait for it to warm up and confine itself (its ``ready``)."""
        # The heartbeat: 8 shared bytes the worker increments before every hook call; the
        # watchdog kills a worker whose counter stands still past the per-event budget.
        # Sealed at its size: a worker (a payload past the language layer) that shrank the
        # page would crash this process with SIGBUS at the watchdog's next read.
        beat_fd = os.memfd_create("sandtrade-heartbeat", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(beat_fd, 8)
        fcntl.fcntl(beat_fd, fcntl.F_ADD_SEALS,
                    fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
        heartbeat = mmap.mmap(beat_fd, 8)
        workdir = tempfile.mkdtemp(prefix="sandtrade-worker-")
        os.chmod(workdir, 0o700)
        try:
            proc = self._spawn(workdir, beat_fd)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            heartbeat.close()
            raise
        finally:
            os.close(beat_fd)
        uid = worker_uid(proc.pid) if os.getuid() == 0 else None
        if uid is not None:  # before the boot frame: the worker drops to it only after
            os.chown(workdir, uid, uid)
        assert proc.stdin is not None and proc.stdout is not None
        # Bigger pipes: the next chunk of bars waits in one, and the worker's equity frames
        # (with the trades closed since the last) in the other, so that a worker never waits
        # for this process's reader thread to get the GIL (at 64 KiB it did, for 0.25 s of a
        # 200,000-bar run).
        for pipe in (proc.stdin, proc.stdout):
            with contextlib.suppress(OSError):
                fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        worker = Worker(proc=proc, workdir=workdir, limits=self.limits, name=name,
                        heartbeat=heartbeat, wall_limit=wall_limit)
        watchdog().register(worker)
        # sys_path: the worker imports the plugins' fill profiles from the host's import path
        # (it was started with -I, which ignores PYTHONPATH).
        worker.send({"type": "boot", "limits": self.limits.model_dump(),
                     "supervisor_pid": os.getpid(), "sys_path": sys.path,
                     "heartbeat_fd": beat_fd, "uid": uid,
                     "fill_profiles": list(self.fill_profiles),
                     "strategy_modules": self._modules_to_build(task),
                     "options": _options_wanted(task),
                     "importable": self.importable(),
                     "modules": None if self.modules is None else list(self.modules),
                     "report_modules": self.report_modules})
        try:
            header = _read_ready(worker, max(30.0, self.limits.event_seconds))
        except BaseException:
            worker.close()
            raise
        if header.get("type") != "ready" or not isinstance(header.get("layers"), dict):
            worker.kill("protocol", "first frame was not 'ready'")
            worker.close()
            raise SandboxKilled(f"{name}: the sandbox worker broke the protocol", "protocol")
        if self.report_modules:  # untrusted like every frame: a bounded list of names
            modules = header.get("modules")
            if not (type(modules) is list and len(modules) <= MAX_MODULES
                    and all(type(m) is str for m in modules)):
                worker.kill("protocol", f"its 'ready' frame did not list at most "
                            f"{MAX_MODULES:,} module names")
                worker.close()
                raise SandboxKilled(f"{name}: the sandbox worker broke the protocol",
                                    "protocol")
            worker.modules = list(modules)
        worker.layers = {str(k): str(v) for k, v in header["layers"].items()}
        worker.confined = True
        # Into its CPU share once booted (its imports are ours, and run at full speed) and
        # before it is given a task: no strategy code runs outside it.
        if self.cpu is not None:
            worker.cpu_slot = self.cpu.place(proc.pid)
        return worker

    def _spawn(self, workdir: str, beat_fd: int) -> WorkerProcess:
        """A new worker process in ``workdir``, waiting for its ``boot`` frame: forked by the
        zygote when there is one, else started as a process of its own."""
        zygote = self._zygote_ready()
        if zygote is not None:
            try:
                return zygote.spawn(workdir, beat_fd)
            except ZygoteError as e:
                self._zygote_failed(zygote, str(e))
        return subprocess.Popen(
            list(self.worker_command),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={}, cwd=workdir, close_fds=True, pass_fds=(beat_fd,), start_new_session=True)

    def _zygote_ready(self) -> Zygote | None:
        """The zygote to fork from, or None to start a process."""
        # A replaced worker_command (the security suite's fake workers) is started as is.
        if not self.zygote_wanted or self.worker_command[1:] != Supervisor.worker_command[1:] \
                or self.worker_command[0] != (self.python or Supervisor.worker_command[0]):
            return None
        return self._slot.ready()

    def _zygote_failed(self, zygote: Zygote, why: str) -> None:
        self._slot.failed(zygote, why)

    def _read_frames(self, worker: Worker) -> None:
        assert worker.proc.stdout is not None
        stream: IO[bytes] = worker.proc.stdout
        max_payload = worker.limits.result_bytes
        while True:
            try:
                frame = read_frame(stream, max_header=1 << 20, max_payload=max_payload)
            except BaseException as e:  # EOFError at exit, ProtocolError, OSError
                if isinstance(e, ProtocolError):
                    worker.kill("protocol", f"the worker sent {e}" if isinstance(
                        e, FrameTooLarge) else str(e))
                worker.frames.put(e)
                return
            worker.frames.put(frame)

    def _read_stderr(self, worker: Worker) -> None:
        assert worker.proc.stderr is not None
        cap = worker.limits.stderr_bytes
        while chunk := worker.proc.stderr.read1(65536):  # type: ignore[attr-defined]
            if len(worker.stderr) + len(chunk) > cap:
                worker.kill("output", f"wrote more than {cap:,} bytes to stderr")
                return
            worker.stderr.extend(chunk)


def _read_ready(worker: Worker, timeout: float) -> dict[str, Any]:
    """The worker's first frame (its ``ready``), read on the booting thread, with no thread
    of the worker's own: exactly the frame's bytes are read, so whoever reads the worker next
    (its reader thread, or the live runs' loop) starts at a frame boundary. Its stderr is kept
    meanwhile, within its cap; past ``timeout`` it is killed."""
    assert worker.proc.stdout is not None and worker.proc.stderr is not None
    out, err = worker.proc.stdout.fileno(), worker.proc.stderr.fileno()
    poller = select.poll()
    poller.register(out, select.POLLIN)
    poller.register(err, select.POLLIN)
    deadline = time.monotonic() + timeout
    data = bytearray()
    want = _FRAME_HEAD
    sizes: tuple[int, int] | None = None
    cap = worker.limits.stderr_bytes
    try:
        while len(data) < want:
            left = deadline - time.monotonic()
            if left <= 0 and worker.kill_reason is None:
                worker.kill("timeout", f"no answer within {timeout:.0f} s")
            for fd, _ in poller.poll(max(0.0, left) * 1000 if left > 0 else 100):
                if fd == err:
                    chunk = os.read(err, 65536)
                    if not chunk:
                        poller.unregister(err)
                    elif len(worker.stderr) + len(chunk) > cap:
                        worker.kill("output", f"wrote more than {cap:,} bytes to stderr")
                        poller.unregister(err)
                    else:
                        worker.stderr.extend(chunk)
                    continue
                chunk = os.read(out, want - len(data))
                if not chunk:
                    raise EOFError("channel closed")
                data += chunk
                if sizes is None and len(data) == _FRAME_HEAD:
                    # The caps of read_frame, with its error text (the reader checks them).
                    reader = FrameReader(max_header=1 << 20,
                                         max_payload=worker.limits.result_bytes)
                    reader.feed(bytes(data))
                    reader.next()
                    sizes = struct.unpack("!II", data)
                    want = _FRAME_HEAD + sizes[0] + sizes[1]
        reader = FrameReader(max_header=1 << 20, max_payload=worker.limits.result_bytes)
        reader.feed(bytes(data))
        frame = reader.next()
        assert frame is not None
    except (EOFError, ProtocolError, OSError) as e:
        if isinstance(e, ProtocolError):
            worker.kill("protocol", str(e))
        raise worker.death(e) from None
    return frame[0]
