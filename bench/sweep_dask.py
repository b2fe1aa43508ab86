"""A sweep on a Dask cluster of two workers on loopback, beside the local pool, in one run.

    python bench/sweep_dask.py [--runs 1000] [--bars 50000]

A grid of sma_cross runs (fast x slow, every run on all the bars) over hourly GBM bars:
the local pool (:class:`~sandtrade.sandbox.sweep.LocalExecutor`) with one and with two
sandboxed workers, and the Dask executor on a scheduler and two ``dask worker`` processes
(``--nthreads 1``) started here on loopback. Every row runs the same runs and must give the
same statistics. Printed per row: seconds, runs/s, milliseconds a run, and the ratio to the
local pool of two workers (target for Dask: within 15 %, i.e. >= 0.85).

The cluster is started (and its workers connected) before the Dask row's clock starts; the
row includes scattering the data and every worker's first sandbox. (bench/sweep.py, the
sweep room's benchmark, has the same rows beside backtesting.py's optimize; this file is the
Dask part on its own.)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.progress import Progress
from strategies_examples import example_path

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.sweep import Executor, RunResult, RunSpec, SweepJob
from sandtrade.broker import BrokerSettings
from sandtrade.market.synthetic import gbm_bars
from sandtrade.sandbox.cluster import DaskExecutor
from sandtrade.sandbox.sweep import LocalExecutor


def grid(runs: int, bars: int) -> list[RunSpec]:
    """``runs`` distinct (fast, slow) pairs, fast < slow, on the whole data."""
    specs = []
    fast = 2
    while len(specs) < runs:
        for slow in range(fast + 1, fast + 200):
            specs.append(RunSpec.of({"fast": fast, "slow": slow}, 0, bars))
            if len(specs) == runs or slow - fast >= 40:
                break
        fast += 1
    return specs


def timed(name: str, executor: Executor, job: SweepJob, specs: list[RunSpec],
          progress: Progress) -> tuple[float, dict[str, RunResult]]:
    task = progress.add_task(name, total=len(specs))
    t0 = time.perf_counter()
    results = {}
    for r in executor.run(job, specs):
        results[r.run_id] = r
        progress.advance(task)
    elapsed = time.perf_counter() - t0
    assert len(results) == len(specs), f"{name}: {len(results)} results of {len(specs)}"
    bad = [r for r in results.values() if r.error]
    assert not bad, f"{name}: {bad[0].error}"
    return elapsed, results


class LoopbackCluster:
    """A ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1."""

    def __init__(self, tmp: Path, workers: int = 2) -> None:
        dask = [sys.executable, "-m", "dask"]
        file = tmp / "scheduler.json"
        self.procs = [subprocess.Popen(
            [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
             "--scheduler-file", str(file)], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)]
        deadline = time.monotonic() + 60
        while not (file.exists() and "address" in (file.read_text() or "")):
            assert time.monotonic() < deadline, "the scheduler did not start"
            time.sleep(0.05)
        self.address = json.loads(file.read_text())["address"]
        self.procs += [subprocess.Popen(
            [*dask, "worker", self.address, "--nthreads", "1", "--host", "127.0.0.1",
             "--no-dashboard", "--name", f"w{k}"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL) for k in range(workers)]

    def close(self) -> None:
        for group in (self.procs[1:], self.procs[:1]):
            for p in group:
                p.terminate()
            for p in group:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--bars", type=int, default=50_000)
    args = ap.parse_args()
    path = example_path("sma_cross")
    bars = gbm_bars(args.bars, symbol="SYN", seed=42)
    job = SweepJob(str(path), path.read_text(), {"SYN": bars}, BacktestRequest(
        strategy=str(path), data=[DataSpec(path="unused.csv")],
        broker=BrokerSettings(commission_pct=0.0)))
    specs = grid(args.runs, args.bars)
    cluster = LoopbackCluster(Path(tempfile.mkdtemp(prefix="sandtrade-dask-")))
    dask = DaskExecutor(cluster.address)
    try:
        dask.client.wait_for_workers(2, timeout=120)
        rows = []
        with Progress(transient=True) as progress:
            for name, workers in (("local, 1 worker", 1), ("local, 2 workers", 2)):
                with LocalExecutor(workers) as local:
                    rows.append((name, *timed(name, local, job, specs, progress)))
            name = "Dask, 2 workers on loopback"
            rows.append((name, *timed(name, dask, job, specs, progress)))
    finally:
        dask.close()
        cluster.close()
    reference = rows[1][2]
    for name, _, results in rows:
        assert all(repr(results[k].stats) == repr(reference[k].stats) for k in reference), \
            f"{name}: different statistics"
    local2 = rows[1][1]
    print(f"\n{args.runs:,} runs of sma_cross on {args.bars:,} bars (every row: the same "
          "statistics)")
    print(f"{'executor':>30} {'seconds':>8} {'runs/s':>7} {'ms/run':>7} {'vs local x2':>11}")
    for name, elapsed, _ in rows:
        print(f"{name:>30} {elapsed:>8.2f} {args.runs / elapsed:>7.2f} "
              f"{1000 * elapsed / args.runs:>7.1f} {local2 / elapsed:>11.2f}")
    print(f"\ntwo local workers: {rows[0][1] / local2:.2f}x one (target >= 1.8); Dask: "
          f"{local2 / rows[2][1]:.2f} of the local pool's speed (target >= 0.85)")


if __name__ == "__main__":
    main()
