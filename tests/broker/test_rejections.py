"""Orders the broker refuses, each with a reason a person can act on.

Malformed requests raise ``OrderRejected`` naming the field; well-formed orders the broker will
not take come back ``rejected`` with ``reject_reason``.
"""

from __future__ import annotations

import pytest

from sandtrade.broker import PaperBroker
from sandtrade.errors import OrderRejected
from sandtrade.models import Instrument, OrderStatus

from .conftest import ACCOUNT, MakeBroker, Tape


def test_unknown_symbol_is_rejected_with_a_suggestion(broker: PaperBroker) -> None:
    order = broker.submit(ACCOUNT, "ACMEE", "buy", 10)

    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == "unknown symbol 'ACMEE'; did you mean ACME?"


def test_unknown_symbol_with_no_close_match_is_rejected_without_a_suggestion(
        broker: PaperBroker) -> None:
    order = broker.submit(ACCOUNT, "QQQQQ", "buy", 10)

    assert order.reject_reason == "unknown symbol 'QQQQQ'"


def test_order_beyond_buying_power_is_rejected(make_broker: MakeBroker) -> None:
    broker = make_broker(cash=1_000.0)

    order = broker.submit(ACCOUNT, "ACME", "buy", 20)

    assert order.status is OrderStatus.REJECTED
    reason = order.reject_reason or ""
    assert "insufficient buying power" in reason
    assert "needs 2,000.00, 1,000.00 available" in reason


def test_buying_power_check_counts_the_commission(make_broker: MakeBroker) -> None:
    broker = make_broker(cash=1_000.0, commission_min=1.0)

    order = broker.submit(ACCOUNT, "ACME", "buy", 10)  # 1,000 + 1 commission

    assert order.status is OrderStatus.REJECTED
    assert "needs 1,001.00, 1,000.00 available" in (order.reject_reason or "")


def test_limit_price_outside_the_sanity_band_is_rejected(broker: PaperBroker) -> None:
    order = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=160.0)

    assert order.status is OrderStatus.REJECTED
    reason = order.reject_reason or ""
    assert "limit price 160 is 60% away from the last price 100" in reason
    assert "within ±50%" in reason


def test_stop_price_outside_the_sanity_band_is_rejected(broker: PaperBroker) -> None:
    order = broker.submit(ACCOUNT, "ACME", "sell", 10, type="stop", stop_price=40.0)

    assert order.status is OrderStatus.REJECTED
    assert "stop price 40 is 60% away" in (order.reject_reason or "")


@pytest.mark.parametrize("qty", [0, -5, -0.5])
def test_non_positive_quantity_raises_naming_qty(broker: PaperBroker, qty: float) -> None:
    with pytest.raises(OrderRejected, match="greater than 0") as caught:
        broker.submit(ACCOUNT, "ACME", "buy", qty)

    assert caught.value.field == "qty"
    assert broker.orders(ACCOUNT) == []


def test_limit_order_without_a_limit_price_raises(broker: PaperBroker) -> None:
    with pytest.raises(OrderRejected, match="a limit order needs limit_price"):
        broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit")


def test_both_qty_and_equity_fraction_raises(broker: PaperBroker) -> None:
    with pytest.raises(OrderRejected, match="qty or equity_fraction, not both") as caught:
        broker.submit(ACCOUNT, "ACME", "buy", 10, equity_fraction=0.5)

    assert caught.value.field == "qty"


def test_unknown_account_raises_naming_account(broker: PaperBroker) -> None:
    with pytest.raises(OrderRejected, match="unknown account 'nobody'") as caught:
        broker.submit("nobody", "ACME", "buy", 10)

    assert caught.value.field == "account"


def test_opening_an_account_twice_raises(broker: PaperBroker) -> None:
    with pytest.raises(OrderRejected, match="account 'acct' already exists"):
        broker.open_account(ACCOUNT, 1.0)


def test_short_sale_is_rejected_when_shorting_is_off(make_broker: MakeBroker) -> None:
    broker = make_broker(allow_short=False)

    order = broker.submit(ACCOUNT, "ACME", "sell", 10)

    assert order.status is OrderStatus.REJECTED
    reason = order.reject_reason or ""
    assert "short selling ACME is not allowed" in reason
    assert "sells 10 but the account holds 0" in reason


def test_selling_what_is_held_is_allowed_when_shorting_is_off(make_broker: MakeBroker) -> None:
    broker = make_broker(allow_short=False)
    tape = Tape(broker)
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)

    order = broker.submit(ACCOUNT, "ACME", "sell", 10)

    assert order.status is OrderStatus.ACCEPTED


