"""A fair share of the CPU: a worker that spins gets its share, not a core, and cannot take
more back (``sandbox/cpu.py``).

What this machine offers decides which placement is tested: the cgroup tests skip, naming the
placement found, where no cgroup is writable; the nice placement is tested everywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from sandtrade.sandbox.cpu import NICE, CpuPlacement
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.supervisor import Supervisor

SPIN = "while True:\n    pass\n"


@pytest.fixture
def placement() -> Iterator[CpuPlacement]:
    """A placement with a small share (0.2 core), removed afterwards."""
    p = CpuPlacement.probe(0.2)
    try:
        yield p
    finally:
        p.close()


def needs_cgroup(p: CpuPlacement) -> None:
    if not p.kind.startswith("cgroup"):
        pytest.skip(f"no writable cpu cgroup here ({p.detail})")


def spinner() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", SPIN])


def test_a_spinner_gets_no_more_than_its_share(placement: CpuPlacement) -> None:
    needs_cgroup(placement)
    proc = spinner()
    slot = placement.place(proc.pid)
    try:
        assert slot.path is not None
        assert str(proc.pid) in (slot.path / "cgroup.procs").read_text().split()
        if placement.kind == "cgroup1":
            assert (slot.path / "cpu.cfs_quota_us").read_text().strip() == "20000"
        p = psutil.Process(proc.pid)
        t0, c0 = time.monotonic(), sum(p.cpu_times()[:2])
        time.sleep(3)  # measuring a rate over a span of time, not waiting for a condition
        t1, c1 = time.monotonic(), sum(p.cpu_times()[:2])
        assert (c1 - c0) / (t1 - t0) <= 0.2 + 0.1, "the spinner used more than its share"
    finally:
        proc.kill()
        proc.wait()
        slot.release()
    assert slot.path is None


def test_workers_are_placed_before_their_task_and_released(
        placement: CpuPlacement) -> None:
    """Every worker a supervisor starts is in its own cpu group before it gets its task; the
    group is removed when the worker is closed. (The worker checks a file that spins at
    import, so it is still alive when looked at: a worker that has ended is in no group.)"""
    needs_cgroup(placement)
    worker = Supervisor(WorkerLimits(event_seconds=60, wall_seconds=60), cpu=placement).start(
        {"task": "check", "path": "loop.py", "source": SPIN}, name="loop.py")
    try:
        assert worker.cpu_slot is not None and worker.cpu_slot.path is not None
        group = worker.cpu_slot.path
        assert worker.proc.poll() is None
        line = next(x for x in Path(f"/proc/{worker.pid}/cgroup").read_text().splitlines()
                    if placement.kind == "cgroup2" or "cpu" in x.split(":")[1].split(","))
        assert line.endswith(f"/workers/w-{worker.pid}"), (
            line, group, (group / "cgroup.procs").read_text())
        assert str(worker.pid) in (group / "cgroup.procs").read_text().split()
    finally:
        worker.close()
    assert not group.exists()


_ESCAPE = r'''
import json, os, sys
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.worker import confine

sys.stdin.readline()  # the host has placed this process
confine(WorkerLimits())
out = {}


def attempt(name, fn):
    try:
        fn()
        out[name] = "done"
    except OSError as e:
        out[name] = f"refused {e.errno}"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


group, workers = sys.argv[1], sys.argv[2]
attempt("leave_its_group", lambda: write(os.path.join(workers, "..", "cgroup.procs"),
                                         str(os.getpid())))
attempt("raise_its_quota", lambda: write(os.path.join(group, "cpu.cfs_quota_us"), "-1"))
attempt("raise_its_weight", lambda: write(os.path.join(group, "cpu.shares"), "262144"))
attempt("raise_its_priority", lambda: os.setpriority(os.PRIO_PROCESS, 0, 0))
attempt("leave_batch", lambda: os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0)))
out["policy"] = str(os.sched_getscheduler(0))
print(json.dumps(out))
'''


def escape_attempts(placement: CpuPlacement) -> dict[str, str]:
    """A confined process, placed as a worker is, tries to take more CPU back."""
    proc = subprocess.Popen([sys.executable, "-c", _ESCAPE,
                             str(placement.base / "workers" / "w-0") if placement.base else "/",
                             str(placement.base / "workers") if placement.base else "/"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    slot = placement.place(proc.pid)
    try:
        if slot.path is not None:  # the real group's name, now that the pid is known
            proc.args[3] = str(slot.path)  # type: ignore[index]
        out, err = proc.communicate(f"{slot.path or '/'}\n", timeout=60)
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        slot.release()
    assert proc.returncode == 0, err
    result: dict[str, str] = json.loads(out)
    return result


@pytest.mark.skipif(os.geteuid() != 0, reason="confine() drops the uid only as root")
def test_the_worker_cannot_leave_its_group_or_raise_its_share(
        placement: CpuPlacement) -> None:
    needs_cgroup(placement)
    tried = escape_attempts(placement)
    for name in ("leave_its_group", "raise_its_quota", "raise_its_weight"):
        assert tried[name].startswith("refused"), (name, tried)


@pytest.mark.skipif(os.geteuid() != 0, reason="confine() drops the uid only as root")
def test_a_niced_worker_cannot_raise_its_priority_back() -> None:
    tried = escape_attempts(CpuPlacement("nice", f"nice +{NICE}"))
    assert tried["raise_its_priority"].startswith("refused"), tried


@pytest.mark.skipif(os.geteuid() != 0, reason="confine() drops the uid only as root")
def test_a_worker_runs_as_batch_and_cannot_leave_it() -> None:
    """A confined worker is SCHED_BATCH (woken, it does not preempt the host's threads) and
    cannot switch back to the normal class."""
    tried = escape_attempts(CpuPlacement("none", "off"))
    assert tried["leave_batch"].startswith("refused"), tried
    assert tried["policy"] == str(os.SCHED_BATCH), tried


def test_nice_placement_lowers_the_workers_priority() -> None:
    proc = spinner()
    try:
        CpuPlacement("nice", f"nice +{NICE}").place(proc.pid)
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) == NICE
    finally:
        proc.kill()
        proc.wait()


def test_a_share_of_zero_turns_the_cap_off() -> None:
    p = CpuPlacement.probe(0)
    assert p.kind == "none" and "off" in p.detail


def test_doctor_names_the_cpu_placement() -> None:
    expected = CpuPlacement.probe(0.5)
    expected.close()
    proc = subprocess.run([sys.executable, "-m", "sandtrade.cli", "doctor"],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "200"})
    assert proc.returncode == 0, proc.stderr
    row = next(line for line in proc.stdout.splitlines() if "cpu share" in line)
    assert f"{expected.kind}:" in row


def test_groups_of_dead_hosts_are_swept(tmp_path: Path) -> None:
    """A host killed with SIGKILL leaves its group; the next host removes it."""
    needs_cgroup(CpuPlacement.probe(0.2))
    first = CpuPlacement.probe(0.2)
    assert first.base is not None
    dead = first.base.with_name("sandtrade-999999999-1")  # no such pid
    first.base.rename(dead)
    second = CpuPlacement.probe(0.2)
    try:
        assert not dead.exists()
    finally:
        second.close()
