"""``[signals]`` of the configuration: routes, execution mode, duplicate windows, mappings.

Example::

    [signals]
    mode = "paper"                 # or "live": needs allow_live and a live-broker plugin
    symbols = "any"                # or "known": only the market feed's symbols
    duplicate_window = 86400       # seconds an idempotency key or alert id is remembered
    resend_window = 30             # seconds an identical body from one sender is a resend
    default_quantity = "10"        # when an alert names none: "10" (units), "$1000" (worth),
                                   # "5%" (of equity), or {type = "risk_dollar_amount",
                                   # value = 50}; no default: such an alert is refused
    strict = false                 # true: refuse fields no format reads (else ignored, listed)

    [[signals.routes]]             # the first matching route wins
    source = "tradingview"
    symbol = "BTC*"                # shell-style patterns
    to = "strategy:crypto_bot"     # paper, paper:ACCOUNT, strategy:[ACCOUNT/]NAME,
                                   # live:BROKER, drop; strategy:NAME is the signal's account's

    default_quantity = "0.01"      # this route's own default size

    [[signals.routes]]
    alert = "test-*"
    to = "drop"

    [signals.mappings.my_bot]      # a sender's own JSON, mapped onto the native fields
    detect = "bot_signal"
    symbol = "bot_signal.pair"
    action = "bot_signal.side"
    qty = "bot_signal.size"

With no route matching (or none at all), a signal goes to the paper account of the token
that sent it (or the ``account`` it names, for the operator's token).
"""

from __future__ import annotations

import fnmatch
import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sandtrade.signal_model import Command, SignalError, SizeSpec
from sandtrade.signals.formats import MappingSpec

__all__ = ["DefaultSize", "Route", "SignalSettings", "default_sizes"]


class DefaultSize(BaseModel):
    """The size of an order whose alert names no quantity: ``"10"`` (units), ``"$1000"``
    (worth, at the price when it runs), ``"5%"`` (of equity), or a table
    ``{type = "percent_of_position", value = 50}`` with any quantity type."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["fixed_quantity", "dollar_amount", "percent_of_equity", "percent_of_position",
                  "risk_dollar_amount", "risk_percent_of_equity"]
    value: float = Field(gt=0)

    @model_validator(mode="before")
    @classmethod
    def _plain_forms(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("expected a quantity such as \"10\", \"$1000\" or \"5%\"")
        if isinstance(value, (int, float)):
            return {"type": "fixed_quantity", "value": value}
        if isinstance(value, str):
            text = value.strip().replace(" ", "")
            kind = "fixed_quantity"
            if text.startswith("$"):
                kind, text = "dollar_amount", text[1:]
            elif text.endswith("%"):
                kind, text = "percent_of_equity", text[:-1]
            try:
                x = float(text)
            except ValueError:
                raise ValueError(f"{value!r} is not a size (write \"10\" for units, "
                                 "\"$1000\" for a dollar amount, \"5%\" for a share of "
                                 "equity)") from None
            if not math.isfinite(x):
                raise ValueError(f"{value!r} is not a finite size")
            return {"type": kind, "value": x}
        return value

    def describe(self) -> str:
        """As written in the plain forms, or ``type value``."""
        return {"fixed_quantity": f"{self.value:g}", "dollar_amount": f"${self.value:g}",
                "percent_of_equity": f"{self.value:g}%"}.get(self.type,
                                                             f"{self.type} {self.value:g}")


_DEST_RE = re.compile(r"(paper|drop)|(paper|strategy|live):([A-Za-z0-9][A-Za-z0-9_.-]{0,63})"
                      r"|strategy:[A-Za-z0-9][A-Za-z0-9_.-]{0,63}/[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


class Route(BaseModel):
    """One routing rule: every given pattern must match; ``to`` says where the signal goes."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = Field(None, description="tradingview, grpc, python, replay (pattern)")
    symbol: str | None = Field(None, description="symbol pattern, e.g. 'BTC*'")
    alert: str | None = Field(None, description="pattern on the alert or order id")
    strategy: str | None = Field(None, description="pattern on the strategy the signal names")
    account: str | None = Field(None, description="pattern on the account the signal targets")
    format: str | None = Field(None, description="pattern on the format that read the body")
    to: str = Field(..., description="paper, paper:ACCOUNT, strategy:NAME (of the signal's "
                    "account), strategy:ACCOUNT/NAME, live:BROKER or drop")
    default_quantity: DefaultSize | None = Field(
        None, description="The size of an order whose alert names none, on this route "
        "(else signals.default_quantity).")

    @field_validator("to")
    @classmethod
    def _destination(cls, value: str) -> str:
        if not _DEST_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a destination (use paper, paper:ACCOUNT, "
                             "strategy:NAME, strategy:ACCOUNT/NAME, live:BROKER or drop)")
        return value

    def matches(self, *, source: str, symbol: str | None, alert: str | None,
                strategy: str | None, account: str, format: str) -> bool:
        checks = ((self.source, source), (self.symbol, symbol), (self.alert, alert),
                  (self.strategy, strategy), (self.account, account), (self.format, format))
        return all(pattern is None or (value is not None and
                                       fnmatch.fnmatchcase(value, pattern))
                   for pattern, value in checks)


