"""What a signal's commands do on a paper account: planned against the position, then placed.

Shared by the live pipeline (a paper lane places a signal's orders, ``explain`` shows the
plan) and by :mod:`sandtrade.signals.replay`, which carries a journaled signal out again by the
same rules.

A command sized by a quantity type (``$1000`` worth, 5 % of equity, risking $50 to the stop
loss) is sized here, when it runs, against the account and the price at that moment, in whole
lots (:func:`sized_quantity`); every order field beyond side, quantity, type and prices goes
to the order through one function, :func:`order_fields`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from sandtrade.models import (
    ExitSpec,
    Order,
    OrderClass,
    OrderSide,
    OrderSource,
    OrderStatus,
    OrderType,
    TimeInForce,
    order_class_problem,
)
from sandtrade.signal_model import SPREAD_ACTIONS, Command, SignalError, SignalRecord
from sandtrade.signals.spreads import ChainLookup, describe_spread, place_spread

if TYPE_CHECKING:
    from sandtrade.broker.paper import PaperBroker

__all__ = ["PlannedOrder", "answer_orders", "check_order_fields", "order_fields",
           "place_commands", "plan_commands", "resolve_symbol", "signal_order_source",
           "sized_quantity"]


@dataclass(frozen=True)
class PlannedOrder:
    """An order a command will place."""

    side: OrderSide
    qty: float
    command: Command
    note: str

    def describe(self) -> str:
        text = f"{self.side.value} {self.qty:g} {self.command.symbol}"
        if self.command.order_type != "market":
            prices = [f"{k} {v:g}" for k, v in (("stop", self.command.stop_price),
                                                 ("limit", self.command.limit_price))
                      if v is not None]
            text += f" {self.command.order_type.replace('_', '-')} ({', '.join(prices)})"
        else:
            text += " market"
        if self.command.size is not None:
            text += f" ({self.command.size.describe()})"
        if self.command.order_class != "simple":
            text += f" [{self.command.order_class}]"
        return f"{text}{' ' + self.note if self.note else ''}"


def _effective_position(broker: PaperBroker, account: str, symbol: str) -> float:
    """The position once the working market orders fill: what a target is measured from, so
    that two targets before the next bar do not both trade."""
    qty = broker.position_qty(account, symbol)
    for order in broker.working_orders(account, symbol):
        if order.type.value == "market" and order.qty is not None:
            left = order.qty - order.filled_qty
            qty += left if order.side is OrderSide.BUY else -left
    return qty


def plan_commands(broker: PaperBroker, account: str, commands: Sequence[Command],
                  price: float | None = None, chains: ChainLookup | None = None
                  ) -> list[tuple[Command, list[PlannedOrder] | str]]:
    """What each command does against the account as it is now: orders, or why none.

    The commands are planned in order, each seeing the orders the ones before it planned.
    ``price`` is the signal's own (its ``{{close}}``), for sizing when the market has none.
    A size that cannot be computed, or rounds to nothing, raises :class:`SignalError`.
    A spread command is described (its legs, what it can make and lose) when ``chains`` is
    given, to show; otherwise it is left to :func:`place_commands`.
    """
    out: list[tuple[Command, list[PlannedOrder] | str]] = []
    shift: dict[str, float] = {}
    for cmd in commands:
        if cmd.action in SPREAD_ACTIONS:
            out.append((cmd, describe_spread(broker, account, cmd, chains)
                        if chains is not None else "a multi-leg order"))
            continue
        if cmd.action == "cancel":
            n = len(broker.working_orders(account, cmd.symbol))
            out.append((cmd, f"cancel {n} working order{'s' if n != 1 else ''}"))
            continue
        # The position is read only by a command that needs it (a target, only_if, a size):
        # measuring it walks every order working in the symbol, thousands with brackets'
        # exits left behind, and a plain buy or sell of a quantity does not look at it.
        plain = cmd.action in ("buy", "sell") and cmd.size is None and cmd.only_if is None
        pos = 0.0 if plain else (_effective_position(broker, account, cmd.symbol)
                                 + shift.get(cmd.symbol, 0.0))
        if cmd.only_if == "long" and not pos > 0:
            out.append((cmd, f"nothing: the position is {pos:g}, not long"))
            continue
        if cmd.only_if == "short" and not pos < 0:
            out.append((cmd, f"nothing: the position is {pos:g}, not short"))
            continue
        orders: list[PlannedOrder] = []
        if cmd.action in ("buy", "sell"):
            qty = cmd.qty if cmd.size is None else \
                sized_quantity(broker, account, cmd, pos, price)
            orders.append(PlannedOrder(OrderSide(cmd.action), qty, cmd, ""))
        else:
            target = cmd.qty
            if abs(target - pos) < 1e-12:
                out.append((cmd, f"nothing: the position is already {pos:g}"))
                continue
            if pos != 0 and (pos > 0) != (target > 0) and target != 0:
                # A reversal: close, then open, placed together in this one step.
                close_side = OrderSide.SELL if pos > 0 else OrderSide.BUY
                orders.append(PlannedOrder(close_side, abs(pos), cmd,
                                           f"(close the {'long' if pos > 0 else 'short'})"))
                orders.append(PlannedOrder(OrderSide.BUY if target > 0 else OrderSide.SELL,
                                           abs(target), cmd,
                                           f"(open the {'long' if target > 0 else 'short'})"))
            else:
                diff = target - pos
                note = f"(position {pos:g} -> {target:g})"
                orders.append(PlannedOrder(OrderSide.BUY if diff > 0 else OrderSide.SELL,
                                           abs(diff), cmd, note))
        for o in orders:
            shift[cmd.symbol] = shift.get(cmd.symbol, 0.0) + (o.qty if o.side is OrderSide.BUY
                                                                else -o.qty)
        out.append((cmd, orders))
    return out


def signal_order_source(record: SignalRecord, *, replay: bool = False) -> OrderSource:
    """The source of the orders a signal places: its door (a TradingView webhook, gRPC, the
    Python client; ``replay`` when the journal is replayed), its id as ``ref`` and what a
    badge shows as ``label`` (the alert's comment, else its id)."""
    parsed = record.parsed or {}
    label = parsed.get("comment") or record.alert_id or ""
    kind = ("replay" if replay else _SIGNAL_DOORS.get(record.source, "grpc"))
    return OrderSource(kind=kind, ref=record.id[:128], label=str(label)[:256])


#: Where a journaled signal came from (its ``source``) -> the kind of its orders' source.
_SIGNAL_DOORS: dict[str, Literal["tradingview", "grpc", "client"]] = {
    "tradingview": "tradingview", "grpc": "grpc", "python": "client"}


def place_commands(b: PaperBroker, account: str, commands: Sequence[Command], signal_id: str,
                   *, first_time: bool = False, price: float | None = None,
                   chains: ChainLookup | None = None,
                   source: OrderSource | None = None
                   ) -> tuple[list[Order], list[str], str | None]:
    """Carry out a signal's commands on the paper broker, in order, in one step: the orders
    placed, what each command did, and why it stopped (a rejected order) or None.

    Order ``n`` of the signal gets the client order id ``<signal_id>.<n>``: executed again
    (after a restart, or a replay into the same account), it does not trade twice.
    ``first_time`` (a signal received since the host started, executed once only) spares
    looking for earlier orders with those ids in the store. Spread commands are built from
    ``chains`` and placed as multi-leg orders (:mod:`sandtrade.signals.spreads`). ``source``
    is set on every order (:func:`signal_order_source`).
    """
    placed: list[Order] = []
    notes: list[str] = []
    n = 0
    for cmd, what in plan_commands(b, account, commands, price):
        if cmd.action in SPREAD_ACTIONS:
            orders, done, failure = place_spread(b, account, cmd, signal_id, n, chains,
                                                 source)
            n += max(len(orders), 1)
            placed += orders
            if failure is not None:
                return placed, notes, failure
            notes += done
            continue
        if cmd.action == "cancel":
            for o in b.working_orders(account, cmd.symbol):
                b.cancel(o.id, f"canceled by signal {signal_id}")
            notes.append(str(what))
            continue
        if isinstance(what, str):
            notes.append(what)
            continue
        for k, planned in enumerate(what):
            order = b.submit(
                account, cmd.symbol, planned.side, planned.qty, type=cmd.order_type,
                limit_price=cmd.limit_price, stop_price=cmd.stop_price,
                client_order_id=f"{signal_id}.{n}", tag=f"signal {signal_id}",
                new_client_id=first_time, source=source,
                **(order_fields(cmd) if k == len(what) - 1 else _entry_fields(cmd)))
            n += 1
            placed.append(order)
            if order.status is OrderStatus.REJECTED:
                return placed, notes, (f"order {order.id} ({planned.describe()}) was "
                                       f"rejected: {order.reject_reason}")
            notes.append(f"{order.id}: {planned.describe()}")
    return placed, notes, None


def resolve_symbol(symbol: str, known: Sequence[str]) -> str | None:
    """``symbol`` as the host spells it: exact, or equal ignoring case and punctuation
    (TradingView's BTCUSD is the host's BTC-USD); None when unknown or ambiguous."""
    if symbol in known:
        return symbol

    def norm(s: str) -> str:
        return "".join(ch for ch in s.upper() if ch.isalnum())

    matches = [k for k in known if norm(k) == norm(symbol)]
    return matches[0] if len(matches) == 1 else None


def order_fields(cmd: Command) -> dict[str, Any]:
    """The order fields a command gives beyond side, quantity, type and prices, as keyword
    arguments of :meth:`PaperBroker.submit`: the one place they pass from a signal to the
    broker.

    A take profit and a stop loss make the order a bracket, one of them (or a trail on an
    order that is not itself a trailing stop) an OTO: the broker's order classes
    (:mod:`sandtrade.broker.legs`), which work the exits once the entry fills, sized to what
    filled. ``extended_hours`` has no effect on paper, which fills on every bar the market
    source gives.
    """
    fields: dict[str, Any] = {}
    if cmd.tif:
        fields["tif"] = cmd.tif
    for key in ("take_profit", "stop_loss", "trail_price", "trail_percent"):
        value = getattr(cmd, key)
        if value is not None:
            fields[key] = value
    return fields


def check_order_fields(cmd: Command) -> None:
    """Refuse now (:class:`SignalError` naming the field) what the broker would refuse
    about a command's order class whichever way the command trades: a bracket without a
    stop loss, a trailing stop as a bracket leg, a time in force an order class cannot have.
    Prices relative to the fill are checked by the broker when the order is placed."""
    if cmd.action in SPREAD_ACTIONS:  # checked by signals.spreads.check_spreads
        return
    fields = order_fields(cmd)
    if len(fields) <= ("tif" in fields) and cmd.order_type != "trailing_stop":
        return
    side = OrderSide.BUY if cmd.action == "buy" or (cmd.action == "target" and cmd.qty > 0) \
        else OrderSide.SELL
    try:
        order = Order.model_construct(
            id="check", account="check", symbol=cmd.symbol, side=side,
            type=OrderType(cmd.order_type), qty=1.0,
            tif=TimeInForce(fields.get("tif") or "gtc"),
            order_class=OrderClass(cmd.order_class), **{
                k: v for k, v in fields.items() if k != "tif"})
        problem = order_class_problem(order)
    except ValueError as e:
        problem = str(e)
    if problem is not None:
        field, _, why = problem.partition(": ")
        raise SignalError(why or problem, field=field.split(" ")[0] if why else None)


def _entry_fields(cmd: Command) -> dict[str, Any]:
    """:func:`order_fields` without the exits: for the orders of a command that close the
    other side first (a reversal's exits belong to its opening order only)."""
    fields = order_fields(cmd)
    for key in ("take_profit", "stop_loss", "trail_price", "trail_percent"):
        fields.pop(key, None)
    return fields


def _stop_distance(cmd: Command, entry: float) -> float:
    """How far the stop loss is from ``entry``, in price."""
    if cmd.stop_loss is not None:
        sl: ExitSpec = cmd.stop_loss
        if sl.price is not None:
            return abs(entry - sl.price)
        if sl.percent is not None:
            return entry * sl.percent / 100
        return sl.amount or 0.0
    if cmd.trail_price is not None:
        return cmd.trail_price
    return entry * (cmd.trail_percent or 0.0) / 100


def sized_quantity(b: PaperBroker, account: str, cmd: Command, position: float,
                   signal_price: float | None) -> float:
    """The quantity of a command sized by its ``size``, in whole lots of the symbol, against
    the account now: its equity, ``position`` (once the working market orders fill), and the
    order's price (its limit or stop price, else the last price, else the signal's).

    Raises :class:`SignalError` naming the computation when no price is known or the size
    rounds to nothing: ``dollar_amount 50 at 187.42 is 0.27 shares, which rounds to 0 whole
    shares``.
    """
    spec = cmd.size
    assert spec is not None
    if spec.type == "default":
        raise SignalError(f"{cmd.action} needs a quantity, and no default size was given",
                          field=spec.field)
    v = f"{spec.value:g}"
    inst = b.instrument(cmd.symbol)
    lot = inst.lot_size if inst is not None else 1.0
    if spec.type == "percent_of_position":
        raw = abs(position) * spec.value / 100
        computation = f"percent_of_position {v} of a position of {position:g}"
    else:
        price = cmd.limit_price or cmd.stop_price or b.last_price(cmd.symbol) or signal_price
        if price is None:
            raise SignalError(f"no price for {cmd.symbol} to size {spec.type} {v}: add "
                              '"price": {{close}} to the alert, or trade a symbol the market '
                              "source covers", field=spec.field)
        if spec.type == "dollar_amount":
            raw, computation = spec.value / price, f"dollar_amount {v} at {price:g}"
        elif spec.type == "percent_of_equity":
            equity = b.equity(account)
            raw = equity * spec.value / 100 / price
            computation = f"percent_of_equity {v} of {equity:.2f} at {price:g}"
        else:
            risk = spec.value if spec.type == "risk_dollar_amount" else \
                b.equity(account) * spec.value / 100
            distance = _stop_distance(cmd, price)
            if distance <= 0:
                raise SignalError(f"{spec.type} {v}: the stop loss is at the entry price "
                                  f"({price:g}), so no size risks {risk:.2f}",
                                  field=spec.field)
            raw = risk / distance
            computation = (f"{spec.type} {v} ({risk:.2f} at risk) with the stop loss "
                           f"{distance:g} from {price:g}")
    lots = math.floor(raw / lot + 1e-9)
    qty = round(lots * lot, 12)
    if qty <= 0:
        if lot == 1:
            said = f"{raw:.2f} shares, which rounds to 0 whole shares"
        else:
            said = f"{raw:.6g} units, which rounds to 0 in lots of {lot:g}"
        raise SignalError(f"{computation} is {said}", field=spec.field)
    return qty


def answer_orders(commands: Sequence[Command],
                  spreads: Sequence[dict[str, Any] | None] | None = None
                  ) -> list[dict[str, Any]]:
    """What the commands will do, for the sender's answer: one entry per command, such as
    ``{"symbol": "AAPL", "side": "buy", "qty": 10, "type": "market", "class": "simple"}``.

    ``side`` is buy or sell, close (the whole position), long or short (a target position of
    ``qty``) or cancel; ``qty`` is None when it is computed when the command runs
    (``size`` says how) or is the whole position; ``if`` names the position a command
    waits for (TradersPost's "close the short first").

    A spread is class ``mleg``, side ``open`` (``qty`` spreads) or ``close`` (every open
    group of its ``template``); ``spreads`` (per command, as built when received:
    :func:`~sandtrade.signals.spreads.check_spreads`) adds its ``legs``, ``expiration``,
    ``net_price`` at the marks, ``max_profit``, ``max_loss`` and ``breakevens``.
    """
    out: list[dict[str, Any]] = []
    for i, cmd in enumerate(commands):
        entry: dict[str, Any] = {"symbol": cmd.symbol}
        if cmd.action in SPREAD_ACTIONS:
            entry.update(side="open" if cmd.action == "spread" else "close",
                         qty=cmd.qty if cmd.action == "spread" else None,
                         type="limit" if cmd.limit_price is not None else "market")
            entry["class"] = "mleg"
            for key in ("template", "expiry", "params", "limit_price", "price_effect", "tif"):
                if getattr(cmd, key) is not None:
                    entry[key] = getattr(cmd, key)
            if cmd.legs is not None:
                entry["legs"] = [{"symbol": leg.symbol, "side": leg.side.value,
                                  "ratio": leg.ratio} for leg in cmd.legs]
            built = spreads[i] if spreads is not None and i < len(spreads) else None
            if built:
                entry.update(built)
            out.append(entry)
            continue
        if cmd.action == "cancel":
            entry["side"] = "cancel"
            out.append(entry)
            continue
        if cmd.action == "target":
            entry["side"] = "close" if cmd.qty == 0 else ("long" if cmd.qty > 0 else "short")
            entry["qty"] = abs(cmd.qty) if cmd.qty else None
        else:
            entry["side"] = cmd.action
            entry["qty"] = None if cmd.size is not None else cmd.qty
            if cmd.size is not None:
                entry["size"] = cmd.size.describe()
        entry["type"] = cmd.order_type
        entry["class"] = cmd.order_class
        for key in ("limit_price", "stop_price", "trail_price", "trail_percent", "tif"):
            if getattr(cmd, key) is not None:
                entry[key] = getattr(cmd, key)
        for key in ("take_profit", "stop_loss"):
            spec = getattr(cmd, key)
            if spec is not None:
                entry[key] = spec.model_dump(exclude_none=True)
        if cmd.extended_hours:
            entry["extended_hours"] = True
        if cmd.only_if:
            entry["if"] = cmd.only_if
        out.append(entry)
    return out
