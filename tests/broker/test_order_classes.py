"""Order classes: bracket, oto, oco and trailing stops, each against every fill case.

The order of events inside a bar is the one ``broker/fills.py`` documents (and
``tests/backtest/test_bracket_agreement.py`` holds to backtesting.py): a bracket's exits exist
once its entry fills, sized to what filled; after a market entry they meet the rest of the
entry's bar; when a bar touches both, the stop loss wins; a gap fills at the open.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandtrade.broker import BrokerSettings, PaperBroker
from sandtrade.broker.durable import DurableBroker
from sandtrade.broker.ids import unique_ids
from sandtrade.errors import OrderRejected
from sandtrade.models import (
    Account,
    BrokerChange,
    ExitSpec,
    Order,
    OrderClass,
    OrderStatus,
    OrderType,
)
from sandtrade.store import SQLiteStore

from .conftest import ACCOUNT, LAST_PRICES, MakeBroker, Tape, instruments

TP, SL = ExitSpec(price=110.0), ExitSpec(price=95.0)


def bracket(broker: PaperBroker, qty: float = 10, **kw: object) -> Order:
    """A buy bracket on ACME (last 100): take profit 110, stop loss 95 unless given."""
    kw.setdefault("take_profit", TP)
    kw.setdefault("stop_loss", SL)
    return broker.submit(ACCOUNT, "ACME", "buy", qty, **kw)  # type: ignore[arg-type]


def legs(broker: PaperBroker, entry: Order) -> tuple[Order, Order]:
    """The stop loss and take profit of ``entry``, in that order."""
    stop, take = broker.children(entry.id)
    assert (stop.type, take.type) == (OrderType.STOP, OrderType.LIMIT)
    return stop, take


def change_with_fill(changes: list[BrokerChange], order: Order) -> BrokerChange:
    (change,) = [c for c in changes if any(f.order_id == order.id for f in c.fills)]
    return change


# ------------------------------------------------------------------ bracket


def test_bracket_is_inferred_and_its_exits_wait_for_the_entry(broker: PaperBroker,
                                                              tape: Tape) -> None:
    entry = bracket(broker, type="limit", limit_price=97.0)
    assert entry.order_class is OrderClass.BRACKET and entry.status is OrderStatus.ACCEPTED

    assert tape.bar(100.0, high=101.0, low=98.0) == []  # never reaches 97

    assert broker.children(entry.id) == []
    assert [o.id for o in broker.orders(ACCOUNT, open_only=True)] == [entry.id]


def test_bracket_exits_are_sized_to_what_filled_and_grow_with_the_entry(
        make_broker: MakeBroker) -> None:
    broker = make_broker(volume_share=0.1)
    tape = Tape(broker)
    entry = bracket(broker, 150, type="limit", limit_price=100.0)

    tape.bar(100.0, volume=1_000)  # 100 of 150
    stop, take = legs(broker, entry)
    assert (entry.status, stop.qty, take.qty) == (OrderStatus.PARTIALLY_FILLED, 100.0, 100.0)
    assert (stop.stop_price, take.limit_price, stop.parent_id) == (95.0, 110.0, entry.id)
    assert stop.reduce_only and take.reduce_only

    tape.bar(100.0, volume=1_000)  # the other 50
    assert (entry.status, stop.qty, take.qty) == (OrderStatus.FILLED, 150.0, 150.0)


@pytest.fixture
def stored(make_broker: MakeBroker, tmp_path: Path) -> Iterator[PaperBroker]:
    """A broker that commits to a real SQLite store (so every change is recorded)."""
    with SQLiteStore(tmp_path / "broker.db") as store:
        yield make_broker(store=store)


def test_bracket_take_profit_fills_and_cancels_the_stop_loss_in_the_same_change(
        stored: PaperBroker) -> None:
    broker, tape = stored, Tape(stored)
    entry = bracket(broker)
    tape.bar(100.0)
    stop, take = legs(broker, entry)

    broker.begin_batch()
    (fill,) = tape.bar(105.0, high=111.0, low=104.0)
    changes = broker.end_batch()

    assert (fill.order_id, fill.price) == (take.id, 110.0)
    assert (take.status, stop.status) == (OrderStatus.FILLED, OrderStatus.CANCELED)
    assert [o.id for o in change_with_fill(changes, take).orders] == [take.id, stop.id]
    assert broker.position(ACCOUNT, "ACME").qty == 0


def test_bracket_stop_loss_fills_and_cancels_the_take_profit(stored: PaperBroker) -> None:
    broker, tape = stored, Tape(stored)
    entry = bracket(broker)
    tape.bar(100.0)
    stop, take = legs(broker, entry)

    broker.begin_batch()
    (fill,) = tape.bar(99.0, high=99.5, low=94.0)
    changes = broker.end_batch()

    assert (fill.order_id, fill.price) == (stop.id, 95.0)
    assert (stop.status, take.status) == (OrderStatus.FILLED, OrderStatus.CANCELED)
    assert [o.id for o in change_with_fill(changes, stop).orders] == [stop.id, take.id]


def test_bracket_bar_touching_both_exits_fills_the_stop_loss(broker: PaperBroker,
                                                             tape: Tape) -> None:
    entry = bracket(broker)
    tape.bar(100.0)
    stop, take = legs(broker, entry)

    (fill,) = tape.bar(100.0, high=112.0, low=93.0)

    assert (fill.order_id, fill.price) == (stop.id, 95.0)
    assert take.status is OrderStatus.CANCELED


@pytest.mark.parametrize(("open_", "winner", "price"), [(90.0, "stop", 90.0),
                                                        (115.0, "take", 115.0)])
def test_bracket_gap_through_an_exit_fills_at_the_open(broker: PaperBroker, tape: Tape,
                                                       open_: float, winner: str,
                                                       price: float) -> None:
    entry = bracket(broker)
    tape.bar(100.0)
    stop, take = legs(broker, entry)

    (fill,) = tape.bar(open_)

    won, lost = (stop, take) if winner == "stop" else (take, stop)
    assert (fill.order_id, fill.price) == (won.id, price)
    assert (won.status, lost.status) == (OrderStatus.FILLED, OrderStatus.CANCELED)


def test_bracket_stop_loss_can_fill_on_the_market_entrys_own_bar(broker: PaperBroker,
                                                                 tape: Tape) -> None:
    entry = bracket(broker)

    entry_fill, exit_fill = tape.bar(100.0, high=101.0, low=94.0)

    stop, _ = legs(broker, entry)
    assert (entry_fill.order_id, entry_fill.price) == (entry.id, 100.0)
    assert (exit_fill.order_id, exit_fill.price) == (stop.id, 95.0)


def test_bracket_exits_of_a_limit_entry_start_on_the_next_bar(broker: PaperBroker,
                                                              tape: Tape) -> None:
    entry = bracket(broker, type="limit", limit_price=99.0)

    (fill,) = tape.bar(100.0, high=101.0, low=94.0)  # fills at 99, low touches 95

    assert fill.order_id == entry.id
    stop, _ = legs(broker, entry)
    assert stop.status is OrderStatus.ACCEPTED
    (fill,) = tape.bar(96.0, low=94.0)
    assert fill.order_id == stop.id


def test_bracket_percent_and_amount_exits_are_priced_from_the_fill(broker: PaperBroker,
                                                                   tape: Tape) -> None:
    entry = bracket(broker, take_profit=ExitSpec(percent=5.0),
                    stop_loss=ExitSpec(amount=3.0))
    tape.bar(102.0)
    stop, take = legs(broker, entry)
    assert take.limit_price == pytest.approx(107.1)
    assert stop.stop_price == pytest.approx(99.0)


def test_short_bracket_mirrors_the_exits(broker: PaperBroker, tape: Tape) -> None:
    entry = broker.submit(ACCOUNT, "ACME", "sell", 10, take_profit=ExitSpec(percent=10.0),
                          stop_loss=ExitSpec(price=105.0))
    tape.bar(100.0)
    stop, take = legs(broker, entry)
    assert (stop.side.value, stop.stop_price, take.limit_price) == ("buy", 105.0, 90.0)
    (fill,) = tape.bar(95.0, high=106.0, low=89.0)  # both: the stop loss
    assert (fill.order_id, fill.price) == (stop.id, 105.0)


def test_cancel_of_the_parent_cancels_its_children(make_broker: MakeBroker) -> None:
    broker = make_broker(volume_share=0.1)
    tape = Tape(broker)
    entry = bracket(broker, 150, type="limit", limit_price=100.0)
    tape.bar(100.0, volume=1_000)
    stop, take = legs(broker, entry)

    broker.begin_batch()
    broker.cancel(entry.id)
    (change,) = broker.end_batch()

    assert {o.id for o in change.orders} == {entry.id, stop.id, take.id}
    assert {o.status for o in (entry, stop, take)} == {OrderStatus.CANCELED}
    assert broker.orders(ACCOUNT, open_only=True) == []


def test_cancel_of_a_filled_entry_cancels_its_exits(broker: PaperBroker, tape: Tape) -> None:
    entry = bracket(broker)
    tape.bar(100.0)
    stop, take = legs(broker, entry)

    broker.cancel(entry.id)

    assert (entry.status, stop.status, take.status) == (
        OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.CANCELED)


@pytest.mark.parametrize(("kw", "field"), [
    ({"take_profit": ExitSpec(price=90.0)}, "take_profit"),
    ({"stop_loss": ExitSpec(price=120.0), "take_profit": ExitSpec(price=130.0)}, "stop_loss"),
    ({"trail_percent": 2.0}, "trail_percent"),
    ({"tif": "ioc"}, "tif"),
])
def test_bad_brackets_are_refused_naming_the_field(broker: PaperBroker, kw: dict[str, object],
                                                   field: str) -> None:
    try:
        order = bracket(broker, **kw)
    except OrderRejected as e:
        assert e.field == field, e
        assert field in str(e)
    else:
        assert order.status is OrderStatus.REJECTED
        assert order.reject_reason is not None and field in order.reject_reason


def test_exit_spec_takes_exactly_one_distance() -> None:
    with pytest.raises(ValueError, match="exactly one of price"):
        ExitSpec(price=1.0, percent=2.0)
    with pytest.raises(ValueError, match="exactly one of price"):
        ExitSpec()


# ------------------------------------------------------------------ oto


def test_oto_with_a_take_profit_only(broker: PaperBroker, tape: Tape) -> None:
    entry = broker.submit(ACCOUNT, "ACME", "buy", 10, take_profit=ExitSpec(percent=2.0))
    assert entry.order_class is OrderClass.OTO
    tape.bar(100.0)
    (take,) = broker.children(entry.id)
    (fill,) = tape.bar(101.0, high=103.0)
    assert (fill.order_id, fill.price) == (take.id, 102.0)


def test_oto_with_a_stop_loss_only_gaps_through(broker: PaperBroker, tape: Tape) -> None:
    entry = broker.submit(ACCOUNT, "ACME", "buy", 10, stop_loss=ExitSpec(price=97.0))
    tape.bar(100.0)
    (stop,) = broker.children(entry.id)
    (fill,) = tape.bar(95.0)
    assert (fill.order_id, fill.price) == (stop.id, 95.0)


def test_oto_trailing_stop_ratchets_with_highs_then_triggers(broker: PaperBroker,
                                                             tape: Tape) -> None:
    entry = broker.submit(ACCOUNT, "ACME", "buy", 10, trail_percent=5.0)
    tape.bar(100.0, high=100.0, low=99.0)
    (trail,) = broker.children(entry.id)
    assert (trail.type, trail.hwm, trail.stop_price) == (OrderType.TRAILING_STOP, 100.0, 95.0)

    tape.bar(101.0, high=110.0, low=100.0)  # the high raises the mark for the next bar
    assert (trail.hwm, trail.stop_price) == (110.0, 104.5)
    tape.bar(108.0, high=109.0, low=105.0)  # no new high, no touch
    assert trail.hwm == 110.0 and trail.is_open

    (fill,) = tape.bar(106.0, high=107.0, low=104.0)
    assert (fill.order_id, fill.price) == (trail.id, 104.5)


# ------------------------------------------------------------------ trailing stop alone


def test_trailing_stop_sell_starts_at_the_last_price(broker: PaperBroker, tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)
    trail = broker.submit(ACCOUNT, "ACME", "sell", 10, type="trailing_stop", trail_price=2.0)
    assert (trail.hwm, trail.stop_price, trail.order_class) == (100.0, 98.0, OrderClass.SIMPLE)

    tape.bar(103.0, high=103.0, low=101.5)  # the open lifts it to 101, the low misses
    assert (trail.hwm, trail.stop_price) == (103.0, 101.0)
    (fill,) = tape.bar(100.0)  # gaps through 101
    assert (fill.order_id, fill.price) == (trail.id, 100.0)


def test_trailing_stop_buy_follows_the_lows(broker: PaperBroker, tape: Tape) -> None:
    trail = broker.submit(ACCOUNT, "ACME", "buy", 10, type="trailing_stop", trail_percent=10.0)
    assert trail.stop_price == pytest.approx(110.0)
    tape.bar(95.0, high=96.0, low=90.0)
    assert (trail.hwm, trail.stop_price) == (90.0, pytest.approx(99.0))
    (fill,) = tape.bar(95.0, high=100.0, low=94.0)
    assert (fill.order_id, fill.price) == (trail.id, pytest.approx(99.0))


def test_trailing_stop_needs_one_trail(broker: PaperBroker) -> None:
    with pytest.raises(OrderRejected) as e:
        broker.submit(ACCOUNT, "ACME", "sell", 1, type="trailing_stop")
    assert "trail_price or trail_percent" in str(e.value)
    with pytest.raises(OrderRejected, match="not both"):
        broker.submit(ACCOUNT, "ACME", "sell", 1, type="trailing_stop", trail_price=1.0,
                      trail_percent=1.0)


# ------------------------------------------------------------------ oco


def oco(broker: PaperBroker, tape: Tape) -> tuple[Order, Order]:
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)
    take = broker.submit(ACCOUNT, "ACME", "sell", 10, order_class="oco",
                         take_profit=ExitSpec(price=110.0), stop_loss=ExitSpec(price=95.0))
    (stop,) = broker.children(take.id)
    assert (take.type, take.limit_price, stop.type, stop.stop_price) == (
        OrderType.LIMIT, 110.0, OrderType.STOP, 95.0)
    return take, stop


def test_oco_take_profit_cancels_the_stop(broker: PaperBroker, tape: Tape) -> None:
    take, stop = oco(broker, tape)
    (fill,) = tape.bar(105.0, high=111.0)
    assert (fill.order_id, take.status, stop.status) == (take.id, OrderStatus.FILLED,
                                                         OrderStatus.CANCELED)


def test_oco_stop_fills_on_a_gap_and_cancels_the_take_profit(broker: PaperBroker,
                                                             tape: Tape) -> None:
    take, stop = oco(broker, tape)
    (fill,) = tape.bar(90.0)
    assert (fill.order_id, fill.price, take.status) == (stop.id, 90.0, OrderStatus.CANCELED)


def test_oco_both_touched_fills_the_stop(broker: PaperBroker, tape: Tape) -> None:
    take, stop = oco(broker, tape)
    fills = tape.bar(100.0, high=111.0, low=94.0)
    assert [(f.order_id, f.price) for f in fills] == [(stop.id, 95.0)]
    assert take.status is OrderStatus.CANCELED


def test_oco_is_exit_only(broker: PaperBroker) -> None:
    order = broker.submit(ACCOUNT, "ACME", "sell", 10, order_class="oco",
                          take_profit=ExitSpec(price=110.0), stop_loss=ExitSpec(price=95.0))
    assert order.status is OrderStatus.REJECTED
    assert "exit-only" in (order.reject_reason or "")


def test_oco_cancel_of_either_leg_cancels_both(broker: PaperBroker, tape: Tape) -> None:
    take, stop = oco(broker, tape)
    broker.cancel(stop.id)
    assert (take.status, stop.status) == (OrderStatus.CANCELED, OrderStatus.CANCELED)


# ------------------------------------------------------------------ a host restart


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "broker.db"
    with SQLiteStore(path) as store:
        store.create_account(Account(id=ACCOUNT, cash=100_000.0, initial_cash=100_000.0))
    return path


def durable(path: Path) -> Iterator[DurableBroker]:
    with SQLiteStore(path) as store:
        def make() -> PaperBroker:
            broker = PaperBroker(BrokerSettings(), instruments=instruments(), store=store,
                                 ids=unique_ids())
            broker.restore()
            for symbol, price in LAST_PRICES.items():
                broker.mark(symbol, price)
            return broker

        with DurableBroker(make, store) as live:
            yield live


@pytest.mark.parametrize(("bar", "winner"), [((105.0, 111.0, 104.0), 1),
                                             ((99.0, 99.5, 94.0), 0),
                                             ((100.0, 112.0, 93.0), 0)])
def test_bracket_exits_survive_a_restart_and_exactly_one_fills(
        db: Path, bar: tuple[float, float, float], winner: int) -> None:
    host = durable(db)
    live = next(host)
    tape = Tape(live.call(lambda b: b))
    entry = live.call(lambda b: bracket(b))
    live.call(lambda b: tape.bar(100.0))
    before = live.call(lambda b: [o.id for o in b.children(entry.id)])
    host.close()  # the host goes away between the entry's fill and the exits

    host = durable(db)
    live = next(host)
    exits = live.call(lambda b: b.children(entry.id))
    assert [o.id for o in exits] == before
    assert [o.status for o in exits] == [OrderStatus.ACCEPTED] * 2
    assert live.call(lambda b: b.position(ACCOUNT, "ACME").qty) == 10.0

    tape.broker = live.call(lambda b: b)
    fills = live.call(lambda b: tape.bar(bar[0], high=bar[1], low=bar[2]))
    host.close()

    assert [f.order_id for f in fills] == [before[winner]]
    with SQLiteStore(db) as store:
        stored = [store.get_order(i) for i in before]
        assert sorted(o.status for o in stored if o is not None) == [
            OrderStatus.CANCELED, OrderStatus.FILLED]
        assert store.list_positions(ACCOUNT) == []


def test_oto_trailing_exit_keeps_its_mark_across_a_restart(db: Path) -> None:
    host = durable(db)
    live = next(host)
    tape = Tape(live.call(lambda b: b))
    entry = live.call(lambda b: b.submit(ACCOUNT, "ACME", "buy", 10, trail_price=3.0))
    live.call(lambda b: tape.bar(100.0, high=104.0, low=99.5))
    (trail,) = live.call(lambda b: b.children(entry.id))
    assert (trail.hwm, trail.stop_price) == (104.0, 101.0)
    host.close()

    host = durable(db)
    live = next(host)
    (again,) = live.call(lambda b: b.children(entry.id))
    assert (again.id, again.hwm, again.stop_price) == (trail.id, 104.0, 101.0)
    tape.broker = live.call(lambda b: b)
    fills = live.call(lambda b: tape.bar(102.0, high=102.5, low=100.0))
    host.close()
    assert [(f.order_id, f.price) for f in fills] == [(trail.id, 101.0)]
