"""Costs: commission per value, per unit and per order minimum; slippage on market and stops."""

from __future__ import annotations

import pytest

from sandtrade.models import OrderStatus

from .conftest import ACCOUNT, MakeBroker, Tape


def test_commission_pct_is_charged_on_traded_value(make_broker: MakeBroker) -> None:
    broker = make_broker(cash=10_000.0, commission_pct=0.001)
    broker.submit(ACCOUNT, "ACME", "buy", 10)

    (fill,) = Tape(broker).bar(100.0)

    assert fill.commission == pytest.approx(1.0)  # 10 x 100 x 0.1 %
    account = broker.account(ACCOUNT)
    assert account.cash == pytest.approx(10_000.0 - 1_000.0 - 1.0)
    assert account.commissions == pytest.approx(1.0)


def test_commission_per_unit_is_charged_per_share(make_broker: MakeBroker) -> None:
    broker = make_broker(cash=10_000.0, commission_per_unit=0.005)
    broker.submit(ACCOUNT, "ACME", "buy", 10)

    (fill,) = Tape(broker).bar(100.0)

    assert fill.commission == pytest.approx(0.05)
    assert broker.account(ACCOUNT).cash == pytest.approx(10_000.0 - 1_000.05)


def test_commission_pct_and_per_unit_add_up(make_broker: MakeBroker) -> None:
    broker = make_broker(commission_pct=0.001, commission_per_unit=0.005)
    broker.submit(ACCOUNT, "ACME", "buy", 10)

    (fill,) = Tape(broker).bar(100.0)

    assert fill.commission == pytest.approx(1.05)


def test_commission_min_tops_up_a_small_order(make_broker: MakeBroker) -> None:
    broker = make_broker(commission_pct=0.0001, commission_min=1.0)
    broker.submit(ACCOUNT, "ACME", "buy", 10)

    (fill,) = Tape(broker).bar(100.0)

    assert fill.commission == pytest.approx(1.0)  # 0.10 raised to the minimum


def test_commission_min_does_not_lower_a_large_commission(make_broker: MakeBroker) -> None:
    broker = make_broker(commission_pct=0.0001, commission_min=1.0)
    broker.submit(ACCOUNT, "ACME", "buy", 200)

    (fill,) = Tape(broker).bar(100.0)

    assert fill.commission == pytest.approx(2.0)


def test_commission_min_is_charged_once_per_order_on_its_first_fill(
        make_broker: MakeBroker) -> None:
    # 100 shares in two fills of 50 (volume cap 50 a bar): 0.50 of commission each. The
    # minimum of 1.00 is charged on the first fill; the order as a whole then owes
    # max(0.50 + 0.50, 1.00) = 1.00, as it would filled in one piece.
    broker = make_broker(commission_pct=0.0001, commission_min=1.0, volume_share=0.5)
    tape = Tape(broker)
    order = broker.submit(ACCOUNT, "ACME", "buy", 100)

    (first,) = tape.bar(100.0, volume=100)
    (second,) = tape.bar(100.0, volume=100)

    assert order.status is OrderStatus.FILLED
    assert first.commission == pytest.approx(1.0)
    assert second.commission == pytest.approx(0.0)
    assert broker.account(ACCOUNT).commissions == pytest.approx(1.0)


def test_commission_past_the_minimum_is_charged_at_the_rate(make_broker: MakeBroker) -> None:
    # 300 shares in three fills of 100, each 1.00 at the rate, against a minimum of 1.50.
    broker = make_broker(commission_pct=0.0001, commission_min=1.5, volume_share=0.5)
    tape = Tape(broker)
    broker.submit(ACCOUNT, "ACME", "buy", 300)

    commissions = [f.commission for _ in range(3) for f in tape.bar(100.0, volume=200)]

    # running raw totals 1, 2, 3 against a floor of 1.5: charged 1.5, 0.5, 1.0
    assert commissions == pytest.approx([1.5, 0.5, 1.0])
    assert sum(commissions) == pytest.approx(max(3.0, 1.5))


def test_commission_min_is_charged_for_each_order(make_broker: MakeBroker) -> None:
    broker = make_broker(commission_pct=0.0001, commission_min=1.0)
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    broker.submit(ACCOUNT, "ACME", "buy", 10)

    fills = Tape(broker).bar(100.0)

    assert [f.commission for f in fills] == pytest.approx([1.0, 1.0])


def test_slippage_moves_a_market_buy_up(make_broker: MakeBroker) -> None:
    broker = make_broker(slippage_pct=0.01)
    broker.submit(ACCOUNT, "ACME", "buy", 10)

    (fill,) = Tape(broker).bar(100.0, 102.0, 99.0, 101.0)

    assert fill.price == pytest.approx(101.0)


def test_slippage_moves_a_market_sell_down(make_broker: MakeBroker) -> None:
    broker = make_broker(slippage_pct=0.01)
    broker.submit(ACCOUNT, "ACME", "sell", 10)

    (fill,) = Tape(broker).bar(100.0, 102.0, 98.0, 101.0)

    assert fill.price == pytest.approx(99.0)


def test_slippage_on_a_buy_is_capped_at_the_bar_high(make_broker: MakeBroker) -> None:
    broker = make_broker(slippage_pct=0.01)
    broker.submit(ACCOUNT, "ACME", "buy", 10)

    (fill,) = Tape(broker).bar(100.0, 100.4, 99.0, 100.2)

    assert fill.price == 100.4


def test_slippage_on_a_sell_is_capped_at_the_bar_low(make_broker: MakeBroker) -> None:
    broker = make_broker(slippage_pct=0.01)
    broker.submit(ACCOUNT, "ACME", "sell", 10)

    (fill,) = Tape(broker).bar(100.0, 100.5, 99.7, 100.2)

    assert fill.price == 99.7


def test_slippage_applies_to_a_triggered_stop(make_broker: MakeBroker) -> None:
    broker = make_broker(slippage_pct=0.01)
    broker.submit(ACCOUNT, "ACME", "sell", 10, type="stop", stop_price=99.0)

    (fill,) = Tape(broker).bar(100.0, 100.5, 97.0, 98.0)  # touches 99; 1 % below is 98.01

    assert fill.price == pytest.approx(98.01)


def test_slippage_on_a_stop_is_capped_at_the_bar_high(make_broker: MakeBroker) -> None:
    broker = make_broker(slippage_pct=0.01)
    broker.submit(ACCOUNT, "ACME", "buy", 10, type="stop", stop_price=101.0)

    (fill,) = Tape(broker).bar(100.0, 101.5, 99.5, 101.0)

    assert fill.price == 101.5  # 101 + 1 % = 102.01, beyond the high


def test_limit_fills_never_slip(make_broker: MakeBroker) -> None:
    broker = make_broker(slippage_pct=0.01)
    tape = Tape(broker)
    touched = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=99.0)
    gapped = broker.submit(ACCOUNT, "ACME", "sell", 10, type="limit", limit_price=95.0)

    fills = tape.bar(97.0, 97.5, 96.5, 97.0)  # opens through 95 (sell) and 99 (buy)

    assert {f.order_id: f.price for f in fills} == {touched.id: 97.0, gapped.id: 97.0}


def test_triggered_stop_limit_does_not_slip(make_broker: MakeBroker) -> None:
    broker = make_broker(slippage_pct=0.01)
    broker.submit(ACCOUNT, "ACME", "buy", 10, type="stop_limit", stop_price=101.0,
                  limit_price=103.0)

    (fill,) = Tape(broker).bar(100.0, 102.0, 99.5, 101.5)

    assert fill.price == 101.0
