"""What the indicators and plots cost: each value-fed core's update, and a back-test's ctx.plot.

    python bench/indicators.py [--values 100000] [--bars 50000]

First every core of :data:`sandtrade.strategy.indicators.INDICATORS` fed ``--values`` values
of a random walk (with its settings as a strategy would write them): microseconds an update,
the median of three runs. Then the SMA 10/20 crossover example back-tested in process on
``--bars`` hourly bars as it ships, and again with three ``ctx.plot`` calls a bar (bars a
second of each), and one ``ctx.plot`` call timed alone on a context fed those bars.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from rich.console import Console
from rich.table import Table
from strategies_examples import example_path

from sandtrade.backtest.runner import run_backtest
from sandtrade.market import gbm_bars
from sandtrade.strategy import Context
from sandtrade.strategy import indicators as ind
from sandtrade.strategy.context import advance
from sandtrade.strategy.loader import load_strategy_source

#: (name, settings, what an update takes, a letter an argument: x a value, y another, h l c
#: high low close, v volume, b a condition, s a new session)
CASES: list[tuple[str, tuple[Any, ...], str]] = [
    ("sma", (20,), "x"), ("ema", (20,), "x"), ("rma", (14,), "x"), ("wma", (20,), "x"),
    ("vwma", (20,), "xv"), ("rsi", (14,), "x"), ("macd", (12, 26, 9), "x"),
    ("stoch", (14,), "xhl"), ("tr", (True,), "hlc"), ("atr", (14,), "hlc"),
    ("bb", (20, 2.0), "x"), ("stdev", (20,), "x"), ("highest", (20,), "x"),
    ("lowest", (20,), "x"), ("change", (1,), "x"), ("mom", (10,), "x"),
    ("crossover", (), "xy"), ("crossunder", (), "xy"), ("cross", (), "xy"),
    ("barssince", (), "b"), ("valuewhen", (0,), "bx"), ("pivothigh", (5, 5), "x"),
    ("pivotlow", (5, 5), "x"), ("supertrend", (3.0, 10), "hlc"), ("vwap", (), "xvs"),
    ("cci", (20,), "x"), ("kc", (20, 1.5), "xhlc"), ("dmi", (14, 14), "hlc"),
]

PLOTTING = '''
PARAMS = {"fast": 10, "slow": 20}


def on_bar(ctx, bar):
    fast = ctx.ta.sma(ctx.params["fast"])
    slow = ctx.ta.sma(ctx.params["slow"])
    ctx.plot("fast", fast[0])
    ctx.plot("slow", slow[0])
    ctx.plot("spread", fast[0] - slow[0], pane="below")
    if ctx.ta.crossover(fast, slow):
        ctx.close_position()
        ctx.buy()
    elif ctx.ta.crossunder(fast, slow):
        ctx.close_position()
        ctx.sell()
'''


def columns(n: int) -> dict[str, list[Any]]:
    rng = random.Random(42)
    x, c = [], 100.0
    for _ in range(n):
        c *= 1 + rng.gauss(0, 0.01)
        x.append(c)
    return {"x": x, "y": [v * (1 + rng.gauss(0, 0.002)) for v in x],
            "h": [v * 1.005 for v in x], "l": [v * 0.995 for v in x], "c": x,
            "b": [v > 100 for v in x],
            "v": [rng.uniform(1e3, 1e4) for _ in x], "s": [k % 24 == 0 for k in range(n)]}


def time_core(name: str, settings: tuple[Any, ...], takes: str, data: dict[str, list[Any]]
              ) -> float:
    """Microseconds an update, the median of three runs over every value."""
    rows = list(zip(*(data[ch] for ch in takes), strict=True))
    runs = []
    for _ in range(3):
        core = ind.INDICATORS[name](*settings)
        update = core.update
        t0 = time.perf_counter()
        for row in rows:
            update(*row)
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs) / len(rows) * 1e6


def bars_per_second(run: Callable[[], Any], bars: int) -> float:
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        run()
        runs.append(time.perf_counter() - t0)
    return bars / statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--values", type=int, default=100_000)
    parser.add_argument("--bars", type=int, default=50_000)
    args = parser.parse_args()
    console = Console()
    data = columns(args.values)
    table = Table(title=f"value-fed cores, {args.values:,} updates each (median of 3)")
    table.add_column("indicator")
    table.add_column("settings")
    table.add_column("µs / update", justify="right")
    with console.status("timing the cores…"):
        for name, settings, takes in CASES:
            us = time_core(name, settings, takes, data)
            table.add_row(name, ", ".join(map(str, settings)), f"{us:.2f}")
    console.print(table)

    bars = gbm_bars(args.bars, interval="1h")
    plain = load_strategy_source(example_path("sma_cross").read_text(), "sma_cross.py",
                                 restricted=True)
    plotted = load_strategy_source(PLOTTING, "plotting.py", restricted=True)
    with console.status("back-testing with and without ctx.plot…"):
        without = bars_per_second(lambda: run_backtest(plain, bars), args.bars)
        with_plots = bars_per_second(lambda: run_backtest(plotted, bars),
                                     args.bars)
    cost = (1 / with_plots - 1 / without) / 3 * 1e6
    console.print(f"back-test of {args.bars:,} bars, in process (median of 3): "
                  f"{without:,.0f} bars/s as shipped, {with_plots:,.0f} bars/s with 3 "
                  f"ctx.plot calls a bar: {cost:.2f} µs a plotted series a bar")
    console.print(f"ctx.plot alone (a Context, 3 series, {args.bars:,} bars, median of 3): "
                  f"{plot_call_us(bars):.2f} µs a call")


def plot_call_us(bars: list[Any]) -> float:
    """Microseconds of one ctx.plot call, three series a bar, as the engine feeds a context
    (the difference of two whole back-tests is too noisy on a shared machine)."""
    runs = []
    for _ in range(3):
        ctx = Context(None, {})  # type: ignore[arg-type]  # plotting never trades
        plot = ctx.plot
        t0 = time.perf_counter()
        for i, bar in enumerate(bars):
            advance(ctx, bar, i)
            plot("fast", bar.close)
            plot("slow", bar.open)
            plot("spread", bar.high - bar.low, pane="below")
        runs.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    ctx = Context(None, {})  # type: ignore[arg-type]
    for i, bar in enumerate(bars):  # what advancing alone costs
        advance(ctx, bar, i)
    base = time.perf_counter() - t0
    return (statistics.median(runs) - base) / (3 * len(bars)) * 1e6


if __name__ == "__main__":
    main()
