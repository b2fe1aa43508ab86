"""Multi-leg options from alerts: templates and explicit legs, end to end.

Every test runs a real host (SQLite store, live broker, uvicorn on ``127.0.0.1:0`` with the
TradingView plugin, gRPC on ``127.0.0.1:0``) fed by the test-driven ``steps`` source; its
synthetic option chain prices every contract of AAA once AAA has a bar (from 2024-01-02 09:30,
so "30d" is the 2024-01-26 weekly and 2024-01-19 is a monthly). Orders are read back over gRPC
with the Python client, as a trader would.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandtrade.client import Client
from sandtrade.models import Order, OrderClass, OrderStatus
from sandtrade.signal_model import SignalStatus
from sandtrade.signals.replay import replay
from signals.conftest import Host, post

#: The issue's alert, in the TradersPost-like shape (``quantity``, ``limitPrice``), at market.
CONDOR: dict[str, Any] = {"ticker": "AAA", "strategy": "iron_condor", "expiry": "30d",
                          "short_delta": 0.16, "width": 5, "quantity": 1, "id": "condor-1"}
EXIT: dict[str, Any] = {"ticker": "AAA", "strategy": "iron_condor", "action": "exit"}






def _client(host: Host) -> Client:
    assert host.runtime.auth is not None and host.runtime.rpc is not None
    _, token = host.runtime.auth.create("paper", ("read",))
    return Client(host.runtime.rpc.address, token=token)


def _mleg_orders(host: Host) -> list[Order]:
    with _client(host) as client:
        return [o for o in client.list_orders() if o.order_class is OrderClass.MLEG]


def _held(host: Host) -> dict[str, float]:
    with _client(host) as client:
        return {p.symbol: p.qty for p in client.positions() if p.qty}


# ------------------------------------------------------------------ an iron condor, open and shut


def test_an_iron_condor_alert_executes_once_shows_its_legs_over_grpc_and_an_exit_closes_it(
        host: Host) -> None:
    host.market.publish(100.0)
    answer = host.send(CONDOR)

    [entry] = answer["orders"]
    assert (entry["class"], entry["side"], entry["qty"], entry["template"]) == \
        ("mleg", "open", 1.0, "iron_condor")
    legs = [(leg["side"], leg["symbol"]) for leg in entry["legs"]]
    assert [side for side, _ in legs] == ["buy", "sell", "sell", "buy"]
    assert entry["expiration"] == "2024-01-26"
    assert entry["net_price"] < 0 < entry["max_profit"] < entry["max_loss"], entry
    assert entry["max_profit"] + entry["max_loss"] == pytest.approx(500.0)  # 5 wide
    record = host.record(answer["id"])
    assert record.status is SignalStatus.EXECUTED, record.reason
    assert "max profit" in record.reason and "max loss" in record.reason

    # TradingView resends it: a duplicate, not a second condor
    again = post(host.webhook, CONDOR).json()
    assert again["duplicate"] is True and again["orders"] == [], again
    host.wait_idle()

    [order] = _mleg_orders(host)
    assert order.client_order_id == f"{answer['id']}.0"
    assert order.status is OrderStatus.FILLED, order.reject_reason
    assert [(leg.side.value, leg.symbol) for leg in order.legs or ()] == legs
    assert order.tag == f"signal {answer['id']} template:iron_condor"
    assert order.source is not None and (order.source.kind, order.source.ref) == (
        "tradingview", answer["id"]), order.source
    with _client(host) as client:
        fetched = client.get_order(order.id)
    assert [leg.symbol for leg in fetched.legs or ()] == [s for _, s in legs]
    assert _held(host) == {s: (1.0 if side == "buy" else -1.0) for side, s in legs}

    # a second alert closes the group, as one order
    closing = host.send(EXIT)
    assert closing["orders"] == [{"symbol": "AAA", "side": "close", "qty": None,
                                  "type": "market", "class": "mleg",
                                  "template": "iron_condor"}]
    assert host.record(closing["id"]).status is SignalStatus.EXECUTED
    opening, close = _mleg_orders(host)
    assert opening.id == order.id
    assert close.parent_id == order.id, "the group it closes is the opening order's"
    assert close.client_order_id == f"{closing['id']}.0"
    assert close.status is OrderStatus.FILLED, close.reject_reason
    assert sorted(leg.symbol for leg in close.legs or ()) == sorted(s for _, s in legs)
    assert _held(host) == {}

    # nothing left to close: executed, doing nothing
    nothing = host.send({**EXIT, "id": "exit-2"})
    record = host.record(nothing["id"])
    assert record.status is SignalStatus.EXECUTED
    assert record.reason == "nothing: no open iron_condor on AAA"
    assert len(_mleg_orders(host)) == 2


def test_an_exit_closes_only_its_templates_groups_on_its_underlying(host: Host) -> None:
    host.market.publish(100.0)
    host.market.publish(50.0, symbol="BBB")
    condor = host.send({**CONDOR, "id": "c-aaa"})
    other = host.send({**CONDOR, "ticker": "BBB", "id": "c-bbb"})
    straddle = host.send({"ticker": "AAA", "template": "straddle", "expiry": "monthly",
                            "contracts": 1})
    assert all(host.record(a["id"]).status is SignalStatus.EXECUTED
               for a in (condor, other, straddle))

    closing = host.send(EXIT)

    closes = [o for o in _mleg_orders(host) if o.parent_id is not None]
    opened = {o.client_order_id: o.id for o in _mleg_orders(host) if o.parent_id is None}
    assert [o.parent_id for o in closes] == [opened[f"{condor['id']}.0"]], closing
    assert any(s.startswith("BBB") for s in _held(host))
    assert sum(1 for s in _held(host) if s.startswith("AAA")) == 2  # the straddle's


# ------------------------------------------------------------------ explicit legs


def test_explicit_legs_by_occ_symbol_and_by_strike_and_right(host: Host) -> None:
    host.market.publish(100.0)
    by_symbol = host.send({"symbol": "AAA", "qty": 2, "legs": [
        {"symbol": "AAA240119C00100000", "side": "buy", "ratio": 1},
        {"symbol": "AAA  240119C00105000", "side": "sell"}]})
    by_strike = host.send(json.dumps({"ticker": "AAA", "contracts": 1, "legs": [
        {"expiry": "2024-01-19", "strike": 95, "right": "put", "side": "buy"},
        {"expiry": "2024-01-19", "strike": 90, "right": "put", "side": "sell"}]}))
    traderspost = host.send({"ticker": "AAA", "quantity": 1, "legs": [
        {"optionType": "call", "expiration": "2024-01-19", "strikePrice": 110,
         "action": "sell", "quantity": 1},
        {"optionType": "call", "expiration": "2024-01-19", "strikePrice": 115,
         "action": "buy", "quantity": 1}]})

    assert [leg["symbol"] for leg in by_symbol["orders"][0]["legs"]] == \
        ["AAA240119C00100000", "AAA240119C00105000"]
    assert by_symbol["orders"][0]["net_price"] > 0  # a debit spread
    assert by_strike["orders"][0]["max_loss"] == pytest.approx(
        by_strike["orders"][0]["net_price"] * 100)
    assert traderspost["orders"][0]["net_price"] < 0  # a credit spread
    orders = {o.client_order_id: o for o in _mleg_orders(host)}
    for answer, legs, qty in (
            (by_symbol, ["AAA240119C00100000", "AAA240119C00105000"], 2),
            (by_strike, ["AAA240119P00095000", "AAA240119P00090000"], 1),
            (traderspost, ["AAA240119C00110000", "AAA240119C00115000"], 1)):
        assert host.record(answer["id"]).status is SignalStatus.EXECUTED
        order = orders[f"{answer['id']}.0"]
        assert [leg.symbol for leg in order.legs or ()] == legs
        assert order.status is OrderStatus.FILLED and order.qty == qty
        assert order.tag == f"signal {answer['id']}", "no template: an exit does not find it"


def test_a_limit_is_a_credit_or_a_debit_as_the_spread_is_at_its_marks(host: Host) -> None:
    host.market.publish(100.0)
    out_of_reach = host.send({**CONDOR, "id": "c-1", "limitPrice": 4.0})
    signed = host.send({**CONDOR, "id": "c-2", "limitPrice": -0.05})
    paid = post(host.webhook, {**CONDOR, "id": "c-3", "limitPrice": 0.05,
                               "priceEffect": "debit"})
    wide = post(host.webhook, {**CONDOR, "id": "c-4", "limitPrice": 5.5})

    orders = {o.client_order_id: o for o in _mleg_orders(host)}
    working = orders[f"{out_of_reach['id']}.0"]
    assert working.limit_price == -4.0 and working.status is OrderStatus.ACCEPTED
    assert orders[f"{signed['id']}.0"].limit_price == -0.05
    assert orders[f"{signed['id']}.0"].status is OrderStatus.FILLED
    # paying for a condor, or a credit wider than its wings, is refused as the broker would
    assert paid.status_code == 422 and paid.json()["error"].startswith(
        "limitPrice: a net debit of 0.05 per spread is impossible"), paid.text
    assert wide.status_code == 422 and wide.json()["error"].startswith(
        "limitPrice: a net credit of 5.50 per spread is impossible"), wide.text


# ------------------------------------------------------------------ template or strategy?

LISTENER = "def on_bar(ctx, bar):\n    pass\n\n\ndef on_signal(ctx, signal):\n    pass\n"


def test_strategy_naming_a_template_trades_it_unless_a_strategy_of_the_host_has_that_name(
        host: Host) -> None:
    host.market.publish(100.0)
    traded = host.send(CONDOR)
    assert traded["destination"] == "paper:paper"
    assert host.record(traded["id"]).route_reason == \
        "strategy names the options template iron_condor"

    manager = host.runtime.strategies
    assert manager is not None
    manager.upload("paper", "iron_condor", LISTENER, symbols=["AAA"], params={})
    routed = host.send({**CONDOR, "id": "condor-2"})
    assert routed["destination"] == "strategy:paper/iron_condor"
    record = host.record(routed["id"])
    assert record.status is SignalStatus.FAILED and "not running" in record.reason

    # "template" is unambiguous: it trades the template, whatever strategies exist
    unambiguous = host.send({**CONDOR, "id": "condor-3", "strategy": None,
                               "template": "iron_condor"})
    assert unambiguous["destination"] == "paper:paper"
    clients = {o.client_order_id for o in _mleg_orders(host)}
    assert clients == {f"{traded['id']}.0", f"{unambiguous['id']}.0"}


# ------------------------------------------------------------------ refusals

LEG_C100 = {"symbol": "AAA240119C00100000", "side": "buy"}
LEG_C105 = {"symbol": "AAA240119C00105000", "side": "sell"}
REFUSED = [
    ("delta", {**CONDOR, "short_delta": 1.5},
     "short_delta: iron_condor: short_delta 1.5 must be between 0 and 1"),
    ("no-expiry", {**CONDOR, "expiry": None}, "expiry: iron_condor needs an expiry"),
    ("bad-expiry", {**CONDOR, "expiry": "soon"}, 'expiry: "soon" is not an expiry'),
    ("unlisted-expiry", {**CONDOR, "expiry": "2024-02-02"},
     "expiry: iron_condor: expiry 2024-02-02: not listed"),
    ("far-expiry", {"ticker": "AAA", "template": "calendar", "expiry": "weekly",
                    "far_expiry": "weekly", "contracts": 1},
     "far_expiry: calendar: far_expiry"),
    ("unknown-template", {"ticker": "AAA", "template": "iron_condr", "expiry": "30d",
                          "contracts": 1},
     "template: unknown options template \"iron_condr\" (did you mean 'iron_condor'?"),
    ("other-template-parameter", {**CONDOR, "short_strike": 100},
     "short_strike: iron_condor takes no short_strike"),
    ("parameter-near-miss", {**CONDOR, "short_detla": 0.2},
     "short_detla: unknown field: did you mean 'short_delta'?"),
    ("unlisted-strike", {**CONDOR, "short_delta": None, "put_short": 94.5},
     "put_short: iron_condor: put_short 94.5 is not a listed put strike"),
    ("half-a-spread", {**CONDOR, "quantity": 1.5}, "quantity: a spread trades whole spreads"),
    ("no-quantity", {**CONDOR, "quantity": None}, "contracts: a spread needs the number"),
    ("sell", {**CONDOR, "action": "sell"}, "action: \"sell\" with a spread"),
    ("exit-with-quantity", {**EXIT, "quantity": 1}, "quantity: exit closes every open group"),
    ("effect", {**CONDOR, "limitPrice": 1.0, "priceEffect": "maybe"},
     "priceEffect: \"maybe\" is neither debit nor credit"),
    ("stop", {**CONDOR, "orderType": "stop"}, "orderType: a multi-leg order is market or limit"),
    ("no-chain", {**CONDOR, "ticker": "ZZZ"}, "ticker: no option chain for ZZZ now"),
    ("one-leg", {"symbol": "AAA", "qty": 1, "legs": [LEG_C100]},
     "legs: must be a list of 2 or more legs"),
    ("leg-strike", {"symbol": "AAA", "qty": 1, "legs": [
        LEG_C100, LEG_C105, {"expiry": "2024-01-19", "strike": "abc", "right": "put",
                             "side": "buy"}]},
     'legs[2].strike: expected a number, got the text "abc"'),
    ("leg-right", {"symbol": "AAA", "qty": 1, "legs": [
        LEG_C100, {"expiry": "2024-01-19", "strike": 95, "right": "straddle", "side": "buy"}]},
     'legs[1].right: "straddle" is not call or put'),
    ("leg-selector", {"symbol": "AAA", "qty": 1, "legs": [
        LEG_C100, {"expiry": "30d", "strike": 95, "right": "put", "side": "buy"}]},
     "legs[1].expiry: \"30d\" is not a date"),
    ("leg-symbol", {"symbol": "AAA", "qty": 1, "legs": [LEG_C100, {**LEG_C105,
                                                                  "symbol": "AAA-C-105"}]},
     'legs[1].symbol: "AAA-C-105" is neither an OCC option symbol'),
    ("leg-side", {"symbol": "AAA", "qty": 1, "legs": [LEG_C100, {"symbol": LEG_C105["symbol"]}]},
     "legs[1].side: each leg says its side"),
    ("leg-field", {"symbol": "AAA", "qty": 1, "legs": [LEG_C100, {**LEG_C105, "strke": 1}]},
     "legs[1].strke: unknown field: did you mean 'strike'?"),
    ("duplicate-leg", {"symbol": "AAA", "qty": 1, "legs": [LEG_C100, {**LEG_C100,
                                                                       "side": "sell"}]},
     "legs[1].symbol: AAA240119C00100000 is also legs[0]"),
    ("other-underlying", {"symbol": "AAA", "qty": 1, "legs": [
        LEG_C100, {"symbol": "BBB240119C00105000", "side": "sell"}]},
     "legs[1].symbol: underlying BBB differs from legs[0]'s AAA"),
    ("ratios", {"symbol": "AAA", "qty": 1, "legs": [{**LEG_C100, "ratio": 2},
                                                    {**LEG_C105, "ratio": 2}]},
     "legs: ratios 2:2 are not in lowest terms"),
    ("five-legs", {"symbol": "AAA", "qty": 1, "legs": [
        {"symbol": f"AAA240119C00{k:03d}000", "side": "buy"} for k in range(100, 105)]},
     "legs: 5 legs; this host takes 2 to 4"),
    ("past-expiry", {"symbol": "AAA", "qty": 1, "legs": [
        LEG_C100, {"symbol": "AAA231215C00105000", "side": "sell"}]},
     "legs[1].expiry: 2023-12-15 has passed"),
    ("both", {**CONDOR, "legs": [LEG_C100, LEG_C105]}, "legs: give a template"),
]


@pytest.mark.parametrize(("body", "error"), [pytest.param(b, e, id=i) for i, b, e in REFUSED])
def test_a_spread_that_cannot_be_made_is_refused_with_a_4xx_naming_the_field(
        host: Host, body: dict[str, Any], error: str) -> None:
    host.market.publish(100.0)
    r = post(host.webhook, {k: v for k, v in body.items() if v is not None})

    assert r.status_code == 422, r.text
    assert error in r.json()["error"], r.json()["error"]
    host.wait_idle()
    assert host.record(r.json()["id"]).status is SignalStatus.REJECTED
    assert host.orders() == []


# ------------------------------------------------------------------ the dry run


def test_the_dry_run_explains_the_legs_and_what_the_spread_can_make_and_lose(
        host: Host) -> None:
    host.market.publish(100.0)
    r = post(host.webhook, {**CONDOR, "limitPrice": 0.5}, dry_run="true")

    assert r.status_code == 200, r.text
    text = r.json()["explanation"]
    assert "1. open 1 iron condor on AAA, expiry 30d, short_delta 0.16, width 5, limit 0.5" \
        in text, text
    assert "now: legs: buy 1 AAA240126P" in text and "; limit 0.5 credit;" in text, text
    assert "max profit $" in text and "max loss $" in text and "break-evens" in text, text
    assert host.orders() == [] and host.signals() == []


# ------------------------------------------------------------------ replay


def test_a_replay_builds_and_fills_the_spreads_as_live(host: Host) -> None:
    host.market.publish(100.0)
    opened = host.send(CONDOR)
    host.market.publish(101.0)
    host.send(EXIT)
    runtime = host.runtime
    assert runtime.source is not None and runtime.store is not None
    records = [r for _, r in runtime.store.list_signals(limit=100, oldest_first=True)]

    result = replay(records, list(host.market.published),
                    instruments=runtime.source.instruments(),
                    formats=runtime.plugins.signal_formats(), cash=runtime.settings.cash)

    assert [s.failed for s in result.signals] == [False, False], result.signals
    live = {o.parent_id is None: o for o in _mleg_orders(host)}
    replayed = {o.parent_id is None: o for o in result.orders}
    for opening in (True, False):
        assert replayed[opening].status is OrderStatus.FILLED
        assert replayed[opening].legs == live[opening].legs
        assert replayed[opening].avg_fill_price == pytest.approx(live[opening].avg_fill_price)
    assert replayed[True].client_order_id == f"{opened['id']}.0"
    assert result.positions == []
