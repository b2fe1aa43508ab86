"""Every defined-risk template, bought as one multi-leg order, holds exactly its maximum loss
in buying power: the loss computed by the payoff module from the prices the legs filled at
(natural: each bought leg at its ask, each sold leg at its bid), not by the broker's rule."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from sandtrade.broker import PaperBroker
from sandtrade.models import Instrument, LegIntent, OrderStatus
from sandtrade.options import OptionsSettings, build_strategy, synthetic_chain
from sandtrade.options.payoff import PayoffLeg, summarise
from sandtrade.options.sources import OptionQuotes, SyntheticChains

from .conftest import ACCOUNT, MakeBroker

NOW = datetime(2025, 12, 8, 15, 0, tzinfo=UTC)
E = "2025-12-19"
SETTINGS = OptionsSettings(strike_step=5.0, strikes_each_side=12)

#: Templates whose legs are options of one expiry: a loss bounded by the strikes.
DEFINED_RISK: list[tuple[str, dict[str, Any]]] = [
    ("bull_call_spread", {"expiry": E, "long_strike": 100, "width": 10}),
    ("bear_put_spread", {"expiry": E, "long_strike": 100, "short_strike": 90}),
    ("bull_put_spread", {"expiry": E, "short_strike": 95, "width": 5}),
    ("bear_call_spread", {"expiry": E, "short_strike": 105, "long_strike": 115}),
    ("straddle", {"expiry": E}),
    ("strangle", {"expiry": E, "offset": 10}),
    ("iron_condor", {"expiry": "2026-01-16", "short_delta": 0.16, "width": 5}),
    ("iron_butterfly", {"expiry": E, "strike": 100, "width": 10}),
    ("butterfly", {"expiry": E, "strike": 100, "width": 5}),
]


@pytest.fixture
def broker(make_broker: MakeBroker) -> PaperBroker:
    b = make_broker(cash=1_000_000.0)
    b.register(Instrument.equity("XYZ"))
    b.mark("XYZ", 100.0)
    b.set_quote_provider(OptionQuotes(SyntheticChains(SETTINGS), lambda s: 100.0,
                                      lambda: NOW).quote)
    return b


@pytest.mark.parametrize(("name", "params"), DEFINED_RISK, ids=[n for n, _ in DEFINED_RISK])
def test_a_template_holds_its_max_loss_at_the_prices_it_filled_at(
        broker: PaperBroker, name: str, params: dict[str, Any]) -> None:
    plan = build_strategy(name, synthetic_chain("XYZ", 100.0, NOW, SETTINGS), **params)
    before = broker.buying_power(ACCOUNT)
    legs = [leg.model_copy(update={"intent": LegIntent.OPEN}) for leg in plan.legs]

    order = broker.submit_multileg(ACCOUNT, legs, 2)

    assert order.status is OrderStatus.FILLED, order.reject_reason
    price = {f.symbol: f.price for f in broker.fills(ACCOUNT) if f.order_id == order.id}
    assert set(price) == {leg.symbol for leg in legs}  # every leg, in the one order
    max_loss = summarise([PayoffLeg.of(leg, price[leg.symbol]) for leg in legs]).max_loss
    assert max_loss is not None and max_loss > 0, name
    assert before - broker.buying_power(ACCOUNT) == pytest.approx(2 * max_loss, abs=0.01)
