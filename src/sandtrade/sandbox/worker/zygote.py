"""The zygote: a warm, not yet confined worker that forks the workers of one host.

Started by the host (:mod:`sandtrade.sandbox.zygote`) as ``python -I -m
sandtrade.sandbox.worker.zygote FD`` with an empty environment, in its own session, where FD
is its end of a ``SOCK_SEQPACKET`` socket pair. Its first message (``boot``: the host's pid
and import path, the fill profiles to import) makes it do what every worker does before it
knows its limits (:func:`sandtrade.sandbox.worker.boot.prepare`: imports and warm-up, the
~140 ms a worker spends booting), once. Then, for each ``spawn`` (the child's stdin, stdout
and stderr pipes and its heartbeat page, as ``SCM_RIGHTS``, plus its private directory), it
forks. The child:

1. asks for SIGKILL when the zygote dies and checks the zygote is still its parent (the
   zygote itself asked for SIGKILL when the host dies, and checked the host is its parent:
   the host's death takes both);
2. starts its own session, moves the pipes to 0/1/2 and the heartbeat page to 3, closes
   every other descriptor (the zygote's socket, its siblings' pidfds), enters its directory;
3. from there is a worker booted by the host: it reads its ``boot`` frame and confines itself
   exactly as :func:`~sandtrade.sandbox.worker.boot.serve` does (the uid drop, seccomp,
   Landlock ... all of it), before it reads its task.

The zygote runs no strategy code and never confines itself: it holds root's rights (when the
host runs as root), so every child drops them itself, as a worker started by the host does.
It is single-threaded whenever it forks (checked before each fork, reported to the host), so
the child inherits no lock held by a thread that does not exist in it. It keeps each exited
child a zombie (``waitid(WNOWAIT)``) until the host says it is done with it (``reap``), so
that a pid the host may still signal is never reused meanwhile, and reports every child's exit
status (``exit``), since the host is not the children's parent. When the host closes its
side of the socket the zygote forks no more and exits once its last child has ended; when the
host dies, the zygote and its children die with it.

Wing rule: this module imports only the standard library and the worker's own boot.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gc
import json
import os
import select
import signal
import socket
import sys
import traceback
from typing import IO, Any, NoReturn

from sandtrade.sandbox.wire import read_frame
from sandtrade.sandbox.worker.boot import prepare, serve

__all__ = ["CHILD_HEARTBEAT_FD", "main"]

#: Where a child finds its heartbeat page (the host's ``boot`` frame names it).
CHILD_HEARTBEAT_FD = 3
#: The largest message either side sends (a spawn request with its directory's path).
MAX_MESSAGE = 1 << 16
_PR_SET_PDEATHSIG = 1


def _die_with(parent: int) -> None:
    """SIGKILL this process when ``parent`` dies; exit now if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(70)


def threads() -> int:
    """How many threads this process has (the kernel's count, not only Python's)."""
    return len(os.listdir("/proc/self/task"))


def _returncode(info: os.waitid_result) -> int:
    """``Popen.returncode`` of an ended child: its exit status, or minus its signal."""
    if info.si_code == os.CLD_EXITED:
        return int(info.si_status)
    return -int(info.si_status)


