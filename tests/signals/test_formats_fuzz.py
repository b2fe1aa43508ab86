"""Property-based fuzzing of the signal formats: ``parse`` never breaks its contract.

The contract of :meth:`FormatRegistry.parse`: whatever the body, it either returns a
:class:`ParsedSignal` with at least one command, finite quantities and prices and an upper-case
symbol, or raises :class:`SignalError`, whose message becomes the 422 answer and the journaled
reason. Any other exception escapes the pipeline's ``except SignalError`` and turns an alert
into a 5xx: TradingView sends it again three times, and nothing is journaled.

Bodies come from hypothesis: arbitrary text; text built from the words of the text format;
arbitrary JSON values whose keys are the fields the formats read (symbol, ticker, action, qty,
strategy, ...); objects shaped like each format with awkward values; and random edits of valid
bodies. Plus a few positive properties (a valid body is read exactly) and the explicit numeric
and nesting extremes that a JSON decoder turns into something other than a number or a dict.

Every test is derandomized (the same examples on every run) and uses no example database, so
the suite is reproducible and writes nothing to the working tree.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sandtrade.signal_model import Command, ParsedSignal, SignalError
from sandtrade.signals.formats import MAX_COMMANDS, FormatRegistry, MappingSpec

#: Property-based fuzzing of the signal formats: part of the slow set.
pytestmark = pytest.mark.slow

REGISTRY = FormatRegistry.default({
    "bot": MappingSpec(detect="sig", symbol="sig.pair", action="sig.side", qty="sig.size",
                       limit_price="sig.limit", actions={"LONG": "buy", "SHORT": "sell"}),
})


def fuzz(max_examples: int) -> settings:
    return settings(max_examples=max_examples, deadline=None, database=None,
                    derandomize=True, suppress_health_check=[HealthCheck.too_slow,
                                                             HealthCheck.filter_too_much,
                                                             HealthCheck.data_too_large])


def check(body: str, fmt: str | None = None) -> ParsedSignal | None:
    """Parse ``body``; assert the contract; None when it was refused with a SignalError."""
    try:
        signal = REGISTRY.parse(body, fmt)
    except SignalError as e:
        assert str(e).strip(), "a refusal must say why"
        return None
    assert isinstance(signal, ParsedSignal)
    assert signal.commands, f"accepted with no command: {body!r}"
    assert len(signal.commands) <= MAX_COMMANDS * 2
    for command in signal.commands:
        assert math.isfinite(command.qty), command
        for price in (command.limit_price, command.stop_price):
            assert price is None or math.isfinite(price), command
        assert command.symbol and command.symbol == command.symbol.upper(), command
        if command.action in ("buy", "sell"):
            # a fixed quantity, or a size computed when it runs (the default one, $, %)
            assert command.qty > 0 or (command.qty == 0 and command.size is not None), command
        if command.size is not None:
            assert command.size.type == "default" or (
                math.isfinite(command.size.value) and command.size.value > 0), command
    assert signal.price is None or math.isfinite(signal.price)
    assert signal.qty is None or math.isfinite(signal.qty)
    return signal


# ---------------------------------------------------------------------------- strategies

KEYS = [
    "symbol", "ticker", "action", "qty", "quantity", "contracts", "strategy", "order",
    "commands", "market_position", "position_size", "market_position_size", "order_action",
    "order_contracts", "order_id", "order_price", "id", "idempotency_key", "alert_id",
    "sentiment", "quantityType", "orderType", "limitPrice", "stopPrice", "signalPrice",
    "takeProfit", "stopLoss", "limit_price", "stop_price", "order_type", "price", "close",
    "bar", "time", "timenow", "exchange", "interval", "account", "comment", "passphrase",
    "sig", "pair", "side", "size", "limit", "extras", "cancel", "test", "strategy_name",
    "order_comment",
]
WORDS = [
    "buy", "sell", "close", "flat", "long", "short", "target", "cancel", "exit", "add",
    "purchase", "BUY", "Long", "LONG", "SHORT", "bullish", "bearish", "market", "limit",
    "stop", "stop_limit", "Stop-Limit", "stoplimit", "fixed_quantity", "percent_of_equity",
    "AAPL", "aapl", "NASDAQ:AAPL", "BTCUSD", "NQ1!", "BTC/USD", "A:B:C", ":", "AAP L", "",
    " ", "10", "0.5", "-5", "1,5", "1,000", "1.000,5", "NaN", "Infinity", "1e400", "0x10",
    "{{ticker}}", "{{strategy.order.contracts}}", "{{plot_0}}", "{{ }}", "{{", "}}",
    "Long", "Exit", "2024-05-01T14:30:00Z", "\ufeff", "\u0000", "é", "\r\n",
]
NUMBERS = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0, -0.0, 1, -1, 0.1, 1194.6000000000001, 1e308, -1e308, 5e-324, 1e-9]),
)
LEAVES = st.one_of(st.none(), st.booleans(), NUMBERS, st.sampled_from(WORDS),
                   st.text(max_size=12))
JSON_VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), children,
                        max_size=6),
    ),
    max_leaves=25,
)
SMALL_VALUES = st.recursive(
    LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=2),
        st.dictionaries(st.sampled_from(KEYS), children, max_size=3),
    ),
    max_leaves=6,
)


def shaped(required: dict[str, st.SearchStrategy[Any]],
           optional: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """An object with the required keys and some of the optional ones, awkward values."""
    return st.fixed_dictionaries(required, optional={k: SMALL_VALUES for k in optional})


ACTIONISH = st.one_of(st.sampled_from(WORDS), SMALL_VALUES)
SYMBOLISH = st.one_of(st.sampled_from(["AAPL", "aapl", "NASDAQ:AAPL", "BTCUSD", "NQ1!"]),
                      SMALL_VALUES)
NATIVE_KEYS = ["qty", "order_type", "limit_price", "stop_price", "price", "account",
               "strategy", "id", "idempotency_key", "comment", "passphrase", "qtty"]
COMMAND = shaped({"symbol": SYMBOLISH, "action": ACTIONISH},
                 ["qty", "order_type", "limit_price", "stop_price"])
SHAPES = st.one_of(
    shaped({"symbol": SYMBOLISH, "action": ACTIONISH}, NATIVE_KEYS),
    st.fixed_dictionaries({"commands": st.one_of(st.lists(COMMAND, max_size=4),
                                                 SMALL_VALUES)}),
    shaped({"ticker": SYMBOLISH, "action": ACTIONISH},
           ["contracts", "qty", "position_size", "market_position", "market_position_size",
            "order_id", "id", "close", "limit_price", "exchange", "interval", "comment"]),
    shaped({"ticker": SYMBOLISH}, ["strategy", "bar", "time", "passphrase", "exchange"]),
    shaped({"ticker": SYMBOLISH,
            "strategy": shaped({}, ["position_size", "order_action", "order_contracts",
                                    "order_price", "order_id", "market_position",
                                    "market_position_size", "order"])}, ["bar", "time"]),
    shaped({"ticker": SYMBOLISH, "action": ACTIONISH},
           ["sentiment", "quantity", "quantityType", "orderType", "limitPrice", "stopPrice",
            "signalPrice", "takeProfit", "stopLoss", "id", "extras", "time"]),
    st.fixed_dictionaries({"sig": shaped({}, ["pair", "side", "size", "limit"])}),
)

VALID = [
    '{"symbol": "AAPL", "action": "buy", "qty": 10}',
    '{"symbol": "AAPL", "action": "sell", "qty": 1, "order_type": "stop_limit", '
    '"stop_price": 140, "limit_price": 141, "id": "k-1"}',
    '{"commands": [{"symbol": "AAPL", "action": "close"}, '
    '{"symbol": "AAPL", "action": "short", "qty": 5}]}',
    '{"ticker": "NASDAQ:AAPL", "action": "buy", "contracts": 3, "close": 1194.6000000000001}',
    '{"ticker": "AAPL", "strategy": {"position_size": -10, "order_action": "sell", '
    '"order_contracts": 20, "order_id": "Short", "market_position": "short"}}',
    '{"ticker": "AAPL", "strategy": {"order": {"action": "sell", "contracts": 2, "id": "x"}}}',
    '{"ticker": "AAPL", "action": "buy", "sentiment": "bullish", "quantity": 10, '
    '"orderType": "limit", "limitPrice": 150}',
    '{"sig": {"pair": "btcusd", "side": "LONG", "size": 0.5}}',
    "buy 10 AAPL stop 150 limit 151 id=abc account=paper",
    "close AAPL; short 10 AAPL\nlong 5 MSFT\r\ncancel AAPL",
]
for _body in VALID:  # the seeds of the mutations must themselves be valid
    assert check(_body) is not None, _body

INSERTS = st.one_of(st.sampled_from([",", "}", "{", "]", "[", '"', "'", ":", ";", "\n", " ",
                                     "0", "-", ".", "e", "{{ticker}}", "NaN", "1,5", "\ufeff",
                                     "\\", "\\u", "null", "true"]),
                    st.text(max_size=4))


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A valid body after a few random edits (delete, insert, replace, duplicate, cut)."""
    body = draw(st.sampled_from(VALID))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        at = draw(st.integers(min_value=0, max_value=len(body)))
        end = draw(st.integers(min_value=at, max_value=min(len(body), at + 8)))
        op = draw(st.sampled_from(["delete", "insert", "replace", "duplicate", "cut"]))
        if op == "delete":
            body = body[:at] + body[end:]
        elif op == "insert":
            body = body[:at] + draw(INSERTS) + body[at:]
        elif op == "replace":
            body = body[:at] + draw(INSERTS) + body[end:]
        elif op == "duplicate":
            body = body[:end] + body[at:end] + body[end:]
        else:
            body = body[:at]
    return body


