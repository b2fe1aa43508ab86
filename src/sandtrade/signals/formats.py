"""Signal formats: how a body becomes commands, with a precise message when it cannot.

Every format is a plugin: the built-ins below are contributed through the
``sandtrade_signal_formats`` hook like any third-party one, and user-defined field mappings
(``[signals.mappings.NAME]`` in the configuration) become formats too.

The body is read whatever the Content-Type says (TradingView sends ``text/plain`` for a JSON
message with a stray trailing newline). A body that starts with ``{`` is JSON; anything else is
a text form. Before anything else, a ``{{placeholder}}`` that TradingView did not expand is
reported with its line: it is the most common reason an alert is not what its author thinks.

Built-in formats (``sandtrade signals check BODY`` shows how a body is read):

``native``
    ``{"symbol": "AAPL", "action": "buy", "qty": 10}``; optional ``order_type``,
    ``limit_price``, ``stop_price``, ``price``, ``account``, ``strategy``, ``id``,
    ``idempotency_key``, ``comment``, ``passphrase``; or ``"commands": [{...}, ...]`` executed
    in order. Unknown fields are an error (a typo must not be ignored).

An ``id`` (or ``idempotency_key``) is a duplicate key in every format: a second signal with
the same one within ``signals.duplicate_window`` is recognised and not executed. TradingView's
``{{strategy.order.id}}`` (``order_id``) is not, because it repeats ("Long", "Exit"); put
``"id": "{{ticker}}-{{timenow}}"`` in an alert to make its resends recognisable for a day
(an identical body from the same sender is a resend within ``signals.resend_window`` anyway).
``tradingview``
    The fields of TradingView's strategy placeholders, flat or nested under ``"strategy"``:
    ``ticker`` (``{{ticker}}``), ``exchange``, ``action`` (``{{strategy.order.action}}``),
    ``contracts`` (``{{strategy.order.contracts}}``), ``position_size``
    (``{{strategy.position_size}}``), ``market_position`` (``{{strategy.market_position}}``),
    ``order_id`` (``{{strategy.order.id}}``), ``close``, ``time``/``timenow``, ``interval``.
    With ``market_position`` the signal is a *target*: the account is brought to
    ``position_size`` (signed), so a reversal is one step; otherwise ``action`` and
    ``contracts`` place an order.
``traderspost``
    TradersPost's JSON: ``ticker``, ``action`` (buy, sell, exit, cancel, add), ``sentiment``
    (bullish, bearish, flat), ``quantity``, ``orderType``, ``limitPrice``, ``stopPrice``,
    ``signalPrice``. A buy while short closes the short first (TradersPost's behaviour).
``text``
    One command per line or ``;``: ``buy 10 AAPL``, ``sell 0.5 BTCUSD limit 65000``,
    ``close AAPL``, ``flat AAPL``, ``long 10 AAPL``, ``short 5 AAPL``, ``target -5 AAPL``,
    ``cancel AAPL``, with optional ``key=value`` words (``account=``, ``strategy=``, ``id=``,
    ``comment=``).

Numbers must be numbers: ``"qty": "10"`` (a number in quotes), ``1,5`` (a decimal comma) and
``1,000`` (a thousands separator) are refused, with the field named, rather than guessed at.

Without an order type the prices imply it, in every format: a limit price makes a limit order,
a stop price a stop order, both a stop-limit order (:func:`~sandtrade.models.implied_order_type`);
a type that contradicts the prices is an error.
"""

from __future__ import annotations

import json
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from sandtrade.models import implied_order_type
from sandtrade.signal_model import ACTIONS, Command, ParsedSignal, SignalError

__all__ = [
    "BUILTIN_FORMATS",
    "FormatRegistry",
    "MappingFormat",
    "MappingSpec",
    "NativeFormat",
    "SignalFormat",
    "TextFormat",
    "TradersPostFormat",
    "TradingViewFormat",
    "parse_json_body",
]

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]{0,80}?)\s*\}\}")
_ORDER_TYPES = ("market", "limit", "stop", "stop_limit")
_SYMBOL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/!-]{0,31}")
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


# ---------------------------------------------------------------------------- reading fields


def _expanded(value: str, field: str) -> str:
    m = _PLACEHOLDER.search(value)
    if m:
        raise SignalError(_placeholder_message(m.group(0)), field=field)
    return value


