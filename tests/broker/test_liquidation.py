"""Liquidation: every working order canceled, every position closed at the last price."""

from __future__ import annotations

import pytest

from sandtrade.broker import PaperBroker
from sandtrade.models import OrderStatus

from .conftest import ACCOUNT, Tape


def test_liquidate_cancels_working_orders_and_closes_positions_at_the_last_price(
        broker: PaperBroker, tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    broker.submit(ACCOUNT, "XYZ", "sell", 40)
    tape.bar(100.0, 106.0, 99.0, 105.0)
    tape.bar(50.0, 51.0, 47.0, 48.0, symbol="XYZ")
    working = broker.submit(ACCOUNT, "ACME", "buy", 5, type="limit", limit_price=90.0)

    fills = broker.liquidate(ACCOUNT, "equity reached zero")

    assert (working.status, working.reject_reason) == (OrderStatus.CANCELED,
                                                       "equity reached zero")
    assert [(f.symbol, f.side.value, f.qty, f.price) for f in fills] == [
        ("ACME", "sell", 10.0, 105.0), ("XYZ", "buy", 40.0, 48.0)]
    assert broker.positions(ACCOUNT) == []
    assert broker.orders(ACCOUNT, open_only=True) == []
    account = broker.account(ACCOUNT)
    assert account.cash == pytest.approx(100_000.0 + 10 * 5.0 + 40 * 2.0)
    assert account.equity == pytest.approx(account.cash)


def test_liquidation_orders_are_tagged_and_filled(broker: PaperBroker, tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)

    (fill,) = broker.liquidate(ACCOUNT, "end of test")

    order = broker.get_order(fill.order_id)
    assert (order.tag, order.status, order.filled_qty) == ("liquidation", OrderStatus.FILLED,
                                                           10.0)


def test_liquidate_leaves_other_accounts_alone(broker: PaperBroker, tape: Tape) -> None:
    broker.open_account("other", 10_000.0)
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    broker.submit("other", "ACME", "buy", 10)
    tape.bar(100.0)
    theirs = broker.submit("other", "ACME", "sell", 10, type="limit", limit_price=110.0)

    broker.liquidate(ACCOUNT, "risk limit")

    assert broker.position("other", "ACME").qty == 10.0
    assert theirs.status is OrderStatus.ACCEPTED


def test_liquidating_a_flat_account_does_nothing(broker: PaperBroker) -> None:
    assert broker.liquidate(ACCOUNT, "nothing to do") == []
    assert broker.account(ACCOUNT).cash == 100_000.0