TEXT_WORDS = st.one_of(
    st.sampled_from([*WORDS, ";", "\n", "id=x", "account=a", "comment=hi", "strategy=",
                     "foo=bar", "=", "@", "at", "mkt", "limit", "stop", "+3", ".5", "1e-3",
                     "1.", "-.5"]),
    NUMBERS.map(str),
    st.text(alphabet="abcxyzAB019.,:;=/-!{}\n\t ", max_size=8),
)
TEXT_BODIES = st.lists(TEXT_WORDS, max_size=14).map(" ".join)


# ---------------------------------------------------------------------------- the contract


@fuzz(600)
@given(st.text(max_size=200))
def test_arbitrary_text_is_read_or_refused(body: str) -> None:
    check(body)


@fuzz(600)
@given(TEXT_BODIES)
@example("buy 10 AAPL limit 1e400")
@example("target -0 AAPL;" * 21)
def test_text_command_soup_is_read_or_refused(body: str) -> None:
    check(body)


@fuzz(600)
@given(JSON_VALUES)
def test_arbitrary_json_is_read_or_refused(value: Any) -> None:
    check(json.dumps(value))


@fuzz(800)
@given(SHAPES)
def test_format_shaped_json_with_awkward_values_is_read_or_refused(value: dict[str, Any]
                                                                   ) -> None:
    check(json.dumps(value))


