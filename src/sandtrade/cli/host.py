"""The host commands: ``serve``, ``tokens``, and the client commands ``orders``, ``buy``,
``sell``, ``cancel``, ``positions`` and ``account``.

The client commands talk to a running host through :class:`sandtrade.client.Client`; their
token comes from ``--token``, else ``SANDTRADE_TOKEN``, else the operator token that
``sandtrade serve`` wrote into the data directory (:func:`sandtrade.cli.common.connect`).
``strategies`` and ``signals`` are client commands too, in their own modules.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sandtrade.cli.common import add_client_args, add_config_args, connect, load_cli_settings
from sandtrade.cli.tables import Col, cell, print_table
from sandtrade.errors import InvalidField, SandtradeError

__all__ = ["COMMANDS", "add_commands", "run_command"]

COMMANDS = ("serve", "tokens", "orders", "buy", "sell", "cancel", "positions", "account")


def add_commands(sub: Any) -> None:
    """Add the host commands to the CLI's subparsers."""
    sv = sub.add_parser("serve", help="run the host: broker, market feed, gRPC API",
                        description="Start the host with its store in the data directory. "
                        "Stop with Ctrl-C or SIGTERM; kill it any way you like: the next "
                        "start resumes from the store.")
    add_config_args(sv)
    sv.add_argument("--grpc", metavar="HOST:PORT", help="gRPC address (default 127.0.0.1:50051)")
    sv.add_argument("--http", metavar="HOST:PORT", help="HTTP address of the webhooks (default "
                    "127.0.0.1:8000; '' turns the HTTP server off)")
    sv.add_argument("--ssl-certfile", metavar="FILE", help="serve HTTPS with this certificate "
                    "(TradingView posts only to ports 80 and 443)")
    sv.add_argument("--ssl-keyfile", metavar="FILE", help="the certificate's key")
    sv.add_argument("--source", metavar="NAME[:ARG]",
                    help="market source plugin: replay, synthetic, ccxt:EXCHANGE (crypto, e.g. "
                    "ccxt:binance), alpaca:FEED (US equities, your APCA_API_KEY_ID); its "
                    "settings in [sources.NAME]")
    sv.add_argument("--data", action="append", default=[], metavar="[SYMBOL=]CSV",
                    help="replay: a CSV history file (repeatable; default: the DEMO sample)")
    sv.add_argument("--speed", type=float, metavar="BARS_PER_S",
                    help="bars published per second (0: as fast as possible)")
    mode = sv.add_mutually_exclusive_group()
    mode.add_argument("--lockstep", dest="mode", action="store_const", const="lockstep",
                      help="the feed waits until every strategy has handled each bar: a replay "
                      "trades exactly as a back-test, but one stalled strategy delays all of "
                      "them (default when --speed is 0)")
    mode.add_argument("--free", dest="mode", action="store_const", const="free",
                      help="no strategy waits for another: each takes the market from its own "
                      "queue at its own pace (default when paced)")
    sv.add_argument("--then", choices=("loop", "synthetic", "stop"),
                    help="when the data ends: loop (replay it again, times moved forward), "
                    "synthetic (seeded random bars from each symbol's last close) or stop (no "
                    "more prices: orders on those symbols are refused, with the reason); "
                    "default: loop for the built-in DEMO sample, stop for your --data files")

    tk = sub.add_parser("tokens", help="create, list and revoke API tokens")
    tsub = tk.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    cr = tsub.add_parser("create", help="create a token; prints it alone on stdout, once",
                         description="Create an API token for ACCOUNT (created with the "
                         "configured starting cash when new). The token is printed once; only "
                         "its hash is stored.")
    add_config_args(cr)
    cr.add_argument("--account", required=True, help="the account the token acts for ('*' "
                    "for every account, admin scope only)")
    cr.add_argument("--scope", required=True, metavar="SCOPES",
                    help="comma-separated: read, trade, signal, admin")
    cr.add_argument("--label", help="a note to recognise the token by")
    ls = tsub.add_parser("list", help="list tokens (never their secrets)")
    add_config_args(ls)
    ls.add_argument("--json", action="store_true")
    rv = tsub.add_parser("revoke", help="revoke a token by id")
    add_config_args(rv)
    rv.add_argument("token_id", metavar="TOKEN_ID")

    od = sub.add_parser("orders", help="list the account's orders")
    add_client_args(od)
    od.add_argument("--open", action="store_true", help="working orders only")
    od.add_argument("--last", type=int, default=50, help="show the last N (default 50)")
    for side in ("buy", "sell"):
        p = sub.add_parser(side, help=f"send a {side} order")
        add_client_args(p)
        p.add_argument("symbol")
        p.add_argument("qty", type=float)
        p.add_argument("--limit", type=float, metavar="PRICE",
                       help="limit price: a limit order (with --stop, a stop-limit order)")
        p.add_argument("--stop", type=float, metavar="PRICE",
                       help="stop price: a stop order (with --limit, a stop-limit order)")
        p.add_argument("--tif", default="gtc", choices=["day", "gtc", "ioc", "fok"])
        p.add_argument("--client-order-id", help="idempotency key (default: generated)")
        exits = p.add_argument_group(
            "exits", "a take profit and a stop loss make a bracket (one cancels the other, "
            "working once the entry fills); one of them an oto; with --oco, an exit-only pair "
            "on a position held")
        exits.add_argument("--tp", type=float, metavar="PRICE", help="take profit price")
        exits.add_argument("--sl", type=float, metavar="PRICE", help="stop loss price")
        exits.add_argument("--tp-percent", type=float, metavar="PCT",
                           help="take profit PCT %% from the entry's fill price")
        exits.add_argument("--sl-percent", type=float, metavar="PCT",
                           help="stop loss PCT %% from the entry's fill price")
        exits.add_argument("--sl-limit", type=float, metavar="PRICE",
                           help="makes the stop loss a stop-limit order at PRICE")
        exits.add_argument("--trail-percent", type=float, metavar="PCT",
                           help="a trailing stop PCT %% from the best price since: the order "
                           "itself with no other price, else the entry's only exit")
        exits.add_argument("--trail-price", type=float, metavar="AMOUNT",
                           help="as --trail-percent, a price distance")
        exits.add_argument("--oco", action="store_true",
                           help="exit-only: --tp and --sl as one-cancels-other on a position")
    cn = sub.add_parser("cancel", help="cancel a working order")
    add_client_args(cn)
    cn.add_argument("order_id")
    ps = sub.add_parser("positions", help="show open positions")
    add_client_args(ps)
    ac = sub.add_parser("account", help="show cash, equity and buying power")
    add_client_args(ac)
    ac.add_argument("--performance", choices=("account", "strategy", "source"),
                    nargs="?", const="account", default=None,
                    help="show live performance (return, drawdown, Sharpe, win rate, profit "
                         "factor, trades) as a back-test defines it, per account, strategy "
                         "or source")


