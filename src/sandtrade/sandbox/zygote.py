"""The host side of the zygote: workers forked from a warm template instead of booted cold.

A worker booted by the host spends about 140 ms of CPU importing and warming up before it
confines itself. :class:`Zygote` starts one process that does that once
(:mod:`sandtrade.sandbox.worker.zygote`) and then forks a worker per :meth:`Zygote.spawn`:
the host makes the child's pipes and heartbeat page and hands them over (``SCM_RIGHTS``); the
child confines itself exactly as a worker the host started does, before it reads its first
frame. The zygote itself is never confined and runs no strategy code.

The children are the zygote's, not the host's, so the host cannot ``waitpid`` them: the zygote
reports each exit status, keeps each exited child a zombie until the host is done with it
(``reap`` in :meth:`ZygoteChild.release`, so a pid the host may still signal is never reused
meanwhile), and the host holds a pidfd of each child for the case where the zygote itself is
gone. :class:`WorkerProcess` is what the supervisor, the watchdog and the live runs' loop use
of a worker's process: a ``subprocess.Popen`` and a :class:`ZygoteChild` both are one.

Deaths: the zygote asks for SIGKILL when the host dies, each child when the zygote dies. A
zygote that dies takes its children with it (their status reads as killed by SIGKILL); one
that is closed forks no more and ends after its last child.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any, Protocol

from sandtrade.errors import SandtradeError

__all__ = ["ZYGOTE_RETRY", "WorkerProcess", "Zygote", "ZygoteChild", "ZygoteError", "ZygoteSlot"]

#: How long the zygote may take to import and warm up, and a spawn to be answered.
BOOT_SECONDS = 30.0
SPAWN_SECONDS = 30.0
#: The largest message the zygote sends.
_MAX_MESSAGE = 1 << 16
#: After the zygote failed, how long workers are started without one before it is tried again.
ZYGOTE_RETRY = 60.0

log = logging.getLogger(__name__)
_ZYGOTE_STARTER: ThreadPoolExecutor | None = None
_STARTER_LOCK = threading.Lock()


class WorkerProcess(Protocol):
    """A worker's process as the host uses it: ``subprocess.Popen`` or :class:`ZygoteChild`.
    The process leads its own process group (its pid is the group's id)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    @property
    def stdin(self) -> IO[bytes] | None: ...

    @property
    def stdout(self) -> IO[bytes] | None: ...

    @property
    def stderr(self) -> IO[bytes] | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...


class ZygoteError(SandtradeError):
    """The zygote could not start or fork a worker (the supervisor then starts one itself)."""


class ZygoteChild:
    """A worker forked by the zygote, with the host's ends of its pipes."""

    def __init__(self, zygote: Zygote, pid: int, stdin: IO[bytes], stdout: IO[bytes],
                 stderr: IO[bytes]) -> None:
        self._zygote = zygote
        self._pid = pid
        self._stdin, self._stdout, self._stderr = stdin, stdout, stderr
        self._returncode: int | None = None
        self._ended = threading.Event()
        #: True once the zygote is gone: the child was killed with it and may be reaped by
        #: someone else, so its pid is no longer safe to signal.
        self.orphaned = False
        self.pidfd: int | None = None
        with contextlib.suppress(OSError):
            self.pidfd = os.pidfd_open(pid)

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def returncode(self) -> int | None:
        return self._returncode

    @property
    def stdin(self) -> IO[bytes] | None:
        return self._stdin

    @property
    def stdout(self) -> IO[bytes] | None:
        return self._stdout

    @property
    def stderr(self) -> IO[bytes] | None:
        return self._stderr

    def poll(self) -> int | None:
        """Its exit status (as ``Popen.returncode``) once the zygote reported it, else None."""
        return self._returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for its exit status; ``subprocess.TimeoutExpired`` past ``timeout``."""
        if not self._ended.wait(timeout):
            raise subprocess.TimeoutExpired(f"zygote child {self._pid}", timeout or 0.0)
        assert self._returncode is not None
        return self._returncode

    def kill(self) -> None:
        """SIGKILL its whole process group (its pid is held as long as it is not released)."""
        if self.orphaned:
            if self.pidfd is not None:
                with contextlib.suppress(OSError):
                    signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._pid, signal.SIGKILL)

    def release(self) -> None:
        """The host is done with it (it has ended): the zygote may reap it."""
        if self.pidfd is not None:
            with contextlib.suppress(OSError):
                os.close(self.pidfd)
            self.pidfd = None
        if not self.orphaned:
            self._zygote.reap(self._pid)

    def ended(self, returncode: int) -> None:
        """Record its exit status (from the zygote's report)."""
        if self._returncode is None:
            self._returncode = returncode
        self._ended.set()


@dataclass
class _Request:
    future: Future[ZygoteChild]
    files: tuple[IO[bytes], IO[bytes], IO[bytes]]


class Zygote:
    """One zygote process and the children it forked for this host.

    :meth:`start` must be called on a thread that lives as long as the process: the zygote's
    parent-death signal fires when the thread that spawned it ends.
    """

    command: tuple[str, ...] = (sys.executable, "-I", "-m", "sandtrade.sandbox.worker.zygote")

    def __init__(self, *, sys_path: list[str], fill_profiles: tuple[str, ...],
                 strategy_modules: tuple[tuple[str, str], ...] = (),
                 python: str | None = None) -> None:
        self.sys_path = list(sys_path)
        self.fill_profiles = fill_profiles
        self.strategy_modules = strategy_modules
        if python is not None:
            self.command = (python, *self.command[1:])
        self.proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Request] = {}
        self._children: dict[int, ZygoteChild] = {}
        self._errors: IO[bytes] | None = None
        self._dead: str | None = None
        #: How many threads the zygote had at each fork it reported (always 1).
        self.threads_at_fork: list[int] = []

    @property
    def pid(self) -> int | None:
        """The zygote's pid, once started."""
        return self.proc.pid if self.proc is not None else None

    @property
    def alive(self) -> bool:
        """Started and not gone."""
        return self.proc is not None and self._dead is None and self.proc.poll() is None

    def start(self) -> None:
        """Start the zygote and wait until it is warm; raises :class:`ZygoteError`."""
        host_end, zygote_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._errors = tempfile.TemporaryFile(prefix="sandtrade-zygote-")  # noqa: SIM115
        try:
            self.proc = subprocess.Popen(
                [*self.command, str(zygote_end.fileno())], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=self._errors, env={}, cwd="/",
                close_fds=True, pass_fds=(zygote_end.fileno(),), start_new_session=True)
        except OSError as e:
            host_end.close()
            raise ZygoteError(f"the zygote could not be started: {e}") from None
        finally:
            zygote_end.close()
        self._sock = host_end
        try:
            host_end.sendall(json.dumps({"op": "boot", "host_pid": os.getpid(),
                                         "sys_path": self.sys_path,
                                         "fill_profiles": list(self.fill_profiles),
                                         "strategy_modules": [
                                             list(m) for m in self.strategy_modules]}
                                        ).encode())
            host_end.settimeout(BOOT_SECONDS)
            data = host_end.recv(_MAX_MESSAGE)
            host_end.settimeout(None)
            message = json.loads(data) if data else {}
        except (OSError, ValueError) as e:
            message = {"error": str(e)}
        if message.get("op") != "ready":
            with contextlib.suppress(OSError):
                host_end.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
            why = self.stderr_tail()
            self.close()
            self._errors.close()
            raise ZygoteError(f"the zygote did not get ready: {why}" + (
                f" ({message['error']})" if "error" in message else ""))
        threading.Thread(target=self._read, name="sandbox-zygote", daemon=True).start()

    def spawn(self, workdir: str, heartbeat_fd: int) -> ZygoteChild:
        """Fork a worker in ``workdir`` with the heartbeat page ``heartbeat_fd``; it waits
        for its ``boot`` frame. Raises :class:`ZygoteError`."""
        if not self.alive or self._sock is None:
            raise ZygoteError(f"the zygote is gone: {self._dead or 'not started'}")
        pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]
        theirs = [pipes[0][0], pipes[1][1], pipes[2][1]]
        # Buffered as Popen's are; closed by the worker's owner (Worker.close).
        files = (os.fdopen(pipes[0][1], "wb"), os.fdopen(pipes[1][0], "rb"),
                 os.fdopen(pipes[2][0], "rb"))
        future: Future[ZygoteChild] = Future()
        try:
            with self._send_lock:
                request = next(self._ids)
                with self._lock:
                    self._pending[request] = _Request(future, files)
                socket.send_fds(self._sock, [json.dumps(
                    {"op": "spawn", "id": request, "cwd": workdir}).encode()],
                    [*theirs, heartbeat_fd])
        except OSError as e:
            for f in files:
                f.close()
            raise ZygoteError(f"the zygote is gone: {e}") from None
        finally:
            for fd in theirs:
                os.close(fd)
        try:
            return future.result(timeout=SPAWN_SECONDS)
        except TimeoutError:
            raise ZygoteError(f"the zygote did not fork within {SPAWN_SECONDS:.0f} s"
                              ) from None

    def reap(self, pid: int) -> None:
        """Let the zygote reap its ended child ``pid``."""
        if self._sock is None:
            return
        with self._send_lock, contextlib.suppress(OSError):
            self._sock.send(json.dumps({"op": "reap", "pid": pid}).encode())

    def close(self) -> None:
        """Fork no more: the zygote exits once the last worker it forked has ended (their
        exits are still reported); waited for when none is left."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_WR)
        with self._lock:
            children = bool(self._children)
        if self.proc is not None and not children:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def stderr_tail(self) -> str:
        """The end of what the zygote wrote to its stderr (a traceback, when it failed)."""
        if self._errors is None or self._errors.closed:
            return "no output"
        self._errors.seek(0, os.SEEK_END)
        size = self._errors.tell()
        self._errors.seek(max(0, size - 2000))
        tail = self._errors.read().decode(errors="replace").strip()
        code = self.proc.poll() if self.proc is not None else None
        return (f"exited with status {code}" if code is not None else "running") + \
            (f": {tail}" if tail else "")

    def _read(self) -> None:
        assert self._sock is not None
        try:
            while data := self._sock.recv(_MAX_MESSAGE):
                self._handle(json.loads(data))
        except (OSError, ValueError) as e:
            self._dead = f"its channel failed: {e}"
        self._gone()

    def _handle(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "spawned":
            with self._lock:
                request = self._pending.pop(int(message["id"]), None)
            if request is None:
                return
            if "pid" not in message:
                for f in request.files:
                    f.close()
                request.future.set_exception(ZygoteError(
                    f"the zygote did not fork: {message.get('error')}"))
                return
            self.threads_at_fork.append(int(message.get("threads", 0)))
            child = ZygoteChild(self, int(message["pid"]), *request.files)
            with self._lock:
                self._children[child.pid] = child
            request.future.set_result(child)
        elif op == "exit":
            with self._lock:
                ended = self._children.pop(int(message["pid"]), None)
            if ended is not None:
                ended.ended(int(message["returncode"]))

    def _gone(self) -> None:
        """The zygote is gone: fail what waits, and record its children as killed."""
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=5)
        self._dead = self._dead or f"it {self.stderr_tail()}"
        if self._errors is not None:
            with contextlib.suppress(OSError):
                self._errors.close()
        with self._lock:
            pending, self._pending = list(self._pending.values()), {}
            children, self._children = list(self._children.values()), {}
        for request in pending:
            for f in request.files:
                f.close()
            request.future.set_exception(ZygoteError(f"the zygote is gone: {self._dead}"))
        for child in children:
            child.orphaned = True
            if child.pidfd is not None:  # PDEATHSIG kills it at once; wait until it is gone
                with contextlib.suppress(OSError):
                    select.select([child.pidfd], [], [], 5.0)
            child.ended(-int(signal.SIGKILL))


def _zygote_starter() -> ThreadPoolExecutor:
    """The thread that starts zygotes: one that lives as long as the process, since a
    zygote's parent-death signal fires when the *thread* that spawned it ends (and not the
    supervisor's spare thread, whose boots may wait for a zygote)."""
    global _ZYGOTE_STARTER
    with _STARTER_LOCK:
        if _ZYGOTE_STARTER is None:
            _ZYGOTE_STARTER = ThreadPoolExecutor(max_workers=1,
                                                 thread_name_prefix="sandbox-zygote-start")
        return _ZYGOTE_STARTER


