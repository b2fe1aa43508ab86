"""``sandtrade demo``: the whole product in one command, on the bundled sample data.

It starts a live host (store, paper broker, market hub, gRPC server) in a fresh data
directory, uploads an example strategy through the gRPC API and starts it in its sandboxed
worker, replays the DEMO sample through the host, then back-tests the same file on the same
CSV in a sandbox and shows that live paper trading and the back-test made the same trades.
It writes the back-test's HTML report and, with ``--keep-running``, leaves the host serving
so the other commands (``sandtrade strategies list``, ``orders``, ``positions``) can be tried
against it.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sandtrade.cli.common import stats_table
from sandtrade.errors import SandtradeError

__all__ = ["add_demo_command", "run_demo"]

#: The commission of the demo, in both the live host and the back-test (0.2 %).
COMMISSION = 0.002


def add_demo_command(sub: Any) -> None:
    demo = sub.add_parser(
        "demo", help="run an example strategy live on replayed data, then back-test it",
        description="Start a host in a fresh data directory, upload and start an example "
        "strategy through the gRPC API, replay the bundled DEMO sample through it, then "
        "back-test the same file on the same data and compare the trades. Writes the "
        "back-test's HTML report.")
    demo.add_argument("--report", default="sandtrade-demo-report.html", metavar="FILE.html",
                      help="where to write the report (default %(default)s)")
    demo.add_argument("--example", default="sma_cross",
                      help="example strategy to run (sma_cross, rsi_mean_reversion, breakout)")
    demo.add_argument("--speed", type=float, default=0.0, metavar="BARS_PER_S",
                      help="replay pace (default 0: as fast as the strategy takes the bars)")
    demo.add_argument("--data-dir", metavar="DIR",
                      help="the host's data directory (default: a new temporary one)")
    demo.add_argument("--http", default="127.0.0.1:0", metavar="HOST:PORT",
                      help="the host's HTTP address, for webhooks (default: a free port)")
    demo.add_argument("--grpc", default="127.0.0.1:0", metavar="HOST:PORT",
                      help="gRPC address (default: a free port on 127.0.0.1)")
    demo.add_argument("--keep-running", action="store_true",
                      help="keep the host serving after the replay (Ctrl-C to stop)")


def _trade_key(t: Any) -> tuple[Any, ...]:
    return (t.symbol, t.entry_time, t.exit_time, t.size, round(t.entry_price, 8),
            round(t.exit_price, 8))


def run_demo(args: argparse.Namespace, out: Console, err: Console) -> int:
    from strategies_examples import example_path

    from sandtrade.backtest.report import write_report
    from sandtrade.backtest.request import BacktestRequest, DataSpec
    from sandtrade.client import Client
    from sandtrade.host.config import load_settings
    from sandtrade.host.runtime import HostRuntime
    from sandtrade.market import iter_csv, sample_csv_path
    from sandtrade.sandbox.runner import SandboxRunner
    from sandtrade.sandbox.supervisor import Supervisor

    strategy_path = example_path(args.example)
    csv = sample_csv_path()
    data_dir = Path(args.data_dir) if args.data_dir else Path(
        tempfile.mkdtemp(prefix="sandtrade-demo-"))
    settings = load_settings(
        data_dir=data_dir, grpc=args.grpc, http=args.http,
        broker={"commission_pct": COMMISSION},
        market={"source": "replay", "files": [f"DEMO={csv}"],
                "bars_per_second": args.speed},
        # The demo's promise (the live run trades as the back-test) needs the lockstep at
        # any pace: the feed waits for the strategy on every bar.
        strategies={"mode": "lockstep"})
    total = sum(1 for _ in iter_csv(str(csv), symbol="DEMO"))
    name = args.example
    host = HostRuntime(settings).start(feed=False)
    try:
        assert host.rpc is not None and host.feed is not None and host.live is not None
        out.print(f"[bold]1.[/bold] host up in {data_dir}: gRPC {host.rpc.address}")
        token = host.operator_token_path.read_text().strip()
        with Client(host.rpc.address, token) as client:
            info = client.upload_strategy(name, strategy_path.read_text(), symbols=["DEMO"])
            client.start_strategy(name)
            out.print(f"[bold]2.[/bold] uploaded {strategy_path.name} as {info.name!r} "
                      f"(checked in the sandbox), started it in its own worker, trading "
                      f"account {info.account!r}")
            with Progress(TextColumn("[bold]3.[/bold] replaying DEMO through the host"),
                          BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err, transient=False) as progress:
                task = progress.add_task("bars", total=total)
                started = time.perf_counter()
                host.start_feed()
                while not host.feed.done.wait(0.1):
                    progress.update(task, completed=host.feed.position)
                progress.update(task, completed=host.feed.position)
            if host.feed.error is not None:
                raise SandtradeError(f"the replay stopped: {host.feed.error}")
            elapsed = time.perf_counter() - started
            live_trades = host.live.call(lambda b: list(b.closed_trades(info.account)))
            account = client.account(info.account)
            status = client.strategy_status(name)
            out.print(f"    {total:,} bars in {elapsed:.1f} s ({total / elapsed:,.0f} bars/s, "
                      f"every bar handed to the strategy's worker before the next); "
                      f"{len(live_trades)} closed trades, equity {account.equity:,.2f}, "
                      f"worker CPU {status.cpu_seconds:.2f} s")
            for e in status.last_errors:
                err.print(f"[yellow]strategy error:[/yellow] {e}", markup=False)

        request = BacktestRequest(strategy=str(strategy_path), data=[DataSpec(path=str(csv))],
                                  cash=settings.cash, broker=settings.broker)
        supervisor = Supervisor(fill_profiles=host.plugins.fill_profiles().values())
        result = SandboxRunner(supervisor=supervisor).run_source(
            strategy_path.read_text(), request, {"DEMO": iter_csv(str(csv), symbol="DEMO")})
        same = [_trade_key(t) for t in live_trades] == [_trade_key(t) for t in result.trades]
        verdict = ("[green]the same trades[/green]" if same else
                   "[red]DIFFERENT trades[/red] (please report this)")
        out.print(f"[bold]4.[/bold] back-test of the same file on the same CSV, in a sandbox: "
                  f"{len(result.trades)} closed trades: {verdict}")
        table = Table(box=None, show_header=True)
        for col in ("", "trades", "equity"):
            table.add_column(col, justify="right" if col else "left")
        table.add_row("live paper trading", str(len(live_trades)), f"{account.equity:,.2f}")
        table.add_row("back-test", str(len(result.trades)),
                      f"{result.stats['Equity Final [$]']:,.2f}")
        out.print(table)
        out.print(stats_table(f"{name} on DEMO (back-test)", result.stats))
        if args.report:
            write_report(result, args.report)
            out.print(f"report: {args.report}")
        if args.keep_running:
            out.print(f"\nThe host keeps serving on {host.rpc.address}. Try, in another "
                      f"terminal:\n  sandtrade strategies list --data-dir {data_dir} --grpc "
                      f"{host.rpc.address}\n  sandtrade orders --account {info.account} "
                      f"--data-dir {data_dir} --grpc {host.rpc.address}")
            out.print("Its market has ended with the DEMO data (the comparison needs exactly "
                      "that history), so new orders on DEMO are refused with that reason. To "
                      "trade, run `sandtrade serve`: its DEMO market loops and never runs dry.")
            out.print("Ctrl-C stops it.")
            with contextlib.suppress(KeyboardInterrupt):
                host.wait()
        return 0 if same else 1
    finally:
        host.stop()
        if not args.data_dir:
            shutil.rmtree(data_dir, ignore_errors=True)
