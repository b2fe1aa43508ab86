"""Many accounts, many symbols: each account trades every symbol from one pool of cash."""

from __future__ import annotations

import pytest

from sandtrade.broker import PaperBroker

from .conftest import ACCOUNT, Tape


def test_orders_of_one_account_never_touch_another(broker: PaperBroker, tape: Tape) -> None:
    broker.open_account("other", 50_000.0)
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    broker.submit("other", "ACME", "sell", 20)

    fills = tape.bar(100.0)

    assert {(f.account, f.side.value, f.qty) for f in fills} == {
        (ACCOUNT, "buy", 10.0), ("other", "sell", 20.0)}
    assert broker.account(ACCOUNT).cash == pytest.approx(99_000.0)
    assert broker.account("other").cash == pytest.approx(52_000.0)
    assert broker.position(ACCOUNT, "ACME").qty == 10.0
    assert broker.position("other", "ACME").qty == -20.0
    assert [f.account for f in broker.fills(ACCOUNT)] == [ACCOUNT]
    assert [o.account for o in broker.orders("other")] == ["other"]


def test_one_account_closing_leaves_the_others_position_alone(broker: PaperBroker,
                                                              tape: Tape) -> None:
    broker.open_account("other", 50_000.0)
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    broker.submit("other", "ACME", "buy", 5)
    tape.bar(100.0)
    broker.submit(ACCOUNT, "ACME", "sell", 10)

    tape.bar(110.0)

    assert broker.position(ACCOUNT, "ACME").qty == 0.0
    assert broker.position("other", "ACME").qty == 5.0
    assert broker.closed_trades("other") == []
    assert len(broker.open_trades("other")) == 1


def test_buying_power_of_one_account_does_not_fund_another(broker: PaperBroker) -> None:
    broker.open_account("small", 500.0)

    order = broker.submit("small", "ACME", "buy", 10)

    assert "needs 1,000.00, 500.00 available" in (order.reject_reason or "")


def test_equity_is_cash_plus_every_position_held(broker: PaperBroker, tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "buy", 10)
    broker.submit(ACCOUNT, "XYZ", "sell", 40)
    tape.bar(100.0, 103.0, 99.0, 102.0)
    tape.bar(50.0, 51.0, 47.0, 48.0, symbol="XYZ")

    account = broker.account(ACCOUNT)

    cash = 100_000.0 - 10 * 100.0 + 40 * 50.0
    assert account.cash == pytest.approx(cash)
    assert account.long_market_value == pytest.approx(10 * 102.0)
    assert account.short_market_value == pytest.approx(-40 * 48.0)
    assert account.equity == pytest.approx(cash + 10 * 102.0 - 40 * 48.0)
    assert broker.equity(ACCOUNT) == pytest.approx(account.equity)
    assert [p.symbol for p in broker.positions(ACCOUNT)] == ["ACME", "XYZ"]


def test_buying_power_counts_the_margin_of_every_symbol(broker: PaperBroker,
                                                        tape: Tape) -> None:
    broker.submit(ACCOUNT, "ACME", "buy", 100)
    broker.submit(ACCOUNT, "XYZ", "buy", 200)
    tape.bar(100.0)
    tape.bar(50.0, symbol="XYZ")

    assert broker.buying_power(ACCOUNT) == pytest.approx(100_000.0 - 10_000.0 - 10_000.0)
