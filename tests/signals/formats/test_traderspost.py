"""The ``traderspost`` format: TradersPost's JSON, sentiment and all."""

from __future__ import annotations

from typing import Any

import pytest

from sandtrade.models import ExitSpec
from sandtrade.signal_model import Command, SizeSpec

from .reading import js, parse, refused, target


@pytest.mark.parametrize(("action", "sentiment", "opposite"), [("buy", "bullish", "short"),
                                                               ("sell", "bearish", "long")])
def test_traderspost_entry_closes_the_opposite_side_first(action: str, sentiment: str,
                                                          opposite: str) -> None:
    signal = parse(js(ticker="AAPL", action=action, sentiment=sentiment, quantity=10))
    assert signal.format == "traderspost"
    assert signal.commands == [
        target("AAPL", 0.0, only_if=opposite),
        Command(action=action, symbol="AAPL", qty=10.0),
    ]


def test_traderspost_exit_is_a_target_of_zero() -> None:
    signal = parse(js(ticker="AAPL", action="exit", sentiment="flat"))
    assert signal.format == "traderspost"
    assert signal.commands == [target("AAPL", 0.0)]


@pytest.mark.parametrize(("body", "expected"), [
    pytest.param(js(ticker="AAPL", action="exit"), target("AAPL", 0.0), id="exit"),
    pytest.param(js(ticker="AAPL", action="cancel"),
                 Command(action="cancel", symbol="AAPL", qty=0.0), id="cancel"),
])
def test_traderspost_minimal_exit_and_cancel_are_understood(body: str,
                                                            expected: Command) -> None:
    """TradersPost requires only ticker and action; exit and cancel are its words, not
    TradingView's, so such a body cannot be meant as a TradingView order."""
    signal = parse(body)
    assert signal.format == "traderspost"
    assert signal.commands == [expected]


@pytest.mark.parametrize(("action", "only_if"), [("buy", "short"), ("sell", "long")])
def test_traderspost_sentiment_flat_only_closes(action: str, only_if: str) -> None:
    signal = parse(js(ticker="AAPL", action=action, sentiment="flat", quantity=5))
    assert signal.commands == [target("AAPL", 0.0, only_if=only_if)]


@pytest.mark.parametrize(("sentiment", "command"), [("bullish", "buy"), ("bearish", "sell")])
def test_traderspost_add_trades_without_closing_first(sentiment: str, command: str) -> None:
    signal = parse(js(ticker="AAPL", action="add", sentiment=sentiment, quantity=2))
    assert signal.commands == [Command(action=command, symbol="AAPL", qty=2.0)]


def test_traderspost_cancel_cancels_the_symbols_orders() -> None:
    signal = parse(js(ticker="AAPL", action="cancel", sentiment="flat"))
    assert signal.commands == [Command(action="cancel", symbol="AAPL", qty=0.0)]


@pytest.mark.parametrize(("action", "sentiment", "opposite"), [("buy", "long", "short"),
                                                               ("sell", "short", "long")])
def test_traderspost_sentiment_from_strategy_market_position_is_understood(
        action: str, sentiment: str, opposite: str) -> None:
    """TradersPost's own TradingView template sends "sentiment":
    "{{strategy.market_position}}", which expands to long, short or flat."""
    signal = parse(js(ticker="AAPL", action=action, sentiment=sentiment, quantity=5))
    assert signal.format == "traderspost"
    assert signal.commands == [target("AAPL", 0.0, only_if=opposite),
                               Command(action=action, symbol="AAPL", qty=5.0)]


