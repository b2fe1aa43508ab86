"""Option chain pricing speed: a 2,000-contract synthetic chain priced with greeks.

    python bench/options.py [--repeats 20]

One chain of SPY at 600: 5 weeklies + 3 monthlies (7 expiries, one shared) x 143 strikes x call and
put = 2,002 contracts, each priced with QuantLib's Black-Scholes-Merton calculator (price,
delta, gamma, theta, vega, rho) at its smile volatility and quoted with the spread model;
then implied volatility recovered from every mark. Target: under 50 ms for the chain.
Reported: the median and the best of the repeats.

Then a one-year daily back-test (252 bars of the DEMO sample) of the example strategy
``strategies_examples/iron_condor.py`` (a monthly condor through ``ctx.options``: chains
synthesised from the bars, multi-leg fills, groups valued on every bar), in process and in a
sandboxed worker: wall time and bars per second, the best of ``--repeats`` // 4 runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.runner import run_backtest
from sandtrade.market import iter_csv, sample_csv_path
from sandtrade.options import (
    OptionsSettings,
    implied_volatility,
    synthetic_chain,
    years_to_expiry,
)
from sandtrade.sandbox.runner import SandboxRunner
from sandtrade.strategy.loader import load_strategy_source

CONDOR = Path(__file__).resolve().parents[1] / "strategies_examples" / "iron_condor.py"


def condor_year(repeats: int) -> None:
    """Time a one-year daily back-test of the example condor, in process and sandboxed."""
    bars = list(iter_csv(str(sample_csv_path()), symbol="DEMO"))[:252]
    source = CONDOR.read_text()
    strategy = load_strategy_source(source, "iron_condor.py", restricted=True)
    request = BacktestRequest(strategy="iron_condor.py", data=[DataSpec(path="DEMO")],
                              cash=100_000.0)
    runner = SandboxRunner()
    for where, run in (
            ("in process", lambda: run_backtest(strategy, {"DEMO": bars}, cash=100_000.0)),
            ("sandboxed", lambda: runner.run_source(source, request, {"DEMO": bars}))):
        best, trades = float("inf"), 0
        for _ in range(max(1, repeats)):
            start = time.perf_counter()
            result = run()
            best = min(best, time.perf_counter() - start)
            trades = len(result.trades)
        print(f"condor back-test, one year daily ({len(bars)} bars, {trades} closed leg "
              f"trades), {where}: {best * 1e3:.0f} ms, {len(bars) / best:,.0f} bars/s")


def main() -> None:
    """Time the chain and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    settings = OptionsSettings(strike_step=1.0, strikes_each_side=71, weeklies=5, monthlies=3)
    now = datetime(2025, 12, 8, 15, tzinfo=UTC)
    times: list[float] = []
    chain = synthetic_chain("SPY", 600.0, now, settings)
    for _ in range(args.repeats):
        start = time.perf_counter()
        chain = synthetic_chain("SPY", 600.0, now, settings)
        times.append(time.perf_counter() - start)
    print(f"chain: {len(chain):,} contracts, {len(chain.expiries())} expiries")
    print(f"price + greeks + quote: median {statistics.median(times) * 1e3:.1f} ms, "
          f"best {min(times) * 1e3:.1f} ms (target < 50 ms)")
    start = time.perf_counter()
    solved = 0
    for row in chain:
        years = years_to_expiry(row.expiry, now)
        try:
            implied_volatility(row.theo or 0.0, row.right, 600.0, row.strike, years,
                               settings.rate)
            solved += 1
        except ValueError:  # worth nothing at this precision
            pass
    took = time.perf_counter() - start
    print(f"implied volatility of every theoretical price: {took * 1e3:.1f} ms "
          f"({solved:,} solved, {len(chain) - solved:,} without time value)")
    condor_year(args.repeats // 4)


if __name__ == "__main__":
    main()