def run_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run one of :data:`COMMANDS`."""
    if args.command == "serve":
        return _serve(args, err)
    if args.command == "tokens":
        return _tokens(args, out, err)
    return _client_command(args, out, err)


# ---------------------------------------------------------------------- serve


def _serve(args: argparse.Namespace, err: Console) -> int:
    from sandtrade.host.runtime import HostRuntime

    market: dict[str, Any] = {}
    if args.source:
        market["source"] = args.source
    if args.data:
        market["files"] = args.data
    if args.speed is not None:
        market["bars_per_second"] = args.speed
    if args.then:
        market["then"] = args.then
    overrides: dict[str, Any] = {"market": market} if market else {}
    if args.mode:
        overrides["strategies"] = {"mode": args.mode}
    if args.http is not None:
        overrides["http"] = args.http
    for key in ("ssl_certfile", "ssl_keyfile"):
        if getattr(args, key):
            overrides[key] = getattr(args, key)
    settings = load_cli_settings(args, **overrides)
    runtime = HostRuntime(settings)
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # The market's changes (the data ended, loops, goes synthetic) as they happen, from
    # the start: a restarted host whose data had ended says so at once.
    runtime.on_market_note = lambda line: err.print(Text(line, style="yellow"), soft_wrap=True)
    runtime.start()
    from sandtrade.host.runtime import tune_gc_for_serving

    tune_gc_for_serving()
    try:
        assert runtime.rpc is not None and runtime.source is not None
        err.print(f"sandtrade host up: gRPC [bold]{runtime.rpc.address}[/bold], data in "
                  f"{settings.data_dir}, market source {runtime.source.name} "
                  f"({', '.join(i.symbol for i in runtime.source.instruments())}; when the "
                  f"data ends: {settings.market.resolved_then()})")
        err.print(f"operator token: {runtime.operator_token_path} (the CLI uses it; "
                  f"restored {runtime.restored_fills} fills)")
        if runtime.http is not None:
            err.print(f"webhooks: {runtime.http.url}/webhooks/tradingview/<token> (tokens: "
                      "sandtrade tokens create --account NAME --scope signal); API docs "
                      f"{runtime.http.url}/docs")
        print(f"READY {runtime.rpc.address}", flush=True)
        while not stop.wait(0.5):
            feed = runtime.feed
            if feed is not None and feed.error is not None:
                err.print(f"[red]market feed stopped: {feed.error}[/red]")
                feed.error = None
    finally:
        runtime.stop()
    err.print("sandtrade host stopped")
    return 0


# ---------------------------------------------------------------------- tokens


def _tokens(args: argparse.Namespace, out: Console, err: Console) -> int:
    from sandtrade.auth import ALL_ACCOUNTS, AuthError, TokenAuthority, parse_scopes
    from sandtrade.host.runtime import open_host_store
    from sandtrade.models import Account

    settings = load_cli_settings(args)
    store = open_host_store(Path(settings.data_dir))
    try:
        auth = TokenAuthority(store)
        if args.tokens_command == "create":
            try:
                scopes = parse_scopes(args.scope)
                new_account = (args.account != ALL_ACCOUNTS
                               and store.get_account(args.account) is None)
                record, token = auth.create(args.account, scopes, args.label)
                if new_account:
                    store.create_account(Account(id=args.account, cash=settings.cash,
                                                 initial_cash=settings.cash))
                    err.print(f"created account {args.account!r} with "
                              f"{settings.cash:,.2f} cash")
            except AuthError as e:
                raise SandtradeError(f"--scope/--account: {e}") from None
            err.print(f"token {record.id} for {record.account!r}, scopes "
                      f"{','.join(record.scopes)}; it is shown once:")
            print(token, flush=True)
            return 0
        if args.tokens_command == "list":
            tokens = store.list_tokens()
            if args.json:
                print(json.dumps([{"id": t.id, "account": t.account, "scopes": list(t.scopes),
                                   "created_at": t.created_at.isoformat(),
                                   "revoked_at": t.revoked_at and t.revoked_at.isoformat(),
                                   "label": t.label} for t in tokens], indent=2))
                return 0
            print_table(out, (Col("id", whole=True), Col("account", whole=True),
                              Col("scopes"), Col("created", drop=2), Col("revoked", drop=1),
                              Col("label", wrap=True)),
                        [(t.id, t.account, ",".join(t.scopes),
                          f"{t.created_at:%Y-%m-%d %H:%M}",
                          f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "",
                          t.label or "") for t in tokens])
            return 0
        if not auth.revoke(args.token_id):
            raise SandtradeError(f"no active token with id {args.token_id!r} "
                                 "(see `sandtrade tokens list`)")
        err.print(f"revoked token {args.token_id} (a running host stops accepting it within "
                  "a second)")
        return 0
    finally:
        store.close()


# ---------------------------------------------------------------------- client commands


def _client_command(args: argparse.Namespace, out: Console, err: Console) -> int:
    from sandtrade.client import QueuedOrder

    settings = load_cli_settings(args)
    account = args.account or None
    if account is None and (args.token is None and not os.environ.get("SANDTRADE_TOKEN")):
        account = settings.account  # the operator token acts for every account
    with connect(args, settings, err) as c:
        if args.command in ("buy", "sell"):
            # No type: --limit and --stop imply it (the client's one rule for it).
            result = c.submit_order(args.symbol, args.command, args.qty,
                                    limit_price=args.limit, stop_price=args.stop,
                                    tif=args.tif, client_order_id=args.client_order_id,
                                    account=account, **_exit_arguments(args))
            assert not isinstance(result, QueuedOrder)
            _print_orders([result], args, out)
            if result.reject_reason:
                err.print(f"[red]rejected: {result.reject_reason}[/red]")
                return 1
            return 0
        if args.command == "cancel":
            _print_orders([c.cancel_order(args.order_id)], args, out)
            return 0
        if args.command == "orders":
            orders = list(c.list_orders(account=account, open_only=args.open))
            _print_orders(orders[-args.last:] if args.last else orders, args, out)
            return 0
        if args.command == "positions":
            positions = c.positions(account)
            if args.json:
                print(json.dumps([p.model_dump(mode="json") | {
                    "market_value": p.market_value, "unrealized_pnl": p.unrealized_pnl}
                    for p in positions], indent=2))
                return 0
            print_table(out, (Col("symbol", whole=True), Col("qty", right=True),
                              Col("avg price", right=True), Col("last", right=True, drop=2),
                              Col("market value", right=True, drop=1),
                              Col("unrealized P&L", right=True),
                              Col("realized P&L", right=True, drop=3)),
                        [(p.symbol, f"{p.qty:g}", f"{p.avg_price:,.2f}",
                          "" if p.market_price is None else f"{p.market_price:,.2f}",
                          f"{p.market_value:,.2f}", _pnl(p.unrealized_pnl),
                          _pnl(p.realized_pnl)) for p in positions],
                        title=f"positions of {account or 'your account'}")
            return 0
        if args.performance is not None:
            groups = c.performance(account, args.performance)
            if args.json:
                print(json.dumps(groups, indent=2))
                return 0
            print_table(out, (Col(args.performance, whole=True), Col("return %", right=True),
                              Col("max dd %", right=True), Col("sharpe", right=True),
                              Col("win rate %", right=True), Col("profit f.", right=True),
                              Col("trades", right=True)),
                        [(key, *("-" if g[k] is None else f"{g[k]:,.2f}" for k in (
                            "return_pct", "max_drawdown_pct", "sharpe", "win_rate_pct",
                            "profit_factor")), str(g["trades"]))
                         for key, g in groups.items()],
                        title=f"performance of {account or 'your account'} by "
                              f"{args.performance}")
            return 0
        acct = c.account(account)
        risk = _risk_info(c, account)
        if args.json:  # the market's state too, as /health has it: scripts check it
            print(json.dumps({**acct.model_dump(mode="json"), "market": _market_json(c),
                              "risk": _risk_json(risk)}, indent=2))
            return 0
        table = Table(title=cell(f"account {acct.id}"), title_justify="left", box=None,
                      show_header=False)
        table.add_column()
        table.add_column(justify="right")
        for label, value in (("cash", acct.cash), ("equity", acct.equity),
                             ("buying power", acct.buying_power),
                             ("long market value", acct.long_market_value),
                             ("short market value", acct.short_market_value),
                             ("realized P&L", acct.realized_pnl),
                             ("commissions", acct.commissions),
                             ("initial cash", acct.initial_cash)):
            table.add_row(label, f"{value or 0:,.2f}")
        out.print(table)
        _print_risk(risk, out)
        _print_market(c, out)
        return 0


def _risk_info(c: Any, account: str | None) -> Any:
    """The account's risk rules and standing (None from a host or a token that cannot say)."""
    from sandtrade.client import ApiError

    try:
        return c.account_settings(account)
    except ApiError:
        return None


