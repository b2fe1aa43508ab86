"""The worker's ``sweep`` task: many back-tests of one strategy on bars received once.

The host (:class:`~sandtrade.sandbox.sweep.LocalExecutor`, or a Dask task) sends the task,
then the sweep's bars once, in the ``bars`` frames of a back-test (merged in time order, then
``end``), then one ``run`` frame per back-test: ``{"type": "run", "run_id", "params",
"start", "end"}`` (a window of the data's timestamps, end exclusive). For each the worker
answers one frame: ``{"type": "run_done", "run_id", "stats", "cpu_s"}``, or ``{"type":
"run_error", "run_id", "message"}`` when the strategy failed on that run (the worker goes on
with the next). It ends when its input closes.

Each run is a fresh strategy: its module body runs again in fresh globals (compiled under the
sandbox policy each time, about a millisecond), so what one run leaves in module-level state
never reaches the next and a run's figures do not depend on the order or the worker it ran
in. Runs of one sweep share a worker: they are one strategy file of one owner.

The worker measures its own runs with the same :class:`~sandtrade.backtest.meter.Meter` as
every back-test (so the figures are identical), instead of streaming 8 bytes a bar to the host
as a single back-test does: a sweep's parallelism is across runs, and metering on the host
would make the host the bottleneck of every worker (it costs about half of a simulation). The
host checks the statistics it receives as untrusted data.
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Callable
from typing import IO, Any

from sandtrade.backtest.engine import simulate
from sandtrade.backtest.meter import Meter
from sandtrade.backtest.request import BacktestRequest
from sandtrade.broker.fills import FillProfile
from sandtrade.errors import SandtradeError, StrategyError
from sandtrade.models import Bar, Trade
from sandtrade.sandbox.wire import read_frame, write_frame
from sandtrade.sandbox.worker.backtest_task import BarReader
from sandtrade.strategy.loader import load_strategy_source, resolve_params
from sandtrade.strategy.policy import StrategyLog

__all__ = ["run_one", "run_sweep_task"]

#: Longest error message sent back for one run.
MAX_RUN_ERROR = 4000


def _windows(bars: list[Bar]) -> Callable[[int, int], list[Bar]]:
    """A function giving the bars (merged in time order) of a window of timestamps."""
    starts: list[int] = []
    last = None
    for k, bar in enumerate(bars):
        if bar.time != last:
            starts.append(k)
            last = bar.time
    starts.append(len(bars))

    def window(start: int, end: int) -> list[Bar]:
        if not 0 <= start < end < len(starts):
            raise SandtradeError(f"window {start}:{end} is not within the "
                                 f"{len(starts) - 1:,} timestamps of the data")
        return bars[starts[start]:starts[end]]

    return window


def run_sweep_task(task: dict[str, Any], log: StrategyLog, stdin: IO[bytes],
                   stdout: IO[bytes], *, beat: Callable[[], None] | None,
                   profiles: list[type[FillProfile]]) -> None:
    """Receive the sweep's bars, then run each ``run`` frame until the input closes."""
    path = str(task["path"])
    source = str(task["source"])
    request = BacktestRequest.model_validate(task["request"])
    symbols = [str(s) for s in task["symbols"]]
    reader = BarReader(stdin, symbols)
    window = _windows(reader.read_all())
    while True:
        try:
            header, _ = read_frame(stdin)
        except EOFError:
            return
        if header.get("type") != "run":
            raise SandtradeError(f"unexpected frame {header.get('type')!r} in a sweep")
        run_id = str(header.get("run_id"))
        try:
            stats = run_one(path, source, request, symbols,
                             window(int(header["start"]), int(header["end"])),
                             dict(header.get("params") or {}), beat, profiles)
        except (StrategyError, SandtradeError) as e:
            write_frame(stdout, {"type": "run_error", "run_id": run_id,
                                 "message": str(e)[:MAX_RUN_ERROR]})
            continue
        except MemoryError:
            raise
        except Exception as e:  # the strategy's own exception: that run failed, not the sweep
            write_frame(stdout, {"type": "run_error", "run_id": run_id,
                                 "message": f"{path}: {type(e).__name__}: {e}"[:MAX_RUN_ERROR]})
            continue
        times = os.times()
        write_frame(stdout, {"type": "run_done", "run_id": run_id, "stats": stats,
                             "cpu_s": times.user + times.system})


def run_one(path: str, source: str, request: BacktestRequest, symbols: list[str],
            bars: list[Bar], overrides: dict[str, Any], beat: Callable[[], None] | None,
            profiles: list[type[FillProfile]]) -> dict[str, Any]:
    """One back-test of a fresh load of the strategy on ``bars``; its statistics (what each
    ``run`` frame costs, also timed in-process by bench/sweep.py as its reference run)."""
    log = StrategyLog(0)  # a sweep keeps no logs: thousands of runs' prints are noise
    strategy = load_strategy_source(source, path, restricted=True, print_log=log)
    params = resolve_params(strategy.params, overrides, where=path, specs=strategy.specs,
                            lines=strategy.lines)
    meter = Meter.for_symbols(symbols, benchmark=request.benchmark, prices=False,
                              equity_curve=False)
    meter.add_bars(bars)
    equities = array("d")

    def measure(_: list[Bar], values: array[float], trades: list[Trade]) -> None:
        equities.extend(values)

    if len(symbols) == 1:
        data: dict[str, Any] = {symbols[0]: bars}
    else:
        per: dict[str, list[Bar]] = {s: [] for s in symbols}
        for bar in bars:
            per[bar.symbol].append(bar)
        data = per
    sim = simulate(strategy, data, cash=request.cash, settings=request.broker, params=params,
                   measure=measure, keep_bars=False, close_at_end=request.close_at_end,
                   log=log.write_line, profiles=profiles, heartbeat=beat, risk=request.risk,
                   options=request.options)
    meter.add_equity(equities)
    return meter.finish(sim).stats
