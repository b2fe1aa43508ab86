"""Risk rules at every door of a real host: the TOML's [risk] and [accounts.NAME.risk], rules
set over gRPC (admin), orders over gRPC, the webhook and a live strategy; and a back-test of
that strategy under the account's rules stops where the live run stopped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from rpc.conftest import WAIT, StepSource, bearer, field_violations, market_order
from rpc.test_strategies import Stub, eventually, start, trade_key, upload, wait_running
from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.broker import RiskRules
from sandtrade.models import Account, Bar, Order
from sandtrade.rpc import convert
from sandtrade.sandbox.runner import SandboxRunner
from sandtrade.v1 import common_pb2, trading_pb2, trading_pb2_grpc
from sandtrade.v1 import strategies_pb2 as spb
from signals.conftest import Host, post, start_host, stop_host

CONFIG = """
[risk]
max_order_notional = 5000

[accounts.paper.risk]
max_position_qty = 30
max_daily_loss = 300

[accounts.s1.risk]
max_daily_loss = 50
"""


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    """A host configured with CONFIG's risk rules."""
    h = start_host(tmp_path, CONFIG)
    try:
        yield h
    finally:
        stop_host(h)


@pytest.fixture
def trading(host: Host) -> Iterator[trading_pb2_grpc.TradingServiceStub]:
    assert host.runtime.rpc is not None
    with grpc.insecure_channel(host.runtime.rpc.address) as ch:
        yield trading_pb2_grpc.TradingServiceStub(ch)


def operator(host: Host) -> tuple[tuple[str, str], ...]:
    return bearer(host.runtime.operator_token_path.read_text().strip())


def submit(trading: Any, host: Host, account: str, qty: float, *,
           side: int = common_pb2.ORDER_SIDE_BUY) -> Order:
    resp = trading.SubmitOrder(market_order("AAA", qty, side=side, account=account),
                               metadata=operator(host), timeout=WAIT)
    return convert.order_from_pb(resp.order)


def webhook_order(host: Host, action: str, qty: float) -> Order:
    """Send a TradingView alert for account paper; the order it made, once executed."""
    before = len(host.orders())
    r = post(host.webhook, {"ticker": "AAA", "action": action, "contracts": qty})
    assert r.status_code == 200, r.text
    host.wait_idle()
    orders = host.orders()
    assert len(orders) == before + 1, [s.reason for s in host.signals()]
    return orders[-1]


def test_configured_rules_hold_over_grpc_and_the_webhook(host: Host, trading: Any) -> None:
    host.market.publish(100.0)
    assert host.runtime.store is not None
    host.runtime.store.create_account(Account(id="other", cash=100_000.0,
                                              initial_cash=100_000.0))
    size = ("risk: max position size: buy 40 AAA would make the AAA position 40 (limit 30)")
    assert submit(trading, host, "paper", 40).reject_reason == size
    assert webhook_order(host, "buy", 40).reject_reason == size
    [*_, signal] = host.signals()
    assert size in signal.reason
    # an account without rules of its own trades under [risk]
    assert submit(trading, host, "other", 60).reject_reason == (
        "risk: max order notional: buy 60 AAA at ~100.00 is worth 6,000.00 (limit 5,000.00)")
    got = trading.GetAccountSettings(trading_pb2.GetAccountSettingsRequest(account="other"),
                                     metadata=operator(host), timeout=WAIT)
    assert not got.own and got.settings.risk.max_order_notional == 5000
    got = trading.GetAccountSettings(trading_pb2.GetAccountSettingsRequest(account="paper"),
                                     metadata=operator(host), timeout=WAIT)
    assert got.own and got.settings.risk.max_position_qty == 30
    assert got.standing.day == "2024-01-02" and got.standing.start_equity == 10_000.0


