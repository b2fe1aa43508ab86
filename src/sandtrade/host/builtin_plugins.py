"""The host's own defaults, registered through the same hooks as third-party plugins."""

from __future__ import annotations

from sandtrade.broker.fills import BUILTIN_FILL_PROFILES, FillProfile
from sandtrade.hookspecs import hookimpl
from sandtrade.market.hub import MarketSource
from sandtrade.market.sources import ReplaySource, SyntheticSource
from sandtrade.options.sources import ChainSource, RecordedChains, SyntheticChains
from sandtrade.signals.formats import BUILTIN_FORMATS, SignalFormat
from sandtrade.strategy.modules import BUILTIN_STRATEGY_MODULES, StrategyModule

__all__ = ["BrokerDefaults", "MarketDefaults", "OptionDefaults", "SignalDefaults",
           "StrategyModuleDefaults"]


class BrokerDefaults:
    """Contributes the built-in fill profiles: next_open, close and quote."""

    @hookimpl(trylast=True)
    def sandtrade_fill_profiles(self) -> list[type[FillProfile]]:
        """The three built-in fill profiles."""
        return list(BUILTIN_FILL_PROFILES)


class MarketDefaults:
    """Contributes the built-in market sources: replay (CSV history) and synthetic (GBM)."""

    @hookimpl(trylast=True)
    def sandtrade_market_sources(self) -> list[type[MarketSource]]:
        """The two built-in sources."""
        return [ReplaySource, SyntheticSource]


class OptionDefaults:
    """Contributes the built-in option-chain sources: synthetic and recorded."""

    @hookimpl(trylast=True)
    def sandtrade_option_chains(self) -> list[type[ChainSource]]:
        """The two built-in chain sources."""
        return [SyntheticChains, RecordedChains]


class SignalDefaults:
    """Contributes the built-in signal formats: native, tradingview, traderspost and text."""

    @hookimpl(trylast=True)
    def sandtrade_signal_formats(self) -> list[type[SignalFormat]]:
        """The four built-in formats."""
        return list(BUILTIN_FORMATS)


class StrategyModuleDefaults:
    """Contributes the built-in strategy modules: reviewed proxies of numpy and TA-Lib."""

    @hookimpl(trylast=True)
    def sandtrade_strategy_modules(self) -> list[StrategyModule]:
        """numpy and talib."""
        return list(BUILTIN_STRATEGY_MODULES)
