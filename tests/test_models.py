"""Domain models: instruments, OCC symbols, bars, orders; errors name the field and the value."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pydantic import ValidationError

from sandtrade.models import (
    AssetClass,
    Bar,
    Instrument,
    OptionRight,
    Order,
    OrderStatus,
    OrderType,
    crypto_pair,
    implied_order_type,
    parse_occ_symbol,
)


@pytest.mark.parametrize("symbol", ["SPY   251219C00450000", "SPY251219C00450000"])
def test_occ_symbol_parses_padded_and_unpadded(symbol: str) -> None:
    assert parse_occ_symbol(symbol) == ("SPY", date(2025, 12, 19), OptionRight.CALL, 450.0)


def test_occ_put_with_fractional_strike() -> None:
    inst = Instrument.option("AAPL  240621P00182500")
    assert (inst.underlying, inst.right, inst.strike, inst.multiplier) == (
        "AAPL", OptionRight.PUT, 182.5, 100.0)


@pytest.mark.parametrize(
    "bad", ["SPY 251219X00450000", "SPY251319C00450000", "TOOLONGROOT251219C1"])
def test_bad_occ_symbol_says_what_is_expected(bad: str) -> None:
    with pytest.raises(ValueError, match=r"OCC|YYMMDD"):
        parse_occ_symbol(bad)


def test_crypto_quantities_round_down_to_the_lot() -> None:
    btc = Instrument.crypto("BTC-USD")
    assert btc.fractional
    assert btc.round_qty(0.123456789123) == 0.12345678
    assert btc.is_whole_lots(0.12345678) and not btc.is_whole_lots(0.123456789)
    assert Instrument.equity("AAPL").round_qty(10.9) == 10.0


@pytest.mark.parametrize(("symbol", "pair"), [
    ("BTCUSD", ("BTC", "USD")), ("BTCUSDT", ("BTC", "USDT")), ("BTC-USD", ("BTC", "USD")),
    ("BTC/USD", ("BTC", "USD")), ("ETHBTC", ("ETH", "BTC")), ("ETHUSDC", ("ETH", "USDC")),
    ("SOLUSD", ("SOL", "USD")), ("BTCEUR", ("BTC", "EUR")), ("XBTUSD", ("XBT", "USD")),
    ("DOGEUSD", ("DOGE", "USD")), ("btcusd", ("BTC", "USD")), ("BTCUSDT.P", ("BTC", "USDT")),
    ("PEPE-USD", ("PEPE", "USD")),  # a coin off the list: the separator says it is a pair
])
def test_the_usual_crypto_spellings_are_pairs(symbol: str, pair: tuple[str, str]) -> None:
    assert crypto_pair(symbol) == pair
    inst = Instrument.for_symbol(symbol)
    assert inst.asset_class is AssetClass.CRYPTO and inst.fractional
    assert inst.symbol == symbol, "the host's spelling is kept"


@pytest.mark.parametrize("symbol", [
    "AAPL", "DEMO", "ETH",     # Ethan Allen: a base alone is not a pair
    "BTCS", "ETHE", "ETHA",    # stocks whose tickers start like a crypto code
    "BRK-B", "BF-B", "RDS-A",  # share classes: a separator without a currency after it
    "SOLUSDX", "BTCXYZ", "EURUSD", "GOOG",
])
def test_equity_tickers_are_not_taken_for_crypto(symbol: str) -> None:
    assert crypto_pair(symbol) is None
    inst = Instrument.for_symbol(symbol)
    assert inst.asset_class is AssetClass.EQUITY and inst.lot_size == 1.0


def test_a_crypto_quoted_pair_has_no_minimum_order_value_in_fiat() -> None:
    """min_notional is in the quote currency: 1 BTC would refuse 0.5 ETH of ETHBTC."""
    assert Instrument.for_symbol("BTCUSD").min_notional == 1.0
    assert Instrument.for_symbol("ETHBTC").min_notional == 0.0


def test_quantity_problem_says_why_a_quantity_cannot_trade() -> None:
    demo, btc = Instrument.for_symbol("DEMO"), Instrument.for_symbol("BTCUSD")
    assert demo.quantity_problem(0.5) == ("quantity 0.5 is below DEMO's lot size 1 (it trades "
                                          "in whole units)")
    assert demo.quantity_problem(1.5) == ("quantity 1.5 is not a whole number of DEMO's lot "
                                          "size 1 (nearest below: 1.0)")
    assert demo.quantity_problem(-3) is None and btc.quantity_problem(0.5) is None
    assert "nearest below: 0.12345678" in (btc.quantity_problem(0.123456789) or "")


@pytest.mark.parametrize(("limit", "stop", "implied"), [
    (None, None, OrderType.MARKET), (1.0, None, OrderType.LIMIT),
    (None, 2.0, OrderType.STOP), (1.0, 2.0, OrderType.STOP_LIMIT),
])
def test_the_prices_imply_the_order_type(limit: float | None, stop: float | None,
                                         implied: OrderType) -> None:
    assert implied_order_type(limit, stop) is implied


def test_a_type_that_contradicts_the_prices_names_the_type_they_make() -> None:
    with pytest.raises(ValidationError) as e:
        Order(id="1", account="a", symbol="X", side="buy", qty=1, type="market",
              limit_price=1.0)
    assert ("limit_price=1.0 given for a market order; the prices given make a limit order: "
            "leave the type out (it follows from the prices) or use type 'limit'"
            ) in str(e.value)
    with pytest.raises(ValidationError, match="make a stop_limit order"):
        Order(id="1", account="a", symbol="X", side="buy", qty=1, type="stop",
              stop_price=2.0, limit_price=1.0)


def test_bar_checked_names_the_field_and_value() -> None:
    t = datetime(2024, 1, 2)
    with pytest.raises(ValueError, match=r"close must be positive, got -1\.0"):
        Bar.checked("X", t, 1, 2, 0.5, -1)
    with pytest.raises(ValueError, match="high/low do not contain"):
        Bar.checked("X", t, 1, 0.9, 0.5, 0.8)
    with pytest.raises(ValueError, match="volume must be a number, got 'lots'"):
        Bar.checked("X", t, 1, 2, 0.5, 1.5, "lots")  # type: ignore[arg-type]


def test_order_validation_error_names_the_field_and_value() -> None:
    with pytest.raises(ValidationError) as e:
        Order(id="1", account="a", symbol="X", side="buy", qty=-5)
    err = e.value.errors()[0]
    assert err["loc"] == ("qty",) and err["input"] == -5


def test_limit_order_needs_a_limit_price() -> None:
    with pytest.raises(ValidationError, match="needs limit_price"):
        Order(id="1", account="a", symbol="X", side="buy", qty=1, type="limit")


def test_order_needs_a_size() -> None:
    with pytest.raises(ValidationError, match=r"qty .* equity_fraction"):
        Order(id="1", account="a", symbol="X", side="buy")


def test_order_lifecycle_refuses_impossible_moves() -> None:
    o = Order(id="1", account="a", symbol="X", side="buy", qty=1)
    o.transition(OrderStatus.ACCEPTED)
    o.transition(OrderStatus.PARTIALLY_FILLED)
    o.transition(OrderStatus.FILLED)
    with pytest.raises(ValueError, match="cannot go from filled to canceled"):
        o.transition(OrderStatus.CANCELED)


def test_trusted_construction_equals_validated_construction() -> None:
    from sandtrade.models import Fill, FillKind, OrderSide, trusted

    values = dict(id="f1", order_id="o1", account="a", symbol="X", side=OrderSide.BUY,
                  qty=2.0, price=10.5, commission=0.1, time=datetime(2024, 1, 2), bar_index=3,
                  price_source="feed", kind=FillKind.TRADE)
    fast, checked = trusted(Fill, **values), Fill(**values)
    assert fast == checked
    assert fast.model_dump_json() == checked.model_dump_json()
    assert Fill.model_validate_json(fast.model_dump_json()) == checked


def test_copied_equals_model_copy_and_is_independent() -> None:
    from sandtrade.models import Account, Order, OrderSide, OrderType, copied

    order = Order(id="o1", account="a", symbol="X", side=OrderSide.BUY, type=OrderType.LIMIT,
                  qty=3.0, limit_price=9.5, tag="t")
    fast, slow = copied(order), order.model_copy()
    assert fast == slow and fast is not order
    assert fast.model_fields_set == slow.model_fields_set
    assert fast.model_dump_json() == slow.model_dump_json()
    # later changes of the original (the broker keeps filling it) do not reach the copy
    order.__dict__["filled_qty"] = 2.0
    order.__pydantic_fields_set__.add("filled_qty")
    assert fast.filled_qty == 0.0 and "filled_qty" not in fast.model_fields_set

    account = Account(id="a", cash=100.0, initial_cash=100.0)
    assert copied(account).model_dump_json(exclude_unset=True) == \
        account.model_copy().model_dump_json(exclude_unset=True)


def test_an_account_snapshot_equals_model_copy_with_its_totals() -> None:
    from sandtrade.broker.lots import AccountBook
    from sandtrade.models import Account

    opened = Account(id="a", cash=100.0, initial_cash=100.0)
    book = AccountBook(opened)
    book.cash, book.commissions, book.realized_pnl = 80.0, 1.5, -18.5
    snap = book.snapshot(equity=90.0)
    expected = opened.model_copy(update={"cash": 80.0, "commissions": 1.5,
                                         "realized_pnl": -18.5, "equity": 90.0})
    assert snap == expected
    assert snap.model_fields_set == expected.model_fields_set
    assert snap.model_dump_json(exclude_unset=True) == \
        expected.model_dump_json(exclude_unset=True)
    assert opened.cash == 100.0 and opened.equity is None  # the opening state is untouched
