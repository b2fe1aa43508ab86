"""User-defined formats: ``[signals.mappings.NAME]`` maps a sender's JSON onto the native
fields, and is then read as :mod:`native <.native>` JSON.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sandtrade.signal_model import ParsedSignal, SignalError
from sandtrade.signals.formats.base import SignalFormat
from sandtrade.signals.formats.native import NativeFormat

__all__ = ["MappingFormat", "MappingSpec"]


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
