"""When orders fill: never on the bar they were placed on (``next_open``), at that bar's close
(``close``), or against a bid and ask (``quote``)."""

from __future__ import annotations

from datetime import datetime

import pytest

from sandtrade.broker import PaperBroker
from sandtrade.errors import OrderRejected
from sandtrade.models import OrderStatus, Quote

from .conftest import ACCOUNT, MakeBroker, Tape


def test_market_order_fills_at_next_open(broker: PaperBroker, tape: Tape) -> None:
    tape.bar(100.0, 101.0, 99.0, 100.5)
    order = broker.submit(ACCOUNT, "ACME", "buy", 10)

    (fill,) = tape.bar(102.0, 103.0, 101.0, 102.5)

    assert (fill.order_id, fill.price, fill.bar_index) == (order.id, 102.0, 1)


def test_order_never_fills_on_the_bar_during_which_it_was_submitted(
        broker: PaperBroker, tape: Tape) -> None:
    tape.bar(100.0, 101.0, 99.0, 100.5)
    order = broker.submit(ACCOUNT, "ACME", "buy", 10)

    assert broker.close_auction(tape.last) == []
    assert order.status is OrderStatus.ACCEPTED
    assert broker.fills(ACCOUNT) == []


def test_unknown_fill_profile_is_refused_naming_the_known_ones(make_broker: MakeBroker) -> None:
    known = r"unknown fill profile 'closing' \(known: close, next_open, quote\)"
    with pytest.raises(OrderRejected, match=known):
        make_broker(fill_profile="closing")


# --------------------------------------------------------------------------- close


def test_close_profile_fills_market_order_at_the_close_of_its_bar(
        make_broker: MakeBroker) -> None:
    broker = make_broker(fill_profile="close")
    tape = Tape(broker)
    tape.bar(100.0, 101.0, 99.0, 100.5)
    order = broker.submit(ACCOUNT, "ACME", "buy", 10)

    (fill,) = broker.close_auction(tape.last)

    assert (fill.order_id, fill.price, fill.bar_index) == (order.id, 100.5, 0)
    assert order.status is OrderStatus.FILLED


def test_close_profile_does_not_fill_market_orders_at_the_next_open(
        make_broker: MakeBroker) -> None:
    broker = make_broker(fill_profile="close")
    tape = Tape(broker)
    order = broker.submit(ACCOUNT, "ACME", "buy", 10)

    assert tape.bar(100.0, 101.0, 99.0, 100.5) == []
    assert [f.price for f in broker.close_auction(tape.last)] == [100.5]
    assert order.status is OrderStatus.FILLED


def test_close_profile_leaves_limit_orders_to_the_next_bar(make_broker: MakeBroker) -> None:
    broker = make_broker(fill_profile="close")
    tape = Tape(broker)
    tape.bar(100.0, 101.0, 98.0, 100.5)
    order = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=99.0)

    assert broker.close_auction(tape.last) == []
    (fill,) = tape.bar(100.0, 100.0, 98.5, 99.5)

    assert (fill.order_id, fill.price) == (order.id, 99.0)


# --------------------------------------------------------------------------- quote, from bars


def test_quote_profile_from_bars_buys_at_the_assumed_ask(make_broker: MakeBroker) -> None:
    broker = make_broker(fill_profile="quote", spread_pct=0.02)
    broker.submit(ACCOUNT, "ACME", "buy", 10)

    (fill,) = Tape(broker).bar(100.0, 102.0, 98.0, 101.0)

    assert fill.price == pytest.approx(101.0)  # open 100 + half of a 2 % spread


def test_quote_profile_from_bars_sells_at_the_assumed_bid(make_broker: MakeBroker) -> None:
    broker = make_broker(fill_profile="quote", spread_pct=0.02)
    broker.submit(ACCOUNT, "ACME", "sell", 10)

    (fill,) = Tape(broker).bar(100.0, 102.0, 98.0, 101.0)

    assert fill.price == pytest.approx(99.0)


