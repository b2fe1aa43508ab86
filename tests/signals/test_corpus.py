"""A corpus of alert bodies written the way TradingView users write them, sent end to end.

Every body goes through the real HTTP server of a fresh host (uvicorn on ``127.0.0.1:0``, the
TradingView plugin loaded through its entry point), exactly as TradingView posts it:
``application/json`` when the message is valid JSON, ``text/plain`` otherwise.

The product's promise for each of them:

* a valid body is answered 200, journaled once and executed once: its record ends
  ``executed``, and the orders it placed (``record.orders``, and the broker's) are the ones the
  alert means, in order, with the right side and quantity;
* a broken body is answered with a 4xx (422 when the host read the body and refused it, 401 or
  403 for the token, 413 for the size, 400 for bytes that are not text) whose ``error`` names
  the problem, and nothing is ordered;
* nothing is ever answered with a 5xx, which TradingView would resend three more times.

Bodies that need a position first (a close, a reversal) name it in ``before``: the host gets
there with a signal of its own, filled at the next bar, before the alert is sent.

It is one file because the corpus is one list a reader checks against its sources top to
bottom, and the two tests that send it are all its logic.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from signals.conftest import Host, post

HostFactory = Callable[..., Host]

#: The 85-body TradingView corpus through a real HTTP server: part of the slow set.
pytestmark = pytest.mark.slow

#: Replaced by the host's signal token (bodies for the tokenless route).
TOKEN = "<TOKEN>"
#: Replaced by a well-formed token of the host whose secret is wrong.
WRONG_TOKEN = "<WRONG-TOKEN>"
#: A price for each symbol, published before every alert.
PRICES = {"AAA": 100.0, "BBB": 50.0}


@dataclass(frozen=True)
class Alert:
    """One body of the corpus and what the host must make of it."""

    id: str
    body: str | bytes
    #: Valid alerts: the orders placed, in order ("buy 3 AAA", "sell 2 BBB limit 52.5").
    orders: tuple[str, ...] = ()
    #: Broken alerts: the status code, and a distinctive part of the answer's "error" (or
    #: several, any of which will do).
    status: int = 200
    error: str | tuple[str, ...] = ""
    #: token (in the path), passphrase (tokenless path), read_scope or wrong_token (path).
    route: str = "token"
    #: A position to hold before the alert: "long 4 AAA", "short 3 AAA".
    before: str = ""
    query: dict[str, str] = field(default_factory=dict)
    #: The host's configuration (TOML), e.g. a default size for alerts that name none.
    config: str = ""

    def param(self) -> Any:
        return pytest.param(self, id=self.id)

    def named_in(self, message: str) -> bool:
        """Whether ``message`` names this alert's problem."""
        wanted = (self.error,) if isinstance(self.error, str) else self.error
        return any(w in message for w in wanted)


# ------------------------------------------------------------------------------ the corpus

#: hackingthemarkets' strategy alert template, as TradingView fills it in (tutorial payload
#: ``webhook_message_filled.txt``, symbol and sizes changed): the token in "passphrase".
HACKINGTHEMARKETS_ENTRY = """{
\t"passphrase": "<TOKEN>",
\t"time": "2024-01-02T15:31:00Z",
\t"exchange": "NASDAQ",
\t"ticker": "AAA",
\t"bar": {
\t\t"time": "2024-01-02T15:30:00Z",
\t\t"open": 99.35,
\t\t"high": 100.02,
\t\t"low": 99.02,
\t\t"close": 99.75,
\t\t"volume": 12345
\t},
\t"strategy": {
\t\t"position_size": 7,
\t\t"order_action": "buy",
\t\t"order_contracts": 7,
\t\t"order_price": 100.50,
\t\t"order_id": "Long",
\t\t"market_position": "long",
\t\t"market_position_size": 7,
\t\t"prev_market_position": "flat",
\t\t"prev_market_position_size": 0
\t}
}"""

HACKINGTHEMARKETS_EXIT = """{
    "passphrase": "<TOKEN>",
    "time": "2024-01-02T16:01:00Z",
    "exchange": "NASDAQ",
    "ticker": "AAA",
    "bar": {
        "time": "2024-01-02T16:00:00Z",
        "open": 101.1,
        "high": 101.9,
        "low": 100.8,
        "close": 101.5,
        "volume": 23456
    },
    "strategy": {
        "position_size": 0,
        "order_action": "sell",
        "order_contracts": 7,
        "order_price": 101.5,
        "order_id": "Close entry(s) order Long",
        "market_position": "flat",
        "market_position_size": 0,
        "prev_market_position": "long",
        "prev_market_position_size": 7
    }
}"""

#: What a token with a wrong secret is told (the first when the token was seen recently).
BAD_SECRET = ("wrong secret", "is not a valid token")