def _risk_json(info: Any) -> dict[str, Any] | None:
    if info is None:
        return None
    return {"rules": info.risk.model_dump(mode="json"), "own": info.own,
            "standing": info.standing.to_json(),
            "quotas": info.quotas.model_dump(mode="json") if info.quotas else None}


def _print_risk(info: Any, out: Console) -> None:
    """Under the account: its risk rules and its day against them, ``risk:`` lines (never
    wrapped: scripts grep for them)."""
    if info is None:
        return
    rules, day = info.risk, info.standing
    parts = [f"{name.replace('_', ' ')} {value:,.2f}" if isinstance(value, float)
             else f"{name.replace('_', ' ')} {value:,}"
             for name, value in rules.model_dump().items()
             if value is not None and not isinstance(value, (bool, dict))]
    parts += [f"max position notional of {sym} {v:,.2f}"
              for sym, v in sorted(rules.max_position_notional_by_symbol.items())]
    if rules.pattern_day_trader:
        parts.append("pattern day trader protection")
    whose = "the account's own" if info.own else "the host's defaults"
    out.print(Text(f"risk rules ({whose}): {', '.join(parts) or 'none'}"), soft_wrap=True)
    today = day.day.isoformat() if day.day else "before the first bar"
    loss = f"loss {day.loss_today:,.2f}"
    if rules.max_daily_loss is not None:
        loss += f" of {rules.max_daily_loss:,.2f} allowed"
    orders = f"{day.orders_today:,} orders"
    if rules.max_orders_per_day is not None:
        orders += f" of {rules.max_orders_per_day:,}"
    out.print(Text(f"risk today ({today}): {loss}; {orders}; {day.day_trades} day trades in "
                   "5 business days"), soft_wrap=True)
    if day.halted:
        out.print(Text(day.halted, style="red"), soft_wrap=True)  # "risk: daily loss …"
    q = info.quotas
    if q is not None:
        out.print(Text(
            f"quotas: {q.orders_per_second:,g} orders/s (burst {q.order_burst:,}), "
            f"{q.cancels_per_second:,g} cancels/s (burst {q.cancel_burst:,}), "
            f"{q.open_orders:,} working orders, {q.signals_per_second:,g} signals/s (burst "
            f"{q.signal_burst:,}), {q.strategies_running:,} running strategies"),
            soft_wrap=True)
        if q.strategy_ctx_calls:  # a host from before these quotas sends none
            out.print(Text(
                f"each strategy: {q.strategy_ctx_calls:,} ctx calls an event, "
                f"{q.strategy_log_lines_per_second:,g} log lines/s and "
                f"{q.strategy_log_bytes_per_second:,} bytes/s (burst "
                f"{q.strategy_log_burst_seconds:,g} s), ctx.state up to "
                f"{q.strategy_state_bytes:,} bytes"), soft_wrap=True)


