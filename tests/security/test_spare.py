"""The spare worker: a worker booted and confined before it has a task (``keep_spare``).

A spare waits for somebody's next strategy, so it must be as closed as any worker: used for one
task only, not charged wall time while it waits, replaced when it dies, ended with its
supervisor, and out of reach of every other worker (its own uid, Landlock-scoped signals)."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import psutil
import pytest

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.sandbox import supervisor as supervisor_module
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.runner import SandboxRunner
from sandtrade.sandbox.supervisor import Supervisor, Worker, worker_uid

from .conftest import (
    EVENT_LIMITS,
    LIMITS,
    REFERENCE_STRATEGY,
    WALL_LIMITS,
    Sandbox,
    comparable,
)

#: The spare worker's timing (waits of a second or more): part of the slow set.
pytestmark = pytest.mark.slow


def _spare(supervisor: Supervisor, timeout: float = 30.0) -> Worker:
    """The spare ``supervisor`` boots in the background, once it is ready."""
    deadline = time.monotonic() + timeout
    while (spare := supervisor.spare) is None:
        assert time.monotonic() < deadline, "no spare worker was booted"
        time.sleep(0.02)
    return spare


def _runner(sandbox: Sandbox, supervisor: Supervisor) -> tuple[SandboxRunner, BacktestRequest]:
    path = sandbox.write(REFERENCE_STRATEGY, "reference.py")
    request = BacktestRequest(strategy=str(path), data=[DataSpec(path=str(sandbox.csv))])
    return SandboxRunner(supervisor=supervisor), request


@contextlib.contextmanager
def _spare_after_one_run(sandbox: Sandbox, limits: WorkerLimits = LIMITS
                         ) -> Iterator[tuple[Supervisor, SandboxRunner, BacktestRequest, Worker]]:
    """A keep-spare supervisor that has run the reference strategy once, and its spare;
    closed at the end."""
    supervisor = Supervisor(limits, keep_spare=True)
    try:
        runner, request = _runner(sandbox, supervisor)
        runner.run(request)
        spare = _spare(supervisor)
        sandbox.worker_pids.append(spare.pid)
        yield supervisor, runner, request, spare
    finally:
        supervisor.close()


def test_spare_is_booted_after_a_start_and_used_for_one_task(sandbox: Sandbox) -> None:
    """Each start leaves a fresh spare; the next run takes it (the same pid), gives the same
    result as a freshly booted worker, and is never handed a second task."""
    supervisor = Supervisor(LIMITS, keep_spare=True)
    try:
        runner, request = _runner(sandbox, supervisor)
        first = runner.run(request)
        assert runner.last_worker is not None
        used = [runner.last_worker.pid]
        for _ in range(2):
            spare = _spare(supervisor)
            sandbox.worker_pids.append(spare.pid)
            assert spare.confined and spare.pid not in used
            assert psutil.Process(spare.pid).is_running()
            again = runner.run(request)
            assert runner.last_worker is spare
            used.append(spare.pid)
            assert comparable(again) == comparable(first) == sandbox.reference
            assert not psutil.pid_exists(used[-2]) or \
                psutil.Process(used[-2]).status() == psutil.STATUS_ZOMBIE
    finally:
        supervisor.close()
    assert supervisor.spare is None
    sandbox.assert_host_unharmed(first)


def test_the_next_spare_waits_until_the_task_ends_or_has_run_a_while(sandbox: Sandbox) -> None:
    """Booting is 0.14 s of CPU, which a task just handed out would lose on a small machine:
    the next spare boots when that task ends, or once it has run ``SPARE_DELAY``."""
    supervisor = Supervisor(LIMITS, keep_spare=True)
    runner, request = _runner(sandbox, supervisor)
    source = (sandbox.write(REFERENCE_STRATEGY, "reference.py")).read_text()
    try:
        # A back-test task that gets no bars yet: it runs until closed.
        task = {"task": "backtest", "path": "waiting.py", "source": source,
                "request": request.model_dump(mode="json"), "symbols": ["ACME"]}
        short = supervisor.start(task, name="short")
        sandbox.worker_pids.append(short.pid)
        assert supervisor.spare is None and supervisor.spare_boot is None
        short.close()
        spare = _spare(supervisor)  # booted once the task ended, well before SPARE_DELAY
        sandbox.worker_pids.append(spare.pid)

        started = time.monotonic()
        long = supervisor.start(task, name="long")  # takes the spare
        assert long is spare and supervisor.spare is None
        last_boot = supervisor.spare_boot  # the spare's own, finished
        time.sleep(supervisor_module.SPARE_DELAY / 2)
        assert supervisor.spare is None and supervisor.spare_boot is last_boot
        nxt = _spare(supervisor)  # while "long" still runs
        assert time.monotonic() - started >= supervisor_module.SPARE_DELAY
        assert long.proc.poll() is None
        sandbox.worker_pids.append(nxt.pid)
        long.close()
        result = runner.run(request)
        assert runner.last_worker is nxt
    finally:
        supervisor.close()
    assert comparable(result) == sandbox.reference
    sandbox.assert_host_unharmed(result)


def test_closing_the_supervisor_ends_its_spare(sandbox: Sandbox) -> None:
    """``close()`` kills the waiting spare and boots no other one."""
    supervisor = Supervisor(LIMITS, keep_spare=True)
    runner, request = _runner(sandbox, supervisor)
    result = runner.run(request)
    spare = _spare(supervisor)
    sandbox.worker_pids.append(spare.pid)
    supervisor.close()
    assert spare.proc.wait(timeout=5) is not None
    assert supervisor.spare is None and supervisor.spare_boot is not None
    assert supervisor.spare_boot.done()
    runner.run(request)  # still works, with a worker booted for it; no spare after it
    time.sleep(0.5)
    assert supervisor.spare is None
    sandbox.assert_host_unharmed(result)


def test_waiting_spare_is_not_charged_wall_time(sandbox: Sandbox) -> None:
    """The run's wall-time limit starts with its task: a spare that waited longer than the
    whole limit (1.5 s here) still runs a normal strategy to the end."""
    with _spare_after_one_run(sandbox, WALL_LIMITS) as (_, runner, request, spare):
        time.sleep(WALL_LIMITS.wall_seconds + 1.0)
        result = runner.run(request)
        assert runner.last_worker is spare
    assert comparable(result) == sandbox.reference
    sandbox.assert_host_unharmed(result)


def test_waiting_spare_is_not_charged_a_hooks_time(sandbox: Sandbox) -> None:
    """The per-hook budget (0.5 s here) also starts with the task: a spare that waited
    longer, given a strategy whose module body takes a while before the first hook, runs to
    the end (the watchdog timed the silence from before the task and killed it)."""
    slow_start = "\n".join(["TABLE = []", "for k in range(60_000):",
                             "    TABLE.append(k * k)", "", REFERENCE_STRATEGY])
    with _spare_after_one_run(sandbox, EVENT_LIMITS) as (_, runner, request, spare):
        time.sleep(EVENT_LIMITS.event_seconds * 3)
        slow = request.model_copy(update={"strategy": str(sandbox.write(slow_start,
                                                                        "slow_start.py"))})
        result = runner.run(slow)
        assert runner.last_worker is spare
    assert {**comparable(result), "strategy": "reference"} == sandbox.reference
    sandbox.assert_host_unharmed(result)


def test_a_dead_spare_is_replaced(sandbox: Sandbox) -> None:
    """A spare killed while it waits (from outside, or by the OOM killer) is not handed the
    task: the next run boots a worker of its own and succeeds."""
    with _spare_after_one_run(sandbox) as (_, runner, request, spare):
        os.kill(spare.pid, signal.SIGKILL)
        spare.proc.wait(timeout=5)
        result = runner.run(request)
        assert runner.last_worker is not spare
    assert comparable(result) == sandbox.reference
    sandbox.assert_host_unharmed(result)


_SIGNALLER = """
import json, os, signal, sys
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.supervisor import worker_uid
from sandtrade.sandbox.worker import confine

