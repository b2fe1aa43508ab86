"""The host's quotas per account, at every door: gRPC orders and cancels, signals over gRPC and
the webhook, and a strategy's orders (a flood stops it, the reason naming the quota).

Real hosts with tiny quotas (one order per 100 s after a burst of a few), so that what is
refused does not depend on how fast the machine is.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sandtrade.broker.quotas import Quotas
from sandtrade.client import Client
from sandtrade.host.runtime import HostRuntime
from sandtrade.models import Account
from sandtrade.v1 import common_pb2, signals_pb2_grpc, trading_pb2_grpc
from sandtrade.v1 import signals_pb2 as sg
from sandtrade.v1 import strategies_pb2 as spb
from sandtrade.v1 import trading_pb2 as tpb

from .conftest import CASH, Market, Metadata, bearer, market_order, serving
from .test_strategies import (
    Stub,
    eventually,
    log_lines,
    start,
    status,
    stop,
    upload,
    wait_running,
)

SLOW = 0.01  # per second: nothing refills within a test
QUOTAS = {"orders_per_second": SLOW, "order_burst": 3, "cancels_per_second": SLOW,
          "cancel_burst": 2, "open_orders": 4, "signals_per_second": SLOW, "signal_burst": 2,
          "flood_seconds": 2, "strategies_running": 1}


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[HostRuntime]:
    """A host whose accounts all have :data:`QUOTAS`, except bob, who has a burst of one."""
    with serving(tmp_path, entry_points=True, quotas=QUOTAS,
                 accounts={"bob": {"quotas": {**QUOTAS, "order_burst": 1}}}) as h:
        yield h


def quota_failure(err: grpc.RpcError) -> list[tuple[str, str]]:
    st = rpc_status.from_call(err)
    assert st is not None, err
    out = []
    for detail in st.details:
        failure = error_details_pb2.QuotaFailure()
        if detail.Unpack(failure):
            out.extend((v.subject, v.description) for v in failure.violations)
    return out


def submit(trading: trading_pb2_grpc.TradingServiceStub, md: Metadata,
           **order: Any) -> tpb.SubmitOrderResponse:
    return trading.SubmitOrder(market_order("AAA", 1, **order), metadata=md, timeout=10)


def test_order_rate_over_grpc_is_resource_exhausted_naming_the_quota(
        trading: trading_pb2_grpc.TradingServiceStub, make_account: Any, make_token: Any,
        market: Market) -> None:
    market.publish(100)
    make_account("alice")
    alice = bearer(make_token("alice", ("read", "trade")))
    for _ in range(3):  # the burst
        submit(trading, alice)
    with pytest.raises(grpc.RpcError) as err:
        submit(trading, alice)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "quota: 0.01 orders/s for account alice (orders_per_second, burst 3)" in \
        (err.value.details() or "")
    [(subject, _)] = quota_failure(err.value)
    assert subject == "account:alice"
    orders = trading.ListOrders(tpb.ListOrdersRequest(account="alice"), metadata=alice,
                                timeout=10).orders
    assert len(orders) == 3  # the refused one did nothing


def test_an_accounts_own_quotas_win_and_accounts_do_not_share_a_bucket(
        trading: trading_pb2_grpc.TradingServiceStub, make_account: Any, make_token: Any,
        market: Market) -> None:
    market.publish(100)
    for name in ("alice", "bob"):
        make_account(name)
    alice = bearer(make_token("alice", ("read", "trade")))
    bob = bearer(make_token("bob", ("read", "trade")))
    submit(trading, bob)
    with pytest.raises(grpc.RpcError) as err:
        submit(trading, bob)  # bob's own burst is one
    assert "burst 1" in (err.value.details() or "")
    for _ in range(3):
        submit(trading, alice)  # bob's refusals cost alice nothing


def test_working_orders_and_cancels_have_quotas(
        trading: trading_pb2_grpc.TradingServiceStub, make_account: Any, make_token: Any,
        operator: Metadata, market: Market) -> None:
    market.publish(100)
    make_account("carol")
    carol = bearer(make_token("carol", ("read", "trade")))
    # The operator's orders for carol count against carol's quotas too.
    ids = [submit(trading, operator, account="carol", type=common_pb2.ORDER_TYPE_LIMIT,
                  limit_price=50.0).order.id for _ in range(3)]
    for order_id in ids[:2]:
        trading.CancelOrder(tpb.CancelOrderRequest(order_id=order_id), metadata=carol,
                            timeout=10)
    with pytest.raises(grpc.RpcError) as err:
        trading.CancelOrder(tpb.CancelOrderRequest(order_id=ids[2]), metadata=carol,
                            timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "cancels_per_second" in (err.value.details() or "")


def test_each_order_of_a_stream_counts(trading: trading_pb2_grpc.TradingServiceStub,
                                       make_account: Any, operator: Metadata,
                                       market: Market) -> None:
    market.publish(100)
    make_account("dave")
    answers = list(trading.SubmitOrderStream(iter(
        tpb.SubmitOrderStreamRequest(order=market_order(
            "AAA", 1, account="dave", type=common_pb2.ORDER_TYPE_LIMIT, limit_price=50.0,
            client_order_id=f"d-{k}")) for k in range(5)), metadata=operator, timeout=10))
    codes = [a.error.code for a in answers]
    assert codes == [0, 0, 0] + [grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]] * 2
    assert "orders_per_second" in answers[3].error.message


@pytest.mark.parametrize("quotas", [{**QUOTAS, "order_burst": 100}])
def test_open_orders_quota(tmp_path: Path, quotas: dict[str, Any]) -> None:
    with serving(tmp_path, quotas=quotas) as h:
        Market(h).publish(100)
        assert h.rpc is not None
        with grpc.insecure_channel(h.rpc.address) as ch:
            trading = trading_pb2_grpc.TradingServiceStub(ch)
            operator = bearer(h.operator_token_path.read_text().strip())
            assert h.store is not None
            h.store.create_account(Account(id="other", cash=CASH, initial_cash=CASH))
            # Each account's own working orders count, never another's: "other" places its
            # four with paper's four already working.
            for account in ("paper", "other"):
                for _ in range(4):
                    submit(trading, operator, account=account,
                           type=common_pb2.ORDER_TYPE_LIMIT, limit_price=50.0)
                with pytest.raises(grpc.RpcError) as err:
                    submit(trading, operator, account=account,
                           type=common_pb2.ORDER_TYPE_LIMIT, limit_price=50.0)
                assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert f"quota: 4 working orders for account {account} (open_orders)" in \
                    (err.value.details() or "")


def test_signals_over_grpc_and_the_webhook_have_a_quota(
        channel: grpc.Channel, runtime: HostRuntime, make_account: Any, make_token: Any,
        market: Market) -> None:
    market.publish(100)
    make_account("erin")
    token = make_token("erin", ("signal",))
    signals = signals_pb2_grpc.SignalServiceStub(channel)
    for _ in range(2):  # the burst
        signals.SubmitSignal(sg.SubmitSignalRequest(body="buy 1 AAA"), metadata=bearer(token),
                             timeout=10)
    with pytest.raises(grpc.RpcError) as err:
        signals.SubmitSignal(sg.SubmitSignalRequest(body="buy 1 AAA"), metadata=bearer(token),
                             timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "signals_per_second" in (err.value.details() or "")
    assert runtime.http is not None
    url = f"{runtime.http.url}/webhooks/tradingview/{token}"
    with pytest.raises(urllib.error.HTTPError) as http_err:
        urllib.request.urlopen(urllib.request.Request(url, data=b"buy 1 AAA"), timeout=10)
    assert http_err.value.code == 429
    assert http_err.value.headers["Retry-After"] == "1"
    assert b"signals_per_second" in http_err.value.read()
    listed = signals.ListSignals(sg.ListSignalsRequest(account="erin"),
                                 metadata=bearer(make_token("erin", ("read",))), timeout=10)
    assert len(listed.signals) == 2  # nothing refused was journaled


FLOOD = """\
import datetime


