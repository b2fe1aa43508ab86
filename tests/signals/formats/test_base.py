"""The field readers every format shares: numbers lenient in form and strict in meaning,
actions and symbols that must be known, each refusal naming its field.
"""

from __future__ import annotations

import pytest

from sandtrade.signals.formats.base import near_miss

from .reading import js, parse, refused


@pytest.mark.parametrize(("body", "qty", "limit"), [
    # TradersPost's templates quote every number: "quantity": "{{strategy.order.contracts}}"
    (js(symbol="AAPL", action="buy", qty="10"), 10, None),
    (js(symbol="AAPL", action="buy", qty=" 4 "), 4, None),
    (js(symbol="AAPL", action="buy", qty="1e3"), 1000, None),
    (js(symbol="AAPL", action="buy", qty="+2.5", limit_price="187.42"), 2.5, 187.42),
    (js(ticker="AAPL", action="buy", contracts="3"), 3, None),
    (js(ticker="AAPL", action="buy", quantity="5", sentiment="bullish"), 5, None),
])
def test_a_plain_number_in_quotes_is_that_number(body: str, qty: float,
                                                 limit: float | None) -> None:
    cmd = parse(body).commands[-1]
    assert (cmd.qty, cmd.limit_price) == (qty, limit)


@pytest.mark.parametrize(("body", "field", "message"), [
    (js(symbol="AAPL", action="buy", qty="ten"), "qty", 'expected a number, got the text "ten"'),
    (js(symbol="AAPL", action="buy", qty="1_000"), "qty",
     'expected a number, got the text "1_000"'),
    (js(symbol="AAPL", action="buy", qty="$100"), "qty",
     'expected a number, got the text "$100"'),
    (js(symbol="AAPL", action="buy", qty="NaN"), "qty", '"NaN" is not a finite number'),
    (js(symbol="AAPL", action="buy", qty="inf"), "qty", '"inf" is not a finite number'),
    (js(symbol="AAPL", action="buy", qty="-Infinity"), "qty",
     '"-Infinity" is not a finite number'),
    (js(symbol="AAPL", action="buy", qty="1.000,5"), "qty",
     '"1.000,5" is a number written with a comma: write 1000.5 (a decimal point, no '
     'thousands separators)'),
    (js(symbol="AAPL", action="buy", qty="0"), "qty", "must be above 0, got 0"),
    (js(symbol="AAPL", action="buy", qty="-3"), "qty", "must be above 0, got -3"),
    (js(symbol="AAPL", action="buy", qty=1, limit_price="0"), "limit_price",
     "must be above 0, got 0"),
    (js(symbol="AAPL", action="buy", qty="{{strategy.order.contracts}}"), None,
     "{{strategy.order.contracts}} is a TradingView placeholder that was not expanded "
     "({{strategy.*}} expands only in an alert created on a strategy, not on an indicator or "
     "a price); the alert was sent as written"),
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
def test_text_that_is_not_a_plain_number_is_refused_with_the_field(body: str,
                                                                   field: str | None,
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


# ------------------------------------------------------------------ near misses of a field


@pytest.mark.parametrize(("key", "meant"), [
    ("quantitty", "quantity"), ("tickr", "ticker"), ("Quantity", "quantity"),
    ("qyt", "qty"), ("limitprice", "limitPrice"), ("stoploss", "stopLoss"),
])
def test_a_near_miss_of_a_field_that_changes_the_trade_is_found(key: str, meant: str) -> None:
    assert near_miss(key, ["ticker", "quantity", "qty", "limitPrice", "stopLoss"]) == meant


@pytest.mark.parametrize("key", ["Time", "interval", "comments", "confidence",
                                 "strategy_name", "timeframe", "exchange", "bot"])
def test_extra_fields_of_real_alerts_are_no_near_miss(key: str) -> None:
    # the fields every format reads that change what is traded (native, TradersPost and
    # TradingView together): none of these is taken for one of them
    candidates = ["symbol", "action", "qty", "quantity_type", "order_type", "limit_price",
                  "stop_price", "take_profit", "stop_loss", "trail_price", "trail_percent",
                  "tif", "extended_hours", "price", "account", "strategy", "id",
                  "idempotency_key", "passphrase", "commands", "ticker", "sentiment",
                  "quantity", "quantityType", "orderType", "limitPrice", "stopPrice",
                  "signalPrice", "takeProfit", "stopLoss", "trailAmount", "trailPercent",
                  "timeInForce", "extendedHours", "contracts", "order_contracts",
                  "position_size", "market_position", "market_position_size", "close",
                  "alert_id"]
    assert near_miss(key, candidates) is None
