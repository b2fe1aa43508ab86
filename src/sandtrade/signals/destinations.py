"""Where a signal goes besides a paper account: a running strategy, or a live broker.

Two interfaces, both implemented outside this room:

* :class:`StrategyInbox`: the host's strategies, as the pipeline hands them signals. The
  strategy manager (:mod:`sandtrade.sandbox.manager`) satisfies it structurally; the pipeline
  is given one and never imports the sandbox.
* :class:`LiveBrokerAdapter`: what a live-broker plugin implements (``sandtrade_live_brokers``
  hook). sandtrade ships no live broker: a plugin that talks to one (Alpaca, Interactive
  Brokers ...) implements it. Signals reach it only when the configuration says so twice: a
  route ``to = "live:NAME"`` (or ``mode = "live"``) *and* ``allow_live = true``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

from sandtrade.signal_model import Command, SignalRecord

__all__ = ["Delivery", "LiveBrokerAdapter", "StrategyInbox"]


class Delivery(Protocol):
    """A signal handed to a strategy: ``done`` is set once it has handled it (or is gone),
    and ``error`` then says why it failed, or is None."""

    done: threading.Event
    error: str | None


class StrategyInbox(Protocol):
    """The strategies of a host, as the signal pipeline sees them."""

    def signal(self, account: str, name: str, payload: dict[str, Any], /) -> Delivery:
        """Hand ``payload`` (the signal as ``on_signal`` receives it) to ``account``'s
        running strategy ``name`` (no other account's is looked at); raise a
        :class:`~sandtrade.errors.SandtradeError` when it does not exist or is not running."""
        ...


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
