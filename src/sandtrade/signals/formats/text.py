"""The ``text`` format: one command per line or ``;``.

``buy 10 AAPL``, ``sell 0.5 BTCUSD limit 65000``, ``close AAPL`` (or ``exit AAPL``),
``flat AAPL``, ``long 10 AAPL``, ``short 5 AAPL``, ``target -5 AAPL``, ``cancel AAPL``, with
optional ``key=value`` words (``account=``, ``strategy=``, ``id=``, ``comment=``,
``price=``; ``tp=`` and ``sl=`` a price or a percent from the fill such as ``2%``;
``trail=`` a trailing stop loss, an amount or a percent). It reads every body that is not
JSON, in the one-line shapes public bridges use:

* the words in any order after the action, or the ticker first: ``AAPL buy 10``;
* comma-separated: ``buy,AAPL,10``;
* pipe-separated, ``ACTION | TICKER@PRICE | COMMENT`` (rfwarn/TradingView-Alpaca-Bridge's
  ``{{strategy.order.action}} | {{ticker}}@{{close}} | {{strategy.order.id}}``; a leading
  ``order`` is TradingView's own wording, as in ``order sell | MSFT@337.57 | ...``);
* TradingView's default strategy message, ``order buy @ 3 filled on AAPL. New strategy
  position is 3``: the position becomes the one it names.

Without a quantity, a buy, sell, long or short gets the default size.
"""

from __future__ import annotations

import math
import re
from typing import Any

from sandtrade.models import ExitSpec
from sandtrade.signal_model import ACTIONS, Command, ParsedSignal, SignalError
from sandtrade.signals.formats.base import (
    COMMA_NUMBER,
    MAX_COMMANDS,
    SignalFormat,
    cancel_command,
    comma_hint,
    commands_for,
    exit_value,
    expanded,
    near_miss,
    symbol_value,
)

__all__ = ["TextFormat"]


_TEXT_ACTIONS = (*ACTIONS, "cancel", "exit")
_NUM_TOKEN = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_SETTINGS = ("account", "strategy", "id", "comment", "idempotency_key", "price", "tp", "sl",
             "trail")
