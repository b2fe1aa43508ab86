"""The host's plugin manager: built-in plugins, entry-point plugins and the hooks they answer.

Built-ins are registered through the same call as third-party plugins (``BUILTIN_PLUGINS``).
A broken third-party entry point is logged with its name and skipped, so one bad package
cannot take the host down; a broken built-in is a bug and fatal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import pluggy

from sandtrade import hookspecs
from sandtrade.broker.fills import FillProfile
from sandtrade.host.builtin_plugins import (
    BrokerDefaults,
    MarketDefaults,
    OptionDefaults,
    SignalDefaults,
    StrategyModuleDefaults,
)
from sandtrade.market.hub import MarketSource
from sandtrade.options.sources import ChainSource
from sandtrade.signals.destinations import LiveBrokerAdapter
from sandtrade.signals.formats import FormatRegistry, MappingSpec, SignalFormat
from sandtrade.strategy.modules import StrategyModule

__all__ = ["BUILTIN_PLUGINS", "ENTRY_POINT_GROUP", "PluginHost", "PluginLoadError"]

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "sandtrade"
BUILTIN_PLUGINS: tuple[tuple[str, object], ...] = (
    ("builtin.broker", BrokerDefaults()),
    ("builtin.market", MarketDefaults()),
    ("builtin.options", OptionDefaults()),
    ("builtin.signals", SignalDefaults()),
    ("builtin.strategy_modules", StrategyModuleDefaults()),
)


@dataclass(frozen=True)
class PluginLoadError:
    """A third-party plugin that could not be loaded, and why (shown to operators)."""

    name: str
    value: str
    error: str


@dataclass
class PluginHost:
    """Owns the pluggy ``PluginManager`` and answers the host's questions to plugins."""

    pm: pluggy.PluginManager = field(default_factory=lambda: pluggy.PluginManager("sandtrade"))
    errors: list[PluginLoadError] = field(default_factory=list)

    @classmethod
    def create(cls, *, load_entry_points: bool = True,
               extra: Iterable[object] = ()) -> PluginHost:
        """A host with the built-ins, the installed entry-point plugins and ``extra``."""
        host = cls()
        host.pm.add_hookspecs(hookspecs)
        for name, plugin in BUILTIN_PLUGINS:
            host.pm.register(plugin, name=name)
        if load_entry_points:
            for ep in entry_points(group=ENTRY_POINT_GROUP):
                host._load(ep)
        for plugin in extra:
            host.pm.register(plugin)
        host.pm.check_pending()
        return host

    def _load(self, ep: EntryPoint) -> None:
        if self.pm.has_plugin(ep.name):
            return
        try:
            plugin = ep.load()
            self.pm.register(plugin, name=ep.name)
        except Exception as e:  # any failure of third-party code is contained here
            err = PluginLoadError(ep.name, ep.value, f"{type(e).__name__}: {e}")
            self.errors.append(err)
            log.error("plugin %r (%s) failed to load and is skipped: %s", ep.name, ep.value,
                      err.error)

    def market_sources(self) -> dict[str, type[MarketSource]]:
        """Every market source by name; a plugin's source overrides a built-in's of that name."""
        return _by_name(self.pm.hook.sandtrade_market_sources())

    def option_chain_sources(self) -> dict[str, type[ChainSource]]:
        """Every option-chain source by name; a plugin's overrides a built-in's of that name."""
        return _by_name(self.pm.hook.sandtrade_option_chains())

    def fill_profiles(self) -> dict[str, type[FillProfile]]:
        """Every fill profile by name; a plugin's profile overrides a built-in's of that name."""
        return _by_name(self.pm.hook.sandtrade_fill_profiles())

    def strategy_modules(self) -> dict[str, StrategyModule]:
        """Every strategy module by name (what a strategy may import besides the standard
        modules); a plugin's overrides a built-in's of that name."""
        return _by_name(self.pm.hook.sandtrade_strategy_modules())

    def signal_formats(self, mappings: dict[str, MappingSpec] | None = None) -> FormatRegistry:
        """Every signal format (a plugin's overrides a built-in's of that name), plus the
        configuration's field mappings."""
        formats: dict[str, type[SignalFormat]] = _by_name(self.pm.hook.sandtrade_signal_formats())
        return FormatRegistry.default(mappings, formats=formats.values())

    def live_brokers(self) -> dict[str, type[LiveBrokerAdapter]]:
        """Every live-broker adapter by name."""
        return _by_name(self.pm.hook.sandtrade_live_brokers())

    def http_routes(self, host: object) -> list[object]:
        """Every plugin's HTTP routers."""
        routers: list[object] = []
        for contributed in self.pm.hook.sandtrade_http_routes(host=host):
            routers.extend(contributed)
        return routers


def _by_name(results: list[list[Any]]) -> dict[str, Any]:
    """Hook results (lists of classes with a ``name``) by name. Results come last-registered
    first, built-ins (trylast) at the end: reversed, the later ones overwrite the defaults."""
    out: dict[str, Any] = {}
    for contributed in reversed(results):
        for item in contributed:
            out[item.name] = item
    return out