def test_second_sell_that_would_go_short_is_canceled_at_fill_when_shorting_is_off(
        make_broker: MakeBroker) -> None:
    broker = make_broker(allow_short=False)
    tape = Tape(broker)
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)
    first = broker.submit(ACCOUNT, "ACME", "sell", 10)
    second = broker.submit(ACCOUNT, "ACME", "sell", 10)  # accepted: 10 are held right now

    tape.bar(100.0)

    assert first.status is OrderStatus.FILLED
    assert second.status is OrderStatus.CANCELED
    assert "short selling ACME is not allowed" in (second.reject_reason or "")
    assert broker.position(ACCOUNT, "ACME").qty == 0.0


def test_day_order_for_crypto_is_rejected_listing_the_allowed_tifs(broker: PaperBroker) -> None:
    order = broker.submit(ACCOUNT, "BTC-USD", "buy", 0.1, tif="day")

    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == ("time in force 'day' is not available for crypto BTC-USD "
                                   "(allowed: fok, gtc, ioc)")


def test_a_market_order_before_the_first_price_fills_at_the_first_open(
        broker: PaperBroker, tape: Tape) -> None:
    """A host that has just started knows no price yet: a market order is taken as a broker
    takes one before the open (it was rejected, 'no price known', so `sandtrade serve &` then
    `sandtrade buy DEMO 10` failed) and fills at the first bar's open."""
    broker.register(Instrument.equity("NEW"))

    order = broker.submit(ACCOUNT, "NEW", "buy", 10)
    assert order.status is OrderStatus.ACCEPTED

    fills = tape.bar(42.0, symbol="NEW")
    assert [(f.qty, f.price) for f in fills] == [(10, 42.0)]


def test_a_market_order_before_the_first_price_is_held_to_the_limits_at_its_fill(
        broker: PaperBroker, tape: Tape) -> None:
    """Its buying power and its value are checked when it fills, at the first price."""
    broker.register(Instrument.equity("NEW"))
    broker.register(Instrument.crypto("NEWUSD", min_notional=1.0))

    too_big = broker.submit(ACCOUNT, "NEW", "buy", 10_000)
    too_small = broker.submit(ACCOUNT, "NEWUSD", "buy", 0.001)
    assert too_big.status is too_small.status is OrderStatus.ACCEPTED
    assert tape.bar(42.0, symbol="NEW") == [] and tape.bar(100.0, symbol="NEWUSD") == []

    assert too_big.status is OrderStatus.CANCELED
    assert "insufficient buying power at fill" in (too_big.reject_reason or "")
    assert too_small.status is OrderStatus.CANCELED
    assert too_small.reject_reason == ("order value 0.10 at the first price of NEWUSD (100.00) "
                                       "is outside 1.00 to 1,000,000,000,000,000")


def test_rejections_leave_earlier_working_orders_in_place(broker: PaperBroker,
                                                          tape: Tape) -> None:
    working = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=99.0)

    broker.submit(ACCOUNT, "ACMEE", "buy", 10)
    broker.submit(ACCOUNT, "ACME", "buy", 10_000)
    broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=1.0)
    with pytest.raises(OrderRejected):
        broker.submit(ACCOUNT, "ACME", "buy", -1)

    assert broker.orders(ACCOUNT, open_only=True) == [working]
    assert [o.status for o in broker.orders(ACCOUNT)] == [
        OrderStatus.ACCEPTED, OrderStatus.REJECTED, OrderStatus.REJECTED, OrderStatus.REJECTED]
    (fill,) = tape.bar(100.0, 100.0, 98.0, 99.5)
    assert (fill.order_id, fill.price) == (working.id, 99.0)


def test_rejected_order_never_fills(broker: PaperBroker, tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "buy", 10_000)

    assert tape.bar(100.0) == []


def test_working_sell_frees_its_position_margin_for_a_new_buy(make_broker: MakeBroker) -> None:
    broker = make_broker(cash=1_000.0)
    tape = Tape(broker)
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)
    broker.submit(ACCOUNT, "ACME", "sell", 10, type="limit", limit_price=105.0)

    order = broker.submit(ACCOUNT, "ACME", "buy", 10)

    assert order.status is OrderStatus.ACCEPTED, order.reject_reason


def test_working_sells_free_a_position_margin_only_once(make_broker: MakeBroker) -> None:
    broker = make_broker(cash=1_000.0)
    tape = Tape(broker)
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)
    broker.submit(ACCOUNT, "ACME", "sell", 10, type="limit", limit_price=105.0)
    broker.submit(ACCOUNT, "ACME", "sell", 10, type="limit", limit_price=106.0)

    order = broker.submit(ACCOUNT, "ACME", "buy", 20)

    assert order.status is OrderStatus.REJECTED
    assert "needs 2,000.00, 1,000.00 available" in (order.reject_reason or "")
