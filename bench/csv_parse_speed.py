"""Print how fast ``iter_csv`` parses a 200,000-row file. A figure to read, not a test.

Run: ``python bench/csv_parse_speed.py [ROWS]``. Two files are timed: one as
``write_csv`` writes it (prices with all 17 significant digits) and one with prices rounded to
5 decimals, as in backtesting.py's EURUSD.csv; both hourly with ``YYYY-MM-DD HH:MM:SS`` times.
The bare ``csv.reader`` pass over the same file is printed for scale. Best of 5 runs.
"""

from __future__ import annotations

import csv
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sandtrade.market import gbm_bars, iter_csv, write_csv


def best_of(runs: int, fn: Callable[[], int]) -> tuple[int, float]:
    """The count ``fn`` returns and its fastest wall time over ``runs`` runs."""
    times, n = [], 0
    for _ in range(runs):
        t0 = time.perf_counter()
        n = fn()
        times.append(time.perf_counter() - t0)
    return n, min(times)


def main(rows: int = 200_000) -> None:
    """Write the two files, time them and print rows per second."""
    bars = gbm_bars(rows)
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "GBM_FULL.csv"
        write_csv(bars, full)
        short = Path(tmp) / "GBM_5DP.csv"
        write_csv((b._replace(open=round(b.open, 5), high=round(b.high, 5), low=round(b.low, 5),
                              close=round(b.close, 5)) for b in bars), short)
        for path in (full, short):

            def parse(path: Path = path) -> int:
                return sum(1 for _ in iter_csv(path))

            def split(path: Path = path) -> int:
                with path.open(newline="") as f:
                    return sum(1 for _ in csv.reader(f)) - 1

            n, secs = best_of(5, parse)
            _, bare = best_of(5, split)
            size = path.stat().st_size / 1e6
            print(f"{path.name}: {n:,} rows, {size:.1f} MB: iter_csv {n / secs:,.0f} rows/s "
                  f"({secs:.3f} s); csv.reader alone {n / bare:,.0f} rows/s")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
