"""Sweep speed: a grid of sma_cross runs on GBM bars, sandboxed on 1 and 2 local workers, and
backtesting.py's ``Backtest.optimize`` on the same grid, in one run.

    python bench/sweep.py [--bars 50000] [--runs 1000] [--skip-backtesting-py]

The grid is fast x slow (fast 2, 3, ...; slow 10, 20, ...; 40 x 25 = 1,000 points by default),
commission 0, on the same hourly GBM bars as bench/backtest_speed.py. Prints one table:
runs/s, wall time, and the per-run overhead beyond the back-test itself, which is

    (wall time x workers / runs) - (one run in-process through the worker's own code for a
                                    run frame, sweep_task.run_one: the same request and
                                    settings, restricted, the API types on the fast attribute
                                    path as in a worker; the mean of 200 grid points drawn
                                    at random, each run once after a warm-up)

so it counts everything a sweep adds around the back-test itself: the pool, the pipes, the
bars shipped to each worker, the host's bookkeeping, and two workers sharing two cores with
the host (loading the strategy afresh per run is part of both). The sweep's runs are not
stored (a store adds one batched SQLite write a second). The reference used to leave the
worker's fast attribute path off (1.6x slower than a run in a worker) and to sample only the
grid's dearest row (slow 10), so the overhead came out negative (docs/backtest_speed.md).

The Dask row (:func:`dask_row`; ``--skip-dask`` leaves it out) runs the same grid on a Dask
cluster of two workers on loopback (see bench/sweep_dask.py, which prints it beside the local
rows on its own, and docs/cluster.md).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("TQDM_DISABLE", "1")  # backtesting.py's progress bars, per run

from backtesting import Backtest, Strategy
from backtesting.lib import crossover
from backtesting.test import SMA
from strategies_examples import example_path

from sandtrade.backtest.optimize import ParamRange, Search, grid_points
from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.sweep import Executor, SweepJob
from sandtrade.market.synthetic import reference_gbm_frame
from sandtrade.models import Bar
from sandtrade.sandbox.sweep import LocalExecutor
from sandtrade.sandbox.worker.sweep_task import run_one
from sandtrade.strategy import policy
from sandtrade.strategy.context import API_TYPES


class SmaCross(Strategy):
    """backtesting.py's Quick Start strategy (module level: its optimize pickles it)."""

    n1 = 10
    n2 = 20

    def init(self):  # type: ignore[no-untyped-def]
        self.sma1 = self.I(SMA, self.data.Close, self.n1)
        self.sma2 = self.I(SMA, self.data.Close, self.n2)

    def next(self):  # type: ignore[no-untyped-def]
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()


@dataclass
class Row:
    """One line of the table."""

    name: str
    runs: int
    wall_s: float
    workers: int

    def overhead_ms(self, single_s: float) -> float | None:
        if self.workers <= 0:
            return None
        return (self.wall_s * self.workers / self.runs - single_s) * 1000


