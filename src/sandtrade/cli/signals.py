"""``sandtrade signals check|send|list|show|replay``: the signal journal from the terminal.

``check`` answers the most common support question of alert bridges, "why did my alert not
do what I meant?": it shows exactly how a body is read and what it would do now, without
journaling or executing it. It asks the running host (routes, account, positions), and reads
the body locally when no host answers. ``replay`` reads the store directly, so it works with
the host stopped too.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from sandtrade.cli.common import add_client_args, add_config_args, connect, load_cli_settings
from sandtrade.cli.tables import Col, cell, print_table, safe, safe_lines
from sandtrade.errors import SandtradeError

__all__ = ["add_signals_command", "run_signals", "run_signals_offline"]

_STATUS_STYLE = {"executed": "green", "rejected": "red", "failed": "red", "dropped": "dim",
                 "validated": "yellow", "routed": "yellow", "received": "yellow"}


def add_signals_command(sub: Any) -> None:
    """Add ``signals`` and its actions to the CLI's subparsers."""
    sg = sub.add_parser("signals", help="check, send, list, show and replay signals")
    ssub = sg.add_subparsers(dest="signals_command", required=True, metavar="ACTION")

    ck = ssub.add_parser("check", help="show how a body is read and what it would do",
                         description="Read BODY (text, '-' for standard input, or @FILE) as "
                         "the host would, and say what it would do now. Nothing is journaled "
                         "or executed. Exit status 0 when the host would accept it, 1 when not.")
    add_client_args(ck)
    ck.add_argument("body", metavar="BODY")
    ck.add_argument("--format", help="read it with this format instead of detecting one")
    ck.add_argument("--offline", action="store_true",
                    help="do not ask the host: read the body with the local configuration")

    sd = ssub.add_parser("send", help="send a signal to the host")
    add_client_args(sd)
    sd.add_argument("body", metavar="BODY", help="text, '-' for standard input, or @FILE")
    sd.add_argument("--format", help="the body's format (default: detected)")
    sd.add_argument("--idempotency-key", help="resending with the same key executes once")

    ls = ssub.add_parser("list", help="the newest journaled signals")
    add_client_args(ls)
    ls.add_argument("--last", type=int, default=50, metavar="N", help="how many (50)")

    sh = ssub.add_parser("show", help="one signal: raw body, what was read, every step")
    add_client_args(sh)
    sh.add_argument("signal_id", metavar="ID", nargs="?",
                    help="a signal's id (default: the newest signal)")

    for verb, says in (("pause", "pause a route: what it would carry is journaled as "
                        "dropped, never executed later"),
                       ("resume", "resume a paused route: signals after this execute")):
        pz = ssub.add_parser(verb, help=says, description=f"{says[0].upper()}{says[1:]}. "
                             "ROUTE is account:ACCOUNT (every signal of the account), "
                             "paper:ACCOUNT, strategy:ACCOUNT/NAME or live:BROKER (the "
                             "operator's).")
        add_client_args(pz)
        pz.add_argument("route", metavar="ROUTE")
    pd = ssub.add_parser("paused", help="the paused routes")
    add_client_args(pd)

    rp = ssub.add_parser("replay", help="replay a time range of the journal into a fresh "
                         "paper account",
                         description="Carry the journaled signals of ACCOUNT received in "
                         "[--since, --until) out again in a fresh in-memory paper account, "
                         "against the host's market source, at the place in the market each "
                         "met live. The same journal gives the same fills every time. Reads "
                         "the store; the host may be running or not.")
    add_config_args(rp)
    rp.add_argument("--account", help="whose signals (default: the configured account)")
    rp.add_argument("--since", type=_when, metavar="TIME",
                    help="ISO time, UTC unless it says (default: the beginning)")
    rp.add_argument("--until", type=_when, metavar="TIME", help="ISO time (default: now)")
    rp.add_argument("--pace", choices=["fast", "original"], default="fast",
                    help="fast (default), or wait between signals as they were received")
    rp.add_argument("--cash", type=float, help="starting cash (default: the configured cash)")
    rp.add_argument("--source", help="market source (default: the configured one); give the "
                    "host's if it was started with --source")
    rp.add_argument("--data", action="append", default=[], metavar="[SYMBOL=]CSV",
                    help="replay source: the CSV files the host was started with (--data)")
    rp.add_argument("--json", action="store_true", help="print JSON")
    rp.add_argument("--report", metavar="FILE.html", help="also draw the signal timeline: "
                    "price, each signal, each fill, the position (self-contained HTML)")