VALID = [
    # TradingView JSON built from placeholders, flat.
    Alert("tv-json", '{"ticker": "AAA", "action": "buy", "contracts": 3}', ("buy 3 AAA",)),
    Alert("tv-json-trailing-newline-text-plain",
          '{"ticker": "AAA", "action": "buy", "contracts": 3}\n', ("buy 3 AAA",)),
    Alert("tv-json-crlf-pretty",
          '{\r\n  "ticker": "AAA",\r\n  "action": "sell",\r\n  "contracts": 2\r\n}\r\n',
          ("sell 2 AAA",)),
    Alert("tv-json-bom", '\ufeff{"ticker": "AAA", "action": "buy", "contracts": 1}',
          ("buy 1 AAA",)),
    Alert("tv-json-exchange-prefix-and-bar-fields",
          '{"ticker": "NASDAQ:AAA", "exchange": "NASDAQ", "action": "buy", "contracts": 2, '
          '"close": 100.25, "interval": "60", "time": "2024-01-02T15:30:00Z"}',
          ("buy 2 AAA",)),
    Alert("tv-json-case-typed-by-hand", '{"ticker": "aaa", "action": "BUY", "contracts": 1}',
          ("buy 1 AAA",)),
    Alert("tv-json-tabs-with-unique-id",
          '{\n\t"ticker": "BBB",\n\t"action": "sell",\n\t"contracts": 4,\n'
          '\t"id": "BBB-2024-01-02T15:30:00Z"\n}\n', ("sell 4 BBB",)),
    Alert("tv-json-float-artifact-price",
          '{"ticker": "AAA", "action": "buy", "contracts": 1, "price": 100.60000000000001}',
          ("buy 1 AAA",)),
    # Strategy alerts: a target position.
    Alert("tv-strategy-nested-long",
          '{"ticker": "AAA", "strategy": {"order": {"action": "buy", "contracts": 5, '
          '"price": 100.5, "id": "Long"}, "position_size": 5, "market_position": "long"}}',
          ("buy 5 AAA",)),
    Alert("tv-market-position-flat", '{"ticker": "AAA", "market_position": "flat", '
          '"position_size": 0}', ("sell 4 AAA",), before="long 4 AAA"),
    Alert("tv-market-position-flat-without-size",
          '{"ticker": "AAA", "action": "buy", "contracts": 3, "market_position": "flat"}',
          ("buy 3 AAA",), before="short 3 AAA"),
    Alert("tv-market-position-reversal",
          '{"ticker": "AAA", "action": "sell", "contracts": 6, "order_id": "Short", '
          '"market_position": "short", "position_size": -2}',
          ("sell 4 AAA", "sell 2 AAA"), before="long 4 AAA"),
    Alert("tv-market-position-size-absolute",
          '{"ticker": "AAA", "market_position": "short", "market_position_size": 3}',
          ("sell 3 AAA",)),
    # hackingthemarkets' nested strategy JSON, the token in "passphrase".
    Alert("hackingthemarkets-entry", HACKINGTHEMARKETS_ENTRY, ("buy 7 AAA",),
          route="passphrase"),
    Alert("hackingthemarkets-exit", HACKINGTHEMARKETS_EXIT, ("sell 7 AAA",),
          route="passphrase", before="long 7 AAA"),
    Alert("passphrase-json",
          '{"passphrase": "<TOKEN>", "ticker": "AAA", "action": "buy", "contracts": 2}',
          ("buy 2 AAA",), route="passphrase"),
    Alert("passphrase-json-trailing-newline",
          '{"passphrase": "<TOKEN>", "ticker": "BBB", "action": "buy", "contracts": 1}\n',
          ("buy 1 BBB",), route="passphrase"),
    Alert("passphrase-json-bom",
          '\ufeff{"passphrase": "<TOKEN>", "ticker": "AAA", "action": "buy", "contracts": 1}',
          ("buy 1 AAA",), route="passphrase"),
    # TradersPost JSON.
    Alert("traderspost-buy-bullish",
          '{"ticker": "AAA", "action": "buy", "sentiment": "bullish", "quantity": 4}',
          ("buy 4 AAA",)),
    Alert("traderspost-exit", '{"ticker": "AAA", "action": "exit"}', ("sell 4 AAA",),
          before="long 4 AAA"),
    Alert("traderspost-sell-while-long",
          '{"ticker": "AAA", "action": "sell", "sentiment": "bearish", "quantity": 3}',
          ("sell 4 AAA", "sell 3 AAA"), before="long 4 AAA"),
    Alert("traderspost-buy-to-cover",
          '{"ticker": "AAA", "action": "buy", "sentiment": "flat", "quantity": 3}',
          ("buy 3 AAA",), before="short 3 AAA"),
    Alert("traderspost-limit",
          '{"ticker": "AAA", "action": "buy", "quantity": 2, "orderType": "limit", '
          '"limitPrice": 99.5, "signalPrice": 100.1}', ("buy 2 AAA limit 99.5",)),
    # Text commands.
    Alert("text-buy", "buy 10 AAA", ("buy 10 AAA",)),
    Alert("text-exchange-prefix-uppercase", "BUY 3 NASDAQ:AAA", ("buy 3 AAA",)),
    Alert("text-sell-limit", "sell 2 BBB limit 52.5", ("sell 2 BBB limit 52.5",)),
    Alert("text-close-then-short", "close AAA; short 5 AAA", ("sell 4 AAA", "sell 5 AAA"),
          before="long 4 AAA"),
    Alert("text-two-lines", "buy 1 AAA\nbuy 2 BBB\n", ("buy 1 AAA", "buy 2 BBB")),
    Alert("text-crlf", "sell 1 AAA\r\nsell 1 BBB\r\n", ("sell 1 AAA", "sell 1 BBB")),
    Alert("text-long-reverses-a-short", "long 2 AAA", ("buy 3 AAA", "buy 2 AAA"),
          before="short 3 AAA"),
    Alert("text-flat", "flat AAA", ("sell 4 AAA",), before="long 4 AAA"),
    Alert("text-with-id-and-comment", "buy 1 AAA id=AAA-2024-01-02T15:30:00Z comment=breakout",
          ("buy 1 AAA",)),
    Alert("text-bom", "\ufeffsell 2 BBB", ("sell 2 BBB",)),
    # sandtrade's own JSON.
    Alert("native-json", '{"symbol": "BBB", "action": "buy", "qty": 2, "id": "bbb-1"}',
          ("buy 2 BBB",)),
    Alert("native-commands",
          '{"commands": [{"symbol": "AAA", "action": "close"}, '
          '{"symbol": "BBB", "action": "buy", "qty": 1}]}',
          ("sell 4 AAA", "buy 1 BBB"), before="long 4 AAA"),
]