@pytest.mark.parametrize(("body", "field", "message"), [
    (js(ticker="AAPL", action="buy", quantity=5, quantityType="percent_of_cash"),
     "quantityType", 'unknown quantity type "percent_of_cash" (use one of: fixed_quantity, '
     "dollar_amount, percent_of_equity, percent_of_position, risk_dollar_amount, "
     "risk_percent_of_equity)"),
    (js(ticker="AAPL", action="buy", quantityType="dollar_amount"), "quantity",
     "dollar_amount needs the amount in quantity"),
    (js(ticker="AAPL", action="buy", quantity=150, quantityType="percent_of_equity"),
     "quantity", "percent_of_equity 150 is over 100 percent"),
    (js(ticker="AAPL", action="buy", quantity=100, quantityType="risk_dollar_amount"),
     "quantityType", "risk_dollar_amount is sized from the distance to the stop loss: add a "
     "stop loss"),
    (js(ticker="AAPL", action="buy", takeProfit={"limitPrice": 200, "percent": 5}),
     "takeProfit", "give one of limitPrice, percent, amount, not limitPrice and percent"),
    (js(ticker="AAPL", action="buy", takeProfit={}), "takeProfit",
     "needs one of limitPrice, percent, amount"),
    (js(ticker="AAPL", action="buy", takeProfit={"limitprice": 200}), "takeProfit.limitprice",
     "unknown field (known: limitPrice, price, percent, amount)"),
    (js(ticker="AAPL", action="buy", takeProfit=200), "takeProfit",
     'expected an object such as {"limitPrice": ...}, got 200'),
    (js(ticker="AAPL", action="buy", stopLoss={"type": "stop", "percent": 120}),
     "stopLoss.percent", "a stop loss 120% from the fill is at or past 0; give a percent "
     "below 100"),
    (js(ticker="AAPL", action="buy", stopLoss={"type": "stop_limit", "stopPrice": 90}),
     "stopLoss", "a stop_limit stop loss needs limitPrice"),
    (js(ticker="AAPL", action="buy", stopLoss={"type": "stop", "stopPrice": 90,
                                                "limitPrice": 89}),
     "stopLoss.limitPrice", "limitPrice needs type stop_limit"),
    (js(ticker="AAPL", action="buy", stopLoss={"type": "trailing_stop"}), "stopLoss",
     "a trailing_stop stop loss needs trailAmount or trailPercent"),
    (js(ticker="AAPL", action="buy", stopLoss={"type": "trailing", "trailAmount": 1}),
     "stopLoss.type", 'unknown stop loss type "trailing" (use one of: stop, stop_limit, '
     "trailing_stop)"),
    (js(ticker="AAPL", action="exit", takeProfit={"percent": 5}), "takeProfit",
     "takeProfit goes with an entry (buy, sell or add), not with an exit"),
    (js(ticker="AAPL", action="buy", orderType="trailing_stop"), "orderType",
     "a trailing_stop order needs trailAmount or trailPercent"),
    (js(ticker="AAPL", action="buy", orderType="market", trailPercent=1), "trailPercent",
     "trailPercent goes with orderType trailing_stop, not market (a trailing stop loss goes "
     "in stopLoss)"),
    (js(ticker="AAPL", action="buy", timeInForce="gtd"), "timeInForce",
     'time in force "gtd" is not supported (use one of: day, gtc, ioc, fok)'),
    (js(ticker="AAPL", action="buy", extendedHours="yes"), "extendedHours",
     'expected true or false, got "yes"'),
    (js(ticker="AAPL", action="buy", optionType="call"), "optionType",
     'choosing an option from the chain is not supported; name the contract in "ticker" (an '
     'OCC symbol such as "AAPL  240510C00190000")'),
    (js(ticker="AAPL", action="buy", quantitty=5), "quantitty",
     "unknown field: did you mean 'quantity'?"),
    (js(tickr="AAPL", ticker="AAPL", action="buy", sentiment="bullish"), "tickr",
     "unknown field: did you mean 'ticker'?"),
    (js(ticker="AAPL", action="sell", sentiment="bullish", quantity=5), "sentiment",
     "sell with sentiment bullish contradicts itself"),
    (js(ticker="AAPL", action="add", quantity=5), "sentiment",
     "add needs sentiment bullish or bearish"),
    (js(ticker="AAPL", action="buy", sentiment="bullish", quantity=5, orderType="limit"),
     "limitPrice", "a limit order needs limitPrice"),
    (js(ticker="AAPL", action="purchase", sentiment="bullish", quantity=5), "action",
     'unknown action "purchase" (use one of: buy, sell, exit, cancel, add)'),
    (js(ticker="AAPL", action="buy", sentiment="bullish", quantity="5,5"), "quantity",
     '"5,5" is a number written with a comma: use a decimal point: 5.5'),
])
def test_traderspost_refusals_name_the_field(body: str, field: str, message: str) -> None:
    e = refused(body)
    assert (e.field, e.detail) == (field, message)