class _Zygote:
    """The zygote's loop: spawn requests on the socket, children's exits on their pidfds."""

    def __init__(self, ctl: socket.socket, stdin: IO[bytes], stdout: IO[bytes],
                 prepared: Any) -> None:
        self.ctl = ctl
        self.stdin, self.stdout = stdin, stdout
        self.prepared = prepared
        self.poller = select.poll()
        self.poller.register(ctl.fileno(), select.POLLIN)
        self.pidfds: dict[int, int] = {}  # pidfd -> pid, children still running
        self.zombies: set[int] = set()  # exited, reported, not yet reaped
        self.early_reaps: set[int] = set()  # "reap" came before the exit was seen

    def send(self, message: dict[str, Any]) -> None:
        self.ctl.sendall(json.dumps(message).encode())

    def loop(self) -> None:
        """Serve until the host closes its side, then until the last child has ended."""
        closing = False
        while not (closing and not self.pidfds):
            for fd, _ in self.poller.poll():
                if fd == self.ctl.fileno():
                    if not self._request():
                        closing = True
                        self.poller.unregister(fd)
                        for pid in self.zombies:  # the host will not ask any more
                            os.waitpid(pid, 0)
                        self.zombies.clear()
                        self.early_reaps.update(self.pidfds.values())
                else:
                    self._exited(fd)

    def _request(self) -> bool:
        data, fds, _flags, _addr = socket.recv_fds(self.ctl, MAX_MESSAGE, 4)
        if not data:
            for fd in fds:
                os.close(fd)
            return False  # the host closed its side (or is gone: then we die with it)
        message = json.loads(data)
        if message.get("op") == "spawn":
            self._spawn(message, fds)
        elif message.get("op") == "reap":
            for fd in fds:
                os.close(fd)
            self._reap(int(message["pid"]))
        return True

    def _spawn(self, message: dict[str, Any], fds: list[int]) -> None:
        request = message.get("id")
        count = threads()
        if len(fds) != 4 or count != 1:
            for fd in fds:
                os.close(fd)
            why = (f"the zygote has {count} threads; it forks only single-threaded"
                   if count != 1 else f"a spawn needs 4 descriptors, got {len(fds)}")
            self.send({"op": "spawned", "id": request, "error": why})
            return
        sys.stderr.flush()  # nothing of the zygote's own output may reach a child's stderr
        pid = os.fork()
        if pid == 0:
            _child(fds, str(message["cwd"]), self.stdin, self.stdout, self.prepared)
        for fd in fds:
            os.close(fd)
        pidfd = os.pidfd_open(pid)
        self.pidfds[pidfd] = pid
        self.poller.register(pidfd, select.POLLIN)
        self.send({"op": "spawned", "id": request, "pid": pid, "threads": count})

    def _exited(self, pidfd: int) -> None:
        pid = self.pidfds.pop(pidfd)
        self.poller.unregister(pidfd)
        # Seen, not reaped: the pid stays the child's until the host's "reap".
        info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        os.close(pidfd)
        code = _returncode(info) if info is not None else -int(signal.SIGKILL)
        with contextlib.suppress(OSError):  # a host gone meanwhile
            self.send({"op": "exit", "pid": pid, "returncode": code})
        if pid in self.early_reaps:
            self.early_reaps.discard(pid)
            os.waitpid(pid, 0)
        else:
            self.zombies.add(pid)

    def _reap(self, pid: int) -> None:
        if pid in self.zombies:
            self.zombies.discard(pid)
            os.waitpid(pid, 0)
        elif pid in self.pidfds.values():
            self.early_reaps.add(pid)


def _child(fds: list[int], cwd: str, stdin: IO[bytes], stdout: IO[bytes],
           prepared: Any) -> NoReturn:
    """In the forked child: become a worker of the host (never returns)."""
    code = 1
    try:
        _die_with(_ZYGOTE_PID)
        os.setsid()
        # Out of the way first: a received descriptor may have a number from 0 to 3.
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 64) for fd in fds]
        for target, fd in enumerate(high):
            os.dup2(fd, target)
        os.closerange(CHILD_HEARTBEAT_FD + 1, os.sysconf("SC_OPEN_MAX"))
        os.chdir(cwd)
        header, _ = read_frame(stdin)
        if header.get("type") != "boot":
            os._exit(2)
        header["heartbeat_fd"] = CHILD_HEARTBEAT_FD
        code = serve(header, stdin, stdout, prepared, parent_pid=_ZYGOTE_PID)
    except EOFError:
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


_ZYGOTE_PID = 0


def main() -> int:
    """Entry point of the zygote process."""
    global _ZYGOTE_PID
    _ZYGOTE_PID = os.getpid()
    ctl = socket.socket(fileno=int(sys.argv[1]))
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # as in a worker: stray output goes to stderr
    data = ctl.recv(MAX_MESSAGE)
    if not data:
        return 0
    header = json.loads(data)
    if header.get("op") != "boot" or type(header.get("host_pid")) is not int:
        return 2
    _die_with(header["host_pid"])
    prepared = prepare(header)
    # What the imports and the warm-up made is out of the collector's sight from here on,
    # in the zygote and in every child: a collection in a worker never walks (and so never
    # writes to, and copies) the pages it shares with the zygote and its siblings.
    gc.collect()
    gc.freeze()
    zygote = _Zygote(ctl, stdin, stdout, prepared)
    zygote.send({"op": "ready", "pid": _ZYGOTE_PID, "threads": threads()})
    zygote.loop()
    return 0


if __name__ == "__main__":
    code = main()
    sys.stderr.flush()
    os._exit(code)