BROKEN = [
    # Placeholders TradingView did not expand.
    Alert("placeholder-quoted",
          '{"ticker": "{{ticker}}", "action": "buy", "contracts": 1}', status=422,
          error="{{ticker}} is a TradingView placeholder that was not expanded"),
    Alert("placeholder-unquoted-on-an-indicator-alert",
          '{"ticker": "AAA", "action": "buy", "contracts": {{strategy.order.contracts}}}',
          status=422, error="expands only in an alert created on a strategy"),
    Alert("placeholder-action-text-plain",
          '{"ticker": "AAA", "action": "{{strategy.order.action}}", "contracts": 1}\n',
          status=422, error="{{strategy.order.action}} is a TradingView placeholder"),
    Alert("placeholder-plot-unquoted",
          '{"ticker": "AAA", "action": "buy", "contracts": 1, "price": {{plot_0}}}',
          status=422, error="plot placeholders expand only"),
    Alert("placeholder-text-command",
          "{{strategy.order.action}} {{strategy.order.contracts}} {{ticker}}", status=422,
          error="placeholder that was not expanded"),
    Alert("placeholder-in-text-id", "buy 2 AAA id={{ticker}}-{{timenow}}", status=422,
          error="{{ticker}} is a TradingView placeholder"),
    Alert("placeholder-unknown-name",
          '{"ticker": "AAA", "action": "buy", "contracts": {{strategy.order.qty}}}',
          status=422, error="{{strategy.order.qty}} is a TradingView placeholder"),
    # Numbers.
    Alert("decimal-comma-in-string",
          '{"ticker": "AAA", "action": "buy", "contracts": "1,5"}', status=422,
          error="use a decimal point: 1.5"),
    Alert("decimal-comma-bare-json",
          '{"ticker": "AAA", "action": "buy", "contracts": 1,5}', status=422,
          error="a decimal comma?"),
    Alert("decimal-comma-text", "buy 1,5 AAA", status=422, error="use a decimal point: 1.5"),
    Alert("thousands-separator-text", "buy 1,000 AAA", status=422,
          error="write 1000 without separators"),
    Alert("zero-contracts", '{"ticker": "AAA", "action": "buy", "contracts": 0}', status=422,
          error="contracts: must be above 0"),
    Alert("nan-contracts-from-na-plot",
          '{"ticker": "AAA", "action": "buy", "contracts": NaN}', status=422,
          error="NaN is not a JSON number"),
    # Actions.
    Alert("unknown-action-json",
          '{"ticker": "AAA", "action": "purchase", "contracts": 1}', status=422,
          error='unknown action "purchase"'),
    Alert("unknown-action-text", "go long 5 AAA", status=422, error="unknown action 'go'"),
    Alert("unknown-action-traderspost",
          '{"ticker": "AAA", "action": "close", "sentiment": "flat", "quantity": 1}',
          status=422, error='unknown action "close"'),
    Alert("text-without-quantity", "buy AAA", status=422, error="buy needs a quantity"),
    # Symbols.
    Alert("missing-ticker", '{"action": "buy", "contracts": 1}', status=422,
          error="no symbol"),
    Alert("missing-symbol-text", "buy 5", status=422, error="no symbol in 'buy 5'"),
    Alert("empty-ticker", '{"ticker": "", "action": "buy", "contracts": 1}', status=422,
          error="ticker: is empty"),
    Alert("unknown-symbol-json",
          '{"ticker": "NASDAQ:AAPL", "action": "buy", "contracts": 1}', status=422,
          error='no price for AAPL: add "price": {{close}} to the alert'),
    Alert("unknown-symbol-text", "buy 1 TSLA", status=422,
          error="no price for TSLA"),
    # Empty and malformed bodies.
    Alert("empty-body", "", status=422, error="the body is empty"),
    Alert("blank-body-newline", "\r\n", status=422, error="the body is empty"),
    Alert("json-single-quotes", "{'ticker': 'AAA', 'action': 'buy', 'contracts': 1}",
          status=422, error="JSON needs double quotes"),
    Alert("json-trailing-comma",
          '{"ticker": "AAA", "action": "buy", "contracts": 1,}', status=422,
          error="a comma before a closing brace"),
    Alert("json-missing-comma",
          '{"ticker": "AAA"\n"action": "buy", "contracts": 1}', status=422,
          error="a missing comma or quote?"),
    Alert("json-missing-closing-brace",
          '{"ticker": "AAA", "action": "buy", "contracts": 1\n', status=422,
          error="a missing closing brace?"),
    Alert("json-list-of-alerts",
          '[{"ticker": "AAA", "action": "buy", "contracts": 1}, '
          '{"ticker": "BBB", "action": "buy", "contracts": 1}]', status=422,
          error="the body is a JSON list"),
    Alert("pineconnector-syntax", "60123456789,buy,AAA,risk=1", status=422,
          error="starts with a number (a PineConnector license id?)"),
    Alert("octobot-syntax", "EXCHANGE=binance\nSYMBOL=AAA\nSIGNAL=BUY", status=422,
          error="unknown setting 'exchange'"),
    Alert("native-field-typo", '{"symbol": "AAA", "action": "buy", "qyt": 5}', status=422,
          error="qyt: unknown field: did you mean 'qty'?"),
    # Target positions that do not add up.
    Alert("market-position-without-size", '{"ticker": "AAA", "market_position": "long"}',
          status=422, error="market_position 'long' needs the size"),
    Alert("market-position-disagrees-with-size",
          '{"ticker": "AAA", "market_position": "long", "position_size": -3}', status=422,
          error="they disagree"),
    Alert("another-account",
          '{"ticker": "AAA", "action": "buy", "contracts": 1, "account": "live"}',
          status=422, error="this token sends signals for account 'paper', not 'live'"),
    Alert("unknown-format-query", '{"ticker": "AAA", "action": "buy", "contracts": 1}',
          status=422, error="unknown format 'pineconnector'",
          query={"format": "pineconnector"}),
    Alert("broken-json-with-passphrase",
          '{"passphrase": "<TOKEN>", "ticker": "AAA", "action": "buy", "contracts": 1,}',
          status=422, error="a comma before a closing brace", route="passphrase"),
    # Size and encoding.
    Alert("huge-body", "buy 1 AAA comment=" + "x" * 20_000, status=413,
          error="at most 16384 are accepted"),
    Alert("non-utf8-cp1252",
          '{"ticker": "AAA", "action": "buy", "contracts": 1, "comment": "café"}'
          .encode("cp1252"), status=400, error="not UTF-8"),
    # Tokens.
    Alert("wrong-passphrase-tutorial-default",
          HACKINGTHEMARKETS_ENTRY.replace(TOKEN, "somelongstring123"), status=401,
          error="malformed token", route="passphrase"),
    Alert("wrong-passphrase-secret",
          '{"passphrase": "<WRONG-TOKEN>", "ticker": "AAA", "action": "buy", "contracts": 1}',
          status=401, error=BAD_SECRET, route="passphrase"),
    Alert("no-passphrase", '{"ticker": "AAA", "action": "buy", "contracts": 1}', status=401,
          error="no token", route="passphrase"),
    Alert("text-on-the-tokenless-path", "buy 1 AAA", status=401, error="no token",
          route="passphrase"),
    Alert("wrong-token-in-path", "buy 1 AAA", status=401, error=BAD_SECRET,
          route="wrong_token"),
    Alert("token-without-signal-scope", "buy 1 AAA", status=403,
          error="lacks the 'signal' scope", route="read_scope"),
]


