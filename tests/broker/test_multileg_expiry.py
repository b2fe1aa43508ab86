"""Options at expiry: exercise, assignment, cash settlement, expiring worthless, a pin at the
strike; each a journaled event whose P&L equals a hand computation (broker/expiry.py); and
a restart with open multi-leg positions."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from sandtrade.broker import PaperBroker
from sandtrade.broker.ids import unique_ids
from sandtrade.models import Bar, FillKind, Instrument, OrderStatus
from sandtrade.store import SQLiteStore

from .conftest import ACCOUNT, START, MakeBroker
from .options_table import QuoteTable, occ

#: The expiry date's session ends at 16:00 New York time, 21:00 UTC in January.
AFTER_CLOSE = datetime(2024, 1, 22, 14, 30)


def buy_option(broker: PaperBroker, symbol: str, side: str, price: float, qty: int = 1) -> None:
    """Open a single option position at ``price`` (a bar of the contract fills it)."""
    order = broker.submit(ACCOUNT, symbol, side, qty)
    assert order.status is OrderStatus.ACCEPTED, order.reject_reason
    broker.on_bar(Bar(symbol, START, price, price, price, price))
    assert order.status is OrderStatus.FILLED


def settle_at(broker: PaperBroker, underlying: str, price: float) -> None:
    """The underlying closes the expiry date at ``price``; the next day's bar settles."""
    broker.on_bar(Bar(underlying, datetime(2024, 1, 19, 20, 59), price, price, price, price))
    broker.on_bar(Bar(underlying, AFTER_CLOSE, price + 3, price + 3, price + 3, price + 3))


@pytest.fixture
def opts(make_broker: MakeBroker) -> PaperBroker:
    broker = make_broker()
    broker.register(Instrument.equity("SPY"))
    broker.mark("SPY", 470.0)
    return broker


def test_an_itm_long_call_is_exercised_into_shares_at_the_strike(opts: PaperBroker) -> None:
    buy_option(opts, occ(470), "buy", 2.00)
    settle_at(opts, "SPY", 475.00)

    assert opts.position(ACCOUNT, occ(470)).qty == 0
    shares = opts.position(ACCOUNT, "SPY")
    assert (shares.qty, shares.avg_price) == (100, 470.0)
    events = opts.expiry_events(ACCOUNT)
    assert [(e["kind"], e["symbol"], e["side"], e["qty"], e["price"]) for e in events] == [
        ("exercise", occ(470), "sell", 1, 0.0), ("exercise", "SPY", "buy", 100, 470.0)]
    assert events[0]["reason"] == (
        "expiry: SPY240119C00470000 exercised at the 2024-01-19 session end: SPY at 475.00, "
        "strike 470, 5.00 in the money: bought 100 SPY at 470")
    # by hand: paid 200 for the call and 47,000 for the shares, worth 475 x 100 at expiry
    assert opts.account(ACCOUNT).cash == pytest.approx(100_000 - 200 - 47_000)
    assert opts.account(ACCOUNT).realized_pnl == pytest.approx(-200)
    # the expiry bar's close (475) marks the shares; the next bar's open is +3
    assert opts.equity(ACCOUNT) == pytest.approx(100_000 - 200 + (478 - 470) * 100)


def test_an_itm_short_put_is_assigned_shares(opts: PaperBroker) -> None:
    buy_option(opts, occ(470, "P"), "sell", 3.00, qty=2)
    settle_at(opts, "SPY", 466.50)

    fills = opts.fills(ACCOUNT)[-2:]
    assert [(f.kind, f.symbol, f.side.value, f.qty, f.price) for f in fills] == [
        (FillKind.ASSIGNMENT, occ(470, "P"), "buy", 2, 0.0),
        (FillKind.ASSIGNMENT, "SPY", "buy", 200, 470.0)]
    assert opts.position(ACCOUNT, "SPY").qty == 200
    # by hand: received 600 of premium, paid 94,000 for 200 shares then worth 466.50
    assert opts.account(ACCOUNT).cash == pytest.approx(100_000 + 600 - 94_000)
    assert opts.account(ACCOUNT).realized_pnl == pytest.approx(600)


def test_an_otm_option_expires_worthless(opts: PaperBroker) -> None:
    buy_option(opts, occ(480), "buy", 1.25)
    settle_at(opts, "SPY", 475.00)

    [fill] = opts.fills(ACCOUNT)[-1:]
    assert (fill.kind, fill.price, fill.qty) == (FillKind.EXPIRY, 0.0, 1)
    assert opts.positions(ACCOUNT) == []
    assert opts.account(ACCOUNT).cash == pytest.approx(100_000 - 125)
    assert opts.account(ACCOUNT).realized_pnl == pytest.approx(-125)
    assert "expired worthless at the 2024-01-19 session end: SPY at 475.00, strike 480, " \
        "5.00 out of the money" in opts.expiry_events(ACCOUNT)[0]["reason"]


def test_a_pin_at_the_strike_expires_worthless_on_both_sides(opts: PaperBroker) -> None:
    buy_option(opts, occ(470), "buy", 2.00)
    buy_option(opts, occ(470, "P"), "sell", 1.50)
    settle_at(opts, "SPY", 470.004)

    kinds = [(e["kind"], e["symbol"]) for e in opts.expiry_events(ACCOUNT)]
    assert kinds == [("expiry", occ(470)), ("expiry", occ(470, "P"))]
    assert opts.positions(ACCOUNT) == []
    assert opts.account(ACCOUNT).cash == pytest.approx(100_000 - 200 + 150)


