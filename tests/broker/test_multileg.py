"""Multi-leg options orders in the paper broker: validation, atomic fills, limits, groups,
options levels and the buying power spreads hold (see broker/multileg.py)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from sandtrade.broker import PaperBroker, RiskRules
from sandtrade.errors import OrderRejected
from sandtrade.models import Bar, Instrument, OrderStatus

from .conftest import ACCOUNT, START, MakeBroker
from .options_table import QuoteTable, occ

C465, C470, C475, C480 = occ(465), occ(470), occ(475), occ(480)
P455, P460, P465 = occ(455, "P"), occ(460, "P"), occ(465, "P")


@pytest.fixture
def table() -> QuoteTable:
    return QuoteTable({
        C465: (7.90, 8.10), C470: (4.90, 5.10), C475: (2.90, 3.10), C480: (1.40, 1.60),
        P465: (2.40, 2.60), P460: (1.40, 1.60), P455: (0.90, 1.10),
    })


@pytest.fixture
def opts(make_broker: MakeBroker, table: QuoteTable) -> PaperBroker:
    broker = make_broker()
    broker.register(Instrument.equity("SPY"))
    broker.mark("SPY", 470.0)
    broker.set_quote_provider(table)
    return broker


def leg(symbol: str, side: str, ratio: int = 1, intent: str = "auto") -> dict[str, object]:
    return {"symbol": symbol, "side": side, "ratio": ratio, "intent": intent}


IRON_CONDOR = [leg(P460, "buy"), leg(P465, "sell"), leg(C475, "sell"), leg(C480, "buy")]


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(("legs", "field", "words"), [
    ([leg(C470, "buy")], "legs", "an mleg order has 2 to 4 legs (got 1)"),
    ([leg(C470, "buy", 2), leg(C475, "sell", 4)], "legs",
     "ratios 2:4 are not in lowest terms; write 1:2 and multiply qty by 2"),
    ([leg(C470, "buy"), leg(C470, "sell")], "legs[1].symbol",
     "SPY240119C00470000 is also legs[0]"),
    ([leg(C470, "buy"), leg(occ(470, root="QQQ"), "sell")], "legs[1].symbol",
     "underlying QQQ differs from legs[0]'s SPY"),
    ([leg("AAPL", "buy", 100), leg(C470, "sell")], "legs[0].symbol",
     "'AAPL' is neither an OCC option symbol nor the options' underlying SPY"),
    ([leg(C470, "buy", 0), leg(C475, "sell")], "legs[0].ratio", "greater than or equal to 1"),
])
def test_malformed_multileg_orders_raise_naming_the_field(
        opts: PaperBroker, legs: list[dict[str, object]], field: str, words: str) -> None:
    with pytest.raises(OrderRejected) as caught:
        opts.submit_multileg(ACCOUNT, legs, 1)
    assert caught.value.field == field
    assert words in str(caught.value)
    assert opts.orders(ACCOUNT) == []


def test_more_legs_than_the_operator_permits_raise(opts: PaperBroker, table: QuoteTable
                                                   ) -> None:
    five = [*IRON_CONDOR, leg(C465, "buy")]
    with pytest.raises(OrderRejected, match=r"legs: 5 legs; this broker takes 2 to 4 "
                       r"\(the operator's max_legs setting\)"):
        opts.submit_multileg(ACCOUNT, five, 1)


def test_an_operator_may_permit_more_legs(make_broker: MakeBroker, table: QuoteTable) -> None:
    broker = make_broker(max_legs=6)
    broker.register(Instrument.equity("SPY"))
    broker.mark("SPY", 470.0)
    broker.set_quote_provider(table)
    order = broker.submit_multileg(ACCOUNT, [*IRON_CONDOR, leg(C465, "buy")], 1)
    assert order.status is OrderStatus.FILLED


@pytest.mark.parametrize(("legs", "limit", "words"), [
    ([leg(C470, "buy"), leg(C475, "sell")], 5.50,
     "limit_price: a net debit of 5.50 per spread is impossible: the legs are worth at most "
     "5.00 at expiry, whatever SPY does"),
    ([leg(C470, "sell"), leg(C475, "buy")], -5.25,
     "limit_price: a net credit of 5.25 per spread is impossible: the legs are worth at "
     "least -5.00 at expiry"),
    (IRON_CONDOR, -5.10, "a net credit of 5.10 per spread is impossible"),
    ([leg(C470, "buy"), leg(P465, "buy")], -0.10,
     "a net credit of 0.10 per spread is impossible: the legs are worth at least 0.00"),
])
def test_an_impossible_net_price_is_refused_with_the_numbers(
        opts: PaperBroker, legs: list[dict[str, object]], limit: float, words: str) -> None:
    order = opts.submit_multileg(ACCOUNT, legs, 1, limit_price=limit)
    assert order.status is OrderStatus.REJECTED
    assert words in (order.reject_reason or "")


def test_an_expired_contract_is_refused(opts: PaperBroker) -> None:
    opts.set_time(datetime(2024, 1, 19, 21, 0))
    order = opts.submit_multileg(ACCOUNT, [leg(C470, "buy"), leg(C475, "sell")], 1)
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == ("legs[0].symbol: SPY240119C00470000 expired on 2024-01-19 "
                                   "(the broker's time is 2024-01-19 21:00:00)")


def test_a_leg_without_a_quote_is_refused_naming_it(opts: PaperBroker,
                                                    table: QuoteTable) -> None:
    del table.quotes[C475]
    order = opts.submit_multileg(ACCOUNT, [leg(C470, "buy"), leg(C475, "sell")], 1)
    assert order.reject_reason == "no quote for SPY240119C00475000"


def test_a_close_intent_without_a_position_is_refused(opts: PaperBroker) -> None:
    order = opts.submit_multileg(ACCOUNT, [leg(C470, "sell", intent="close"),
                                           leg(C475, "buy")], 1)
    assert order.reject_reason == (
        "legs[0].intent: close, but the account holds 0 SPY240119C00470000; a sell to close "
        "needs a long position of at least 1")


def test_spreads_need_options_level_3(opts: PaperBroker) -> None:
    opts.set_rules(ACCOUNT, RiskRules(options_level=2))
    order = opts.submit_multileg(ACCOUNT, [leg(C470, "buy"), leg(C475, "sell")], 1)
    assert order.reject_reason == ("options level: a multi-leg order needs options level 3 "
                                   "(spreads); account 'acct' is at level 2")
    assert opts.options_level(ACCOUNT) == 2


# ---------------------------------------------------------------- fills


def test_an_iron_condor_fills_all_four_legs_in_one_change(opts: PaperBroker) -> None:
    opts.begin_batch()
    order = opts.submit_multileg(ACCOUNT, IRON_CONDOR, 2, limit_price=-1.00)
    changes = opts.end_batch()

    with_fills = [c for c in changes if c.fills]
    assert len(with_fills) == 1
    change = with_fills[0]
    assert [(f.symbol, f.side.value, f.qty) for f in change.fills] == [
        (P460, "buy", 2), (P465, "sell", 2), (C475, "sell", 2), (C480, "buy", 2)]
    assert change.orders == [order] and order.status is OrderStatus.FILLED
    # natural: pay the ask, receive the bid: 1.60 - 2.40 - 2.90 + 1.60 = -2.10
    assert order.avg_fill_price == pytest.approx(-2.10)
    assert {p.symbol: p.qty for p in opts.positions(ACCOUNT)} == {
        P460: 2, P465: -2, C475: -2, C480: 2}
    assert opts.account(ACCOUNT).cash == pytest.approx(100_000 + 2.10 * 100 * 2)


@pytest.mark.parametrize(("fill", "share", "net"), [
    ("mid", 0.75, 2.00), ("natural", 0.75, 2.20), ("share", 0.75, 2.10), ("share", 0.5, 2.00)])
def test_the_fill_profile_prices_the_legs(make_broker: MakeBroker, table: QuoteTable,
                                          fill: str, share: float, net: float) -> None:
    broker = make_broker(multileg_fill=fill, multileg_spread_share=share)
    broker.set_quote_provider(table)
    order = broker.submit_multileg(ACCOUNT, [leg(C470, "buy"), leg(C475, "sell")], 1)
    assert order.avg_fill_price == pytest.approx(net)


def test_a_limit_not_reached_keeps_working_then_fills_when_quotes_move(
        opts: PaperBroker, table: QuoteTable) -> None:
    order = opts.submit_multileg(ACCOUNT, [leg(C470, "buy"), leg(C475, "sell")], 1,
                                 limit_price=1.80, tif="gtc")
    assert order.status is OrderStatus.ACCEPTED and opts.positions(ACCOUNT) == []

    table.set(C470, 4.40, 4.60)  # the spread is now 4.60 - 2.90 = 1.70
    fills = opts.on_bar(Bar("SPY", START, 469, 469, 469, 469))

    assert order.status is OrderStatus.FILLED and len(fills) == 2
    assert order.avg_fill_price == pytest.approx(1.70)


def test_a_credit_limit_fills_at_that_credit_or_more(opts: PaperBroker,
                                                     table: QuoteTable) -> None:
    order = opts.submit_multileg(ACCOUNT, [leg(C470, "sell"), leg(C475, "buy")], 1,
                                 limit_price=-2.00)
    assert order.status is OrderStatus.ACCEPTED  # natural credit is 4.90 - 3.10 = 1.80
    table.set(C470, 5.20, 5.40)
    opts.work_multileg()
    assert order.status is OrderStatus.FILLED
    assert order.avg_fill_price == pytest.approx(-2.10)


def test_a_leg_losing_its_quote_keeps_the_order_working_with_nothing_filled(
        opts: PaperBroker, table: QuoteTable) -> None:
    order = opts.submit_multileg(ACCOUNT, [leg(C470, "buy"), leg(C475, "sell")], 1,
                                 limit_price=1.0, tif="gtc")
    del table.quotes[C475]
    table.set(C470, 0.5, 0.6)
    opts.work_multileg()
    assert order.status is OrderStatus.ACCEPTED and opts.fills(ACCOUNT) == []


def test_a_group_closes_as_one_order(opts: PaperBroker) -> None:
    opened = opts.submit_multileg(ACCOUNT, IRON_CONDOR, 3)
    [group] = opts.position_groups(ACCOUNT)
    assert group.id == opened.id
    assert group.legs == {P460: 3, P465: -3, C475: -3, C480: 3}

    closed = opts.close_group(ACCOUNT, opened.id)

    assert closed.status is OrderStatus.FILLED and closed.parent_id == opened.id
    assert [(lg.symbol, lg.side.value, lg.ratio, lg.intent.value) for lg in closed.legs or ()] \
        == [(P460, "sell", 1, "close"), (P465, "buy", 1, "close"), (C475, "buy", 1, "close"),
            (C480, "sell", 1, "close")]
    assert closed.qty == 3
    assert opts.positions(ACCOUNT) == [] and opts.position_groups(ACCOUNT) == []


def test_closing_an_unknown_group_raises(opts: PaperBroker) -> None:
    with pytest.raises(OrderRejected, match="close_group: account 'acct' has no open position "
                       "group 'o-9'"):
        opts.close_group(ACCOUNT, "o-9")


# ---------------------------------------------------------------- buying power


def test_a_debit_spread_holds_its_debit(opts: PaperBroker) -> None:
    before = opts.buying_power(ACCOUNT)
    order = opts.submit_multileg(ACCOUNT, [leg(C470, "buy"), leg(C475, "sell")], 2)
    # natural debit 5.10 - 2.90 = 2.20, two spreads
    assert order.avg_fill_price == pytest.approx(2.20)
    assert before - opts.buying_power(ACCOUNT) == pytest.approx(2.20 * 100 * 2)


def test_an_iron_condor_holds_its_max_loss(opts: PaperBroker) -> None:
    before = opts.buying_power(ACCOUNT)
    order = opts.submit_multileg(ACCOUNT, IRON_CONDOR, 1)
    assert order.avg_fill_price == pytest.approx(-2.10)
    # max loss: the wing's width (5) less the credit (2.10), per contract (x100)
    assert before - opts.buying_power(ACCOUNT) == pytest.approx((5 - 2.10) * 100)


def test_a_spread_beyond_buying_power_is_refused(make_broker: MakeBroker,
                                                 table: QuoteTable) -> None:
    broker = make_broker(cash=250.0)
    broker.set_quote_provider(table)
    order = broker.submit_multileg(ACCOUNT, IRON_CONDOR, 1)
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == ("insufficient buying power: the 4-leg order at a net -2.10 "
                                   "per spread needs 290.00, 250.00 available")


def test_a_naked_short_call_is_refused_below_level_3(opts: PaperBroker) -> None:
    opts.set_rules(ACCOUNT, RiskRules(options_level=2))
    order = opts.submit(ACCOUNT, C475, "sell", 1)
    assert order.status is OrderStatus.REJECTED
    assert order.reject_reason == (
        "options level: selling 1 SPY240119C00475000 uncovered needs options level 3; account "
        "'acct' is at level 2 and holds 0 uncommitted SPY shares (100 cover it)")


def test_a_covered_call_passes_at_level_1(opts: PaperBroker) -> None:
    opts.set_rules(ACCOUNT, RiskRules(options_level=1))
    opts.submit(ACCOUNT, "SPY", "buy", 100)
    opts.on_bar(Bar("SPY", START, 470, 470, 470, 470))
    assert opts.submit(ACCOUNT, C475, "sell", 1).status is OrderStatus.ACCEPTED
    assert opts.submit(ACCOUNT, C480, "buy", 1).reject_reason == (
        "options level: buying SPY240119C00480000 needs options level 2 (long calls and "
        "puts); account 'acct' is at level 1")


def test_a_naked_short_call_holds_the_reg_t_requirement(opts: PaperBroker) -> None:
    before = opts.buying_power(ACCOUNT)
    opts.submit(ACCOUNT, C480, "sell", 2)
    opts.on_bar(Bar(C480, START, 1.5, 1.5, 1.5, 1.5))
    # 1.50 premium + max(20 % of 470 - 10 OTM, 10 % of 470) = 1.50 + 84 per share
    assert opts.equity(ACCOUNT) == pytest.approx(before)
    assert before - opts.buying_power(ACCOUNT) == pytest.approx((1.5 + 84.0) * 100 * 2)


def test_a_day_multileg_order_expires_at_the_next_session(opts: PaperBroker) -> None:
    order = opts.submit_multileg(ACCOUNT, [leg(C470, "buy"), leg(C475, "sell")], 1,
                                 limit_price=0.5)
    opts.on_bar(Bar("SPY", START + timedelta(days=1), 470, 470, 470, 470))
    assert order.status is OrderStatus.EXPIRED
    assert order.reject_reason == "day order expired at the end of the 2024-01-02 session"
