"""An order's life: day expiry, cancel, replace, reduce-only and client order ids."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sandtrade.broker import BrokerSettings, PaperBroker
from sandtrade.errors import OrderRejected
from sandtrade.models import OrderStatus

from .conftest import ACCOUNT, MakeBroker, Tape, instruments

# --------------------------------------------------------------------------- time in force


def test_day_order_expires_at_the_end_of_its_first_session(broker: PaperBroker,
                                                           tape: Tape) -> None:
    order = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=95.0,
                          tif="day")
    tape.bar(100.0)
    tape.bar(99.0)

    assert tape.bar(94.0, new_session=True) == []  # would have filled, but the day is over

    assert order.status is OrderStatus.EXPIRED
    assert order.reject_reason == "day order expired at the end of the 2024-01-02 session"
    assert broker.orders(ACCOUNT, open_only=True) == []


def test_gtc_order_keeps_working_into_the_next_session(broker: PaperBroker, tape: Tape) -> None:
    order = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=95.0)
    tape.bar(100.0)

    (fill,) = tape.bar(94.0, new_session=True)

    assert (fill.order_id, fill.price) == (order.id, 94.0)


def test_day_order_is_good_for_the_session_of_the_first_bar_it_meets(
        broker: PaperBroker, tape: Tape) -> None:
    tape.bar(100.0)
    order = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=95.0,
                          tif="day")  # placed after the last bar of the 2nd

    tape.bar(100.0, new_session=True)
    assert order.status is OrderStatus.ACCEPTED
    (fill,) = tape.bar(94.0)

    assert fill.order_id == order.id


# --------------------------------------------------------------------------- cancel


def test_cancel_stops_a_working_order(broker: PaperBroker, tape: Tape) -> None:
    order = broker.submit(ACCOUNT, "ACME", "buy", 10)

    canceled = broker.cancel(order.id)

    assert canceled is order
    assert (order.status, order.reject_reason) == (OrderStatus.CANCELED, "canceled by request")
    assert tape.bar(100.0) == []


def test_canceling_a_filled_order_is_an_error_naming_its_status(broker: PaperBroker,
                                                                tape: Tape) -> None:
    order = broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)

    with pytest.raises(OrderRejected, match=f"order {order.id} is filled; only working") as e:
        broker.cancel(order.id)

    assert e.value.field == "order_id"
    assert order.status is OrderStatus.FILLED


def test_canceling_an_unknown_order_is_an_error(broker: PaperBroker) -> None:
    with pytest.raises(OrderRejected, match="unknown order 'o99'"):
        broker.cancel("o99")


def test_cancel_keeps_what_a_partially_filled_order_already_filled(
        make_broker: MakeBroker) -> None:
    broker = make_broker(volume_share=0.1)
    tape = Tape(broker)
    order = broker.submit(ACCOUNT, "ACME", "buy", 250)
    tape.bar(100.0, volume=1_000)

    broker.cancel(order.id)

    assert (order.status, order.filled_qty) == (OrderStatus.CANCELED, 100.0)
    assert broker.position(ACCOUNT, "ACME").qty == 100.0


# --------------------------------------------------------------------------- replace


def test_replace_cancels_the_old_order_and_links_the_new_one(broker: PaperBroker,
                                                             tape: Tape) -> None:
    old = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=95.0)

    new = broker.replace(old.id, limit_price=97.0)

    assert (old.status, old.replaced_by) == (OrderStatus.CANCELED, new.id)
    assert (new.status, new.replaces) == (OrderStatus.ACCEPTED, old.id)
    assert (new.side, new.type, new.qty, new.limit_price) == (old.side, old.type, 10.0, 97.0)
    assert broker.orders(ACCOUNT, open_only=True) == [new]


def test_replacement_fills_at_its_new_price(broker: PaperBroker, tape: Tape) -> None:
    old = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=95.0)
    new = broker.replace(old.id, limit_price=97.0, qty=5)

    (fill,) = tape.bar(98.0, 98.5, 96.0, 97.5)

    assert (fill.order_id, fill.qty, fill.price) == (new.id, 5.0, 97.0)
    assert old.filled_qty == 0.0


def test_refused_replacement_leaves_the_old_order_working(broker: PaperBroker,
                                                          tape: Tape) -> None:
    old = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=95.0)

    with pytest.raises(OrderRejected, match=f"replacement of {old.id} refused: limit price 300"):
        broker.replace(old.id, limit_price=300.0)

    assert (old.status, old.replaced_by) == (OrderStatus.ACCEPTED, None)
    assert broker.orders(ACCOUNT, open_only=True) == [old]
    (fill,) = tape.bar(96.0, 96.0, 94.0, 95.0)
    assert (fill.order_id, fill.price) == (old.id, 95.0)


def test_malformed_replacement_leaves_the_old_order_working_and_says_why(
        broker: PaperBroker) -> None:
    old = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=95.0)

    with pytest.raises(OrderRejected, match="qty: Input should be greater than 0") as caught:
        broker.replace(old.id, qty=-1)

    assert caught.value.field == "qty"
    assert old.status is OrderStatus.ACCEPTED
    assert broker.orders(ACCOUNT, open_only=True) == [old]


def lettered_ids() -> Callable[[str], str]:
    """Ids without digits, sorting against submission order: o-z, o-y, o-x, …"""
    issued: dict[str, int] = {}

    def make(kind: str) -> str:
        n = issued[kind] = issued.get(kind, 0) + 1
        return f"{kind}-{chr(ord('z') + 1 - n)}"

    return make


def test_refused_replacement_keeps_the_orders_place_in_the_queue() -> None:
    settings = BrokerSettings.model_validate({"volume_share": 0.1})
    broker = PaperBroker(settings, instruments=instruments(), ids=lettered_ids())
    broker.open_account(ACCOUNT, 100_000.0)
    broker.mark("ACME", 100.0)
    first = broker.submit(ACCOUNT, "ACME", "buy", 100, type="limit", limit_price=99.0)
    second = broker.submit(ACCOUNT, "ACME", "buy", 100, type="limit", limit_price=99.0)
    with pytest.raises(OrderRejected):
        broker.replace(first.id, limit_price=300.0)

    fills = Tape(broker).bar(99.5, 100.0, 98.5, 99.0, volume=1_000)  # room for 100 only

    assert [f.order_id for f in fills] == [first.id]
    assert second.filled_qty == 0.0


def test_replacing_a_filled_order_is_an_error(broker: PaperBroker, tape: Tape) -> None:
    order = broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)

    with pytest.raises(OrderRejected, match="is filled; only accepted orders with no fills"):
        broker.replace(order.id, qty=5)


# --------------------------------------------------------------------------- reduce-only


def test_two_reduce_only_sells_never_flip_a_long_short(broker: PaperBroker,
                                                       tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)
    first = broker.submit(ACCOUNT, "ACME", "sell", 10, reduce_only=True)
    second = broker.submit(ACCOUNT, "ACME", "sell", 10, reduce_only=True)
    assert second.status is OrderStatus.ACCEPTED  # 10 are held when it is placed

    fills = tape.bar(101.0)

    assert [(f.order_id, f.qty) for f in fills] == [(first.id, 10.0)]
    assert broker.position(ACCOUNT, "ACME").qty == 0.0
    assert first.status is OrderStatus.FILLED
    assert second.status is OrderStatus.CANCELED
    assert "reduce-only: no ACME position left to reduce" in (second.reject_reason or "")
    tape.bar(102.0)
    assert broker.position(ACCOUNT, "ACME").qty == 0.0


def test_reduce_only_order_is_capped_to_the_position(broker: PaperBroker, tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)
    order = broker.submit(ACCOUNT, "ACME", "sell", 25, reduce_only=True)

    (fill,) = tape.bar(101.0)

    assert fill.qty == 10.0
    assert order.status is OrderStatus.FILLED
    assert broker.position(ACCOUNT, "ACME").qty == 0.0


def test_reduce_only_order_with_no_position_is_rejected(broker: PaperBroker) -> None:
    order = broker.submit(ACCOUNT, "ACME", "sell", 10, reduce_only=True)

    assert order.status is OrderStatus.REJECTED
    assert "no ACME position to reduce" in (order.reject_reason or "")


# --------------------------------------------------------------------------- idempotency


def test_repeated_client_order_id_returns_the_first_order_and_trades_once(
        broker: PaperBroker, tape: Tape) -> None:
    first = broker.submit(ACCOUNT, "ACME", "buy", 10, client_order_id="retry-1")
    again = broker.submit(ACCOUNT, "ACME", "buy", 10, client_order_id="retry-1")

    fills = tape.bar(100.0)

    assert again is first
    assert len(broker.orders(ACCOUNT)) == 1
    assert [f.order_id for f in fills] == [first.id]
    assert broker.position(ACCOUNT, "ACME").qty == 10.0


def test_client_order_id_is_remembered_after_the_order_fills(broker: PaperBroker,
                                                             tape: Tape) -> None:
    first = broker.submit(ACCOUNT, "ACME", "buy", 10, client_order_id="retry-1")
    tape.bar(100.0)

    again = broker.submit(ACCOUNT, "ACME", "buy", 10, client_order_id="retry-1")
    tape.bar(100.0)

    assert again is first
    assert broker.position(ACCOUNT, "ACME").qty == 10.0


def test_client_order_ids_are_per_account(broker: PaperBroker) -> None:
    broker.open_account("other", 10_000.0)

    mine = broker.submit(ACCOUNT, "ACME", "buy", 10, client_order_id="same")
    theirs = broker.submit("other", "ACME", "buy", 10, client_order_id="same")

    assert mine.id != theirs.id
