"""The format interface and the readers every format uses to turn a field into a value, or a
precise error.

A reader takes the JSON value and the field's name as the sender wrote it, and either returns
the value or raises :class:`~sandtrade.signal_model.SignalError` naming that field and saying
what would be right: numbers must be numbers (``"10"``, ``1,5`` and ``1,000`` are refused, not
guessed at), and a ``{{placeholder}}`` TradingView did not expand is reported as such.
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from sandtrade.signal_model import Command, ParsedSignal, SignalError

__all__ = [
    "COMMA_NUMBER",
    "MAX_COMMANDS",
    "PLACEHOLDER",
    "SignalFormat",
    "action_value",
    "cancel_command",
    "check_prices",
    "comma_hint",
    "commands_for",
    "expanded",
    "number",
    "optional_text",
    "order_type_value",
    "placeholder_message",
    "symbol_value",
    "text_value",
]

#: A ``{{placeholder}}`` as TradingView writes it, expanded or not.
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]{0,80}?)\s*\}\}")
_ORDER_TYPES = ("market", "limit", "stop", "stop_limit")
_SYMBOL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/!-]{0,31}")
#: Commands one signal may carry.
MAX_COMMANDS = 20


class SignalFormat(ABC):
    """A way of writing signals. Subclasses set ``name`` and ``description``.

    A format is asked :meth:`detect` for a body it was not named for; the first that says
    yes parses it. ``data`` is the decoded JSON object, or None for a text body.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: Lower runs first when detecting (user mappings 10, plugins 50, built-ins 100+).
    priority: ClassVar[int] = 50

    @abstractmethod
    def detect(self, body: str, data: Any) -> bool:
        """Whether this format is meant to read the body."""

    @abstractmethod
    def parse(self, body: str, data: Any) -> ParsedSignal:
        """The signal; raise :class:`SignalError` naming the field that is wrong."""


def expanded(value: str, field: str) -> str:
    """``value`` itself, unless it holds a placeholder TradingView did not expand."""
    m = PLACEHOLDER.search(value)
    if m:
        raise SignalError(placeholder_message(m.group(0)), field=field)
    return value


def placeholder_message(text: str) -> str:
    """Why the placeholder ``text`` was sent as written, and where it would expand."""
    hint = ""
    if "strategy." in text:
        hint = " ({{strategy.*}} expands only in an alert created on a strategy, not on " \
               "an indicator or a price)"
    elif "plot" in text:
        hint = " (plot placeholders expand only in alerts on an indicator with that plot)"
    return f"{text} is a TradingView placeholder that was not expanded{hint}; the alert " \
           "was sent as written"


def number(value: Any, field: str, *, positive: bool = False, allow_zero: bool = True
           ) -> float:
    """A JSON value that must be a number, with the exact complaint when it is not."""
    if isinstance(value, bool):
        raise SignalError(f"expected a number, got {json.dumps(value)}", field=field)
    if isinstance(value, (int, float)):
        try:
            x = float(value)
        except OverflowError:
            raise SignalError(f"a number with {len(str(value))} digits is too large",
                              field=field) from None
        if not math.isfinite(x):
            raise SignalError(f"{value} is not a finite number", field=field)
        if positive and (x < 0 or (x == 0 and not allow_zero)):
            raise SignalError(f"must be {'above' if not allow_zero else 'at least'} 0, got "
                              f"{value:g}", field=field)
        return x
    if isinstance(value, str):
        expanded(value, field)
        text = value.strip()
        if COMMA_NUMBER.fullmatch(text):
            raise SignalError(f"{json.dumps(value)} is a number written with a comma: "
                              f"{comma_hint(text)}", field=field)
        try:
            float(text)
        except ValueError:
            raise SignalError(f"expected a number, got the text {json.dumps(value)}",
                              field=field) from None
        name = field.split(" (mapped to")[0].rsplit(".", 1)[-1]
        raise SignalError(f"a number written as a string ({json.dumps(value)}): write it "
                          f"without quotes, e.g. \"{name}\": {text}", field=field)
    if value is None:
        raise SignalError("expected a number, got null", field=field)
    raise SignalError(f"expected a number, got {type(value).__name__ if not isinstance(value, (list, dict)) else ('a list' if isinstance(value, list) else 'an object')}",  # noqa: E501
                      field=field)


#: A number written with a comma (``1,5`` or ``1,000``): refused, not guessed at.
COMMA_NUMBER = re.compile(r"[+-]?\d+(,\d+)+(\.\d+)?")


def comma_hint(text: str) -> str:
    """How to write the comma number ``text`` so that it is read as meant."""
    if re.fullmatch(r"[+-]?\d{1,3}(,\d{3})+(\.\d+)?", text):
        return (f"write {text.replace(',', '')} without separators (or "
                f"{text.replace(',', '.', 1) if text.count(',') == 1 else '...'} if the comma "
                "is a decimal comma)")
    return f"use a decimal point: {text.replace(',', '.')}"


