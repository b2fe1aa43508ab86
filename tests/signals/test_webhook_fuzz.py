"""Property-based fuzzing of the TradingView webhook over the real HTTP server of one host.

Whatever arrives (random bytes, text commands with random words, random JSON objects built
from the fields the formats know and any others, random Content-Types, query parameters and
path tokens), the host must answer without a 5xx: TradingView resends an alert three more
times after a 5xx, and a 5xx means "nothing was journaled". Afterwards the host still answers
``/health``.

Each test starts one host (with the rate limit off, so that the limiter never answers for the
payload) and runs its examples against it. The runs are derandomized (the same examples every
time, so a failure is reproducible) and keep no database.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signals.conftest import Host

#: Property-based fuzzing of the real webhook: part of the slow set.
pytestmark = pytest.mark.slow

HostFactory = Callable[..., Host]
NO_RATE_LIMIT = "[plugins.tradingview]\nrate_per_minute = 0\n"
TOKEN = "<TOKEN>"
FUZZ = settings(max_examples=40, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

# ------------------------------------------------------------------------------ vocabulary

SEEDS = [
    '{"ticker": "AAA", "action": "buy", "contracts": 1}',
    '{"ticker": "NASDAQ:BBB", "action": "sell", "contracts": 2}\n',
    '{"passphrase": "<TOKEN>", "ticker": "AAA", "action": "buy", "contracts": 1}',
    '{"ticker": "AAA", "market_position": "flat", "position_size": 0}',
    '{"ticker": "AAA", "action": "buy", "sentiment": "bullish", "quantity": 1}',
    '{"symbol": "AAA", "action": "buy", "qty": 1}',
    '{"commands": [{"symbol": "AAA", "action": "close"}]}',
    "buy 1 AAA",
    "close AAA; short 1 AAA",
    "sell 1 BBB limit 50",
    "{{strategy.order.action}} {{strategy.order.contracts}} {{ticker}}",
]
WORDS = [
    "buy", "sell", "close", "flat", "long", "short", "target", "cancel", "BUY", "exit",
    "AAA", "BBB", "NASDAQ:AAA", "aaa", "ZZZ", "AAPL", "limit", "stop", "market", "mkt", "@",
    "at", "1", "0", "-1", "2.5", "1,5", "1,000", "1e3", "1e400", "nan", "inf", ".5", "+3",
    "id=x", "id=", "account=paper", "account=other", "strategy=s", "comment=hi", "foo=bar",
    "{{ticker}}", "{{close}}", "{{plot_0}}", "=", ";", ",", "\t", "\r", "\ufeff",
]
KEYS = [
    "ticker", "action", "contracts", "symbol", "qty", "quantity", "sentiment", "orderType",
    "limitPrice", "stopPrice", "signalPrice", "takeProfit", "stopLoss", "quantityType",
    "order_type", "limit_price", "stop_price", "price", "close", "account", "strategy",
    "strategy_name", "id", "idempotency_key", "alert_id", "comment", "passphrase", "commands",
    "market_position", "market_position_size", "position_size", "order_action",
    "order_contracts", "order_id", "order", "bar", "time", "timenow", "exchange", "interval",
    "extras", "test", "cancel",
]
VALUES_TEXT = [
    "AAA", "BBB", "NASDAQ:AAA", "ZZZ", "buy", "sell", "exit", "cancel", "add", "close", "flat",
    "long", "short", "target", "bullish", "bearish", "market", "limit", "stop", "stop_limit",
    "fixed_quantity", "1", "1,5", "1e400", "", " ", "{{ticker}}", "{{strategy.order.id}}",
    "paper", "other", "2024-01-02T15:30:00Z", TOKEN,
]
# Any character, lone surrogates included (and favoured): JSON may carry them as \\uXXXX
# escapes, which decode to text that is not UTF-8.
ANY_CHAR = st.characters(codec=None, categories=None) | st.characters(categories=["Cs"])
# (st.text leaves surrogates out whatever its alphabet: join the characters instead.)
ANY_TEXT = st.lists(ANY_CHAR, max_size=12).map("".join)
CONTENT_TYPES = [
    "application/json", "text/plain", "text/plain; charset=utf-8", "text/plain; charset=latin-1",
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml",
    "application/octet-stream", "", "*/*", "application/json; charset=utf-16",
]
HEADER_TEXT = st.text(st.sampled_from(string.ascii_letters + string.digits + " /;=-+.*,\"'"),
                      max_size=40).map(str.strip)


# ------------------------------------------------------------------------------ strategies


def json_values(text: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    scalars = st.one_of(
        st.none(), st.booleans(),
        st.integers(min_value=-(10**30), max_value=10**30),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(VALUES_TEXT),
        text,
    )
    keys = st.one_of(st.sampled_from(KEYS), text)
    return st.recursive(
        scalars,
        lambda children: st.one_of(st.lists(children, max_size=4),
                                   st.dictionaries(keys, children, max_size=5)),
        max_leaves=12)


@st.composite
def json_bodies(draw: st.DrawFn, deep: bool = False) -> bytes:
    """A JSON object as a person or a program might have written it (``deep``: also inside a
    field nested as deep as the size limit allows, its text without lone surrogates, so that
    the two kinds of trouble are found apart)."""
    chars = st.text(max_size=12) if deep else ANY_TEXT
    keys = st.one_of(st.sampled_from(KEYS), chars)
    data = draw(st.dictionaries(keys, json_values(chars), max_size=8))
    text = json.dumps(data, ensure_ascii=draw(st.sampled_from([True, True, False])),
                      indent=draw(st.sampled_from([None, 2, "\t"])),
                      allow_nan=True)
    # 16 KiB is room for 8,000 brackets.
    depth = draw(st.integers(1, 3000)) if deep else 0
    if depth:
        text = f'{{"nested": {"[" * depth}{text}{"]" * depth}}}'
    text = draw(st.sampled_from(["", "\ufeff"])) + text + draw(
        st.sampled_from(["", "\n", "\r\n", " ", ",", "}"]))
    if draw(st.booleans()):
        text = text.replace("\n", "\r\n")
    # A raw lone surrogate cannot be UTF-8: such a body arrives as bytes that are not text.
    return text.encode("utf-8", "surrogatepass")


@st.composite
def text_bodies(draw: st.DrawFn) -> bytes:
    """Commands, mangled seeds, or any text."""
    kind = draw(st.sampled_from(["words", "seed", "any"]))
    if kind == "words":
        parts = draw(st.lists(st.sampled_from(WORDS) | st.text(max_size=6), max_size=12))
        sep = draw(st.sampled_from([" ", "  ", ";", "\n", "\r\n", ","]))
        text = sep.join(parts)
    elif kind == "seed":
        text = draw(st.sampled_from(SEEDS))
        for _ in range(draw(st.integers(0, 3))):
            at = draw(st.integers(0, len(text)))
            cut = draw(st.integers(0, 3))
            text = text[:at] + draw(st.text(max_size=4)) + text[at + cut:]
    else:
        text = draw(st.text(max_size=200))
    return text.encode()


@st.composite
def requests(draw: st.DrawFn) -> dict[str, Any]:
    """A request: route, token, query, Content-Type, body (and whether it is chunked)."""
    body = draw(st.one_of(json_bodies(), json_bodies(deep=True), text_bodies(),
                          st.binary(max_size=200)))
    route = draw(st.sampled_from(["token", "passphrase", "random_token", "read_token"]))
    random_token = draw(st.one_of(
        st.text(max_size=70),
        st.from_regex(r"st_[0-9a-f]{16}_[A-Za-z0-9_-]{43}", fullmatch=True),
        st.sampled_from(["", " ", ".", "..", "%", "st_", "null", "{{token}}"])))
    query: dict[str, str] = {}
    if draw(st.booleans()):
        query["dry_run"] = draw(st.sampled_from(["true", "false", "1", "0", "yes", "on", "",
                                                 "maybe"]) | st.text(max_size=8))
    if draw(st.booleans()):
        query["format"] = draw(st.sampled_from(["native", "tradingview", "traderspost",
                                                "text", "", "TEXT", "mapping"])
                               | st.text(max_size=12))
    content_type = draw(st.sampled_from(CONTENT_TYPES) | HEADER_TEXT)
    return {"body": body, "route": route, "random_token": random_token, "query": query,
            "content_type": content_type, "chunked": draw(st.booleans())}


# ------------------------------------------------------------------------------ sending


def _chunks(data: bytes) -> Iterator[bytes]:
    for i in range(0, len(data), 7):
        yield data[i:i + 7]


def _send(host: Host, client: httpx.Client, read_token: str, request: dict[str, Any]
          ) -> httpx.Response:
    body: bytes = request["body"].replace(TOKEN.encode(), host.token.encode())
    route = request["route"]
    if route == "token":
        url = host.webhook
    elif route == "passphrase":
        url = f"{host.url}/webhooks/tradingview"
    elif route == "read_token":
        url = f"{host.url}/webhooks/tradingview/{read_token}"
    else:
        url = f"{host.url}/webhooks/tradingview/{quote(request['random_token'], safe='')}"
    headers = {"Content-Type": request["content_type"]} if request["content_type"] else {}
    content: bytes | Iterator[bytes] = _chunks(body) if request["chunked"] else body
    return client.post(url, content=content, headers=headers,
                       params=request["query"] or None)


@pytest.fixture
def fuzz_host(make_host: HostFactory) -> Iterator[Host]:
    """One host for a whole fuzz run, with prices for both symbols; it must still answer
    /health once the run is over."""
    host = make_host(NO_RATE_LIMIT)
    host.market.publish(100.0)
    host.market.publish(50.0, symbol="BBB")
    yield host
    r = httpx.get(f"{host.url}/health", timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "ok", r.text


def _check(host: Host, client: httpx.Client, read_token: str, request: dict[str, Any]
           ) -> None:
    r = _send(host, client, read_token, request)
    assert r.status_code < 500, (
        f"a 5xx makes TradingView resend: {r.status_code} {r.text[:500]}")
    if r.status_code in (400, 401, 403, 413, 422) and r.url.path.startswith("/webhooks/"):
        answer = r.json()
        assert answer.get("error") or answer.get("detail"), answer


_READ_TOKENS: dict[int, str] = {}


def _read_token(host: Host) -> str:
    """A token of the host without the signal scope (one per host)."""
    if id(host) not in _READ_TOKENS:
        assert host.runtime.auth is not None
        _READ_TOKENS[id(host)] = host.runtime.auth.create("paper", ("read",))[1]
    return _READ_TOKENS[id(host)]


# ------------------------------------------------------------------------------ the tests


@FUZZ
@given(body=json_bodies())
def test_no_json_body_gets_a_5xx(fuzz_host: Host, body: bytes) -> None:
    with httpx.Client(timeout=10) as client:
        _check(fuzz_host, client, "", {"body": body, "route": "token", "query": {},
                                       "content_type": "application/json", "chunked": False})


@FUZZ
@given(body=json_bodies(deep=True))
def test_no_deeply_nested_json_body_gets_a_5xx(fuzz_host: Host, body: bytes) -> None:
    with httpx.Client(timeout=10) as client:
        _check(fuzz_host, client, "", {"body": body, "route": "token", "query": {},
                                       "content_type": "application/json", "chunked": False})


@FUZZ
@given(body=text_bodies())
def test_no_text_body_gets_a_5xx(fuzz_host: Host, body: bytes) -> None:
    with httpx.Client(timeout=10) as client:
        _check(fuzz_host, client, "", {"body": body, "route": "token", "query": {},
                                       "content_type": "text/plain", "chunked": False})


@FUZZ
@given(body=st.binary(max_size=400))
def test_no_bytes_get_a_5xx(fuzz_host: Host, body: bytes) -> None:
    with httpx.Client(timeout=10) as client:
        _check(fuzz_host, client, "", {"body": body, "route": "token", "query": {},
                                       "content_type": "application/octet-stream",
                                       "chunked": False})


@FUZZ
@given(request=requests())
def test_no_request_gets_a_5xx_whatever_its_route_query_and_headers(
        fuzz_host: Host, request: dict[str, Any]) -> None:
    with httpx.Client(timeout=10) as client:
        _check(fuzz_host, client, _read_token(fuzz_host), request)
