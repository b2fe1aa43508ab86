"""Back-test speed: sandtrade's engine against backtesting.py on the same 200,000 hourly bars.

    python bench/backtest_speed.py [--bars 200000] [--repeats 3]

Both run the SMA 10/20 crossover (strategies_examples/sma_cross.py for sandtrade; the Quick
Start ``SmaCross`` for backtesting.py) on one hourly GBM series (seed 42, the research notes'
generator), with commission 0 (trades all the way through, ~11k trades) and 0.002 (the
tutorial's setting). Timed: engine construction and the run, stats included; data loading
is not timed for either. Reported: the median of the repeats, bars/s, and the ratio.

Then memory: the peak Python memory (tracemalloc) of a sandtrade back-test that streams bars
from a generator, at several history lengths. It should grow with the number of trades and
days (results), not with the number of bars.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
import warnings
from datetime import timedelta
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from strategies_examples import example_path

from sandtrade.backtest.runner import run_backtest
from sandtrade.broker import BrokerSettings
from sandtrade.market import iter_gbm_bars
from sandtrade.market.synthetic import reference_gbm_frame
from sandtrade.models import Bar
from sandtrade.strategy import load_strategy


def time_sandtrade(bars: list[Bar], commission: float, repeats: int) -> tuple[float, dict]:
    strategy = load_strategy(example_path("sma_cross"))
    settings = BrokerSettings(commission_pct=commission)
    times, result = [], None
    for _ in range(repeats):
        gc.collect()
        t0 = time.perf_counter()
        result = run_backtest(strategy, bars, cash=10_000, settings=settings)
        times.append(time.perf_counter() - t0)
    assert result is not None
    return statistics.median(times), result.stats


def time_backtesting_py(df: pd.DataFrame, commission: float, repeats: int) -> tuple[float, dict]:
    from backtesting import Backtest, Strategy
    from backtesting.lib import crossover
    from backtesting.test import SMA

    class SmaCross(Strategy):
        n1 = 10
        n2 = 20

        def init(self):
            self.sma1 = self.I(SMA, self.data.Close, self.n1)
            self.sma2 = self.I(SMA, self.data.Close, self.n2)

        def next(self):
            if crossover(self.sma1, self.sma2):
                self.position.close()
                self.buy()
            elif crossover(self.sma2, self.sma1):
                self.position.close()
                self.sell()

    times, stats = [], None
    for _ in range(repeats):
        gc.collect()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            stats = Backtest(df, SmaCross, cash=10_000, commission=commission).run()
            times.append(time.perf_counter() - t0)
    assert stats is not None
    return statistics.median(times), {"# Trades": int(stats["# Trades"]),
                                      "Equity Final [$]": float(stats["Equity Final [$]"])}


def peak_memory(n: int, commission: float) -> tuple[float, int]:
    """Peak traced memory (MiB) of a back-test over ``n`` streamed bars, and its trades."""
    strategy = load_strategy(example_path("sma_cross"))
    gc.collect()
    tracemalloc.start()
    result = run_backtest(strategy, iter_gbm_bars(n, interval=timedelta(hours=1)),
                          cash=10_000, settings=BrokerSettings(commission_pct=commission))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20, int(result.stats["# Trades"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bars", type=int, default=200_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n = args.bars
    print(f"preparing {n:,} hourly GBM bars …", flush=True)
    df = reference_gbm_frame(n)
    bars = [Bar("SYN", t, o, h, lo, c, v) for t, o, h, lo, c, v in zip(
        df.index.to_pydatetime(), df["Open"].tolist(), df["High"].tolist(),
        df["Low"].tolist(), df["Close"].tolist(), df["Volume"].tolist(), strict=True)]
    import backtesting
    print(f"python {sys.version.split()[0]}, backtesting.py {backtesting.__version__}, "
          f"median of {args.repeats}\n")
    print(f"{'commission':>10} {'engine':>15} {'trades':>7} {'final equity':>13} "
          f"{'seconds':>8} {'bars/s':>9}")
    for commission in (0.0, 0.002):
        t_ours, s_ours = time_sandtrade(bars, commission, args.repeats)
        t_ref, s_ref = time_backtesting_py(df, commission, args.repeats)
        for name, t, s in (("sandtrade", t_ours, s_ours), ("backtesting.py", t_ref, s_ref)):
            print(f"{commission:>10} {name:>15} {s['# Trades']:>7} "
                  f"{s['Equity Final [$]']:>13,.2f} {t:>8.3f} {n / t:>9,.0f}", flush=True)
        print(f"{'':>10} {'ratio':>15} sandtrade is {t_ref / t_ours:.2f}x backtesting.py's speed\n")

    print("peak memory of a streamed back-test (tracemalloc; bars generated on the fly)")
    print(f"{'bars':>9} {'commission':>10} {'trades':>7} {'peak MiB':>9}")
    for commission in (0.002, 0.0):
        for m in (25_000, 50_000, 100_000, 200_000):
            mib, trades = peak_memory(m, commission)
            print(f"{m:>9,} {commission:>10} {trades:>7} {mib:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
