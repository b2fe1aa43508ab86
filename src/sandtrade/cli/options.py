"""``sandtrade options chain|order|positions|payoff|close``: option chains, strategy templates
and position groups of a running host, from the terminal.

Every number comes from the host (its chain source priced at its feed's last price and time,
its broker's fills); this module only asks and prints. A template's parameters are flags
(``--short-delta 0.16 --width 5``, one per parameter any template takes) or ``--param K=V``;
the host checks them and a refusal names the parameter (``iron_condor: width -5 must be above
0 (field parameters.width)``).
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rich.console import Console
from rich.text import Text

from sandtrade.cli.common import (
    TOKEN_WAIT,
    add_client_args,
    connect,
    load_cli_settings,
    parse_params,
)
from sandtrade.cli.tables import Col, cell, print_table, safe
from sandtrade.errors import SandtradeError

__all__ = ["add_options_command", "run_options"]

T = TypeVar("T")


def _template_parameters() -> dict[str, list[str]]:
    """Each parameter any template takes, and the templates that take it."""
    from sandtrade.options.templates import TEMPLATES

    out: dict[str, list[str]] = {}
    for name, template in TEMPLATES.items():
        for p in inspect.signature(template).parameters:
            if p != "b":
                out.setdefault(p, []).append(name)
    return dict(sorted(out.items()))


def _add_template_args(p: argparse.ArgumentParser, *, required: bool) -> None:
    from sandtrade.options.templates import TEMPLATES

    nargs = None if required else "?"
    p.add_argument("template", metavar="TEMPLATE", nargs=nargs,
                   help=f"one of: {', '.join(TEMPLATES)}")
    p.add_argument("symbol", metavar="SYMBOL", nargs=nargs, help="the underlying")
    p.add_argument("--expiry", default="30d", help="2026-12-18, 30d (the expiry nearest 30 "
                   "days away), monthly or weekly (default 30d)")
    group = p.add_argument_group("template parameters (the host says which a template takes)")
    for name, templates in _template_parameters().items():
        shown = ", ".join(templates) if len(templates) <= 4 else f"{len(templates)} templates"
        group.add_argument(f"--{name.replace('_', '-')}", dest=f"t_{name}", metavar="V",
                           help=f"{name} ({shown})")
    group.add_argument("--param", action="append", default=[], metavar="K=V",
                       help="any template parameter by its name (repeatable)")


def add_options_command(sub: Any) -> None:
    """Add ``options`` and its actions to the CLI's subparsers."""
    op = sub.add_parser("options", help="option chains, strategy templates, position groups")
    osub = op.add_subparsers(dest="options_command", required=True, metavar="ACTION")

    ch = osub.add_parser("chain", help="an underlying's chain: calls and puts by strike",
                         description="Print SYMBOL's option chain for one expiry as the host "
                         "prices it now: calls left, puts right, the strike nearest the spot "
                         "in bold.")
    add_client_args(ch)
    ch.add_argument("symbol", metavar="SYMBOL")
    ch.add_argument("--expiry", default="30d", help="2026-12-18, 30d, monthly or weekly "
                    "(default 30d)")
    ch.add_argument("--strikes", type=int, default=8, metavar="N",
                    help="strikes each side of the spot (default 8; 0: all)")

    od = osub.add_parser("order", help="build a strategy template and send it as one "
                         "multi-leg order",
                         description="Build TEMPLATE on SYMBOL's chain now, print its legs, "
                         "net price, max profit and loss and break-evens, then send it as one "
                         "multi-leg order (not with --dry-run).")
    add_client_args(od)
    _add_template_args(od, required=True)
    od.add_argument("--qty", type=float, default=1.0, help="spreads (default 1)")
    od.add_argument("--limit", type=float, metavar="PRICE",
                    help="net price per spread; on a credit strategy the credit to receive "
                    "(default: a market order)")
    od.add_argument("--tif", default="day", choices=("day", "gtc", "ioc", "fok"))
    od.add_argument("--client-order-id", help="sending again with the same id trades once")
    od.add_argument("--dry-run", action="store_true", help="print the plan; send nothing")

    ps = osub.add_parser("positions", help="open position groups with their legs and greeks")
    add_client_args(ps)

    cl = osub.add_parser("close", help="close an open position group as one multi-leg order")
    add_client_args(cl)
    cl.add_argument("group", metavar="ID", help="the group's id (sandtrade options positions)")
    cl.add_argument("--limit", type=float, metavar="PRICE",
                    help="net price per spread, positive a debit, negative a credit (default: "
                    "a market order)")

    pf = osub.add_parser("payoff", help="write a payoff diagram (HTML) of a template or of an "
                         "open position group",
                         description="Draw the P&L at expiry and today against the "
                         "underlying's price, with the break-evens, as a self-contained HTML "
                         "file: of TEMPLATE SYMBOL (per spread) or of --group ID (as held).")
    add_client_args(pf)
    _add_template_args(pf, required=False)
    pf.add_argument("--group", metavar="ID", help="an open position group's id (sandtrade "
                    "options positions) instead of a template")
    pf.add_argument("--out", required=True, metavar="FILE.html", help="where to write it")