@fuzz(600)
@given(mutated())
def test_edited_valid_bodies_are_read_or_refused(body: str) -> None:
    check(body)


@fuzz(300)
@given(st.one_of(SHAPES, JSON_VALUES).map(json.dumps) | TEXT_BODIES,
       st.sampled_from([None, *REGISTRY.names, "nope", ""]))
def test_any_body_with_any_format_name_is_read_or_refused(body: str, fmt: str | None
                                                          ) -> None:
    check(body, fmt)


# ---------------------------------------------------------------------------- positive properties


SYMBOLS = st.from_regex(r"[A-Z][A-Z0-9]{0,5}", fullmatch=True)
QTYS = st.floats(min_value=1e-6, max_value=1e9, allow_nan=False, allow_infinity=False)


@fuzz(300)
@given(SYMBOLS, st.sampled_from(["buy", "sell"]), QTYS)
def test_valid_native_order_is_read_exactly(symbol: str, action: str, qty: float) -> None:
    body = json.dumps({"symbol": symbol.lower(), "action": action, "qty": qty})
    signal = check(body)
    assert signal is not None
    assert signal.commands == [Command(action=action, symbol=symbol, qty=qty)]  # type: ignore[arg-type]


@fuzz(300)
@given(SYMBOLS, st.sampled_from(["buy", "sell", "long", "short", "target"]), QTYS,
       st.sampled_from(["", "\n", "\r\n", " \n\n"]), st.booleans())