def test_traderspost_fixed_quantity_limit_order_with_price_and_id() -> None:
    signal = parse(js(ticker="AAPL", action="buy", sentiment="bullish", quantity=5,
                      quantityType="fixed_quantity", orderType="limit", limitPrice=150,
                      signalPrice=150.5, id="tp-1"))
    assert signal.commands[1] == Command(action="buy", symbol="AAPL", qty=5.0,
                                         order_type="limit", limit_price=150.0)
    assert signal.price == 150.5
    assert (signal.alert_id, signal.idempotency_key) == ("tp-1", "tp-1")


@pytest.mark.parametrize(("prices", "order_type"), [
    ({"limitPrice": 150}, "limit"), ({"stopPrice": 140}, "stop"),
    ({"stopPrice": 140, "limitPrice": 139}, "stop_limit"),
])
def test_traderspost_prices_without_an_order_type_imply_it(prices: dict[str, float],
                                                          order_type: str) -> None:
    signal = parse(js(ticker="AAPL", action="add", sentiment="bullish", quantity=5, **prices))
    [command] = signal.commands
    assert command.order_type == order_type
    assert (command.limit_price, command.stop_price) == (prices.get("limitPrice"),
                                                         prices.get("stopPrice"))


def test_traderspost_market_order_type_with_a_limit_price_is_refused() -> None:
    e = refused(js(ticker="AAPL", action="add", sentiment="bullish", quantity=5,
                   orderType="market", limitPrice=150))
    assert (e.field, e.detail) == ("limitPrice", "a market order takes no limitPrice (set the "
                                                 "order type to limit or stop)")


# ------------------------------------------------------------------ orders beyond market and limit
# The bodies are TradersPost's documented examples,
# https://docs.traderspost.io/docs/core-concepts/webhooks (TradersPost/docs core-concepts/
# webhooks.md), with their ticker.


def _entry(body: str) -> Command:
    """The entry command of a TradersPost buy or sell (after "close the other side")."""
    return parse(body).commands[-1]


def test_take_profit_and_stop_loss_make_a_bracket() -> None:
    cmd = _entry(js(ticker="SQ", action="buy", takeProfit={"limitPrice": 19.99},
                    stopLoss={"type": "stop", "stopPrice": 10.71}))
    assert (cmd.take_profit, cmd.stop_loss) == (ExitSpec(price=19.99), ExitSpec(price=10.71))
    assert cmd.order_class == "bracket"
    assert cmd.size == SizeSpec(type="default", field="quantity")


@pytest.mark.parametrize(("take_profit", "expected"), [
    ({"percent": 10}, ExitSpec(percent=10)),
    ({"amount": 10}, ExitSpec(amount=10)),
    ({"limitPrice": 19.99}, ExitSpec(price=19.99)),
    ({"price": "19.99"}, ExitSpec(price=19.99)),  # the WebhookMessage library's quoted price
])
def test_a_take_profit_is_a_price_a_percent_or_an_amount(take_profit: dict[str, Any],
                                                        expected: ExitSpec) -> None:
    cmd = _entry(js(ticker="SQ", action="buy", takeProfit=take_profit))
    assert cmd.take_profit == expected
    assert cmd.order_class == "oto"


