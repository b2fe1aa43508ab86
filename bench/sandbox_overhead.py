"""What the sandbox costs: back-test speed in-process vs in a worker, cold start, idle memory.

    python bench/sandbox_overhead.py [--bars 200000] [--repeats 3] [--starts 20]

Prints, from one run on one machine:

* bars/s of strategies_examples/sma_cross.py on the same 200,000 hourly GBM bars (commission 0,
  ~11k trades): in-process (unrestricted, data already in memory), in-process restricted
  (RestrictedPython-compiled, guards on, no worker), in the sandbox worker end to end (the host
  parses the CSV and streams it to a worker which runs the strategy and broker and streams back
  its equity values and trades; the host checks them and computes the statistics and curves
  while the worker runs), once with a worker booted for the run (what a one-shot
  ``sandtrade backtest`` gets) and once with the spare a long-lived host keeps booted
  (``Supervisor(keep_spare=True)``: the strategy manager, RPC back-tests), once with a worker
  forked for the run from a warm zygote (``Supervisor(zygote=True)``: a served host's
  workers, and each Dask worker's sandboxes in a sweep), and backtesting.py's
  SmaCross (unsandboxed, DataFrame in memory); with the ratios.
* the same for strategies_examples/numpy_sma_cross.py (the same SMA cross, its averages
  computed with np.convolve and talib.SMA on ``ctx.history(..., as_array=True)`` arrays):
  in-process (unrestricted, real numpy) vs in the sandbox (the reviewed numpy and TA-Lib
  proxies, a worker booted for the run, and the spare), with the ratio (target <= 1.5x).
* worker cold start: spawn to the first hook running (a strategy whose on_start is its first
  hook, timed to the worker's answer), median of --starts starts.
* idle worker RSS: a worker that has confined itself and waits for its task, and the peak RSS
  of the 200k-bar run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from backtest_speed import time_backtesting_py
from strategies_examples import example_path

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.runner import run_backtest
from sandtrade.broker import BrokerSettings
from sandtrade.market import iter_csv, write_csv
from sandtrade.market.synthetic import reference_gbm_frame
from sandtrade.sandbox.runner import SandboxRunner, check_in_sandbox
from sandtrade.sandbox.supervisor import Supervisor
from sandtrade.strategy import policy
from sandtrade.strategy.context import API_TYPES
from sandtrade.strategy.loader import load_strategy_source


def median_time(fn, repeats: int) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bars", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--starts", type=int, default=20)
    args = ap.parse_args()
    n = args.bars
    tmp = Path(tempfile.mkdtemp(prefix="sandtrade-bench-"))
    csv = tmp / "SYN.csv"
    print(f"preparing {n:,} hourly GBM bars in {csv} …", flush=True)
    df = reference_gbm_frame(n)
    df.to_csv(csv, index_label="Datetime", float_format="%.17g")
    bars = list(iter_csv(csv))
    write_csv(bars[:10], tmp / "small.csv")
    source = example_path("sma_cross").read_text()
    settings = BrokerSettings(commission_pct=0.0)

    plain = load_strategy_source(source, "sma_cross.py")
    policy.FAST_ATTRIBUTE_TYPES.update(API_TYPES)  # as the worker does before a run
    restricted = load_strategy_source(source, "sma_cross.py", restricted=True)
    runner = SandboxRunner()
    spare_supervisor = Supervisor(keep_spare=True)
    spare_runner = SandboxRunner(supervisor=spare_supervisor)
    request = BacktestRequest(strategy=str(example_path("sma_cross")),
                              data=[DataSpec(path=str(csv))], broker=settings)
    peak = []

    def sandboxed(run_with: SandboxRunner = runner) -> None:
        result = run_with.run(request)
        assert result.stats["# Trades"] > 0
        assert run_with.last_worker is not None
        peak.append(run_with.last_worker.peak_rss)

    def with_spare() -> None:
        deadline = time.monotonic() + 30
        while spare_supervisor.spare is None:  # booted after the previous run started
            assert time.monotonic() < deadline, "no spare worker"
            time.sleep(0.01)
        sandboxed(spare_runner)

    spare_runner.run(request)  # the first run boots the first spare
    zygote_supervisor = Supervisor(zygote=True)
    zygote_runner = SandboxRunner(supervisor=zygote_supervisor)
    zygote_runner.run(request)  # the first run starts the zygote

    rows = [
        ("in-process", median_time(lambda: run_backtest(plain, bars, settings=settings),
                                   args.repeats)),
        ("in-process, restricted", median_time(
            lambda: run_backtest(restricted, bars, settings=settings), args.repeats)),
        ("sandbox, worker booted for the run", median_time(sandboxed, args.repeats)),
        ("sandbox, spare worker", median_time(with_spare, args.repeats)),
        ("sandbox, forked from the zygote", median_time(lambda: sandboxed(zygote_runner),
                                                        args.repeats)),
        ("backtesting.py (unsandboxed)", time_backtesting_py(df, 0.0, args.repeats)[0]),
    ]
    numpy_source = example_path("numpy_sma_cross").read_text()
    numpy_plain = load_strategy_source(numpy_source, "numpy_sma_cross.py")
    numpy_request = request.model_copy(update={
        "strategy": str(example_path("numpy_sma_cross"))})

    def numpy_sandboxed(run_with: SandboxRunner = runner) -> None:
        result = run_with.run(numpy_request)
        assert result.stats["# Trades"] > 0

    def numpy_with_spare() -> None:
        deadline = time.monotonic() + 30
        while spare_supervisor.spare is None:
            assert time.monotonic() < deadline, "no spare worker"
            time.sleep(0.01)
        numpy_sandboxed(spare_runner)

    numpy_rows = [
        ("numpy: in-process", median_time(
            lambda: run_backtest(numpy_plain, bars, settings=settings), args.repeats)),
        ("numpy: sandbox, worker booted", median_time(numpy_sandboxed, args.repeats)),
        ("numpy: sandbox, spare worker", median_time(numpy_with_spare, args.repeats)),
    ]
    spare_supervisor.close()
    rows += numpy_rows
    zygote_supervisor.close()
    base = dict(rows)
    print(f"\n{'engine':>36} {'seconds':>8} {'bars/s':>9}")
    for name, t in rows:
        print(f"{name:>36} {t:>8.3f} {n / t:>9,.0f}")
    bt = base["backtesting.py (unsandboxed)"]
    for label in ("sandbox, worker booted for the run", "sandbox, spare worker",
                  "sandbox, forked from the zygote"):
        sb = base[label]
        print(f"\n{label}: {base['in-process'] / sb:.2f} of the in-process speed (target "
              f">= 0.33); {bt / sb:.2f}x backtesting.py (target >= 1.5)")

    for label in ("numpy: sandbox, worker booted", "numpy: sandbox, spare worker"):
        print(f"{label}: {base[label] / base['numpy: in-process']:.2f}x the in-process time "
              "(target <= 1.5x)")

    # Cold start: spawn -> the worker answers after loading the strategy and running
    # on_start... measured as the time to the 'checked' answer of a check task, which runs the
    # module body (the first user code) after confinement.
    starter = tmp / "starter.py"
    starter.write_text("def on_start(ctx):\n    pass\n")
    starts = []
    for _ in range(args.starts):
        t0 = time.perf_counter()
        check_in_sandbox(str(starter))
        starts.append(time.perf_counter() - t0)
    print(f"\nworker cold start (spawn to first user code done), median of {args.starts}: "
          f"{statistics.median(starts) * 1000:.0f} ms (min {min(starts) * 1000:.0f}, "
          f"max {max(starts) * 1000:.0f}; target < 300 ms)")
    # The same for a strategy that imports numpy and talib: its worker builds their proxies.
    starter.write_text("import numpy as np\nimport talib\n\ndef on_start(ctx):\n    pass\n")
    starts = []
    for _ in range(args.starts):
        t0 = time.perf_counter()
        check_in_sandbox(str(starter))
        starts.append(time.perf_counter() - t0)
    print(f"worker cold start, strategy importing numpy and talib, median of {args.starts}: "
          f"{statistics.median(starts) * 1000:.0f} ms")

    # Idle: a back-test worker that has confined itself, loaded its strategy and now waits for
    # its first bars (none are sent).
    worker = Supervisor().start({"task": "backtest", "path": "idle.py", "source": source,
                                 "request": request.model_dump(mode="json"),
                                 "symbols": ["SYN"]}, name="idle")
    try:
        time.sleep(0.5)
        rss = psutil.Process(worker.pid).memory_info().rss
    finally:
        worker.close()
    print(f"idle worker RSS (confined, waiting): {rss / 2**20:.1f} MiB (target < 60 MiB); "
          f"peak RSS of the {n:,}-bar run: {max(peak) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
