"""Positions, cash and P&L: average prices, FIFO lots, shorts, reversals and trade records."""

from __future__ import annotations

from datetime import datetime

import pytest

from sandtrade.broker import PaperBroker
from sandtrade.models import OrderStatus

from .conftest import ACCOUNT, MakeBroker, Tape


def test_two_buys_average_the_position_price(broker: PaperBroker, tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)
    broker.submit(ACCOUNT, "ACME", "buy", 30)
    tape.bar(110.0)

    position = broker.position(ACCOUNT, "ACME")

    assert position.qty == 40.0
    assert position.avg_price == pytest.approx(107.5)  # (10 x 100 + 30 x 110) / 40


def test_partial_sell_realizes_pnl_on_the_oldest_lot_first(broker: PaperBroker,
                                                           tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(110.0)
    broker.submit(ACCOUNT, "ACME", "sell", 15)
    tape.bar(120.0)

    position = broker.position(ACCOUNT, "ACME")

    # FIFO: 10 from 100 (+200) and 5 from 110 (+50); 5 left at 110
    assert position.realized_pnl == pytest.approx(250.0)
    assert (position.qty, position.avg_price) == (5.0, pytest.approx(110.0))
    assert broker.account(ACCOUNT).realized_pnl == pytest.approx(250.0)
    assert [(t.size, t.entry_price, t.exit_price, t.pnl)
            for t in broker.closed_trades(ACCOUNT)] == [
        (10.0, 100.0, 120.0, pytest.approx(200.0)), (5.0, 110.0, 120.0, pytest.approx(50.0))]


def test_position_is_marked_to_the_bar_close(broker: PaperBroker, tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0, 106.0, 99.0, 105.0)

    position = broker.position(ACCOUNT, "ACME")

    assert position.market_price == 105.0
    assert position.unrealized_pnl == pytest.approx(50.0)
    assert broker.equity(ACCOUNT) == pytest.approx(100_050.0)


def test_short_sale_raises_cash_and_leaves_equity_unchanged(broker: PaperBroker,
                                                            tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "sell", 10)
    tape.bar(100.0)

    account = broker.account(ACCOUNT)

    assert broker.position(ACCOUNT, "ACME").qty == -10.0
    assert account.cash == pytest.approx(101_000.0)
    assert account.short_market_value == pytest.approx(-1_000.0)
    assert account.equity == pytest.approx(100_000.0)
    assert account.buying_power == pytest.approx(99_000.0)  # 100,000 - 1,000 x 1.0


def test_short_margin_reduces_buying_power_by_its_multiple(make_broker: MakeBroker) -> None:
    broker = make_broker(cash=10_000.0, short_margin=1.5)
    broker.submit(ACCOUNT, "ACME", "sell", 10)
    Tape(broker).bar(100.0)

    account = broker.account(ACCOUNT)

    assert account.cash == pytest.approx(11_000.0)
    assert account.equity == pytest.approx(10_000.0)
    assert account.buying_power == pytest.approx(8_500.0)  # 10,000 - 1,000 x 1.5


def test_short_margin_is_required_to_open_a_short(make_broker: MakeBroker) -> None:
    broker = make_broker(cash=1_000.0, short_margin=1.5)

    order = broker.submit(ACCOUNT, "ACME", "sell", 7)  # 700 x 1.5 = 1,050 > 1,000

    assert order.status is OrderStatus.REJECTED
    assert "needs 1,050.00, 1,000.00 available" in (order.reject_reason or "")


def test_buying_back_a_short_closes_it_and_realizes_the_pnl(broker: PaperBroker,
                                                            tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "sell", 10)
    tape.bar(100.0)
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(90.0)

    account = broker.account(ACCOUNT)

    assert broker.positions(ACCOUNT) == []
    assert account.cash == pytest.approx(100_100.0)
    assert account.realized_pnl == pytest.approx(100.0)
    (trade,) = broker.closed_trades(ACCOUNT)
    assert (trade.size, trade.entry_price, trade.exit_price) == (-10.0, 100.0, 90.0)
    assert trade.pnl == pytest.approx(100.0)
    assert trade.return_pct == pytest.approx(0.1)


def test_sell_larger_than_the_long_reverses_it_into_a_short(broker: PaperBroker,
                                                           tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)
    order = broker.submit(ACCOUNT, "ACME", "sell", 25)
    (fill,) = tape.bar(110.0)

    position = broker.position(ACCOUNT, "ACME")

    assert (fill.qty, order.status) == (25.0, OrderStatus.FILLED)
    assert (position.qty, position.avg_price) == (-15.0, 110.0)
    (trade,) = broker.closed_trades(ACCOUNT)
    assert (trade.size, trade.entry_price, trade.exit_price) == (10.0, 100.0, 110.0)
    assert trade.pnl == pytest.approx(100.0)
    (open_trade,) = broker.open_trades(ACCOUNT)
    assert (open_trade.size, open_trade.entry_price) == (-15.0, 110.0)


def test_reversal_counts_the_margin_its_closing_part_frees(make_broker: MakeBroker) -> None:
    # Fully invested: 1,000 cash bought 10 at 100. Selling 20 closes the 10 (freeing 1,000 of
    # margin) and shorts 10 (needing 1,000): exactly affordable.
    broker = make_broker(cash=1_000.0)
    tape = Tape(broker)
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)
    assert broker.buying_power(ACCOUNT) == 0.0

    order = broker.submit(ACCOUNT, "ACME", "sell", 20)
    assert order.status is OrderStatus.ACCEPTED, order.reject_reason
    tape.bar(100.0)

    assert broker.position(ACCOUNT, "ACME").qty == -10.0
    assert broker.account(ACCOUNT).equity == pytest.approx(1_000.0)