def _number_or_text(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text


def _template_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for name in _template_parameters():
        value = getattr(args, f"t_{name}", None)
        if value is not None:
            params[name] = _number_or_text(value)
    for key, value in parse_params(args.param).items():
        params[key] = _number_or_text(value)
    return params


def _account(args: argparse.Namespace, settings: Any) -> str | None:
    import os

    if args.account:
        return str(args.account)
    if args.token is None and not os.environ.get("SANDTRADE_TOKEN"):
        return str(settings.account)  # the operator token acts for every account
    return None


def _when_priced(call: Callable[[], T], err: Console) -> T:
    """``call()``, asked again for up to :data:`TOKEN_WAIT` seconds while the host answers
    that the underlying has no price yet (``sandtrade serve &`` then a chain at once: the
    feed's first bar is a moment away)."""
    from sandtrade.client import NotFound

    deadline = time.monotonic() + TOKEN_WAIT
    told = False
    while True:
        try:
            return call()
        except NotFound as e:
            if "has no price yet" not in e.message or time.monotonic() > deadline:
                raise
            if not told:
                err.print(Text("waiting for the underlying's first price (is the host "
                               "starting?)", style="dim"))
                told = True
            time.sleep(0.2)


def run_options(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run one ``options`` action against the host."""
    settings = load_cli_settings(args)
    account = _account(args, settings)
    with connect(args, settings, err) as client:
        action = args.options_command
        if action == "chain":
            return _chain(args, client, out, err)
        if action == "order":
            return _order(args, client, account, out, err)
        if action == "positions":
            return _positions(args, client, account, out)
        if action == "close":
            return _close(args, client, account, out, err)
        return _payoff(args, client, account, settings, out, err)


# ---------------------------------------------------------------------- chain


def _num(value: float | None, fmt: str = ",.2f") -> str:
    return "" if value is None else format(value, fmt)


def _chain(args: argparse.Namespace, client: Any, out: Console, err: Console) -> int:
    if args.strikes < 0:
        raise SandtradeError(f"--strikes: must not be negative (got {args.strikes})")
    chain = _when_priced(lambda: client.option_chain(args.symbol, args.expiry,
                                                     strikes_around_spot=args.strikes), err)
    if args.json:
        print(json.dumps({
            "underlying": chain.underlying, "as_of": chain.as_of.isoformat(),
            "spot": chain.spot, "expiries": [e.isoformat() for e in chain.expiries()],
            "rows": [r._asdict() | {"expiry": r.expiry.isoformat(), "right": r.right.value,
                                    "mark": r.mark} for r in chain.rows]}, indent=2))
        return 0
    if not chain.rows:
        out.print(Text(f"{chain.underlying}: nothing listed for {args.expiry}"))
        return 0
    expiry = chain.rows[0].expiry
    days = (expiry - chain.as_of.date()).days
    by_strike: dict[float, dict[str, Any]] = {}
    for r in chain.rows:
        by_strike.setdefault(r.strike, {})[r.right.value] = r
    atm = min(by_strike, key=lambda k: abs(k - (chain.spot or k)))
    cols = (Col("call Δ", right=True, drop=3), Col("call IV", right=True, drop=5),
            Col("call bid", right=True), Col("call ask", right=True),
            Col("strike", right=True, whole=True),
            Col("put bid", right=True), Col("put ask", right=True),
            Col("put IV", right=True, drop=4), Col("put Δ", right=True, drop=2))
    rows = []
    for strike, pair in sorted(by_strike.items()):
        c, p = pair.get("call"), pair.get("put")
        style = "bold" if strike == atm else ""
        rows.append([cell(v, style) for v in (
            _num(c.delta if c else None, "+.2f"),
            _num(c.iv * 100 if c and c.iv is not None else None, ".1f"),
            _num(c.bid if c else None), _num(c.ask if c else None), f"{strike:g}",
            _num(p.bid if p else None), _num(p.ask if p else None),
            _num(p.iv * 100 if p and p.iv is not None else None, ".1f"),
            _num(p.delta if p else None, "+.2f"))])
    spot = f"spot {chain.spot:,.2f}, " if chain.spot is not None else ""
    out.print(Text(f"{chain.underlying} options expiring {expiry} ({days} days): {spot}"
                   f"priced at {chain.as_of:%Y-%m-%d %H:%M}", style="bold"), soft_wrap=True)
    print_table(out, cols, rows)
    return 0


# ---------------------------------------------------------------------- order


def _money(value: float | None) -> str:
    return "unlimited" if value is None else f"${value:,.2f}"


def _plan_json(plan: Any) -> dict[str, Any]:
    return {"strategy": plan.name, "underlying": plan.underlying,
            "expiry": plan.expiry.isoformat(), "spot": plan.spot,
            "legs": [leg.model_dump(mode="json") | {"price": p.price, "iv": p.iv,
                                                    "strike": p.strike,
                                                    "right": p.right.value if p.right else None}
                     for leg, p in zip(plan.legs, plan.payoff_legs, strict=True)],
            "net_price": plan.net_price, "max_profit": plan.max_profit,
            "max_loss": plan.max_loss, "breakevens": plan.breakevens}


def _print_plan(plan: Any, qty: float, out: Console) -> None:
    cols = (Col("side"), Col("ratio", right=True), Col("symbol", whole=True),
            Col("right", drop=2), Col("strike", right=True, drop=1),
            Col("price", right=True), Col("IV", right=True, drop=3))
    rows = [(leg.side.value, str(leg.ratio), leg.symbol, p.right.value if p.right else "stock",
             f"{p.strike:g}" if p.strike is not None else "", f"{p.price:,.2f}",
             _num(p.iv * 100 if p.iv is not None else None, ".1f"))
            for leg, p in zip(plan.legs, plan.payoff_legs, strict=True)]
    spot = f", spot {plan.spot:,.2f}" if plan.spot is not None else ""
    print_table(out, cols, rows, title=f"{plan.name} on {plan.underlying}, expiry "
                f"{plan.expiry}{spot}")
    kind = "debit" if plan.net_price > 0 else "credit"
    lines = [f"net {kind} {abs(plan.net_price):,.2f} per spread at the marks "
             f"({_money(abs(plan.net_price) * 100 * qty)} for {qty:g})",
             f"max profit {_money(plan.max_profit)}, max loss {_money(plan.max_loss)} "
             "per spread at expiry",
             "break-even " + (", ".join(f"{b:,.2f}" for b in plan.breakevens) or "none")]
    for line in lines:
        out.print(Text(line), soft_wrap=True)


def _order(args: argparse.Namespace, client: Any, account: str | None, out: Console,
           err: Console) -> int:
    result = _when_priced(lambda: client.submit_template(
        args.template, args.symbol, args.qty, expiry=args.expiry, limit_price=args.limit,
        tif=args.tif, client_order_id=args.client_order_id, account=account,
        validate_only=args.dry_run, **_template_kwargs(args)), err)
    order = result.order
    if args.json:
        print(json.dumps({"plan": _plan_json(result.plan) if result.plan else None,
                          "order": order.model_dump(mode="json") if order else None,
                          "duplicate": result.duplicate}, indent=2))
    else:
        if result.plan is not None:
            _print_plan(result.plan, args.qty, out)
        if order is None:
            out.print(Text("dry run: nothing sent", style="dim"))
        else:
            price = "" if order.avg_fill_price is None else \
                f" at a net {order.avg_fill_price:+,.2f} per spread"
            limit = "market" if order.limit_price is None else f"limit {order.limit_price:+g}"
            again = " (sent before with this client order id)" if result.duplicate else ""
            out.print(Text(f"order {order.id} ({limit}): {order.status.value}{price}{again}"),
                      soft_wrap=True)
    if order is not None and order.reject_reason:
        err.print(Text.assemble(("rejected: ", "red"), safe(order.reject_reason)))
        return 1
    return 0


# ---------------------------------------------------------------------- positions


def _positions(args: argparse.Namespace, client: Any, account: str | None,
               out: Console) -> int:
    groups = client.position_groups(account)
    greeks = client.greeks(account)
    total = {"delta": greeks.delta, "gamma": greeks.gamma, "theta": greeks.theta,
             "vega": greeks.vega, "market_value": greeks.market_value,
             "unrealized_pnl": greeks.unrealized_pnl}
    if args.json:
        print(json.dumps({"groups": [g.to_json() for g in groups], "account": total},
                         indent=2))
        return 0
    if not groups:
        out.print(Text("no open position groups"))
    cols = (Col("symbol", whole=True), Col("qty", right=True), Col("entry", right=True),
            Col("mark", right=True), Col("P&L", right=True), Col("delta", right=True),
            Col("gamma", right=True, drop=3), Col("theta", right=True, drop=2),
            Col("vega", right=True, drop=1))
    for g in groups:
        rows = [(leg.symbol, f"{leg.qty:+g}", f"{p.price:,.2f}", _num(leg.mark),
                 _pnl(leg.unrealized_pnl), f"{leg.delta:+,.2f}", f"{leg.gamma:+,.3f}",
                 f"{leg.theta:+,.2f}", f"{leg.vega:+,.2f}")
                for leg, p in zip(g.legs, g.payoff_legs, strict=True)]
        rows.append((Text("group", style="bold"), "", "", "", _pnl(g.unrealized_pnl),
                     f"{g.delta:+,.2f}", f"{g.gamma:+,.3f}", f"{g.theta:+,.2f}",
                     f"{g.vega:+,.2f}"))
        print_table(out, cols, rows, title=f"group {g.id}: {_strategy(g)} on {g.underlying}")
        out.print(Text(f"max profit {_money(g.max_profit)}, max loss {_money(g.max_loss)} "
                       "as held; break-even " +
                       (", ".join(f"{b:,.2f}" for b in g.breakevens) or "none")),
                  soft_wrap=True)
    out.print(Text(f"account: delta {greeks.delta:+,.2f}, gamma {greeks.gamma:+,.3f}, theta "
                   f"{greeks.theta:+,.2f}/day, vega {greeks.vega:+,.2f}, unrealized P&L "
                   f"{greeks.unrealized_pnl:+,.2f}"), soft_wrap=True)
    return 0


def _close(args: argparse.Namespace, client: Any, account: str | None, out: Console,
           err: Console) -> int:
    order = client.close_group(args.group, limit_price=args.limit, account=account)
    if args.json:
        print(json.dumps(order.model_dump(mode="json"), indent=2))
    else:
        price = "" if order.avg_fill_price is None else \
            f" at a net {order.avg_fill_price:+,.2f} per spread"
        out.print(Text(f"order {order.id} closing group {args.group}: {order.status.value}"
                       f"{price}"), soft_wrap=True)
    if order.reject_reason:
        err.print(Text.assemble(("rejected: ", "red"), safe(order.reject_reason)))
        return 1
    return 0


def _strategy(group: Any) -> str:
    """What opened a group: its template (``template:NAME`` in its order's tag), else its
    tag."""
    tag = (group.order.tag or "") if group.order is not None else ""
    return str(group.template or tag or "multi-leg order")


def _pnl(v: float) -> Text:
    return cell(f"{v:+,.2f}", "green" if v > 0 else "red" if v < 0 else "")


# ---------------------------------------------------------------------- payoff


def _payoff(args: argparse.Namespace, client: Any, account: str | None, settings: Any,
            out: Console, err: Console) -> int:
    from sandtrade.options.picture import payoff_data, write_payoff_html

    conf = settings.options
    if args.group:
        if args.template or args.symbol:
            raise SandtradeError("options payoff: give TEMPLATE SYMBOL or --group ID, not both")
        group = next((g for g in client.position_groups(account) if g.id == args.group), None)
        if group is None:
            raise SandtradeError(f"options payoff: --group {args.group!r}: no open position "
                                 "group has this id (see `sandtrade options positions`)")
        chain = client.option_chain(group.underlying, strikes_around_spot=1)
        # per spread, as a template's picture: the units held over the spreads opened
        spreads = group.order.qty if group.order is not None and group.order.qty else 1.0
        legs = [p._replace(qty=p.qty / spreads) for p in group.payoff_legs]
        data = payoff_data(legs, spot=chain.spot, now=chain.as_of,
                           rate=conf.rate, dividend_yield=conf.dividend_for(group.underlying),
                           vol=conf.volatility_for(group.underlying),
                           title=f"group {group.id}: {_strategy(group)} on "
                           f"{group.underlying} ({spreads:g} spreads held)")
    else:
        if not args.template or not args.symbol:
            raise SandtradeError("options payoff: give TEMPLATE SYMBOL (and its parameters) "
                                 "or --group ID")
        plan = _when_priced(lambda: client.submit_template(
            args.template, args.symbol, 1, expiry=args.expiry, account=account,
            validate_only=True, **_template_kwargs(args)).plan, err)
        chain = client.option_chain(plan.underlying, plan.expiry.isoformat(),
                                    strikes_around_spot=1)
        data = payoff_data(plan, now=chain.as_of, rate=conf.rate,
                           dividend_yield=conf.dividend_for(plan.underlying),
                           vol=conf.volatility_for(plan.underlying))
    path = write_payoff_html(data, Path(args.out))
    if args.json:
        print(json.dumps({"path": str(path), "title": data.title,
                          "max_profit": data.max_profit, "max_loss": data.max_loss,
                          "breakevens": data.breakevens, "spot": data.spot}, indent=2))
        return 0
    out.print(Text(f"{data.title}: max profit {_money(data.max_profit)}, max loss "
                   f"{_money(data.max_loss)}, break-even "
                   f"{', '.join(f'{b:,.2f}' for b in data.breakevens) or 'none'}"),
              soft_wrap=True)
    err.print(Text(f"payoff written to {path}"))
    return 0
