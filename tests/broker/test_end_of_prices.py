"""A symbol whose prices have ended (its feed stopped): no order on it sits ``accepted``."""

from __future__ import annotations

from sandtrade.broker import PaperBroker
from sandtrade.models import OrderStatus

from .conftest import ACCOUNT, Tape

REASON = "no more prices for ACME: the replay ended at 2024-01-02 (bar 2 of 2)"


def test_working_orders_on_the_symbol_expire_with_the_reason(broker: PaperBroker,
                                                             tape: Tape) -> None:
    tape.bar(100.0)
    market = broker.submit(ACCOUNT, "ACME", "buy", 10)
    limit = broker.submit(ACCOUNT, "ACME", "sell", 5, type="limit", limit_price=105.0)
    other = broker.submit(ACCOUNT, "XYZ", "buy", 1, type="limit", limit_price=49.0)

    expired = broker.end_prices("ACME", REASON)

    assert expired == [market, limit]
    for order in (market, limit):
        assert (order.status, order.reject_reason) == (OrderStatus.EXPIRED, REASON)
    assert other.status is OrderStatus.ACCEPTED, "other symbols trade on"
    assert broker.orders(ACCOUNT, open_only=True) == [other]


def test_new_orders_on_the_symbol_are_rejected_with_the_reason(broker: PaperBroker) -> None:
    broker.end_prices("ACME", REASON)

    for kwargs in ({}, {"type": "limit", "limit_price": 99.0}, {"equity_fraction": 0.5},
                   {"reduce_only": True}):
        qty = None if "equity_fraction" in kwargs else 1.0
        order = broker.submit(ACCOUNT, "ACME", "buy", qty, **kwargs)  # type: ignore[arg-type]
        assert (order.status, order.reject_reason) == (OrderStatus.REJECTED, REASON), kwargs
    assert broker.submit(ACCOUNT, "XYZ", "buy", 1).status is OrderStatus.ACCEPTED


def test_positions_keep_their_last_price_and_can_be_read(broker: PaperBroker,
                                                         tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0, close=101.0)
    broker.end_prices("ACME", REASON)

    position = broker.position(ACCOUNT, "ACME")
    assert (position.qty, position.market_price) == (10.0, 101.0)
