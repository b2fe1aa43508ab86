"""Pine import parity and speed: each example strategy imported from Pine against its
hand-written twin, trade for trade, on a long synthetic series.

    python bench/pine_parity.py [--bars 30000] [--seed 7]

For every ``strategies_examples/pine/*.pine``: imports it, back-tests the import and its twin
(``tests/pine/twins/``) on the same GBM series in this process, and prints the trade counts,
whether the trades are the same bar for bar (entry and exit bar, prices, sizes), and the
seconds each run took. The test suite makes the same comparison on GOOG and 10,000 bars.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from sandtrade.backtest.runner import run_backtest  # noqa: E402
from sandtrade.market.synthetic import gbm_bars  # noqa: E402
from sandtrade.pine import import_pine  # noqa: E402
from sandtrade.strategy.loader import load_strategy_source  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bars", type=int, default=30_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    bars = gbm_bars(args.bars, seed=args.seed)
    table = Table(title=f"Pine imports against their twins, {args.bars:,} synthetic bars")
    for col in ("strategy", "trades (pine)", "trades (twin)", "same", "pine s", "twin s"):
        table.add_column(col)
    failed = 0
    for path in sorted((ROOT / "strategies_examples" / "pine").glob("*.pine")):
        imported = import_pine(path.read_text(), path.name)
        pine = load_strategy_source(imported.source, path.stem + ".py", restricted=True)
        twin = load_strategy_source(
            (ROOT / "tests" / "pine" / "twins" / f"{path.stem}.py").read_text(),
            f"twin_{path.stem}.py", restricted=True)
        rows = []
        for strategy in (pine, twin):
            t = time.perf_counter()
            r = run_backtest(strategy, bars, cash=imported.settings["cash"])
            rows.append(([(x.entry_bar, x.entry_price, x.exit_bar, x.exit_price, x.size)
                          for x in [*r.trades, *r.open_trades]], time.perf_counter() - t))
        same = rows[0][0] == rows[1][0]
        failed += not same
        table.add_row(path.stem, str(len(rows[0][0])), str(len(rows[1][0])),
                      "yes" if same else "NO", f"{rows[0][1]:.2f}", f"{rows[1][1]:.2f}")
    Console().print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
