"""The options half of TradingService: strategy templates made into multi-leg orders, and
position groups measured.

:func:`build_plan` builds a template from the host's chain now, every refusal an
INVALID_ARGUMENT naming the request field (``strategy``, ``expiry`` or ``parameters.NAME``);
:func:`strategy_order` turns the plan into the SubmitOrderRequest whose legs then take
exactly SubmitOrder's path (``TradingServicer._multileg_op``): one path of checks, of
idempotency and of quotas. :func:`groups_op` reads an account's position groups from the
broker and :func:`group_to_pb` measures one: its legs' marks, greeks and P&L from the chain,
its entry prices from the fills of the order that opened it, and its bounds at the first
expiry (:func:`sandtrade.options.payoff.summarise`).
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from typing import Any

from sandtrade.broker.paper import PaperBroker
from sandtrade.errors import InvalidField, NotFound
from sandtrade.models import Fill, Leg, OptionRight, OrderClass, OrderSide, Position
from sandtrade.options.chain import ChainRow
from sandtrade.options.greeks import position_greeks
from sandtrade.options.payoff import PayoffLeg, summarise
from sandtrade.options.settings import OptionsSettings
from sandtrade.options.sources import OptionQuotes
from sandtrade.options.templates import TEMPLATES, StrategyPlan, TemplateError, build_strategy
from sandtrade.rpc import convert
from sandtrade.rpc.market import chain_of
from sandtrade.store.base import Store
from sandtrade.v1 import trading_pb2 as tpb

__all__ = ["GroupHeld", "build_plan", "group_to_pb", "groups_op", "groups_page",
           "strategy_order"]

MAX_TEXT = 128
#: A held group: its id and, per leg symbol, the signed units held and the multiplier.
GroupHeld = tuple[str, dict[str, tuple[float, float]]]
_WORD = re.compile(r"[A-Za-z_]+")


def _settings(options: OptionQuotes) -> OptionsSettings:
    settings = getattr(options.source, "settings", None)
    return settings if isinstance(settings, OptionsSettings) else OptionsSettings()


def _parameters(name: str, raw: dict[str, Any]) -> dict[str, Any]:
    """``raw`` checked against the template's signature: a number where it takes a number
    (numeric text is read as one), text where it takes text. Unknown names are left for
    :func:`build_strategy`, which lists the allowed ones."""
    signature = inspect.signature(TEMPLATES[name]).parameters
    out: dict[str, Any] = {}
    for key, value in raw.items():
        field = f"parameters.{key}"
        if key == "expiry":
            raise InvalidField(field, "give the expiry in the request's expiry field")
        kind = str(signature[key].annotation) if key in signature and key != "b" else ""
        if value is None:
            continue
        if "float" in kind:
            number = value
            if isinstance(value, str):
                try:
                    number = float(value)
                except ValueError:
                    number = None
            if isinstance(number, bool) or not isinstance(number, int | float) \
                    or not math.isfinite(number):
                raise InvalidField(field, f"{name}: {key} must be a number (got {value!r})")
            out[key] = float(number)
        elif kind.startswith("str"):
            if not isinstance(value, str):
                raise InvalidField(field, f"{name}: {key} must be text (got {value!r})")
            out[key] = value
        else:
            out[key] = value
    return out


def _template_field(message: str, name: str, given: set[str]) -> str:
    """The request field a template's refusal is about: the first parameter the message
    names, one the request gave first; ``expiry`` for the expiry; else ``parameters``."""
    allowed = set(inspect.signature(TEMPLATES[name]).parameters) - {"b"}
    words = _WORD.findall(message.removeprefix(f"{name}:"))
    for pool in (given, allowed):
        for word in words:
            if word in pool:
                return f"parameters.{word}"
    if "expiry" in words:
        return "expiry"
    return "parameters"


def build_plan(options: OptionQuotes | None, r: tpb.SubmitOptionStrategyRequest
               ) -> StrategyPlan:
    """The template ``r`` names, built from the host's chain of its underlying now."""
    if not r.strategy:
        raise InvalidField("strategy", f"required (one of: {', '.join(sorted(TEMPLATES))})")
    if r.strategy not in TEMPLATES:
        raise InvalidField("strategy", f"unknown strategy {r.strategy!r} (known: "
                           f"{', '.join(sorted(TEMPLATES))})")
    raw = convert.parameters_from_pb(r)
    params = _parameters(r.strategy, raw)
    if options is None:
        raise NotFound("this host has no option chains (its broker was given its own quote "
                       "provider)")
    chain = chain_of(options, r.underlying)
    try:
        return build_strategy(r.strategy, chain, expiry=r.expiry or "30d",
                              settings=_settings(options), **params)
    except TemplateError as e:
        raise InvalidField(_template_field(str(e), r.strategy, set(raw)), str(e)) from None