def on_bar(ctx, bar):
    end = datetime.datetime.now() + datetime.timedelta(seconds=3.5)
    while datetime.datetime.now() < end:
        try:
            ctx.buy(1)
        except Exception:
            pass
        pause = datetime.datetime.now() + datetime.timedelta(milliseconds=20)
        while datetime.datetime.now() < pause:
            pass
"""


def test_a_strategy_flooding_orders_is_refused_then_stopped_naming_the_quota(
        channel: grpc.Channel, operator: Metadata, market: Market) -> None:
    strategies = Stub(channel)
    upload(strategies, operator, "flood", FLOOD, account="mallory")
    start(strategies, operator, "flood")
    wait_running(strategies, operator, "flood")
    market.publish(100)
    final = eventually(lambda: status(strategies, operator, "flood"),
                       lambda s: s.strategy.state == spb.STRATEGY_STATE_FAILED,
                       "the flooding strategy was stopped", timeout=30)
    assert final.kill_reason.startswith("order flood: "), final.kill_reason
    assert "orders_per_second" in final.kill_reason


IDLE = "def on_bar(ctx, bar):\n    pass\n"


def test_an_account_runs_at_most_its_quota_of_strategies(channel: grpc.Channel,
                                                        operator: Metadata) -> None:
    strategies = Stub(channel)
    for name in ("one", "two"):
        upload(strategies, operator, name, IDLE, account="frank")
    start(strategies, operator, "one")
    wait_running(strategies, operator, "one")
    with pytest.raises(grpc.RpcError) as err:
        start(strategies, operator, "two")
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "quota: 1 running strategies for account frank (strategies_running)" in \
        (err.value.details() or "")
    assert status(strategies, operator, "two").strategy.state == spb.STRATEGY_STATE_STOPPED
    start(strategies, operator, "one")  # starting the one already running is not a second


#: Dies of its memory limit as soon as it starts, every time.
DIES_AT_ONCE = """\
def on_start(ctx):
    hog = "x" * (1 << 40)
