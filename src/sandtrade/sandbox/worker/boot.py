"""The worker: the child side of the sandbox. Limits itself, then runs strategy code.

Started by the supervisor as ``python -I -m sandtrade.sandbox.worker`` with an empty
environment, only stdin/stdout/stderr open, its own session, in an empty private directory.
Its first frame (on stdin, ``boot``) carries the limits, never argv or the environment; the
task (the strategy's source and what to run) comes in a second frame, after confinement, so a
supervisor can boot a spare worker before it knows the task. Before any strategy code it:

1. imports everything it will need (after the uid drop the interpreter's files may be
   unreadable, and a strategy must not be able to trigger imports anyway);
2. sets rlimits, hard = soft: CPU seconds, address space, open files, file size 0, core 0,
   processes (after the drop, so that a fork bomb fails). CPU is the exception: its hard limit
   is one second above the soft one, because at hard = soft the kernel sends SIGKILL at once
   and never SIGXCPU, and the supervisor reported every CPU kill as "killed from outside";
3. asks for SIGKILL when the supervisor dies (``PR_SET_PDEATHSIG``), turns off core dumps and
   ptrace access (``PR_SET_DUMPABLE`` 0), and again after step 5, because changing the uid
   clears the first and resets the second;
4. moves into a new network namespace (loopback only, down) when the kernel allows it;
5. as root, drops to the uid/gid the supervisor gave it (its own: 0x70000000 + its pid, or
   65534 where the user namespace maps no such range), with no supplementary groups;
6. sets ``PR_SET_NO_NEW_PRIVS``;
7. applies Landlock with an empty ruleset (no path-based file access at all; no TCP and
   signals scoped to itself where the kernel's ABI allows) and a seccomp filter (no
   fork/exec, AF_UNIX sockets only, no system-administration calls).

Each step is detected and reported in the ``ready`` frame; none is required, so the worker runs on
machines that refuse some of them, and ``sandtrade doctor`` shows what this machine gives. The
worker is single-threaded. Then it compiles the strategy under the policy
(:mod:`sandtrade.strategy.policy`) and runs the task: ``check``, ``live`` or ``backtest`` (the
broker simulation runs here, bars arrive in large binary chunks, no round trip per bar; equity
values and closed trades go back in batches, and the host computes the statistics).
"""

from __future__ import annotations

# Everything the worker and strategies may use is imported before the process limits itself.
import _strptime  # noqa: F401  - datetime.strptime imports it lazily
import contextlib
import ctypes
import encodings.idna  # noqa: F401
import json  # noqa: F401
import os
import resource
import signal
import sys
import traceback
from array import array
from collections import deque
from collections.abc import Iterator
from typing import IO, Any

from sandtrade.backtest.engine import simulate
from sandtrade.backtest.meter import TRADES as _TRADES
from sandtrade.backtest.runner import BacktestRequest
from sandtrade.errors import SandtradeError, StrategyError
from sandtrade.models import Bar, Trade
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.wire import decode_bars, read_frame, write_frame
from sandtrade.sandbox.worker.live_task import run_live
from sandtrade.strategy import context as _context
from sandtrade.strategy import (
    policy,
    static_check,  # noqa: F401  - a check task reads the source
)
from sandtrade.strategy import ta as _ta
from sandtrade.strategy.loader import load_strategy_source, resolve_params

try:  # optional layer: needs libseccomp.so.2; find_library shells out, so import it now
    import pyseccomp as _pyseccomp

    _PYSECCOMP_ERROR = ""
except Exception as _e:
    _pyseccomp = None
    _PYSECCOMP_ERROR = f"{type(_e).__name__}: {_e}"

__all__ = ["confine", "main"]

NOBODY = 65534
_PROFILES: list[Any] = []
_HEARTBEAT: list[Any] = [None]
_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_NO_NEW_PRIVS = 38
_CLONE_NEWNET = 0x40000000


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True)


