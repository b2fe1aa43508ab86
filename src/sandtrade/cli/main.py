"""``sandtrade …``: the command line's parser and entry point, and the commands ``backtest``,
``check``, ``doctor`` and ``data``.

It imports the other command modules to build the parser and to run their commands; they
never import it (what they share with it is in :mod:`sandtrade.cli.common`).
Every error a user can cause (a bad CSV, a strategy that raises, an unknown ``--param``) is
printed as one line naming the file and the place, with exit status 1; never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from sandtrade import __version__
from sandtrade.cli.common import (
    add_config_args,
    load_cli_settings,
    parse_params,
    risk_rules,
    stats_table,
)
from sandtrade.cli.demo import add_demo_command, run_demo
from sandtrade.cli.host import COMMANDS as HOST_COMMANDS
from sandtrade.cli.host import add_commands, run_command
from sandtrade.cli.new import add_new_command, run_new
from sandtrade.cli.optimize import add_optimize_command, run_optimize
from sandtrade.cli.options import add_options_command, run_options
from sandtrade.cli.signals import add_signals_command, run_signals
from sandtrade.cli.strategies import add_strategies_command, run_strategies
from sandtrade.cli.tables import safe, safe_lines
from sandtrade.errors import SandtradeError

__all__ = ["main"]

#: Runs with at least this many bars show a progress bar (on stderr, when it is a terminal).
PROGRESS_MIN_BARS = 50_000


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sandtrade",
        description="Run trading strategies you don't fully trust: back-tests and paper trading.")
    p.add_argument("--version", action="version", version=f"sandtrade {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    bt = sub.add_parser("backtest", help="back-test a strategy file on CSV history",
                        description="Back-test STRATEGY on CSV history and print its stats.")
    bt.add_argument("strategy", metavar="STRATEGY", help="the strategy .py file")
    bt.add_argument("--data", action="append", required=True, metavar="CSV",
                    help="CSV of bars (Date, Open, High, Low, Close[, Volume]); repeat for a "
                    "portfolio; SYMBOL=path.csv names the symbol (default: the file name)")
    bt.add_argument("--config", metavar="FILE", help="TOML settings file")
    bt.add_argument("--cash", type=float, help="starting cash (default 10000)")
    bt.add_argument("--commission", type=float, metavar="F",
                    help="commission as a fraction of traded value, e.g. 0.002")
    bt.add_argument("--commission-per-unit", type=float, metavar="C",
                    help="commission per share/unit traded")
    bt.add_argument("--commission-min", type=float, metavar="C", help="minimum per order")
    bt.add_argument("--slippage", type=float, metavar="F",
                    help="adverse slippage on market/stop fills, as a fraction of price")
    bt.add_argument("--fill-profile", metavar="NAME",
                    help="when/at what price orders fill: next_open (default), close, quote, "
                    "or one a plugin adds")
    bt.add_argument("--volume-share", type=float, metavar="F",
                    help="cap fills per bar at this share of the bar's volume")
    bt.add_argument("--close-at-end", action="store_true",
                    help="close open trades at the last bar so they count in the stats")
    bt.add_argument("--param", action="append", default=[], metavar="K=V",
                    help="override a strategy parameter (repeatable)")
    bt.add_argument("--risk", action="append", default=[], metavar="RULE=VALUE",
                    help="a risk rule, as the host's [risk] table holds them (repeatable), "
                    "e.g. max_daily_loss=500 or pattern_day_trader=true; the --config file's "
                    "[risk] applies too")
    bt.add_argument("--benchmark", metavar="SYMBOL",
                    help="the symbol whose buy and hold is the benchmark (Buy & Hold Return, "
                    "Alpha, Beta); default: a portfolio's is an equal-weight buy and hold of "
                    "all its symbols")
    bt.add_argument("--log", action="store_true",
                    help="print the strategy's whole log (print, ctx.log) after the stats, not "
                    "only its last 20 lines")
    bt.add_argument("--json", action="store_true",
                    help="print one JSON object (stats, trades, logs) instead of tables")
    bt.add_argument("--report", metavar="FILE.html", help="write an HTML report with charts")
    bt.add_argument("--unsafe-in-process", action="store_true",
                    help="DEBUGGING ONLY: run the strategy in this process, without the sandbox")

    ck = sub.add_parser("check", help="check a strategy file without running it on data",
                        description="Exit 0 when STRATEGY loads and its hooks are valid; "
                        "1 with file:line: message lines otherwise.")
    ck.add_argument("strategy", metavar="STRATEGY")

    doc = sub.add_parser("doctor", help="show which sandbox layers this machine provides",
                         description="Start a sandbox worker and report each OS layer it "
                         "applied.")
    doc.add_argument("--worker-modules", action="store_true",
                     help="also list the modules the worker holds before it confines itself: "
                     "sandtrade's, and the third-party packages")
    add_config_args(doc)
    doc.add_argument("--http", metavar="HOST:PORT",
                     help="where a running host's HTTP server is, to report its market "
                     "source's link (default: the configured http, 127.0.0.1:8000)")

    data = sub.add_parser("data", help="the sample histories that ship with sandtrade",
                          description="List the bundled sample CSV files, or print one's path. "
                          "Any command that takes a CSV file also takes a sample's name.")
    dsub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    dsub.add_parser("list", help="name, bars, first and last time, and path of each sample")
    dpath = dsub.add_parser("path", help="print the path of one sample file")
    dpath.add_argument("name", metavar="NAME", help="a sample's name, e.g. DEMO")

    add_demo_command(sub)
    add_commands(sub)
    add_strategies_command(sub)
    add_signals_command(sub)
    add_options_command(sub)
    add_optimize_command(sub)
    add_new_command(sub)
    return p


def _run_backtest(args: argparse.Namespace, out: Console, err: Console) -> int:
    from rich.markup import escape
    from rich.text import Text

    from sandtrade.backtest.request import BacktestRequest, BacktestRunner
    from sandtrade.backtest.runner import InProcessRunner, count_rows, parse_data_spec
    from sandtrade.cli.terminal import printable
    from sandtrade.host.config import load_settings

    broker: dict[str, Any] = {}
    for flag, key in (("commission", "commission_pct"), ("commission_per_unit",
                      "commission_per_unit"), ("commission_min", "commission_min"),
                      ("slippage", "slippage_pct"), ("fill_profile", "fill_profile"),
                      ("volume_share", "volume_share")):
        value = getattr(args, flag)
        if value is not None:
            broker[key] = value
    overrides: dict[str, Any] = {"broker": broker} if broker else {}
    if args.cash is not None:
        overrides["cash"] = args.cash
    settings = load_settings(args.config, **overrides)
    specs = [parse_data_spec(d) for d in args.data]
    risk = risk_rules(settings.risk, args.risk)
    request = BacktestRequest(strategy=args.strategy, data=specs, cash=settings.cash,
                              broker=settings.broker, params=parse_params(args.param),
                              close_at_end=args.close_at_end, benchmark=args.benchmark,
                              risk=None if risk.is_empty() else risk)
    total = max(count_rows(s.path) for s in specs)
    show_progress = total >= PROGRESS_MIN_BARS and err.is_terminal
    from sandtrade.host.plugins import PluginHost

    host = PluginHost.create()
    for failed in host.errors:
        err.print(f"[yellow]warning:[/yellow] plugin {failed.name!r} ({failed.value}) was "
                  f"skipped: {failed.error}")
    profiles = host.fill_profiles().values()
    runner: BacktestRunner
    if args.unsafe_in_process:
        err.print("[bold red]WARNING: --unsafe-in-process runs the strategy inside this process "
                  "with no sandbox: it can read and change anything you can. Use it only to "
                  "debug your own code.[/bold red]")
        runner = InProcessRunner(profiles=profiles)
    else:
        from sandtrade.sandbox.runner import SandboxRunner
        from sandtrade.sandbox.supervisor import Supervisor

        # The worker imports the plugins' profiles by reference; it never loads plugins.
        runner = SandboxRunner(supervisor=Supervisor(fill_profiles=profiles))
    if show_progress:
        columns = (TextColumn("back-testing"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("bars"), TimeRemainingColumn())
        with Progress(*columns, console=err, transient=True) as bar:
            task = bar.add_task("run", total=total)
            result = runner.run(request, progress=lambda done: bar.update(task, completed=done))
    else:
        result = runner.run(request)

    if args.report:
        from sandtrade.backtest.report import write_report
        path = write_report(result, args.report)
        if not args.json:
            err.print(f"report written to [bold]{escape(str(path))}[/bold]")
    if args.json:
        print(json.dumps(result.to_json_summary(), allow_nan=False))
        return 0
    # The strategy's name, its symbols, warnings and log lines come from the worker and the
    # strategy: shown as data, never as rich markup or terminal control sequences.
    title = (f"{result.strategy} on {', '.join(result.symbols)}: {result.bars:,} bars "
             f"in {result.elapsed_s:.2f} s")
    out.print(stats_table(escape(printable(title)), result.stats))
    logs = result.logs
    if logs:
        tail_lines, tail_chars = 20, 1_000  # a glance; --log shows every line, whole
        shown = logs if args.log or len(logs) <= tail_lines else logs[-tail_lines:]
        if len(shown) < len(logs):
            head = (f"strategy log, the last {len(shown)} of {len(logs):,} lines "
                    f"({len(logs) - len(shown):,} left out; --log shows all):")
        else:
            head = f"strategy log ({len(logs):,} line{'s' if len(logs) > 1 else ''}):"
        if not args.log:
            shown = [f"{line[:tail_chars]}… ({len(line) - tail_chars:,} more characters)"
                     if len(line) > tail_chars else line for line in shown]
        out.print(Text(head, style="bold"))
        # One Text for all the lines: a print() per line costs rich ~50 us, seconds for a
        # log of short lines at its 1 MiB cap.
        out.print(Text("\n".join(map(printable, shown))), soft_wrap=True)
    for w in result.warnings[:10]:
        err.print(Text.assemble(("warning:", "yellow"), " ", printable(w)))
    if len(result.warnings) > 10:
        err.print(f"[yellow]… and {len(result.warnings) - 10} more warnings[/yellow]")
    return 0


def _check(args: argparse.Namespace, out: Console) -> int:
    from sandtrade.sandbox.runner import inspect_in_sandbox

    checked = inspect_in_sandbox(args.strategy)
    hooks = ", ".join(checked.hooks) or "none"

    def shown(name: str) -> str:
        spec = checked.specs[name]
        bounds = [f"{k} {getattr(spec, k)!r}" for k in ("min", "max", "step")
                  if getattr(spec, k) is not None]
        if spec.choices is not None:
            bounds.append("choices " + "|".join(map(str, spec.choices)))
        return f"{name}={spec.default!r}" + (f" [{', '.join(bounds)}]" if bounds else "")

    # PARAMS come from the file: shown as data (no markup, no control characters, one line)
    out.print(safe(f"{args.strategy}: ok (hooks: {hooks}; params: "
                   f"{', '.join(map(shown, checked.params)) or 'none'})"),
              markup=False, highlight=False, soft_wrap=True)
    return 0


def _doctor_http(args: argparse.Namespace) -> str:
    """The HTTP address of the host ``doctor`` asks about its market."""
    if args.http is not None:
        return str(args.http)
    return load_cli_settings(args).http


#: How long ``doctor`` waits for a running host's ``/health``.
DOCTOR_HEALTH_TIMEOUT = 3.0


def doctor_market_lines(address: str) -> list[tuple[str, str, str]]:
    """``(what, status, style)`` rows on the market of the host at ``address`` (HOST:PORT),
    from its ``/health``: the source, and for a live source whether its link is live or
    reconnecting since when, with the last error."""
    import urllib.request

    if not address:
        return [("host market", "the HTTP server is off (http = ''): not asked", "yellow")]
    url = f"http://{address}/health"
    try:
        with urllib.request.urlopen(url, timeout=DOCTOR_HEALTH_TIMEOUT) as r:
            health = json.loads(r.read())
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        return [("host market", f"no host answering at {url} ({reason})", "yellow")]
    market = health.get("market") if isinstance(health, dict) else None
    if not isinstance(market, dict):
        return [("host market", f"{url} says nothing of a market", "yellow")]
    source = str(market.get("source", "?"))
    rows = [("market source", f"{source} (feed {market.get('state', '?')})",
             "green" if market.get("state") == "running" else "yellow")]
    link = market.get("connection")
    if isinstance(link, dict):
        state = str(link.get("state", "?"))
        rows.append(("market link", str(link.get("message", state)),
                     "green" if state == "live" else "red" if state == "reconnecting"
                     else "yellow"))
    else:
        rows.append(("market link", "none to watch (a replay or generator)", "green"))
    return rows


def _doctor(out: Console, *, worker_modules: bool = False, host_http: str | None = None) -> int:
    from sandtrade.sandbox.cpu import CpuPlacement
    from sandtrade.sandbox.mailbox import StrategySettings
    from sandtrade.sandbox.supervisor import Supervisor

    # What `sandtrade serve` would use with the default settings (the probe makes its cgroup,
    # and close() removes it).
    settings = StrategySettings()
    cpu = CpuPlacement.probe(settings.cpu_share)
    cpu.close()
    # Started as `serve` starts strategies' workers: forked by a zygote unless it is off.
    supervisor = Supervisor(report_modules=worker_modules, zygote=settings.zygote)
    try:
        worker = supervisor.start({"task": "check", "path": "doctor.py", "source": ""},
                                  name="doctor")
    except BaseException:
        supervisor.close()
        raise
    try:
        table = Table(title="sandbox layers on this machine", title_justify="left", box=None)
        table.add_column("layer", style="bold")
        table.add_column("status")
        for layer, status in worker.layers.items():
            style = "green" if status.startswith("on") else "yellow"
            table.add_row(layer, f"[{style}]{status}[/{style}]")
        style = "green" if cpu.kind.startswith("cgroup") else "yellow"
        table.add_row("cpu share", f"[{style}]{cpu.kind}[/{style}]: "
                      f"{escape(cpu.detail.removeprefix('cpu share: '))}")
        kind, _, detail = supervisor.worker_start.partition(": ")
        style = "green" if kind == "zygote" else "yellow"
        table.add_row("worker start", f"[{style}]{kind}[/{style}]: {escape(detail)}")
        out.print(table)
        if host_http is not None:
            # One line each, never wrapped (scripts grep them); the host's words (an
            # exchange's error text) are data: escaped, never markup.
            for what, status, style in doctor_market_lines(host_http):
                out.print(f"{what}: [{style}]{escape(status)}[/{style}]", soft_wrap=True)
        if worker.modules is not None:
            for line in _worker_modules_lines(worker.modules):
                out.print(line, soft_wrap=True, markup=False)
    finally:
        worker.close()
        supervisor.close()
    return 0


def _worker_modules_lines(modules: list[str]) -> list[str]:
    """``doctor --worker-modules``: sandtrade's modules, the third-party top-level packages
    (each with its number of modules) and how many of the standard library's, one line each."""
    own = [m for m in modules if m.partition(".")[0] == "sandtrade"]
    packages: dict[str, int] = {}
    stdlib = 0
    for m in modules:
        top = m.partition(".")[0]
        if top == "sandtrade":
            continue
        # _sysconfigdata_*: the interpreter's build settings, generated with the stdlib.
        if top in sys.stdlib_module_names or top == "__main__" or \
                top.startswith("_sysconfigdata_"):
            stdlib += 1
        else:
            packages[top] = packages.get(top, 0) + 1
    third = ", ".join(f"{top} ({n})" for top, n in sorted(packages.items(),
                                                           key=lambda kv: kv[0].lower()))
    return [f"modules the worker holds before it confines itself: {len(modules)}",
            f"sandtrade ({len(own)}): {', '.join(own)}",
            f"third-party packages ({len(packages)}, {sum(packages.values())} modules): "
            f"{third}",
            f"standard library: {stdlib} modules"]