# ------------------------------------------------------------------------------ issue 18
# Bodies as traders write them for other bridges, each with where it comes from. The corpus
# host trades AAA (100) and BBB (50); a body written for a real ticker names AAA or BBB
# instead (the host's market feed prices them; signal-priced tickers are tested in
# test_any_ticker.py).

#: A host that gives a size to alerts that name none.
DEFAULT_2 = '[signals]\ndefault_quantity = "2"\n'
#: TradersPost's webhook reference (TradersPost/docs core-concepts/webhooks.md).
TP = "https://docs.traderspost.io/docs/core-concepts/webhooks"

VALID += [
    # Numbers in quotes are numbers (issue 18, item 2): were refused before.
    Alert("number-as-string-contracts",
          '{"ticker": "AAA", "action": "buy", "contracts": "5"}', ("buy 5 AAA",)),
    Alert("number-as-string-traderspost-quantity",
          '{"ticker": "AAA", "action": "buy", "sentiment": "bullish", "quantity": "4"}',
          ("buy 4 AAA",)),
    Alert("number-as-string-limit-price",
          '{"ticker": "AAA", "action": "buy", "quantity": 1, "orderType": "limit", '
          '"limitPrice": "99.5"}', ("buy 1 AAA limit 99.5",)),
    Alert("comma-separated-text", "buy,AAA,5", ("buy 5 AAA",)),
]