def confine(limits: WorkerLimits, *, supervisor_pid: int | None = None,
            uid: int = NOBODY) -> dict[str, str]:
    """Apply every OS layer available; returns each layer's status ("on", or why not).

    ``uid`` is the unprivileged uid (and gid) to drop to when running as root: the
    supervisor gives each worker its own (see ``supervisor.worker_uid``), or ``nobody``.
    """
    report: dict[str, str] = {}
    libc = _libc()

    def prctl(option: int, value: int) -> bool:
        return bool(libc.prctl(option, value, 0, 0, 0) == 0)

    report["pdeathsig"] = "on" if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) else "refused"
    if supervisor_pid is not None and os.getppid() != supervisor_pid:
        os._exit(70)  # the supervisor died before PDEATHSIG was armed
    report["no_core_dumps"] = "on" if prctl(_PR_SET_DUMPABLE, 0) else "refused"
    mem = limits.memory_mb * 1024 * 1024
    for name, res, value in (("rlimit_cpu", resource.RLIMIT_CPU, limits.cpu_seconds),
                             ("rlimit_as", resource.RLIMIT_AS, mem),
                             ("rlimit_nofile", resource.RLIMIT_NOFILE, limits.open_files),
                             ("rlimit_fsize", resource.RLIMIT_FSIZE, 0),
                             ("rlimit_core", resource.RLIMIT_CORE, 0)):
        hard = value + 1 if res == resource.RLIMIT_CPU else value  # SIGXCPU first, see above
        try:
            resource.setrlimit(res, (value, hard))
            report[name] = "on"
        except (ValueError, OSError) as e:
            report[name] = f"refused: {e}"
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past 0 bytes: EFBIG, not death
    if libc.unshare(_CLONE_NEWNET) == 0:
        report["network_namespace"] = "on (no network)"
    else:
        report["network_namespace"] = f"unavailable: {os.strerror(ctypes.get_errno())}"
    if os.getuid() == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            report["uid_drop"] = f"on (uid {uid}{', its own' if uid != NOBODY else ''})"
        except OSError as e:
            report["uid_drop"] = f"failed: {e}"
    else:
        report["uid_drop"] = f"not root (uid {os.getuid()})"
    # A uid/gid change clears PR_SET_PDEATHSIG and resets PR_SET_DUMPABLE (prctl(2)): without
    # this, a worker outlived a killed supervisor (found by tests/security). Arm both again,
    # then check once more that the supervisor is still the parent.
    if not (prctl(_PR_SET_PDEATHSIG, signal.SIGKILL) and prctl(_PR_SET_DUMPABLE, 0)):
        report["pdeathsig"] = report["no_core_dumps"] = "lost at the uid drop"
    if supervisor_pid is not None and os.getppid() != supervisor_pid:
        os._exit(70)
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
        report["rlimit_nproc"] = "on (no new processes)" if os.getuid() != 0 else \
            "ineffective as root"
    except (ValueError, OSError) as e:
        report["rlimit_nproc"] = f"refused: {e}"
    report["no_new_privs"] = "on" if prctl(_PR_SET_NO_NEW_PRIVS, 1) else "refused"
    report["landlock"] = _landlock()
    report["seccomp"] = _seccomp()
    return report


_SYS_LANDLOCK_CREATE_RULESET = 444  # the same numbers on every architecture (generic table)
_SYS_LANDLOCK_RESTRICT_SELF = 446


class _LandlockRulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


