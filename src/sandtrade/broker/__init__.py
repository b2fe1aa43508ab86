"""The paper broker room: order checks, fill profiles, positions, accounts and costs."""

from sandtrade.broker.fills import (
    BUILTIN_FILL_PROFILES,
    CloseProfile,
    FillProfile,
    NextOpenProfile,
    QuoteProfile,
)
from sandtrade.broker.ids import sequential_ids
from sandtrade.broker.paper import PaperBroker
from sandtrade.broker.risk import RiskRules, RiskStanding
from sandtrade.broker.settings import BrokerSettings

__all__ = [
    "BUILTIN_FILL_PROFILES",
    "BrokerSettings",
    "CloseProfile",
    "FillProfile",
    "NextOpenProfile",
    "PaperBroker",
    "QuoteProfile",
    "RiskRules",
    "RiskStanding",
    "sequential_ids",
]
