"""Live performance: an account's figures are the back-test's stats of the same trades on the
same bars (the same code computes them), a split per source adds up to the account, and a
token reads its own account's only."""

from __future__ import annotations

import math

import grpc
import pytest

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.client import Client
from sandtrade.host.runtime import HostRuntime
from sandtrade.market import iter_csv, sample_csv_path
from sandtrade.models import Bar
from sandtrade.sandbox.runner import SandboxRunner
from sandtrade.v1 import strategies_pb2_grpc, trading_pb2_grpc
from sandtrade.v1 import trading_pb2 as tpb

from .conftest import WAIT, Caller, Market, Metadata, StepSource, market_order
from .test_strategies import EXAMPLES, start, upload


def _same(live: float | None, backtest: float) -> bool:
    if live is None:
        return math.isnan(backtest)
    return live == pytest.approx(backtest, rel=1e-9, abs=1e-9)


def test_a_strategys_live_performance_is_its_backtests_stats(
        channel: grpc.Channel, operator: Metadata, runtime: HostRuntime) -> None:
    source = (EXAMPLES / "sma_cross.py").read_text()
    params = {"fast": 5, "slow": 12}
    stub = strategies_pb2_grpc.StrategyServiceStub(channel)
    upload(stub, operator, "sma", source, account="s1", **params)
    start(stub, operator, "sma")
    bars = [Bar("AAA", b.time, b.open, b.high, b.low, b.close, b.volume)
            for b in iter_csv(sample_csv_path())][:300]
    assert isinstance(runtime.source, StepSource)
    for bar in bars:
        runtime.source.push(bar)
    runtime.source.wait_handled(len(bars), timeout=120)
    assert runtime.live is not None and runtime.rpc is not None
    runtime.live.call(lambda b: None)

    request = BacktestRequest(strategy="sma_cross.py", data=[DataSpec(path="AAA")],
                              cash=runtime.settings.cash, params=params)
    stats = SandboxRunner().run_source(source, request, {"AAA": bars}).stats
    assert stats["# Trades"] >= 10, "the comparison is not vacuous"

    with Client(runtime.rpc.address, runtime.operator_token_path.read_text().strip()) as c:
        by_account = c.performance("s1")
        by_strategy = c.performance("s1", "strategy")
    assert list(by_account) == ["s1"] and list(by_strategy) == ["sma"]
    for figures in (by_account["s1"], by_strategy["sma"]):
        assert figures["trades"] == stats["# Trades"]
        for key, stat in (("return_pct", "Return [%]"), ("max_drawdown_pct",
                          "Max. Drawdown [%]"), ("sharpe", "Sharpe Ratio"),
                          ("win_rate_pct", "Win Rate [%]"), ("profit_factor", "Profit Factor")):
            assert _same(figures[key], stats[stat]), (key, figures[key], stats[stat])


def test_the_split_per_source_adds_up_to_the_account(
        trading: trading_pb2_grpc.TradingServiceStub, alice: Caller,
        runtime: HostRuntime) -> None:
    market = Market(runtime)
    market.publish(100.0)
    client_md = (*alice.metadata, ("x-sandtrade-client", "python/1.0"))
    for md, side in ((alice.metadata, 1), (client_md, 1)):
        trading.SubmitOrder(market_order(qty=5, side=side), metadata=md, timeout=WAIT)
    market.publish(101.0)
    for md in (alice.metadata, client_md):
        trading.SubmitOrder(market_order(qty=5, side=2), metadata=md, timeout=WAIT)
    market.publish(104.0, close=103.0)
    market.publish(103.0)

    def perf(by: int) -> dict[str, tpb.PerformanceFigures]:
        resp = trading.GetPerformance(tpb.GetPerformanceRequest(by=by),
                                      metadata=alice.metadata, timeout=WAIT)
        return {g.key: g for g in resp.groups}

    whole = perf(tpb.PERFORMANCE_GROUPING_ACCOUNT)["alice"]
    split = perf(tpb.PERFORMANCE_GROUPING_SOURCE)
    assert set(split) == {"grpc", "client"}
    assert sum(g.trades for g in split.values()) == whole.trades == 2
    assert sum(g.return_pct for g in split.values()) == pytest.approx(whole.return_pct)
    # bought 10 at 101 (the next open), sold at 104
    assert whole.return_pct == pytest.approx((104.0 - 101.0) * 10 / 100_000 * 100)


def test_a_token_reads_only_its_own_accounts_performance(
        trading: trading_pb2_grpc.TradingServiceStub, alice: Caller, bob: Caller) -> None:
    with pytest.raises(grpc.RpcError) as err:
        trading.GetPerformance(tpb.GetPerformanceRequest(account="bob"),
                               metadata=alice.metadata, timeout=WAIT)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    mine = trading.GetPerformance(tpb.GetPerformanceRequest(), metadata=bob.metadata,
                                  timeout=WAIT)
    assert [g.key for g in mine.groups] == []  # no fills yet: no groups