def strategy_order(plan: StrategyPlan, r: tpb.SubmitOptionStrategyRequest
                   ) -> tpb.SubmitOrderRequest:
    """The multi-leg SubmitOrderRequest of a built plan: ``r``'s quantity, limit (a positive
    limit on a credit is that credit), time in force, client order id and tag."""
    if not r.HasField("qty"):
        raise InvalidField("qty", "required: the number of spreads")
    if not (math.isfinite(r.qty) and r.qty > 0):
        raise InvalidField("qty", f"must be a number above 0 (got {r.qty})")
    for name in ("client_order_id", "tag"):
        if len(getattr(r, name)) > MAX_TEXT:
            raise InvalidField(name, f"at most {MAX_TEXT} characters "
                               f"(got {len(getattr(r, name))})")
    out = tpb.SubmitOrderRequest(
        account=r.account, symbol=plan.underlying, qty=r.qty, tif=r.tif,
        order_class=convert.class_to_pb(OrderClass.MLEG),
        client_order_id=r.client_order_id,
        tag=(f"{r.tag} " if r.tag else "") + f"template:{plan.name}")
    if r.HasField("limit_price"):
        limit = r.limit_price
        if not math.isfinite(limit):
            raise InvalidField("limit_price", f"must be a finite number (got {limit})")
        out.limit_price = -abs(limit) if plan.net_price < 0 < limit else limit
    for leg in plan.legs:
        convert.leg_to_pb(leg, out.legs.add())
    return out


def groups_op(account: str) -> Callable[[PaperBroker], list[GroupHeld]]:
    """The broker operation that reads ``account``'s open position groups, oldest first (by
    id: the ids of orders grow with the time they were created)."""

    def op(b: PaperBroker) -> list[GroupHeld]:
        if not b.ensure_account(account):
            raise NotFound(f"account {account!r} does not exist")
        out: list[GroupHeld] = []
        for group in b.position_groups(account):
            legs = {}
            for symbol, units in group.legs.items():
                inst = b.option_instrument(symbol) or b.instrument(symbol)
                legs[symbol] = (units, inst.multiplier if inst is not None else 1.0)
            out.append((group.id, legs))
        return sorted(out, key=lambda g: g[0])

    return op


def groups_page(groups: list[GroupHeld], size: int, token: str
                ) -> tuple[list[GroupHeld], str]:
    """One page of ``groups`` after ``token`` (the last id of the previous page), and the
    next page's token ("" on the last page). Ids grow with time, so a page still follows on
    when the group that ended the previous one was closed since."""
    start = sum(1 for g in groups if g[0] <= token) if token else 0
    page = groups[start:start + size]
    return page, page[-1][0] if len(groups) > start + size else ""


def _entry_prices(fills: list[Fill]) -> dict[str, float]:
    """Each symbol's average price over the fills of the order that opened a group."""
    totals: dict[str, tuple[float, float]] = {}
    for f in fills:
        qty, value = totals.get(f.symbol, (0.0, 0.0))
        totals[f.symbol] = (qty + f.qty, value + f.qty * f.price)
    return {s: value / qty for s, (qty, value) in totals.items() if qty > 0}


def group_to_pb(held: GroupHeld, account: str, store: Store, options: OptionQuotes | None,
                out: tpb.PositionGroup) -> tpb.PositionGroup:
    """Fill ``out`` with one position group measured (see the module)."""
    group_id, legs = held
    out.id, out.account = group_id, account
    order = store.get_order(group_id)
    if order is not None:
        convert.order_to_pb(order, out.order)
        out.underlying = order.symbol
    entry = _entry_prices(store.list_fills(account, order_id=group_id, limit=1000))

    def no_row(symbol: str) -> ChainRow | None:
        return None

    row = options.row if options is not None else no_row
    stock_price = options.last_price if options is not None else no_row
    payoff: list[PayoffLeg] = []
    sums = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    for symbol, (units, multiplier) in legs.items():
        price = entry.get(symbol, 0.0)
        g = position_greeks(Position(account=account, symbol=symbol, qty=units,
                                     avg_price=price, multiplier=multiplier),
                            row, stock_price)  # type: ignore[arg-type]
        quote = row(symbol) if g.symbol != g.underlying else None
        iv = quote.iv if quote is not None else None
        convert.position_greeks_to_pb(g, out.legs.add(), avg_price=price, iv=iv)
        out.underlying = out.underlying or g.underlying
        for k, v in enumerate((g.delta, g.gamma, g.theta, g.vega, g.market_value,
                               g.unrealized_pnl)):
            sums[k] += v
        side = OrderSide.BUY if units > 0 else OrderSide.SELL
        payoff.append(PayoffLeg.of(Leg(symbol=symbol, side=side), price, iv,
                                   quantity=abs(units)))
    convert.greeks_to_pb(sums[0], sums[1], sums[2], sums[3], out.greeks)
    out.market_value, out.unrealized_pnl = sums[4], sums[5]
    if any(p.right in (OptionRight.CALL, OptionRight.PUT) for p in payoff):
        conf = _settings(options) if options is not None else OptionsSettings()
        summary = summarise(payoff, rate=conf.rate,
                            dividend_yield=conf.dividend_for(out.underlying),
                            vol=conf.volatility_for(out.underlying))
        if summary.max_profit is not None:
            out.max_profit = summary.max_profit
        if summary.max_loss is not None:
            out.max_loss = summary.max_loss
        out.breakevens.extend(summary.breakevens)
    return out
