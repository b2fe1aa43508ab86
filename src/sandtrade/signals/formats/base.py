"""The format interface and the readers every format uses to turn a field into a value, or a
precise error.

A reader takes the JSON value and the field's name as the sender wrote it, and either returns
the value or raises :class:`~sandtrade.signal_model.SignalError` naming that field and saying
what would be right. Numbers are lenient in form and strict in meaning: a plain number in
quotes (``"10"``, ``" 4 "``, ``"1e3"``) is that number, as TradersPost's templates write them;
``1,5``, ``1,000`` and ``1.000,5`` are refused, not guessed at, and so are NaN, infinities and
booleans. A ``{{placeholder}}`` TradingView did not expand is reported as such.

Fields a format does not read are not fatal: :func:`unread_fields` lists them (they end up in
``ignored_fields``), unless one is a near miss of a field that changes what is traded
(``quantitty``, ``tickr``): that is refused with "did you mean".
"""

from __future__ import annotations

import difflib
import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from sandtrade.models import ExitSpec
from sandtrade.signal_model import QUANTITY_TYPES, Command, ParsedSignal, SignalError, SizeSpec

__all__ = [
    "COMMA_NUMBER",
    "MAX_COMMANDS",
    "PLACEHOLDER",
    "SignalFormat",
    "action_value",
    "bool_value",
    "cancel_command",
    "check_prices",
    "check_risk_size",
    "comma_hint",
    "commands_for",
    "exit_value",
    "expanded",
    "near_miss",
    "number",
    "optional_text",
    "order_type_value",
    "placeholder_message",
    "size_value",
    "symbol_value",
    "text_value",
    "tif_value",
    "unread_fields",
]

#: A ``{{placeholder}}`` as TradingView writes it, expanded or not.
PLACEHOLDER = re.compile(r"\{\{\s*([^{}]{0,80}?)\s*\}\}")
_ORDER_TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
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
        if COMMA_NUMBER.fullmatch(text) or DOT_COMMA_NUMBER.fullmatch(text):
            raise SignalError(f"{json.dumps(value)} is a number written with a comma: "
                              f"{comma_hint(text)}", field=field)
        if not PLAIN_NUMBER.fullmatch(text):
            if re.fullmatch(r"[+-]?(nan|inf|infinity)", text, re.IGNORECASE):
                raise SignalError(f"{json.dumps(value)} is not a finite number", field=field)
            raise SignalError(f"expected a number, got the text {json.dumps(value)}",
                              field=field)
        # A plain number in quotes is that number (TradersPost's templates quote them all).
        return number(float(text), field, positive=positive, allow_zero=allow_zero)
    if value is None:
        raise SignalError("expected a number, got null", field=field)
    raise SignalError(f"expected a number, got {type(value).__name__ if not isinstance(value, (list, dict)) else ('a list' if isinstance(value, list) else 'an object')}",  # noqa: E501
                      field=field)


#: A number written with a comma (``1,5`` or ``1,000``): refused, not guessed at.
COMMA_NUMBER = re.compile(r"[+-]?\d+(,\d+)+(\.\d+)?")
#: A number with dots between thousands and a decimal comma (``1.000,5``): refused too.
DOT_COMMA_NUMBER = re.compile(r"[+-]?\d{1,3}(\.\d{3})+,\d+")
#: What a number in quotes may look like to be read as one.
PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def comma_hint(text: str) -> str:
    """How to write the comma number ``text`` so that it is read as meant."""
    if DOT_COMMA_NUMBER.fullmatch(text):
        return (f"write {text.replace('.', '').replace(',', '.')} (a decimal point, no "
                "thousands separators)")
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
    text = {"stoplimit": "stop_limit", "trailingstop": "trailing_stop",
            "trailing": "trailing_stop"}.get(text, text)
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
                 stop: float | None = None, size: SizeSpec | None = None,
                 **extra: Any) -> list[Command]:
    """The commands an action means (see :data:`~sandtrade.signal_model.ACTIONS`).

    A buy or sell without a quantity is sized by the default size (``size`` type
    ``default``: the pipeline puts in the configured one, or refuses naming the setting);
    ``long``/``short`` without one enter at the default size, closing the other side first.
    ``extra`` are the command's other order fields (take profit, stop loss, time in force).
    """
    fields = {"order_type": order_type, "limit_price": limit, "stop_price": stop, **extra}
    if action in ("close", "flat"):
        if qty is not None or size is not None:
            raise SignalError(f"{action} takes no quantity (it closes the whole position)",
                              field=where + qty_name)
        return [Command(action="target", symbol=symbol, qty=0.0, **fields)]
    if qty is None and size is None and action in ("buy", "sell", "long", "short"):
        size = SizeSpec(type="default", field=where + qty_name)
    if size is not None:
        if action in ("long", "short"):
            side = "buy" if action == "long" else "sell"
            return [Command(action="target", symbol=symbol, qty=0.0,
                            only_if="short" if action == "long" else "long"),
                    Command(action=side, symbol=symbol, qty=0.0, size=size, **fields)]
        if action not in ("buy", "sell"):
            raise SignalError(f"{action} takes a quantity, not {size.describe()}",
                              field=where + qty_name)
        return [Command(action=action, symbol=symbol, qty=0.0, size=size,  # type: ignore[arg-type]
                        **fields)]
    if qty is None:
        raise SignalError(f"{action} needs a quantity", field=where + qty_name)
    if action in ("buy", "sell"):
        if qty <= 0:
            raise SignalError(f"must be above 0, got {qty:g}", field=where + qty_name)
        return [Command(action=action, symbol=symbol, qty=qty, **fields)]  # type: ignore[arg-type]
    if action in ("long", "short"):
        if qty < 0:
            raise SignalError(f"{action} takes a size of 0 or more, got {qty:g}",
                              field=where + qty_name)
        return [Command(action="target", symbol=symbol,
                        qty=qty if action == "long" else -qty, **fields)]
    if action == "target":
        return [Command(action="target", symbol=symbol, qty=qty, **fields)]
    raise AssertionError(action)


