"""What a signal is: the commands it carries, what was read from its body, and its record.

A *signal* is an instruction from outside (a TradingView alert, a Python program, a replay of
the journal). Its body is parsed by a format (:mod:`sandtrade.signals.formats`) into a
:class:`ParsedSignal`: the fields a person wrote, plus the ordered :class:`Command` list they
mean. The host journals a :class:`SignalRecord` for every signal it receives, accepted or not,
and moves it through its lifecycle::

    received -> rejected                       (the body or the sender is refused)
    received -> validated -> routed -> executed (its commands were carried out)
                                     -> failed   (its destination refused or broke)
                          -> dropped           (a route said to drop it)

Each step is kept in ``history`` with its time and reason.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from sandtrade.errors import SandtradeError
from sandtrade.models import ExitSpec, Leg

__all__ = ["ACTIONS", "QUANTITY_TYPES", "SPREAD_ACTIONS", "Command", "ParsedSignal", "SignalError",
           "SignalRecord", "SignalStatus", "SizeSpec", "Step"]

#: Every action a signal may name, and what it does.
ACTIONS: dict[str, str] = {
    "buy": "buy QTY (adds to a long, or reduces a short)",
    "sell": "sell QTY (reduces a long, or adds to a short)",
    "close": "close the whole position in the symbol",
    "flat": "the same as close: target position 0",
    "long": "target position +QTY: close a short first, then buy up to QTY",
    "short": "target position -QTY: close a long first, then sell down to -QTY",
    "target": "target position QTY (signed): buy or sell the difference",
}
#: What text and TradersPost bodies may say besides: cancel the symbol's working orders.
CANCEL = "cancel"
#: A command's actions on multi-leg options orders: open a spread (a template built from the
#: chain when it runs, or explicit legs), close the open spreads of a template.
SPREAD_ACTIONS = ("spread", "close_spread")


class SignalError(SandtradeError):
    """A signal body that cannot be read: ``field`` names where, the message says what."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.detail = message


class SignalStatus(StrEnum):
    """Where a signal is in its life."""

    RECEIVED = "received"
    REJECTED = "rejected"
    VALIDATED = "validated"
    ROUTED = "routed"
    EXECUTED = "executed"
    FAILED = "failed"
    DROPPED = "dropped"

    @property
    def final(self) -> bool:
        return self in (SignalStatus.REJECTED, SignalStatus.EXECUTED, SignalStatus.FAILED,
                        SignalStatus.DROPPED)


#: How a quantity may be given (TradersPost's ``quantityType``), and what it means.
QUANTITY_TYPES: dict[str, str] = {
    "fixed_quantity": "that many units",
    "dollar_amount": "units worth that many dollars at the price when the command runs",
    "percent_of_equity": "units worth that percent of the account's equity",
    "percent_of_position": "that percent of the position held when the command runs",
    "risk_dollar_amount": "units that lose that many dollars if the stop loss is hit",
    "risk_percent_of_equity": "units that lose that percent of equity if the stop loss is hit",
}


