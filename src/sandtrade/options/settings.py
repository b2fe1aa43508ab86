"""``[options]`` of the configuration: rates, dividend yields, and how synthetic chains look.

Every number the pricer and the synthetic chains use is a setting here, with its unit; nothing
in the room hides a constant of its own. A host reads it from the TOML file like every other
table (``SANDTRADE_OPTIONS__RATE`` from the environment).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["OptionsSettings"]


class OptionsSettings(BaseModel):
    """``[options]``: the pricer's rates and the synthetic chains' shape."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(
        "synthetic", description="Where chains come from: 'synthetic' (priced from the "
        "underlying's last price), 'recorded' (the files below) or an option-chain plugin's "
        "name (the sandtrade_option_chains hook).")
    files: list[str] = Field(
        default_factory=list, description="recorded: chain files (yfinance CSV/JSON, Alpaca "
        "snapshot JSON) as PATH or SYMBOL=PATH; a file's time is its as_of (file name "
        "SYMBOL_YYYY-MM-DDTHH-MM.csv, else its modification time).")
    rate: float = Field(0.04, ge=-0.1, le=1.0, description="Risk-free rate, continuously "
                        "compounded per year (0.04 = 4 %).")
    dividend_yield: float = Field(0.0, ge=0.0, le=1.0, description="Continuous dividend yield "
                                  "per year of every underlying without its own.")
    dividend_yields: dict[str, float] = Field(
        default_factory=dict, description="Per underlying: {SPY = 0.013}.")
    volatility: float = Field(0.25, gt=0.0, le=5.0, description="synthetic: at-the-money "
                              "implied volatility per year (0.25 = 25 %).")
    volatilities: dict[str, float] = Field(
        default_factory=dict, description="synthetic: per underlying: {SPY = 0.16}.")
    skew: float = Field(-0.02, ge=-1.0, le=1.0, description="synthetic: volatility added per "
                        "unit of standardised moneyness ln(K/F)/sqrt(T) (negative: puts dearer).")
    smile: float = Field(0.005, ge=0.0, le=1.0, description="synthetic: volatility added per "
                         "squared unit of standardised moneyness (a smile's curvature).")
    strike_step: float = Field(0.0, ge=0.0, description="synthetic: distance between "
                               "strikes; 0 picks about 1 % of the spot (0.5, 1, 2.5, 5, 10 ...).")
    strikes_each_side: int = Field(20, ge=1, le=500, description="synthetic: strikes listed "
                                   "above and below the one nearest the spot.")
    weeklies: int = Field(4, ge=0, le=52, description="synthetic: the next N Friday expiries.")
    monthlies: int = Field(3, ge=0, le=36, description="synthetic: the next N monthly "
                           "expiries (third Fridays).")
    spread_percent: float = Field(4.0, ge=0.0, le=100.0, description="synthetic: bid-ask "
                                  "spread as a percentage of the theoretical price.")
    min_spread: float = Field(0.02, ge=0.0, description="synthetic: the narrowest bid-ask "
                              "spread, in price units.")
    tick: float = Field(0.01, gt=0.0, description="synthetic: bids round down and asks up to "
                        "this tick.")

    def dividend_for(self, underlying: str) -> float:
        """The dividend yield of ``underlying``: its own, else ``dividend_yield``."""
        return self.dividend_yields.get(underlying, self.dividend_yield)

    def volatility_for(self, underlying: str) -> float:
        """The at-the-money volatility of ``underlying``'s synthetic chain."""
        return self.volatilities.get(underlying, self.volatility)
