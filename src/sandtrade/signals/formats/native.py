"""The ``native`` format: sandtrade's own JSON.

``{"symbol": "AAPL", "action": "buy", "qty": 10}``; optional ``quantity_type`` (how ``qty``
is meant: ``fixed_quantity``, ``dollar_amount``, ``percent_of_equity``, ...), ``order_type``
(market, limit, stop, stop_limit, trailing_stop), ``limit_price``, ``stop_price``,
``take_profit`` and ``stop_loss`` (a price, or ``{"price"|"percent"|"amount": X}``, a stop
loss also ``"limit_price"``), ``trail_price``/``trail_percent``, ``tif``, ``extended_hours``,
``price``, ``account``, ``strategy``, ``id``, ``idempotency_key``, ``comment``,
``passphrase``; or ``"commands": [{...}, ...]`` executed in order. Other fields are ignored
and listed; a near miss of one of these (``qyt``) is refused. User mappings (:mod:`.mapping`)
are read through it too.

A multi-leg options order (:mod:`.spreads`): ``"template"`` with ``expiry`` and the template's
parameters, or ``"legs"``; ``qty`` spreads, ``limit_price`` and ``price_effect``:
``{"symbol": "SPY", "template": "iron_condor", "expiry": "30d", "short_delta": 0.16,
"width": 5, "qty": 1, "limit_price": 1.20}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandtrade.models import ExitSpec, implied_order_type
from sandtrade.signal_model import ACTIONS, Command, ParsedSignal, SignalError
from sandtrade.signals.formats.base import (
    MAX_COMMANDS,
    SignalFormat,
    action_value,
    bool_value,
    check_prices,
    check_risk_size,
    commands_for,
    exit_value,
    number,
    optional_text,
    order_type_value,
    size_value,
    symbol_value,
    tif_value,
    unread_fields,
)
from sandtrade.signals.formats.spreads import SpreadNames, asks_for_spread, read_spread

__all__ = ["NativeFormat"]


_COMMAND_FIELDS = {"symbol", "action", "qty", "quantity_type", "order_type", "limit_price",
                   "stop_price", "take_profit", "stop_loss", "trail_price", "trail_percent",
                   "tif", "extended_hours"}
_NATIVE_FIELDS = _COMMAND_FIELDS | {"price", "account", "strategy", "id", "idempotency_key",
                                    "comment", "passphrase", "commands"}
#: Fields whose near miss is refused: they change what is traded, or where.
_CONSEQUENTIAL = _NATIVE_FIELDS - {"comment"}
#: A spread's fields in native words.
_SPREAD = SpreadNames(symbol="symbol", qty=("qty",), limit="limit_price", effect="price_effect",
                      order_type="order_type", tif="tif",
                      refused=("quantity_type", "stop_price", "take_profit", "stop_loss",
                               "trail_price", "trail_percent", "extended_hours"))


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

        spread = None
        commands: list[Command]
        if not names and "commands" not in data and asks_for_spread(data, _SPREAD):
            spread = read_spread(data, _SPREAD)
            ignored = unread_fields(data, _NATIVE_FIELDS | spread.read,
                                    _CONSEQUENTIAL | set(spread.parameters))
        else:
            ignored = unread_fields(data, _NATIVE_FIELDS, _CONSEQUENTIAL)
        if spread is not None:
            commands = spread.commands
            symbol, action, qty = commands[0].symbol, spread.action, spread.qty
        elif "commands" in data:
            cmds = data["commands"]
            if not isinstance(cmds, list) or not cmds:
                raise SignalError("must be a non-empty list of commands", field="commands")
            if len(cmds) > MAX_COMMANDS:
                raise SignalError(f"{len(cmds)} commands (at most {MAX_COMMANDS})",
                                  field="commands")
            for key in sorted(_COMMAND_FIELDS & set(data)):
                raise SignalError("give commands or a single command, not both",
                                  field=n(key))
            commands = []
            for i, c in enumerate(cmds):
                where = f"commands[{i}]."
                if not isinstance(c, dict):
                    raise SignalError("must be an object", field=f"commands[{i}]")
                ignored += unread_fields(c, _COMMAND_FIELDS, _CONSEQUENTIAL, where)
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
            fields={names.get(k, k): v for k, v in data.items() if k != "passphrase"},
            ignored_fields=ignored, template_from_strategy=spread is not None and
            spread.from_strategy)


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
    size = None
    if c.get("quantity_type") is not None:
        qty, size = size_value(c["quantity_type"], qty, where=where,
                               type_name=n("quantity_type"), qty_name=n("qty"))
    order_type = order_type_value(c["order_type"], where + n("order_type")) \
        if c.get("order_type") is not None else None
    limit = number(c["limit_price"], where + n("limit_price"), positive=True, allow_zero=False) \
        if c.get("limit_price") is not None else None
    stop = number(c["stop_price"], where + n("stop_price"), positive=True, allow_zero=False) \
        if c.get("stop_price") is not None else None
    trail = {k: number(c[k], where + n(k), positive=True, allow_zero=False)
             for k in ("trail_price", "trail_percent") if c.get(k) is not None}
    if len(trail) > 1:
        raise SignalError("give trail_price or trail_percent, not both",
                          field=where + n("trail_percent"))
    if order_type is None:
        order_type = "trailing_stop" if trail and action in ("close", "flat") else \
            implied_order_type(limit, stop).value
    if order_type == "trailing_stop":
        if not trail:
            raise SignalError("a trailing_stop order needs trail_price or trail_percent",
                              field=where + n("order_type"))
        if limit is not None or stop is not None:
            raise SignalError("a trailing stop takes no limit or stop price (it trails the "
                              "best price)", field=where + n("order_type"))
    else:
        check_prices(order_type, limit, stop, where, n("limit_price"), n("stop_price"))
    extra: dict[str, Any] = dict(trail)
    for key in ("take_profit", "stop_loss"):
        if c.get(key) is not None:
            extra[key] = _exit(c[key], where + n(key), stop_loss=key == "stop_loss")
    check_risk_size(size, extra.get("stop_loss"), trail.get("trail_price") or
                    trail.get("trail_percent"), where + n("qty"))
    if c.get("tif") is not None:
        extra["tif"] = tif_value(c["tif"], where + n("tif"))
    if c.get("extended_hours") is not None:
        extra["extended_hours"] = bool_value(c["extended_hours"], where + n("extended_hours"))
    return commands_for(action, symbol, qty, where=where, qty_name=n("qty"),
                        order_type=order_type, limit=limit, stop=stop, size=size, **extra)


_EXIT_NAMES = ("price", "percent", "amount")


def _exit(value: Any, field: str, *, stop_loss: bool) -> ExitSpec:
    """``"take_profit": 200`` (a price) or ``{"percent": 2}``; a stop loss may add
    ``"limit_price"`` (a stop-limit)."""
    if not isinstance(value, dict):
        return exit_value(field, names=_EXIT_NAMES, stop_loss=stop_loss,
                          price=number(value, field, positive=True, allow_zero=False))
    known = {*_EXIT_NAMES, "limit_price"} if stop_loss else set(_EXIT_NAMES)
    for key in value:
        if key not in known:
            raise SignalError(f"unknown field (known: {', '.join(sorted(known))})",
                              field=f"{field}.{key}")
    got = {k: number(value[k], f"{field}.{k}", positive=True, allow_zero=False)
           for k in known if value.get(k) is not None}
    return exit_value(field, names=_EXIT_NAMES, stop_loss=stop_loss, **got)