def cancel_command(symbol: str) -> Command:
    """The command that cancels every working order of ``symbol``."""
    return Command(action="cancel", symbol=symbol, qty=0.0)


def bool_value(value: Any, field: str) -> bool:
    """true or false; in quotes too (``"true"``), as templates write them."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise SignalError(f"expected true or false, got {json.dumps(value)}", field=field)


#: Times in force the paper broker keeps; TradersPost's others (gtd, opg, cls) it does not.
_TIFS = ("day", "gtc", "ioc", "fok")


def tif_value(value: Any, field: str) -> str:
    """A time in force: day, gtc, ioc or fok."""
    text = text_value(value, field, max_len=10).lower()
    if text not in _TIFS:
        raise SignalError(f"time in force {json.dumps(value)} is not supported (use one of: "
                          f"{', '.join(_TIFS)})", field=field)
    return text


def exit_value(field: str, *, names: tuple[str, str, str], price: float | None = None,
               percent: float | None = None, amount: float | None = None,
               limit_price: float | None = None, stop_loss: bool = False) -> ExitSpec:
    """A take profit or stop loss: exactly one of a price, a percent or an amount from the
    fill; ``names`` are the three fields as the sender's format calls them."""
    given = [n for n, v in zip(names, (price, percent, amount), strict=True) if v is not None]
    if len(given) > 1:
        raise SignalError(f"give one of {', '.join(names)}, not {' and '.join(given)}",
                          field=field)
    if not given:
        raise SignalError(f"needs one of {', '.join(names)}", field=field)
    if stop_loss and percent is not None and percent >= 100:
        raise SignalError(f"a stop loss {percent:g}% from the fill is at or past 0; give a "
                          "percent below 100", field=f"{field}.{names[1]}")
    return ExitSpec(price=price, percent=percent, amount=amount, limit_price=limit_price)


def size_value(qtype: Any, quantity: float | None, *, where: str, type_name: str,
               qty_name: str) -> tuple[float | None, SizeSpec | None]:
    """A quantity type (TradersPost's ``quantityType``) and its quantity: a fixed quantity,
    or the size to compute when the command runs."""
    kind = text_value(qtype, where + type_name, max_len=40).lower()
    if kind not in QUANTITY_TYPES:
        raise SignalError(f"unknown quantity type {json.dumps(qtype)} (use one of: "
                          f"{', '.join(QUANTITY_TYPES)})", field=where + type_name)
    if kind == "fixed_quantity":
        return quantity, None
    if quantity is None:
        raise SignalError(f"{kind} needs the amount in {qty_name}", field=where + qty_name)
    if quantity <= 0:
        raise SignalError(f"must be above 0, got {quantity:g}", field=where + qty_name)
    if kind.startswith("percent") and quantity > 100:
        raise SignalError(f"{kind} {quantity:g} is over 100 percent", field=where + qty_name)
    return None, SizeSpec(type=kind, value=quantity,  # type: ignore[arg-type]
                          field=where + qty_name)


def check_risk_size(size: SizeSpec | None, stop_loss: ExitSpec | None,
                    trail: float | None, field: str) -> None:
    """A risk-sized quantity is computed from the distance to the stop loss: it needs one."""
    if size is not None and size.type.startswith("risk_") and stop_loss is None and \
            trail is None:
        raise SignalError(f"{size.type} is sized from the distance to the stop loss: add a "
                          "stop loss", field=field)


def near_miss(key: str, candidates: Iterable[str]) -> str | None:
    """The field ``key`` was probably meant to be: a close spelling, whatever the case
    (``quantitty``, ``tickr``, ``Quantity``), or the same letters transposed (``qyt``); None
    when none is.

    The cutoff (0.8 of difflib's ratio) was chosen on the names real alerts carry besides
    the fields: ``strategy_name`` (0.76 to ``strategy``), ``Time``, ``interval`` and
    ``confidence`` stay below it; informational fields (comment, time) are not candidates,
    so ``comments`` is not taken for ``comment``.
    """
    names = list(candidates)
    if key in names:
        return None
    lower = {n.lower(): n for n in names}
    close = difflib.get_close_matches(key.lower(), list(lower), n=1, cutoff=0.8)
    if close:
        return lower[close[0]]
    letters = sorted(key.lower())
    return next((n for n in names if len(key) >= 3 and sorted(n.lower()) == letters), None)


def unread_fields(data: Mapping[str, Any], known: Iterable[str], consequential: Iterable[str],
                  where: str = "") -> list[str]:
    """The fields of ``data`` that are not ``known``, as ``where + name``; a near miss of a
    field that changes what is traded is refused, naming the field meant."""
    known = set(known)
    consequential = sorted(consequential)
    out: list[str] = []
    for key in data:
        if key in known:
            continue
        meant = near_miss(key, consequential)
        if meant is not None:
            raise SignalError(f"unknown field: did you mean {meant!r}?", field=where + key)
        out.append(where + key)
    return out
