"""Isolation: strategies running side by side, one of them hostile. Each back-test has its own
worker; the others' results must be exactly what they are when run alone."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import psutil
import pytest

from sandtrade.backtest.result import BacktestResult
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.supervisor import SandboxKilled, Supervisor, worker_uid

from .conftest import CPU_LIMITS, LIMITS, REFERENCE_STRATEGY, Sandbox, comparable, run_file

#: A second well-behaved strategy, different from the reference one.
NEIGHBOUR = """
import statistics

def on_bar(ctx, bar):
    closes = ctx.history(20)
    if len(closes) == 20:
        z = (bar.close - statistics.fmean(closes)) / (statistics.pstdev(closes) or 1.0)
        if z < -1 and ctx.position().qty <= 0:
            ctx.close_position()
            ctx.buy(0.5)
        elif z > 1 and ctx.position().qty >= 0:
            ctx.close_position()
    if ctx.bar_index % 40 == 0:
        ctx.log("equity", round(ctx.account.equity, 2))
"""


def _side_by_side(sandbox: Sandbox, attack: str, attack_limits: WorkerLimits
                  ) -> tuple[dict[str, Any], dict[str, Any], BaseException]:
    """Run the reference strategy, the neighbour and ``attack`` at the same time, each through
    its own ``SandboxRunner.run`` in its own thread; returns the two results and the attack's
    exception (it must raise)."""
    files = {"reference": (sandbox.write(REFERENCE_STRATEGY, "reference.py"), LIMITS),
             "neighbour": (sandbox.write(NEIGHBOUR, "neighbour.py"), LIMITS),
             "attack": (sandbox.write(attack, "attack.py"), attack_limits)}
    outcomes: dict[str, BacktestResult | BaseException] = {}
    barrier = threading.Barrier(len(files))

    def run(name: str, path: Path, limits: WorkerLimits) -> None:
        barrier.wait()
        try:
            outcomes[name] = run_file(path, sandbox.csv, limits)
        except BaseException as e:
            outcomes[name] = e

    threads = [threading.Thread(target=run, args=(name, path, limits))
               for name, (path, limits) in files.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    results = {}
    for name in ("reference", "neighbour"):
        outcome = outcomes[name]
        assert isinstance(outcome, BacktestResult), f"{name}: {outcome!r}"
        results[name] = comparable(outcome)
    attack_outcome = outcomes["attack"]
    assert isinstance(attack_outcome, BaseException), attack_outcome
    return results["reference"], results["neighbour"], attack_outcome


@pytest.fixture
def neighbour_alone(sandbox: Sandbox) -> dict[str, Any]:
    """The neighbour strategy's result when it runs alone."""
    result = run_file(sandbox.write(NEIGHBOUR, "neighbour.py"), sandbox.csv)
    assert result.trades and result.logs
    return comparable(result)


def test_neighbours_unaffected_by_an_infinite_loop(sandbox: Sandbox,
                                                   neighbour_alone: dict[str, Any]) -> None:
    """One strategy spins in ``on_bar`` while two others run: it is killed for CPU, they
    finish with their usual results."""
    reference, neighbour, err = _side_by_side(sandbox, """
        def on_bar(ctx, bar):
            while True:
                pass
    """, CPU_LIMITS)
    assert isinstance(err, SandboxKilled) and err.reason == "cpu", err
    assert reference == sandbox.reference
    assert neighbour == neighbour_alone
    sandbox.assert_host_unharmed(err, reference, neighbour)


def test_neighbours_unaffected_by_a_memory_bomb(sandbox: Sandbox,
                                                neighbour_alone: dict[str, Any]) -> None:
    """One strategy eats memory until its limit while two others run."""
    reference, neighbour, err = _side_by_side(sandbox, """
        hoard = []

        def on_bar(ctx, bar):
            while True:
                hoard.append(bytes(1 << 20))
    """, LIMITS)
    assert (isinstance(err, SandboxKilled) and err.reason == "memory") or \
        "MemoryError" in str(err), err
    assert reference == sandbox.reference
    assert neighbour == neighbour_alone
    sandbox.assert_host_unharmed(err, reference, neighbour)


