"""Domain models: instruments, OCC symbols, bars, orders; errors name the field and the value."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from pydantic import ValidationError

from sandtrade.models import (
    Bar,
    Instrument,
    OptionRight,
    Order,
    OrderStatus,
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
    from sandtrade.models import Fill, OrderSide, trusted

    values = dict(id="f1", order_id="o1", account="a", symbol="X", side=OrderSide.BUY,
                  qty=2.0, price=10.5, commission=0.1, time=datetime(2024, 1, 2), bar_index=3)
    fast, checked = trusted(Fill, **values), Fill(**values)
    assert fast == checked
    assert fast.model_dump_json() == checked.model_dump_json()
    assert Fill.model_validate_json(fast.model_dump_json()) == checked
