"""The strategy hookspecs: which ``on_*`` hooks a strategy file may define, and their arguments.

The one definition both readers of a strategy share: :mod:`~sandtrade.strategy.loader` checks
a loaded file's functions against it, :mod:`~sandtrade.strategy.static_check` reads a hook's
arguments from it without running the file. It imports nothing of sandtrade, so neither of
them has to import the other to learn the hooks.
"""

from __future__ import annotations

from typing import Any

import pluggy

__all__ = ["HOOK_NAMES", "PROJECT", "StrategySpec"]

#: The pluggy project name of the strategy hooks (not the host's plugin hooks: a strategy's
#: functions are never registered with the host's plugin manager).
PROJECT = "sandtrade.strategy"
hookspec = pluggy.HookspecMarker(PROJECT)


class StrategySpec:
    """The hooks a strategy file may define. Every one is optional."""

    @hookspec
    def on_start(self, ctx: Any) -> None:
        """Called once before the first bar."""

    @hookspec
    def on_bar(self, ctx: Any, bar: Any) -> None:
        """Called for every bar of every symbol, after fills at its open were reported."""

    @hookspec
    def on_signal(self, ctx: Any, signal: Any) -> None:
        """Called for each external signal routed to this strategy (e.g. a TradingView alert)."""

    @hookspec
    def on_fill(self, ctx: Any, fill: Any) -> None:
        """Called for each fill of one of the strategy's orders, before the bar's on_bar."""

    @hookspec
    def on_stop(self, ctx: Any) -> None:
        """Called once after the last bar."""


#: The hooks' names, in the order they are declared above.
HOOK_NAMES = tuple(n for n in vars(StrategySpec) if n.startswith("on_"))
