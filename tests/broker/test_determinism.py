"""The broker is deterministic: the same bars and orders give the same fills, to the id."""

from __future__ import annotations

from sandtrade.broker import PaperBroker

from .conftest import ACCOUNT, MakeBroker, Tape


def trade_a_session(broker: PaperBroker) -> None:
    """Two accounts, two symbols, every order type, partial fills and a cancel."""
    tape = Tape(broker)
    broker.open_account("b", 20_000.0)
    broker.submit(ACCOUNT, "ACME", "buy", 300)
    broker.submit("b", "ACME", "sell", 50, type="limit", limit_price=101.0)
    broker.submit(ACCOUNT, "XYZ", "buy", equity_fraction=0.3)
    tape.bar(100.0, 102.0, 99.0, 101.0, volume=2_000)
    tape.bar(50.0, 50.5, 49.0, 49.5, symbol="XYZ", volume=100_000)
    broker.submit(ACCOUNT, "ACME", "sell", 100, type="stop", stop_price=99.0)
    broker.submit("b", "ACME", "buy", 10, type="stop_limit", stop_price=103.0,
                  limit_price=103.5)
    cancel_me = broker.submit("b", "XYZ", "buy", 10, type="limit", limit_price=40.0)
    tape.bar(101.0, 104.0, 98.0, 103.0, volume=2_000)
    broker.cancel(cancel_me.id)
    tape.bar(103.0, 103.5, 97.0, 98.0, volume=5_000)


def test_same_bars_and_orders_give_identical_fills(make_broker: MakeBroker) -> None:
    one = make_broker(commission_pct=0.001, slippage_pct=0.001, volume_share=0.1)
    two = make_broker(commission_pct=0.001, slippage_pct=0.001, volume_share=0.1)

    trade_a_session(one)
    trade_a_session(two)

    for account in (ACCOUNT, "b"):
        fills = [f.model_dump() for f in one.fills(account)]
        assert fills == [f.model_dump() for f in two.fills(account)]
        assert [o.model_dump() for o in one.orders(account)] == [
            o.model_dump() for o in two.orders(account)]
        assert one.account(account) == two.account(account)
    assert len(one.fills(ACCOUNT)) >= 4  # the session did trade, in pieces
