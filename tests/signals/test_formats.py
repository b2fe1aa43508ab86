"""How signal bodies become commands: the formats of :mod:`sandtrade.signals.formats`.

Unit tests of ``FormatRegistry.default()`` and its ``parse(body, fmt=None)``; no host is
started. Each format gets its accepted shapes (native JSON, TradingView placeholders flat and
nested, TradersPost, text commands, user mappings), then the rejections a person writing an
alert by hand actually produces (see ``/work/shared/research/tradingview.md``): unexpanded
placeholders, numbers in quotes, decimal commas, trailing commas, single quotes... For every
rejection the test checks both the message (what is wrong) and ``SignalError.field`` (where).

The last section checks that configuration errors of ``[signals]`` name ``FILE:LINE``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sandtrade.host.config import ConfigError, load_settings
from sandtrade.signal_model import Command, ParsedSignal, SignalError
from sandtrade.signals.formats import MAX_COMMANDS, FormatRegistry, MappingSpec

REGISTRY = FormatRegistry.default()
BOT = MappingSpec(detect="sig", symbol="sig.pair", action="sig.side", qty="sig.size",
                  actions={"LONG": "buy"})
MAPPED = FormatRegistry.default({"bot": BOT})


def parse(body: str, fmt: str | None = None, registry: FormatRegistry = REGISTRY
          ) -> ParsedSignal:
    return registry.parse(body, fmt)


def refused(body: str, fmt: str | None = None, registry: FormatRegistry = REGISTRY
            ) -> SignalError:
    """The SignalError the body is refused with (any other exception fails the test)."""
    with pytest.raises(SignalError) as info:
        registry.parse(body, fmt)
    return info.value


def js(**fields: Any) -> str:
    return json.dumps(fields)


def target(symbol: str, qty: float, **extra: Any) -> Command:
    return Command(action="target", symbol=symbol, qty=qty, **extra)


# ---------------------------------------------------------------------------- native JSON


def test_native_single_command_is_read_with_its_fields() -> None:
    signal = parse('{"symbol": "AAPL", "action": "buy", "qty": 10}')
    assert signal.format == "native"
    assert signal.commands == [Command(action="buy", symbol="AAPL", qty=10.0)]
    assert (signal.symbol, signal.action, signal.qty) == ("AAPL", "buy", 10.0)
    assert signal.idempotency_key is None and signal.alert_id is None


@pytest.mark.parametrize(("action", "qty", "expected"), [
    ("buy", 10, Command(action="buy", symbol="AAPL", qty=10.0)),
    ("sell", 2.5, Command(action="sell", symbol="AAPL", qty=2.5)),
    ("close", None, target("AAPL", 0.0)),
    ("flat", None, target("AAPL", 0.0)),
    ("long", 3, target("AAPL", 3.0)),
    ("short", 3, target("AAPL", -3.0)),
    ("target", -4, target("AAPL", -4.0)),
    ("target", 0, target("AAPL", 0.0)),
    ("BUY", 1, Command(action="buy", symbol="AAPL", qty=1.0)),
])
def test_native_every_action_maps_to_its_command(action: str, qty: float | None,
                                                 expected: Command) -> None:
    fields: dict[str, Any] = {"symbol": "AAPL", "action": action}
    if qty is not None:
        fields["qty"] = qty
    assert parse(json.dumps(fields)).commands == [expected]


def test_native_commands_list_is_executed_in_the_order_written() -> None:
    body = js(commands=[{"symbol": "AAPL", "action": "close"},
                        {"symbol": "aapl", "action": "short", "qty": 5},
                        {"symbol": "MSFT", "action": "buy", "qty": 1, "limit_price": 300}])
    signal = parse(body)
    assert signal.format == "native"
    assert signal.commands == [
        target("AAPL", 0.0),
        target("AAPL", -5.0),
        Command(action="buy", symbol="MSFT", qty=1.0, order_type="limit", limit_price=300.0),
    ]
    assert signal.symbol == "AAPL"


@pytest.mark.parametrize(("prices", "order_type"), [
    ({}, "market"),
    ({"limit_price": 150}, "limit"),
    ({"stop_price": 140}, "stop"),
    ({"stop_price": 140, "limit_price": 141}, "stop_limit"),
    ({"order_type": "Stop-Limit", "stop_price": 140, "limit_price": 141}, "stop_limit"),
    ({"order_type": "stoplimit", "stop_price": 140, "limit_price": 141}, "stop_limit"),
])
def test_native_order_type_is_inferred_from_the_prices(prices: dict[str, Any],
                                                       order_type: str) -> None:
    [command] = parse(js(symbol="AAPL", action="buy", qty=1, **prices)).commands
    assert command.order_type == order_type
    assert command.limit_price == prices.get("limit_price")
    assert command.stop_price == prices.get("stop_price")


def test_native_market_order_with_a_limit_price_is_refused() -> None:
    e = refused(js(symbol="AAPL", action="buy", qty=1, order_type="market", limit_price=150))
    assert e.field == "limit_price"
    assert "a market order takes no limit_price" in e.detail


@pytest.mark.parametrize(("body", "field", "message"), [
    (js(symbol="AAPL", action="buy", qty=1, order_type="limit"), "limit_price",
     "a limit order needs limit_price"),
    (js(symbol="AAPL", action="buy", qty=1, order_type="stop"), "stop_price",
     "a stop order needs stop_price"),
    (js(symbol="AAPL", action="buy", qty=1, order_type="stop_limit", stop_price=3),
     "limit_price", "a stop_limit order needs limit_price"),
    (js(commands=[{"symbol": "AAPL", "action": "buy", "qty": 1},
                  {"symbol": "AAPL", "action": "sell", "qty": 1, "order_type": "limit"}]),
     "commands[1].limit_price", "a limit order needs limit_price"),
])
def test_native_missing_price_of_a_priced_order_is_named(body: str, field: str,
                                                         message: str) -> None:
    e = refused(body)
    assert e.field == field
    assert e.detail == message


@pytest.mark.parametrize(("body", "field"), [
    (js(symbol="AAPL", action="buy", qtty=10), "qtty"),
    (js(symbol="AAPL", action="buy", qty=10, limitprice=5), "limitprice"),
    (js(commands=[{"symbol": "AAPL", "action": "buy", "qtty": 1}]), "commands[0].qtty"),
    (js(commands=[{"symbol": "AAPL", "action": "buy", "qty": 1, "id": "x"}]), "commands[0].id"),
])
def test_native_unknown_field_is_refused_and_named(body: str, field: str) -> None:
    e = refused(body)
    assert e.field == field
    assert e.detail.startswith("unknown field (known: ")
    assert "qty" in e.detail


def test_native_id_is_the_idempotency_key_and_alert_id() -> None:
    signal = parse(js(symbol="AAPL", action="buy", qty=1, id="AAPL-2024-05-01T14:30:00Z"))
    assert signal.idempotency_key == "AAPL-2024-05-01T14:30:00Z"
    assert signal.alert_id == "AAPL-2024-05-01T14:30:00Z"
    both = parse(js(symbol="AAPL", action="buy", qty=1, id="i-1", idempotency_key="k-1"))
    assert (both.alert_id, both.idempotency_key) == ("i-1", "k-1")


def test_native_optional_fields_are_read_and_the_passphrase_is_not_kept_in_fields() -> None:
    signal = parse(js(symbol="AAPL", action="sell", qty=1, account="acc2", strategy="s1",
                      comment="exit", price=1194.6000000000001, passphrase="hunter2"))
    assert (signal.account, signal.strategy, signal.comment) == ("acc2", "s1", "exit")
    assert signal.price == 1194.6000000000001
    assert signal.passphrase == "hunter2"
    assert "passphrase" not in signal.fields
    assert signal.fields["qty"] == 1


@pytest.mark.parametrize(("body", "field", "message"), [
    (js(symbol="AAPL", action="close", qty=1), "qty",
     "close takes no quantity (it closes the whole position)"),
    (js(symbol="AAPL", action="buy"), "qty", "buy needs a quantity"),
    (js(symbol="AAPL", action="buy", qty=None), "qty", "buy needs a quantity"),
    (js(symbol="AAPL", action="buy", qty=0), "qty", "must be above 0, got 0"),
    (js(symbol="AAPL", action="sell", qty=-1), "qty", "must be above 0, got -1"),
    (js(symbol="AAPL", action="long", qty=-1), "qty", "long takes a size of 0 or more, got -1"),
    (js(symbol="AAPL", action="buy", qty=1, limit_price=0), "limit_price",
     "must be above 0, got 0"),
    (js(symbol="AAPL", action="buy", qty=1, order_type="iceberg"), "order_type",
     'unknown order type "iceberg" (use one of: market, limit, stop, stop_limit)'),
    (js(symbol="AAP L", action="buy", qty=1), "symbol",
     '"AAP L" is not a symbol (letters, digits and . _ / - only, e.g. AAPL or BTCUSD)'),
    (js(symbol=123, action="buy", qty=1), "symbol", "expected text, got 123"),
    (js(symbol="AAPL", action="buy", qty=[1]), "qty", "expected a number, got a list"),
    (js(commands=[]), "commands", "must be a non-empty list of commands"),
    (js(commands=[1]), "commands[0]", "must be an object"),
])
def test_native_wrong_values_are_refused_with_field_and_reason(body: str, field: str,
                                                               message: str) -> None:
    e = refused(body)
    assert (e.field, e.detail) == (field, message)
    assert str(e) == f"{field}: {message}"


def test_native_commands_and_a_single_command_together_are_refused() -> None:
    e = refused(js(symbol="AAPL", action="buy", qty=1,
                   commands=[{"symbol": "AAPL", "action": "buy", "qty": 1}]))
    assert e.detail == "give commands or a single command, not both"
    assert e.field in ("symbol", "action", "qty")


def test_the_field_blamed_for_commands_plus_a_command_does_not_depend_on_hash_seed() -> None:
    """The same body must be refused with the same reason on every run of the host."""
    code = (
        "from sandtrade.signals.formats import FormatRegistry\n"
        "from sandtrade.signal_model import SignalError\n"
        "body = '{\"symbol\": \"AAPL\", \"action\": \"buy\", \"qty\": 1, \"commands\": "
        "[{\"symbol\": \"AAPL\", \"action\": \"buy\", \"qty\": 1}]}'\n"
        "try:\n    FormatRegistry.default().parse(body)\n"
        "except SignalError as e:\n    print(e)\n"
    )
    reasons = set()
    for seed in ("1", "2", "3", "4"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=60, check=True)
        reasons.add(out.stdout.strip())
    assert len(reasons) == 1, f"one body, several reasons: {sorted(reasons)}"


def test_native_twenty_commands_are_accepted_and_twenty_one_refused() -> None:
    one = {"symbol": "AAPL", "action": "buy", "qty": 1}
    assert len(parse(js(commands=[one] * MAX_COMMANDS)).commands) == MAX_COMMANDS
    e = refused(js(commands=[one] * (MAX_COMMANDS + 1)))
    assert e.field == "commands"
    assert e.detail == f"{MAX_COMMANDS + 1} commands (at most {MAX_COMMANDS})"


def test_text_twenty_one_commands_are_refused() -> None:
    e = refused("\n".join(["buy 1 AAPL"] * (MAX_COMMANDS + 1)))
    assert e.field is None
    assert str(e) == f"{MAX_COMMANDS + 1} commands (at most {MAX_COMMANDS})"


@pytest.mark.parametrize(("written", "symbol"), [
    ("aapl", "AAPL"),
    ("NASDAQ:AAPL", "AAPL"),
    ("BINANCE:BTCUSDT.P", "BTCUSDT.P"),
    ("CME_MINI:NQ1!", "NQ1!"),
    ("btc/usd", "BTC/USD"),
])
def test_native_symbol_is_upper_cased_without_exchange_prefix(written: str,
                                                              symbol: str) -> None:
    signal = parse(js(symbol=written, action="buy", qty=1))
    assert signal.symbol == symbol
    assert signal.commands[0].symbol == symbol


# ---------------------------------------------------------------------------- TradingView


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
    (js(ticker="AAPL", action="buy", contracts="3"), "contracts",
     'a number written as a string ("3"): write it without quotes, e.g. "contracts": 3'),
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


# ---------------------------------------------------------------------------- TradersPost


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
    (js(ticker="AAPL", action="buy", quantity=5, quantityType="percent_of_equity"),
     "quantityType", '"percent_of_equity" is not supported (only fixed_quantity)'),
    (js(ticker="AAPL", action="buy", quantity=5, takeProfit={"limitPrice": 200}),
     "takeProfit", "bracket orders (take profit / stop loss) are not supported; send them as "
     "separate signals"),
    (js(ticker="AAPL", action="buy", quantity=5, stopLoss={"type": "stop", "percent": 5}),
     "stopLoss", "bracket orders (take profit / stop loss) are not supported; send them as "
     "separate signals"),
    (js(ticker="AAPL", action="sell", sentiment="bullish", quantity=5), "sentiment",
     "sell with sentiment bullish contradicts itself"),
    (js(ticker="AAPL", action="add", quantity=5), "sentiment",
     "add needs sentiment bullish or bearish"),
    (js(ticker="AAPL", action="buy", sentiment="bullish", quantity=5, orderType="limit"),
     "limitPrice", "a limit order needs limitPrice"),
    (js(ticker="AAPL", action="buy", sentiment="bullish"), "quantity", "buy needs a quantity"),
    (js(ticker="AAPL", action="purchase", sentiment="bullish", quantity=5), "action",
     'unknown action "purchase" (use one of: buy, sell, exit, cancel, add)'),
    (js(ticker="AAPL", action="buy", sentiment="bullish", quantity="5"), "quantity",
     'a number written as a string ("5"): write it without quotes, e.g. "quantity": 5'),
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


# ---------------------------------------------------------------------------- text


@pytest.mark.parametrize(("body", "expected"), [
    ("buy 10 AAPL", [Command(action="buy", symbol="AAPL", qty=10.0)]),
    ("sell 0.5 BTCUSD limit 65000",
     [Command(action="sell", symbol="BTCUSD", qty=0.5, order_type="limit",
              limit_price=65000.0)]),
    ("buy 10 AAPL stop 150 limit 151",
     [Command(action="buy", symbol="AAPL", qty=10.0, order_type="stop_limit",
              stop_price=150.0, limit_price=151.0)]),
    ("sell 3 AAPL stop 140", [Command(action="sell", symbol="AAPL", qty=3.0,
                                      order_type="stop", stop_price=140.0)]),
    ("buy 10 AAPL market", [Command(action="buy", symbol="AAPL", qty=10.0)]),
    ("close AAPL", [target("AAPL", 0.0)]),
    ("flat AAPL", [target("AAPL", 0.0)]),
    ("long 10 AAPL", [target("AAPL", 10.0)]),
    ("short 5 AAPL", [target("AAPL", -5.0)]),
    ("target -5 AAPL", [target("AAPL", -5.0)]),
    ("cancel AAPL", [Command(action="cancel", symbol="AAPL", qty=0.0)]),
    ("BUY 10 nasdaq:aapl", [Command(action="buy", symbol="AAPL", qty=10.0)]),
    ("buy 10 aapl", [Command(action="buy", symbol="AAPL", qty=10.0)]),
])
def test_text_command_is_read(body: str, expected: list[Command]) -> None:
    signal = parse(body)
    assert signal.format == "text"
    assert signal.commands == expected


@pytest.mark.parametrize("body", ["close AAPL; short 10 AAPL", "close AAPL\nshort 10 AAPL",
                                  "close AAPL\r\nshort 10 AAPL\r\n",
                                  "close AAPL;\n\nshort 10 AAPL;"])
def test_text_several_commands_keep_their_order(body: str) -> None:
    signal = parse(body)
    assert signal.commands == [target("AAPL", 0.0), target("AAPL", -10.0)]
    assert signal.action == "close" and signal.symbol == "AAPL"
    assert signal.fields["commands"] == ["close AAPL", "short 10 AAPL"]


def test_text_key_value_words_set_the_signal_fields() -> None:
    signal = parse("buy 10 aapl account=acc2 id=AAPL-1 comment=breakout strategy=s1")
    assert signal.commands == [Command(action="buy", symbol="AAPL", qty=10.0)]
    assert (signal.account, signal.strategy, signal.comment) == ("acc2", "s1", "breakout")
    assert (signal.alert_id, signal.idempotency_key) == ("AAPL-1", "AAPL-1")


@pytest.mark.parametrize(("body", "field", "message"), [
    ("purchase 10 AAPL", "command", "unknown action 'purchase' in 'purchase 10 AAPL' (use one "
     "of: buy, sell, close, flat, long, short, target, cancel)"),
    ("buy 10", "command", "no symbol in 'buy 10', e.g. 'buy 10 AAPL'"),
    ("buy AAPL", "command quantity", "buy needs a quantity"),
    ("close 5 AAPL", "command quantity",
     "close takes no quantity (it closes the whole position)"),
    ("buy -5 AAPL", "command quantity", "must be above 0, got -5"),
    ("cancel 5 AAPL", "command", "cancel takes only a symbol in 'cancel 5 AAPL'"),
    ("buy 10 AAPL limit", "command", "'limit' needs a price after it in 'buy 10 AAPL limit'"),
    ("buy 10 AAPL limit 0", "command", "limit price must be above 0 in 'buy 10 AAPL limit 0'"),
    ("buy 10 AAPL limit abc", "command limit price", "'abc' is not a number"),
    ("buy 10 AAPL MSFT", "command",
     "two symbols in 'buy 10 AAPL MSFT' (AAPL and MSFT); give one per command"),
    ("buy 10 20 AAPL", "command", "two quantities in 'buy 10 20 AAPL'"),
    ("buy 10 AAPL colour=red", "command", "unknown setting 'colour' in 'buy 10 AAPL "
     "colour=red' (known: account, strategy, id, comment, idempotency_key)"),
    ("buy,10,AAPL", "command",
     "'buy,10,AAPL' is comma-separated; write it with spaces, e.g. 'buy 10 AAPL'"),
    ("buy 1e400 AAPL", "command quantity", "'1e400' is not a finite number"),
    ("buy 10 AAPL\nsell x AAPL", "command 2", "two symbols in 'sell x AAPL' (X and AAPL); "
     "give one per command"),
])
def test_text_refusals_name_the_command_and_the_problem(body: str, field: str,
                                                        message: str) -> None:
    e = refused(body)
    assert (e.field, e.detail) == (field, message)


# ---------------------------------------------------------------------------- rejections


@pytest.mark.parametrize(("body", "placeholder", "field"), [
    pytest.param('{"symbol": "{{ticker}}", "action": "buy", "qty": 1}', "{{ticker}}", None,
                 id="quoted-ticker"),
    pytest.param('{"ticker": "{{ticker}}", "action": "{{strategy.order.action}}", '
                 '"contracts": 1}', "{{ticker}}", None, id="first-of-two"),
    pytest.param('{"ticker": "AAPL", "action": "buy", "contracts": '
                 '{{strategy.order.contracts}}}', "{{strategy.order.contracts}}", None,
                 id="unquoted-invalid-json"),
    pytest.param('{"ticker": "AAPL", "action": "buy", "contracts": '
                 '"{{strategy.order.contracts}}"}', "{{strategy.order.contracts}}", None,
                 id="quoted-contracts"),
    pytest.param('{\n  "ticker": "AAPL",\n  "action": "buy",\n  "contracts": '
                 '{{strategy.order.contracts}}\n}', "{{strategy.order.contracts}}",
                 "line 4", id="multi-line"),
    pytest.param("buy 10 {{ticker}}", "{{ticker}}", None, id="text"),
    pytest.param("buy {{ strategy.order.contracts }} AAPL",
                 "{{ strategy.order.contracts }}", None, id="spaces-inside"),
])
def test_unexpanded_placeholder_is_the_reported_problem(body: str, placeholder: str,
                                                        field: str | None) -> None:
    e = refused(body)
    assert e.field == field
    assert e.detail.startswith(f"{placeholder} is a TradingView placeholder that was not "
                               "expanded")
    assert e.detail.endswith("the alert was sent as written")
    assert "not valid JSON" not in str(e)
    if "strategy." in placeholder:
        assert "expands only in an alert created on a strategy" in e.detail


def test_plot_placeholder_gets_its_own_hint() -> None:
    e = refused('{"symbol": "AAPL", "action": "buy", "qty": 1, "comment": "{{plot_0}}"}')
    assert e.detail.startswith("{{plot_0}} is a TradingView placeholder")
    assert "plot placeholders expand only in alerts on an indicator" in e.detail


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


@pytest.mark.parametrize(("body", "message"), [
    ("buy 1,5 AAPL", "'1,5' is a number written with a comma: use a decimal point: 1.5"),
    ("buy 1,000 AAPL", "'1,000' is a number written with a comma: write 1000 without "
     "separators (or 1.000 if the comma is a decimal comma)"),
])
def test_text_comma_numbers_are_refused(body: str, message: str) -> None:
    e = refused(body)
    assert e.field == "command quantity"
    assert e.detail == message


@pytest.mark.parametrize(("body", "hint"), [
    pytest.param('{"symbol": "AAPL", "action": "buy", "qty": 1,5}',
                 "(a decimal comma? JSON numbers use a point: 1.5)", id="decimal-comma"),
    pytest.param('{\n  "symbol": "AAPL",\n  "qty": 1,5,\n  "action": "buy"\n}',
                 "(a decimal comma? JSON numbers use a point: 1.5)", id="decimal-comma-lines"),
    pytest.param('{"symbol": "AAPL", "action": "buy", "qty": 1,}',
                 "(a comma before a closing brace)", id="trailing-comma"),
    pytest.param('{"symbol": "AAPL",\n "action": "buy",\n "qty": 1,\n}',
                 "(a comma before a closing brace)", id="trailing-comma-lines"),
    pytest.param("{'symbol': 'AAPL', 'action': 'buy', 'qty': 1}",
                 "(JSON needs double quotes, not single quotes)", id="single-quotes"),
    pytest.param('{"symbol": "AAPL", "action": "buy", "qty": 1',
                 "(the message ends early: a missing closing brace?)", id="no-closing-brace"),
    pytest.param('{"symbol": "AAPL" "action": "buy", "qty": 1}',
                 "(a missing comma or quote?)", id="missing-comma"),
    pytest.param('{"symbol": "AAPL", "action": "buy", "qty": 1}}',
                 "(text after the closing brace)", id="extra-brace"),
])
def test_invalid_json_names_line_column_and_likely_cause(body: str, hint: str) -> None:
    e = refused(body)
    assert e.field is None
    assert str(e).startswith("the body is not valid JSON: line ")
    assert str(e).endswith(hint)


def test_invalid_json_reports_the_line_of_the_mistake() -> None:
    e = refused('{\n  "symbol": "AAPL",\n  "action": "buy",\n  "qty": 1,5\n}')
    assert str(e).startswith("the body is not valid JSON: line 4, column ")


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_literals_are_refused(literal: str) -> None:
    e = refused(f'{{"symbol": "AAPL", "action": "buy", "qty": {literal}}}')
    assert str(e) == f"{literal} is not a JSON number; send a finite number"


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


def test_json_without_any_symbol_field_lists_what_it_has() -> None:
    e = refused(js(action="buy", qty=1))
    assert e.field is None
    assert str(e).startswith("no symbol: the JSON has none of the fields symbol (sandtrade), "
                             "ticker (TradingView, TradersPost) or commands")
    assert str(e).endswith("it has: action, qty")
    named = refused(js(action="buy", qty=1), fmt="native")
    assert named.field == "symbol"


@pytest.mark.parametrize("body", ["", " ", "\n", "\r\n", " \t\n ", "\ufeff", "\ufeff \n"])
def test_empty_body_is_refused(body: str) -> None:
    e = refused(body)
    assert e.field is None
    assert str(e) == "the body is empty: the alert's message is blank"


@pytest.mark.parametrize("body", ['[{"symbol": "AAPL", "action": "buy", "qty": 1}]', "[]"])
def test_json_list_body_is_refused(body: str) -> None:
    e = refused(body)
    assert str(e).startswith("the body is a JSON list: send one object per alert")


# ---------------------------------------------------------------------------- robustness


NATIVE = '{"symbol": "AAPL", "action": "buy", "qty": 1}'


@pytest.mark.parametrize("body", [
    NATIVE + "\n", NATIVE + "\r\n", "\ufeff" + NATIVE, "\ufeff" + NATIVE + "\r\n",
    "  " + NATIVE + "\n\n", NATIVE.replace(", ", ",\r\n  "),
])
def test_bom_and_line_endings_around_json_are_tolerated(body: str) -> None:
    signal = parse(body)
    assert signal.format == "native"
    assert signal.commands == [Command(action="buy", symbol="AAPL", qty=1.0)]


@pytest.mark.parametrize("body", ["buy 1 AAPL\n", "buy 1 AAPL\r\n", "\ufeffbuy 1 AAPL\r\n",
                                  "\ufeff  buy 1 AAPL  \n\n"])
def test_bom_and_line_endings_around_text_are_tolerated(body: str) -> None:
    signal = parse(body)
    assert signal.format == "text"
    assert signal.commands == [Command(action="buy", symbol="AAPL", qty=1.0)]


def test_explicit_format_overrides_detection() -> None:
    body = js(ticker="AAPL", action="buy", quantity=3)
    detected = parse(body)
    assert detected.format == "traderspost" and len(detected.commands) == 2
    named = parse(body, fmt="tradingview")
    assert named.format == "tradingview"
    assert named.commands == [Command(action="buy", symbol="AAPL", qty=3.0)]
    assert parse(js(ticker="AAPL", action="exit"), fmt="traderspost").commands == [
        target("AAPL", 0.0)]
    assert parse("buy 1 AAPL", fmt="text").format == "text"


def test_explicit_json_format_refuses_a_text_body() -> None:
    e = refused("buy 1 AAPL", fmt="native")
    assert str(e) == "format native reads a JSON object, and the body is not JSON"


def test_unknown_format_names_the_known_ones() -> None:
    e = refused(NATIVE, fmt="pineconnector")
    assert e.field == "format"
    assert e.detail == ("unknown format 'pineconnector' (known: native, tradingview, "
                        "traderspost, text)")
    e = refused(NATIVE, fmt="nope", registry=MAPPED)
    assert "(known: bot, native, tradingview, traderspost, text)" in e.detail


# ---------------------------------------------------------------------------- user mappings


def test_mapping_detects_its_json_and_maps_the_fields() -> None:
    signal = parse('{"sig": {"pair": "btcusd", "side": "LONG", "size": 0.5}, "other": 1}',
                   registry=MAPPED)
    assert signal.format == "bot"
    assert signal.commands == [Command(action="buy", symbol="BTCUSD", qty=0.5)]
    assert signal.fields == {"sig.pair (mapped to symbol)": "btcusd",
                             "sig.side (mapped to action)": "buy",
                             "sig.size (mapped to qty)": 0.5}
    sell = parse('{"sig": {"pair": "ETHUSD", "side": "sell", "size": 2}}', registry=MAPPED)
    assert sell.commands == [Command(action="sell", symbol="ETHUSD", qty=2.0)]


def test_mapping_is_not_used_for_other_bodies() -> None:
    assert parse(NATIVE, registry=MAPPED).format == "native"
    assert parse("buy 1 AAPL", registry=MAPPED).format == "text"


@pytest.mark.parametrize(("sig", "field", "message"), [
    ({"pair": "btcusd", "side": "LONG", "size": "0.5"}, "sig.size (mapped to qty)",
     'a number written as a string ("0.5")'),
    ({"pair": "btcusd", "side": "LONG", "size": -1}, "sig.size (mapped to qty)",
     "must be above 0, got -1"),
    ({"pair": "btcusd", "side": "HOLD", "size": 1}, "sig.side (mapped to action)",
     'unknown action "HOLD"'),
    ({"pair": "BTC USD", "side": "LONG", "size": 1}, "sig.pair (mapped to symbol)",
     '"BTC USD" is not a symbol'),
])
def test_mapping_wrong_value_names_the_original_path(sig: dict[str, Any], field: str,
                                                     message: str) -> None:
    e = refused(js(sig=sig), registry=MAPPED)
    assert e.field == field
    assert e.detail.startswith(message)


def test_mapping_number_in_quotes_hint_shows_the_senders_key() -> None:
    e = refused(js(sig={"pair": "btcusd", "side": "LONG", "size": "0.5"}), registry=MAPPED)
    assert e.detail == ('a number written as a string ("0.5"): write it without quotes, '
                        'e.g. "size": 0.5')


@pytest.mark.parametrize(("sig", "field"), [
    ({"pair": "btcusd", "side": "LONG"}, "sig.size (mapped to qty)"),
    ({"side": "LONG", "size": 1}, "sig.pair (mapped to symbol)"),
    ({"pair": "btcusd", "size": 1}, "sig.side (mapped to action)"),
])
def test_mapping_missing_value_names_the_path_it_was_expected_at(sig: dict[str, Any],
                                                                 field: str) -> None:
    e = refused(js(sig=sig), registry=MAPPED)
    assert e.field == field


def test_mapping_without_detect_is_used_only_when_named() -> None:
    registry = FormatRegistry.default({"quiet": MappingSpec(symbol="s", action="a", qty="q")})
    body = js(s="AAPL", a="buy", q=1)
    assert str(refused(body, registry=registry)).startswith("no symbol: the JSON has none")
    signal = parse(body, fmt="quiet", registry=registry)
    assert signal.format == "quiet"
    assert signal.commands == [Command(action="buy", symbol="AAPL", qty=1.0)]


# ---------------------------------------------------------------------------- configuration


def config_error(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


ROUTES_BAD_TO = [
    pytest.param('[[signals.routes]]\nsymbol = "BTC*"\nto = "strategy:crypto"\n\n'
                 '[[signals.routes]]\nalert = "test-*"\nto = "somewhere"\n', 7, id="plain"),
    pytest.param('[signals]\nmode = "paper"\n\n# [[signals.routes]] (commented out)\n'
                 '[[signals.routes]]\nto = "drop"   # first\n\n[[signals.routes]]  # second\n'
                 '# to = "paper"\nto = "somewhere"\n', 10, id="comments"),
    pytest.param('[[signals.routes]]\nto = "drop"\n\n[signals.mappings.x]\nsymbol = "a"\n'
                 'action = "b"\n\n  [[ signals.routes ]]\n  "to" = "somewhere"\n', 9,
                 id="interleaved-indented-quoted"),
    pytest.param('[[signals.routes]]\r\nto = "drop"\r\n[[signals.routes]]\r\n'
                 'to = "somewhere"\r\n', 4, id="crlf"),
    pytest.param('[signals]\nroutes = [{to = "drop"}, {to = "somewhere"}]\n', 2,
                 id="inline-array"),
]


@pytest.mark.parametrize(("text", "line"), ROUTES_BAD_TO)
def test_config_bad_route_destination_names_file_line_and_key(tmp_path: Path, text: str,
                                                              line: int) -> None:
    path = tmp_path / "sandtrade.toml"
    message = config_error(path, text)
    assert message.startswith(f"{path}:{line}: signals.routes[1].to: ")
    assert "'somewhere' is not a destination (use paper, paper:ACCOUNT, strategy:NAME, " \
           "live:BROKER or drop)" in message


def test_config_unknown_route_key_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "sandtrade.toml"
    message = config_error(path, '[[signals.routes]]\nto = "drop"\n\n[[signals.routes]]\n'
                                 'symbol = "X"\ncolour = "red"\nto = "paper"\n')
    assert message.startswith(f"{path}:6: signals.routes[1].colour: ")
    assert "Extra inputs are not permitted" in message


def test_config_route_without_destination_names_the_route_header(tmp_path: Path) -> None:
    path = tmp_path / "sandtrade.toml"
    message = config_error(path, '[[signals.routes]]\nto = "drop"\n\n[[signals.routes]]\n'
                                 'symbol = "X"\n')
    assert message.startswith(f"{path}:4: signals.routes[1].to: Field required")


def test_config_mapping_without_symbol_names_its_table(tmp_path: Path) -> None:
    path = tmp_path / "sandtrade.toml"
    message = config_error(path, '[signals]\nmode = "paper"\n\n[signals.mappings.a]\n'
                                 'symbol = "a.s"\naction = "a.a"\n\n[signals.mappings.x]\n'
                                 'detect = "bot"\naction = "bot.side"\nqty = "bot.size"\n')
    assert message == f"{path}:8: signals.mappings.x.symbol: Field required"


def test_config_mapping_unknown_key_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "sandtrade.toml"
    message = config_error(path, '[signals.mappings.x]\nsymbol = "b.pair"\naction = "b.side"\n'
                                 'quantity = "b.size"\n')
    assert message.startswith(f"{path}:4: signals.mappings.x.quantity: ")