"""


def test_a_restart_loop_is_given_up_naming_it(channel: grpc.Channel, operator: Metadata,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker that dies soon after each start, but never five times quickly in a row (each
    run counts as stable here), is not restarted forever: past its restarts an hour it is
    left stopped, the reason naming the loop."""
    import sandtrade.sandbox.manager as manager

    monkeypatch.setattr(manager, "STABLE_SECONDS", 0.0)
    monkeypatch.setattr(manager, "RESTARTS_PER_HOUR", 2)
    strategies = Stub(channel)
    upload(strategies, operator, "phoenix", DIES_AT_ONCE, account="gina")
    start(strategies, operator, "phoenix")
    final = eventually(lambda: status(strategies, operator, "phoenix"),
                       lambda s: s.kill_reason.startswith("restart loop: "),
                       "the restart loop was given up", timeout=60)
    assert "2 restarts in the last hour (the limit is 2)" in final.kill_reason
    assert final.restarts == 2


#: Changes a 200 kB ctx.state on every bar.
STATE_FLOOD = """\
def on_bar(ctx, bar):
    ctx.state["n"] = ctx.state.get("n", 0) + 1
    ctx.state["blob"] = "x" * 200000
"""


def test_a_state_flood_is_held_back_and_the_latest_state_still_saved(
        channel: grpc.Channel, operator: Metadata, market: Market,
        runtime: HostRuntime) -> None:
    strategies = Stub(channel)
    upload(strategies, operator, "hoarder", STATE_FLOOD, account="hank")
    start(strategies, operator, "hoarder")
    wait_running(strategies, operator, "hoarder")
    for k in range(8):
        market.publish(100 + k)
    notes = eventually(
        lambda: log_lines(strategies, operator, "hoarder", tail=1000,
                          origin=spb.LOG_ORIGIN_HOST),
        lambda lines: any(line.startswith("state flood: ") for line in lines),
        "the state flood was noted")
    assert any("bytes/s of state" in line for line in notes), notes
    assert runtime.strategies is not None
    saved = runtime.strategies.state("hank", "hoarder")
    assert saved.get("n", 0) < 8  # the latest changes were held back, not written
    stop(strategies, operator, "hoarder")
    assert runtime.strategies.state("hank", "hoarder")["n"] == 8  # written as the run ended


def test_an_account_sees_the_quotas_it_trades_under(runtime: HostRuntime, make_account: Any,
                                                    make_token: Any) -> None:
    assert runtime.rpc is not None
    for name in ("alice", "bob"):
        make_account(name)
    with Client(runtime.rpc.address, make_token("bob", ("read",))) as bob:
        own = bob.account_settings().quotas
    with Client(runtime.rpc.address, make_token("alice", ("read",))) as alice:
        default = alice.account_settings().quotas
    assert own == Quotas(**{**QUOTAS, "order_burst": 1})  # [accounts.bob.quotas]
    assert default == Quotas(**QUOTAS)  # [quotas]