def _placeholder_message(text: str) -> str:
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
        _expanded(value, field)
        text = value.strip()
        if _COMMA_NUMBER.fullmatch(text):
            raise SignalError(f"{json.dumps(value)} is a number written with a comma: "
                              f"{_comma_hint(text)}", field=field)
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


_COMMA_NUMBER = re.compile(r"[+-]?\d+(,\d+)+(\.\d+)?")


def _comma_hint(text: str) -> str:
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
    _expanded(value, field)
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
    text = text_value(value, field, max_len=40).lower()
    allowed = list(allowed)
    if text not in allowed:
        raise SignalError(f"unknown action {json.dumps(value)} (use one of: "
                          f"{', '.join(allowed)})", field=field)
    return text


def order_type_value(value: Any, field: str) -> str:
    text = text_value(value, field, max_len=20).lower().replace("-", "_").replace(" ", "_")
    if text == "stoplimit":
        text = "stop_limit"
    if text not in _ORDER_TYPES:
        raise SignalError(f"unknown order type {json.dumps(value)} (use one of: "
                          f"{', '.join(_ORDER_TYPES)})", field=field)
    return text


def optional_text(data: Mapping[str, Any], key: str, where: str = "") -> str | None:
    if key not in data or data[key] is None:
        return None
    return text_value(data[key], where + key)


def _prices(order_type: str, limit: float | None, stop: float | None, where: str,
            limit_name: str, stop_name: str) -> None:
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


# ---------------------------------------------------------------------------- native JSON


_NATIVE_FIELDS = {
    "symbol", "action", "qty", "order_type", "limit_price", "stop_price", "price", "account",
    "strategy", "id", "idempotency_key", "comment", "passphrase", "commands",
}
_COMMAND_FIELDS = {"symbol", "action", "qty", "order_type", "limit_price", "stop_price"}


class NativeFormat(SignalFormat):
    """sandtrade's own JSON: ``{"symbol": "AAPL", "action": "buy", "qty": 10}``."""

    name = "native"
    description = 'sandtrade JSON: {"symbol": "AAPL", "action": "buy", "qty": 10}'
    priority = 100

    def detect(self, body: str, data: Any) -> bool:
        return isinstance(data, dict) and ("symbol" in data or "commands" in data)

    def parse(self, body: str, data: Any) -> ParsedSignal:
        return self.read(data, fmt=self.name)

    @staticmethod
    def read(data: dict[str, Any], *, fmt: str, names: Mapping[str, str] | None = None
             ) -> ParsedSignal:
        """Read native fields; ``names`` maps a native field to the name the user wrote."""
        names = names or {}

        def n(key: str) -> str:
            return names.get(key, key)

        unknown = sorted(set(data) - _NATIVE_FIELDS)
        if unknown:
            raise SignalError(f"unknown field (known: {', '.join(sorted(_NATIVE_FIELDS))})",
                              field=n(unknown[0]))
        if "commands" in data:
            cmds = data["commands"]
            if not isinstance(cmds, list) or not cmds:
                raise SignalError("must be a non-empty list of commands", field="commands")
            if len(cmds) > MAX_COMMANDS:
                raise SignalError(f"{len(cmds)} commands (at most {MAX_COMMANDS})",
                                  field="commands")
            for key in sorted(_COMMAND_FIELDS & set(data)):
                raise SignalError("give commands or a single command, not both",
                                  field=n(key))
            commands: list[Command] = []
            for i, c in enumerate(cmds):
                where = f"commands[{i}]."
                if not isinstance(c, dict):
                    raise SignalError("must be an object", field=f"commands[{i}]")
                bad = sorted(set(c) - _COMMAND_FIELDS)
                if bad:
                    known = ", ".join(sorted(_COMMAND_FIELDS))
                    raise SignalError(f"unknown field (known: {known})", field=where + bad[0])
                commands += _native_command(c, where, lambda k: k)
            first = commands[0]
            symbol, action, qty = first.symbol, None, None
        else:
            commands = _native_command(data, "", n)
            symbol = commands[0].symbol
            action = str(data["action"]).lower()
            qty = number(data["qty"], n("qty")) if data.get("qty") is not None else None
        price = number(data["price"], n("price"), positive=True) \
            if data.get("price") is not None else None
        return ParsedSignal(
            format=fmt, commands=commands, symbol=symbol, action=action, qty=qty, price=price,
            account=optional_text(data, "account"), strategy=optional_text(data, "strategy"),
            alert_id=optional_text(data, "id"),
            idempotency_key=optional_text(data, "idempotency_key") or optional_text(data, "id"),
            comment=optional_text(data, "comment"),
            passphrase=optional_text(data, "passphrase"),
            fields={names.get(k, k): v for k, v in data.items() if k != "passphrase"})