target = int(sys.argv[1])
out = {"report": confine(WorkerLimits(), uid=worker_uid(os.getpid()))}
out["uid"] = os.getuid()
for name, sig in (("probe", 0), ("kill", signal.SIGKILL), ("stop", signal.SIGSTOP)):
    try:
        os.kill(target, sig)
        out[name] = "sent"
    except OSError as e:
        out[name] = e.errno
print(json.dumps(out))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="workers get uids of their own only when the "
                    "host runs as root")
def test_an_escaped_worker_cannot_signal_the_spare(sandbox: Sandbox) -> None:
    """A payload past the language layer, confined as a worker is (its own uid), tries to
    probe, kill and stop the spare that will run the next strategy: every signal is refused
    (EPERM), and the spare then runs its task normally."""
    with _spare_after_one_run(sandbox) as (_, runner, request, spare):
        proc = subprocess.run([sys.executable, "-c", _SIGNALLER, str(spare.pid)],
                              capture_output=True, text=True, timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        assert out["uid"] not in (0, worker_uid(spare.pid))
        assert psutil.Process(spare.pid).uids().real == worker_uid(spare.pid)
        assert (out["probe"], out["kill"], out["stop"]) == (errno.EPERM,) * 3, out
        assert psutil.Process(spare.pid).status() != psutil.STATUS_STOPPED
        result = runner.run(request)
        assert runner.last_worker is spare
    assert comparable(result) == sandbox.reference
    sandbox.assert_host_unharmed(out, result)
