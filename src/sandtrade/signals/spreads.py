"""What a signal's spread commands do: multi-leg options orders built, checked and placed.

A ``spread`` command (:class:`~sandtrade.signal_model.Command`) names a template of the options
room (:func:`~sandtrade.options.templates.build_strategy`) or explicit legs. A template is built
from the host's chain of the underlying when the command runs (:data:`ChainLookup`, the host's
``OptionQuotes.chain``: the signals room never imports the host); it is also built when the
signal is received (:func:`check_spreads`), so that a template the chain cannot make is refused
at once with a 4xx naming the parameter, and the sender's answer shows the legs.

The order goes to the broker's :meth:`~sandtrade.broker.multileg.MultiLeg.submit_multileg`
with the signal's client order id ``<signal_id>.<n>`` (executed again, it does not trade
twice), tagged ``signal <id> template:<name>``: the tag is how ``close_spread`` later finds the
position groups opened from a template (:func:`open_groups`), each closed as one order by
:meth:`~sandtrade.broker.multileg.MultiLeg.close_group`.

A limit price is written as a positive number per spread; whether it is paid (a debit) or
received (a credit) is the command's ``price_effect``, else the spread's own at its legs' marks
when it is built (an iron condor sold at the marks is a credit): :func:`signed_limit`.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from sandtrade.errors import OrderRejected
from sandtrade.models import (
    Leg,
    LegIntent,
    Order,
    OrderClass,
    OrderSide,
    OrderSource,
    OrderStatus,
    OrderType,
)
from sandtrade.options.chain import OptionChain
from sandtrade.options.contracts import OptionContract
from sandtrade.options.payoff import PayoffLeg, summarise
from sandtrade.options.templates import TEMPLATES, TemplateError, build_strategy
from sandtrade.signal_model import Command, SignalError

if TYPE_CHECKING:
    from sandtrade.broker.paper import PaperBroker

__all__ = ["ChainLookup", "SpreadPlan", "build_spread", "check_spreads", "describe_spread",
           "open_groups", "place_spread", "tag_template", "template_parameters",
           "template_tag"]

#: underlying -> its option chain now (None: not priced). The host's ``OptionQuotes.chain``.
ChainLookup = Callable[[str], OptionChain | None]


def template_parameters(name: str) -> tuple[str, ...]:
    """The parameters template ``name`` takes besides its expiry."""
    return tuple(p for p in inspect.signature(TEMPLATES[name]).parameters if p != "b")


def template_tag(signal_id: str, template: str | None) -> str:
    """The tag of an order a signal places: ``signal <id>``, plus ``template:<name>`` on a
    spread opened from a template (how :func:`open_groups` finds it again)."""
    return f"signal {signal_id}" + (f" template:{template}" if template else "")


def tag_template(tag: str | None) -> str | None:
    """The template an order's tag names (``... template:iron_condor``), or None."""
    for word in (tag or "").split():
        if word.startswith("template:"):
            return word.removeprefix("template:") or None
    return None


@dataclass(frozen=True)
class SpreadPlan:
    """A spread command as built now: its legs, their net price at the marks (per spread,
    positive a debit, None when a leg is not in the chain), the limit the order gets (signed
    as the broker takes it), and what it can make and lose (dollars per spread)."""

    underlying: str
    legs: list[Leg]
    expiry: date | None
    net_mark: float | None
    limit: float | None
    max_profit: float | None
    max_loss: float | None
    breakevens: list[float]

    def to_json(self) -> dict[str, Any]:
        """For the sender's answer and the journal."""
        return {"legs": [{"symbol": leg.symbol, "side": leg.side.value, "ratio": leg.ratio}
                         for leg in self.legs],
                "expiration": self.expiry.isoformat() if self.expiry else None,
                "net_price": self.net_mark, "max_profit": self.max_profit,
                "max_loss": self.max_loss, "breakevens": self.breakevens}

    def describe(self) -> str:
        """The legs and what the spread can make and lose, for ``signals check``."""
        legs = ", ".join(f"{leg.side.value} {leg.ratio} {leg.symbol}" for leg in self.legs)
        text = f"legs: {legs}"
        if self.net_mark is not None:
            kind = "debit" if self.net_mark > 0 else "credit"
            text += f"; net {kind} {abs(self.net_mark):.2f} per spread at the marks"
        if self.limit is not None:
            text += f"; limit {abs(self.limit):g} {'debit' if self.limit > 0 else 'credit'}"
        text += f"; max profit {_dollars(self.max_profit)}, max loss {_dollars(self.max_loss)}"
        if self.breakevens:
            text += f"; break-evens {', '.join(f'{b:g}' for b in self.breakevens)}"
        return text


def _dollars(x: float | None) -> str:
    return "unlimited" if x is None else f"${x:,.2f}"


