"""``ctx.signal``: a live strategy sends its account's signals through the host's pipeline, as
a TradingView alert is sent (journaled, routed, executed; its source ``strategy:NAME``); a body
the pipeline cannot read comes back rejected with the reason; a back-test sends none. An
imported Pine strategy's ``alert()`` goes the same way."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import grpc
import pytest

from rpc.conftest import WAIT, Market, bearer, serving
from rpc.test_strategies import eventually, log_lines, start, upload, wait_running
from sandtrade.backtest.runner import run_backtest
from sandtrade.host.runtime import HostRuntime
from sandtrade.models import Bar
from sandtrade.signal_model import SignalStatus
from sandtrade.strategy.loader import load_strategy_source
from sandtrade.v1 import strategies_pb2 as spb
from sandtrade.v1 import strategies_pb2_grpc

EMITTER = """\
def on_bar(ctx, bar):
    if ctx.state.get("sent"):
        return
    ctx.state["sent"] = True
    sent = ctx.signal("buy 2 AAA")
    ctx.log("sent", sent.status, sent.id != "")
    bad = ctx.signal({"ticker": "AAA", "action": "dance"})
    ctx.log("bad", bad.status, bad.reason != "")
"""


@pytest.fixture
def host(tmp_path: object) -> Iterator[HostRuntime]:
    with serving(tmp_path) as runtime:  # type: ignore[arg-type]
        yield runtime


def test_a_live_strategy_sends_its_accounts_signals(host: HostRuntime) -> None:
    assert host.rpc is not None and host.store is not None and host.signals is not None
    operator = bearer(host.operator_token_path.read_text().strip())
    with grpc.insecure_channel(host.rpc.address) as channel:
        stub = strategies_pb2_grpc.StrategyServiceStub(channel)
        upload(stub, operator, "emitter", EMITTER, account="alice")
        start(stub, operator, "emitter")
        wait_running(stub, operator, "emitter")
        market = Market(host)
        market.publish(100.0)
        lines = eventually(
            lambda: log_lines(stub, operator, "emitter", origin=spb.LOG_ORIGIN_STRATEGY),
            lambda got: len(got) == 2, "the strategy did not report both signals", WAIT)
    said = [line.split(" ", 1)[1] for line in lines]  # after ctx.log's bar time
    assert said[0] in ("sent received True", "sent validated True"), lines
    assert said[1] == "bad rejected True", lines

    assert host.signals.wait_idle(WAIT)
    market.publish(101.0)  # the signal's market order fills at this bar's open
    records = [r for _, r in host.store.list_signals(account="alice", oldest_first=True)]
    assert [(r.source, r.raw_body) for r in records] == [
        ("strategy:emitter", "buy 2 AAA"),
        ("strategy:emitter", '{"ticker": "AAA", "action": "dance"}')]
    assert records[0].status is SignalStatus.EXECUTED and records[1].status is \
        SignalStatus.REJECTED
    orders = host.store.list_orders("alice")
    assert [(o.side.value, o.qty, o.status.value) for o in orders] == [("buy", 2.0, "filled")]
    assert host.store.list_orders("paper") == [], "the strategy's account, no other"


def test_a_back_test_sends_no_signal() -> None:
    strategy = load_strategy_source(EMITTER, "emitter.py", restricted=True)
    t = datetime(2024, 1, 2)
    data = [Bar("AAA", t + timedelta(days=i), 100.0, 101.0, 99.0, 100.0, 1000.0)
            for i in range(3)]
    result = run_backtest(strategy, data, cash=10_000.0)
    assert [line.split(" ", 1)[1] for line in result.logs] == [
        "sent not_sent False", "bad not_sent True"], result.logs
    assert result.trades == []