class ZygoteSlot:
    """The zygote of one or more supervisors (see ``Supervisor.sharing_zygote``): started
    by the first worker, dropped when it is gone, tried again after :data:`ZYGOTE_RETRY` s."""

    def __init__(self, fill_profiles: tuple[str, ...],
                 strategy_modules: tuple[tuple[str, str], ...] = (),
                 python: str | None = None) -> None:
        self.fill_profiles = fill_profiles
        self.strategy_modules = strategy_modules
        self.python = python
        self.zygote: Zygote | None = None
        self.lock = threading.Lock()
        self.failed_at = -ZYGOTE_RETRY
        self.error: str | None = None
        self.closed = False

    def ready(self) -> Zygote | None:
        """The zygote to fork from (started now if need be), or None to start a process."""
        with self.lock:
            if self.zygote is not None and self.zygote.alive:
                return self.zygote
            if self.closed or time.monotonic() - self.failed_at < ZYGOTE_RETRY:
                return None
            zygote = Zygote(sys_path=sys.path, fill_profiles=self.fill_profiles,
                            strategy_modules=self.strategy_modules, python=self.python)
            try:
                # On a thread that lives as long as the process: the zygote dies with it.
                _zygote_starter().submit(zygote.start).result()
            except ZygoteError as e:
                self.failed_at = time.monotonic()
                self.error = str(e)
                log.warning("sandbox: %s; workers boot on their own", e)
                return None
            self.zygote, self.error = zygote, None
            return zygote

    def failed(self, zygote: Zygote, why: str) -> None:
        """A spawn failed: that worker starts on its own. A zygote that is gone is dropped;
        one that lives is kept, since closing it would kill every worker it forked."""
        log.warning("sandbox: %s; this worker boots on its own", why)
        if zygote.alive:
            return
        with self.lock:
            if self.zygote is zygote:
                self.zygote = None
                self.failed_at = time.monotonic()
                self.error = why
        zygote.close()

    def close(self) -> None:
        with self.lock:
            self.closed = True
            zygote, self.zygote = self.zygote, None
        if zygote is not None:
            zygote.close()
