"""Options speed: a 2,000-contract synthetic chain priced with greeks, and a multi-leg order's
submit-to-ack over gRPC.

    python bench/options.py [--repeats 20] [--orders 200] [--no-grpc]

One chain of SPY at 600: 5 weeklies + 3 monthlies (7 expiries, one shared) x 143 strikes x call and
put = 2,002 contracts, each priced with QuantLib's Black-Scholes-Merton calculator (price,
delta, gamma, theta, vega, rho) at its smile volatility and quoted with the spread model;
then implied volatility recovered from every mark. Target: under 50 ms for the chain.
Reported: the median and the best of the repeats.

Then it starts its own ``sandtrade serve`` (a temporary data directory, a free loopback port,
the DEMO replay at half a bar a second so the chain barely moves, 10,000,000 of cash), and
from the bundled client times ``--orders`` four-leg iron condors sent with
``submit_multileg`` (market orders: the ack is the order filled, all four legs committed to
SQLite with fsync) and closed again with ``close_group`` (also a four-leg order, timed the
same way), then as many ``submit_template`` calls (the host builds the condor from its chain,
then the same path; each closed again, untimed). Reported: p50, p99 and mean of each,
client side, one order at a time. The host is stopped at the end, also on Ctrl-C.

Then a one-year daily back-test (252 bars of the DEMO sample) of the example strategy
``strategies_examples/iron_condor.py`` (a monthly condor through ``ctx.options``: chains
synthesised from the bars, multi-leg fills, groups valued on every bar), in process and in a
sandboxed worker: wall time and bars per second, the best of ``--repeats`` // 4 runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from live_density import Host

CONDOR_STRATEGY = Path(__file__).resolve().parents[1] / "strategies_examples" / "iron_condor.py"


def condor_year(repeats: int) -> None:
    """Time a one-year daily back-test of the example condor, in process and sandboxed."""
    bars = list(iter_csv(str(sample_csv_path()), symbol="DEMO"))[:252]
    source = CONDOR_STRATEGY.read_text()
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

CONDOR: dict[str, Any] = {"expiry": "60d", "short_delta": 0.16, "width": 2}
T = TypeVar("T")



def _figures(name: str, seconds: list[float]) -> None:
    ms = sorted(t * 1e3 for t in seconds)
    p99 = ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
    print(f"{name}: p50 {statistics.median(ms):.2f} ms, p99 {p99:.2f} ms, "
          f"mean {statistics.fmean(ms):.2f} ms ({len(ms)} orders)")


def _timed(call: Callable[[], T]) -> tuple[float, T]:
    start = time.perf_counter()
    result = call()
    return time.perf_counter() - start, result


def grpc_orders(count: int) -> None:
    """Time multi-leg orders over gRPC against a host started here (see the module)."""
    with tempfile.TemporaryDirectory(prefix="sandtrade-bench-options-") as tmp:
        # the DEMO replay at half a bar a second, so the chain barely moves
        host = Host(Path(tmp), speed=0.5, cash=10_000_000)
        try:
            with host.client() as client:
                account = "paper"  # the host's default account
                deadline = time.monotonic() + 60
                while True:  # the chain is priced once DEMO has its first bar
                    try:
                        plan = client.submit_template("iron_condor", "DEMO", 1, account=account,
                                                      validate_only=True, **CONDOR).plan
                        break
                    except Exception:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.2)
                assert plan is not None
                opened: list[float] = []
                closed: list[float] = []
                templated: list[float] = []
                for _ in range(count):
                    took, order = _timed(lambda: client.submit_multileg(plan.legs, 1,
                                                                        account=account))
                    assert order.status.value == "filled", order
                    opened.append(took)
                    took, done = _timed(partial(client.close_group, order.id, account=account))
                    assert done.status.value == "filled", done
                    closed.append(took)
                for _ in range(count):
                    took, result = _timed(lambda: client.submit_template(
                        "iron_condor", "DEMO", 1, account=account, **CONDOR))
                    made = result.order
                    assert made is not None and made.status.value == "filled", result
                    templated.append(took)
                    # flat again: the next condor's strikes may be this one's, opposite side
                    client.close_group(made.id, account=account)
            print(f"multi-leg orders over gRPC ({host.grpc}, one at a time, fsync'd):")
            _figures("  submit_multileg, 4 legs, filled", opened)
            _figures("  close_group, 4 legs, filled", closed)
            _figures("  submit_template iron_condor (built on the host), filled", templated)
        finally:
            host.stop()


def main() -> None:
    """Time the chain and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--orders", type=int, default=200,
                        help="multi-leg orders timed over gRPC, of each kind (200)")
    parser.add_argument("--no-grpc", action="store_true", help="time the chain only")
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
    if not args.no_grpc:
        grpc_orders(args.orders)


if __name__ == "__main__":
    main()