#: Symbols whose feed ``sandtrade account`` lists at most (the ended ones first).
MARKET_LINES = 10


def _market_json(c: Any) -> dict[str, Any] | None:
    """The host's market feed as JSON (None from a host or a token that cannot say)."""
    from sandtrade.client import ApiError

    try:
        return dict(c.feed_status().to_json())
    except ApiError:
        return None


def _print_market(c: Any, out: Console) -> None:
    """Under the account: where the host's market is, one line per symbol, e.g. ``market:
    replay of DEMO ended at 2024-08-01 (bar 2500 of 2500); orders on DEMO cannot fill``."""
    from sandtrade.client import ApiError

    try:
        status = c.feed_status()
    except ApiError:  # an older host, or a token that may not read the market
        return
    if status.state == "failed":
        out.print(Text(f"market: the feed stopped on an error: {status.error}", style="red"),
                  soft_wrap=True)
    symbols = sorted(status.symbols, key=lambda s: (s.state != "ended", s.symbol))
    # One line each, never wrapped: scripts grep for them.
    for s in symbols[:MARKET_LINES]:
        out.print(Text(f"market: {s.message}", style="yellow" if s.state == "ended" else ""),
                  soft_wrap=True)
    if len(symbols) > MARKET_LINES:
        out.print(Text(f"market: … and {len(symbols) - MARKET_LINES} more symbols"))


