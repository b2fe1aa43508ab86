"""The interface a live-broker plugin implements (``sandtrade_live_brokers`` hook).

sandtrade ships no live broker: a plugin that talks to one (Alpaca, Interactive Brokers ...)
implements :class:`LiveBrokerAdapter`. Signals reach it only when the configuration says so
twice: a route ``to = "live:NAME"`` (or ``mode = "live"``) *and* ``allow_live = true``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

from sandtrade.signal_model import Command, SignalRecord

__all__ = ["LiveBrokerAdapter"]


class LiveBrokerAdapter(ABC):
    """Carries out signals at a real broker. Subclasses set ``name``.

    :param settings: ``[plugins.NAME]`` of the configuration (the plugin validates it).
    """

    name: ClassVar[str]

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings

    @abstractmethod
    def execute(self, record: SignalRecord, commands: Sequence[Command],
                client_order_ids: Sequence[str]) -> str:
        """Place the orders the commands mean, in order; return what was done (shown in the
        journal). Raise to mark the signal failed with the exception's message.

        ``client_order_ids`` (one per command) are stable across retries: pass them to the
        broker so it refuses a second order with the same id. The host hands a signal over
        at most once (it is marked ``routed`` durably first).
        """
