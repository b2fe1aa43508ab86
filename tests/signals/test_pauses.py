"""Paused routes (sandtrade.signals.pauses): a person switches a route off on a running host;
what arrives meanwhile is journaled as dropped with the reason and never executed later; the
pause survives a restart; only the account's own trade token (or the operator) may pause it.

Real hosts (SQLite, live broker, gRPC, HTTP with the TradingView webhook), as in
test_pipeline.py; pauses are set through the HostApi the dashboard uses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import signals.test_pipeline as pipeline_tests
from sandtrade.auth import AuthError, Principal
from sandtrade.client import Client
from sandtrade.client.client import InvalidArgument, PermissionDenied, SignalInfo
from sandtrade.errors import InvalidField
from sandtrade.signal_model import SignalStatus
from signals.conftest import Host, post, stop_host
from signals.test_pipeline import (
    FakeLive,
    HostFactory,
    client,
    create_account,
    orders_of,
    record,
    restart,
    routes,
    send,
)

#: A host with test_pipeline's fake live broker installed (a fixture).
live_host = pipeline_tests.live_host


def principal(host: Host, account: str, scopes: str) -> Principal:
    assert host.runtime.auth is not None
    _, token = host.runtime.auth.create(account, scopes)
    return host.runtime.auth.verify(token)


def operator(host: Host) -> Principal:
    assert host.runtime.auth is not None
    return host.runtime.auth.verify(host.runtime.operator_token_path.read_text().strip())


def test_a_paused_account_journals_its_signals_as_dropped_and_executes_none(
        host: Host) -> None:
    api = host.runtime.host_api
    host.market.publish(100.0)
    view = api.set_route_paused(principal(host, "paper", "trade"), "account:paper", True)
    assert view["paused"] and view["by"].startswith("token ") and view["since"]

    # Both doors: the webhook and gRPC.
    r = post(host.webhook, "buy 1 AAA")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "dropped"
    assert "every signal of the account is paused" in r.json()["reason"]
    [sig] = send(host, "buy 2 AAA")
    host.market.publish(101.0)
    for signal_id in (r.json()["id"], sig.id):
        rec = record(host, signal_id)
        assert rec.status is SignalStatus.DROPPED
        assert "paused" in rec.reason and "not executed" in rec.reason, rec.reason
        assert orders_of(host, signal_id) == []
    assert host.orders() == []

    # Resumed: what comes after executes; what was dropped stays dropped.
    api.set_route_paused(principal(host, "paper", "trade"), "account:paper", False)
    [after] = send(host, "buy 3 AAA")
    host.market.publish(102.0)
    host.wait_idle()
    assert record(host, after.id).status is SignalStatus.EXECUTED
    assert record(host, sig.id).status is SignalStatus.DROPPED
    assert [o.qty for o in host.orders()] == [3.0]


def test_pausing_one_paper_route_leaves_the_other_accounts_route_open(
        make_host: HostFactory) -> None:
    host = make_host(routes({"symbol": "BBB", "to": "paper:other"}))
    create_account(host, "other")
    host.market.publish(100.0, symbol="AAA")
    host.market.publish(10.0, symbol="BBB")
    host.runtime.host_api.set_route_paused(operator(host), "paper:other", True)
    bbb, aaa = send(host, "buy 2 BBB", "buy 1 AAA")
    assert record(host, bbb.id).status is SignalStatus.DROPPED
    assert "the route to paper:other is paused (since" in record(host, bbb.id).reason
    assert "by the operator" in record(host, bbb.id).reason
    assert record(host, aaa.id).status is SignalStatus.EXECUTED
    listed = {r["route"]: r for r in host.runtime.host_api.routes(operator(host), "other")}
    assert listed["paper:other"]["paused"] and not listed["account:other"]["paused"]


def test_a_signals_idempotency_key_is_not_spent_by_a_paused_route(host: Host) -> None:
    api = host.runtime.host_api
    host.market.publish(100.0)
    api.set_route_paused(operator(host), "paper:paper", True)
    with client(host) as c:
        first = c.send_signal("buy 1 AAA", idempotency_key="k-paused")
    assert isinstance(first, SignalInfo) and first.status == "dropped"
    api.set_route_paused(operator(host), "paper:paper", False)
    with client(host) as c:
        second = c.send_signal("buy 1 AAA", idempotency_key="k-paused")
    assert isinstance(second, SignalInfo)
    assert not second.duplicate and second.id != first.id
    host.wait_idle()
    assert record(host, second.id).status is SignalStatus.EXECUTED


def test_a_pause_survives_a_restart(make_host: HostFactory) -> None:
    host = make_host()
    host.market.publish(100.0)
    host.runtime.host_api.set_route_paused(operator(host), "paper:paper", True)
    stop_host(host)
    again = restart(make_host, host)
    [sig] = send(again, "buy 1 AAA")
    assert record(again, sig.id).status is SignalStatus.DROPPED
    paused = {r["route"]: r for r in again.runtime.host_api.routes(operator(again), "paper")}
    assert paused["paper:paper"]["paused"] and paused["paper:paper"]["by"] == "the operator"


def test_who_may_pause_what(make_host: HostFactory) -> None:
    host = make_host()
    create_account(host, "bob")
    api = host.runtime.host_api
    bob = principal(host, "bob", "read,trade")
    with pytest.raises(AuthError) as err:
        api.set_route_paused(bob, "account:paper", True)
    assert err.value.code == "permission_denied" and "'bob', not 'paper'" in str(err.value)
    with pytest.raises(AuthError) as err:
        api.set_route_paused(principal(host, "paper", "read"), "paper:paper", True)
    assert "lacks the 'trade' scope" in str(err.value)
    with pytest.raises(AuthError) as err:
        api.set_route_paused(principal(host, "paper", "admin"), "live:fake", True)
    assert "only the operator may pause it" in str(err.value)
    for bad in ("paper", "paper:", "strategy:paper", "wire:paper", "paper:a b"):
        with pytest.raises(InvalidField) as bad_route:
            api.set_route_paused(operator(host), bad, True)
        assert "is not one a pause can name" in str(bad_route.value)
    assert host.runtime.signals.pauses.all() == {}, "nothing refused was paused"
    # Bob's own route is his to pause; it does not touch paper's.
    api.set_route_paused(bob, "account:bob", True)
    assert set(host.runtime.signals.pauses.all()) == {"account:bob"}
    assert [r["route"] for r in api.routes(bob, "bob")][:2] == ["account:bob", "paper:bob"]
    with pytest.raises(AuthError):
        api.routes(bob, "paper")


def test_the_operator_pauses_a_live_broker(live_host) -> None:  # type: ignore[no-untyped-def]
    host = live_host(routes({"symbol": "AAA", "to": "live:fake"}, extra="allow_live = true"))
    api = host.runtime.host_api
    listed = {r["route"]: r for r in api.routes(operator(host), "paper")}
    assert listed["live:fake"]["can_pause"]
    assert not {r["route"]: r for r in api.routes(principal(host, "paper", "read,trade"), "paper")
                }["live:fake"]["can_pause"]
    api.set_route_paused(operator(host), "live:fake", True)
    [sig] = send(host, "buy 1 AAA")
    assert record(host, sig.id).status is SignalStatus.DROPPED
    assert FakeLive.calls == [], "the live broker was never called"


def test_routes_are_paused_and_listed_over_grpc_and_the_cli(
        make_host: HostFactory, tmp_path: Path) -> None:
    host = make_host()
    create_account(host, "bob")
    assert host.runtime.auth is not None and host.runtime.rpc is not None
    _, paper_trader = host.runtime.auth.create("paper", ("read", "trade"))
    _, bob_trader = host.runtime.auth.create("bob", ("read", "trade"))
    with Client(host.runtime.rpc.address, token=paper_trader) as c:
        view = c.set_route_paused("paper:paper")
        assert view["paused"] and view["route"] == "paper:paper"
        assert view["by"].startswith("token ") and view["since"]
        with pytest.raises(PermissionDenied, match="only the operator may pause it"):
            c.set_route_paused("live:anything")
        with pytest.raises(InvalidArgument, match="is not one a pause can name"):
            c.set_route_paused("paper")
    with Client(host.runtime.rpc.address, token=bob_trader) as c:
        with pytest.raises(PermissionDenied):
            c.set_route_paused("account:paper")
        assert c.paused_routes() == [], "paper's pause is not bob's to see"
        with pytest.raises(PermissionDenied):
            c.paused_routes(account="paper")
    host.market.publish(100.0)
    [sig] = send(host, "buy 1 AAA")
    assert record(host, sig.id).status is SignalStatus.DROPPED
    # An open dashboard hears of a pause made over gRPC too.
    events, _ = host.runtime.watch.after(0, 10_000)
    assert [(e.account, e.data["route"], e.data["paused"]) for e in events
            if e.kind == "route"] == [("paper", "paper:paper", True)]

    # The CLI, as a person types it.
    cli = [sys.executable, "-m", "sandtrade.cli", "signals"]
    where = ["--grpc", host.runtime.rpc.address, "--token", paper_trader]
    listed = subprocess.run([*cli, "paused", *where, "--json"], capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert [r["route"] for r in json.loads(listed.stdout)] == ["paper:paper"]
    resumed = subprocess.run([*cli, "resume", "paper:paper", *where], capture_output=True,
                             text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert "paper:paper open: its signals execute" in resumed.stdout
    [after] = send(host, "buy 1 AAA")
    host.market.publish(100.0)
    host.wait_idle()
    assert record(host, after.id).status is SignalStatus.EXECUTED
    refused = subprocess.run([*cli, "pause", "live:x", *where], capture_output=True,
                             text=True, timeout=60)
    assert refused.returncode != 0 and "only the operator may pause it" in refused.stderr
