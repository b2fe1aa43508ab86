"""Options: contracts, chains (synthetic and recorded), pricing and greeks, strategy templates.

A room of its own on the domain floor: it imports only the floor (``models``, ``errors``) and
QuantLib, so the host, a back-test and a worker can all use it, and the broker never does (it
is handed ``OptionQuotes`` as its ``quotes`` provider). ``pricing`` prices with QuantLib (why:
its docstring); ``chain`` and ``loader`` make and read chains; ``sources`` serves them and the
broker's quotes; ``greeks`` measures positions; ``templates`` and ``payoff`` build and measure
multi-leg positions. The picture (``sandtrade.options.picture``, plotly) is imported from its
own module only, so importing this package loads no plotly.
"""

from __future__ import annotations

from sandtrade.options.chain import ChainRow, OptionChain, synthetic_chain
from sandtrade.options.contracts import OptionContract, occ_symbol, select_expiry
from sandtrade.options.greeks import AccountGreeks, PositionGreeks, account_greeks, position_greeks
from sandtrade.options.loader import load_chain, write_chain_csv
from sandtrade.options.payoff import PayoffLeg, PayoffSummary, pnl_at, summarise
from sandtrade.options.pricing import (
    Greeks,
    bsm_greeks,
    bsm_price,
    implied_volatility,
    years_to_expiry,
)
from sandtrade.options.settings import OptionsSettings
from sandtrade.options.sources import ChainSource, OptionQuotes, RecordedChains, SyntheticChains
from sandtrade.options.templates import TEMPLATES, StrategyPlan, TemplateError, build_strategy

__all__ = [
    "TEMPLATES",
    "AccountGreeks",
    "ChainRow",
    "ChainSource",
    "Greeks",
    "OptionChain",
    "OptionContract",
    "OptionQuotes",
    "OptionsSettings",
    "PayoffLeg",
    "PayoffSummary",
    "PositionGreeks",
    "RecordedChains",
    "StrategyPlan",
    "SyntheticChains",
    "TemplateError",
    "account_greeks",
    "bsm_greeks",
    "bsm_price",
    "build_strategy",
    "implied_volatility",
    "load_chain",
    "occ_symbol",
    "pnl_at",
    "position_greeks",
    "select_expiry",
    "summarise",
    "synthetic_chain",
    "write_chain_csv",
    "years_to_expiry",
]