def _pnl(v: float) -> Text:
    return cell(f"{v:,.2f}", "green" if v > 0 else "red" if v < 0 else "")


def _exit_arguments(args: argparse.Namespace) -> dict[str, Any]:
    """``submit_order``'s exit arguments from ``buy``/``sell``'s options."""
    kw: dict[str, Any] = {}
    for name, price, pct in (("take_profit", args.tp, args.tp_percent),
                             ("stop_loss", args.sl, args.sl_percent)):
        if price is not None and pct is not None:
            flag = name.split("_")[0][0] + name.split("_")[1][0]
            raise InvalidField(flag, f"--{flag} and --{flag}-percent: give one of them")
        spec = {"price": price} if price is not None else \
            {"percent": pct} if pct is not None else None
        if spec is not None:
            kw[name] = spec
    if args.sl_limit is not None:
        if "stop_loss" not in kw:
            raise InvalidField("sl_limit", "--sl-limit needs --sl or --sl-percent")
        kw["stop_loss"]["limit_price"] = args.sl_limit
    trailing = args.trail_percent is not None or args.trail_price is not None
    if trailing:
        kw["trail_percent"], kw["trail_price"] = args.trail_percent, args.trail_price
        if not kw.keys() & {"take_profit", "stop_loss"} and args.limit is None \
                and args.stop is None:
            kw["type"] = "trailing_stop"  # no entry price: the order is the trailing stop
    if args.oco:
        kw["order_class"] = "oco"
    return kw


