"""``sandtrade strategies upload|start|stop|delete|list|status|logs|backtest``: strategies in
a host.

Each action is one call of the gRPC StrategyService through :class:`sandtrade.client.Client`,
with the token rules of the other client commands (``--token``, ``SANDTRADE_TOKEN``, else the
operator token in the data directory). A strategy is named within its account: ``--account``
names it, and is needed with the operator's token only when several accounts have a strategy
of that name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from sandtrade.cli.common import (
    add_client_args,
    connect,
    load_cli_settings,
    parse_params,
    stats_table,
)
from sandtrade.cli.tables import Col, cell, print_table, safe
from sandtrade.errors import SandtradeError

__all__ = ["add_strategies_command", "run_strategies"]

_STATE_STYLE = {"running": "green", "starting": "yellow", "stopping": "yellow", "failed": "red",
                "stopped": "dim"}
#: The origin column of ``strategies logs``: five characters wide; a strategy's own lines
#: leave it blank.
_ORIGIN_COLUMN = {"strategy": ("     ", ""), "host": ("host ", "cyan"), "error": ("error", "red")}


def add_strategies_command(sub: Any) -> None:
    """Add ``strategies`` and its actions to the CLI's subparsers."""
    st = sub.add_parser("strategies", help="upload, start, stop and watch strategies in a host")
    ssub = st.add_subparsers(dest="strategies_command", required=True, metavar="ACTION")

    up = ssub.add_parser("upload", help="check a strategy file and store it in the host")
    add_client_args(up)
    up.add_argument("file", metavar="STRATEGY.py")
    up.add_argument("--name", help="name to store it under (default: the file's stem)")
    up.add_argument("--symbol", "-s", action="append", default=[], required=True,
                    metavar="SYMBOL", help="a symbol whose bars it receives (repeatable)")
    up.add_argument("--param", action="append", default=[], metavar="K=V",
                    help="override a PARAMS value (repeatable)")
    up.add_argument("--start", action="store_true", help="start it right after the upload")

    for action, text in (("start", "start a stored strategy in its sandbox"),
                         ("stop", "stop a running strategy (its on_stop runs)"),
                         ("delete", "stop a strategy if it runs, then remove it with its "
                          "ctx.state and log (the name may then be used again)"),
                         ("status", "state, resource use, last errors of a strategy")):
        p = ssub.add_parser(action, help=text)
        add_client_args(p)
        p.add_argument("name")

    ls = ssub.add_parser("list", help="stored strategies and their state")
    add_client_args(ls)

    lg = ssub.add_parser("logs", help="a strategy's log (print, ctx.log, the host's notes)")
    add_client_args(lg)
    lg.add_argument("name")
    lg.add_argument("--tail", type=int, default=100, metavar="N", help="last N lines (100)")
    lg.add_argument("--follow", "-f", action="store_true", help="keep printing new lines")

    bt = ssub.add_parser("backtest", help="back-test a stored strategy on the host's history")
    add_client_args(bt)
    bt.add_argument("name")
    bt.add_argument("--cash", type=float, default=0.0,
                    help="starting cash (default: the host's cash setting, 10,000 unless set)")
    bt.add_argument("--commission", type=float, default=0.0, help="commission, a fraction")
    bt.add_argument("--benchmark", metavar="SYMBOL",
                    help="measure Buy & Hold, Alpha and Beta against this symbol (default: "
                    "equal weights of all)")
    bt.add_argument("--param", action="append", default=[], metavar="K=V",
                    help="override a PARAMS value (repeatable)")