def _landlock() -> str:
    """Landlock with an empty ruleset: no path-based file access at all (the worker has
    loaded everything it needs and talks only over inherited pipes), and, where the kernel's
    ABI has them, no TCP bind/connect (ABI 4) and no signals or abstract unix sockets to
    processes outside this one (ABI 6), so an escaped payload cannot signal other workers."""
    libc = _libc()
    syscall = libc.syscall
    syscall.restype = ctypes.c_long
    abi = syscall(_SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 0:
        return f"unavailable: {os.strerror(ctypes.get_errno())}"
    fs = (1 << 13) - 1  # ABI 1: execute .. make_sym
    if abi >= 2:
        fs |= 1 << 13  # refer
    if abi >= 3:
        fs |= 1 << 14  # truncate
    if abi >= 5:
        fs |= 1 << 15  # ioctl_dev
    net = 0b11 if abi >= 4 else 0  # bind_tcp, connect_tcp
    scoped = 0b11 if abi >= 6 else 0  # abstract unix sockets, signals
    attr = _LandlockRulesetAttr(fs, net, scoped)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    fd = syscall(_SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                 ctypes.c_uint32(0))
    if fd < 0:
        return f"failed: landlock_create_ruleset: {os.strerror(ctypes.get_errno())}"
    try:
        if syscall(_SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
            return f"failed: landlock_restrict_self: {os.strerror(ctypes.get_errno())}"
    finally:
        os.close(fd)
    extras = [x for x, on in (("no TCP", net), ("signals scoped", scoped)) if on]
    return f"on (ABI {abi}: no file access" + "".join(f", {x}" for x in extras) + ")"


# Syscalls a strategy worker never needs. Denied with EPERM (not a kill) so the language
# layer's error, if anything reaches them, stays readable.
_DENIED_SYSCALLS = (
    "fork", "vfork", "execve", "execveat", "ptrace", "process_vm_readv", "process_vm_writev",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "bpf", "perf_event_open",
    "kexec_load", "init_module", "finit_module", "delete_module", "keyctl", "add_key",
    "request_key", "userfaultfd", "setuid", "setgid", "setreuid", "setregid", "setresuid",
    "setresgid", "setgroups", "mknod", "mknodat", "acct", "swapon", "swapoff", "reboot",
    "settimeofday", "clock_settime", "io_uring_setup",
)


def _seccomp() -> str:
    """A seccomp filter: no new processes or programs, sockets only AF_UNIX, none of the
    system-administration calls. Must run before any thread exists (the worker has none)."""
    if _pyseccomp is None:
        return f"unavailable: {_PYSECCOMP_ERROR}"
    import errno
    import socket

    sc = _pyseccomp
    try:
        f = sc.SyscallFilter(sc.ALLOW)
        eperm = sc.ERRNO(errno.EPERM)
        for name in _DENIED_SYSCALLS:
            with contextlib.suppress(Exception):  # a name this kernel/arch does not have
                f.add_rule(eperm, name)
        clone_thread = 0x00010000
        f.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, clone_thread, 0))
        f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")  # glibc falls back to clone
        f.add_rule(eperm, "socket", sc.Arg(0, sc.NE, socket.AF_UNIX))
        f.load()
    except Exception as e:
        return f"failed: {type(e).__name__}: {e}"
    return "on (no fork/exec, AF_UNIX sockets only)"


class _BarReader:
    """Demultiplexes the host's bar chunks (merged in time order) into one stream a symbol."""

    def __init__(self, stream: IO[bytes], symbols: list[str]) -> None:
        self._stream = stream
        self._symbols = symbols
        self._queues: dict[str, deque[Bar]] = {s: deque() for s in symbols}
        self._done = False

    def _pull(self) -> bool:
        chunk = self._next_chunk()
        if chunk is None:
            return False
        queues = self._queues
        for bar in chunk:
            queues[bar.symbol].append(bar)
        return True

    def stream(self, symbol: str) -> Iterator[Bar]:
        """The bars of ``symbol`` in time order, read from the channel as needed."""
        if len(self._symbols) == 1:  # one symbol: hand over whole decoded chunks
            while (chunk := self._next_chunk()) is not None:
                yield from chunk
            return
        queue = self._queues[symbol]
        while True:
            while queue:
                yield queue.popleft()
            if not self._pull():
                while queue:
                    yield queue.popleft()
                return

    def _next_chunk(self) -> list[Bar] | None:
        if self._done:
            return None
        header, payload = read_frame(self._stream)
        if header["type"] == "end":
            self._done = True
            return None
        if header["type"] != "bars":
            raise SandtradeError(f"unexpected frame {header['type']!r} while reading bars")
        return decode_bars(int(header["count"]), payload, self._symbols)