def grid(runs: int) -> tuple[list[ParamRange], list[dict[str, int]]]:
    """fast x slow with ``runs`` points (40 x 25 for 1,000)."""
    n_slow = 25 if runs >= 25 else runs
    n_fast = max(1, runs // n_slow)
    ranges = [ParamRange("fast", tuple(range(2, 2 + n_fast))),
              ParamRange("slow", tuple(range(10, 10 + 10 * n_slow, 10)))]
    return ranges, grid_points(ranges)


def reference_seconds(job: SweepJob, points: list[dict[str, int]]) -> tuple[float, float]:
    """The mean wall and CPU seconds of ``points`` run once each in this process exactly as
    a sweep's worker runs a ``run`` frame (:func:`~sandtrade.sandbox.worker.sweep_task.run_one`:
    a fresh restricted load of the strategy, the job's request with its cash and broker
    settings, measured for its statistics only), with the strategy API's types on the fast
    attribute path as a worker puts them before its task, after one warm-up run."""
    policy.FAST_ATTRIBUTE_TYPES.update(API_TYPES)  # as the worker does (worker/boot.py)
    symbols = list(job.data)
    bars = job.data[symbols[0]]
    assert len(symbols) == 1, "the bench's job has one symbol"
    run_one(job.strategy, job.source, job.request, symbols, bars, points[0], None, [])
    t0, c0 = time.perf_counter(), time.process_time()
    for params in points:
        run_one(job.strategy, job.source, job.request, symbols, bars, params, None, [])
    return ((time.perf_counter() - t0) / len(points), (time.process_time() - c0) / len(points))


def reference_sample(points: list[dict[str, int]], size: int = 200) -> list[dict[str, int]]:
    """A random sample of the grid's points (seeded: the same each time). A run's cost follows
    its parameters (the shorter the averages, the more trades) and not evenly: the 16 points
    of a stratified 4 x 4 sample, as this bench took before, put the mean run of the 1,000-point
    grid at 287 ms where 200 of its points drawn at random, each run once, took 305 ms, so the
    overhead it printed (50 ms) was mostly that difference. Every ``len(points) // 8``-th point,
    earlier still, was one row of the grid (slow 10, its dearest)."""
    return random.Random(1).sample(points, min(size, len(points)))


def local_row(job: SweepJob, points: list[dict[str, int]], workers: int,
              progress: Callable[[str], None]) -> Row:
    with LocalExecutor(workers) as executor:
        return timed_row(f"sandtrade, {workers} local worker{'s' if workers > 1 else ''}",
                         executor, job, points, workers, progress)


def timed_row(name: str, executor: Executor, job: SweepJob, points: list[dict[str, int]],
              workers: int, progress: Callable[[str], None]) -> Row:
    done = [0]

    def tick(result: object, reused: bool) -> None:
        done[0] += 1
        if done[0] % 100 == 0:
            progress(f"{name}: {done[0]:,}/{len(points):,}")

    t0 = time.perf_counter()
    results = Search(executor, job, on_result=tick).run(points, 0, len(job.times))
    wall = time.perf_counter() - t0
    failed = [r for r in results if r.error]
    if failed:
        raise SystemExit(f"{name}: {len(failed)} runs failed: {failed[0].error}")
    return Row(name, len(results), wall, workers)


def dask_row(job: SweepJob, points: list[dict[str, int]],
             progress: Callable[[str], None]) -> Row:
    """The same grid on a Dask cluster of two workers (``dask scheduler`` and two ``dask
    worker --nthreads 1`` processes on loopback), started and connected before the clock
    starts; the row includes scattering the data and each worker's first sandbox."""
    from sweep_dask import LoopbackCluster

    from sandtrade.sandbox.cluster import DaskExecutor

    cluster = LoopbackCluster(Path(tempfile.mkdtemp(prefix="sandtrade-dask-")))
    executor = DaskExecutor(cluster.address)
    try:
        executor.client.wait_for_workers(2, timeout=120)
        return timed_row("sandtrade, Dask cluster of 2 workers (loopback)", executor, job,
                         points, 2, progress)
    finally:
        executor.close()
        cluster.close()


def backtesting_py_row(df: object, ranges: list[ParamRange]) -> Row:
    bt = Backtest(df, SmaCross, cash=10_000, commission=0.0)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        heatmap = bt.optimize(n1=list(ranges[0].values), n2=list(ranges[1].values),
                              maximize="Sharpe Ratio", return_heatmap=True)[1]
    wall = time.perf_counter() - t0
    cores = os.cpu_count() or 1
    return Row(f"backtesting.py optimize (unsandboxed, {cores} processes)", len(heatmap),
               wall, cores)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bars", type=int, default=50_000)
    ap.add_argument("--runs", type=int, default=1_000)
    ap.add_argument("--skip-backtesting-py", action="store_true")
    ap.add_argument("--skip-dask", action="store_true")
    args = ap.parse_args()

    df = reference_gbm_frame(args.bars)
    bars = [Bar("SYN", t.to_pydatetime(), o, h, lo, c, v)
            for t, o, h, lo, c, v in zip(df.index, df.Open, df.High, df.Low, df.Close,
                                         df.Volume, strict=True)]
    path = str(example_path("sma_cross"))
    source = Path(path).read_text()
    job = SweepJob(path, source, {"SYN": bars},
                   BacktestRequest(strategy=path, data=[DataSpec(path="SYN.csv")]))
    ranges, points = grid(args.runs)

    def progress(text: str) -> None:
        print(f"  {text}", file=sys.stderr, flush=True)

    print(f"uptime: {os.popen('uptime').read().strip()}", flush=True)
    # A run's cost depends on its parameters (fast 2 / slow 10 trades on most bars): the
    # reference is the mean over points drawn at random from the grid.
    sample = reference_sample(points)
    progress(f"the reference: {len(sample)} runs in-process ...")
    single, cpu = reference_seconds(job, sample)
    print(f"a run in-process as a sweep's worker runs it (the mean of {len(sample)} grid "
          f"points drawn at random, each run once): {single * 1000:.0f} ms "
          f"({cpu * 1000:.0f} ms of CPU)", flush=True)
    def done(row: Row) -> Row:
        # Each row as it is measured too: the whole table takes tens of minutes.
        progress(f"{row.name}: {row.runs:,} runs in {row.wall_s:.1f} s")
        return row

    rows = [done(local_row(job, points, 1, progress)), done(local_row(job, points, 2, progress))]
    if not args.skip_dask:
        rows.append(done(dask_row(job, points, progress)))
    if not args.skip_backtesting_py:
        rows.append(done(backtesting_py_row(df, ranges)))
    print(f"uptime: {os.popen('uptime').read().strip()}")
    print(f"\n{len(points):,}-run grid of sma_cross on {args.bars:,} bars, "
          f"{os.cpu_count()} cores\n")
    print(f"{'':52} {'runs/s':>8} {'wall s':>8} {'overhead ms/run':>16}")
    for r in rows:
        over = r.overhead_ms(single) if r.name.startswith("sandtrade") else None
        shown = f"{over:16.1f}" if over is not None else f"{'':>16}"
        print(f"{r.name:52} {r.runs / r.wall_s:8.2f} {r.wall_s:8.1f} {shown}")
    one, two = rows[0], rows[1]
    print(f"\n2 workers / 1 worker: {one.wall_s / two.wall_s:.2f}x (target >= 1.8x)")
    dask = next((r for r in rows if "Dask" in r.name), None)
    if dask is not None:
        print(f"Dask cluster / 2 local workers: {two.wall_s / dask.wall_s:.2f} of the speed "
              "(target >= 0.85, within 15 %)")
    bpy = next((r for r in rows if r.name.startswith("backtesting.py")), None)
    if bpy is not None:
        print(f"sandtrade 2 workers / backtesting.py optimize: "
              f"{bpy.wall_s / two.wall_s:.2f}x (target > 1x)")


if __name__ == "__main__":
    main()
