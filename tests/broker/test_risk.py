"""Risk rules in the broker: each refuses with its name and its numbers; orders that only
reduce a position always pass (the pattern-day-trader protection aside, which is about exits);
the day's halt and the day trades survive a restart."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from sandtrade.broker import PaperBroker, RiskRules
from sandtrade.broker.ids import unique_ids
from sandtrade.broker.risk import PDT_WORDS, business_days_back, risk_state_key
from sandtrade.models import Order, OrderStatus
from sandtrade.store import SQLiteStore

from .conftest import ACCOUNT, START, MakeBroker, Tape, instruments


def refused(order: Order) -> str:
    """The reason ``order`` was rejected (failing when it was not)."""
    assert order.status is OrderStatus.REJECTED, f"accepted: {order!r}"
    assert order.reject_reason is not None
    return order.reject_reason


def accepted(order: Order) -> Order:
    assert order.status is not OrderStatus.REJECTED, order.reject_reason
    return order


def test_no_rules_refuse_nothing(broker: PaperBroker) -> None:
    assert broker.rules(ACCOUNT).is_empty()
    accepted(broker.submit(ACCOUNT, "ACME", "buy", 900))


def test_max_position_size_counts_working_orders(broker: PaperBroker, tape: Tape) -> None:
    broker.set_rules(ACCOUNT, RiskRules(max_position_qty=100))
    accepted(broker.submit(ACCOUNT, "ACME", "buy", 60))
    assert refused(broker.submit(ACCOUNT, "ACME", "buy", 50)) == (
        "risk: max position size: buy 50 ACME would make the ACME position 110 with 60 on "
        "working orders (limit 100)")
    tape.bar(100.0)
    assert refused(broker.submit(ACCOUNT, "ACME", "buy", 41)) == (
        "risk: max position size: buy 41 ACME would make the ACME position 101 (limit 100)")
    accepted(broker.submit(ACCOUNT, "ACME", "buy", 40))
    # shorts count too, and selling what is held is not a new position
    accepted(broker.submit(ACCOUNT, "XYZ", "sell", 100))
    assert "would make the XYZ position -101" in refused(
        broker.submit(ACCOUNT, "XYZ", "sell", 1))


def test_max_position_notional_with_a_symbols_own_limit(broker: PaperBroker) -> None:
    broker.set_rules(ACCOUNT, RiskRules(max_position_notional=5_000,
                                        max_position_notional_by_symbol={"XYZ": 1_000}))
    assert refused(broker.submit(ACCOUNT, "ACME", "buy", 60)) == (
        "risk: max position notional: buy 60 ACME at ~100.00 would make the ACME position "
        "worth 6,000.00 (limit 5,000.00)")
    accepted(broker.submit(ACCOUNT, "ACME", "buy", 50))
    assert refused(broker.submit(ACCOUNT, "XYZ", "buy", 30)) == (
        "risk: max position notional: buy 30 XYZ at ~50.00 would make the XYZ position worth "
        "1,500.00 (limit 1,000.00)")
    accepted(broker.submit(ACCOUNT, "XYZ", "buy", 20))


def test_max_gross_exposure_adds_every_position(broker: PaperBroker, tape: Tape) -> None:
    broker.set_rules(ACCOUNT, RiskRules(max_gross_exposure=10_000))
    accepted(broker.submit(ACCOUNT, "ACME", "buy", 60))
    tape.bar(100.0)  # long 6,000 of ACME
    assert refused(broker.submit(ACCOUNT, "XYZ", "sell", 90)) == (
        "risk: max gross exposure: sell 90 XYZ at ~50.00 would make gross exposure 10,500.00 "
        "(limit 10,000.00)")
    accepted(broker.submit(ACCOUNT, "XYZ", "sell", 80))


def test_max_order_notional(broker: PaperBroker, tape: Tape) -> None:
    broker.set_rules(ACCOUNT, RiskRules(max_order_notional=2_500))
    assert refused(broker.submit(ACCOUNT, "ACME", "buy", 30)) == (
        "risk: max order notional: buy 30 ACME at ~100.00 is worth 3,000.00 (limit 2,500.00)")
    for _ in range(2):
        accepted(broker.submit(ACCOUNT, "ACME", "buy", 25))
    tape.bar(100.0)
    # closing the whole 5,000 position in one order reduces risk: it passes
    accepted(broker.submit(ACCOUNT, "ACME", "sell", 50))


def test_orders_per_day_then_only_reducing_until_the_next_day(broker: PaperBroker,
                                                               tape: Tape) -> None:
    broker.set_rules(ACCOUNT, RiskRules(max_orders_per_day=2))
    tape.bar(100.0)
    accepted(broker.submit(ACCOUNT, "ACME", "buy", 10))
    accepted(broker.submit(ACCOUNT, "ACME", "buy", 10))
    assert refused(broker.submit(ACCOUNT, "XYZ", "buy", 1)) == (
        "risk: orders per day: 2 orders accepted today (limit 2); until 2024-01-03 only orders "
        "that reduce a position are accepted")
    tape.bar(100.0)
    accepted(broker.submit(ACCOUNT, "ACME", "sell", 5))
    tape.bar(100.0, new_session=True)
    accepted(broker.submit(ACCOUNT, "XYZ", "buy", 1))
    assert broker.risk_standing(ACCOUNT).orders_today == 1


def test_daily_loss_halts_then_allows_reducing_orders(make_broker: MakeBroker) -> None:
    broker = make_broker(cash=10_000.0)
    tape = Tape(broker)
    broker.set_rules(ACCOUNT, RiskRules(max_daily_loss=500))
    tape.bar(100.0)
    accepted(broker.submit(ACCOUNT, "ACME", "buy", 90))
    tape.bar(100.0)
    tape.bar(99.0)  # equity 9,910: within the limit
    accepted(broker.submit(ACCOUNT, "XYZ", "buy", 1))
    tape.bar(94.25, close=93.4)  # equity 10,000 - 90 × 6.60 = 9,406 (XYZ has no bar: still working)
    standing = broker.risk_standing(ACCOUNT)
    assert standing.start_equity == 10_000.0
    reason = ("risk: daily loss limit: equity 9,406.00 is 594.00 below today's start "
              "10,000.00 (limit 500.00); until 2024-01-03 only orders that reduce a position "
              "are accepted")
    assert standing.halted == reason
    assert refused(broker.submit(ACCOUNT, "ACME", "buy", 1)) == reason
    assert refused(broker.submit(ACCOUNT, "XYZ", "buy", 1)) == reason
    # the halt holds for the day even when prices come back
    tape.bar(100.0)
    assert refused(broker.submit(ACCOUNT, "ACME", "buy", 1)) == reason
    # reducing (not flipping) a position still passes
    accepted(broker.submit(ACCOUNT, "ACME", "sell", 40))
    assert refused(broker.submit(ACCOUNT, "XYZ", "sell", 2)) == reason  # would go short
    tape.bar(100.0)
    tape.bar(100.0, new_session=True)
    assert broker.risk_standing(ACCOUNT).halted is None
    accepted(broker.submit(ACCOUNT, "ACME", "buy", 1))


def day_trade(broker: PaperBroker, tape: Tape, symbol: str = "ACME", qty: float = 10) -> Order:
    """Buy ``qty`` and sell it again on the same day; returns the sell."""
    accepted(broker.submit(ACCOUNT, symbol, "buy", qty))
    tape.bar(broker.last_price(symbol) or 100.0, symbol=symbol)
    sell = broker.submit(ACCOUNT, symbol, "sell", qty)
    if sell.status is not OrderStatus.REJECTED:
        tape.bar(broker.last_price(symbol) or 100.0, symbol=symbol)
    return sell


def test_pdt_fourth_day_trade_is_denied_under_25k_with_alpacas_words(
        make_broker: MakeBroker) -> None:
    broker = make_broker(cash=20_000.0)
    tape = Tape(broker)
    broker.set_rules(ACCOUNT, RiskRules(pattern_day_trader=True))
    tape.bar(100.0)
    for _ in range(3):
        accepted(day_trade(broker, tape))
    assert broker.risk_standing(ACCOUNT).day_trades == 3
    # opening is fine; closing the same day would be the 4th day trade
    reason = refused(day_trade(broker, tape))
    assert PDT_WORDS == "trade denied due to pattern day trading protection"
    assert reason == (
        f"risk: pattern day trader: {PDT_WORDS} (sell ACME would close a position opened "
        "today: day trade 4 in 5 business days, 3 allowed while equity 20,000.00 is under "
        "25,000)")
    # a position held overnight may be sold: that is no day trade
    tape.bar(100.0, new_session=True)
    accepted(broker.submit(ACCOUNT, "ACME", "sell", 10))


def test_pdt_counts_runs_of_fills_as_finra_does(make_broker: MakeBroker) -> None:
    broker = make_broker(cash=20_000.0)
    tape = Tape(broker)
    broker.set_rules(ACCOUNT, RiskRules(pattern_day_trader=True))
    tape.bar(100.0)
    # FINRA's example C: buy 500, then three sells: one day trade
    accepted(broker.submit(ACCOUNT, "XYZ", "buy", 300))
    tape.bar(50.0, symbol="XYZ")
    for qty in (100, 100, 100):
        accepted(broker.submit(ACCOUNT, "XYZ", "sell", qty))
        tape.bar(50.0, symbol="XYZ")
    assert broker.risk_standing(ACCOUNT).day_trades == 1
    # crypto is exempt
    accepted(broker.submit(ACCOUNT, "BTC-USD", "buy", 0.1))
    tape.bar(30_000.0, symbol="BTC-USD")
    accepted(broker.submit(ACCOUNT, "BTC-USD", "sell", 0.1))
    tape.bar(30_000.0, symbol="BTC-USD")
    assert broker.risk_standing(ACCOUNT).day_trades == 1


def test_pdt_does_not_apply_at_25k_or_more(make_broker: MakeBroker) -> None:
    broker = make_broker(cash=30_000.0)
    tape = Tape(broker)
    broker.set_rules(ACCOUNT, RiskRules(pattern_day_trader=True))
    tape.bar(100.0)
    for _ in range(5):
        accepted(day_trade(broker, tape))
    assert broker.risk_standing(ACCOUNT).day_trades == 5


def test_day_trades_leave_the_window_after_five_business_days() -> None:
    friday = START.date() + timedelta(days=3)  # 2024-01-05
    assert business_days_back(friday, 4) == START.date() - timedelta(days=1)  # Monday
    monday = friday + timedelta(days=3)
    assert business_days_back(monday, 4) == START.date()  # Tuesday


def test_default_rules_apply_to_accounts_without_their_own(broker: PaperBroker) -> None:
    broker.set_default_rules(RiskRules(max_order_notional=1_000))
    broker.open_account("other", 10_000.0)
    assert "max order notional" in refused(broker.submit("other", "ACME", "buy", 11))
    broker.set_rules("other", RiskRules())
    accepted(broker.submit("other", "ACME", "buy", 11))


def test_rules_are_validated() -> None:
    with pytest.raises(ValueError, match="max_daily_loss"):
        RiskRules(max_daily_loss=-1)
    with pytest.raises(ValueError, match="max_daliy_loss"):
        RiskRules.model_validate({"max_daliy_loss": 1})


def test_a_restart_keeps_the_halt_and_the_day_trades(make_broker: MakeBroker,
                                                       tmp_path: Path) -> None:
    rules = RiskRules(max_daily_loss=500, pattern_day_trader=True)
    with SQLiteStore(tmp_path / "x.db") as store:
        broker = make_broker(cash=20_000.0, store=store)
        tape = Tape(broker)
        broker.set_rules(ACCOUNT, rules)
        tape.bar(100.0)
        for _ in range(3):
            accepted(day_trade(broker, tape))
        accepted(broker.submit(ACCOUNT, "ACME", "buy", 100))
        tape.bar(100.0)
        tape.bar(94.0)  # 600 below the start
        halted = broker.risk_standing(ACCOUNT).halted
        assert halted is not None and "daily loss limit" in halted
        last = tape.last
    with SQLiteStore(tmp_path / "x.db") as store:
        again = PaperBroker(broker.settings, instruments=instruments(), store=store,
                            ids=unique_ids())
        again.restore()
        again.set_rules(ACCOUNT, rules)
        again.set_time(last.time)  # what a host does once the feed has caught up
        again.mark("ACME", last.close)
        standing = again.risk_standing(ACCOUNT)
        assert standing.halted == halted
        assert standing.day_trades == 3
        assert refused(again.submit(ACCOUNT, "XYZ", "buy", 1)) == halted
        # the exit is a 4th day trade: PDT refuses even what the halt would let through
        assert PDT_WORDS in refused(again.submit(ACCOUNT, "ACME", "sell", 100))


def test_a_day_is_stored_only_for_the_rules_that_need_it(make_broker: MakeBroker,
                                                          tmp_path: Path) -> None:
    """A replay of daily bars begins a day on every bar for every account: only an account
    whose rules count the day (daily loss, orders a day) has it stored, and setting such a
    rule stores the day already begun."""
    key = risk_state_key(ACCOUNT)
    with SQLiteStore(tmp_path / "x.db") as store:
        broker = make_broker(cash=20_000.0, store=store)
        tape = Tape(broker)
        broker.set_rules(ACCOUNT, RiskRules(pattern_day_trader=True))  # no day of its own
        tape.bar(100.0)
        accepted(broker.submit(ACCOUNT, "ACME", "buy", 10))
        tape.bar(100.0, new_session=True)
        tape.bar(104.0, new_session=True)
        assert broker.risk_standing(ACCOUNT).start_equity == pytest.approx(20_000.0)
        assert store.get_state(key) is None
        broker.set_rules(ACCOUNT, RiskRules(max_daily_loss=500))
        stored = store.get_state(key)
        assert stored is not None and stored["start_equity"] == pytest.approx(20_000.0)
        assert stored["day"] == tape.last.time.date().isoformat()
        tape.bar(90.0, new_session=True)  # the next day's start is stored as it begins
        assert store.get_state(key)["start_equity"] == pytest.approx(20_040.0)
