"""The ``next_open`` fill rules, order type by side by bar, written out case by case.

Every limit and stop price is 100; a stop-limit buy is (stop 100, limit 102) and a stop-limit
sell (stop 100, limit 98). The bars, relative to 100:

* gap up: the whole bar above 100 (open 105, high 108, low 104, close 106);
* gap down: the whole bar below 100 (open 95, high 96, low 92, close 94);
* touch: the bar reaches exactly 100 coming from the other side (from above: open 103,
  low 100; from below: open 97, high 100), the side that would trigger the order;
* miss: the same bar, one cent short of 100.

The expected prices are the rules of :mod:`sandtrade.broker.fills` applied by hand.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from sandtrade.broker import PaperBroker
from sandtrade.models import Bar, OrderStatus

from .conftest import ACCOUNT, Tape

T = datetime(2024, 1, 2, 9, 30)
GAP_UP = Bar.checked("ACME", T, 105.0, 108.0, 104.0, 106.0, 1e6)
GAP_DOWN = Bar.checked("ACME", T, 95.0, 96.0, 92.0, 94.0, 1e6)
TOUCH_FROM_ABOVE = Bar.checked("ACME", T, 103.0, 104.0, 100.0, 102.0, 1e6)
TOUCH_FROM_BELOW = Bar.checked("ACME", T, 97.0, 100.0, 96.0, 98.0, 1e6)
MISS_FROM_ABOVE = Bar.checked("ACME", T, 103.0, 104.0, 100.01, 102.0, 1e6)
MISS_FROM_BELOW = Bar.checked("ACME", T, 97.0, 99.99, 96.0, 98.0, 1e6)

# type -> side -> (limit_price, stop_price)
PRICES: dict[str, dict[str, tuple[float | None, float | None]]] = {
    "market": {"buy": (None, None), "sell": (None, None)},
    "limit": {"buy": (100.0, None), "sell": (100.0, None)},
    "stop": {"buy": (None, 100.0), "sell": (None, 100.0)},
    "stop_limit": {"buy": (102.0, 100.0), "sell": (98.0, 100.0)},
}

MATRIX = [
    # type, side, case, bar, expected fill price (None: no fill)
    ("market", "buy", "gap_up", GAP_UP, 105.0),
    ("market", "buy", "gap_down", GAP_DOWN, 95.0),
    ("market", "buy", "touch", TOUCH_FROM_ABOVE, 103.0),
    ("market", "buy", "miss", MISS_FROM_ABOVE, 103.0),
    ("market", "sell", "gap_up", GAP_UP, 105.0),
    ("market", "sell", "gap_down", GAP_DOWN, 95.0),
    ("market", "sell", "touch", TOUCH_FROM_BELOW, 97.0),
    ("market", "sell", "miss", MISS_FROM_BELOW, 97.0),
    # limit buy 100: at the open when it opens at or below, else at 100 if the low touches
    ("limit", "buy", "gap_up", GAP_UP, None),
    ("limit", "buy", "gap_down", GAP_DOWN, 95.0),
    ("limit", "buy", "touch", TOUCH_FROM_ABOVE, 100.0),
    ("limit", "buy", "miss", MISS_FROM_ABOVE, None),
    # limit sell 100: mirror with the high
    ("limit", "sell", "gap_up", GAP_UP, 105.0),
    ("limit", "sell", "gap_down", GAP_DOWN, None),
    ("limit", "sell", "touch", TOUCH_FROM_BELOW, 100.0),
    ("limit", "sell", "miss", MISS_FROM_BELOW, None),
    # stop buy 100: at the open when it opens at or above, else at 100 if the high touches
    ("stop", "buy", "gap_up", GAP_UP, 105.0),
    ("stop", "buy", "gap_down", GAP_DOWN, None),
    ("stop", "buy", "touch", TOUCH_FROM_BELOW, 100.0),
    ("stop", "buy", "miss", MISS_FROM_BELOW, None),
    # stop sell 100: mirror with the low
    ("stop", "sell", "gap_up", GAP_UP, None),
    ("stop", "sell", "gap_down", GAP_DOWN, 95.0),
    ("stop", "sell", "touch", TOUCH_FROM_ABOVE, 100.0),
    ("stop", "sell", "miss", MISS_FROM_ABOVE, None),
    # stop-limit buy (100, 102): triggers as a stop; fills at the trigger price if <= 102
    ("stop_limit", "buy", "gap_up", GAP_UP, None),  # triggered at 105 > 102: rests
    ("stop_limit", "buy", "gap_down", GAP_DOWN, None),
    ("stop_limit", "buy", "touch", TOUCH_FROM_BELOW, 100.0),
    ("stop_limit", "buy", "miss", MISS_FROM_BELOW, None),
    # stop-limit sell (100, 98): mirror
    ("stop_limit", "sell", "gap_up", GAP_UP, None),
    ("stop_limit", "sell", "gap_down", GAP_DOWN, None),  # triggered at 95 < 98: rests
    ("stop_limit", "sell", "touch", TOUCH_FROM_ABOVE, 100.0),
    ("stop_limit", "sell", "miss", MISS_FROM_ABOVE, None),
]


@pytest.mark.parametrize(
    ("type_", "side", "bar", "expected"),
    [pytest.param(t, s, b, e, id=f"{t}-{s}-{c}") for t, s, c, b, e in MATRIX],
)
def test_order_fills_at_the_documented_price(broker: PaperBroker, type_: str, side: str,
                                             bar: Bar, expected: float | None) -> None:
    limit_price, stop_price = PRICES[type_][side]
    order = broker.submit(ACCOUNT, "ACME", side, 10, type=type_, limit_price=limit_price,
                          stop_price=stop_price)
    assert order.status is OrderStatus.ACCEPTED

    fills = broker.on_bar(bar, 0)

    if expected is None:
        assert fills == []
        assert order.status is OrderStatus.ACCEPTED
    else:
        assert [(f.order_id, f.qty, f.price) for f in fills] == [(order.id, 10.0, expected)]
        assert order.status is OrderStatus.FILLED


def test_matrix_covers_every_type_side_and_case() -> None:
    cells = {(t, s, c) for t, s, c, _, _ in MATRIX}
    assert len(cells) == len(MATRIX) == 4 * 2 * 4


def test_limit_buy_that_the_bar_gaps_through_fills_at_the_better_open(
        broker: PaperBroker, tape: Tape) -> None:
    order = broker.submit(ACCOUNT, "ACME", "buy", 10, type="limit", limit_price=99.0)

    (fill,) = tape.bar(96.5, 97.0, 96.0, 96.8)

    assert fill.price == 96.5
    assert order.avg_fill_price == 96.5


def test_stop_limit_buy_gapping_past_its_limit_rests_as_a_limit_and_fills_later(
        broker: PaperBroker, tape: Tape) -> None:
    order = broker.submit(ACCOUNT, "ACME", "buy", 10, type="stop_limit", stop_price=100.0,
                          limit_price=102.0)

    assert tape.bar(105.0, 108.0, 104.0, 106.0) == []  # triggered at 105, not marketable
    assert order.stop_triggered
    assert order.status is OrderStatus.ACCEPTED
    assert tape.bar(104.0, 105.0, 102.5, 103.0) == []  # a limit at 102 now: not reached
    (fill,) = tape.bar(103.0, 103.5, 101.0, 101.5)  # the low crosses 102

    assert fill.price == 102.0
    assert order.status is OrderStatus.FILLED


def test_triggered_stop_limit_sell_fills_as_a_limit_even_back_above_its_stop(
        broker: PaperBroker, tape: Tape) -> None:
    order = broker.submit(ACCOUNT, "ACME", "sell", 10, type="stop_limit", stop_price=100.0,
                          limit_price=98.0)

    assert tape.bar(95.0, 96.0, 92.0, 94.0) == []  # triggered at 95 < 98: rests as a limit
    (fill,) = tape.bar(101.0, 102.0, 100.5, 101.0)  # opens above the limit: the better open

    assert fill.price == 101.0
    assert order.status is OrderStatus.FILLED


def test_stop_limit_buy_gapping_within_its_limit_fills_at_the_open(
        broker: PaperBroker, tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "buy", 10, type="stop_limit", stop_price=100.0,
                  limit_price=102.0)

    (fill,) = tape.bar(101.0, 103.0, 100.5, 102.5)

    assert fill.price == 101.0


def test_untriggered_stop_limit_buy_ignores_a_bar_that_crosses_only_its_limit(
        broker: PaperBroker, tape: Tape) -> None:
    order = broker.submit(ACCOUNT, "ACME", "buy", 10, type="stop_limit", stop_price=100.0,
                          limit_price=95.0)

    assert tape.bar(97.0, 98.0, 94.0, 96.0) == []

    assert not order.stop_triggered
