"""How big an alert's orders are, through the real webhook of a started host.

An alert that names no quantity gets ``[signals] default_quantity`` (or its route's): a
number of units, a dollar amount or a share of equity; with none set it is refused naming
the setting. TradersPost's ``quantityType`` sizes an order when it runs, against the account
and the price at that moment, in whole shares; a size that rounds to nothing is a failure
naming the computation. Fields no format reads are listed, not fatal, unless
``[signals] strict = true``. Take profit, stop loss and trailing stops are read, and refused
until the broker has its order classes, with that reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

from signals.conftest import Host, post

HostFactory = Callable[..., Host]


def _executed(host: Host, body: str | dict[str, Any]) -> Any:
    """Send ``body``, wait for it to execute; the journaled record."""
    r = post(host.webhook, body)
    assert r.status_code == 200, r.text
    host.wait_idle()
    [record] = [s for s in host.signals() if s.id == r.json()["id"]]
    return record


def _orders(host: Host, record: Any) -> list[str]:
    orders = {o.id: o for o in host.orders()}
    return [f"{orders[i].side.value} {orders[i].qty:g} {orders[i].symbol}"
            for i in record.orders]


def test_an_alert_without_a_quantity_and_no_default_is_refused_naming_the_setting(
        host: Host) -> None:
    r = post(host.webhook, {"ticker": "AAA", "action": "buy"})

    assert r.status_code == 422, r.text
    assert r.json()["error"] == (
        "contracts: buy needs a quantity: the alert names none and no default size is set "
        "(add 'contracts' to the alert, or set [signals] default_quantity, e.g. \"10\", "
        "\"$1000\" or \"5%\")")


def test_the_default_quantity_sizes_an_alert_that_names_none(make_host: HostFactory) -> None:
    host = make_host('[signals]\ndefault_quantity = "7"\n')
    host.market.publish(100.0)

    record = _executed(host, "buy | AAA@100.5 | Long")  # rfwarn/TradingView-Alpaca-Bridge

    assert record.status.value == "executed", record.reason
    assert _orders(host, record) == ["buy 7 AAA"]


def test_a_routes_default_quantity_wins_over_the_global_one(make_host: HostFactory) -> None:
    host = make_host('[signals]\ndefault_quantity = "7"\n'
                     '[[signals.routes]]\nsymbol = "BBB"\nto = "paper"\n'
                     'default_quantity = "$1000"\n')
    host.market.publish(100.0, symbol="AAA")
    host.market.publish(30.0, symbol="BBB")

    bbb = _executed(host, {"ticker": "BBB", "action": "buy"})
    aaa = _executed(host, {"ticker": "AAA", "action": "buy"})

    assert _orders(host, bbb) == ["buy 33 BBB"]  # $1000 at 30: 33.3, whole shares
    assert _orders(host, aaa) == ["buy 7 AAA"]


def test_a_percent_of_equity_default_is_sized_against_the_account(
        make_host: HostFactory) -> None:
    host = make_host('[signals]\ndefault_quantity = "5%"\n')
    host.market.publish(100.0)

    equity = host.runtime.settings.cash  # nothing held yet

    record = _executed(host, "long AAA")

    assert _orders(host, record) == [f"buy {int(equity * 0.05 / 100)} AAA"]  # 5 % of it


def test_traderspost_quantity_types_are_sized_when_the_order_runs(host: Host) -> None:
    host.market.publish(100.0)
    # https://docs.traderspost.io/docs/core-concepts/webhooks#quantity-type
    dollars = _executed(host, {"ticker": "AAA", "action": "buy",
                               "quantityType": "dollar_amount", "quantity": 1000})
    host.market.publish(100.0)
    half = _executed(host, {"ticker": "AAA", "action": "sell", "sentiment": "bearish",
                            "quantityType": "percent_of_position", "quantity": 50})

    assert _orders(host, dollars) == ["buy 10 AAA"]
    # a percent of the position trades that position: half of the long is sold
    assert _orders(host, half) == ["sell 5 AAA"]


def test_a_size_that_rounds_to_zero_fails_naming_the_computation(host: Host) -> None:
    host.market.publish(187.42)

    record = _executed(host, {"ticker": "AAA", "action": "buy",
                              "quantityType": "dollar_amount", "quantity": 50})

    assert record.status.value == "failed"
    assert record.reason == ("quantity: dollar_amount 50 at 187.42 is 0.27 shares, which "
                             "rounds to 0 whole shares")
    assert record.orders == []


def test_a_dry_run_shows_the_size_it_would_compute_now(host: Host) -> None:
    host.market.publish(187.42)

    r = post(host.webhook, {"ticker": "AAA", "action": "buy", "quantityType": "dollar_amount",
                            "quantity": 50}, dry_run="true")

    assert r.status_code == 200, r.text
    assert "now: dollar_amount 50 at 187.42 is 0.27 shares" in \
        r.json()["explanation"]


def test_extra_fields_are_ignored_listed_and_answered(host: Host) -> None:
    host.market.publish(100.0)
    body = {"ticker": "AAA", "action": "buy", "contracts": 2, "confidence": 0.8,
            "Time": "2024-01-02T15:30:00Z", "comments": "breakout", "strategy_name": "sma"}

    r = post(host.webhook, body)

    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["ignored_fields"] == ["confidence", "Time", "comments", "strategy_name"]
    assert answer["orders"] == [{"symbol": "AAA", "side": "buy", "qty": 2.0, "type": "market",
                                 "class": "simple"}]
    host.wait_idle()
    [record] = host.signals()
    assert record.parsed["ignored_fields"] == ["confidence", "Time", "comments",
                                               "strategy_name"]
    assert record.status.value == "executed"


def test_strict_refuses_fields_no_format_reads(make_host: HostFactory) -> None:
    host = make_host("[signals]\nstrict = true\n")

    r = post(host.webhook, {"ticker": "AAA", "action": "buy", "contracts": 2,
                            "confidence": 0.8})

    assert r.status_code == 422, r.text
    assert r.json()["error"] == ("confidence: unknown field: tradingview does not read it, "
                                 "and [signals] strict = true refuses what is not read")


def test_a_near_miss_of_a_field_is_refused_with_did_you_mean(host: Host) -> None:
    r = post(host.webhook, {"ticker": "AAA", "action": "buy", "quantitty": 2})

    assert r.status_code == 422, r.text
    assert r.json()["error"] == "quantitty: unknown field: did you mean 'quantity'?"


def test_a_traderspost_bracket_enters_then_exits_once(host: Host) -> None:
    """TradersPost's take profit and stop loss objects make a bracket: the entry fills on
    the next bar, its two exits work from then on, sized to the fill, and the take profit
    filling cancels the stop loss in the same commit."""
    # https://docs.traderspost.io/docs/core-concepts/webhooks#take-profit-and-stop-loss
    host.market.publish(100.0)
    body = {"ticker": "AAA", "action": "buy", "quantity": 1,
            "takeProfit": {"limitPrice": 119.99}, "stopLoss": {"type": "stop",
                                                               "stopPrice": 90.71}}
    record = _executed(host, body)

    assert record.status.value == "executed", record.reason
    [entry_id] = record.orders
    entry = next(o for o in host.orders() if o.id == entry_id)
    assert (entry.order_class.value, entry.take_profit.price, entry.stop_loss.price) == (
        "bracket", 119.99, 90.71)
    host.market.publish(101.0)  # the entry fills at this bar's open
    host.wait_idle()
    exits = {o.type.value: o for o in host.orders() if o.parent_id == entry_id}
    assert set(exits) == {"limit", "stop"}, host.orders()
    assert (exits["limit"].limit_price, exits["stop"].stop_price) == (119.99, 90.71)
    assert all(o.qty == 1 and o.status.value in ("accepted", "new") for o in exits.values())

    host.market.publish(121.0)  # through the take profit
    host.wait_idle()
    after = {o.id: o for o in host.orders()}
    assert after[exits["limit"].id].status.value == "filled"
    assert after[exits["stop"].id].status.value == "canceled"


def test_a_time_in_force_reaches_the_order(host: Host) -> None:
    host.market.publish(100.0)

    record = _executed(host, {"ticker": "AAA", "action": "buy", "quantity": 1,
                              "orderType": "limit", "limitPrice": 99, "timeInForce": "day"})

    [order] = [o for o in host.orders() if o.id in record.orders]
    assert order.tif.value == "day"


def test_signals_show_lists_the_ignored_fields(host: Host) -> None:
    host.market.publish(100.0)
    r = post(host.webhook, {"ticker": "AAA", "action": "buy", "contracts": 1,
                            "confidence": 0.8, "Time": "2024-01-02T15:30:00Z"})
    assert r.status_code == 200, r.text
    host.wait_idle()
    assert host.runtime.auth is not None
    _, reader = host.runtime.auth.create("paper", ("read",))
    assert host.runtime.rpc is not None
    cli = [sys.executable, "-m", "sandtrade.cli", "signals", "show", r.json()["id"],
           "--grpc", host.runtime.rpc.address, "--token", reader]

    text = subprocess.run(cli, capture_output=True, text=True, timeout=60, check=True).stdout
    as_json = json.loads(subprocess.run([*cli, "--json"], capture_output=True, text=True,
                                        timeout=60, check=True).stdout)

    assert "ignored (no format reads them): confidence, Time" in text
    assert as_json["ignored_fields"] == ["confidence", "Time"]
