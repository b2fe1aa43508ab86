"""Sweeps on a real Dask cluster on loopback: a ``dask scheduler`` and two ``dask worker``
processes (no nanny, so a killed worker stays dead), started and stopped here.

Each Dask task runs a sandboxed back-test; the results must be the ones the local path gives
for the same runs, every run must give exactly one result, and the runs of a Dask worker
killed mid-sweep must be run again elsewhere.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

distributed = pytest.importorskip(
    "distributed", reason="Dask distributed is not installed (pip install '.[cluster]')")

from strategies_examples import example_path  # noqa: E402

from sandtrade.backtest.request import BacktestRequest, DataSpec  # noqa: E402
from sandtrade.backtest.sweep import RunResult, RunSpec, SweepJob  # noqa: E402
from sandtrade.broker import BrokerSettings  # noqa: E402
from sandtrade.cli import main  # noqa: E402
from sandtrade.errors import StrategyError  # noqa: E402
from sandtrade.market import write_csv  # noqa: E402
from sandtrade.market.synthetic import gbm_bars  # noqa: E402
from sandtrade.sandbox.cluster import (  # noqa: E402
    ClusterError,
    DaskExecutor,
    cluster_executor,
)
from sandtrade.sandbox.sweep import LocalExecutor  # noqa: E402

DASK = [sys.executable, "-m", "dask"]
BARS = 2_000


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def busy_workers(client: distributed.Client) -> list[str]:
    """The addresses of the workers running or holding a task."""
    return [a for a, keys in client.processing().items() if keys]


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


class Cluster:
    """A scheduler and named workers, as processes of this test."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        file = tmp / "scheduler.json"
        self.scheduler = subprocess.Popen(
            [*DASK, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(file)], stdout=subprocess.DEVNULL,
            stderr=open(tmp / "scheduler.log", "wb"))  # noqa: SIM115 - closed with the process
        _wait_for(lambda: file.exists() and file.stat().st_size > 0, "the scheduler file")
        _wait_for(lambda: "address" in json.loads(file.read_text() or "{}"),
                  "the scheduler address")
        self.address: str = json.loads(file.read_text())["address"]
        self.workers: dict[str, subprocess.Popen[bytes]] = {}

    def add_worker(self, name: str) -> None:
        self.workers[name] = subprocess.Popen(
            [*DASK, "worker", self.address, "--name", name, "--nthreads", "1", "--no-nanny",
             "--host", "127.0.0.1", "--no-dashboard", "--death-timeout", "60"],
            stdout=subprocess.DEVNULL,
            stderr=open(self.tmp / f"{name}.log", "wb"))  # noqa: SIM115

    def close(self) -> None:
        # Workers first: a worker told to stop says goodbye to its scheduler.
        for group in (list(self.workers.values()), [self.scheduler]):
            for proc in group:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGTERM)
            for proc in group:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("dask"))
    try:
        c.add_worker("w0")
        c.add_worker("w1")
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def client(cluster: Cluster) -> Iterator[distributed.Client]:
    with distributed.Client(cluster.address, timeout=30) as c:
        c.wait_for_workers(2, timeout=60)
        yield c


def job_of(source: str, path: str = "sma_cross.py") -> SweepJob:
    bars = gbm_bars(BARS, symbol="ACME", seed=7)
    return SweepJob(path, source, {"ACME": bars}, BacktestRequest(
        strategy=path, data=[DataSpec(path="unused.csv")],
        broker=BrokerSettings(commission_pct=0.0)))


@pytest.fixture(scope="module")
def job() -> SweepJob:
    return job_of(example_path("sma_cross").read_text())


def grid(n: int) -> list[RunSpec]:
    return [RunSpec.of({"fast": 3 + k, "slow": 20 + 2 * k}, 100 * (k % 3), BARS)
            for k in range(n)]


def local_results(job: SweepJob, specs: list[RunSpec]) -> dict[str, RunResult]:
    return {r.run_id: r for r in LocalExecutor(1).run(job, specs)}


def same(a: RunResult, b: RunResult) -> bool:
    # repr: exact floats, and nan equal to nan
    return (a.run_id, a.params, repr(a.stats), a.error) == \
        (b.run_id, b.params, repr(b.stats), b.error)


def test_a_sweep_on_the_cluster_gives_the_local_results_once_each(
        cluster: Cluster, client: distributed.Client, job: SweepJob) -> None:
    specs = grid(6)
    broken = RunSpec.of({"fast": "x", "slow": 20}, 0, BARS)  # ta.sma("x") raises
    executor = DaskExecutor(client)
    results = list(executor.run(job, [*specs, specs[0], broken]))
    # A sandbox per Dask worker (that got runs), not per run: the bars went to each once.
    assert 1 <= executor.started <= 2
    assert sorted(r.run_id for r in results) == sorted([*(s.run_id for s in specs),
                                                        broken.run_id])
    local = local_results(job, [*specs, broken])
    by_id = {r.run_id: r for r in results}
    for spec in specs:
        assert by_id[spec.run_id].error is None
        assert by_id[spec.run_id].stats["# Trades"] > 0
        assert same(by_id[spec.run_id], local[spec.run_id])
    error = by_id[broken.run_id].error
    assert error is not None and "sma_cross.py" in error
    assert error == local[broken.run_id].error
    # The sweep is over: its sandboxed workers are closed; each Dask worker keeps its zygote.
    for name in ("w0", "w1"):
        dask_worker = psutil.Process(cluster.workers[name].pid)
        _wait_for(lambda: all(not any(_alive(p) for p in z.children())
                              for z in dask_worker.children()),  # noqa: B023
                  f"{name}'s sandboxed workers to end")


