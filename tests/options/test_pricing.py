"""Pricing against the textbook and the library's own identities: Hull's value, put-call
parity on every synthetic chain, implied volatility recovering its input."""

from __future__ import annotations

import math
from datetime import date

import pytest

from sandtrade.models import OptionRight
from sandtrade.options import (
    OptionsSettings,
    bsm_greeks,
    bsm_price,
    implied_volatility,
    synthetic_chain,
    years_to_expiry,
)

from .conftest import NOW

CALL, PUT = OptionRight.CALL, OptionRight.PUT


def test_hull_textbook_call_and_put() -> None:
    # Hull, Options, Futures and Other Derivatives: S=42, K=40, r=10 %, sigma=20 %, T=0.5
    assert round(bsm_price(CALL, 42, 40, 0.5, 0.2, 0.10), 2) == 4.76
    assert round(bsm_price(PUT, 42, 40, 0.5, 0.2, 0.10), 2) == 0.81


def test_hull_greeks_in_broker_units() -> None:
    # Hull's delta example (S=49, K=50, r=5 %, sigma=20 %, T=0.3846): delta 0.522, theta
    # -4.31 a year, vega 12.1 per unit of volatility.
    g = bsm_greeks(CALL, 49, 50, 0.3846, 0.2, 0.05)
    assert g.delta == pytest.approx(0.522, abs=5e-4)
    assert g.theta * 365 == pytest.approx(-4.31, abs=5e-3)
    assert g.vega * 100 == pytest.approx(12.1, abs=5e-2)
    assert g.gamma == pytest.approx(0.066, abs=5e-4)


@pytest.mark.parametrize("conf", [
    OptionsSettings(),
    OptionsSettings(skew=0.0, smile=0.0, volatility=0.6),
    OptionsSettings(skew=-0.08, smile=0.02, dividend_yield=0.03, rate=0.01),
    OptionsSettings(rate=0.0, strikes_each_side=40, weeklies=8, monthlies=12),
], ids=["default", "flat", "skewed-dividend", "wide"])
def test_put_call_parity_on_every_synthetic_chain(conf: OptionsSettings) -> None:
    chain = synthetic_chain("XYZ", 137.5, NOW, conf)
    q = conf.dividend_for("XYZ")
    pairs = 0
    for expiry in chain.expiries():
        t = years_to_expiry(expiry, NOW)
        for call in chain.rows_for(expiry, CALL):
            put = chain.find(expiry, PUT, call.strike)
            assert put is not None and call.theo is not None and put.theo is not None
            parity = 137.5 * math.exp(-q * t) - call.strike * math.exp(-conf.rate * t)
            assert call.theo - put.theo == pytest.approx(parity, abs=1e-9)
            # and the quotes bracket it: no free lunch across the spread
            assert call.bid - put.ask <= parity + 1e-9 <= call.ask - put.bid + 2e-9
            pairs += 1
    assert pairs == len(chain) // 2


@pytest.mark.parametrize("vol", [0.05, 0.2, 0.45, 1.2])
@pytest.mark.parametrize("right", [CALL, PUT])
def test_implied_volatility_recovers_the_input(vol: float, right: OptionRight) -> None:
    for strike in (70.0, 90.0, 100.0, 110.0, 135.0):
        for years in (7 / 365, 0.25, 2.0):
            g = bsm_greeks(right, 100.0, strike, years, vol, 0.04, 0.01)
            if g.vega * 100 < 1e-4:  # the price barely depends on volatility: not invertible
                continue
            price = g.price
            got = implied_volatility(price, right, 100.0, strike, years, 0.04, 0.01)
            assert got == pytest.approx(vol, abs=1e-6)


def test_implied_volatility_of_an_impossible_price_names_the_bounds() -> None:
    with pytest.raises(ValueError, match=r"price 1 has no implied volatility: a call at strike "
                                         r"90 with spot 100 is worth more than 10\.8"):
        implied_volatility(1.0, CALL, 100.0, 90.0, 0.25, 0.04)


def test_an_expired_option_is_its_intrinsic_value() -> None:
    assert years_to_expiry(date(2025, 12, 5), NOW) == 0.0
    g = bsm_greeks(PUT, 95.0, 100.0, 0.0, 0.3, 0.04)
    assert (g.price, g.delta, g.gamma) == (5.0, -1.0, 0.0)


def test_bad_inputs_are_named() -> None:
    with pytest.raises(ValueError, match="spot must be a positive number, got -1"):
        bsm_price(CALL, -1, 100, 0.5, 0.2, 0.0)
    with pytest.raises(ValueError, match="volatility must be a positive number, got 0"):
        bsm_greeks(CALL, 100, 100, 0.5, 0, 0.0)
