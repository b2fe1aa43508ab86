"""A fair share of the CPU for each worker: a strategy that spins gets its share, not a core.

What the kernel offers differs from machine to machine, so :meth:`CpuPlacement.probe` finds
the best of, in order:

``cgroup2``
    the host's own cgroup (v2) delegates the ``cpu`` controller: each worker gets a child
    cgroup with ``cpu.max`` = its share;
``cgroup1``
    the v1 ``cpu`` hierarchy is writable: a ``sandtrade-<host pid>-<n>`` group under the host's
    own, whose ``workers`` child is capped at all cores but half of one (the host's own
    threads, the feed and the broker, always keep half a core), and one child per worker
    capped at its share (``cpu.cfs_quota_us``), all with equal weights;
``nice``
    no writable cgroup: each worker runs at nice +5, below the host, so the kernel favours the
    host and the strategies that do not spin;
``none``
    not even that (reported by ``sandtrade doctor``).

The host moves a worker into its place once it has booted (importing is the host's own code,
and runs at full speed) and before it is given a task, so no strategy code ever runs outside
it. A worker cannot leave: cgroup files belong
to root and the worker runs as another user, Landlock denies them, and RLIMIT_NICE (0) forbids
raising its priority back.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuPlacement", "CpuSlot"]

PERIOD_US = 100_000
V1_ROOT = Path("/sys/fs/cgroup/cpu")
V2_ROOT = Path("/sys/fs/cgroup")
NICE = 5
_GROUP = re.compile(r"sandtrade-(\d+)-\d+$")
_serial = itertools.count(1)


@dataclass
class CpuSlot:
    """One worker's place; :meth:`release` removes its cgroup (when the worker is gone)."""

    pid: int
    path: Path | None = None

    def release(self) -> None:
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.rmdir()
            self.path = None


@dataclass
class CpuPlacement:
    """Where workers' CPU is capped: ``kind`` is cgroup2, cgroup1, nice or none; ``detail``
    says so for people (``sandtrade doctor``)."""

    kind: str
    detail: str
    share: float = 0.5
    base: Path | None = None

    @classmethod
    def probe(cls, share: float = 0.5, *, v1_root: Path = V1_ROOT,
              v2_root: Path = V2_ROOT) -> CpuPlacement:
        """The best placement this process may use (creates its cgroups when it may)."""
        if share <= 0:
            return cls("none", "cpu share: off ([strategies] cpu_share = 0)", share)
        why_not: list[str] = []
        for kind, make in (("cgroup2", cls._cgroup2), ("cgroup1", cls._cgroup1)):
            try:
                base = make(v2_root if kind == "cgroup2" else v1_root, share)
            except OSError as e:
                why_not.append(f"{kind}: {e.strerror or e} ({e.filename or ''})".replace(
                    " ()", ""))
                continue
            if base is not None:
                cores = os.cpu_count() or 1
                host_keeps = " (the host keeps half a core)" if cores > 1 else ""
                return cls(kind, f"cpu share: {share:g} core per worker at most{host_keeps}, "
                           f"equal weights (a {kind} cpu group each)", share, base)
            why_not.append(f"{kind}: not available")
        try:
            os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0))
        except OSError as e:  # pragma: no cover - every Linux allows this
            return cls("none", f"cpu share: none ({e}; {'; '.join(why_not)})", share)
        return cls("nice", f"cpu share: nice +{NICE} for workers (no writable cgroup: "
                   f"{'; '.join(why_not)})", share)

    # ------------------------------------------------------------------ placing a worker

    def place(self, pid: int) -> CpuSlot:
        """Move a just-spawned worker into its place (best effort: a worker that has already
        died is not an error)."""
        slot = CpuSlot(pid)
        if self.kind in ("cgroup1", "cgroup2") and self.base is not None:
            path = self.base / "workers" / f"w-{pid}"
            try:
                path.mkdir()
                if self.kind == "cgroup1":
                    (path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                    (path / "cpu.cfs_quota_us").write_text(str(int(self.share * PERIOD_US)))
                else:
                    (path / "cpu.max").write_text(f"{int(self.share * PERIOD_US)} {PERIOD_US}")
                slot.path = path
                (path / "cgroup.procs").write_text(str(pid))
            except OSError:
                slot.release()
                self._nice(pid)
        elif self.kind == "nice":
            self._nice(pid)
        return slot

    def close(self) -> None:
        """Remove this host's cgroups (empty by then: every worker has been released)."""
        if self.base is not None:
            _remove_tree(self.base)

    @staticmethod
    def _nice(pid: int) -> None:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, pid, NICE)

    # ------------------------------------------------------------------ probing

    @classmethod
    def _cgroup1(cls, root: Path, share: float) -> Path | None:
        own = _own_cgroup("cpu")
        if own is None or not (root / "cpu.cfs_quota_us").exists():
            return None
        parent = root / own.lstrip("/")
        _sweep(parent)
        base = parent / f"sandtrade-{os.getpid()}-{next(_serial)}"
        base.mkdir(exist_ok=True)
        workers = base / "workers"
        workers.mkdir(exist_ok=True)
        cores = os.cpu_count() or 1
        (workers / "cpu.cfs_period_us").write_text(str(PERIOD_US))
        keep = max(1.0, cores - 0.5) if cores > 1 else 1.0
        (workers / "cpu.cfs_quota_us").write_text(str(int(keep * PERIOD_US)))
        (workers / "cpu.shares").write_text("512")
        return base

    @classmethod
    def _cgroup2(cls, root: Path, share: float) -> Path | None:
        own = _own_cgroup("")
        if own is None:
            return None
        parent = root / own.lstrip("/")
        controllers = (parent / "cgroup.controllers")
        if not controllers.exists() or "cpu" not in controllers.read_text().split():
            return None
        _sweep(parent)
        base = parent / f"sandtrade-{os.getpid()}-{next(_serial)}"
        base.mkdir(exist_ok=True)
        (base / "cgroup.subtree_control").write_text("+cpu")
        workers = base / "workers"
        workers.mkdir(exist_ok=True)
        (workers / "cgroup.subtree_control").write_text("+cpu")
        cores = os.cpu_count() or 1
        keep = max(1.0, cores - 0.5) if cores > 1 else 1.0
        (workers / "cpu.max").write_text(f"{int(keep * PERIOD_US)} {PERIOD_US}")
        return base


def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup path in the hierarchy of ``controller`` ("" for v2)."""
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") or (not controller and controllers == ""):
            return path
    return None


def _sweep(parent: Path) -> None:
    """Remove the groups of hosts that are gone (a host killed with SIGKILL leaves its own)."""
    with contextlib.suppress(OSError):
        for child in parent.iterdir():
            m = _GROUP.match(child.name)
            if m and child.is_dir() and not _alive(int(m.group(1))):
                _remove_tree(child)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_tree(path: Path) -> None:
    """rmdir a cgroup and its children, deepest first (cgroup dirs hold only kernel files)."""
    with contextlib.suppress(OSError):
        for child in sorted((p for p in path.rglob("*") if p.is_dir()),
                            key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                child.rmdir()
        path.rmdir()
