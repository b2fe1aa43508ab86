"""What a sender is answered, over the real webhook and SignalService of a started host.

An accepted signal's answer says where it goes (``destination``, as routes write it) and has
no ``reason``: that is for what went wrong or was refused. A quantity the symbol's lot size
rules out is certain to fail, so it is refused at once (422, INVALID_ARGUMENT) naming it,
instead of a 200 and a signal that fails later. Crypto pairs spelled the usual ways
(``BTCUSD``, ``ETH-USD``) trade fractionally.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from rpc.conftest import StepSource
from sandtrade.client import Client
from sandtrade.client.client import InvalidArgument, SignalInfo
from sandtrade.hookspecs import hookimpl
from sandtrade.host.config import load_settings
from sandtrade.host.plugins import PluginHost
from sandtrade.host.runtime import HostRuntime
from sandtrade.market.sources import MarketSettings
from sandtrade.models import Account, Instrument
from signals.conftest import Host, Market, post, stop_host

HostFactory = Callable[..., Host]
NO_ROUTE = "no route matched: the account's paper broker"


# ------------------------------------------------------------------ a host that trades crypto


class PairSteps(StepSource):
    """The test-driven market of :class:`~rpc.conftest.StepSource`, with a stock and two
    crypto pairs classified the way the host's own sources classify them."""

    name = "pair-steps"
    SYMBOLS = ("AAA", "BTCUSD", "ETH-USD")

    def __init__(self, settings: MarketSettings) -> None:
        super().__init__(settings)

    def instruments(self) -> list[Instrument]:
        return [Instrument.for_symbol(s) for s in self.SYMBOLS]


class PairStepsPlugin:
    @hookimpl
    def sandtrade_market_sources(self) -> list[type[PairSteps]]:
        return [PairSteps]


@pytest.fixture
def crypto_host(tmp_path: Path) -> Iterator[Host]:
    """A host trading AAA, BTCUSD and ETH-USD; its account ``paper`` has 1,000,000."""
    settings = load_settings(data_dir=tmp_path / "data", grpc="127.0.0.1:0",
                             http="127.0.0.1:0", cash=1_000_000.0,
                             market={"source": "pair-steps", "bars_per_second": 0})
    runtime = HostRuntime(settings, plugins=PluginHost.create(extra=[PairStepsPlugin()]))
    runtime.start()
    assert runtime.auth is not None
    _, token = runtime.auth.create(settings.account, ("signal",))
    host = Host(runtime, Market(runtime), token)
    try:
        yield host
    finally:
        stop_host(host)


def _position(host: Host, symbol: str) -> float:
    assert host.runtime.live is not None
    return float(host.runtime.live.call(lambda b: b.position_qty("paper", symbol)))


def _accepted(host: Host, body: str | dict[str, Any]) -> dict[str, Any]:
    r = post(host.webhook, body)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


# ------------------------------------------------------------------ crypto spellings


def test_the_readme_alerts_trade_btcusd_fractionally(crypto_host: Host) -> None:
    host = crypto_host
    host.market.publish(60_000.0, symbol="BTCUSD")

    bought = _accepted(host, "buy 0.5 BTCUSD")
    host.wait_idle()
    host.market.publish(60_000.0, symbol="BTCUSD")
    assert _position(host, "BTCUSD") == 0.5
    sold = _accepted(host, "sell 0.5 BTCUSD limit 65000")
    host.wait_idle()
    host.market.publish(64_000.0, 66_000.0, 63_000.0, 65_500.0, symbol="BTCUSD")

    assert _position(host, "BTCUSD") == 0.0
    journal = {r.id: r for r in host.signals()}
    assert [journal[a["id"]].status.value for a in (bought, sold)] == ["executed", "executed"]
    [buy, sell] = host.orders()
    assert (buy.qty, buy.type.value, sell.qty, sell.type.value, sell.avg_fill_price) == (
        0.5, "market", 0.5, "limit", 65_000.0)


def test_tradingview_spellings_of_a_pair_reach_the_hosts_spelling(crypto_host: Host) -> None:
    """ETHUSD (Coinbase on TradingView) and BINANCE:ETHUSD are the host's ETH-USD."""
    host = crypto_host
    host.market.publish(3_000.0, symbol="ETH-USD")
    _accepted(host, "buy 0.25 ETHUSD")
    _accepted(host, {"ticker": "BINANCE:ETHUSD", "action": "buy", "contracts": 0.125})
    host.wait_idle()
    host.market.publish(3_000.0, symbol="ETH-USD")

    assert _position(host, "ETH-USD") == 0.375
    assert [o.symbol for o in host.orders()] == ["ETH-USD", "ETH-USD"]


# ------------------------------------------------------------------ refused at once


@pytest.mark.parametrize(("body", "error"), [
    ("buy 0.5 AAA", "qty: quantity 0.5 is below AAA's lot size 1 (it trades in whole units)"),
    ('{"ticker": "AAA", "action": "buy", "contracts": 0.0000000001}',
     "qty: quantity 1e-10 is below AAA's lot size 1 (it trades in whole units)"),
    ("sell 1.5 AAA limit 100",
     "qty: quantity 1.5 is not a whole number of AAA's lot size 1 (nearest below: 1.0)"),
    ('{"ticker": "AAA", "market_position": "long", "position_size": 2.5}',
     "qty: quantity 2.5 is not a whole number of AAA's lot size 1 (nearest below: 2.0)"),
    ("close AAA; buy 0.5 AAA",
     "qty: quantity 0.5 is below AAA's lot size 1 (it trades in whole units) in "
     "'buy 0.5 AAA at market'"),
    ("buy 0.000000001 BTCUSD",
     "qty: quantity 1e-09 is below BTCUSD's lot size 1e-08 (the smallest quantity it trades "
     "in)"),
], ids=["below_a_share", "tradingview_dust", "half_a_share", "target", "second_command",
        "below_a_satoshi"])
