"""How a worker confines itself: the OS layers it applies before any strategy code runs.

:func:`confine` applies, in this order:

1. rlimits, hard = soft: CPU seconds, address space, open files, file size 0, core 0, nice 0,
   processes (after the drop, so that a fork bomb fails). CPU is the exception: its hard limit
   is one second above the soft one, because at hard = soft the kernel sends SIGKILL at once
   and never SIGXCPU, and the supervisor reported every CPU kill as "killed from outside";
2. asks for SIGKILL when the supervisor dies (``PR_SET_PDEATHSIG``), turns off core dumps and
   ptrace access (``PR_SET_DUMPABLE`` 0), and again after step 4, because changing the uid
   clears the first and resets the second;
3. moves into a new network namespace (loopback only, down) when the kernel allows it;
4. as root, drops to the uid/gid the supervisor gave it (its own: 0x70000000 + its pid, or
   65534 where the user namespace maps no such range), with no supplementary groups;
5. sets ``PR_SET_NO_NEW_PRIVS``;
6. applies Landlock with an empty ruleset (no path-based file access at all; no TCP and
   signals scoped to itself where the kernel's ABI allows) and a seccomp filter (no
   fork/exec, AF_UNIX sockets only, no system-administration calls).

Each step is detected and reported (the ``ready`` frame's ``layers``); none is required, so the
worker runs on machines that refuse some of them, and ``sandtrade doctor`` shows what this
machine gives. Everything here must be imported before it runs: afterwards the interpreter's
files may be unreadable.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import signal
from typing import Any

from sandtrade.sandbox.limits import WorkerLimits

try:  # optional layer: needs libseccomp.so.2; find_library shells out, so import it now
    import pyseccomp as _pyseccomp

    _PYSECCOMP_ERROR = ""
except Exception as _e:
    _pyseccomp = None
    _PYSECCOMP_ERROR = f"{type(_e).__name__}: {_e}"

__all__ = ["NOBODY", "confine"]

NOBODY = 65534
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
                             ("rlimit_core", resource.RLIMIT_CORE, 0),
                             # no raising its own priority back (the host lowers it: a fair
                             # share of the CPU, sandbox/cpu.py)
                             ("rlimit_nice", resource.RLIMIT_NICE, 0)):
        hard = value + 1 if res == resource.RLIMIT_CPU else value  # SIGXCPU first, see above
        try:
            resource.setrlimit(res, (value, hard))
            report[name] = "on"
        except (ValueError, OSError) as e:
            report[name] = f"refused: {e}"
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past 0 bytes: EFBIG, not death
    # SCHED_BATCH: a woken worker does not preempt the host's threads (the I/O loop writing
    # the next worker's bar, the broker's commit), so the host's latency does not grow with
    # the number of workers it wakes; its CPU share is unchanged. Seccomp below keeps it so.
    try:
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))
        report["sched_batch"] = "on"
    except OSError as e:
        report["sched_batch"] = f"refused: {e}"
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
    # its scheduling class is the host's to choose (SCHED_BATCH, above)
    "sched_setscheduler", "sched_setattr", "sched_setparam",
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