@pytest.mark.parametrize(("stop_loss", "expected", "trail"), [
    ({"type": "stop", "percent": 5}, ExitSpec(percent=5), {}),
    ({"type": "stop", "amount": 5}, ExitSpec(amount=5), {}),
    ({"type": "stop", "stopPrice": 10.71}, ExitSpec(price=10.71), {}),
    ({"type": "stop_limit", "stopPrice": 10.71, "limitPrice": 10.75},
     ExitSpec(price=10.71, limit_price=10.75), {}),
    ({"type": "trailing_stop", "trailPercent": 1}, None, {"trail_percent": 1.0}),
    ({"type": "trailing_stop", "trailAmount": 1}, None, {"trail_price": 1.0}),
    ({"trailPrice": 2}, None, {"trail_price": 2.0}),  # the WebhookMessage library's name
])
def test_a_stop_loss_is_a_stop_a_stop_limit_or_a_trailing_stop(
        stop_loss: dict[str, Any], expected: ExitSpec | None, trail: dict[str, float]) -> None:
    cmd = _entry(js(ticker="SQ", action="buy", stopLoss=stop_loss))
    assert cmd.stop_loss == expected
    assert (cmd.trail_price, cmd.trail_percent) == (trail.get("trail_price"),
                                                   trail.get("trail_percent"))
    assert cmd.order_class == "oto"


def test_a_trailing_stop_exit_is_a_trailing_stop_order_closing_the_position() -> None:
    signal = parse(js(ticker="SQ", action="exit", orderType="trailing_stop", price=71,
                      trailAmount="1"))
    assert signal.commands == [target("SQ", 0.0, order_type="trailing_stop", trail_price=1.0)]
    assert signal.price == 71


def test_a_limit_entry_with_a_trailing_stop_loss() -> None:
    cmd = _entry(js(ticker="SQ", action="buy", orderType="limit", limitPrice=71,
                    stopLoss={"type": "trailing_stop", "trailAmount": 1}))
    assert (cmd.order_type, cmd.limit_price, cmd.trail_price) == ("limit", 71.0, 1.0)


def test_time_in_force_and_extended_hours_are_read() -> None:
    cmd = _entry(js(ticker="SQ", action="buy", orderType="limit", limitPrice=50.5,
                    timeInForce="GTC", extendedHours="true"))
    assert (cmd.tif, cmd.extended_hours) == ("gtc", True)


@pytest.mark.parametrize(("quantity_type", "size"), [
    ("dollar_amount", SizeSpec(type="dollar_amount", value=1000, field="quantity")),
    ("percent_of_equity", SizeSpec(type="percent_of_equity", value=5, field="quantity")),
])
def test_a_quantity_type_is_a_size_computed_when_the_order_runs(quantity_type: str,
                                                                size: SizeSpec) -> None:
    quantity = size.value
    cmd = _entry(js(ticker="SQ", action="buy", quantityType=quantity_type, quantity=quantity))
    assert (cmd.qty, cmd.size) == (0.0, size)


def test_risk_dollar_amount_is_sized_from_the_stop_loss() -> None:
    signal = parse(js(ticker="SQ", action="buy", price=100, quantityType="risk_dollar_amount",
                      quantity=100, stopLoss={"type": "stop", "stopPrice": 90}))
    cmd = signal.commands[-1]
    assert cmd.size == SizeSpec(type="risk_dollar_amount", value=100, field="quantity")
    assert cmd.stop_loss == ExitSpec(price=90)
    assert signal.price == 100


def test_fixed_quantity_is_the_quantity() -> None:
    cmd = _entry(js(ticker="SQ", action="buy", quantityType="fixed_quantity", quantity=100))
    assert (cmd.qty, cmd.size) == (100.0, None)


def test_a_sell_with_sentiment_flat_and_no_quantity_closes_the_whole_long() -> None:
    signal = parse(js(ticker="SQ", action="sell", sentiment="flat"))
    assert signal.commands == [target("SQ", 0.0, only_if="long")]


@pytest.mark.parametrize("extra", ["Time", "interval", "comments", "confidence",
                                   "strategy_name"])
def test_fields_traderspost_does_not_read_are_ignored_not_refused(extra: str) -> None:
    signal = parse(js(ticker="SQ", action="buy", quantity=1, **{extra: "x"}))
    assert signal.commands[-1] == Command(action="buy", symbol="SQ", qty=1.0)
    assert signal.ignored_fields == ([] if extra == "interval" else [extra])
