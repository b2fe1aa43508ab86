"""What a signal's commands do on a paper account: planned against the position, then placed.

Shared by the live pipeline (a paper lane places a signal's orders, ``explain`` shows the
plan) and by :mod:`sandtrade.signals.replay`, which carries a journaled signal out again by the
same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sandtrade.models import Order, OrderSide, OrderStatus
from sandtrade.signal_model import Command

if TYPE_CHECKING:
    from sandtrade.broker.paper import PaperBroker

__all__ = ["PlannedOrder", "place_commands", "plan_commands", "resolve_symbol"]


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


def plan_commands(broker: PaperBroker, account: str, commands: Sequence[Command]
                  ) -> list[tuple[Command, list[PlannedOrder] | str]]:
    """What each command does against the account as it is now: orders, or why none.

    The commands are planned in order, each seeing the orders the ones before it planned.
    """
    out: list[tuple[Command, list[PlannedOrder] | str]] = []
    shift: dict[str, float] = {}
    for cmd in commands:
        if cmd.action == "cancel":
            n = len(broker.working_orders(account, cmd.symbol))
            out.append((cmd, f"cancel {n} working order{'s' if n != 1 else ''}"))
            continue
        pos = _effective_position(broker, account, cmd.symbol) + shift.get(cmd.symbol, 0.0)
        if cmd.only_if == "long" and not pos > 0:
            out.append((cmd, f"nothing: the position is {pos:g}, not long"))
            continue
        if cmd.only_if == "short" and not pos < 0:
            out.append((cmd, f"nothing: the position is {pos:g}, not short"))
            continue
        orders: list[PlannedOrder] = []
        if cmd.action == "buy":
            orders.append(PlannedOrder(OrderSide.BUY, cmd.qty, cmd, ""))
        elif cmd.action == "sell":
            orders.append(PlannedOrder(OrderSide.SELL, cmd.qty, cmd, ""))
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


def place_commands(b: PaperBroker, account: str, commands: Sequence[Command], signal_id: str,
                   *, first_time: bool = False) -> tuple[list[Order], list[str], str | None]:
    """Carry out a signal's commands on the paper broker, in order, in one step: the orders
    placed, what each command did, and why it stopped (a rejected order) or None.

    Order ``n`` of the signal gets the client order id ``<signal_id>.<n>``: executed again
    (after a restart, or a replay into the same account), it does not trade twice.
    ``first_time`` (a signal received since the host started, executed once only) spares
    looking for earlier orders with those ids in the store.
    """
    placed: list[Order] = []
    notes: list[str] = []
    n = 0
    for cmd, what in plan_commands(b, account, commands):
        if cmd.action == "cancel":
            for o in b.working_orders(account, cmd.symbol):
                b.cancel(o.id, f"canceled by signal {signal_id}")
            notes.append(str(what))
            continue
        if isinstance(what, str):
            notes.append(what)
            continue
        for planned in what:
            order = b.submit(
                account, cmd.symbol, planned.side, planned.qty, type=cmd.order_type,
                limit_price=cmd.limit_price, stop_price=cmd.stop_price,
                client_order_id=f"{signal_id}.{n}", tag=f"signal {signal_id}",
                new_client_id=first_time)
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