def test_a_worker_killed_mid_sweep_has_its_runs_redone_elsewhere(
        cluster: Cluster, client: distributed.Client, job: SweepJob) -> None:
    specs = grid(10)
    names = {addr: info["name"] for addr, info in client.scheduler_info()["workers"].items()}
    killed: list[str] = []
    results: list[RunResult] = []
    for result in DaskExecutor(client).run(job, specs):
        results.append(result)
        if not killed:
            # The first result is in; kill a worker that has a run in hand.
            _wait_for(lambda: busy_workers(client), "a busy worker")
            name = str(names[busy_workers(client)[0]])
            sandboxes = psutil.Process(cluster.workers[name].pid).children(recursive=True)
            assert sandboxes, "its zygote and sandboxed worker"
            cluster.workers[name].kill()
            cluster.workers[name].wait()
            killed.append(name)
            # Its sandboxed workers die with it (parent-death signals), none left running.
            _wait_for(lambda: not any(_alive(p) for p in sandboxes),  # noqa: B023
                      "the killed worker's sandboxes to end")
    assert killed
    assert len(results) == len(specs)  # each run counted once
    assert sorted(r.run_id for r in results) == sorted(s.run_id for s in specs)
    local = local_results(job, specs)
    for r in results:
        assert r.error is None
        assert same(r, local[r.run_id])
    # What is left of the cluster: the other worker, which ran the killed one's runs.
    assert [str(i["name"]) for i in client.scheduler_info()["workers"].values()] == \
        [n for n in ("w0", "w1") if n not in killed]
    cluster.add_worker(f"{killed[0]}-again")  # two workers again, for whatever runs next
    client.wait_for_workers(2, timeout=60)


def test_an_unreachable_scheduler_is_a_clear_error(job: SweepJob) -> None:
    executor = DaskExecutor("tcp://127.0.0.1:9", timeout=1)
    with pytest.raises(ClusterError, match=r"cannot reach the Dask scheduler at "
                                           r"tcp://127\.0\.0\.1:9"):
        list(executor.run(job, grid(1)))


def test_a_strategy_that_does_not_load_stops_the_sweep_with_its_error(
        client: distributed.Client) -> None:
    with pytest.raises(StrategyError, match=r"broken\.py"):
        list(DaskExecutor(client).run(job_of("def on_bar(ctx, bar)\n", "broken.py"), grid(3)))


@pytest.mark.parametrize("cluster", ["local:0", "local:x", "8786", "http://host:8786",
                                     "tcp://host"])
def test_a_cluster_that_is_neither_an_address_nor_local_n_is_refused(cluster: str) -> None:
    with pytest.raises(ClusterError, match=r"--cluster '.*'|at least one worker"), \
            cluster_executor(cluster):
        pass


def test_local_n_starts_a_cluster_here_and_shows_its_dashboard(job: SweepJob) -> None:
    said: list[str] = []
    specs = grid(2)
    with cluster_executor("local:1", say=said.append) as executor:
        workers = executor.client.scheduler_info()["workers"]
        assert len(workers) == 1 and all(a.startswith("tcp://127.0.0.1:") for a in workers)
        results = list(executor.run(job, specs))
    assert sorted(r.run_id for r in results) == sorted(s.run_id for s in specs)
    assert all(r.error is None for r in results)
    assert len(said) == 1 and said[0].startswith("Dask dashboard: http://127.0.0.1:")


def test_optimize_on_the_cluster_prints_what_it_prints_locally(
        cluster: Cluster, client: distributed.Client, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "ACME.csv"
    write_csv(gbm_bars(BARS, symbol="ACME", seed=7), csv)

    def optimize(*more: str) -> dict:
        code = main(["optimize", str(example_path("sma_cross")), "--data", str(csv),
                     "--param", "fast=5:15:5", "--param", "slow=20:30:10", "--constraint",
                     "fast < slow", "--maximize", "Equity Final [$]", "--json", "--no-store",
                     *more])
        out = capsys.readouterr().out
        assert code == 0, out
        return json.loads(out)  # type: ignore[no-any-return]

    here, there = optimize("--workers", "1"), optimize("--cluster", cluster.address)
    assert len(there["runs"]) == 6
    assert json.dumps(there, sort_keys=True) == json.dumps(here, sort_keys=True)