def run_strategies(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run one ``strategies`` action, connected to the host."""
    with connect(args, load_cli_settings(args), err) as client:
        return _run(args, client, out, err)


def _run(args: argparse.Namespace, client: Any, out: Console, err: Console) -> int:
    action = args.strategies_command
    if action == "upload":
        path = Path(args.file)
        try:
            source = path.read_text(encoding="utf-8")
        except OSError as e:
            raise SandtradeError(f"{path}: cannot read: {e.strerror}") from None
        from sandtrade.client import FailedPrecondition

        name = args.name or path.stem
        try:
            info = client.upload_strategy(name, source, symbols=args.symbol,
                                          account=args.account, params=parse_params(args.param))
        except FailedPrecondition as e:
            if not e.diagnostics:
                raise
            stored_as = f"{name}.py"
            for line in e.diagnostics:  # the host names the file NAME.py: show the local path
                if line.startswith(stored_as):
                    line = str(path) + line[len(stored_as):]
                err.print(safe(line), highlight=False, markup=False)
            err.print(safe(f"{path}: not uploaded ({len(e.diagnostics)} problem(s))"), style="red",
                      markup=False, highlight=False)
            return 1
        if args.start:
            info = client.start_strategy(info.name, account=info.account)
        _print_strategies([info], args, out)
        return 0
    account = args.account
    if action == "start":
        _print_strategies([client.start_strategy(args.name, account=account)], args, out)
        return 0
    if action == "stop":
        _print_strategies([client.stop_strategy(args.name, account=account)], args, out)
        return 0
    if action == "delete":
        gone = client.delete_strategy(args.name, account=account)
        if args.json:
            print(json.dumps({**_info_json(gone), "deleted": True}, indent=2))
        else:
            out.print(safe(f"deleted {gone.account}/{gone.name} (its ctx.state and log too)"),
                      markup=False, highlight=False)
        return 0
    if action == "list":
        _print_strategies(client.list_strategies(account=account), args, out)
        return 0
    if action == "status":
        return _print_status(client.strategy_status(args.name, account=account), args, out)
    if action == "logs":
        for entry in client.strategy_logs(args.name, tail=args.tail, follow=args.follow,
                                          account=account):
            if args.json:
                print(json.dumps({"time": entry.time.isoformat(), "line": entry.line,
                                  "origin": entry.origin}), flush=True)
            else:
                _print_log_line(out, entry)
        return 0
    return _backtest(args, client, out, err)


def _print_log_line(out: Console, entry: Any) -> None:
    """``12:00:01 host │ text``: who wrote a line is a column of its own, before the text.

    The strategy's text cannot reach that column: it is never markup, :func:`safe` spells out
    its control characters and line breaks, and a line longer than the terminal wraps inside
    the text column (a grid), not back to the left edge. So ``[host] stopped`` printed by a
    strategy stays in the strategy's column.
    """
    origin, style = _ORIGIN_COLUMN.get(entry.origin, _ORIGIN_COLUMN["strategy"])
    grid = Table.grid()
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(Text.assemble((f"{entry.time:%H:%M:%S} ", "dim"), (origin, style),
                               ("│ ", "dim")), Text(safe(entry.line)))
    out.print(grid)


def _print_strategies(infos: list[Any], args: argparse.Namespace, out: Console) -> None:
    if args.json:
        print(json.dumps([_info_json(i) for i in infos], indent=2))
        return
    # sha256 is cut on purpose: 12 hex digits tell two uploads apart, --json has all 64
    print_table(out, (Col("account", whole=True), Col("name", whole=True), Col("state"),
                      Col("symbols", wrap=True), Col("params", wrap=True), Col("sha256", drop=2),
                      Col("uploaded", drop=1)),
                [(i.account, i.name, cell(i.state, _STATE_STYLE.get(i.state, "")),
                  ", ".join(i.symbols), ", ".join(f"{k}={v}" for k, v in i.params.items()),
                  i.source_sha256[:12],
                  f"{i.uploaded_at:%Y-%m-%d %H:%M}" if i.uploaded_at else "") for i in infos])


def _info_json(i: Any) -> dict[str, Any]:
    return {"id": i.id, "name": i.name, "state": i.state, "account": i.account,
            "symbols": list(i.symbols), "params": i.params, "source_sha256": i.source_sha256,
            "uploaded_at": i.uploaded_at.isoformat() if i.uploaded_at else None}


def _print_status(s: Any, args: argparse.Namespace, out: Console) -> int:
    if args.json:
        print(json.dumps({**_info_json(s.strategy), "cpu_seconds": s.cpu_seconds,
                          "rss_bytes": s.rss_bytes, "kill_reason": s.kill_reason,
                          "last_errors": list(s.last_errors), "restarts": s.restarts,
                          "lag_bars": s.lag_bars, "lag_seconds": s.lag_seconds,
                          "bars_coalesced": s.bars_coalesced, "bars_dropped": s.bars_dropped},
                         indent=2))
        return 0
    i = s.strategy
    style = _STATE_STYLE.get(i.state, "")
    table = Table(title=cell(f"strategy {i.name}"), title_justify="left", box=None,
                  show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("state", cell(i.state, style))
    table.add_row("account", cell(i.account))
    table.add_row("symbols", cell(", ".join(i.symbols)))
    table.add_row("CPU", f"{s.cpu_seconds:.2f} s")
    table.add_row("memory", f"{s.rss_bytes / 2**20:.0f} MiB")
    lag = "none" if not s.lag_bars else f"{s.lag_bars:,} bars queued ({s.lag_seconds:.1f} s)"
    for count, what in ((s.bars_coalesced, "coalesced"), (s.bars_dropped, "dropped")):
        if count:
            lag += f"; {count:,} bars {what} so far"
    table.add_row("behind the market", lag)
    table.add_row("restarts", str(s.restarts))
    table.add_row("killed because", cell(s.kill_reason or "-"))
    out.print(table)
    if s.last_errors:
        out.print("[bold]last errors[/bold]")
        for e in s.last_errors:
            out.print(safe(e), markup=False, highlight=False)
    return 0


def _backtest(args: argparse.Namespace, client: Any, out: Console, err: Console) -> int:
    last = None
    with Progress(TextColumn("back-test"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True,
                  disable=args.json) as progress:
        task = progress.add_task("bars", total=None)
        for step in client.run_backtest(args.name, cash=args.cash,
                                        commission=args.commission,
                                        params=parse_params(args.param),
                                        benchmark=args.benchmark, account=args.account):
            progress.update(task, completed=step.bars_done, total=step.bars_total or None)
            last = step
    if last is None or last.stats is None:
        raise SandtradeError(f"{args.name}: the host sent no result")
    if args.json:
        print(json.dumps({"stats": last.stats, "trades": list(last.trades)}, indent=2))
        return 0
    stats = {k: int(v) if isinstance(v, float) and v.is_integer() and k.startswith("#") else v
             for k, v in last.stats.items()}
    table = stats_table(f"back-test of {args.name} on the host's history", stats)
    out.print(table)
    return 0
