"""Partial fills: ``volume_share`` caps each bar's fills; ``ioc`` and ``fok`` handle the rest."""

from __future__ import annotations

import pytest

from sandtrade.broker import PaperBroker
from sandtrade.models import OrderStatus

from .conftest import ACCOUNT, MakeBroker, Tape


def test_large_order_fills_over_several_bars(make_broker: MakeBroker) -> None:
    broker = make_broker(volume_share=0.1)
    tape = Tape(broker)
    order = broker.submit(ACCOUNT, "ACME", "buy", 250)

    (first,) = tape.bar(100.0, volume=1_000)
    assert (first.qty, order.status, order.filled_qty) == (100.0, OrderStatus.PARTIALLY_FILLED,
                                                           100.0)
    (second,) = tape.bar(102.0, volume=1_000)
    assert (second.qty, order.status, order.filled_qty) == (
        100.0, OrderStatus.PARTIALLY_FILLED, 200.0)
    (third,) = tape.bar(104.0, volume=1_000)

    assert (third.qty, order.status, order.filled_qty) == (50.0, OrderStatus.FILLED, 250.0)
    # (100 x 100 + 100 x 102 + 50 x 104) / 250 = 25,400 / 250
    assert order.avg_fill_price == pytest.approx(101.6)
    assert broker.position(ACCOUNT, "ACME").avg_price == pytest.approx(101.6)


def test_orders_on_one_bar_share_its_volume_cap_in_submission_order(
        make_broker: MakeBroker) -> None:
    broker = make_broker(volume_share=0.1)
    first = broker.submit(ACCOUNT, "ACME", "buy", 70)
    second = broker.submit(ACCOUNT, "ACME", "buy", 70)

    fills = Tape(broker).bar(100.0, volume=1_000)

    assert [(f.order_id, f.qty) for f in fills] == [(first.id, 70.0), (second.id, 30.0)]
    assert second.status is OrderStatus.PARTIALLY_FILLED


def test_ioc_order_cancels_what_its_first_bar_could_not_fill(make_broker: MakeBroker) -> None:
    broker = make_broker(volume_share=0.1)
    tape = Tape(broker)
    order = broker.submit(ACCOUNT, "ACME", "buy", 250, tif="ioc")

    (fill,) = tape.bar(100.0, volume=1_000)

    assert fill.qty == 100.0
    assert (order.status, order.filled_qty) == (OrderStatus.CANCELED, 100.0)
    assert "ioc: unfilled quantity canceled" in (order.reject_reason or "")
    assert tape.bar(100.0, volume=1_000) == []


def test_ioc_limit_order_that_misses_its_first_bar_is_canceled(broker: PaperBroker,
                                                               tape: Tape) -> None:
    order = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=95.0,
                          tif="ioc")

    assert tape.bar(100.0, 101.0, 99.0, 100.0) == []
    assert order.status is OrderStatus.CANCELED


def test_fok_order_larger_than_the_bar_cap_is_canceled_unfilled(
        make_broker: MakeBroker) -> None:
    broker = make_broker(volume_share=0.1)
    order = broker.submit(ACCOUNT, "ACME", "buy", 250, tif="fok")

    assert Tape(broker).bar(100.0, volume=1_000) == []
    assert (order.status, order.filled_qty) == (OrderStatus.CANCELED, 0.0)
    assert "fok" in (order.reject_reason or "")


def test_fok_order_within_the_bar_cap_fills_in_full(make_broker: MakeBroker) -> None:
    broker = make_broker(volume_share=0.1)
    order = broker.submit(ACCOUNT, "ACME", "buy", 100, tif="fok")

    (fill,) = Tape(broker).bar(100.0, volume=1_000)

    assert fill.qty == 100.0
    assert order.status is OrderStatus.FILLED


def test_reduce_only_order_capped_by_volume_keeps_working_for_the_rest(
        make_broker: MakeBroker) -> None:
    broker = make_broker(volume_share=0.1)
    tape = Tape(broker)
    broker.submit(ACCOUNT, "ACME", "buy", 200)
    tape.bar(100.0, volume=10_000)
    close = broker.submit(ACCOUNT, "ACME", "sell", 200, reduce_only=True)

    (first,) = tape.bar(100.0, volume=1_000)
    assert first.qty == 100.0
    assert close.status is OrderStatus.PARTIALLY_FILLED
    (second,) = tape.bar(100.0, volume=1_000)

    assert second.qty == 100.0
    assert close.status is OrderStatus.FILLED
    assert broker.position(ACCOUNT, "ACME").qty == 0.0
