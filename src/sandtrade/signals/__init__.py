"""Signals: instructions from outside, parsed, validated, routed, journaled and replayable."""

from sandtrade.signals.formats import FormatRegistry, SignalFormat
from sandtrade.signals.model import Command, ParsedSignal, SignalError, SignalRecord, SignalStatus

__all__ = ["Command", "FormatRegistry", "ParsedSignal", "SignalError", "SignalFormat",
           "SignalRecord", "SignalStatus"]
