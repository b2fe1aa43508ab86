"""The field readers every format shares: numbers that must be numbers, actions and
symbols that must be known, each refusal naming its field.
"""

from __future__ import annotations

import pytest

from .reading import js, refused


@pytest.mark.parametrize(("body", "field", "message"), [
    (js(symbol="AAPL", action="buy", qty="10"), "qty",
     'a number written as a string ("10"): write it without quotes, e.g. "qty": 10'),
    (js(symbol="AAPL", action="buy", qty=1, limit_price="150.5"), "limit_price",
     'a number written as a string ("150.5"): write it without quotes, e.g. '
     '"limit_price": 150.5'),
    (js(symbol="AAPL", action="buy", qty="ten"), "qty", 'expected a number, got the text "ten"'),
    (js(symbol="AAPL", action="buy", qty="1,5"), "qty",
     '"1,5" is a number written with a comma: use a decimal point: 1.5'),
    (js(symbol="AAPL", action="buy", qty="1,000"), "qty",
     '"1,000" is a number written with a comma: write 1000 without separators (or 1.000 if '
     'the comma is a decimal comma)'),
    (js(symbol="AAPL", action="buy", qty="1,000,000"), "qty",
     '"1,000,000" is a number written with a comma: write 1000000 without separators (or ... '
     'if the comma is a decimal comma)'),
    (js(symbol="AAPL", action="buy", qty=True), "qty", "expected a number, got true"),
    (js(symbol="AAPL", action="buy", qty=False), "qty", "expected a number, got false"),
    (js(symbol="AAPL", action="buy", qty=-1), "qty", "must be above 0, got -1"),
    (js(ticker="AAPL", action="buy", contracts=True), "contracts",
     "expected a number, got true"),
])
def test_numbers_that_are_not_json_numbers_are_refused_with_the_field(body: str, field: str,
                                                                      message: str) -> None:
    e = refused(body)
    assert (e.field, e.detail) == (field, message)


def test_number_too_large_for_a_float_is_not_finite() -> None:
    e = refused('{"symbol": "AAPL", "action": "buy", "qty": 1e400}')
    assert e.field == "qty"
    assert "is not a finite number" in e.detail


@pytest.mark.parametrize(("body", "field", "message"), [
    (js(symbol="AAPL", action="purchase", qty=1), "action",
     'unknown action "purchase" (use one of: buy, sell, close, flat, long, short, target)'),
    (js(ticker="AAPL", action="purchase", contracts=1), "action",
     'unknown action "purchase" (use one of: buy, sell, close, flat, long, short, target)'),
    (js(symbol="AAPL", qty=1), "action",
     "no action (use one of: buy, sell, close, flat, long, short, target)"),
    (js(symbol="AAPL", action="", qty=1), "action", "is empty"),
    (js(symbol=None, action="buy", qty=1), "symbol",
     'no symbol: every signal names what to trade, e.g. "symbol": "AAPL"'),
])
def test_unknown_or_missing_action_and_symbol_are_named(body: str, field: str,
                                                        message: str) -> None:
    e = refused(body)
    assert (e.field, e.detail) == (field, message)
