"""The signal pipeline on a real host: execution order, targets, routing, live brokers,
strategies, duplicates and recovery after a restart.

It is one file because its tests drive the pipeline from outside, through gRPC and the
webhook of one kind of real host, and share the helpers below (a client, sending, reading a
signal's record, orders and positions back); they follow a signal's way (order, targets,
routing, destinations, restarts, duplicates, recovery) rather than the modules that carry it.

Signals go in through the gRPC client (every call carries an idempotency key, so nothing is
taken for a TradingView resend) or the webhook; what they did is read back from the journal
(``host.signals()``), the orders in the store and the paper broker's positions.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import pytest

from rpc.conftest import StepsPlugin
from sandtrade.client import Client
from sandtrade.client.client import InvalidArgument, ResourceExhausted, SignalInfo
from sandtrade.errors import SandtradeError, StoreError
from sandtrade.hookspecs import hookimpl
from sandtrade.host.config import load_settings
from sandtrade.host.plugins import PluginHost
from sandtrade.host.runtime import HostRuntime, open_host_store
from sandtrade.models import Account
from sandtrade.signal_model import Command, SignalRecord, SignalStatus
from sandtrade.signals.destinations import LiveBrokerAdapter
from signals.conftest import Host, Market, post, stop_host

HostFactory = Callable[..., Host]


# ------------------------------------------------------------------ helpers


def client(host: Host, token: str | None = None) -> Client:
    """A gRPC client of ``host`` with its signal token (or ``token``)."""
    assert host.runtime.rpc is not None
    return Client(host.runtime.rpc.address, token=token or host.token, retry_for=1.0)


def send(host: Host, *bodies: str | dict[str, Any], token: str | None = None
         ) -> list[SignalInfo]:
    """Send each body through the gRPC client, then wait until all are executed."""
    with client(host, token) as c:
        answers = []
        for body in bodies:
            info = c.send_signal(body)
            assert isinstance(info, SignalInfo)
            answers.append(info)
    host.wait_idle()
    return answers


def record(host: Host, signal_id: str) -> SignalRecord:
    """A signal as the journal holds it now."""
    assert host.runtime.store is not None
    found = host.runtime.store.get_signal(signal_id)
    assert found is not None, f"signal {signal_id} is not in the journal"
    return found


def position(host: Host, symbol: str = "AAA", account: str = "paper") -> float:
    assert host.runtime.live is not None
    return host.runtime.live.call(lambda b: b.position_qty(account, symbol))


def orders_of(host: Host, signal_id: str, account: str = "paper") -> list[Any]:
    """The orders a signal placed, in creation order."""
    return [o for o in host.orders(account)
            if (o.client_order_id or "").startswith(f"{signal_id}.")]


def trades(orders: Sequence[Any]) -> list[tuple[str, str, float, str]]:
    """(client order id suffix, side, qty, symbol) of each order."""
    return [(o.client_order_id.rsplit(".", 1)[1], o.side.value, o.qty, o.symbol)
            for o in orders]


def create_account(host: Host, account: str, cash: float = 10_000.0) -> None:
    assert host.runtime.store is not None
    host.runtime.store.create_account(Account(id=account, cash=cash, initial_cash=cash))


def signal_token(host: Host, account: str) -> str:
    assert host.runtime.auth is not None
    _, token = host.runtime.auth.create(account, ("signal",))
    return token


def routes(*rules: dict[str, str], extra: str = "") -> str:
    """TOML text of ``[[signals.routes]]`` tables (and ``extra`` lines of ``[signals]``)."""
    text = f"[signals]\n{extra}\n"
    for rule in rules:
        text += "[[signals.routes]]\n" + "".join(f'{k} = "{v}"\n' for k, v in rule.items())
    return text


# ------------------------------------------------------------------ order of execution


def test_concurrent_signals_execute_one_at_a_time_in_journal_order(host: Host) -> None:
    """50 targets sent at once from 5 threads: each is computed against the position the one
    journaled before it left (working orders counted), so the orders are exactly the steps
    between consecutive targets in journal order, and each signal's orders come before the
    next signal's."""
    host.market.publish(100.0)
    targets = list(range(1, 51))
    errors: list[BaseException] = []

    def sender(mine: list[int]) -> None:
        try:
            with client(host) as c:
                for t in mine:
                    c.send_signal(f"target {t} AAA")
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=sender, args=(targets[k::5],)) for k in range(5)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert not errors, errors
    host.wait_idle()

    journal = host.signals()
    assert len(journal) == 50
    assert all(r.status is SignalStatus.EXECUTED for r in journal), \
        [(r.id, r.status, r.reason) for r in journal if r.status is not SignalStatus.EXECUTED]
    journaled_targets = [r.commands[0].qty for r in journal]
    assert sorted(journaled_targets) == targets

    orders = host.orders()
    assert [o.client_order_id for o in orders] == [f"{r.id}.0" for r in journal], \
        "orders were created in journal order, one signal at a time"
    before = 0.0
    for r, o in zip(journal, orders, strict=True):
        step = r.commands[0].qty - before
        assert (o.side.value, o.qty) == ("buy" if step > 0 else "sell", abs(step)), \
            f"{r.id} (target {r.commands[0].qty}) placed {o.side.value} {o.qty}"
        before = r.commands[0].qty
    host.market.publish(101.0)
    assert position(host) == journal[-1].commands[0].qty


