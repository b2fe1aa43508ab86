"""The strategy API: what a strategy file sees (``ctx``, ``ctx.ta``) and how it is loaded."""

from sandtrade.strategy.context import (
    FULL_EQUITY,
    AccountView,
    Context,
    OrderView,
    PositionView,
    Trading,
)
from sandtrade.strategy.hooks import HOOK_NAMES, StrategySpec
from sandtrade.strategy.loader import LoadedStrategy, load_strategy, resolve_params
from sandtrade.strategy.ta import Bands, Series, crossover, crossunder

__all__ = [
    "FULL_EQUITY",
    "HOOK_NAMES",
    "AccountView",
    "Bands",
    "Context",
    "LoadedStrategy",
    "OrderView",
    "PositionView",
    "Series",
    "StrategySpec",
    "Trading",
    "crossover",
    "crossunder",
    "load_strategy",
    "resolve_params",
]
