"""The ``text`` format: one command per line or ``;``.

``buy 10 AAPL``, ``sell 0.5 BTCUSD limit 65000``, ``close AAPL``, ``flat AAPL``,
``long 10 AAPL``, ``short 5 AAPL``, ``target -5 AAPL``, ``cancel AAPL``, with optional
``key=value`` words (``account=``, ``strategy=``, ``id=``, ``comment=``). It reads every body
that is not JSON.
"""

from __future__ import annotations

import math
import re
from typing import Any

from sandtrade.signal_model import ACTIONS, Command, ParsedSignal, SignalError
from sandtrade.signals.formats.base import (
    COMMA_NUMBER,
    MAX_COMMANDS,
    SignalFormat,
    cancel_command,
    comma_hint,
    commands_for,
    expanded,
    symbol_value,
)

__all__ = ["TextFormat"]


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
                meta[key] = expanded(value.strip("\"'"), f"{where} {key}")
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
            return [cancel_command(symbol)]
        return commands_for(action, symbol, qty, where=where + " ", qty_name="quantity",
                            order_type=order_type, limit=prices.get("limit"),
                            stop=prices.get("stop"))

    @staticmethod
    def _number(word: str, field: str) -> float:
        expanded(word, field)
        if COMMA_NUMBER.fullmatch(word):
            raise SignalError(f"{word!r} is a number written with a comma: "
                              f"{comma_hint(word)}", field=field)
        if not _NUM_TOKEN.fullmatch(word):
            raise SignalError(f"{word!r} is not a number", field=field)
        x = float(word)
        if not math.isfinite(x):
            raise SignalError(f"{word!r} is not a finite number", field=field)
        return x
