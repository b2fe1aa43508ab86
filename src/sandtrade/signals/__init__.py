"""Signals: instructions from outside, parsed, validated, routed, journaled and replayable."""

from sandtrade.signal_model import Command, ParsedSignal, SignalError, SignalRecord, SignalStatus
from sandtrade.signals.formats import FormatRegistry, SignalFormat

__all__ = ["Command", "FormatRegistry", "ParsedSignal", "SignalError", "SignalFormat",
           "SignalRecord", "SignalStatus"]