_WARMUP_STRATEGY = """
def on_bar(ctx, bar):
    fast = ctx.ta.sma(3)
    if ctx.ta.crossover(fast, ctx.ta.sma(5)) or ctx.ta.crossunder(fast, ctx.ta.ema(5)):
        ctx.close_position()
        ctx.buy(limit=bar.close * 1.01, tif="day") if ctx.position().qty >= 0 else ctx.sell()
    ctx.ta.rsi(3), ctx.ta.atr(3), ctx.ta.bb(3), ctx.ta.highest(3), ctx.ta.lowest(3)
    ctx.history(3), ctx.account, ctx.orders(), ctx.log("warm")
"""


def _warm_up() -> None:
    """Run a tiny trusted back-test end to end, so that every lazy import and code path the
    real run needs is loaded while the interpreter's files are still readable."""
    from datetime import datetime, timedelta

    from sandtrade.backtest.meter import Simulation

    strategy = load_strategy_source(_WARMUP_STRATEGY, "warmup.py", restricted=True)
    t0 = datetime(2000, 1, 3)
    bars = [Bar("W", t0 + timedelta(days=k), 10 + k % 7, 12 + k % 7, 9 + k % 7, 11 + k % 5, 1e3)
            for k in range(60)]
    def measure(_: list[Bar], equities: array[float], trades: list[Trade]) -> None:
        equities.tobytes()
        _TRADES.dump_json(trades)
        _TRADES.validate_json(_TRADES.dump_json(trades))

    sim = simulate(strategy, bars, close_at_end=True, keep_bars=False, measure=measure)
    Simulation.model_validate_json(sim.model_dump_json())
    BacktestRequest.model_validate({"strategy": "x", "data": [{"path": "x"}]})
    datetime.strptime("2000-01-01", "%Y-%m-%d")
    datetime.fromisoformat("2000-01-01T00:00:00")
    from sandtrade.models import Order

    order = Order(id="w", account="w", symbol="W", side="buy", qty=1.0, created_at=t0)
    Order.model_validate(order.model_dump(mode="json"))  # a live run's replies are orders


def _heartbeat(fd: object) -> Any:
    """The counter the supervisor watches, in the shared page it passed as ``fd``."""
    if type(fd) is not int:
        return None
    import mmap

    page = mmap.mmap(fd, 8)
    os.close(fd)
    counter = ctypes.c_uint64.from_buffer(page)
    _KEEP.append(page)

    def beat() -> None:
        counter.value += 1

    return beat


_KEEP: list[Any] = []


def _fast_types() -> None:
    """The strategy API's own types: every public attribute is safe, skip the slow checks."""
    policy.FAST_ATTRIBUTE_TYPES.update({
        _context.Context, _context.TA, _context.PositionView, _context.AccountView,
        _context.OrderView, _context.FillView, _context.SignalView, _ta.Series, _ta.Bands, Bar})


def _user_error(e: BaseException, path: str) -> str:
    """One line for errors a person can act on; a traceback of the user's frames otherwise."""
    if isinstance(e, SandtradeError):
        return str(e)
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == path]
    where = f"{path}:{frames[-1].lineno}" if frames else path
    return f"{where}: {type(e).__name__}: {e}"