def test_a_quantity_the_lot_size_rules_out_is_a_422_naming_it(crypto_host: Host, body: str,
                                                               error: str) -> None:
    host = crypto_host
    host.market.publish(100.0)

    r = post(host.webhook, body)

    assert r.status_code == 422, r.text
    assert r.json()["error"] == error
    [journaled] = host.signals()
    assert journaled.status.value == "rejected" and r.json()["id"] == journaled.id
    assert journaled.reason == error
    host.wait_idle()
    assert host.orders() == []


def test_a_dry_run_says_the_same(crypto_host: Host) -> None:
    r = post(crypto_host.webhook, "buy 0.5 AAA", dry_run="true")
    assert r.status_code == 422, r.text
    assert "rejected: qty: quantity 0.5 is below AAA's lot size 1" in r.json()["explanation"]
    assert crypto_host.signals() == []


def test_a_target_of_zero_and_whole_quantities_are_accepted(crypto_host: Host) -> None:
    host = crypto_host
    host.market.publish(100.0)
    for body in ("buy 2 AAA", "flat AAA", "long 3 AAA", "buy 0.00000001 BTCUSD"):
        assert post(host.webhook, body).status_code == 200, body


def test_only_signals_for_a_paper_account_are_held_to_its_lot_sizes(
        make_host: HostFactory) -> None:
    host = make_host('[[signals.routes]]\nsymbol = "AAA"\nto = "drop"\n')
    answer = _accepted(host, "buy 0.5 AAA")
    assert (answer["status"], answer["destination"]) == ("validated", "drop")


def test_grpc_refuses_such_a_quantity_as_invalid_argument(crypto_host: Host) -> None:
    host = crypto_host
    assert host.runtime.rpc is not None
    with Client(host.runtime.rpc.address, token=host.token) as client, \
            pytest.raises(InvalidArgument) as err:
        client.send_signal({"symbol": "AAA", "action": "buy", "qty": 0.5})
    assert err.value.code is grpc.StatusCode.INVALID_ARGUMENT
    assert "quantity 0.5 is below AAA's lot size 1" in err.value.message


# ------------------------------------------------------------------ what an answer says


def test_an_accepted_alert_says_where_it_goes_and_gives_no_reason(host: Host) -> None:
    host.market.publish(100.0)

    answer = _accepted(host, "buy 1 AAA")

    assert answer == {"id": answer["id"], "status": "validated", "destination": "paper:paper",
                      "duplicate": False, "reason": "", "ignored_fields": [],
                      "price_source": "feed",
                      "orders": [{"symbol": "AAA", "side": "buy", "qty": 1.0,
                                  "type": "market", "class": "simple"}]}
    host.wait_idle()
    [journaled] = host.signals()
    assert journaled.status.value == "executed" and journaled.destination == "paper:paper"
    assert "buy 1 AAA market" in journaled.reason, "once executed: what it did"
    assert [(s.status.value, s.reason) for s in journaled.history[:2]] == [
        ("received", ""), ("validated", NO_ROUTE)], "how it was routed stays in its life"


def test_a_dry_run_says_where_it_would_go_and_why(host: Host) -> None:
    r = post(host.webhook, "buy 1 AAA", dry_run="true")
    answer = r.json()
    assert (answer["destination"], answer["reason"]) == ("paper:paper", "")
    assert f"destination: paper:paper ({NO_ROUTE})" in answer["explanation"]


def test_the_answer_names_the_routes_destination(make_host: HostFactory) -> None:
    host = make_host('[[signals.routes]]\nsymbol = "AAA"\nto = "paper:other"\n'
                     '[[signals.routes]]\nsymbol = "BBB"\nto = "drop"\n')
    assert host.runtime.store is not None
    host.runtime.store.create_account(Account(id="other", cash=1_000, initial_cash=1_000))
    host.market.publish(10.0)

    to_other, dropped = _accepted(host, "buy 1 AAA"), _accepted(host, "buy 1 BBB")

    assert (to_other["destination"], to_other["reason"]) == ("paper:other", "")
    assert (dropped["destination"], dropped["status"]) == ("drop", "validated")
    host.wait_idle()
    journal = {r.id: r for r in host.signals()}
    assert journal[dropped["id"]].status.value == "dropped"
    assert journal[dropped["id"]].reason == "dropped by route 2 (drop)"


def test_signalservice_and_the_client_give_the_destination_and_no_reason(host: Host) -> None:
    assert host.runtime.rpc is not None
    host.market.publish(100.0)
    with Client(host.runtime.rpc.address, token=host.token) as client:
        info = client.send_signal("buy 1 AAA")
        assert isinstance(info, SignalInfo)
        assert (info.status, info.destination, info.reason) == ("validated", "paper:paper", "")
        host.wait_idle()
        assert host.runtime.auth is not None
        _, reader = host.runtime.auth.create("paper", ("read",))
    with Client(host.runtime.rpc.address, token=reader) as client:
        done = client.get_signal(info.id)
        [listed] = client.list_signals()
    assert done.status == "executed" and "buy 1 AAA market" in done.reason
    assert done.history[1][0] == "validated" and done.history[1][2] == NO_ROUTE
    assert (listed.id, listed.destination, listed.reason) == (info.id, "paper:paper",
                                                                done.reason)