def test_one_cent_in_the_money_is_exercised(opts: PaperBroker) -> None:
    buy_option(opts, occ(470), "buy", 0.50)
    settle_at(opts, "SPY", 470.01)
    assert opts.position(ACCOUNT, "SPY").qty == 100


def test_a_cash_settled_index_option_pays_the_difference(opts: PaperBroker) -> None:
    opts.register(Instrument.equity("SPX"))
    opts.mark("SPX", 4700.0)
    long_call, short_call = occ(4700, root="SPXW"), occ(4750, root="SPXW")
    buy_option(opts, long_call, "buy", 40.0)
    buy_option(opts, short_call, "sell", 20.0)
    settle_at(opts, "SPX", 4762.40)

    fills = opts.fills(ACCOUNT)[-2:]
    assert [(f.kind, f.symbol, f.price) for f in fills] == [
        (FillKind.EXERCISE, long_call, pytest.approx(62.40)),
        (FillKind.ASSIGNMENT, short_call, pytest.approx(12.40))]
    assert opts.positions(ACCOUNT) == []  # no shares: settled in cash
    # by hand: paid 4,000, received 2,000; at expiry the spread pays its width, 50 x 100
    assert opts.account(ACCOUNT).cash == pytest.approx(100_000 - 4_000 + 2_000 + 5_000)
    assert opts.account(ACCOUNT).realized_pnl == pytest.approx(3_000)
    assert "settled in cash (6,240.00)" in opts.expiry_events(ACCOUNT)[0]["reason"]


def test_expiry_waits_for_the_session_end(opts: PaperBroker) -> None:
    buy_option(opts, occ(470), "buy", 2.00)
    opts.on_bar(Bar("SPY", datetime(2024, 1, 19, 20, 59), 480, 480, 480, 480))
    assert opts.position(ACCOUNT, occ(470)).qty == 1
    opts.on_bar(Bar("SPY", datetime(2024, 1, 19, 21, 0), 481, 481, 481, 481))
    assert opts.position(ACCOUNT, occ(470)).qty == 0
    assert opts.position(ACCOUNT, "SPY").qty == 100  # settled on the 20:59 close, 480


def test_a_multileg_group_expires_and_leaves_no_group(opts: PaperBroker) -> None:
    table = QuoteTable({occ(470): (4.9, 5.1), occ(475): (2.9, 3.1)})
    opts.set_quote_provider(table)
    order = opts.submit_multileg(ACCOUNT, [{"symbol": occ(470), "side": "buy"},
                                           {"symbol": occ(475), "side": "sell"}], 1)
    assert order.status is OrderStatus.FILLED
    settle_at(opts, "SPY", 480.0)
    # both in the money: bought 100 at 470, sold 100 at 475: the width, less the 2.20 debit
    assert opts.position_groups(ACCOUNT) == []
    assert opts.positions(ACCOUNT) == []
    assert opts.account(ACCOUNT).cash == pytest.approx(100_000 - 220 + 500)


def test_expiry_events_and_open_groups_survive_a_restart(make_broker: MakeBroker,
                                                         tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(str(db))
    broker = make_broker(store=store)
    broker.register(Instrument.equity("SPY"))
    broker.mark("SPY", 470.0)
    table = QuoteTable({occ(470): (4.9, 5.1), occ(475): (2.9, 3.1), occ(480, exp="240216"):
                        (1.4, 1.6), occ(485, exp="240216"): (0.9, 1.1)})
    broker.set_quote_provider(table)
    buy_option(broker, occ(470, "P"), "sell", 3.00)
    near = broker.submit_multileg(ACCOUNT, [{"symbol": occ(470), "side": "buy"},
                                            {"symbol": occ(475), "side": "sell"}], 1)
    far = broker.submit_multileg(ACCOUNT, [{"symbol": occ(480, exp="240216"), "side": "buy"},
                                           {"symbol": occ(485, exp="240216"), "side": "sell"}],
                                 2, limit_price=0.80, tif="gtc")
    working = broker.submit_multileg(ACCOUNT, [{"symbol": occ(480, exp="240216"),
                                                "side": "buy"},
                                               {"symbol": occ(485, exp="240216"),
                                                "side": "sell"}], 1, limit_price=0.10,
                                     tif="gtc")
    assert near.status is OrderStatus.FILLED and far.status is OrderStatus.FILLED
    settle_at(broker, "SPY", 465.0)
    before = ({p.symbol: p.qty for p in broker.positions(ACCOUNT)},
              [g.to_json() for g in broker.position_groups(ACCOUNT)],
              broker.buying_power(ACCOUNT), broker.expiry_events(ACCOUNT))
    store.close()

    again = PaperBroker(broker.settings, store=SQLiteStore(str(db)), quotes=table,
                        ids=unique_ids())
    again.restore()
    again.mark("SPY", 468.0)
    for sym in (occ(480, exp="240216"), occ(485, exp="240216")):
        again.mark(sym, table(sym).mid)  # type: ignore[union-attr]
    after = ({p.symbol: p.qty for p in again.positions(ACCOUNT)},
             [g.to_json() for g in again.position_groups(ACCOUNT)],
             again.buying_power(ACCOUNT), again.expiry_events(ACCOUNT))
    assert after == before
    assert before[1] == [{"id": far.id, "account": ACCOUNT,
                          "legs": {occ(480, exp="240216"): 2, occ(485, exp="240216"): -2}}]
    assert [o.id for o in again.orders(ACCOUNT, open_only=True)] == [working.id]
    table.set(occ(480, exp="240216"), 0.5, 0.6)
    table.set(occ(485, exp="240216"), 0.5, 0.55)
    again.work_multileg()
    assert again.get_order(working.id).status is OrderStatus.FILLED