NEW_VALID = [
    # TP "Enter Bullish" / "Enter Bearish": no quantity, the default size.
    Alert("tp-doc-enter-bullish", '{\n    "ticker": "AAA",\n    "action": "buy"\n}',
          ("buy 2 AAA",), config=DEFAULT_2),
    Alert("tp-doc-enter-bearish", '{\n    "ticker": "AAA",\n    "action": "sell"\n}',
          ("sell 2 AAA",), config=DEFAULT_2),
    # TP "Exit Bullish": exit, and sell + sentiment flat, close the whole position.
    Alert("tp-doc-exit-bullish", '{\n    "ticker": "AAA",\n    "action": "exit"\n}',
          ("sell 4 AAA",), before="long 4 AAA"),
    Alert("tp-doc-sell-sentiment-flat",
          '{\n    "ticker": "AAA",\n    "action": "sell",\n    "sentiment": "flat"\n}',
          ("sell 4 AAA",), before="long 4 AAA"),
    # TP "Exit Bearish".
    Alert("tp-doc-exit-bearish", '{\n    "ticker": "AAA",\n    "action": "exit"\n}\n',
          ("buy 3 AAA",), before="short 3 AAA"),
    Alert("tp-doc-buy-sentiment-flat",
          '{\n    "ticker": "AAA",\n    "action": "buy",\n    "sentiment": "flat"\n}',
          ("buy 3 AAA",), before="short 3 AAA"),
    # TP "Enter Bullish" while short: the short is closed first, then the default size.
    Alert("tp-doc-buy-reverses-a-short",
          '{"ticker": "AAA", "action": "buy", "sentiment": "bullish"}',
          ("buy 3 AAA", "buy 2 AAA"), before="short 3 AAA", config=DEFAULT_2),
    # TP "Order Type" (limit), and the stop-limit example with its missing colon mended.
    Alert("tp-doc-limit",
          '{\n    "ticker": "AAA",\n    "action": "buy",\n    "orderType": "limit",\n'
          '    "limitPrice": 50.50\n}', ("buy 2 AAA limit 50.5",), config=DEFAULT_2),
    Alert("tp-doc-stop-limit",
          '{"ticker": "AAA", "action": "buy", "orderType": "stop_limit", "stopPrice": 110, '
          '"limitPrice": 110.50}', ("buy 2 AAA stop_limit 110.5",), config=DEFAULT_2),
    # TP "Quantity" and "Quantity Type" (fixed_quantity 100 there; 10 fits the account).
    Alert("tp-doc-quantity", '{"ticker": "AAA", "action": "buy", "quantity": 5}',
          ("buy 5 AAA",)),
    Alert("tp-doc-fixed-quantity", '{"ticker": "AAA", "action": "buy", '
          '"quantityType": "fixed_quantity", "quantity": 10}', ("buy 10 AAA",)),
    # TP "dollar_amount": $1000 at 100 is 10 shares.
    Alert("tp-doc-dollar-amount", '{"ticker": "AAA", "action": "buy", '
          '"quantityType": "dollar_amount", "quantity": 1000}', ("buy 10 AAA",)),
    Alert("tp-percent-of-equity", '{"ticker": "BBB", "action": "buy", '
          '"quantityType": "percent_of_equity", "quantity": 10}', ("buy 20 BBB",)),
    Alert("tp-percent-of-position", '{"ticker": "AAA", "action": "sell", '
          '"quantityType": "percent_of_position", "quantity": 50}', ("sell 2 AAA",),
          before="long 4 AAA"),
    # TP "Time In Force" (its missing comma mended) and "extendedHours" (its colon mended).
    Alert("tp-doc-time-in-force",
          '{"ticker": "AAA", "action": "buy", "orderType": "limit", "limitPrice": 50.50, '
          '"timeInForce": "gtc"}', ("buy 2 AAA limit 50.5",), config=DEFAULT_2),
    Alert("tp-doc-extended-hours",
          '{"ticker": "AAA", "action": "buy", "orderType": "limit", "limitPrice": 50.50, '
          '"timeInForce": "gtc", "extendedHours": true}', ("buy 2 AAA limit 50.5",),
          config=DEFAULT_2),
    # TP's 200 answer shows the payload it read.
    Alert("tp-doc-answer-payload", '{"ticker": "AAA", "action": "buy", "sentiment": '
          '"bullish", "price": 100.5, "quantity": 1}', ("buy 1 AAA",)),
    # TP's strategy template: every placeholder in quotes, sentiment from
    # {{strategy.market_position}} (the "quantity": "{{strategy.order.contracts}}").
    Alert("tp-strategy-template-quoted-numbers",
          '{"ticker": "AAA", "action": "sell", "sentiment": "short", "quantity": "3", '
          '"price": "100.25"}', ("sell 4 AAA", "sell 3 AAA"), before="long 4 AAA"),
    Alert("tp-strategy-template-float-artifact",
          '{"ticker": "AAA", "action": "buy", "sentiment": "long", "quantity": "2.0", '
          '"price": "1194.6000000000001"}', ("buy 2 AAA",)),
    # TradersPost/docs additional-information/webhookmessage-library.md: buildWebhookJson
    # adds "library" and "timestamp", which are ignored.
    Alert("tp-webhookmessage-library",
          '{"library": "WebhookMessage","timestamp": "1704209400000","ticker": "AAA",'
          '"action": "buy","sentiment": "bullish","price": 100.1,"quantity": 3}',
          ("buy 3 AAA",)),
    # TradersPost: "Properties other than the ones listed above can be sent, but will be
    # ignored" (TP); the issue's confidence, Time, comments.
    Alert("tp-extra-fields-ignored",
          '{"ticker": "AAA", "action": "buy", "quantity": 1, "confidence": 0.82, '
          '"Time": "2024-01-02T15:30:00Z", "comments": "RSI < 30", "interval": "15"}',
          ("buy 1 AAA",)),
    # Dropkingeth/decrypt-labs-dashboard webhook/PINESCRIPT-ALERTS.md: "time", "timeframe"
    # ({{interval}}) and "bot" beside the trade.
    Alert("decrypt-labs-extra-fields",
          '{"bot": "ote-silver-bullet", "ticker": "AAA", "action": "buy", "contracts": 1, '
          '"price": 100.2, "time": "2024-01-02T15:30:00Z", "timeframe": "5"}',
          ("buy 1 AAA",)),
    # TradingView placeholders with a strategy name beside them (not a host strategy).
    Alert("tv-strategy-name-ignored",
          '{"ticker": "AAA", "action": "sell", "contracts": "2", "strategy_name": '
          '"SMA Cross", "time": "2024-01-02T15:30:00Z"}', ("sell 2 AAA",)),
    # rfwarn/TradingView-Alpaca-Bridge README.md: "{{strategy.order.action}} | {{ticker}}@
    # {{close}} | {{strategy.order.id}}", and "order sell | MSFT@337.57 | ..." (MSFT: a ticker
    # the feed does not price, filled at the alert's own price).
    Alert("rfwarn-pipe-buy", "buy | AAA@100.5 | Long", ("buy 2 AAA",), config=DEFAULT_2),
    Alert("rfwarn-pipe-order-sell", "order sell | MSFT@337.57 | Directional Movement Index",
          ("sell 2 MSFT",), config=DEFAULT_2),
    Alert("rfwarn-pipe-with-quantity", "sell 3 | BBB@50.2 | Exit", ("sell 3 BBB",)),
    # TradingView's default strategy alert message (TV-STRAT in research/tradingview.md).
    Alert("tv-default-strategy-message",
          "order buy @ 3 filled on AAA. New strategy position is 3", ("buy 3 AAA",)),
    Alert("tv-default-strategy-message-reversal",
          "order sell @ 6 filled on AAA. New strategy position is -2",
          ("sell 4 AAA", "sell 2 AAA"), before="long 4 AAA"),
    # TICKER ACTION QTY, and comma-separated with spaces.
    Alert("text-ticker-first", "AAA buy 3", ("buy 3 AAA",)),
    Alert("text-comma-spaces", "sell, BBB, 2", ("sell 2 BBB",)),
    # long TICKER without a quantity: the default size, a short closed first.
    Alert("text-long-default-size", "long AAA", ("buy 3 AAA", "buy 2 AAA"),
          before="short 3 AAA", config=DEFAULT_2),
    Alert("text-exit", "exit AAA", ("sell 4 AAA",), before="long 4 AAA"),
    Alert("text-price-setting", "buy 2 AAA price=100.4 comment=breakout", ("buy 2 AAA",)),
    # Brackets, OTO and trailing stops (issue 18, item 6): the broker's order classes. The
    # entry is placed now; its exits once it fills (broker/legs.py, tested there).
    Alert("traderspost-bracket",
          '{"ticker": "AAA", "action": "buy", "quantity": 1, "takeProfit": '
          '{"limitPrice": 110}, "stopLoss": {"type": "stop", "stopPrice": 95}}',
          ("buy 1 AAA [bracket tp 110 sl 95]",)),
    # TP "Take Profit & Stop Loss".
    Alert("tp-doc-take-profit-and-stop-loss",
          '{"ticker": "AAA", "action": "buy", "takeProfit": {"limitPrice": 119.99}, '
          '"stopLoss": {"type": "stop", "stopPrice": 90.71}}',
          ("buy 2 AAA [bracket tp 119.99 sl 90.71]",), config=DEFAULT_2),
    # TP "percent": a take profit 10 % above the fill.
    Alert("tp-doc-take-profit-percent",
          '{"ticker": "AAA", "action": "buy", "takeProfit": {"percent": 10}}',
          ("buy 2 AAA [oto tp 10%]",), config=DEFAULT_2),
    # TP "Signal Price": a take profit 10 above the fill (the feed prices AAA).
    Alert("tp-doc-signal-price-take-profit-amount",
          '{"ticker": "AAA", "action": "buy", "orderType": "market", "signalPrice": 100, '
          '"takeProfit": {"amount": 10}}', ("buy 2 AAA [oto tp +10]",), config=DEFAULT_2),
    # TP "Stop Loss": 5 % under the fill.
    Alert("tp-doc-stop-loss-percent",
          '{"ticker": "AAA", "action": "buy", "stopLoss": {"type": "stop", "percent": 5}}',
          ("buy 2 AAA [oto sl 5%]",), config=DEFAULT_2),
    # A stop-limit stop loss.
    Alert("tp-doc-stop-limit-stop-loss",
          '{"ticker": "AAA", "action": "buy", "stopLoss": {"type": "stop_limit", '
          '"stopPrice": 90.71, "limitPrice": 90.75}}',
          ("buy 2 AAA [oto sl 90.71 limit 90.75]",), config=DEFAULT_2),
    # TP "Trailing Stop": a limit entry with a $1 trailing stop loss.
    Alert("tp-doc-limit-entry-trailing-stop-loss",
          '{"ticker": "AAA", "action": "buy", "orderType": "limit", "limitPrice": 71, '
          '"stopLoss": {"type": "trailing_stop", "trailAmount": 1}}',
          ("buy 2 AAA limit 71 [oto trail $1]",), config=DEFAULT_2),
    # TP "Trailing Stop" as an exit: the whole position, as a $1 trailing stop.
    Alert("tp-doc-trailing-stop-exit",
          '{"ticker": "AAA", "action": "exit", "orderType": "trailing_stop", "price": 71, '
          '"trailAmount": "1"}', ("sell 4 AAA trailing_stop $1",), before="long 4 AAA"),
    # TP "risk_dollar_amount": $100 at risk to a stop 10 under 100 is 10 shares.
    Alert("tp-doc-risk-dollar-amount",
          '{"ticker": "AAA", "action": "buy", "price": 100, "quantityType": '
          '"risk_dollar_amount", "quantity": 100, "stopLoss": {"type": "stop", '
          '"stopPrice": 90}}', ("buy 10 AAA [oto sl 90]",)),
    # The WebhookMessage library's own example (webhookmessage-library.md): a 0.75 %
    # trailing stop loss.
    Alert("tp-webhookmessage-trailing-stop",
          '{"library": "WebhookMessage","timestamp": "1704209400000","ticker": "AAA",'
          '"action": "buy","sentiment": "bullish","quantity": 1,"stopLoss":{"type": '
          '"trailing_stop","trailPercent": 0.75}}', ("buy 1 AAA [oto trail 0.75%]",)),
    # long TICKER tp= sl=, PineConnector's key=value exits (https://docs.pineconnector.com/syntax).
    Alert("text-long-tp-sl", "long AAA tp=110 sl=95", ("buy 2 AAA [bracket tp 110 sl 95]",),
          config=DEFAULT_2),
]

