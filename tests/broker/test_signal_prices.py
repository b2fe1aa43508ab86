"""Orders in symbols no market source covers, worked at the prices signals carry.

The ``signal_price`` profile: a price is a one-price bar worked by the ``next_open`` rules,
slippage not capped by it; the prices are the account's own.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from broker.conftest import ACCOUNT, MakeBroker
from sandtrade.models import Instrument, OrderStatus

WHEN = datetime(2024, 3, 1, 15, 0)


def test_a_market_order_fills_at_the_signal_price_with_slippage(make_broker: MakeBroker
                                                                ) -> None:
    b = make_broker(slippage_pct=0.002)
    assert b.register_new(Instrument.equity("AAPL"))
    assert not b.register_new(Instrument.equity("AAPL")), "registered once"
    b.note_signal_price(ACCOUNT, "AAPL", 200.0)
    order = b.submit(ACCOUNT, "AAPL", "buy", 5.0)

    [fill] = b.work_at_price(ACCOUNT, "AAPL", 200.0, "signal", WHEN)

    assert fill.price == pytest.approx(200.4) and fill.price_source == "signal"
    assert fill.time == WHEN and order.status is OrderStatus.FILLED


def test_a_limit_rests_until_a_later_signal_price_reaches_it(make_broker: MakeBroker) -> None:
    b = make_broker()
    b.register_new(Instrument.equity("AAPL"))
    b.note_signal_price(ACCOUNT, "AAPL", 200.0)
    order = b.submit(ACCOUNT, "AAPL", "buy", 5.0, type="limit", limit_price=195.0)

    assert b.work_at_price(ACCOUNT, "AAPL", 200.0, "signal", WHEN) == []
    assert order.status is OrderStatus.ACCEPTED
    [fill] = b.work_at_price(ACCOUNT, "AAPL", 194.0, "signal", WHEN)

    assert fill.price == 194.0, "at the price, the better one"
    assert order.status is OrderStatus.FILLED


def test_an_ioc_order_that_the_price_does_not_fill_is_canceled(make_broker: MakeBroker) -> None:
    b = make_broker()
    b.register_new(Instrument.equity("AAPL"))
    b.note_signal_price(ACCOUNT, "AAPL", 200.0)
    order = b.submit(ACCOUNT, "AAPL", "buy", 5.0, type="limit", limit_price=195.0, tif="ioc")

    assert b.work_at_price(ACCOUNT, "AAPL", 200.0, "signal", WHEN) == []
    assert order.status is OrderStatus.CANCELED


def test_a_signal_price_works_only_its_own_accounts_orders(make_broker: MakeBroker) -> None:
    b = make_broker()
    b.open_account("other", 10_000.0)
    b.register_new(Instrument.equity("AAPL"))
    b.note_signal_price("other", "AAPL", 200.0)
    theirs = b.submit("other", "AAPL", "buy", 1.0)
    b.note_signal_price(ACCOUNT, "AAPL", 1.0)

    assert b.work_at_price(ACCOUNT, "AAPL", 1.0, "signal", WHEN) == []
    assert theirs.status is OrderStatus.ACCEPTED
    assert b.last_signal_price("other", "AAPL") == 200.0