def _run(task: dict[str, Any], limits: WorkerLimits, stdin: IO[bytes],
         stdout: IO[bytes]) -> None:
    kind = task["task"]
    path = str(task["path"])
    log = policy.StrategyLog(limits.log_bytes)
    strategy = load_strategy_source(str(task["source"]), path, restricted=True, print_log=log,
                                    check=kind == "check")
    if kind == "check":
        write_frame(stdout, {"type": "checked", "hooks": sorted(strategy.hooks),
                             "params": strategy.params})
        return
    if kind == "live":
        run_live(task, strategy, log, stdin, stdout, _HEARTBEAT[0],
                 lambda e: _user_error(e, path))
        return
    request = BacktestRequest.model_validate(task["request"])
    params = resolve_params(strategy.params, request.params, where=path)
    symbols = [str(s) for s in task["symbols"]]
    reader = _BarReader(stdin, symbols)

    sent = 0

    def measure(bars: list[Bar], equities: array[float], trades: list[Trade]) -> None:
        # The host has the bars: it pairs them with these values and does the measuring.
        # Trades closed since the last frame go along, so the host validates them while the
        # run goes on instead of all at its end.
        nonlocal sent
        new = _TRADES.dump_json(trades[sent:]) if len(trades) > sent else b""
        sent = len(trades)
        if equities or new:
            write_frame(stdout, {"type": "equity", "count": len(equities),
                                 "trades_bytes": len(new)}, equities.tobytes() + new)

    sim = simulate(strategy, {s: reader.stream(s) for s in symbols}, cash=request.cash,
                   settings=request.broker, params=params, measure=measure, keep_bars=False,
                   close_at_end=request.close_at_end, log=log.write_line, profiles=_PROFILES,
                   heartbeat=_HEARTBEAT[0])
    sim.trades = sim.trades[sent:]
    sim.trades_sent = sent
    # A lone surrogate ("\ud800") is a str but not UTF-8: the result would not serialise and
    # the run would fail on a print(). It travels as its escape, as text.
    sim.logs = [line if line.isascii() else line.encode("utf-8", "backslashreplace").decode()
                for line in log.lines]
    if log.dropped:
        sim.warnings.append(f"the strategy log reached its {log.max_bytes:,}-byte limit; "
                            f"{log.dropped:,} lines were dropped")
    write_frame(stdout, {"type": "result"}, sim.model_dump_json().encode())


#: Longest error message sent: the text is the strategy's (``raise ValueError("x" * 10**7)``)
#: and a frame past the host's header cap read as a protocol violation, not the user's error.
_MAX_MESSAGE = 16_000


def main() -> int:
    """Entry point of the worker process.

    Two frames arrive: ``boot`` (limits, the heartbeat page, the host's import path), after
    which the worker warms up, confines itself and answers ``ready``; then ``task`` (the
    strategy's source and what to do with it). A supervisor may boot a worker before it has
    a task for it (a spare), so nothing of the task is known before confinement.
    """
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Nothing else may write to the channel: stray output goes to stderr.
    sys.stdout = sys.stderr
    try:
        header, _ = read_frame(stdin)
    except EOFError:
        return 0
    if header.get("type") != "boot":
        return 2
    limits = WorkerLimits.model_validate(header["limits"])
    # Trusted host plugins (fill profiles) load here, before confinement, from the host's
    # own import path (the worker was started with -I, which ignores PYTHONPATH).
    sys.path[:] = [p for p in header.get("sys_path", sys.path) if os.path.isabs(p)]
    from sandtrade.host.plugins import PluginHost

    _PROFILES.extend(PluginHost.create().fill_profiles().values())
    _HEARTBEAT[0] = _heartbeat(header.get("heartbeat_fd"))
    _warm_up()
    uid = header.get("uid")
    report = confine(limits, supervisor_pid=header.get("supervisor_pid"),
                     uid=uid if type(uid) is int and 0 < uid < 2**31 else NOBODY)
    _fast_types()
    write_frame(stdout, {"type": "ready", "layers": report})
    try:
        task, _ = read_frame(stdin)
    except EOFError:  # a spare that was never given a task
        return 0
    if task.get("type") != "task":
        return 2
    path = str(task.get("path", "strategy.py"))
    try:
        _run(task, limits, stdin, stdout)
    except StrategyError as e:
        write_frame(stdout, {"type": "error", "message": str(e)[:_MAX_MESSAGE]})
        return 1
    except BaseException as e:
        if isinstance(e, MemoryError):
            write_frame(stdout, {"type": "error", "reason": "memory",
                                 "message": f"{path}: out of memory "
                                 f"(limit {limits.memory_mb} MiB)"})
        else:
            write_frame(stdout, {"type": "error",
                                 "message": _user_error(e, path)[:_MAX_MESSAGE]})
        return 1
    return 0