#: Multi-leg options (issue 19). TradersPost answers "no" to spreads (its FAQ: "Do you support
#: spreads or other complex options strategies? No"), and no peer has a shape for them: these
#: are sandtrade's own documented shapes (README "Options from alerts",
#: sandtrade.signals.formats.spreads), the first the issue's own body. AAA is at 100 on
#: 2024-01-02, so "30d" is the 2024-01-26 weekly.
CONDOR_LEGS = ("buy:AAA240126P00089000 sell:AAA240126P00094000 sell:AAA240126C00107000 "
               "buy:AAA240126C00112000")
OPTIONS_VALID = [
    # The body (SPY -> AAA): "strategy" names the template (no strategy of the host
    # has that name); its limit 1.20 is a credit, as an iron condor is at its marks.
    Alert("options-issue-iron-condor",
          '{"ticker":"AAA","strategy":"iron_condor","expiry":"30d","short_delta":0.16,'
          '"width":5,"quantity":1,"limitPrice":1.20}',
          (f"mleg 1 AAA limit -1.2 {CONDOR_LEGS}",)),
    # A TradingView alert (placeholders expanded) naming the template by "template".
    Alert("options-template-tradingview",
          '{"ticker": "AAA", "template": "iron_condor", "expiry": "30d", "short_delta": 0.16, '
          '"width": 5, "contracts": 1, "time": "2024-01-02T15:31:00Z"}',
          (f"mleg 1 AAA {CONDOR_LEGS}",)),
    # The TradersPost-like shape in its own words: optionStrategy, expiration, priceEffect.
    Alert("options-template-traderspost-like",
          '{"ticker": "AAA", "action": "buy", "optionStrategy": "bull_call_spread", '
          '"expiration": "2024-01-19", "long_strike": 100, "width": 5, "quantity": 2, '
          '"orderType": "limit", "limitPrice": 3.00, "priceEffect": "debit"}',
          ("mleg 2 AAA limit 3 buy:AAA240119C00100000 sell:AAA240119C00105000",)),
    # Explicit legs by OCC symbol (native), padded as the OCC writes it.
    Alert("options-legs-occ",
          '{"symbol": "AAA", "qty": 1, "legs": [{"symbol": "AAA  240119P00095000", '
          '"side": "buy", "ratio": 1}, {"symbol": "AAA240119P00090000", "side": "sell"}]}',
          ("mleg 1 AAA buy:AAA240119P00095000 sell:AAA240119P00090000",)),
    # Explicit legs by expiry, strike and right, TradersPost-like spellings.
    Alert("options-legs-traderspost-like",
          '{"ticker": "AAA", "quantity": 1, "legs": [{"optionType": "put", "expiration": '
          '"2024-01-19", "strikePrice": 95, "action": "sell"}, {"optionType": "put", '
          '"expiration": "2024-01-19", "strikePrice": 90, "action": "buy"}]}',
          ("mleg 1 AAA sell:AAA240119P00095000 buy:AAA240119P00090000",)),
]

