"""The ``native`` format: sandtrade's own JSON.

``{"symbol": "AAPL", "action": "buy", "qty": 10}``; optional ``order_type``, ``limit_price``,
``stop_price``, ``price``, ``account``, ``strategy``, ``id``, ``idempotency_key``, ``comment``,
``passphrase``; or ``"commands": [{...}, ...]`` executed in order. Unknown fields are an error
(a typo must not be ignored). User mappings (:mod:`.mapping`) are read through it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandtrade.models import implied_order_type
from sandtrade.signal_model import ACTIONS, Command, ParsedSignal, SignalError
from sandtrade.signals.formats.base import (
    MAX_COMMANDS,
    SignalFormat,
    action_value,
    check_prices,
    commands_for,
    number,
    optional_text,
    order_type_value,
    symbol_value,
)

__all__ = ["NativeFormat"]


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
    check_prices(order_type, limit, stop, where, n("limit_price"), n("stop_price"))
    return commands_for(action, symbol, qty, where=where, qty_name=n("qty"),
                        order_type=order_type, limit=limit, stop=stop)