class SizeSpec(BaseModel):
    """A size computed when the command runs, against the account at that moment.

    ``default`` stands for "the alert named no quantity" between reading a body and routing
    it: the pipeline replaces it by the route's or ``[signals] default_quantity``, so a
    journaled command never holds it. ``field`` is where the sender wrote (or would have
    written) the quantity, for messages.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["default", "dollar_amount", "percent_of_equity", "percent_of_position",
                  "risk_dollar_amount", "risk_percent_of_equity"]
    value: float = 0.0
    field: str = "qty"

    def describe(self) -> str:
        """``$1000 worth``, ``5% of equity`` ..."""
        v = _num(self.value)
        return {"default": "the default quantity",
                "dollar_amount": f"${v} worth",
                "percent_of_equity": f"{v}% of equity",
                "percent_of_position": f"{v}% of the position",
                "risk_dollar_amount": f"a size risking ${v} to the stop loss",
                "risk_percent_of_equity": f"a size risking {v}% of equity to the stop loss",
                }[self.type]


class Command(BaseModel):
    """One thing a signal asks for, in the order it asks.

    ``buy``/``sell`` trade ``qty``, or the quantity ``size`` says when the command runs (then
    ``qty`` is 0); ``target`` brings the position to ``qty`` (signed), which is how close,
    flat, long N and short N are carried out: the difference is computed when the command
    runs, against the position at that moment, so a reversal is one step.

    ``take_profit``/``stop_loss`` make the order an entry with its exits (both: a bracket;
    one: OTO). ``trail_price``/``trail_percent`` with ``order_type`` ``trailing_stop`` make
    the order itself a trailing stop; with another order type, they are a trailing stop loss
    attached to the entry. ``tif`` is the time in force (day, gtc, ioc, fok).

    ``spread`` opens ``qty`` spreads of a multi-leg options order on the underlying
    ``symbol``: explicit ``legs``, or ``template`` (one of the options room's templates) with
    its ``expiry`` selector and ``params``, built from the host's chain when the command runs.
    ``limit_price`` is then the net price per spread as a positive number, a debit or a credit
    as ``price_effect`` says (None: as the spread is at its legs' marks when it runs).
    ``close_spread`` closes, each as one order, the account's open position groups opened
    from ``template`` on ``symbol``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    action: Literal["buy", "sell", "target", "cancel", "spread", "close_spread"]
    symbol: str
    qty: float
    order_type: Literal["market", "limit", "stop", "stop_limit", "trailing_stop"] = "market"
    limit_price: float | None = None
    stop_price: float | None = None
    #: Only when the position is on this side (TradersPost's "exit the short, then buy").
    only_if: Literal["long", "short"] | None = None
    size: SizeSpec | None = None
    take_profit: ExitSpec | None = None
    stop_loss: ExitSpec | None = None
    trail_price: float | None = None
    trail_percent: float | None = None
    tif: str | None = None
    extended_hours: bool = False
    legs: list[Leg] | None = None
    template: str | None = None
    expiry: str | None = None
    params: dict[str, float | str] | None = None
    price_effect: Literal["debit", "credit"] | None = None

    @property
    def order_class(self) -> str:
        """simple, bracket (take profit and stop loss), oto (one exit attached) or mleg (a
        spread)."""
        if self.action in SPREAD_ACTIONS:
            return "mleg"
        stops = self.stop_loss is not None or (
            self.order_type != "trailing_stop" and
            (self.trail_price is not None or self.trail_percent is not None))
        if self.take_profit is not None and stops:
            return "bracket"
        return "oto" if self.take_profit is not None or stops else "simple"

    def describe(self) -> str:
        """The command as a person would say it."""
        if self.action == "cancel":
            return f"cancel the working orders in {self.symbol}"
        if self.action in SPREAD_ACTIONS:
            return self._describe_spread()
        if self.action == "target":
            if self.qty == 0:
                text = f"close the {self.symbol} position (target 0)"
            else:
                text = f"bring {self.symbol} to a position of {_num(self.qty)} " \
                       f"({'long' if self.qty > 0 else 'short'})"
        elif self.size is not None:
            text = f"{self.action} {self.size.describe()} of {self.symbol}"
        else:
            text = f"{self.action} {_num(self.qty)} {self.symbol}"
        if self.order_type == "trailing_stop":
            trail = f"${_num(self.trail_price)}" if self.trail_price is not None else \
                f"{_num(self.trail_percent or 0)}%"
            text += f" as a trailing stop {trail} behind the best price"
        elif self.order_type != "market":
            prices = []
            if self.stop_price is not None:
                prices.append(f"stop {_num(self.stop_price)}")
            if self.limit_price is not None:
                prices.append(f"limit {_num(self.limit_price)}")
            text += f" as a {self.order_type.replace('_', '-')} order ({', '.join(prices)})"
        else:
            text += " at market"
        exits = [f"take profit {_exit(self.take_profit)}" if self.take_profit else "",
                 f"stop loss {_exit(self.stop_loss)}" if self.stop_loss else ""]
        if self.order_type != "trailing_stop":
            if self.trail_price is not None:
                exits.append(f"trailing stop ${_num(self.trail_price)}")
            if self.trail_percent is not None:
                exits.append(f"trailing stop {_num(self.trail_percent)}%")
        if any(exits):
            text += f", {self.order_class}: " + ", ".join(e for e in exits if e)
        if self.tif:
            text += f", time in force {self.tif}"
        if self.extended_hours:
            text += ", extended hours"
        if self.only_if:
            text = f"if the position is {self.only_if}: {text}"
        return text

    def _describe_spread(self) -> str:
        name = (self.template or "").replace("_", " ")
        if self.action == "close_spread":
            return f"close every open {name} on {self.symbol} at market"
        if self.template is not None:
            params = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}"
                               for k, v in (self.params or {}).items())
            text = f"open {_num(self.qty)} {name} on {self.symbol}, expiry {self.expiry}" + \
                (f", {params}" if params else "")
        else:
            legs = ", ".join(f"{leg.side.value} {leg.ratio} {leg.symbol}"
                             for leg in self.legs or ())
            text = f"open {_num(self.qty)} spread{'s' if self.qty != 1 else ''} on " \
                   f"{self.symbol}: {legs}"
        if self.limit_price is not None:
            effect = self.price_effect or "debit or credit as the legs are marked"
            text += f", limit {_num(self.limit_price)} ({effect}) per spread"
        else:
            text += ", at market"
        if self.tif:
            text += f", time in force {self.tif}"
        return text