#: TradingView's default strategy alert message (its "Message" box before it is edited).
_TV_DEFAULT = re.compile(r"order (?P<action>buy|sell) @ (?P<qty>\S+) filled on (?P<symbol>\S+?)"
                         r"\. new strategy position is (?P<position>\S+?)\.?", re.IGNORECASE)


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
        first = next((c for c in commands if c.only_if is None), commands[0])
        words = re.split(r"[\s,|]+", parts[0].lower())
        return ParsedSignal(
            format=self.name, commands=commands, symbol=first.symbol,
            action=next((w for w in words if w in _TEXT_ACTIONS), words[0]),
            qty=None if first.action == "target" or first.size is not None else first.qty,
            price=float(meta["price"]) if "price" in meta else None,
            account=meta.get("account"), strategy=meta.get("strategy"),
            alert_id=meta.get("id"), comment=meta.get("comment"),
            idempotency_key=meta.get("idempotency_key") or meta.get("id"),
            fields={"commands": parts, **meta})

    def _command(self, text: str, n: int | None, meta: dict[str, str]) -> list[Command]:
        where = f"command {n}" if n else "command"
        m = _TV_DEFAULT.fullmatch(text.strip())
        if m:
            symbol = symbol_value(m["symbol"], f"{where} symbol")
            position = self._number(m["position"], f"{where} strategy position")
            return [Command(action="target", symbol=symbol, qty=position)]
        if "|" in text:
            return self._piped(text, where, meta)
        return self._words(text, where, meta)

    def _words(self, text: str, where: str, meta: dict[str, str]) -> list[Command]:
        """``buy 10 AAPL limit 150 tp=160``, ``AAPL buy 10`` or ``buy,AAPL,10``."""
        words = text.split()
        parts = [p.strip() for p in text.split(",")]
        if len(parts) > 1 and all(p and " " not in p and "\t" not in p for p in parts):
            # buy,AAPL,10: the words, comma-separated.
            if parts[0][0].isdigit():
                raise SignalError(f"{text!r} starts with a number (a PineConnector license "
                                  "id?); write the action first, e.g. 'buy,AAPL,10'",
                                  field=where)
            words = parts
        elif "," in text and " " not in text.strip():
            raise SignalError(f"{text!r} is comma-separated with an empty part; write it "
                              "with spaces, e.g. 'buy 10 AAPL'", field=where)
        plain: list[str] = []
        exits: dict[str, Any] = {}
        for word in words:
            key, eq, value = word.partition("=")
            if eq:
                self._setting(key, value, text, where, meta, exits)
            else:
                plain.append(word)
        if not plain:
            raise SignalError(f"{text!r} has no action", field=where)
        if plain[0].lower() not in _TEXT_ACTIONS and plain[0].isupper() and \
                len(plain) > 1 and plain[1].lower() in _TEXT_ACTIONS:
            plain[0], plain[1] = plain[1], plain[0]  # AAPL buy 10: a ticker is upper-case
        action = plain[0].lower()
        if action not in _TEXT_ACTIONS:
            raise SignalError(f"unknown action {plain[0]!r} in {text!r} (use one of: "
                              f"{', '.join(_TEXT_ACTIONS)})", field=where)
        if action == "exit":
            action = "close"
        rest = plain[1:]
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
            if qty is not None or prices or exits:
                raise SignalError(f"cancel takes only a symbol in {text!r}", field=where)
            return [cancel_command(symbol)]
        if exits and action in ("close", "flat", "target"):
            raise SignalError(f"tp, sl and trail go with an entry (buy, sell, long, short), "
                              f"not {action}, in {text!r}", field=where)
        return commands_for(action, symbol, qty, where=where + " ", qty_name="quantity",
                            order_type=order_type, limit=prices.get("limit"),
                            stop=prices.get("stop"), **exits)

    def _setting(self, key: str, value: str, text: str, where: str, meta: dict[str, str],
                 exits: dict[str, Any]) -> None:
        """A ``key=value`` word: the signal's metadata, or an exit of the entry."""
        key = key.lower()
        if key not in _SETTINGS:
            meant = near_miss(key, _SETTINGS)
            hint = f"did you mean {meant!r}? " if meant else ""
            raise SignalError(f"unknown setting {key!r} in {text!r} ({hint}known: "
                              f"{', '.join(_SETTINGS)})", field=where)
        value = expanded(value.strip("\"'"), f"{where} {key}")
        if key in ("tp", "sl"):
            exits["take_profit" if key == "tp" else "stop_loss"] = \
                self._exit(value, f"{where} {key}", stop_loss=key == "sl")
        elif key == "trail":
            pct = value.endswith("%")
            x = self._number(value.rstrip("%"), f"{where} trail")
            if x <= 0:
                raise SignalError(f"trail must be above 0 in {text!r}", field=where)
            exits["trail_percent" if pct else "trail_price"] = x
        elif key == "price":
            x = self._number(value, f"{where} price")
            if x <= 0:
                raise SignalError(f"price must be above 0 in {text!r}", field=where)
            meta["price"] = f"{x:g}"
        else:
            meta[key] = value

    def _exit(self, value: str, field: str, *, stop_loss: bool) -> ExitSpec:
        """``tp=200`` (a price) or ``tp=2%`` (a percent from the fill)."""
        pct = value.endswith("%")
        x = self._number(value.rstrip("%"), field)
        if x <= 0:
            raise SignalError(f"must be above 0, got {value}", field=field)
        return exit_value(field, names=("price", "percent", "amount"), stop_loss=stop_loss,
                          **({"percent": x} if pct else {"price": x}))

    def _piped(self, text: str, where: str, meta: dict[str, str]) -> list[Command]:
        """``ACTION | TICKER@PRICE | COMMENT`` (rfwarn/TradingView-Alpaca-Bridge)."""
        parts = [p.strip() for p in text.split("|")]
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise SignalError(f"{text!r} is pipe-separated but not ACTION | TICKER@PRICE | "
                              "COMMENT", field=where)
        head = parts[0].split()
        if head and head[0].lower() == "order":  # TradingView's "order sell | ..."
            head = head[1:]
        ticker, at, price = parts[1].partition("@")
        if " " in ticker.strip():
            raise SignalError(f"{parts[1]!r} is not TICKER or TICKER@PRICE in {text!r}",
                              field=where)
        line = " ".join([*head, ticker.strip()])
        if at:
            line += f" @ {price.strip()}"
        comment = " | ".join(p for p in parts[2:] if p)
        if comment:
            meta.setdefault("comment", expanded(comment, f"{where} comment"))
        return self._words(line, where, meta)

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
