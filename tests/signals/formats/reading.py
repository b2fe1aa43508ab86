"""How the format tests read a body: the default registry (and one with a user mapping), the
signal a body parses to, or the error it is refused with.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandtrade.signal_model import Command, ParsedSignal, SignalError
from sandtrade.signals.formats import FormatRegistry, MappingSpec

__all__ = ["BOT", "MAPPED", "NATIVE", "REGISTRY", "js", "parse", "refused", "target"]


REGISTRY = FormatRegistry.default()
BOT = MappingSpec(detect="sig", symbol="sig.pair", action="sig.side", qty="sig.size",
                  actions={"LONG": "buy"})
MAPPED = FormatRegistry.default({"bot": BOT})
#: The smallest native body.
NATIVE = '{"symbol": "AAPL", "action": "buy", "qty": 1}'


def parse(body: str, fmt: str | None = None, registry: FormatRegistry = REGISTRY
          ) -> ParsedSignal:
    return registry.parse(body, fmt)


def refused(body: str, fmt: str | None = None, registry: FormatRegistry = REGISTRY
            ) -> SignalError:
    """The SignalError the body is refused with (any other exception fails the test)."""
    with pytest.raises(SignalError) as info:
        registry.parse(body, fmt)
    return info.value


def js(**fields: Any) -> str:
    return json.dumps(fields)


def target(symbol: str, qty: float, **extra: Any) -> Command:
    return Command(action="target", symbol=symbol, qty=qty, **extra)
