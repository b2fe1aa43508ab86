"""The ``tradingview`` format: TradingView's placeholders, flat or nested."""

from __future__ import annotations

from typing import Any

import pytest

from sandtrade.signal_model import Command

from .reading import js, parse, refused, target


def test_tradingview_flat_placeholders_place_an_order() -> None:
    signal = parse(js(ticker="AAPL", action="buy", contracts=3, close=101.25,
                      interval="60", time="2024-05-01T14:30:00Z"))
    assert signal.format == "tradingview"
    assert signal.commands == [Command(action="buy", symbol="AAPL", qty=3.0)]
    assert (signal.action, signal.qty, signal.price) == ("buy", 3.0, 101.25)


HTM_STRATEGY = {  # hackingthemarkets' "strategy" object, expanded
    "position_size": 10, "order_action": "buy", "order_contracts": 10,
    "order_price": 1194.6000000000001, "order_id": "Long", "market_position": "long",
    "market_position_size": 10, "prev_market_position": "flat",
    "prev_market_position_size": 0,
}


def test_tradingview_nested_strategy_object_is_a_target() -> None:
    signal = parse(js(passphrase="pw", exchange="NASDAQ", ticker="AAPL",
                      strategy=HTM_STRATEGY))
    assert signal.format == "tradingview"
    assert signal.commands == [target("AAPL", 10.0)]
    assert (signal.action, signal.qty) == ("buy", 10.0)
    assert signal.price == 1194.6000000000001
    assert signal.alert_id == "Long" and signal.idempotency_key is None
    assert signal.fields["strategy.order_id"] == "Long"


def test_tradingview_hackingthemarkets_template_as_tradingview_sends_it() -> None:
    """The template's "time" is {{timenow}} (when the alert fired) and "bar.time" is {{time}}
    (when the bar opened): they differ in every real alert, and are different facts."""
    body = js(passphrase="pw", time="2024-05-01T14:31:07Z", exchange="NASDAQ", ticker="AAPL",
              bar={"time": "2024-05-01T14:30:00Z", "open": 1190.5, "high": 1196.0,
                   "low": 1189.0, "close": 1194.75, "volume": 12034},
              strategy=HTM_STRATEGY)
    signal = parse(body)
    assert signal.format == "tradingview"
    assert signal.commands == [target("AAPL", 10.0)]
    assert signal.alert_id == "Long" and signal.idempotency_key is None


def test_tradingview_strategy_order_object_places_an_order() -> None:
    signal = parse(js(ticker="AAPL", strategy={"order": {"action": "sell", "contracts": 2,
                                                          "price": 101.5, "id": "Exit"}}))
    assert signal.format == "tradingview"
    assert signal.commands == [Command(action="sell", symbol="AAPL", qty=2.0)]
    assert signal.price == 101.5
    assert signal.alert_id == "Exit" and signal.idempotency_key is None


@pytest.mark.parametrize(("strategy", "qty"), [
    ({"market_position": "long", "position_size": 5}, 5.0),
    ({"market_position": "short", "position_size": -5}, -5.0),
    ({"market_position": "flat", "position_size": 0}, 0.0),
    ({"market_position": "flat"}, 0.0),
    ({"market_position": "short", "market_position_size": 5}, -5.0),
    ({"market_position": "Long", "position_size": 0.30000000000000004}, 0.30000000000000004),
    ({"position_size": -3}, -3.0),
])
def test_tradingview_market_position_and_size_are_a_signed_target(strategy: dict[str, Any],
                                                                  qty: float) -> None:
    signal = parse(js(ticker="AAPL", strategy=strategy))
    assert signal.commands == [target("AAPL", qty)]
    flat = parse(js(ticker="AAPL", **strategy))
    assert flat.commands == [target("AAPL", qty)]


@pytest.mark.parametrize(("position", "size"), [("long", -5), ("short", 5), ("flat", 3),
                                                ("long", 0)])
def test_tradingview_market_position_disagreeing_with_size_is_refused(position: str,
                                                                      size: float) -> None:
    e = refused(js(ticker="AAPL", strategy={"market_position": position,
                                            "position_size": size}))
    assert e.field == "strategy.position_size"
    assert e.detail.startswith(f"market_position is {position!r} but position_size is "
                               f"{size:g}; they disagree")


def test_tradingview_market_position_without_a_size_is_refused() -> None:
    e = refused(js(ticker="AAPL", market_position="long"))
    assert e.field == "market_position"
    assert "{{strategy.position_size}}" in e.detail


@pytest.mark.parametrize(("ticker", "symbol"), [("NASDAQ:AAPL", "AAPL"),
                                                ("BINANCE:BTCUSDT", "BTCUSDT"),
                                                ("nyse:ibm", "IBM")])
def test_tradingview_exchange_prefix_is_stripped(ticker: str, symbol: str) -> None:
    signal = parse(js(ticker=ticker, action="buy", contracts=1))
    assert signal.symbol == symbol and signal.commands[0].symbol == symbol


def test_tradingview_order_id_is_the_alert_id_but_not_a_duplicate_key() -> None:
    only_order_id = parse(js(ticker="AAPL", action="buy", contracts=1, order_id="Long"))
    assert only_order_id.alert_id == "Long"
    assert only_order_id.idempotency_key is None
    both = parse(js(ticker="AAPL", action="buy", contracts=1, order_id="Long",
                    id="AAPL-2024-05-01T14:30:00Z"))
    assert both.alert_id == "Long"
    assert both.idempotency_key == "AAPL-2024-05-01T14:30:00Z"
    only_id = parse(js(ticker="AAPL", action="buy", contracts=1, id="k-1"))
    assert (only_id.alert_id, only_id.idempotency_key) == ("k-1", "k-1")


def test_tradingview_float_artifacts_are_accepted_as_they_are() -> None:
    body = ('{"ticker": "AAPL", "action": "buy", "contracts": 0.30000000000000004, '
            '"close": 1194.6000000000001}')
    signal = parse(body)
    assert signal.commands == [Command(action="buy", symbol="AAPL", qty=0.30000000000000004)]
    assert signal.price == 1194.6000000000001


@pytest.mark.parametrize(("body", "field", "message"), [
    (js(ticker="AAPL", contracts=3), "action", 'no action: add "action": '
     '"{{strategy.order.action}}" (or "market_position" and "position_size")'),
    (js(ticker="AAPL", action="buy", contracts=-3), "contracts", "must be at least 0, got -3"),
    (js(ticker="AAPL", action="buy", contracts="three"), "contracts",
     'expected a number, got the text "three"'),
    (js(ticker="AAPL", action="buy", contarcts=3), "contarcts",
     "unknown field: did you mean 'contracts'?"),
    (js(ticker="", action="buy", contracts=3), "ticker", "is empty"),
    (js(ticker="AAPL", action="buy", contracts=3, strategy={"order_action": "sell"}),
     "strategy.order_action",
     "given twice with different values (action and strategy.order_action)"),
    (js(ticker="AAPL", strategy={"order": {"action": "purchase", "contracts": 1}}),
     "strategy.order.action",
     'unknown action "purchase" (use one of: buy, sell, close, flat, long, short, target)'),
])
def test_tradingview_wrong_values_are_refused_naming_where_they_were(body: str, field: str,
                                                                     message: str) -> None:
    e = refused(body)
    assert (e.field, e.detail) == (field, message)


def test_tradingview_limit_price_of_zero_is_refused_like_in_the_other_formats() -> None:
    e = refused(js(ticker="AAPL", action="buy", contracts=1, limit_price=0))
    assert e.field == "limit_price"
    assert e.detail == "must be above 0, got 0"
