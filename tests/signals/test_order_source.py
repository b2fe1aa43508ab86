"""Orders placed by signals know their source: the webhook's are ``tradingview`` with the
signal id and the alert's comment, a signal sent over gRPC is ``grpc``, the Python client's
SubmitSignal ``client``, and a replay of the journal ``replay``; kept in the store and
restored with the broker after a restart."""

from __future__ import annotations

import json

import grpc

from sandtrade.client import Client, SignalInfo
from sandtrade.host.runtime import HostRuntime
from sandtrade.models import OrderSource
from sandtrade.signals.replay import replay
from sandtrade.v1 import signals_pb2, signals_pb2_grpc
from signals.conftest import Host, post, stop_host


def test_a_tradingview_alert_places_orders_sourced_tradingview_with_its_comment(
        host: Host) -> None:
    host.market.publish(100.0)
    r = post(host.webhook, json.dumps({"symbol": "AAA", "action": "buy", "qty": 2,
                                       "comment": "breakout long", "id": "alert-7",
                                       "take_profit": {"price": 120}}))
    assert r.status_code == 200, r.text
    signal_id = r.json()["id"]
    host.wait_idle()
    host.market.publish(101.0)  # the entry fills; its exit leg is made by the broker
    orders = host.orders()
    assert len(orders) == 2, orders
    expected = OrderSource(kind="tradingview", ref=signal_id, label="breakout long")
    assert [o.source for o in orders] == [expected, expected], \
        "the take profit the broker made keeps its entry's source"


def test_signals_over_grpc_are_sourced_grpc_or_client_and_never_tradingview(
        host: Host) -> None:
    runtime = host.runtime
    assert runtime.rpc is not None and runtime.auth is not None
    _, token = runtime.auth.create("paper", ("signal", "read"))
    host.market.publish(100.0)
    with Client(runtime.rpc.address, token) as client:
        from_client = client.send_signal("buy 1 AAA comment=mine")
    assert isinstance(from_client, SignalInfo)
    with grpc.insecure_channel(runtime.rpc.address) as ch:
        raw = signals_pb2_grpc.SignalServiceStub(ch).SubmitSignal(
            signals_pb2.SubmitSignalRequest(body="buy 1 AAA"),
            metadata=(("authorization", f"Bearer {token}"),), timeout=10)
    host.wait_idle()
    by_signal = {o.source.ref: o.source for o in host.orders() if o.source is not None}
    assert by_signal[from_client.id].kind == "client"
    assert by_signal[from_client.id].label == "mine"
    assert by_signal[raw.signal.id].kind == "grpc"


def test_a_replay_marks_its_orders_replay_and_the_source_survives_a_restart(
        host: Host) -> None:
    host.market.publish(100.0)
    r = post(host.webhook, "buy 3 AAA limit 95 comment=first")  # works on: restored
    assert r.status_code == 200, r.text
    host.wait_idle()
    host.market.publish(100.0)
    runtime = host.runtime
    assert runtime.source is not None and runtime.store is not None
    records = [rec for _, rec in runtime.store.list_signals(limit=10, oldest_first=True)]
    result = replay(records, list(host.market.published),
                    instruments=runtime.source.instruments(),
                    formats=runtime.plugins.signal_formats(), cash=runtime.settings.cash)
    assert [o.source for o in result.orders] == [
        OrderSource(kind="replay", ref=records[0].id, label="first")]

    live = host.orders()[0]
    assert live.status.value == "accepted", live
    assert live.source == OrderSource(kind="tradingview", ref=records[0].id, label="first")
    # the store of a host started again holds the same one
    settings, plugins = runtime.settings, runtime.plugins
    stop_host(host)
    again = HostRuntime(settings, plugins=plugins).start(feed=False)
    try:
        assert again.store is not None
        stored = again.store.get_order(live.id)
        assert stored is not None and stored.source == live.source
    finally:
        again.stop()