def text_value(value: Any, field: str, *, max_len: int = 200) -> str:
    """A JSON value that must be a non-empty string."""
    if not isinstance(value, str):
        shown = json.dumps(value) if isinstance(value, (int, float, bool)) or value is None \
            else ("a list" if isinstance(value, list) else "an object")
        raise SignalError(f"expected text, got {shown}", field=field)
    expanded(value, field)
    text = value.strip()
    if not text:
        raise SignalError("is empty", field=field)
    if len(text) > max_len:
        raise SignalError(f"is {len(text)} characters long (at most {max_len})", field=field)
    return text


def symbol_value(value: Any, field: str) -> str:
    """A symbol; an exchange prefix (``NASDAQ:AAPL``) is dropped, letters upper-cased."""
    text = text_value(value, field, max_len=64)
    if ":" in text:
        text = text.rsplit(":", 1)[1]
    if not _SYMBOL_RE.fullmatch(text):
        raise SignalError(f"{json.dumps(value)} is not a symbol (letters, digits and . _ / - "
                          "only, e.g. AAPL or BTCUSD)", field=field)
    return text.upper()


def action_value(value: Any, field: str, allowed: Iterable[str]) -> str:
    """An action word, lower-cased, that must be one of ``allowed``."""
    text = text_value(value, field, max_len=40).lower()
    allowed = list(allowed)
    if text not in allowed:
        raise SignalError(f"unknown action {json.dumps(value)} (use one of: "
                          f"{', '.join(allowed)})", field=field)
    return text


def order_type_value(value: Any, field: str) -> str:
    """An order type (``stop-limit``, ``StopLimit``, ... read as ``stop_limit``)."""
    text = text_value(value, field, max_len=20).lower().replace("-", "_").replace(" ", "_")
    if text == "stoplimit":
        text = "stop_limit"
    if text not in _ORDER_TYPES:
        raise SignalError(f"unknown order type {json.dumps(value)} (use one of: "
                          f"{', '.join(_ORDER_TYPES)})", field=field)
    return text


def optional_text(data: Mapping[str, Any], key: str, where: str = "") -> str | None:
    """``data[key]`` as text, or None when it is absent or null."""
    if key not in data or data[key] is None:
        return None
    return text_value(data[key], where + key)


def check_prices(order_type: str, limit: float | None, stop: float | None, where: str,
                 limit_name: str, stop_name: str) -> None:
    """Refuse prices the order type does not take, or lacks; fields named as the sender did."""
    if order_type in ("limit", "stop_limit") and limit is None:
        raise SignalError(f"a {order_type} order needs {limit_name}", field=where + limit_name)
    if order_type in ("stop", "stop_limit") and stop is None:
        raise SignalError(f"a {order_type} order needs {stop_name}", field=where + stop_name)
    if order_type == "market" and (limit is not None or stop is not None):
        name = limit_name if limit is not None else stop_name
        raise SignalError(f"a market order takes no {name} (set the order type to limit or "
                          "stop)", field=where + name)


def commands_for(action: str, symbol: str, qty: float | None, *, where: str, qty_name: str,
                 order_type: str = "market", limit: float | None = None,
                 stop: float | None = None) -> list[Command]:
    """The commands an action means (see :data:`~sandtrade.signal_model.ACTIONS`)."""
    extra = {"order_type": order_type, "limit_price": limit, "stop_price": stop}
    if action in ("close", "flat"):
        if qty is not None:
            raise SignalError(f"{action} takes no quantity (it closes the whole position)",
                              field=where + qty_name)
        return [Command(action="target", symbol=symbol, qty=0.0, **extra)]
    if qty is None:
        raise SignalError(f"{action} needs a quantity", field=where + qty_name)
    if action in ("buy", "sell"):
        if qty <= 0:
            raise SignalError(f"must be above 0, got {qty:g}", field=where + qty_name)
        return [Command(action=action, symbol=symbol, qty=qty, **extra)]  # type: ignore[arg-type]
    if action in ("long", "short"):
        if qty < 0:
            raise SignalError(f"{action} takes a size of 0 or more, got {qty:g}",
                              field=where + qty_name)
        return [Command(action="target", symbol=symbol,
                        qty=qty if action == "long" else -qty, **extra)]
    if action == "target":
        return [Command(action="target", symbol=symbol, qty=qty, **extra)]
    raise AssertionError(action)


def cancel_command(symbol: str) -> Command:
    """The command that cancels every working order of ``symbol``."""
    return Command(action="cancel", symbol=symbol, qty=0.0)