def _native_command(c: Mapping[str, Any], where: str, n: Any) -> list[Command]:
    if c.get("symbol") is None:
        example = ', e.g. "symbol": "AAPL"' if n("symbol") == "symbol" else ""
        raise SignalError(f"no symbol: every signal names what to trade{example}",
                          field=where + n("symbol"))
    symbol = symbol_value(c["symbol"], where + n("symbol"))
    if c.get("action") is None:
        raise SignalError(f"no action (use one of: {', '.join(ACTIONS)})",
                          field=where + n("action"))
    action = action_value(c["action"], where + n("action"), ACTIONS)
    qty = number(c["qty"], where + n("qty")) if c.get("qty") is not None else None
    order_type = order_type_value(c["order_type"], where + n("order_type")) \
        if c.get("order_type") is not None else None
    limit = number(c["limit_price"], where + n("limit_price"), positive=True, allow_zero=False) \
        if c.get("limit_price") is not None else None
    stop = number(c["stop_price"], where + n("stop_price"), positive=True, allow_zero=False) \
        if c.get("stop_price") is not None else None
    if order_type is None:
        order_type = implied_order_type(limit, stop).value
    _prices(order_type, limit, stop, where, n("limit_price"), n("stop_price"))
    return commands_for(action, symbol, qty, where=where, qty_name=n("qty"),
                        order_type=order_type, limit=limit, stop=stop)


# ---------------------------------------------------------------------------- TradingView


_TV_STRATEGY_KEYS = {"contracts", "position_size", "market_position", "market_position_size",
                     "order_action", "order_contracts", "order_id", "order_price",
                     "prev_market_position", "prev_market_position_size", "order_comment"}