def _template_field(cmd: Command, message: str) -> str:
    """The parameter a template's refusal names (``iron_condor: short_delta 1.5 ...``)."""
    assert cmd.template is not None
    word = message.removeprefix(f"{cmd.template}: ").split(" ", 1)[0]
    names = ("expiry", "far_expiry", *template_parameters(cmd.template))
    if word.startswith("far_") and "far_expiry" in (cmd.params or {}):
        return "far_expiry"
    if word in names:
        return word
    return next((p for p in (cmd.params or {}) if p in message), "template")


def _chain(cmd: Command, chains: ChainLookup | None, symbol_field: str) -> OptionChain:
    chain = chains(cmd.symbol) if chains is not None else None
    if chain is None or chain.spot is None:
        raise SignalError(f"no option chain for {cmd.symbol} now: its options are priced from "
                          f"the market feed's price of {cmd.symbol}, which has none yet",
                          field=symbol_field)
    return chain


def signed_limit(cmd: Command, net_mark: float | None, where: str = "limit_price"
                 ) -> float | None:
    """The command's limit as the broker takes it: + a debit paid, - a credit received."""
    if cmd.limit_price is None:
        return None
    effect = cmd.price_effect
    if effect is None:
        if net_mark is None:
            raise SignalError("say whether the limit is a debit or a credit (price_effect), "
                              "or sign it (negative: a credit): not every leg is in the chain "
                              "to tell", field=where)
        effect = "debit" if net_mark > 0 else "credit"
    return abs(cmd.limit_price) if effect == "debit" else -abs(cmd.limit_price)


def build_spread(cmd: Command, chains: ChainLookup | None, *,
                 symbol_field: str = "symbol", expiry_field: str = "expiry") -> SpreadPlan:
    """Build a ``spread`` command now: its template from the chain, or its legs priced at the
    chain's marks; :class:`SignalError` names the field that cannot be met."""
    if cmd.template is not None:
        params: dict[str, Any] = dict(cmd.params or {})
        try:
            plan = build_strategy(cmd.template, _chain(cmd, chains, symbol_field),
                                  expiry=cmd.expiry or "30d", **params)
        except TemplateError as e:
            field = _template_field(cmd, str(e))
            raise SignalError(str(e), field=expiry_field if field == "expiry" else field
                              ) from None
        return SpreadPlan(cmd.symbol, plan.legs, plan.expiry, plan.net_price,
                          signed_limit(cmd, plan.net_price), plan.max_profit, plan.max_loss,
                          plan.breakevens)
    legs = list(cmd.legs or ())
    chain = chains(cmd.symbol) if chains is not None else None
    prices: list[float | None] = []
    ivs: list[float | None] = []
    expiries: list[date] = []
    for i, leg in enumerate(legs):
        try:
            contract = OptionContract.parse(leg.symbol)
        except ValueError:  # the stock leg
            prices.append(chain.spot if chain is not None else None)
            ivs.append(None)
            continue
        expiries.append(contract.expiry)
        if chain is not None and contract.expiry < chain.as_of.date():
            raise SignalError(f"{contract.expiry} has passed (the chain is of "
                              f"{chain.as_of.date()})", field=f"legs[{i}].expiry")
        row = chain.get(contract.symbol) if chain is not None else None
        prices.append(row.mark if row is not None else None)
        ivs.append(row.iv if row is not None else None)
    net: float | None = None
    max_profit = max_loss = None
    breakevens: list[float] = []
    if all(p is not None for p in prices) and legs:
        payoff = [PayoffLeg.of(leg, p or 0.0, iv) for leg, p, iv in zip(legs, prices, ivs,
                                                                          strict=True)]
        net = round(sum(p.qty * p.multiplier * p.price for p in payoff) / 100.0, 6)
        summary = summarise(payoff)
        max_profit, max_loss, breakevens = summary.max_profit, summary.max_loss, \
            summary.breakevens
    return SpreadPlan(cmd.symbol, legs, min(expiries) if expiries else None, net,
                      signed_limit(cmd, net), max_profit, max_loss, breakevens)


def _check_limit(plan: SpreadPlan, field: str) -> None:
    """A limit no price of the underlying can reach at expiry (a debit for an iron condor)
    is refused now, as the broker would refuse it."""
    expiries = {c.expiry for c in map(_contract, plan.legs) if c is not None}
    if plan.limit is None or plan.net_mark is None or len(expiries) != 1:
        return
    value = plan.net_mark * 100.0  # dollars per spread at the marks
    if plan.max_profit is not None and plan.limit * 100.0 > value + plan.max_profit + 1e-6:
        raise SignalError(f"a net debit of {plan.limit:.2f} per spread is impossible: the "
                          f"legs are worth at most {(value + plan.max_profit) / 100:.2f} at "
                          "expiry (a credit spread is opened for a credit)", field=field)
    if plan.max_loss is not None and plan.limit * 100.0 < value - plan.max_loss - 1e-6:
        raise SignalError(f"a net credit of {-plan.limit:.2f} per spread is impossible: the "
                          f"legs are worth at least {(value - plan.max_loss) / 100:.2f} at "
                          "expiry (a credit can be at most the spread's width)", field=field)


def _contract(leg: Leg) -> OptionContract | None:
    try:
        return OptionContract.parse(leg.symbol)
    except ValueError:
        return None