def test_reversal_needs_short_margin_on_its_opening_part(make_broker: MakeBroker) -> None:
    # As above, but the short of 10 needs 1,500 at 150 % margin; closing frees only 1,000.
    broker = make_broker(cash=1_000.0, short_margin=1.5)
    tape = Tape(broker)
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)

    order = broker.submit(ACCOUNT, "ACME", "sell", 20)

    assert order.status is OrderStatus.REJECTED
    assert "needs 1,500.00, 1,000.00 available" in (order.reject_reason or "")


def test_reversal_that_no_longer_fits_the_margin_at_fill_is_canceled(
        make_broker: MakeBroker) -> None:
    # 1,500 cash buys 10 at 100, leaving 500. Selling 20 at 100 frees 1,000 and shorts 10
    # for 1,500 of margin: 1,500 available, accepted. It fills at 110: closing frees 1,100,
    # so 1,600 is available, and the short needs 1,650. It must not fill.
    broker = make_broker(cash=1_500.0, short_margin=1.5)
    tape = Tape(broker)
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)
    order = broker.submit(ACCOUNT, "ACME", "sell", 20)
    assert order.status is OrderStatus.ACCEPTED, order.reject_reason

    assert tape.bar(110.0) == []

    assert order.status is OrderStatus.CANCELED
    assert "needs 1,650.00, 1,600.00 available" in (order.reject_reason or "")
    assert broker.position(ACCOUNT, "ACME").qty == 10.0


def test_round_trip_is_recorded_as_a_closed_trade_net_of_both_commissions(
        make_broker: MakeBroker) -> None:
    broker = make_broker(cash=10_000.0, commission_pct=0.001)
    tape = Tape(broker)
    broker.submit(ACCOUNT, "ACME", "buy", 10, tag="entry")
    tape.bar(100.0)  # bar 0
    tape.bar(104.0)  # bar 1
    broker.submit(ACCOUNT, "ACME", "sell", 10)
    tape.bar(110.0)  # bar 2

    (trade,) = broker.closed_trades(ACCOUNT)

    # entry commission 10 x 100 x 0.1 % = 1.00; exit 10 x 110 x 0.1 % = 1.10
    assert (trade.size, trade.entry_price, trade.exit_price) == (10.0, 100.0, 110.0)
    assert (trade.entry_bar, trade.exit_bar) == (0, 2)
    assert (trade.entry_time, trade.exit_time) == (datetime(2024, 1, 2, 9, 30),
                                                   datetime(2024, 1, 2, 9, 32))
    assert trade.commission == pytest.approx(2.10)
    assert trade.pnl == pytest.approx(100.0 - 2.10)
    assert trade.return_pct == pytest.approx(0.10 - 2.10 / 1_000.0)
    assert trade.tag == "entry"
    assert broker.account(ACCOUNT).cash == pytest.approx(10_000.0 + 100.0 - 2.10)
    assert broker.open_trades(ACCOUNT) == []


def test_open_trades_are_marked_to_the_last_price(make_broker: MakeBroker) -> None:
    broker = make_broker(cash=10_000.0, commission_pct=0.001)
    tape = Tape(broker)
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    tape.bar(100.0)
    tape.bar(101.0, 106.0, 100.0, 105.0)

    (trade,) = broker.open_trades(ACCOUNT)

    assert (trade.size, trade.entry_price, trade.exit_price) == (10.0, 100.0, None)
    assert trade.pnl == pytest.approx(50.0 - 1.0)
    assert trade.return_pct == pytest.approx(0.05 - 1.0 / 1_000.0)
    assert broker.closed_trades(ACCOUNT) == []


def test_flat_position_reads_as_zero(broker: PaperBroker) -> None:
    position = broker.position(ACCOUNT, "XYZ")

    assert (position.qty, position.market_value, position.unrealized_pnl) == (0.0, 0.0, 0.0)
    assert broker.positions(ACCOUNT) == []


def test_fractional_crypto_round_trip_leaves_no_dust(broker: PaperBroker, tape: Tape) -> None:
    broker.submit(ACCOUNT, "BTC-USD", "buy", 0.1)
    broker.submit(ACCOUNT, "BTC-USD", "buy", 0.2)
    tape.bar(30_000.0, symbol="BTC-USD")
    broker.submit(ACCOUNT, "BTC-USD", "sell", 0.3)

    tape.bar(31_000.0, symbol="BTC-USD")

    assert broker.positions(ACCOUNT) == []
    assert broker.open_trades(ACCOUNT) == []
    assert sum(t.size for t in broker.closed_trades(ACCOUNT)) == pytest.approx(0.3)
    assert broker.account(ACCOUNT).cash == pytest.approx(100_000.0 + 0.3 * 1_000.0)