class ParsedSignal(BaseModel):
    """What a format read from a body."""

    model_config = ConfigDict(extra="forbid")

    format: str
    commands: list[Command]
    symbol: str | None = None
    action: str | None = None
    qty: float | None = None
    price: float | None = Field(None, description="The price at alert time, e.g. {{close}}.")
    account: str | None = None
    strategy: str | None = None
    alert_id: str | None = None
    idempotency_key: str | None = None
    comment: str | None = None
    passphrase: str | None = Field(None, repr=False, exclude=True)
    #: Fields the format read, as written (for ``signals check`` and the journal).
    fields: dict[str, Any] = Field(default_factory=dict)
    #: Fields of the body that no format reads (``confidence``, ``Time``), as written: not
    #: fatal, but shown wherever the signal is, so that a typo is seen.
    ignored_fields: list[str] = Field(default_factory=list)
    #: ``strategy`` names an options template (and no ``template`` field does): the signal
    #: goes to a strategy of this host of that name if there is one, else it trades the
    #: template (``commands``).
    template_from_strategy: bool = False


#: Steps after which nothing went wrong yet and nothing was done yet: no reason to give.
_ON_THE_WAY = frozenset({SignalStatus.VALIDATED, SignalStatus.ROUTED})


class Step(BaseModel):
    """One step of a signal's life."""

    status: SignalStatus
    at: datetime
    reason: str = ""


class SignalRecord(BaseModel):
    """A journaled signal."""

    id: str
    source: str
    received_at: datetime
    raw_body: str
    format: str = ""
    account: str = ""
    destination: str = ""
    status: SignalStatus = SignalStatus.RECEIVED
    reason: str = ""
    idempotency_key: str | None = None
    alert_id: str | None = None
    parsed: dict[str, Any] | None = None
    token_id: str | None = None
    orders: list[str] = Field(default_factory=list)
    #: Bars the market feed had worked when the signal executed (for a faithful replay).
    market_position: int | None = None
    #: Where its price comes from, for a paper account: ``feed`` (a market source covers
    #: its symbol), ``signal`` (the price it carried), ``last`` (the account's last signal
    #: price of the symbol); None when it trades nothing or goes elsewhere. Decided when it
    #: is received (the sender's answer says it) and again when it executes.
    price_source: Literal["feed", "signal", "last"] | None = None
    history: list[Step] = Field(default_factory=list)
    #: The commands ``parsed["commands"]`` holds, as validated when the signal was read
    #: (with that list, so that a record whose ``parsed`` changed reads its own).
    _commands: tuple[list[Any], tuple[Command, ...]] | None = PrivateAttr(None)

    def step(self, status: SignalStatus, at: datetime, reason: str = "") -> None:
        """Move to ``status``, remembering when and why.

        The step keeps ``reason`` in ``history``; the record's own ``reason`` says why it was
        refused, dropped or failed, or what it did once executed. On the way there
        (validated, routed) it is empty: how the signal was routed is the validated step's
        reason (:attr:`route_reason`), where to is ``destination``.
        """
        self.status = status
        self.reason = "" if status in _ON_THE_WAY else reason
        self.history.append(Step(status=status, at=at, reason=reason))

    @property
    def route_reason(self) -> str:
        """How the destination was chosen (``route 2 (drop)``, ``no route matched ...``)."""
        return next((s.reason for s in reversed(self.history)
                     if s.status is SignalStatus.VALIDATED), "")

    def snapshot(self) -> SignalRecord:
        """A copy that later steps of this record do not change (they replace attributes and
        append to ``history``; ``parsed`` is never changed after validation)."""
        return self.model_copy(update={"history": list(self.history)})

    @property
    def commands(self) -> list[Command]:
        """The commands of ``parsed``: the ones :meth:`keep_commands` was given for them, else
        validated from them (a record read back from the store)."""
        if not self.parsed:
            return []
        written = self.parsed.get("commands", [])
        kept = self._commands
        if kept is not None and kept[0] is written:
            return list(kept[1])
        return [Command.model_validate(c) for c in written]

    def keep_commands(self, commands: list[Command]) -> None:
        """Remember ``commands``, the validated commands ``parsed["commands"]`` was just
        written from, so that reading them back does not validate them again."""
        assert self.parsed is not None
        self._commands = (self.parsed["commands"], tuple(commands))


def _num(x: float | None) -> str:
    if x is None:
        return "?"
    return f"{x:g}" if abs(x) < 1e15 else repr(x)


def _exit(spec: ExitSpec) -> str:
    if spec.price is not None:
        text = f"at {_num(spec.price)}"
    elif spec.percent is not None:
        text = f"{_num(spec.percent)}% from the fill"
    else:
        text = f"{_num(spec.amount)} from the fill"
    if spec.limit_price is not None:
        text += f" (limit {_num(spec.limit_price)})"
    return text
