"""Option chain pricing speed: a 2,000-contract synthetic chain priced with greeks.

    python bench/options.py [--repeats 20]

One chain of SPY at 600: 5 weeklies + 3 monthlies (7 expiries, one shared) x 143 strikes x call and
put = 2,002 contracts, each priced with QuantLib's Black-Scholes-Merton calculator (price,
delta, gamma, theta, vega, rho) at its smile volatility and quoted with the spread model;
then implied volatility recovered from every mark. Target: under 50 ms for the chain.
Reported: the median and the best of the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sandtrade.options import OptionsSettings, implied_volatility, synthetic_chain, years_to_expiry


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


if __name__ == "__main__":
    main()
