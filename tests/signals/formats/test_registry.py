"""Reading a body: unexpanded placeholders first, then JSON or text, then the named format or
the first that detects it; what a body that is none of them is told.
"""

from __future__ import annotations

import pytest

from sandtrade.signal_model import Command

from .reading import MAPPED, NATIVE, js, parse, refused, target


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