OPTIONS_BROKEN = [
    Alert("options-template-bad-delta",
          '{"ticker": "AAA", "template": "iron_condor", "expiry": "30d", "short_delta": 16, '
          '"width": 5, "contracts": 1}', status=422,
          error="short_delta: iron_condor: short_delta 16 must be between 0 and 1"),
    Alert("options-legs-bad-strike",
          '{"ticker": "AAA", "contracts": 1, "legs": [{"symbol": "AAA240119C00100000", '
          '"side": "buy"}, {"expiry": "2024-01-19", "strike": "1,05", "right": "call", '
          '"side": "sell"}]}', status=422,
          error="legs[1].strike: \"1,05\" is a number written with a comma"),
    Alert("options-exit-without-template",
          '{"ticker": "AAA", "action": "exit", "legs": [{"symbol": "AAA240119C00100000", '
          '"side": "buy"}, {"symbol": "AAA240119C00105000", "side": "sell"}]}', status=422,
          error="action: exit closes a template's spreads by its name"),
]

NEW_BROKEN = [
    # TP's own examples with their typos: "stopPrice" 60 (no colon), a missing comma.
    Alert("tp-doc-stop-limit-typo",
          '{\n    "ticker": "AAA",\n    "action": "buy",\n    "orderType": "stop_limit",\n'
          '    "stopPrice" 60,\n    "limitPrice": 50.50\n}', status=422,
          error="line 5, column 17: Expecting ':' delimiter"),
    Alert("tp-doc-time-in-force-typo",
          '{\n    "ticker": "AAA",\n    "action": "buy",\n    "orderType": "limit",\n'
          '    "limitPrice": 50.50\n    "timeInForce": "gtc"\n}', status=422,
          error="a missing comma or quote?"),
    # TP's "400 Bad Request" examples.
    Alert("tp-doc-trailing-comma", '{\n    "ticker": "AAA",\n    "action": "buy",\n}',
          status=422, error="a comma before a closing brace"),
    Alert("tp-doc-curly-quotes", '{\n    “ticker”: “AAA”,\n    “action”: “buy”\n}',
          status=422, error="curly quotes"),
    Alert("tp-doc-invalid-action", '{\n    "ticker": "AAA",\n    "action": "bu"\n}',
          status=422, error='action: unknown action "bu"'),
    Alert("tp-doc-empty-ticker", '{\n    "ticker": "",\n    "action": "buy"\n}', status=422,
          error="ticker: is empty"),
    # TP "Add to Open Position" without a sentiment: which side is not said.
    Alert("tp-doc-add-without-sentiment", '{"ticker": "AAA", "action": "add"}', status=422,
          error="add needs sentiment bullish or bearish"),
    # A buy with no quantity on a host with no default size.
    Alert("tp-doc-enter-bullish-without-default", '{"ticker": "AAA", "action": "buy"}',
          status=422, error="needs a quantity: the alert names none and no default size is "
          "set (add 'contracts' to the alert, or set [signals] default_quantity"),
    # TP's options fields: an order for the stock instead would be wrong.
    Alert("tp-doc-option-chain", '{"ticker": "AAA", "action": "buy", "optionType": "call", '
          '"expiration": "+6 months", "intrinsicValue": "itm", "strikesAway": 2}',
          status=422, error="optionType: choosing an option from the chain is not supported"),
    Alert("tp-time-in-force-gtd", '{"ticker": "AAA", "action": "buy", "quantity": 1, '
          '"timeInForce": "gtd"}', status=422,
          error='timeInForce: time in force "gtd" is not supported'),
    Alert("tp-risk-without-stop", '{"ticker": "AAA", "action": "buy", "quantityType": '
          '"risk_dollar_amount", "quantity": 100}', status=422,
          error="risk_dollar_amount is sized from the distance to the stop loss"),
    Alert("tp-unknown-quantity-type", '{"ticker": "AAA", "action": "buy", "quantityType": '
          '"percent_of_cash", "quantity": 5}', status=422,
          error='unknown quantity type "percent_of_cash"'),
    # Lenient numbers, strict meaning (issue 18, item 2).
    Alert("number-thousands-separator-string",
          '{"ticker": "AAA", "action": "buy", "quantity": "1,000"}', status=422,
          error="write 1000 without separators"),
    Alert("number-european-format",
          '{"ticker": "AAA", "action": "buy", "contracts": "1.000,5"}', status=422,
          error="write 1000.5"),
    Alert("number-nan-string", '{"ticker": "AAA", "action": "buy", "contracts": "NaN"}',
          status=422, error='"NaN" is not a finite number'),
    Alert("number-boolean", '{"ticker": "AAA", "action": "buy", "quantity": true}',
          status=422, error="expected a number, got true"),
    Alert("number-negative-string", '{"ticker": "AAA", "action": "buy", "contracts": "-3"}',
          status=422, error="must be at least 0, got -3"),
    Alert("number-zero-string", '{"ticker": "AAA", "action": "buy", "quantity": "0"}',
          status=422, error="must be above 0, got 0"),
    # TP's strategy template sent from an indicator alert: the placeholder stays.
    Alert("tp-template-on-an-indicator",
          '{"ticker": "AAA", "action": "buy", "quantity": "{{strategy.order.contracts}}"}',
          status=422, error="expands only in an alert created on a strategy"),
    # Near misses of a field (issue 18, item 3).
    Alert("near-miss-quantitty", '{"ticker": "AAA", "action": "buy", "quantitty": 2}',
          status=422, error="quantitty: unknown field: did you mean 'quantity'?"),
    Alert("near-miss-tickr", '{"tickr": "AAA", "action": "buy", "quantity": 2}',
          status=422, error="tickr: unknown field: did you mean 'ticker'?"),
    Alert("near-miss-text-setting", "buy 2 AAA tpp=110", status=422,
          error="did you mean 'tp'?"),
]


# ------------------------------------------------------------------------------ helpers


