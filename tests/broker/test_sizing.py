"""Order sizing: ``equity_fraction`` resolved into whole lots at fill, and lot-size rules."""

from __future__ import annotations

import math

import pytest

from sandtrade.broker import PaperBroker
from sandtrade.models import OrderStatus

from .conftest import ACCOUNT, MakeBroker, Tape


def test_equity_fraction_buys_whole_shares_with_the_commission_included(
        make_broker: MakeBroker) -> None:
    broker = make_broker(cash=10_000.0, commission_pct=0.002)
    order = broker.submit(ACCOUNT, "ACME", "buy", equity_fraction=0.9999)

    (fill,) = Tape(broker).bar(100.0)

    # floor(10,000 x 0.9999 / (100 x 1.002)) = floor(99.79) = 99
    assert math.floor(10_000 * 0.9999 / (100 * 1.002)) == 99
    assert fill.qty == 99.0
    assert order.qty == 99.0
    assert order.status is OrderStatus.FILLED
    assert broker.account(ACCOUNT).cash == pytest.approx(10_000 - 99 * 100 - 99 * 100 * 0.002)


def test_equity_fraction_leaves_room_for_the_commission(make_broker: MakeBroker) -> None:
    # At 99.90 the cash buys 100 shares without commission (9,999 / 99.9 = 100.09), but not
    # with it: 9,999 / (99.9 x 1.002) = 99.89.
    free = make_broker(cash=10_000.0)
    charged = make_broker(cash=10_000.0, commission_pct=0.002)
    for broker in (free, charged):
        broker.submit(ACCOUNT, "ACME", "buy", equity_fraction=0.9999)
        Tape(broker).bar(99.9)

    assert free.position(ACCOUNT, "ACME").qty == 100.0
    assert charged.position(ACCOUNT, "ACME").qty == 99.0


def test_equity_fraction_is_sized_at_the_fill_price_not_the_submit_price(
        make_broker: MakeBroker) -> None:
    broker = make_broker(cash=10_000.0)
    broker.submit(ACCOUNT, "ACME", "buy", equity_fraction=0.5)

    (fill,) = Tape(broker).bar(80.0)

    assert fill.qty == 62.0  # floor(5,000 / 80) = 62, where 100 would have given 50


def test_equity_fraction_of_crypto_is_floored_to_the_lot(make_broker: MakeBroker) -> None:
    broker = make_broker(cash=10_000.0)
    broker.submit(ACCOUNT, "BTC-USD", "buy", equity_fraction=0.5)

    (fill,) = Tape(broker).bar(30_000.0, symbol="BTC-USD")

    assert fill.qty == 0.16666666  # 5,000 / 30,000 = 0.1666666666…, floored to 1e-8


def test_equity_fraction_too_small_for_one_lot_is_canceled_at_fill(
        make_broker: MakeBroker) -> None:
    broker = make_broker(cash=100.0)
    order = broker.submit(ACCOUNT, "ACME", "buy", equity_fraction=0.5)

    assert Tape(broker).bar(120.0) == []
    assert order.status is OrderStatus.CANCELED
    assert "insufficient buying power for even one lot" in (order.reject_reason or "")


def test_fractional_crypto_quantity_in_whole_lots_is_accepted(broker: PaperBroker,
                                                              tape: Tape) -> None:
    order = broker.submit(ACCOUNT, "BTC-USD", "buy", 0.12345678)

    (fill,) = tape.bar(30_000.0, symbol="BTC-USD")

    assert order.status is OrderStatus.FILLED
    assert fill.qty == 0.12345678
    assert broker.position(ACCOUNT, "BTC-USD").qty == 0.12345678


def test_crypto_quantity_not_a_multiple_of_the_lot_is_rejected_naming_the_lot(
        broker: PaperBroker) -> None:
    order = broker.submit(ACCOUNT, "BTC-USD", "buy", 0.123456789)

    assert order.status is OrderStatus.REJECTED
    reason = order.reject_reason or ""
    assert "0.123456789" in reason
    assert "lot size 1e-08" in reason
    assert "nearest below: 0.12345678" in reason


def test_fractional_quantity_of_a_whole_share_equity_is_rejected(broker: PaperBroker) -> None:
    order = broker.submit(ACCOUNT, "ACME", "buy", 1.5)

    assert order.status is OrderStatus.REJECTED
    assert "lot size 1" in (order.reject_reason or "")


def test_order_below_the_minimum_notional_is_rejected(broker: PaperBroker) -> None:
    order = broker.submit(ACCOUNT, "BTC-USD", "buy", 0.00001)  # 0.30 at 30,000

    assert order.status is OrderStatus.REJECTED
    reason = order.reject_reason or ""
    assert "order value 0.30 is below" in reason
    assert "minimum notional 1.00" in reason
