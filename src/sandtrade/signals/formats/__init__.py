"""Signal formats: how a body becomes commands, with a precise message when it cannot.

Every format is a plugin: the built-ins are contributed through the
``sandtrade_signal_formats`` hook like any third-party one, and user-defined field mappings
(``[signals.mappings.NAME]`` in the configuration) become formats too. This package is their
face; each module owns one part (``sandtrade signals check BODY`` shows how a body is read):

:mod:`.base`
    The :class:`SignalFormat` interface and the readers every format uses for a field.
:mod:`.native`
    ``native``: ``{"symbol": "AAPL", "action": "buy", "qty": 10}``, or ``"commands": [...]``.
:mod:`.tradingview`
    ``tradingview``: TradingView's strategy placeholders, flat or nested under ``"strategy"``.
:mod:`.traderspost`
    ``traderspost``: TradersPost's JSON (``ticker``, ``action``, ``sentiment``, ...).
:mod:`.text`
    ``text``: one command per line or ``;``, e.g. ``buy 10 AAPL limit 150``.
:mod:`.mapping`
    A user's mapping of a sender's JSON onto the native fields.
:mod:`.registry`
    Detecting and picking a format for a body, whatever its Content-Type says; an unexpanded
    ``{{placeholder}}`` is reported with its line before anything else.

An ``id`` (or ``idempotency_key``) is a duplicate key in every format: a second signal with
the same one within ``signals.duplicate_window`` is recognised and not executed (an identical
body from the same sender is a resend within ``signals.resend_window`` anyway).

Numbers are lenient in form, strict in meaning: ``"qty": "10"`` (a plain number in quotes) is
10; ``1,5`` (a decimal comma), ``1,000`` and ``1.000,5`` (separators), NaN and booleans are
refused, with the field named, rather than guessed at. Fields a format does not read are
ignored and listed (``ignored_fields``); a near miss of one that matters is refused with
"did you mean".

Without an order type the prices imply it, in every format: a limit price makes a limit order,
a stop price a stop order, both a stop-limit order (:func:`~sandtrade.models.implied_order_type`);
a type that contradicts the prices is an error.
"""

from sandtrade.signals.formats.base import MAX_COMMANDS, SignalFormat
from sandtrade.signals.formats.mapping import MappingFormat, MappingSpec
from sandtrade.signals.formats.native import NativeFormat
from sandtrade.signals.formats.registry import BUILTIN_FORMATS, FormatRegistry, parse_json_body
from sandtrade.signals.formats.text import TextFormat
from sandtrade.signals.formats.traderspost import TradersPostFormat
from sandtrade.signals.formats.tradingview import TradingViewFormat

__all__ = [
    "BUILTIN_FORMATS",
    "MAX_COMMANDS",
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