def _check_order(cmd: Command, plan: SpreadPlan, max_legs: int) -> None:
    """What the broker refuses of any multi-leg order, refused now naming the field."""
    if len(plan.legs) > max_legs:
        raise SignalError(f"{len(plan.legs)} legs; this host takes 2 to {max_legs} (the "
                          "operator's broker.max_legs)", field="legs")
    try:
        Order(id="check", account="check", symbol=cmd.symbol, side=OrderSide.BUY,
              type=OrderType.LIMIT if plan.limit is not None else OrderType.MARKET,
              qty=cmd.qty, limit_price=plan.limit, order_class=OrderClass.MLEG,
              legs=plan.legs, tif=cmd.tif or "day")
    except ValidationError as e:
        msg = str(e.errors()[0]["msg"]).removeprefix("Value error, ")
        field, _, why = msg.partition(": ")
        raise SignalError(why or msg, field=field if why else "legs") from None


def check_spreads(commands: Sequence[Command], chains: ChainLookup | None, *, max_legs: int,
                  symbol_field: str = "symbol", expiry_field: str = "expiry",
                  limit_field: str = "limit_price") -> list[dict[str, Any] | None]:
    """Build each spread command now, as it would run (refused with :class:`SignalError`
    naming the field when it cannot be); per command, the spread as JSON (None for others)."""
    out: list[dict[str, Any] | None] = []
    for cmd in commands:
        if cmd.action != "spread":
            out.append(None)
            continue
        plan = build_spread(cmd, chains, symbol_field=symbol_field, expiry_field=expiry_field)
        _check_order(cmd, plan, max_legs)
        _check_limit(plan, limit_field)
        out.append(json.loads(json.dumps(plan.to_json())))
    return out


def open_groups(b: PaperBroker, account: str, underlying: str, template: str) -> list[str]:
    """The account's open position groups on ``underlying`` opened from ``template`` (the ids
    of the orders that opened them), oldest first."""
    out = []
    for group in b.position_groups(account):
        try:
            opening = b.get_order(group.id)
        except OrderRejected:
            continue
        if opening.symbol == underlying and tag_template(opening.tag) == template:
            out.append(group.id)
    return out


def describe_spread(b: PaperBroker, account: str, cmd: Command, chains: ChainLookup | None
                    ) -> str:
    """What a spread command would do now, for ``signals check``."""
    if cmd.action == "close_spread":
        assert cmd.template is not None
        groups = open_groups(b, account, cmd.symbol, cmd.template)
        if not groups:
            return f"nothing: no open {cmd.template} on {cmd.symbol}"
        return (f"close {len(groups)} position group{'s' if len(groups) != 1 else ''} "
                f"({', '.join(groups)}) at market")
    try:
        return build_spread(cmd, chains).describe()
    except SignalError as e:
        return f"cannot be built now: {e}"


def place_spread(b: PaperBroker, account: str, cmd: Command, signal_id: str, n: int,
                 chains: ChainLookup | None, source: OrderSource | None = None
                 ) -> tuple[list[Order], list[str], str | None]:
    """Place a spread command's orders (client order ids ``<signal_id>.<n>`` on): the
    orders, what was done, and why it stopped (a refusal) or None."""
    placed: list[Order] = []
    if cmd.action == "close_spread":
        assert cmd.template is not None
        groups = open_groups(b, account, cmd.symbol, cmd.template)
        if not groups:
            return [], [f"nothing: no open {cmd.template} on {cmd.symbol}"], None
        for k, group in enumerate(groups):
            try:
                order = b.close_group(account, group, client_order_id=f"{signal_id}.{n + k}",
                                      tag=template_tag(signal_id, None), source=source)
            except OrderRejected as e:
                return placed, [], f"closing {group}: {e}"
            placed.append(order)
            if order.status is OrderStatus.REJECTED:
                return placed, [], f"order {order.id} (close {group}) was rejected: " \
                    f"{order.reject_reason}"
        return placed, [f"{o.id}: close {o.parent_id} ({cmd.template})" for o in placed], None
    client_id = f"{signal_id}.{n}"
    first = b.find_client_order(account, client_id)
    if first is not None:  # executed before (a restart, a replay into the account)
        return [first], [f"{first.id}: placed before"], None
    try:
        plan = build_spread(cmd, chains)
        order = b.submit_multileg(
            account, [leg.model_copy(update={"intent": LegIntent.OPEN})
                      if cmd.template is not None else leg for leg in plan.legs],
            cmd.qty, limit_price=plan.limit, tif=cmd.tif or "day",
            client_order_id=client_id, tag=template_tag(signal_id, cmd.template),
            source=source)
    except (SignalError, OrderRejected) as e:
        return [], [], str(e)
    if order.status is OrderStatus.REJECTED:
        return [order], [], f"order {order.id} ({cmd.describe()}) was rejected: " \
            f"{order.reject_reason}"
    return [order], [f"{order.id}: {cmd.describe()}; {plan.describe()}"], None