def _data(args: argparse.Namespace, out: Console) -> int:
    from sandtrade.market import SAMPLES, describe_interval, iter_csv, sample_path

    if args.data_command == "path":
        print(sample_path(args.name))
        return 0
    table = Table(title="bundled sample histories (synthetic)", title_justify="left", box=None)
    for column in ("name", "bars", "every", "from", "to"):
        table.add_column(column, no_wrap=True)
    table.add_column("what it is", ratio=1)
    for sample in SAMPLES.values():
        bars = list(iter_csv(sample.path, sample.name))
        every = min(b.time - a.time for a, b in pairwise(bars[:10]))  # weekends aside
        table.add_row(sample.name, f"{len(bars):,}", describe_interval(every),
                      f"{bars[0].time:%Y-%m-%d}", f"{bars[-1].time:%Y-%m-%d}", sample.description)
    out.print(table)
    out.print(f"in {sample_path('DEMO').parent}", soft_wrap=True)
    out.print("use a name where a CSV file goes (--data DEMO), or its path: "
              "sandtrade data path NAME", soft_wrap=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sandtrade`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    out = Console(highlight=False)
    err = Console(stderr=True, highlight=False)
    try:
        if args.command == "backtest":
            return _run_backtest(args, out, err)
        if args.command == "check":
            return _check(args, out)
        if args.command == "demo":
            return run_demo(args, out, err)
        if args.command == "doctor":
            return _doctor(out, worker_modules=args.worker_modules,
                           host_http=_doctor_http(args))
        if args.command == "data":
            return _data(args, out)
        if args.command in HOST_COMMANDS:
            return run_command(args, out, err)
        if args.command == "strategies":
            return run_strategies(args, out, err)
        if args.command == "signals":
            return run_signals(args, out, err)
        if args.command == "options":
            return run_options(args, out, err)
        if args.command == "optimize":
            return run_optimize(args, out, err)
        if args.command == "new":
            return run_new(args, out)
    except SandtradeError as e:  # its words may quote a file or a host: shown as data
        print(safe_lines(str(e)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