def test_neighbours_unaffected_by_a_crashing_worker(sandbox: Sandbox,
                                                    neighbour_alone: dict[str, Any]) -> None:
    """One worker dies of SIGSEGV (C stack overflow) while two others run."""
    reference, neighbour, err = _side_by_side(sandbox, """
        def on_start(ctx):
            it = iter([1])
            for i in range(200000):
                it = map(abs, it)
            next(it)
    """, LIMITS)
    assert isinstance(err, SandboxKilled) and err.reason == "crash", err
    assert reference == sandbox.reference
    assert neighbour == neighbour_alone
    sandbox.assert_host_unharmed(err, reference, neighbour)


def test_neighbours_unaffected_by_an_output_flood(sandbox: Sandbox,
                                                  neighbour_alone: dict[str, Any]) -> None:
    """One strategy floods stderr (and its own log) while two others run."""
    reference, neighbour, err = _side_by_side(sandbox, """
        def noisy():
            try:
                yield 1
            finally:
                raise ValueError("x" * 1000)

        def on_bar(ctx, bar):
            for i in range(500):
                print("y" * 1000)
                g = noisy()
                next(g)
                g = None
    """, LIMITS)
    assert isinstance(err, SandboxKilled) and err.reason == "output", err
    assert reference == sandbox.reference
    assert neighbour == neighbour_alone
    sandbox.assert_host_unharmed(err, reference, neighbour)


def test_nothing_a_run_changes_reaches_the_next_run(sandbox: Sandbox) -> None:
    """A strategy changes everything mutable it can reach (its state, the dict behind
    ``ctx.params``, module globals, the library classes it may touch); a later run of another
    strategy sees none of it."""
    attacker = run_file(sandbox.write("""
        import collections
        import json

        PARAMS = {"fast": 5}
        marks = []

        class Grab(object):
            def __eq__(self, other):
                other["fast"] = "owned"
                return True

        def on_start(ctx):
            ctx.state["owned"] = True
            ctx.params == Grab()
            marks.append(json.dumps(ctx.params["fast"]))
            try:
                collections.Counter.owned = True
            except TypeError as e:
                print(e)
            print(marks)
    """, "attacker.py"), sandbox.csv)
    assert attacker.logs[-1] == "['\"owned\"']"
    victim = run_file(sandbox.write("""
        import collections

        PARAMS = {"fast": 5}

        def on_start(ctx):
            print(dict(ctx.state), dict(ctx.params), hasattr(collections.Counter, "owned"))
    """, "victim.py"), sandbox.csv)
    assert victim.logs == ["{} {'fast': 5} False"]
    sandbox.assert_host_unharmed(attacker, victim)


def test_workers_get_separate_private_directories(sandbox: Sandbox) -> None:
    """Two workers at once: each in its own directory with mode 0700, owned (as root) by the
    worker's own uid, so neither can look into the other's; both removed when the workers
    end."""
    # Each worker spins until the host closes it, so both are alive when they are looked at
    # however long the second one takes to boot on a loaded machine (a worker that finished
    # first made psutil raise NoSuchProcess); the limits are far beyond what the test takes.
    path = sandbox.write("""
        while True:
            pass
    """)
    task = {"task": "check", "path": str(path), "source": path.read_text()}
    limits = WorkerLimits(cpu_seconds=120, memory_mb=512, wall_seconds=120, event_seconds=120)
    workers = [Supervisor(limits).start(task, name=f"w{k}") for k in range(2)]
    try:
        dirs = [Path(w.workdir) for w in workers]
        cwds = [psutil.Process(w.pid).cwd() for w in workers]
        modes = [(d.stat().st_uid, d.stat().st_mode & 0o777) for d in dirs]
        assert all(w.proc.poll() is None for w in workers), "both still running"
    finally:
        for w in workers:
            w.close()
    assert dirs[0] != dirs[1] and cwds == [str(d) for d in dirs]
    owners = [worker_uid(w.pid) if os.geteuid() == 0 else os.geteuid() for w in workers]
    assert modes == [(owners[0], 0o700), (owners[1], 0o700)]
    assert os.geteuid() != 0 or owners[0] != owners[1]
    assert not any(d.exists() for d in dirs)
    sandbox.assert_host_unharmed(cwds)
