"""Detecting and picking a format for a body.

The body is read whatever the Content-Type says (TradingView sends ``text/plain`` for a JSON
message with a stray trailing newline). A body that starts with ``{`` is JSON; anything else is
a text form. Before anything else, a ``{{placeholder}}`` that TradingView did not expand is
reported with its line. A format named by the sender is used as named; otherwise the formats
are asked in priority order (user mappings, plugins, then the built-ins) and the first that
detects the body reads it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from sandtrade.signal_model import ParsedSignal, SignalError
from sandtrade.signals.formats.base import (
    PLACEHOLDER,
    SignalFormat,
    near_miss,
    placeholder_message,
)
from sandtrade.signals.formats.mapping import MappingFormat, MappingSpec
from sandtrade.signals.formats.native import NativeFormat
from sandtrade.signals.formats.text import TextFormat
from sandtrade.signals.formats.traderspost import TradersPostFormat
from sandtrade.signals.formats.tradingview import TradingViewFormat

__all__ = ["BUILTIN_FORMATS", "FormatRegistry", "parse_json_body"]


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
        if re.search("[\u201c\u201d\u2018\u2019]", body):
            hint = ' (curly quotes “ ” are not JSON quotes: use straight quotes ")'
        elif re.search(r":\s*-?\d+,\d", line_text):
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
            m = PLACEHOLDER.search(line)
            if m:
                where = f"line {lineno}" if "\n" in text else None
                raise SignalError(placeholder_message(m.group(0)), field=where)
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
            for key in data:
                meant = near_miss(key, ("symbol", "ticker", "commands"))
                if meant is not None:
                    raise SignalError(f"unknown field: did you mean {meant!r}?", field=key)
            has = ", ".join(sorted(data)) or "nothing"
            raise SignalError(
                "no symbol: the JSON has none of the fields symbol (sandtrade), ticker "
                f"(TradingView, TradersPost) or commands; it has: {has}")
        raise SignalError("the body is in no known format (known: "
                          f"{', '.join(self.names)})")