def test_settings_over_grpc_are_admin_validated_idempotent_and_stored(
        host: Host, trading: Any, tmp_path: Path) -> None:
    host.market.publish(100.0)
    assert host.runtime.auth is not None
    _, trader = host.runtime.auth.create("paper", ("read", "trade"))

    def set_rules(metadata: Any, request_id: str = "", **rules: Any) -> Any:
        request = trading_pb2.SetAccountSettingsRequest(account="paper",
                                                        request_id=request_id)
        convert.risk_rules_to_pb(RiskRules(**rules), request.settings.risk)
        return trading.SetAccountSettings(request, metadata=metadata, timeout=WAIT)

    with pytest.raises(grpc.RpcError) as denied:
        set_rules(bearer(trader), max_orders_per_day=1)
    assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
    bad = trading_pb2.SetAccountSettingsRequest(account="paper")
    bad.settings.risk.max_daily_loss = -1
    with pytest.raises(grpc.RpcError) as invalid:
        trading.SetAccountSettings(bad, metadata=operator(host), timeout=WAIT)
    assert invalid.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(invalid.value) == ["settings.risk.max_daily_loss"]

    first = set_rules(operator(host), "r1", max_orders_per_day=1)
    assert first.own and first.settings.risk.max_orders_per_day == 1
    assert not first.settings.risk.HasField("max_position_qty")  # replaced, not merged
    set_rules(operator(host), "r2", max_orders_per_day=2)
    again = set_rules(operator(host), "r1", max_orders_per_day=1)  # a retry of r1
    assert again.settings.risk.max_orders_per_day == 1
    now = trading.GetAccountSettings(trading_pb2.GetAccountSettingsRequest(account="paper"),
                                     metadata=bearer(trader), timeout=WAIT)
    assert now.settings.risk.max_orders_per_day == 2, "a retry must not run twice"
    for _ in range(2):
        assert submit(trading, host, "paper", 1).reject_reason is None
    assert submit(trading, host, "paper", 1).reject_reason == (
        "risk: orders per day: 2 orders accepted today (limit 2); until 2024-01-03 only "
        "orders that reduce a position are accepted")

    # stored: a restarted host keeps them (the TOML's [accounts.paper.risk] loses to them)
    stop_host(host)
    again_host = start_host(tmp_path, CONFIG)
    try:
        assert again_host.runtime.live is not None
        rules = again_host.runtime.live.call(lambda b: b.rules("paper"))
        assert rules == RiskRules(max_orders_per_day=2)
        assert again_host.runtime.live.call(
            lambda b: b.risk_standing("paper").orders_today) == 2
    finally:
        stop_host(again_host)


def test_daily_loss_halts_grpc_and_the_webhook_but_not_reducing_orders(host: Host,
                                                                       trading: Any) -> None:
    host.market.publish(100.0)
    assert webhook_order(host, "buy", 25).reject_reason is None
    host.market.publish(100.0)
    host.market.publish(90.0, close=80.0)  # 25 × 20 = 500 below the start
    reason = ("risk: daily loss limit: equity 9,500.00 is 500.00 below today's start "
              "10,000.00 (limit 300.00); until 2024-01-03 only orders that reduce a position "
              "are accepted")
    assert webhook_order(host, "buy", 1).reject_reason == reason
    assert submit(trading, host, "paper", 1).reject_reason == reason
    assert webhook_order(host, "sell", 10).reject_reason is None
    assert submit(trading, host, "paper", 5,
                  side=common_pb2.ORDER_SIDE_SELL).reject_reason is None


ALTERNATE = """
def on_bar(ctx, bar):
    if ctx.position().qty == 0:
        ctx.buy(10)
    else:
        ctx.sell(10)
"""


def test_backtest_honours_the_accounts_rules(host: Host, trading: Any) -> None:
    """A strategy halted by its account's daily loss limit live is halted on the same bar in
    its back-test, with the same trades and the same rejections."""
    assert host.runtime.rpc is not None and isinstance(host.runtime.source, StepSource)
    with grpc.insecure_channel(host.runtime.rpc.address) as ch:
        strategies = Stub(ch)
        upload(strategies, operator(host), "alt", ALTERNATE, account="s1")
        start(strategies, operator(host), "alt")
        wait_running(strategies, operator(host), "alt")
        bars = [Bar.checked("AAA", host.market.time.replace(minute=31 + i), p, p, p, p, 1e6)
                for i, p in enumerate(100.0 - 2 * i for i in range(20))]
        for bar in bars:
            host.runtime.source.push(bar)
        host.runtime.source.wait_handled(len(bars), timeout=120)
        host.market.flush_broker()
        store, broker = host.runtime.store, host.runtime.live
        assert store is not None and broker is not None
        live = eventually(lambda: store.list_orders("s1", limit=1000),
                          lambda orders: len(orders) >= 19, "the strategy's orders", 30.0)
        rejected = [(o.created_at, o.reject_reason) for o in live if o.reject_reason]
        assert rejected, "the daily loss limit was never reached: the test proves nothing"
        assert all(r and r.startswith("risk: daily loss limit") for _, r in rejected)
        live_trades = broker.call(lambda b: list(b.closed_trades("s1")))

        # RunBacktest passes the account's rules: the same trades
        answers = list(strategies.RunBacktest(spb.RunBacktestRequest(name="alt"),
                                              metadata=operator(host), timeout=120))
        assert len(answers[-1].trades) == len(live_trades)

    # The same back-test in the sandbox, reading its rejections: the same bars, the same words
    request = BacktestRequest(strategy="alt.py", data=[DataSpec(path="AAA")],
                              cash=host.runtime.settings.cash,
                              risk=RiskRules(max_daily_loss=50))
    result = SandboxRunner().run_source(ALTERNATE, request, {"AAA": bars})
    assert [trade_key(t) for t in result.trades] == [trade_key(t) for t in live_trades]
    backtest_rejected = [(w.split(": order ")[0], w.split(" rejected: ")[1])
                         for w in result.warnings if " rejected: " in w]
    assert backtest_rejected == [(str(t), r) for t, r in rejected]