def _print_orders(orders: list[Any], args: argparse.Namespace, out: Console) -> None:
    if args.json:
        print(json.dumps([o.model_dump(mode="json") for o in orders], indent=2))
        return
    cols = (Col("id", whole=True), Col("time", drop=3), Col("symbol", whole=True), Col("side"),
            Col("type", drop=2), Col("qty", right=True), Col("price", right=True, drop=1),
            Col("filled", right=True, drop=4), Col("avg fill", right=True, drop=5),
            Col("source", drop=3), Col("status"), Col("reason", wrap=True))
    rows = []
    for o in orders:
        price = " / ".join(f"{p:g}" for p in (o.limit_price, o.stop_price) if p is not None)
        kind = o.type.value if o.order_class.value == "simple" else (
            f"{o.type.value} ({o.order_class.value}"
            f"{' exit of ' + o.parent_id if o.parent_id else ''})")
        rows.append((o.id, f"{o.created_at:%Y-%m-%d %H:%M}" if o.created_at else "", o.symbol,
                     o.side.value, kind, "" if o.qty is None else f"{o.qty:g}", price,
                     f"{o.filled_qty:g}",
                     "" if o.avg_fill_price is None else f"{o.avg_fill_price:,.2f}",
                     source_text(o.source), o.status.value, o.reject_reason or ""))
    print_table(out, cols, rows)


def source_text(source: Any) -> str:
    """An order's source as a table shows it: the kind, and the label (else the ref)."""
    if source is None:
        return "unknown"
    detail = source.label or source.ref
    return f"{source.kind} {detail}" if detail and detail != source.kind else source.kind