def _wrong_token(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def _send(host: Host, alert: Alert) -> Any:
    """Post the alert as TradingView would: JSON as application/json, anything else as
    text/plain (a trailing newline is enough to make TradingView send text/plain)."""
    body = alert.body
    if isinstance(body, str):
        body = body.replace(TOKEN, host.token).replace(WRONG_TOKEN, _wrong_token(host.token))
    url = host.webhook
    if alert.route == "passphrase":
        url = f"{host.url}/webhooks/tradingview"
    elif alert.route == "wrong_token":
        url = f"{host.url}/webhooks/tradingview/{_wrong_token(host.token)}"
    elif alert.route == "read_scope":
        assert host.runtime.auth is not None
        _, read_token = host.runtime.auth.create("paper", ("read",))
        url = f"{host.url}/webhooks/tradingview/{read_token}"
    content_type = "text/plain; charset=utf-8"
    if isinstance(body, str):
        try:
            json.loads(body)
        except ValueError:
            pass
        else:
            content_type = "application/json"
    return post(url, body, content_type=content_type, **alert.query)


def _describe(order: Any) -> str:
    if order.order_class.value == "mleg":  # "mleg 1 AAA limit -1.2 buy:SYMBOL sell:SYMBOL"
        limit = f" limit {order.limit_price:g}" if order.limit_price is not None else ""
        legs = " ".join(f"{leg.side.value}{f'x{leg.ratio}' if leg.ratio > 1 else ''}:"
                        f"{leg.symbol}" for leg in order.legs)
        return f"mleg {order.qty:g} {order.symbol}{limit} {legs}"
    text = f"{order.side.value} {order.qty:g} {order.symbol}"
    if order.type.value == "trailing_stop":
        text += f" trailing_stop {_trail(order)}"
    elif order.type.value != "market":
        text += f" {order.type.value} {order.limit_price:g}"
    if order.order_class.value != "simple":
        exits = [f"tp {_exit(order.take_profit)}" if order.take_profit else "",
                 f"sl {_exit(order.stop_loss)}" if order.stop_loss else "",
                 f"trail {_trail(order)}" if order.type.value != "trailing_stop" and (
                     order.trail_price or order.trail_percent) else ""]
        text += f" [{' '.join([order.order_class.value, *filter(None, exits)])}]"
    return text


def _exit(spec: Any) -> str:
    text = (f"{spec.price:g}" if spec.price is not None else f"{spec.percent:g}%"
            if spec.percent is not None else f"+{spec.amount:g}")
    return text + (f" limit {spec.limit_price:g}" if spec.limit_price is not None else "")


def _trail(order: Any) -> str:
    return f"${order.trail_price:g}" if order.trail_price is not None else \
        f"{order.trail_percent:g}%"


def _prepare(host: Host, alert: Alert) -> None:
    """Prices for both symbols, and the position the alert expects."""
    for symbol, price in PRICES.items():
        host.market.publish(price, symbol=symbol)
    if alert.before:
        side, qty, symbol = alert.before.split()
        r = post(host.webhook, f"{side} {qty} {symbol} id=before")
        assert r.status_code == 200, r.text
        host.wait_idle()
        host.market.publish(PRICES[symbol], symbol=symbol)
        position = host.runtime.live.call(  # type: ignore[union-attr]
            lambda b: b.position_qty("paper", symbol))
        assert position == (float(qty) if side == "long" else -float(qty)), position


# ------------------------------------------------------------------------------ the tests


def test_the_corpus_is_large_and_its_ids_are_unique() -> None:
    ids = [a.id for a in (*VALID, *BROKEN, *NEW_VALID, *NEW_BROKEN, *OPTIONS_VALID,
                          *OPTIONS_BROKEN)]
    assert len(ids) >= 40 + 85
    assert len(NEW_VALID) + len(NEW_BROKEN) >= 40
    assert len(ids) == len(set(ids))
    assert all(a.orders for a in (*VALID, *NEW_VALID, *OPTIONS_VALID))
    assert all(a.status >= 400 and a.error for a in (*BROKEN, *NEW_BROKEN, *OPTIONS_BROKEN))


@pytest.mark.parametrize("alert", [a.param() for a in (*VALID, *NEW_VALID, *OPTIONS_VALID)])
def test_a_valid_alert_is_executed_exactly_once_with_the_orders_it_means(make_host: HostFactory,
                                                                          alert: Alert) -> None:
    host = make_host(alert.config)
    _prepare(host, alert)
    signals_before = {r.id for r in host.signals()}
    orders_before = {o.id for o in host.orders()}

    r = _send(host, alert)

    assert r.status_code < 500, f"a 5xx makes TradingView resend: {r.status_code} {r.text}"
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["status"] == "validated" and answer["duplicate"] is False, answer
    host.wait_idle()
    new = [rec for rec in host.signals() if rec.id not in signals_before]
    assert [rec.id for rec in new] == [answer["id"]], "journaled exactly once"
    [record] = new
    assert record.status.value == "executed", record.reason
    assert record.source == "tradingview"
    orders = {o.id: o for o in host.orders()}
    placed = [orders[i] for i in record.orders]
    assert [_describe(o) for o in placed] == list(alert.orders), record.reason
    assert set(orders) - orders_before == set(record.orders), "no other order was placed"
    assert all(o.account == "paper" for o in placed)
    assert TOKEN not in record.raw_body and host.token not in record.raw_body


@pytest.mark.parametrize("alert", [a.param() for a in (*BROKEN, *NEW_BROKEN,
                                                        *OPTIONS_BROKEN)])
def test_a_broken_alert_gets_a_4xx_naming_the_problem(make_host: HostFactory,
                                                      alert: Alert) -> None:
    host = make_host(alert.config)
    _prepare(host, alert)
    signals_before = {r.id for r in host.signals()}
    orders_before = {o.id for o in host.orders()}

    r = _send(host, alert)

    assert r.status_code < 500, f"a 5xx makes TradingView resend: {r.status_code} {r.text}"
    assert r.status_code == alert.status, r.text
    error = r.json()["error"]
    assert alert.named_in(error), error
    host.wait_idle()
    new = [rec for rec in host.signals() if rec.id not in signals_before]
    if alert.status == 422:
        # Read and refused: journaled as rejected, its id in the answer.
        assert [rec.id for rec in new] == [r.json()["id"]]
        assert new[0].status.value == "rejected" and alert.named_in(new[0].reason)
        assert host.token not in new[0].raw_body
    else:
        assert new == [], "refused before it was read: nothing is journaled"
    assert {o.id for o in host.orders()} == orders_before, "nothing is ordered"