def test_text_and_native_agree(symbol: str, action: str, qty: float, tail: str,
                               bom: bool) -> None:
    native = check(json.dumps({"symbol": symbol, "action": action, "qty": qty}))
    text = check(("\ufeff" if bom else "") + f"{action} {qty!r} {symbol}{tail}")
    assert native is not None and text is not None
    assert text.commands == native.commands


@fuzz(200)
@given(SYMBOLS, st.sampled_from(["long", "short", "flat"]), QTYS)
def test_tradingview_target_is_the_signed_position_size(symbol: str, position: str,
                                                        size: float) -> None:
    signed = {"long": size, "short": -size, "flat": 0.0}[position]
    signal = check(json.dumps({"ticker": f"NASDAQ:{symbol}", "strategy": {
        "market_position": position, "position_size": signed}}))
    assert signal is not None
    assert signal.commands == [Command(action="target", symbol=symbol, qty=signed)]


# ---------------------------------------------------------------------------- decoder extremes


@fuzz(200)
@given(st.integers())
@example(10**400)
@example(-(10**400))
@example(2**1024)
def test_any_json_integer_quantity_is_read_or_refused(n: int) -> None:
    check(f'{{"symbol": "AAPL", "action": "target", "qty": {n}}}')


@pytest.mark.parametrize("digits", [400, 5000])
@pytest.mark.parametrize("template", [
    pytest.param('{{"symbol": "AAPL", "action": "buy", "qty": {n}}}', id="native-qty"),
    pytest.param('{{"symbol": "AAPL", "action": "buy", "qty": 1, "limit_price": {n}}}',
                 id="native-limit"),
    pytest.param('{{"symbol": "AAPL", "action": "buy", "qty": 1, "price": {n}}}',
                 id="native-price"),
    pytest.param('{{"ticker": "AAPL", "action": "buy", "contracts": {n}}}',
                 id="tradingview-contracts"),
    pytest.param('{{"ticker": "AAPL", "strategy": {{"market_position": "long", '
                 '"position_size": {n}}}}}', id="tradingview-position-size"),
    pytest.param('{{"ticker": "AAPL", "action": "buy", "sentiment": "bullish", '
                 '"quantity": {n}}}', id="traderspost-quantity"),
])
def test_huge_json_integers_are_refused_with_a_signal_error(template: str,
                                                            digits: int) -> None:
    """An integer literal too large for a float (400 digits, ~450 bytes), or longer than
    Python's int-parsing limit (5000 digits), is a wrong number, not a crash."""
    body = template.format(n="1" + "0" * (digits - 1))
    with pytest.raises(SignalError):
        REGISTRY.parse(body)


@pytest.mark.parametrize("depth", [1_000, 4_000])
@pytest.mark.parametrize("shape", [
    pytest.param('{{"symbol": "AAPL", "x": {open}{close}}}', id="in-object"),
    pytest.param("{open}{close}", id="top-level-list"),
])
def test_deeply_nested_json_is_refused_with_a_signal_error(shape: str, depth: int) -> None:
    """A 2-8 KB body of nested lists (under the webhook's 16 KB limit) is still a body."""
    body = shape.format(open="[" * depth, close="]" * depth)
    with pytest.raises(SignalError):
        REGISTRY.parse(body)