def test_each_account_has_its_own_lane(host: Host) -> None:
    """Signals for two accounts interleaved: each account's signals run in its own lane, in
    that account's journal order."""
    create_account(host, "other")
    other = signal_token(host, "other")
    host.market.publish(100.0)
    with client(host) as mine, client(host, other) as theirs:
        for k in range(10):
            mine.send_signal(f"target {k + 1} AAA")
            theirs.send_signal(f"target {-(k + 1)} AAA")
    host.wait_idle()
    assert host.runtime.signals is not None
    assert set(host.runtime.signals.health()["lanes"]) == {"paper:paper", "paper:other"}
    journal = host.signals()
    for account, side in (("paper", "buy"), ("other", "sell")):
        own = [r for r in journal if r.account == account]
        assert len(own) == 10 and {r.destination for r in own} == {f"paper:{account}"}
        assert all(r.status is SignalStatus.EXECUTED for r in own)
        orders = host.orders(account)
        assert [o.client_order_id for o in orders] == [f"{r.id}.0" for r in own]
        assert [(o.side.value, o.qty) for o in orders] == [(side, 1.0)] * 10
    host.market.publish(101.0)
    assert (position(host), position(host, account="other")) == (10.0, -10.0)


# ------------------------------------------------------------------ targets


def test_reversal_places_close_then_open_in_one_step(host: Host) -> None:
    host.market.publish(100.0)
    [long5] = send(host, "long 5 AAA")
    host.market.publish(101.0)
    assert position(host) == 5.0
    assert record(host, long5.id).status is SignalStatus.EXECUTED

    [short3] = send(host, "short 3 AAA")
    rec = record(host, short3.id)
    assert rec.status is SignalStatus.EXECUTED, rec.reason
    placed = orders_of(host, short3.id)
    assert trades(placed) == [("0", "sell", 5.0, "AAA"), ("1", "sell", 3.0, "AAA")]
    assert rec.orders == [o.id for o in placed]
    assert "close the long" in rec.reason and "open the short" in rec.reason, rec.reason
    host.market.publish(102.0)
    assert position(host) == -3.0


def test_a_signal_executed_in_its_journal_commit_is_stored_as_it_ended(host: Host) -> None:
    """The journal encodes what a sender wrote before execution and what execution wrote
    after it: the stored record holds both, as the signal ended."""
    body = ('{"symbol": "ZZZ", "action": "buy", "qty": 2, "price": 50.5, '
            '"comment": "caf\u00e9 \\"quoted\\"", "id": "whole-record"}')
    r = post(host.webhook, body)
    assert r.status_code == 200, r.text
    host.wait_idle()
    rec = record(host, r.json()["id"])
    assert rec.status is SignalStatus.EXECUTED, rec.reason
    assert rec.raw_body == body
    assert rec.parsed is not None and rec.parsed["comment"] == 'caf\u00e9 "quoted"'
    assert rec.destination == "paper:paper" and rec.account == "paper"
    assert rec.price_source == "signal" and rec.market_position is not None
    placed = orders_of(host, rec.id)
    assert [(o.side.value, o.qty, o.symbol) for o in placed] == [("buy", 2.0, "ZZZ")]
    assert rec.orders == [o.id for o in placed]
    assert "filled 2 at" in rec.reason, rec.reason
    assert [s.status for s in rec.history] == [
        SignalStatus.RECEIVED, SignalStatus.VALIDATED, SignalStatus.ROUTED,
        SignalStatus.EXECUTED]


@pytest.mark.parametrize("body", [
    "buy 2 AAA",
    '{"symbol": "AAA", "action": "sell", "qty": 1, "price": 101.5, "tif": "day"}',
    '{"ticker": "AAA", "action": "buy", "sentiment": "bullish", "quantity": 3, '
    '"signalPrice": 100, "takeProfit": {"limitPrice": 110}, "stopLoss": {"stopPrice": 90}}',
    '{"ticker": "AAA", "action": "buy", "quantityType": "dollar_amount", "quantity": 500, '
    '"signalPrice": 100}',
    '{"commands": [{"symbol": "AAA", "action": "sell", "qty": 1, "only_if": "long"}, '
    '{"symbol": "AAA", "action": "buy", "qty": 1, "order_type": "limit", '
    '"limit_price": 99.5}]}',
])
def test_the_commands_a_signal_was_read_as_are_the_ones_journaled(host: Host, body: str
                                                                   ) -> None:
    """A record keeps the commands it was read as (executing it does not validate them
    again): they are the ones its journaled ``parsed`` gives back."""
    assert host.runtime.signals is not None
    host.market.publish(100.0)
    rec = host.runtime.signals.check(body, source="tradingview").record
    assert rec.status is SignalStatus.VALIDATED, rec.reason
    kept = rec.commands
    journaled = SignalRecord.model_validate_json(rec.model_dump_json()).commands
    assert kept and kept == journaled


