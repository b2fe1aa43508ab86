"""Broker settings: costs, fill profile, partial fills and margin. Limits and rates are data."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["BrokerSettings"]


class BrokerSettings(BaseModel):
    """How the paper broker charges, fills and margins orders.

    The defaults reproduce backtesting.py's ``Backtest(..., commission=0)``: market orders fill
    at the next bar's open, no spread or slippage, whole-account margin of 100 % on both sides.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fill_profile: str = Field(
        "next_open",
        description="Name of the fill profile: 'next_open' (default), 'close' or 'quote'.",
    )
    commission_pct: Annotated[float, Field(ge=0, lt=0.1)] = Field(
        0.0, description="Commission as a fraction of traded value per fill (0.002 = 0.2 %)."
    )
    commission_per_unit: Annotated[float, Field(ge=0)] = Field(
        0.0, description="Commission in currency per unit (share, coin, contract) traded."
    )
    commission_min: Annotated[float, Field(ge=0)] = Field(
        0.0, description="Minimum commission per order, charged on its first fill."
    )
    slippage_pct: Annotated[float, Field(ge=0, lt=0.1)] = Field(
        0.0,
        description="Adverse slippage on market and triggered-stop fills, as a fraction of "
        "price; capped at the bar's high (buys) or low (sells). Limit fills never slip.",
    )
    spread_pct: Annotated[float, Field(ge=0, lt=0.1)] = Field(
        0.0,
        description="Quoted spread (ask - bid) as a fraction of price, used by the 'quote' "
        "profile when a source gives bars but no quotes.",
    )
    volume_share: Annotated[float, Field(gt=0, le=1)] | None = Field(
        None,
        description="Cap each bar's fills at this share of the bar's volume; the rest of the "
        "order stays working (partial fills). None: no cap.",
    )
    long_margin: Annotated[float, Field(gt=0, le=1)] = Field(
        1.0, description="Initial margin on long value: 1.0 is a cash account, 0.5 is 2x."
    )
    short_margin: Annotated[float, Field(gt=0, le=5)] = Field(
        1.0, description="Initial margin on short value (1.0 = 100 %, Reg T is 1.5)."
    )
    allow_short: bool = Field(True, description="Whether sells may open short positions.")
    price_band_pct: Annotated[float, Field(gt=0)] = Field(
        0.5,
        description="Reject limit and stop prices further than this fraction from the last "
        "price (0.5 = ±50 %): a fat-finger guard.",
    )

    options_level: Annotated[int, Field(ge=0, le=3)] = Field(
        3, description="Options level of an account with none of its own (risk rules' "
        "options_level), as Alpaca defines them: 0 none, 1 covered calls and cash-secured "
        "puts, 2 also long calls and puts, 3 also spreads (multi-leg orders). Alpaca's paper "
        "accounts start at 3.")
    max_legs: Annotated[int, Field(ge=2, le=16)] = Field(
        4, description="The most legs a multi-leg order may have (Alpaca takes 2 to 4).")
    multileg_fill: Literal["mid", "natural", "share"] = Field(
        "natural", description="How a multi-leg order's legs are priced from their quotes: "
        "'mid', 'natural' (pay the ask, receive the bid on each leg) or 'share' (a buy pays "
        "bid + multileg_spread_share x spread, a sell receives ask - the same).")
    multileg_spread_share: Annotated[float, Field(ge=0, le=1)] = Field(
        0.75, description="With multileg_fill 'share': the share of each leg's spread paid "
        "(0.5 is the mid, 1 the natural price).")

    def commission(self, qty: float, price: float, multiplier: float = 1.0) -> float:
        """Commission for one fill of ``qty`` units at ``price`` (the per-order minimum aside)."""
        return self.commission_per_unit * qty + qty * price * multiplier * self.commission_pct