class SignalSettings(BaseModel):
    """How signals are checked, deduplicated and routed."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["paper", "live"] = Field(
        "paper", description="Where signals without a matching route go: the paper account, "
        "or the live broker named by live_broker.")
    allow_live: bool = Field(False, description="Must be true for any live destination.")
    live_broker: str | None = Field(None, description="The live-broker plugin of mode=live.")
    routes: list[Route] = Field(default_factory=list)
    mappings: dict[str, MappingSpec] = Field(default_factory=dict)
    duplicate_window: float = Field(
        86_400.0, ge=0, description="Seconds an idempotency key or alert id is remembered.")
    resend_window: float = Field(
        30.0, ge=0, description="Seconds within which an identical body from the same token "
        "is a resend (TradingView resends up to 3 times, 5 s apart, after a 5xx or timeout).")
    symbols: Literal["any", "known"] = Field(
        "any", description="any: a signal may name any symbol (its kind inferred, priced by "
        "the market feed, else by the signal's own price, else by the account's last one); "
        "known: only the symbols of the market feed.")
    default_quantity: DefaultSize | None = Field(
        None, description="The size of a buy or sell whose alert names no quantity: \"10\", "
        "\"$1000\", \"5%\" or a table {type, value}; none: such an alert is refused.")
    strict: bool = Field(
        False, description="Refuse a body with fields its format does not read (by default "
        "they are ignored and listed on the signal as ignored_fields).")
    queue_limit: int = Field(
        100_000, ge=1, description="Accepted signals waiting to execute, per account, before "
        "new ones are refused (503, with nothing journaled).")


def default_sizes(commands: list[Command], default: DefaultSize | None) -> list[Command]:
    """The commands, a buy or sell whose alert named no quantity given the default size; with
    no default, such a signal is refused naming the setting."""
    out = []
    for cmd in commands:
        if cmd.size is None or cmd.size.type != "default":
            out.append(cmd)
            continue
        if default is None:
            raise SignalError(
                f"{cmd.action} needs a quantity: the alert names none and no default size is "
                f"set (add {cmd.size.field.rsplit(' ', 1)[-1]!r} to the alert, or set "
                '[signals] default_quantity, e.g. "10", "$1000" or "5%")',
                field=cmd.size.field)
        if default.type == "fixed_quantity":
            out.append(cmd.model_copy(update={"qty": default.value, "size": None}))
        else:
            out.append(cmd.model_copy(update={"size": SizeSpec(
                type=default.type, value=default.value, field=cmd.size.field)}))
    return out