def test_two_targets_before_the_next_bar_trade_once(host: Host) -> None:
    """The working market order of the first "long 5" counts: the second has nothing to do."""
    host.market.publish(100.0)
    first, second = send(host, "long 5 AAA", "long 5 AAA")
    assert trades(orders_of(host, first.id)) == [("0", "buy", 5.0, "AAA")]
    assert orders_of(host, second.id) == []
    rec = record(host, second.id)
    assert rec.status is SignalStatus.EXECUTED
    assert "nothing" in rec.reason and "already 5" in rec.reason, rec.reason
    host.market.publish(101.0)
    assert position(host) == 5.0
    # once filled, a close sells what is held
    [close] = send(host, "close AAA")
    assert trades(orders_of(host, close.id)) == [("0", "sell", 5.0, "AAA")]
    host.market.publish(102.0)
    assert position(host) == 0.0


def test_several_commands_in_one_alert_execute_in_order(host: Host) -> None:
    host.market.publish(100.0, symbol="AAA")
    host.market.publish(50.0, symbol="BBB")
    send(host, "buy 3 AAA")
    host.market.publish(100.0, symbol="AAA")
    assert position(host) == 3.0

    [text] = send(host, "close AAA; long 2 BBB")
    assert record(host, text.id).status is SignalStatus.EXECUTED
    assert trades(orders_of(host, text.id)) == [("0", "sell", 3.0, "AAA"),
                                                ("1", "buy", 2.0, "BBB")]

    [native] = send(host, {"commands": [{"symbol": "BBB", "action": "sell", "qty": 1},
                                        {"symbol": "AAA", "action": "buy", "qty": 4},
                                        {"symbol": "BBB", "action": "long", "qty": 3}]})
    rec = record(host, native.id)
    assert rec.status is SignalStatus.EXECUTED, rec.reason
    # the third command sees the first: BBB will be 2 - 1 = 1, so "long 3" buys 2
    assert trades(orders_of(host, native.id)) == [("0", "sell", 1.0, "BBB"),
                                                  ("1", "buy", 4.0, "AAA"),
                                                  ("2", "buy", 2.0, "BBB")]
    host.market.publish(101.0, symbol="AAA")
    host.market.publish(51.0, symbol="BBB")
    assert (position(host, "AAA"), position(host, "BBB")) == (4.0, 3.0)


def test_cancel_cancels_the_symbols_working_orders_only(host: Host) -> None:
    host.market.publish(100.0, symbol="AAA")
    host.market.publish(50.0, symbol="BBB")
    [limits] = send(host, "buy 1 AAA limit 90; buy 2 AAA limit 91; buy 1 BBB limit 45")
    [cancel] = send(host, "cancel AAA")
    rec = record(host, cancel.id)
    assert rec.status is SignalStatus.EXECUTED and "cancel 2 working orders" in rec.reason
    assert [(o.symbol, o.status.value) for o in orders_of(host, limits.id)] == [
        ("AAA", "canceled"), ("AAA", "canceled"), ("BBB", "accepted")]
    [again] = send(host, "cancel AAA; long 1 AAA")
    assert "cancel 0 working orders" in record(host, again.id).reason
    assert trades(orders_of(host, again.id)) == [("0", "buy", 1.0, "AAA")]


def test_traderspost_buy_while_short_closes_the_short_first(host: Host) -> None:
    host.market.publish(100.0)
    send(host, "short 2 AAA")
    host.market.publish(100.0)
    assert position(host) == -2.0
    [buy] = send(host, {"ticker": "AAA", "action": "buy", "sentiment": "bullish",
                        "quantity": 1})
    rec = record(host, buy.id)
    assert rec.format == "traderspost" and rec.status is SignalStatus.EXECUTED, rec.reason
    assert trades(orders_of(host, buy.id)) == [("0", "buy", 2.0, "AAA"),
                                               ("1", "buy", 1.0, "AAA")]
    host.market.publish(101.0)
    assert position(host) == 1.0


def test_traderspost_flat_without_a_position_does_nothing(host: Host) -> None:
    host.market.publish(100.0)
    [flat] = send(host, {"ticker": "AAA", "action": "buy", "sentiment": "flat"})
    rec = record(host, flat.id)
    assert rec.status is SignalStatus.EXECUTED
    assert rec.reason.startswith("nothing"), rec.reason
    assert rec.orders == [] and host.orders() == []


def test_a_rejected_order_fails_the_signal_with_the_brokers_reason(host: Host) -> None:
    host.market.publish(100.0)
    [big] = send(host, "buy 1000000 AAA")
    rec = record(host, big.id)
    assert rec.status is SignalStatus.FAILED
    [order] = orders_of(host, big.id)
    assert order.status.value == "rejected" and order.reject_reason
    assert "was rejected" in rec.reason and order.reject_reason in rec.reason, rec.reason
    assert rec.orders == [order.id]


