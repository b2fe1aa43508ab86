"""The ``native`` format: sandtrade's own JSON, one command or a list of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from sandtrade.signal_model import Command
from sandtrade.signals.formats import MAX_COMMANDS

from .reading import js, parse, refused, target


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


@pytest.mark.parametrize(("body", "field", "meant"), [
    (js(symbol="AAPL", action="buy", qtty=10), "qtty", "qty"),
    (js(symbol="AAPL", action="buy", qyt=10), "qyt", "qty"),
    (js(symbol="AAPL", action="buy", Qty=10), "Qty", "qty"),
    (js(symbol="AAPL", action="buy", qty=10, limitprice=5), "limitprice", "limit_price"),
    (js(commands=[{"symbol": "AAPL", "action": "buy", "qtty": 1}]), "commands[0].qtty", "qty"),
    (js(symbol="AAPL", action="buy", qty=1, stop_los=90), "stop_los", "stop_loss"),
])
def test_native_near_miss_of_a_field_is_refused_naming_the_field_meant(body: str, field: str,
                                                                       meant: str) -> None:
    e = refused(body)
    assert e.field == field
    assert e.detail == f"unknown field: did you mean {meant!r}?"


@pytest.mark.parametrize("extra", ["Time", "interval", "comments", "confidence",
                                   "strategy_name", "timeframe", "bot"])
def test_native_other_fields_are_ignored_and_listed(extra: str) -> None:
    signal = parse(js(symbol="AAPL", action="buy", qty=1, **{extra: "x"}))
    assert signal.commands == [Command(action="buy", symbol="AAPL", qty=1.0)]
    assert signal.ignored_fields == [extra]


def test_native_fields_of_a_command_that_are_not_read_are_listed_with_its_place() -> None:
    signal = parse(js(commands=[{"symbol": "AAPL", "action": "buy", "qty": 1, "id": "x"}]))
    assert signal.ignored_fields == ["commands[0].id"]


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
    (js(symbol="AAPL", action="buy", qty=0), "qty", "must be above 0, got 0"),
    (js(symbol="AAPL", action="sell", qty=-1), "qty", "must be above 0, got -1"),
    (js(symbol="AAPL", action="long", qty=-1), "qty", "long takes a size of 0 or more, got -1"),
    (js(symbol="AAPL", action="buy", qty=1, limit_price=0), "limit_price",
     "must be above 0, got 0"),
    (js(symbol="AAPL", action="buy", qty=1, order_type="iceberg"), "order_type",
     'unknown order type "iceberg" (use one of: market, limit, stop, stop_limit, '
     'trailing_stop)'),
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