def _when(text: str) -> datetime:
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO time such as "
                                         "2024-05-01T13:30:00") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _body(text: str) -> str:
    if text == "-":
        return sys.stdin.read()
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            return path.read_text(encoding="utf-8")
        except OSError as e:
            raise SandtradeError(f"{path}: cannot read: {e.strerror}") from None
    return text


def run_signals(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run one ``signals`` action: ``replay`` and ``check --offline`` without a host, the
    others connected to it."""
    if args.signals_command == "replay" or getattr(args, "offline", False):
        return run_signals_offline(args, out, err)
    with connect(args, load_cli_settings(args), err) as client:
        return _run_with_host(args, client, out, err)


def _run_with_host(args: argparse.Namespace, client: Any, out: Console, err: Console) -> int:
    from sandtrade.client import InvalidArgument, Unavailable

    action = args.signals_command
    if action == "check":
        body = _body(args.body)
        try:
            info = client.send_signal(body, format=args.format, dry_run=True)
        except Unavailable as e:
            err.print(f"[yellow]no host answers at {client.target} ({e.message}); reading the "
                      "body locally: routes, accounts and positions are not checked[/yellow]")
            return run_signals_offline(args, out, err)
        except InvalidArgument as e:
            out.print(safe_lines(e.message), markup=False, highlight=False)
            err.print("[red]the host would refuse this body[/red]")
            return 1
        out.print(safe_lines(info.explanation), markup=False, highlight=False)
        return 0
    if action == "send":
        try:
            info = client.send_signal(_body(args.body), format=args.format,
                                      idempotency_key=args.idempotency_key)
        except InvalidArgument as e:
            err.print("[red]rejected:[/red] ", end="")
            err.print(safe(e.message), markup=False, highlight=False)
            return 1
        if args.json:
            print(json.dumps(_info_json(info), indent=2))
        else:
            dup = " (a duplicate: this is the first one)" if info.duplicate else ""
            why = f": {info.reason}" if info.reason else ""
            out.print(safe(f"{info.id} {info.status}{dup} -> {info.destination}{why}"),
                      markup=False)
        return 0
    if action in ("pause", "resume"):
        view = client.set_route_paused(args.route, action == "pause")
        if args.json:
            print(json.dumps(view, indent=2))
        elif view["paused"]:
            out.print(safe(f"{view['route']} paused (since {view['since']}, by {view['by']}): "
                           "its signals are journaled as dropped until it is resumed"),
                      markup=False)
        else:
            out.print(safe(f"{view['route']} open: its signals execute"), markup=False)
        return 0
    if action == "paused":
        routes = client.paused_routes(account=args.account)
        if args.json:
            print(json.dumps(routes, indent=2))
        elif not routes:
            out.print("no route is paused")
        else:
            print_table(out, (Col("route", whole=True), Col("since"), Col("by")),
                        [(r["route"], r["since"], r["by"]) for r in routes])
        return 0
    if action == "list":
        infos = client.list_signals(account=args.account, limit=args.last)
        if args.json:
            print(json.dumps([_info_json(i) for i in infos], indent=2))
            return 0
        print_table(out, (Col("id", whole=True), Col("received", drop=2), Col("source", drop=3),
                          Col("format", drop=4), Col("account", drop=1), Col("status"),
                          Col("destination"), Col("reason", wrap=True)),
                    [(i.id, f"{i.received_at:%Y-%m-%d %H:%M:%S}", i.source, i.format, i.account,
                      cell(i.status, _STATUS_STYLE.get(i.status, "")), i.destination,
                      i.reason if len(i.reason) <= 200 else i.reason[:197] + "...")
                     for i in infos])
        return 0
    if args.signal_id is None:
        newest = client.list_signals(account=args.account, limit=1)
        if not newest:
            raise SandtradeError("no signal has been received yet")
        args.signal_id = newest[0].id
    info = client.get_signal(args.signal_id)
    if args.json:
        print(json.dumps(_info_json(info), indent=2))
        return 0
    out.print(safe(f"{info.id} from {info.source}, account {info.account}, "
                   f"received {info.received_at:%Y-%m-%d %H:%M:%S.%f} UTC"), markup=False)
    out.print(safe(f"format {info.format or '-'}, destination {info.destination or '-'}, "
                   f"alert id {info.alert_id or '-'}, idempotency key "
                   f"{info.idempotency_key or '-'}"), markup=False)
    out.print("[bold]body, as received:[/bold]")
    out.print(safe_lines(info.raw_body), markup=False, highlight=False)
    ignored = info.parsed.get("ignored_fields") or []
    if ignored:
        out.print(safe(f"ignored (no format reads them): {', '.join(map(str, ignored))}"),
                  markup=False, highlight=False)
    out.print("[bold]life:[/bold]")
    for status, at, reason in info.history:
        style = _STATUS_STYLE.get(status, "")
        out.print(f"  {at:%H:%M:%S.%f} [{style}]{status:<9}[/{style}] ", end="")
        out.print(safe(reason), markup=False, highlight=False)
    if info.order_ids:
        out.print(f"orders: {', '.join(info.order_ids)}")
    return 0


def _info_json(info: Any) -> dict[str, Any]:
    return {
        "id": info.id, "source": info.source, "status": info.status, "reason": info.reason,
        "account": info.account, "destination": info.destination, "format": info.format,
        "received_at": info.received_at.isoformat(), "raw_body": info.raw_body,
        "idempotency_key": info.idempotency_key, "alert_id": info.alert_id,
        "order_ids": list(info.order_ids), "duplicate": info.duplicate,
        "ignored_fields": list(info.parsed.get("ignored_fields") or []),
        "history": [{"status": s, "at": at.isoformat(), "reason": r}
                    for s, at, r in info.history]}


def run_signals_offline(args: argparse.Namespace, out: Console, err: Console) -> int:
    """``signals check --offline`` and ``signals replay``: no host needed."""
    from sandtrade.host.plugins import PluginHost

    market: dict[str, Any] = {}
    if getattr(args, "source", None):
        market["source"] = args.source
    if getattr(args, "data", None):
        market["files"] = args.data
    settings = load_cli_settings(args, **({"market": market} if market else {}))
    plugins = PluginHost.create()
    formats = plugins.signal_formats(settings.signals.mappings)
    if args.signals_command == "check":
        from sandtrade.signal_model import SignalError

        try:
            parsed = formats.parse(_body(args.body), args.format)
        except SignalError as e:
            out.print(safe(f"rejected: {e}"), markup=False, highlight=False)
            return 1
        out.print(safe(f"format: {parsed.format}"), markup=False)
        for name in ("symbol", "action", "qty", "price", "account", "strategy", "alert_id",
                     "idempotency_key", "comment"):
            value = getattr(parsed, name)
            if value is not None:
                out.print(safe(f"  {name}: {value}"), markup=False, highlight=False)
        out.print("commands, in order:")
        for i, cmd in enumerate(parsed.commands, 1):
            out.print(safe(f"  {i}. {cmd.describe()}"), markup=False, highlight=False)
        return 0
    return _replay(args, settings, plugins, formats, out, err)


def _chain_source(plugins: Any, settings: Any) -> Any:
    """The host's ``[options] source``, which a replay builds spreads from as live."""
    sources = plugins.option_chain_sources()
    if settings.options.source not in sources:
        raise SandtradeError(f"options.source: unknown chain source {settings.options.source!r}"
                             f" (known: {', '.join(sorted(sources))})")
    return sources[settings.options.source](settings.options)


def _replay(args: argparse.Namespace, settings: Any, plugins: Any, formats: Any,
            out: Console, err: Console) -> int:
    from sandtrade.host.runtime import STORE_FILE, open_host_store
    from sandtrade.signals.replay import replay

    data_dir = Path(settings.data_dir)
    if not (data_dir / STORE_FILE).exists():
        raise SandtradeError(f"{data_dir / STORE_FILE}: no store here (pass --data-dir, or "
                             "run `sandtrade serve` first)")
    store = open_host_store(data_dir)
    try:
        account = args.account or settings.account
        records = [r for _, r in store.list_signals(account=account, since=args.since,
                                                    until=args.until, limit=1_000_000,
                                                    oldest_first=True)]
    finally:
        store.close()
    sources = plugins.market_sources()
    try:
        source = sources[settings.market.source](settings.market)
    except KeyError:
        raise SandtradeError(f"market.source: unknown source {settings.market.source!r}"
                             ) from None
    with Progress(TextColumn("replaying signals"), BarColumn(), MofNCompleteColumn(),
                  console=err, transient=True, disable=args.json) as bar:
        task = bar.add_task("replay", total=None)
        result = replay(records, source.bars(), instruments=source.instruments(),
                        formats=formats, cash=args.cash or settings.cash,
                        broker=settings.broker, profiles=plugins.fill_profiles().values(),
                        pace=args.pace, symbols=settings.symbol_table(),
                        any_symbol=settings.signals.symbols == "any",
                        chain_source=_chain_source(plugins, settings),
                        progress=lambda done, total: bar.update(task, completed=done,
                                                                total=total))
    if args.report:
        from sandtrade.signals.timeline import write_timeline

        path = write_timeline(result, records, args.report,
                              title=f"Signals of account {account}, replayed")
        err.print(f"timeline: {path}")
    if args.json:
        print(json.dumps({
            "account": account, "signals": [
                {"id": s.id, "received_at": s.received_at.isoformat(),
                 "market_position": s.market_position, "orders": list(s.orders),
                 "outcome": s.outcome, "failed": s.failed} for s in result.signals],
            "skipped": [{"id": i, "why": why} for i, why in result.skipped],
            "fills": [dict(zip(("time", "symbol", "side", "qty", "price", "signal",
                                "price_source"), row, strict=True))
                      for row in result.fill_rows()],
            "equity": result.account.equity if result.account else None,
            "positions": {p.symbol: p.qty for p in result.positions}}, indent=2))
        return 0
    out.print(f"replayed {len(result.signals)} signals of account {account} over "
              f"{result.bars} bars ({len(result.skipped)} journaled signals left out: "
              "rejected, dropped, duplicates or not for a paper account)")
    print_table(out, (Col("time"), Col("symbol", whole=True), Col("side"),
                      Col("qty", right=True), Col("price", right=True), Col("signal", whole=True),
                      Col("priced by")),
                [(t, symbol, side, f"{qty:g}", f"{price:,.4f}", sid, source)
                 for t, symbol, side, qty, price, sid, source in result.fill_rows()],
                title="fills")
    failed = [s for s in result.signals if s.failed]
    for s in failed:
        err.print(safe(f"{s.id}: {s.outcome}"), style="yellow", markup=False, highlight=False)
    if result.account is not None:
        positions = ", ".join(f"{p.symbol} {p.qty:g}" for p in result.positions) or "flat"
        out.print(f"equity {result.account.equity:,.2f} (cash {result.account.cash:,.2f}); "
                  f"positions: {positions}")
    return 0