def test_a_rejected_order_stops_the_signals_later_commands(host: Host) -> None:
    host.market.publish(100.0)
    [sig] = send(host, "buy 1 AAA; buy 1000000 AAA; buy 2 AAA")
    rec = record(host, sig.id)
    assert rec.status is SignalStatus.FAILED
    placed = orders_of(host, sig.id)
    assert [(o.client_order_id.rsplit(".", 1)[1], o.status.value) for o in placed] == [
        ("0", "accepted"), ("1", "rejected")], "the third command was not carried out"
    assert "placed before" in rec.reason and placed[0].id in rec.reason, rec.reason


def test_a_failed_commit_stores_neither_the_signal_nor_its_orders(
        host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    """A paper signal whose lane is free executes in its own journal commit: when that commit
    fails, the sender is told nothing was accepted (a 503, which TradingView resends), and
    neither the signal nor any order of it exists (nor fills later); the resend executes
    once."""
    store = host.runtime.store
    assert store is not None
    host.market.publish(100.0)
    real = store.commit_many
    tried: list[SignalStatus] = []

    def failing(changes: Any, state: Any, signals: Sequence[SignalRecord] = (),
                new_signals: Sequence[Any] = ()) -> None:
        if new_signals:  # the signal's journal entry, with its execution
            tried.extend(e.record.status for e in new_signals)
            raise StoreError("disk full (injected by the test)")
        real(changes, state, signals, new_signals)

    monkeypatch.setattr(store, "commit_many", failing)
    body = "buy 2 AAA id=disk-full-1"
    r = post(host.webhook, body)
    monkeypatch.setattr(store, "commit_many", real)
    assert r.status_code == 503 and "disk full" in r.json()["error"], r.text
    assert SignalStatus.EXECUTED in tried, "the journal entry carried its execution"
    assert host.signals() == [] and host.orders() == []
    host.market.publish(101.0)
    assert position(host) == 0.0 and host.orders() == []
    answer = host.send(body)
    assert record(host, answer["id"]).status is SignalStatus.EXECUTED
    [order] = host.orders()
    assert order.client_order_id == f"{answer['id']}.0" and order.qty == 2


# ------------------------------------------------------------------ routing


def test_drop_route_by_alert_id(make_host: HostFactory) -> None:
    host = make_host(routes({"alert": "test-*", "to": "drop"}))
    host.market.publish(100.0)
    dropped, kept = send(host, "buy 1 AAA id=test-1", "buy 1 AAA id=live-1")
    rec = record(host, dropped.id)
    assert rec.status is SignalStatus.DROPPED and rec.destination == "drop"
    assert "route 1" in rec.reason, rec.reason
    assert orders_of(host, dropped.id) == []
    assert record(host, kept.id).status is SignalStatus.EXECUTED
    assert record(host, kept.id).destination == "paper:paper"
    assert len(orders_of(host, kept.id)) == 1


def test_route_by_symbol_to_another_paper_account(make_host: HostFactory) -> None:
    host = make_host(routes({"symbol": "B*", "to": "paper:other"}))
    create_account(host, "other", 1000.0)
    host.market.publish(100.0, symbol="AAA")
    host.market.publish(10.0, symbol="BBB")
    bbb, aaa = send(host, "buy 2 BBB", "buy 1 AAA")
    assert record(host, bbb.id).destination == "paper:other"
    assert record(host, bbb.id).status is SignalStatus.EXECUTED
    assert record(host, bbb.id).account == "paper", "the sender's account is kept"
    assert trades(orders_of(host, bbb.id, "other")) == [("0", "buy", 2.0, "BBB")]
    assert orders_of(host, bbb.id, "paper") == []
    assert record(host, aaa.id).destination == "paper:paper"
    assert len(orders_of(host, aaa.id, "paper")) == 1
    host.market.publish(10.0, symbol="BBB")
    assert position(host, "BBB", "other") == 2.0 and position(host, "BBB") == 0.0


def test_first_matching_route_wins(make_host: HostFactory) -> None:
    host = make_host(routes({"symbol": "AAA", "to": "drop"},
                            {"source": "python", "to": "paper:other"},
                            {"symbol": "*", "to": "paper"}))
    create_account(host, "other")
    host.market.publish(100.0, symbol="AAA")
    host.market.publish(10.0, symbol="BBB")
    aaa, bbb = send(host, "buy 1 AAA", "buy 1 BBB")
    assert record(host, aaa.id).status is SignalStatus.DROPPED
    assert record(host, bbb.id).destination == "paper:other"
    assert "route 2" in record(host, bbb.id).history[1].reason


def test_route_by_source(make_host: HostFactory) -> None:
    host = make_host(routes({"source": "tradingview", "to": "drop"}))
    host.market.publish(100.0)
    r = post(host.webhook, "buy 1 AAA")
    assert r.status_code == 200, r.text
    [by_grpc] = send(host, "buy 1 AAA")
    [by_webhook] = [s for s in host.signals() if s.id == r.json()["id"]]
    assert by_webhook.source == "tradingview"
    assert by_webhook.status is SignalStatus.DROPPED
    assert record(host, by_grpc.id).status is SignalStatus.EXECUTED
    assert [o.client_order_id for o in host.orders()] == [f"{by_grpc.id}.0"]


def test_route_to_a_missing_paper_account_is_rejected_naming_it(make_host: HostFactory
                                                                ) -> None:
    host = make_host(routes({"symbol": "AAA", "to": "paper:ghost"}))
    host.market.publish(100.0)
    with client(host) as c, pytest.raises(InvalidArgument) as err:
        c.send_signal("buy 1 AAA")
    assert "'ghost'" in err.value.message and "does not exist" in err.value.message
    [rec] = host.signals()
    assert rec.status is SignalStatus.REJECTED and "ghost" in rec.reason
    assert host.orders() == [] and host.orders("ghost") == []


def test_a_signal_naming_a_strategy_that_does_not_exist_is_rejected(host: Host) -> None:
    with client(host) as c, pytest.raises(InvalidArgument) as err:
        c.send_signal("buy 1 AAA strategy=nobody")
    assert "'nobody'" in err.value.message, err.value.message


# ------------------------------------------------------------------ live brokers


class FakeLive(LiveBrokerAdapter):
    """Records what it is asked to do; fails when ``fail`` is set."""

    name = "fake"
    calls: ClassVar[list[tuple[str, list[Command], list[str], dict[str, Any]]]] = []
    fail: ClassVar[str | None] = None
    #: When set, execute waits for it (the lane stays busy meanwhile).
    gate: ClassVar[threading.Event | None] = None

    def execute(self, record: SignalRecord, commands: Sequence[Command],
                client_order_ids: Sequence[str]) -> str:
        FakeLive.calls.append((record.id, list(commands), list(client_order_ids),
                               dict(self.settings)))
        if FakeLive.gate is not None:
            FakeLive.gate.wait(10)
        if FakeLive.fail is not None:
            raise RuntimeError(FakeLive.fail)
        return f"sent {len(commands)} orders to fake"


class FakeLivePlugin:
    @hookimpl
    def sandtrade_live_brokers(self) -> list[type[LiveBrokerAdapter]]:
        return [FakeLive]


def start_with(tmp_path: Path, config: str, *plugins: object) -> HostRuntime:
    """A runtime like conftest.start_host's with ``plugins`` too (not started)."""
    path = tmp_path / "sandtrade.toml"
    path.write_text(config)
    settings = load_settings(path, data_dir=tmp_path / "data", grpc="127.0.0.1:0",
                             http="127.0.0.1:0",
                             market={"source": "steps", "bars_per_second": 0})
    return HostRuntime(settings, plugins=PluginHost.create(extra=[StepsPlugin(), *plugins]))


@pytest.fixture
def live_host(tmp_path: Path) -> Iterator[Callable[[str], Host]]:
    """Start a host with the fake live broker installed."""
    started: list[Host] = []
    FakeLive.calls.clear()
    FakeLive.fail = None
    FakeLive.gate = None

    def make(config: str) -> Host:
        runtime = start_with(tmp_path, config, FakeLivePlugin()).start()
        assert runtime.auth is not None
        _, token = runtime.auth.create(runtime.settings.account, ("signal",))
        host = Host(runtime, Market(runtime), token)
        started.append(host)
        return host

    yield make
    if FakeLive.gate is not None:
        FakeLive.gate.set()
    for host in started:
        stop_host(host)


def refused_start(tmp_path: Path, config: str, *plugins: object) -> str:
    runtime = start_with(tmp_path, config, *plugins)
    try:
        with pytest.raises(SandtradeError) as err:
            runtime.start()
    finally:
        runtime.stop()
    return str(err.value)


def test_live_route_without_allow_live_refuses_to_start(tmp_path: Path) -> None:
    message = refused_start(tmp_path, routes({"symbol": "AAA", "to": "live:fake"}),
                            FakeLivePlugin())
    assert "signals.allow_live" in message and "live:fake" in message


def test_live_route_without_its_plugin_refuses_to_start(tmp_path: Path) -> None:
    message = refused_start(tmp_path, routes({"symbol": "AAA", "to": "live:fake"},
                                             extra="allow_live = true"))
    assert "live:fake" in message and "no installed plugin" in message, message


def test_live_mode_without_allow_live_refuses_to_start(tmp_path: Path) -> None:
    message = refused_start(tmp_path, routes(extra='mode = "live"\nlive_broker = "fake"'),
                            FakeLivePlugin())
    assert "signals.allow_live" in message


def test_live_broker_gets_the_commands_with_client_order_ids(
        live_host: Callable[[str], Host]) -> None:
    host = live_host(routes({"symbol": "AAA", "to": "live:fake"}, extra="allow_live = true")
                     + '[plugins.fake]\naccount_id = "U123"\n')
    [sig] = send(host, "buy 1 AAA; sell 2 AAA")
    rec = record(host, sig.id)
    assert rec.status is SignalStatus.EXECUTED, rec.reason
    assert rec.destination == "live:fake" and rec.reason == "sent 2 orders to fake"
    assert [s.status.value for s in rec.history] == [
        "received", "validated", "routed", "executed"]
    [(sid, commands, ids, settings)] = FakeLive.calls
    assert sid == sig.id and ids == [f"{sig.id}.0", f"{sig.id}.1"]
    assert [(c.action, c.qty, c.symbol) for c in commands] == [("buy", 1.0, "AAA"),
                                                               ("sell", 2.0, "AAA")]
    assert settings == {"account_id": "U123"}
    assert host.orders() == [], "nothing went to the paper broker"


def test_a_live_broker_gets_a_quantity_the_paper_lot_size_would_refuse(
        live_host: Callable[[str], Host]) -> None:
    """The paper broker's lot sizes are not the live broker's (fractional shares)."""
    host = live_host(routes({"symbol": "AAA", "to": "live:fake"}, extra="allow_live = true"))
    [sig] = send(host, "buy 0.5 AAA")
    assert record(host, sig.id).status is SignalStatus.EXECUTED
    [(_, commands, _, _)] = FakeLive.calls
    assert [(c.action, c.qty) for c in commands] == [("buy", 0.5)]


def test_live_broker_that_raises_fails_the_signal_with_its_message(
        live_host: Callable[[str], Host]) -> None:
    host = live_host(routes({"symbol": "AAA", "to": "live:fake"}, extra="allow_live = true"))
    FakeLive.fail = "insufficient margin at the broker"
    [sig] = send(host, "buy 1 AAA")
    rec = record(host, sig.id)
    assert rec.status is SignalStatus.FAILED
    assert "insufficient margin at the broker" in rec.reason
    assert len(FakeLive.calls) == 1


BLOCKED_LIVE = routes({"symbol": "AAA", "to": "live:fake"},
                      extra="allow_live = true\nqueue_limit = 2")


def test_queue_limit_refuses_with_nothing_journaled(live_host: Callable[[str], Host]) -> None:
    """Two signals wait (one held by a slow live broker): the third is RESOURCE_EXHAUSTED,
    not journaled; once the backlog drains, signals are accepted again."""
    host = live_host(BLOCKED_LIVE)
    FakeLive.gate = gate = threading.Event()
    with client(host) as c:
        c.send_signal("buy 1 AAA")
        c.send_signal("buy 2 AAA")
        with pytest.raises(ResourceExhausted) as err:
            c.send_signal("buy 3 AAA")
        assert "queue_limit" in err.value.message and "nothing was journaled" in \
            err.value.message
        assert len(host.signals()) == 2
        gate.set()
        host.wait_idle()
        c.send_signal("buy 4 AAA")
    host.wait_idle()
    assert [r.status for r in host.signals()] == [SignalStatus.EXECUTED] * 3
    assert [c[1][0].qty for c in FakeLive.calls] == [1.0, 2.0, 4.0]


def test_queue_limit_is_per_account(live_host: Callable[[str], Host]) -> None:
    """``signals.queue_limit`` counts "accepted signals waiting to execute, per account": one
    account's backlog does not refuse another account's signals."""
    host = live_host(BLOCKED_LIVE)
    create_account(host, "other")
    host.market.publish(10.0, symbol="BBB")
    FakeLive.gate = threading.Event()
    with client(host) as c:
        c.send_signal("buy 1 AAA")
        c.send_signal("buy 2 AAA")
    with client(host, signal_token(host, "other")) as o:
        info = o.send_signal("buy 1 BBB")
    assert isinstance(info, SignalInfo) and info.account == "other"
    FakeLive.gate.set()
    host.wait_idle()
    assert record(host, info.id).status is SignalStatus.EXECUTED


# ------------------------------------------------------------------ a strategy destination

ON_SIGNAL = """\
def on_bar(ctx, bar):
    pass


def on_signal(ctx, signal):
    ctx.state.setdefault("seen", []).append([signal.symbol, signal.action, signal.qty])
    if signal.symbol == "AAA":
        ctx.buy(1)
"""


def test_signal_routed_to_a_running_strategy(make_host: HostFactory) -> None:
    host = make_host(routes({"symbol": "AAA", "to": "strategy:strat/listener"}))
    manager = host.runtime.strategies
    assert manager is not None
    host.market.publish(100.0)
    manager.upload("strat", "listener", ON_SIGNAL, symbols=["AAA"], params={})

    [early] = send(host, "buy 3 AAA")  # uploaded, not running
    rec = record(host, early.id)
    assert rec.status is SignalStatus.FAILED and "not running" in rec.reason, rec.reason

    listener = manager.start("strat", "listener")
    deadline = time.monotonic() + 15
    while manager.state_of(listener.id) != "running":
        assert time.monotonic() < deadline, manager.status("strat", "listener")
        time.sleep(0.05)
    [sig] = send(host, "buy 3 AAA")
    rec = record(host, sig.id)
    assert rec.status is SignalStatus.EXECUTED, rec.reason
    assert rec.destination == "strategy:strat/listener" and "on_signal" in rec.reason
    assert manager.state("strat", "listener") == {"seen": [["AAA", "buy", 3.0]]}
    assert host.orders() == [], "the strategy decides; the signal places nothing itself"
    [order] = host.orders("strat")
    assert (order.side.value, order.qty, order.symbol) == ("buy", 1.0, "AAA")

    # no route matches BBB: a signal naming the strategy goes to it all the same, when it is
    # sent for the strategy's own account; for another account's token it does not exist
    with client(host) as c, pytest.raises(InvalidArgument) as err:
        c.send_signal("sell 2 BBB strategy=listener")
    with client(host) as c, pytest.raises(InvalidArgument) as nobody:
        c.send_signal("sell 2 BBB strategy=nobody")
    def words(message: str) -> str:  # the same answer, but for its signal id
        return re.sub(r"sig_[0-9a-f]+", "sig_…", message)

    assert words(err.value.message) == words(nobody.value.message).replace("nobody", "listener")
    assert manager.state("strat", "listener") == {"seen": [["AAA", "buy", 3.0]]}, \
        "not delivered"
    assert host.runtime.auth is not None
    _, strat_token = host.runtime.auth.create("strat", ("signal",))
    [named] = send(host, "sell 2 BBB strategy=listener", token=strat_token)
    rec = record(host, named.id)
    assert rec.status is SignalStatus.EXECUTED, rec.reason
    assert rec.destination == "strategy:strat/listener" and \
        "names a strategy" in rec.history[1].reason
    assert manager.state("strat", "listener")["seen"][-1] == ["BBB", "sell", 2.0]


# ------------------------------------------------------------------ restarts


def reopen(tmp_path: Path, change: Callable[[Any], None]) -> None:
    """Change the stopped host's store with ``change(store)``."""
    store = open_host_store(tmp_path / "data")
    try:
        change(store)
    finally:
        store.close()


def restart(make_host: HostFactory, before: Host) -> Host:
    """A host on ``before``'s data directory (``before`` stopped already), once its feed has
    caught up: the bars ``before`` worked are published to it again (its feed skips them into
    the hub's history), which is when it recovers the journal."""
    again = make_host()
    market = again.market
    for bar in before.market.published:
        market.source.push(bar)
    market.source.wait_handled(len(before.market.published))
    market.published = list(before.market.published)
    market.time = before.market.time
    market.flush_broker()
    return again


def record_from(tmp_path: Path, signal_id: str) -> SignalRecord:
    found: list[SignalRecord] = []
    reopen(tmp_path, lambda store: found.append(store.get_signal(signal_id)))
    assert found[0] is not None
    return found[0]


def unexecuted_copy(base: SignalRecord, suffix: str, *commands: Command) -> SignalRecord:
    """``base`` as it was when journaled (validated, nothing done), with a new id and
    ``commands``: what a host that died right after journaling leaves behind."""
    rec = base.model_copy(deep=True)
    rec.id, rec.idempotency_key, rec.orders = f"{base.id}{suffix}", None, []
    rec.history = rec.history[:2]
    rec.status, rec.reason = rec.history[-1].status, rec.history[-1].reason
    assert rec.status is SignalStatus.VALIDATED
    rec.parsed = {**(rec.parsed or {}), "commands": [c.model_dump() for c in commands]}
    return rec


# ------------------------------------------------------------------ duplicates


def test_same_idempotency_key_executes_once(host: Host) -> None:
    host.market.publish(100.0)
    with client(host) as c:
        first = c.send_signal("buy 1 AAA", idempotency_key="order-42")
        second = c.send_signal("buy 1 AAA", idempotency_key="order-42")
    assert isinstance(first, SignalInfo) and isinstance(second, SignalInfo)
    assert (first.duplicate, second.duplicate) == (False, True)
    assert second.id == first.id
    host.wait_idle()
    assert [o.client_order_id for o in host.orders()] == [f"{first.id}.0"]
    journal = host.signals()
    assert [r.status for r in journal] == [SignalStatus.EXECUTED, SignalStatus.DROPPED]
    assert first.id in journal[1].reason


def test_duplicate_is_recognised_after_a_restart(make_host: HostFactory) -> None:
    host = make_host()
    host.market.publish(100.0)
    with client(host) as c:
        first = c.send_signal("buy 1 AAA", idempotency_key="k-restart")
    assert isinstance(first, SignalInfo)
    host.wait_idle()
    stop_host(host)

    again = restart(make_host, host)  # the same data directory
    with client(again) as c:
        second = c.send_signal("buy 1 AAA", idempotency_key="k-restart")
        other = c.send_signal("buy 1 AAA", idempotency_key="k-new")
    assert isinstance(second, SignalInfo) and isinstance(other, SignalInfo)
    assert second.duplicate and second.id == first.id
    assert second.status == "executed"
    assert not other.duplicate
    again.wait_idle()
    ids = [o.client_order_id for o in again.orders()]
    assert ids.count(f"{first.id}.0") == 1 and len(ids) == 2


def test_tradingview_resend_of_the_same_body_is_a_duplicate(host: Host) -> None:
    host.market.publish(100.0)
    body = '{"ticker": "AAA", "action": "buy", "contracts": 1}'
    a, b = post(host.webhook, body).json(), post(host.webhook, body).json()
    assert (a["duplicate"], b["duplicate"]) == (False, True)
    host.wait_idle()
    assert [o.client_order_id for o in host.orders()] == [f"{a['id']}.0"]


def test_a_key_is_forgotten_after_the_duplicate_window(make_host: HostFactory) -> None:
    host = make_host(routes(extra="duplicate_window = 0.5"))
    host.market.publish(100.0)
    with client(host) as c:
        first = c.send_signal("buy 1 AAA", idempotency_key="w")
        within = c.send_signal("buy 1 AAA", idempotency_key="w")
        time.sleep(0.7)
        after = c.send_signal("buy 1 AAA", idempotency_key="w")
    assert isinstance(within, SignalInfo) and isinstance(after, SignalInfo)
    assert within.duplicate and within.id == first.id
    assert not after.duplicate and after.id != first.id
    host.wait_idle()
    assert len(host.orders()) == 2


# ------------------------------------------------------------------ recovery


def test_signal_marked_validated_again_executes_once_after_restart(
        make_host: HostFactory, tmp_path: Path) -> None:
    host = make_host()
    host.market.publish(100.0)
    [sig] = send(host, "buy 2 AAA")
    stop_host(host)

    def unexecute(store: Any) -> None:
        rec = store.get_signal(sig.id)
        rec.step(SignalStatus.VALIDATED, datetime.now(UTC), "back to validated by the test")
        store.update_signals([rec])

    reopen(tmp_path, unexecute)
    again = restart(make_host, host)
    again.wait_idle()
    rec = record(again, sig.id)
    assert rec.status is SignalStatus.EXECUTED, rec.reason
    ids = [o.client_order_id for o in again.orders()]
    assert ids == [f"{sig.id}.0"], "executed exactly once"


def test_journaled_but_unexecuted_signals_execute_after_restart(
        make_host: HostFactory, tmp_path: Path) -> None:
    """Signals journaled just before a crash (validated, never executed) execute on restart,
    once each, in journal order; one a strategy held when the host died is failed, not
    delivered again."""
    host = make_host()
    host.market.publish(100.0)
    [done] = send(host, "buy 1 AAA")
    stop_host(host)
    base = record_from(tmp_path, done.id)
    pending = [
        unexecuted_copy(base, "a", Command(action="buy", symbol="AAA", qty=2,
                                           order_type="limit", limit_price=99.0)),
        unexecuted_copy(base, "b", Command(action="sell", symbol="AAA", qty=1,
                                           order_type="limit", limit_price=105.0),
                        Command(action="cancel", symbol="BBB", qty=0)),
    ]
    held = unexecuted_copy(base, "h", Command(action="buy", symbol="AAA", qty=1))
    held.destination = "strategy:gone"
    held.step(SignalStatus.ROUTED, datetime.now(UTC), "strategy:gone")
    reopen(tmp_path, lambda store: store.append_signals([*pending, held]))

    again = restart(make_host, host)
    again.wait_idle()
    for rec in pending:
        assert record(again, rec.id).status is SignalStatus.EXECUTED, record(again, rec.id)
    assert [o.client_order_id for o in again.orders()] == [
        f"{done.id}.0", f"{pending[0].id}.0", f"{pending[1].id}.0"], "once each, in order"
    assert [(o.side.value, o.qty, o.limit_price) for o in again.orders()[1:]] == [
        ("buy", 2.0, 99.0), ("sell", 1.0, 105.0)]
    lost = record(again, held.id)
    assert lost.status is SignalStatus.FAILED and "at most once" in lost.reason


def test_signals_received_during_a_restart_execute_after_the_recovered_ones(
        make_host: HostFactory, tmp_path: Path) -> None:
    """Journal order holds across a restart: a signal received while the restarted host's
    feed is still catching up runs after the ones journaled before the restart."""
    host = make_host()
    host.market.publish(100.0)
    [done] = send(host, "buy 1 AAA")
    stop_host(host)
    pending = unexecuted_copy(record_from(tmp_path, done.id), "p",
                              Command(action="buy", symbol="AAA", qty=2, order_type="limit",
                                      limit_price=99.0))
    reopen(tmp_path, lambda store: store.append_signals([pending]))

    again = make_host()  # its feed waits for the bars worked before: not caught up yet
    with client(again) as c:
        late = c.send_signal("buy 3 AAA limit 98")
    assert isinstance(late, SignalInfo)
    for bar in host.market.published:
        again.market.source.push(bar)
    again.market.source.wait_handled(len(host.market.published))
    again.wait_idle()
    assert [o.client_order_id for o in again.orders()] == [
        f"{done.id}.0", f"{pending.id}.0", f"{late.id}.0"]
    assert record(again, late.id).status is SignalStatus.EXECUTED


def test_recovered_market_signal_executes_before_the_next_bar(
        make_host: HostFactory, tmp_path: Path) -> None:
    """The host executes what was journaled before the restart "before any new bar moves the
    market": a market order then is as good as it was before the crash."""
    host = make_host()
    host.market.publish(100.0)
    [done] = send(host, "buy 1 AAA")
    host.market.publish(100.0)
    stop_host(host)
    pending = unexecuted_copy(record_from(tmp_path, done.id), "m",
                              Command(action="target", symbol="AAA", qty=3))
    reopen(tmp_path, lambda store: store.append_signals([pending]))

    again = restart(make_host, host)
    again.wait_idle()
    rec = record(again, pending.id)
    assert rec.status is SignalStatus.EXECUTED, rec.reason
    assert trades(orders_of(again, pending.id)) == [("0", "buy", 2.0, "AAA")]