def test_quote_profile_from_bars_fills_limit_buy_only_when_the_ask_reaches_it(
        make_broker: MakeBroker) -> None:
    broker = make_broker(fill_profile="quote", spread_pct=0.02)
    tape = Tape(broker)
    order = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=99.5)

    assert tape.bar(100.0, 101.0, 99.0, 100.0) == []  # lowest ask 99.99 > 99.5
    (fill,) = tape.bar(100.0, 101.0, 98.0, 100.0)  # lowest ask 98.98 <= 99.5

    assert (fill.order_id, fill.price) == (order.id, 99.5)


def test_quote_profile_without_spread_fills_like_next_open(make_broker: MakeBroker) -> None:
    broker = make_broker(fill_profile="quote")
    broker.submit(ACCOUNT, "ACME", "buy", 10)

    (fill,) = Tape(broker).bar(100.0, 102.0, 98.0, 101.0)

    assert fill.price == 100.0


# --------------------------------------------------------------------------- quote, real quotes

T = datetime(2024, 1, 2, 9, 30)


def quote(bid: float, ask: float, second: int = 0) -> Quote:
    """An ACME quote."""
    return Quote("ACME", T.replace(second=second), bid, ask)


def test_market_buy_fills_at_the_ask(make_broker: MakeBroker) -> None:
    broker = make_broker(fill_profile="quote")
    broker.submit(ACCOUNT, "ACME", "buy", 10)

    (fill,) = broker.on_quote(quote(99.9, 100.1))

    assert fill.price == 100.1


def test_market_sell_fills_at_the_bid(make_broker: MakeBroker) -> None:
    broker = make_broker(fill_profile="quote")
    broker.submit(ACCOUNT, "ACME", "sell", 10)

    (fill,) = broker.on_quote(quote(99.9, 100.1))

    assert fill.price == 99.9


def test_limit_buy_fills_at_the_ask_only_once_the_ask_is_at_or_below_the_limit(
        make_broker: MakeBroker) -> None:
    broker = make_broker(fill_profile="quote")
    order = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=100.0)

    assert broker.on_quote(quote(99.9, 100.1, 1)) == []  # bid below, ask above: not crossed
    assert broker.on_quote(quote(99.95, 100.01, 2)) == []
    (fill,) = broker.on_quote(quote(99.8, 99.95, 3))

    assert (fill.order_id, fill.price) == (order.id, 99.95)


def test_limit_buy_at_exactly_the_ask_is_marketable(make_broker: MakeBroker) -> None:
    broker = make_broker(fill_profile="quote")
    broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=100.0)

    (fill,) = broker.on_quote(quote(99.9, 100.0))

    assert fill.price == 100.0


def test_limit_sell_fills_at_the_bid_only_once_the_bid_is_at_or_above_the_limit(
        make_broker: MakeBroker) -> None:
    broker = make_broker(fill_profile="quote")
    order = broker.submit(ACCOUNT, "ACME", "sell", 10, type="limit", limit_price=100.0)

    assert broker.on_quote(quote(99.9, 100.1, 1)) == []
    (fill,) = broker.on_quote(quote(100.05, 100.2, 2))

    assert (fill.order_id, fill.price) == (order.id, 100.05)


def test_stop_buy_triggers_on_the_ask(make_broker: MakeBroker) -> None:
    broker = make_broker(fill_profile="quote")
    broker.submit(ACCOUNT, "ACME", "buy", 10, type="stop", stop_price=101.0)

    assert broker.on_quote(quote(100.9, 100.99, 1)) == []
    (fill,) = broker.on_quote(quote(100.95, 101.05, 2))

    assert fill.price == 101.05


def test_quote_marks_positions_at_the_mid(make_broker: MakeBroker) -> None:
    broker = make_broker(fill_profile="quote")
    broker.submit(ACCOUNT, "ACME", "buy", 10)

    broker.on_quote(quote(99.0, 101.0))

    assert broker.last_price("ACME") == 100.0
    assert broker.position(ACCOUNT, "ACME").market_price == 100.0


def test_next_open_profile_does_not_fill_against_quotes(broker: PaperBroker) -> None:
    order = broker.submit(ACCOUNT, "ACME", "buy", 10)

    assert broker.on_quote(quote(99.9, 100.1)) == []
    assert order.status is OrderStatus.ACCEPTED