def _tv_flatten(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """One flat dict of the fields, and where each was written (``strategy.order.action``)."""
    flat: dict[str, Any] = {}
    where: dict[str, str] = {}

    def put(key: str, value: Any, path: str) -> None:
        if key in flat and flat[key] != value:
            raise SignalError(f"given twice with different values ({where[key]} and {path})",
                              field=path)
        flat[key] = value
        where[key] = path

    for key, value in data.items():
        if key == "strategy" and isinstance(value, dict):
            for k2, v2 in value.items():
                if k2 == "order" and isinstance(v2, dict):
                    for k3, v3 in v2.items():
                        put("action" if k3 == "action" else f"order_{k3}", v3,
                            f"strategy.order.{k3}")
                elif k2 == "order_action":
                    put("action", v2, f"strategy.{k2}")
                else:
                    put(k2, v2, f"strategy.{k2}")
        elif key == "bar" and isinstance(value, dict):
            # the bar's own time differs from the alert's {{timenow}}: kept apart
            for k2, v2 in value.items():
                put(f"bar_{k2}", v2, f"bar.{k2}")
        elif key == "order_action":
            put("action", value, key)
        else:
            put(key, value, key)
    return flat, where


class TradingViewFormat(SignalFormat):
    """A JSON message built from TradingView's placeholders (flat or nested)."""

    name = "tradingview"
    description = ('TradingView placeholders: {"ticker": "{{ticker}}", "action": '
                   '"{{strategy.order.action}}", "contracts": {{strategy.order.contracts}}}')
    priority = 110

    def detect(self, body: str, data: Any) -> bool:
        if not isinstance(data, dict) or "ticker" not in data:
            return False
        if isinstance(data.get("strategy"), dict) or _TV_STRATEGY_KEYS & set(data):
            return True
        action = data.get("action")
        if isinstance(action, str) and action.strip().lower() in TradersPostFormat.OWN_ACTIONS:
            return False  # {"ticker": ..., "action": "exit"} is TradersPost's
        return not TradersPostFormat.KEYS & set(data)

    def parse(self, body: str, data: Any) -> ParsedSignal:
        flat, where = _tv_flatten(data)

        def w(key: str) -> str:
            return where.get(key, key)

        if flat.get("ticker") is None:
            raise SignalError('no symbol: add "ticker": "{{ticker}}"', field="ticker")
        symbol = symbol_value(flat["ticker"], w("ticker"))
        qty_key = next((k for k in ("contracts", "order_contracts", "qty", "quantity")
                        if flat.get(k) is not None), None)
        qty = number(flat[qty_key], w(qty_key), positive=True) if qty_key else None
        action = action_value(flat["action"], w("action"), ACTIONS) \
            if flat.get("action") is not None else None
        order_type = "market"
        limit = number(flat["limit_price"], w("limit_price"), positive=True, allow_zero=False) \
            if flat.get("limit_price") is not None else None
        if limit is not None:
            order_type = "limit"
        if flat.get("market_position") is not None:
            mp = action_value(flat["market_position"], w("market_position"),
                              ("long", "short", "flat"))
            if flat.get("position_size") is not None:
                size = number(flat["position_size"], w("position_size"))
                if (mp == "long" and size <= 0) or (mp == "short" and size >= 0) or \
                        (mp == "flat" and size != 0):
                    raise SignalError(
                        f"market_position is {mp!r} but position_size is {size:g}; they "
                        "disagree (position_size is signed: + long, - short)",
                        field=w("position_size"))
            elif mp == "flat":
                size = 0.0
            elif flat.get("market_position_size") is not None:
                size = number(flat["market_position_size"], w("market_position_size"),
                              positive=True)
                size = size if mp == "long" else -size
            else:
                raise SignalError(f"market_position {mp!r} needs the size: add "
                                  '"position_size": {{strategy.position_size}}',
                                  field=w("market_position"))
            commands = [Command(action="target", symbol=symbol, qty=size,
                                order_type=order_type, limit_price=limit)]
        elif flat.get("position_size") is not None:
            size = number(flat["position_size"], w("position_size"))
            commands = [Command(action="target", symbol=symbol, qty=size,
                                order_type=order_type, limit_price=limit)]
        else:
            if action is None:
                raise SignalError('no action: add "action": "{{strategy.order.action}}" (or '
                                  '"market_position" and "position_size")', field="action")
            commands = commands_for(action, symbol, qty, where="", qty_name=qty_key or
                                    "contracts", order_type=order_type, limit=limit)
        price_key = next((k for k in ("close", "price", "order_price", "bar_close")
                          if flat.get(k) is not None), None)
        price = number(flat[price_key], w(price_key), positive=True) if price_key else None
        # {{strategy.order.id}} names the order ("Long"), and repeats: it is no duplicate
        # key. An "id" the author made unique ("{{ticker}}-{{timenow}}") is.
        unique = next((text_value(flat[k], w(k)) for k in ("idempotency_key", "id", "alert_id")
                       if flat.get(k) is not None), None)
        alert_id = text_value(flat["order_id"], w("order_id")) \
            if flat.get("order_id") is not None else unique
        comment = next((text_value(flat[k], w(k), max_len=500) for k in
                        ("comment", "order_comment") if flat.get(k) is not None), None)
        for key in ("exchange", "interval", "time", "timenow", "bar_time"):
            if isinstance(flat.get(key), str):
                _expanded(flat[key], w(key))
        strategy = flat.get("strategy_name", flat.get("strategy"))
        return ParsedSignal(
            format=self.name, commands=commands, symbol=symbol, action=action, qty=qty,
            price=price, account=optional_text(flat, "account"),
            strategy=text_value(strategy, w("strategy")) if isinstance(strategy, str) else None,
            alert_id=alert_id, comment=comment, idempotency_key=unique,
            passphrase=optional_text(flat, "passphrase"),
            fields={w(k): v for k, v in flat.items() if k != "passphrase"})


# ---------------------------------------------------------------------------- TradersPost


class TradersPostFormat(SignalFormat):
    """The JSON that TradersPost-style routers accept."""

    name = "traderspost"
    description = ('TradersPost JSON: {"ticker": "AAPL", "action": "buy", "sentiment": '
                   '"bullish", "quantity": 10}')
    priority = 120
    KEYS: ClassVar[set[str]] = {"sentiment", "quantity", "quantityType", "orderType",
                                "limitPrice", "stopPrice", "signalPrice", "extras", "test",
                                "takeProfit", "stopLoss", "cancel"}
    ACTIONS: ClassVar[tuple[str, ...]] = ("buy", "sell", "exit", "cancel", "add")
    OWN_ACTIONS: ClassVar[tuple[str, ...]] = ("exit", "cancel", "add")
    #: TradersPost's strategy template sends "{{strategy.market_position}}" as sentiment.
    SENTIMENTS: ClassVar[dict[str, str]] = {"bullish": "bullish", "bearish": "bearish",
                                            "flat": "flat", "long": "bullish",
                                            "short": "bearish"}

    def detect(self, body: str, data: Any) -> bool:
        if not isinstance(data, dict) or "ticker" not in data:
            return False
        action = data.get("action")
        return bool(self.KEYS & set(data)) or (
            isinstance(action, str) and action.strip().lower() in self.OWN_ACTIONS)

    def parse(self, body: str, data: Any) -> ParsedSignal:
        for key in ("takeProfit", "stopLoss"):
            if data.get(key) is not None:
                raise SignalError("bracket orders (take profit / stop loss) are not "
                                  "supported; send them as separate signals", field=key)
        if data.get("ticker") is None:
            raise SignalError("no symbol", field="ticker")
        symbol = symbol_value(data["ticker"], "ticker")
        if data.get("action") is None:
            raise SignalError(f"no action (use one of: {', '.join(self.ACTIONS)})",
                              field="action")
        action = action_value(data["action"], "action", self.ACTIONS)
        sentiment = None
        if data.get("sentiment") is not None:
            word = text_value(data["sentiment"], "sentiment", max_len=20).lower()
            if word not in self.SENTIMENTS:
                raise SignalError(f"unknown sentiment {json.dumps(data['sentiment'])} (use one "
                                  "of: bullish, bearish, flat; long and short also work)",
                                  field="sentiment")
            sentiment = self.SENTIMENTS[word]
        qtype = data.get("quantityType")
        if qtype is not None and text_value(qtype, "quantityType") != "fixed_quantity":
            raise SignalError(f"{json.dumps(qtype)} is not supported (only fixed_quantity)",
                              field="quantityType")
        qty = number(data["quantity"], "quantity") if data.get("quantity") is not None \
            else None
        limit = number(data["limitPrice"], "limitPrice", positive=True, allow_zero=False) \
            if data.get("limitPrice") is not None else None
        stop = number(data["stopPrice"], "stopPrice", positive=True, allow_zero=False) \
            if data.get("stopPrice") is not None else None
        order_type = order_type_value(data["orderType"], "orderType") \
            if data.get("orderType") is not None else implied_order_type(limit, stop).value
        _prices(order_type, limit, stop, "", "limitPrice", "stopPrice")
        extra: dict[str, Any] = {"order_type": order_type, "limit_price": limit,
                                 "stop_price": stop}
        commands: list[Command]
        if action == "exit":
            commands = [Command(action="target", symbol=symbol, qty=0.0, **extra)]
        elif action == "cancel":
            commands = [_cancel(symbol)]
        elif action == "add":
            if sentiment not in ("bullish", "bearish"):
                raise SignalError("add needs sentiment bullish or bearish", field="sentiment")
            commands = commands_for("buy" if sentiment == "bullish" else "sell", symbol, qty,
                                    where="", qty_name="quantity", **_tp(extra))
        elif sentiment == "flat":
            # buy + flat: buy to cover the short; sell + flat: sell the long.
            commands = [Command(action="target", symbol=symbol, qty=0.0,
                                only_if="short" if action == "buy" else "long", **extra)]
        else:
            if sentiment is not None and (sentiment == "bullish") != (action == "buy"):
                raise SignalError(f"{action} with sentiment {sentiment} contradicts itself",
                                  field="sentiment")
            opposite = "short" if action == "buy" else "long"
            commands = [Command(action="target", symbol=symbol, qty=0.0, only_if=opposite),
                        *commands_for(action, symbol, qty, where="", qty_name="quantity",
                                      **_tp(extra))]
        price = None
        for key in ("signalPrice", "price"):
            if data.get(key) is not None:
                price = number(data[key], key, positive=True)
        for key in ("time", "interval"):
            if isinstance(data.get(key), str):
                _expanded(data[key], key)
        return ParsedSignal(
            format=self.name, commands=commands, symbol=symbol, action=action, qty=qty,
            price=price, account=optional_text(data, "account"),
            strategy=optional_text(data, "strategy"), alert_id=optional_text(data, "id"),
            idempotency_key=optional_text(data, "id"), comment=optional_text(data, "comment"),
            passphrase=optional_text(data, "passphrase"),
            fields={k: v for k, v in data.items() if k != "passphrase"})


def _tp(extra: dict[str, Any]) -> dict[str, Any]:
    return {"order_type": extra["order_type"], "limit": extra["limit_price"],
            "stop": extra["stop_price"]}


def _cancel(symbol: str) -> Command:
    return Command(action="cancel", symbol=symbol, qty=0.0)


# ---------------------------------------------------------------------------- text


_TEXT_ACTIONS = (*ACTIONS, "cancel")
_NUM_TOKEN = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


class TextFormat(SignalFormat):
    """One command per line or ``;``: ``buy 10 AAPL limit 150``."""

    name = "text"
    description = "text: buy 10 AAPL limit 150; close AAPL; long 5 MSFT"
    priority = 200

    def detect(self, body: str, data: Any) -> bool:
        return data is None

    def parse(self, body: str, data: Any) -> ParsedSignal:
        parts = [p.strip() for p in re.split(r"[;\n]", body) if p.strip()]
        if not parts:
            raise SignalError("the body is empty")
        if len(parts) > MAX_COMMANDS:
            raise SignalError(f"{len(parts)} commands (at most {MAX_COMMANDS})")
        commands: list[Command] = []
        meta: dict[str, str] = {}
        for i, part in enumerate(parts):
            commands += self._command(part, i + 1 if len(parts) > 1 else None, meta)
        first = commands[0]
        return ParsedSignal(
            format=self.name, commands=commands, symbol=first.symbol,
            action=parts[0].split()[0].lower(),
            qty=None if first.action == "target" else first.qty,
            price=float(meta["price"]) if "price" in meta else None,
            account=meta.get("account"), strategy=meta.get("strategy"),
            alert_id=meta.get("id"), comment=meta.get("comment"),
            idempotency_key=meta.get("idempotency_key") or meta.get("id"),
            fields={"commands": parts, **meta})

    def _command(self, text: str, n: int | None, meta: dict[str, str]) -> list[Command]:
        where = f"command {n}" if n else "command"
        if "," in text and " " not in text.strip():
            raise SignalError(f"{text!r} is comma-separated; write it with spaces, e.g. "
                              "'buy 10 AAPL'", field=where)
        words: list[str] = []
        for word in text.split():
            key, eq, value = word.partition("=")
            if eq:
                key = key.lower()
                if key not in ("account", "strategy", "id", "comment", "idempotency_key"):
                    raise SignalError(f"unknown setting {key!r} in {text!r} (known: account, "
                                      "strategy, id, comment, idempotency_key)", field=where)
                meta[key] = _expanded(value.strip("\"'"), f"{where} {key}")
            else:
                words.append(word)
        if not words:
            raise SignalError(f"{text!r} has no action", field=where)
        action = words[0].lower()
        if action not in _TEXT_ACTIONS:
            raise SignalError(f"unknown action {words[0]!r} in {text!r} (use one of: "
                              f"{', '.join(_TEXT_ACTIONS)})", field=where)
        rest = words[1:]
        qty: float | None = None
        symbol: str | None = None
        prices: dict[str, float] = {}
        order_type = "market"
        i = 0
        while i < len(rest):
            word = rest[i]
            low = word.lower()
            if low in ("limit", "stop", "at", "@"):
                if i + 1 >= len(rest):
                    raise SignalError(f"{word!r} needs a price after it in {text!r}",
                                      field=where)
                price = self._number(rest[i + 1], f"{where} {low} price")
                if price <= 0:
                    raise SignalError(f"{low} price must be above 0 in {text!r}", field=where)
                prices["at" if low == "@" else low] = price
                i += 2
                continue
            if low in ("market", "mkt"):
                i += 1
                continue
            if word[0].isdigit() or word[0] in "+-.":
                if qty is not None:
                    raise SignalError(f"two quantities in {text!r}", field=where)
                qty = self._number(word, f"{where} quantity")
            else:
                if symbol is not None:
                    raise SignalError(f"two symbols in {text!r} ({symbol} and {word}); give "
                                      "one per command", field=where)
                symbol = symbol_value(word, f"{where} symbol")
            i += 1
        if symbol is None:
            raise SignalError(f"no symbol in {text!r}, e.g. '{action} 10 AAPL'", field=where)
        if "at" in prices:
            meta["price"] = f"{prices.pop('at'):g}"
        if "limit" in prices and "stop" in prices:
            order_type = "stop_limit"
        elif "limit" in prices:
            order_type = "limit"
        elif "stop" in prices:
            order_type = "stop"
        if action == "cancel":
            if qty is not None or prices:
                raise SignalError(f"cancel takes only a symbol in {text!r}", field=where)
            return [_cancel(symbol)]
        return commands_for(action, symbol, qty, where=where + " ", qty_name="quantity",
                            order_type=order_type, limit=prices.get("limit"),
                            stop=prices.get("stop"))

    @staticmethod
    def _number(word: str, field: str) -> float:
        _expanded(word, field)
        if _COMMA_NUMBER.fullmatch(word):
            raise SignalError(f"{word!r} is a number written with a comma: "
                              f"{_comma_hint(word)}", field=field)
        if not _NUM_TOKEN.fullmatch(word):
            raise SignalError(f"{word!r} is not a number", field=field)
        x = float(word)
        if not math.isfinite(x):
            raise SignalError(f"{word!r} is not a finite number", field=field)
        return x


# ---------------------------------------------------------------------------- user mappings


class MappingSpec(BaseModel):
    """``[signals.mappings.NAME]``: where a sender's JSON keeps each native field.

    Values are dotted paths into the sender's JSON (``"data.pair"``). ``detect`` is a path
    whose presence selects this mapping; without it, the mapping is used only when named
    (``?format=NAME`` on the webhook, ``format`` in the API). ``actions`` translates the
    sender's action words (``LONG = "buy"``).
    """

    model_config = ConfigDict(extra="forbid")

    detect: str | None = None
    symbol: str
    action: str
    qty: str | None = None
    order_type: str | None = None
    limit_price: str | None = None
    stop_price: str | None = None
    price: str | None = None
    account: str | None = None
    strategy: str | None = None
    id: str | None = None
    comment: str | None = None
    passphrase: str | None = None
    actions: dict[str, str] = Field(default_factory=dict)


class MappingFormat(SignalFormat):
    """A user-defined mapping of a sender's JSON onto the native fields."""

    priority = 10
    name = "mapping"

    def __init__(self, name: str, spec: MappingSpec) -> None:
        self.name = name  # type: ignore[misc]
        self.description = f"mapping {name} from the configuration"  # type: ignore[misc]
        self.spec = spec

    def detect(self, body: str, data: Any) -> bool:
        return self.spec.detect is not None and isinstance(data, dict) and \
            _lookup(data, self.spec.detect)[0]

    def parse(self, body: str, data: Any) -> ParsedSignal:
        if not isinstance(data, dict):
            raise SignalError(f"format {self.name} reads a JSON object")
        native: dict[str, Any] = {}
        names: dict[str, str] = {}
        for key, path in self.spec.model_dump(exclude={"detect", "actions"}).items():
            if path is None:
                continue
            names[key] = f"{path} (mapped to {key})"
            found, value = _lookup(data, path)
            if not found:
                continue
            if key == "action" and isinstance(value, str) and value in self.spec.actions:
                value = self.spec.actions[value]
            native[key] = value
        return NativeFormat.read(native, fmt=self.name, names=names)


def _lookup(data: Any, path: str) -> tuple[bool, Any]:
    for part in path.split("."):
        if not isinstance(data, dict) or part not in data:
            return False, None
        data = data[part]
    return True, data


# ---------------------------------------------------------------------------- the registry


BUILTIN_FORMATS: tuple[type[SignalFormat], ...] = (NativeFormat, TradingViewFormat,
                                                   TradersPostFormat, TextFormat)


def _no_constant(name: str) -> Any:
    raise SignalError(f"{name} is not a JSON number; send a finite number")


def parse_json_body(body: str) -> Any:
    """Decode a body that starts with ``{``; the error names line, column and the likely cause."""
    try:
        return json.loads(body, parse_constant=_no_constant)
    except RecursionError:
        raise SignalError("the body is JSON nested too deeply to be a signal") from None
    except ValueError as e:
        if not isinstance(e, json.JSONDecodeError):  # e.g. an integer of 5,000 digits
            raise SignalError(f"the body is not a signal: {e}") from None
        line_text = body.splitlines()[e.lineno - 1] if body.splitlines() else ""
        hint = ""
        if re.search(r":\s*-?\d+,\d", line_text):
            hint = " (a decimal comma? JSON numbers use a point: 1.5)"
        elif re.search(r",\s*[}\]]", body[max(0, e.pos - 20):e.pos + 1]):
            hint = " (a comma before a closing brace)"
        elif "'" in line_text and '"' not in line_text:
            hint = " (JSON needs double quotes, not single quotes)"
        elif e.pos >= len(body.rstrip()):
            hint = " (the message ends early: a missing closing brace?)"
        elif e.msg.startswith("Expecting ',' delimiter"):
            hint = " (a missing comma or quote?)"
        elif e.msg.startswith("Extra data"):
            hint = " (text after the closing brace)"
        raise SignalError(f"the body is not valid JSON: line {e.lineno}, column {e.colno}: "
                          f"{e.msg}{hint}") from None


class FormatRegistry:
    """Every known format; reads a body with the named one or the first that detects it."""

    def __init__(self, formats: Iterable[SignalFormat]) -> None:
        self._formats = sorted(formats, key=lambda f: f.priority)
        self.by_name = {f.name: f for f in self._formats}

    @classmethod
    def default(cls, mappings: Mapping[str, MappingSpec] | None = None,
                extra: Iterable[type[SignalFormat]] = (),
                formats: Iterable[type[SignalFormat]] | None = None) -> FormatRegistry:
        """``formats`` (default: the built-ins) and ``extra``, then the user's mappings."""
        classes = BUILTIN_FORMATS if formats is None else tuple(formats)
        found: list[SignalFormat] = [f() for f in (*classes, *extra)]
        found += [MappingFormat(name, spec) for name, spec in (mappings or {}).items()]
        return cls(found)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self._formats]

    def parse(self, body: str, fmt: str | None = None) -> ParsedSignal:
        """The signal in ``body``; :class:`SignalError` says what is wrong and where."""
        text = body.lstrip("\ufeff").strip()
        if not text:
            raise SignalError("the body is empty: the alert's message is blank")
        for lineno, line in enumerate(text.splitlines(), 1):
            m = _PLACEHOLDER.search(line)
            if m:
                where = f"line {lineno}" if "\n" in text else None
                raise SignalError(_placeholder_message(m.group(0)), field=where)
        data: Any = None
        if text[0] in "{[":
            data = parse_json_body(text)
            try:  # "\ud800" decodes to a lone surrogate that no journal could store
                json.dumps(data, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError as e:
                code = f"\\u{ord(e.object[e.start]):04x}"
                raise SignalError(f"the body holds a lone UTF-16 surrogate escape ({code}), "
                                  "which is not text") from None
            if isinstance(data, list):
                raise SignalError("the body is a JSON list: send one object per alert (put "
                                  'several commands in "commands": [...])')
        if fmt:
            try:
                chosen = self.by_name[fmt]
            except KeyError:
                raise SignalError(f"unknown format {fmt!r} (known: {', '.join(self.names)})",
                                  field="format") from None
            if data is None and chosen.name != "text" and not isinstance(chosen, TextFormat):
                raise SignalError(f"format {fmt} reads a JSON object, and the body is not "
                                  "JSON")
            return chosen.parse(text, data)
        for f in self._formats:
            if f.detect(text, data):
                return f.parse(text, data)
        if isinstance(data, dict):
            has = ", ".join(sorted(data)) or "nothing"
            raise SignalError(
                "no symbol: the JSON has none of the fields symbol (sandtrade), ticker "
                f"(TradingView, TradersPost) or commands; it has: {has}")
        raise SignalError("the body is in no known format (known: "
                          f"{', '.join(self.names)})")
