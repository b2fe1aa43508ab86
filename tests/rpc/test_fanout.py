"""No strategy waits for another: in the free mode each running strategy takes the market from
its own mailbox, so a stalled or slow one falls behind alone, and the feed goes on.

Real hosts (the ``runtime`` fixture is redefined here with ``[strategies] mode = "free"``),
real workers, real gRPC.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import grpc
import pytest

from sandtrade.host.runtime import HostRuntime
from sandtrade.v1 import common_pb2
from sandtrade.v1 import strategies_pb2 as spb
from sandtrade.v1 import trading_pb2 as tpb

from .conftest import Market, Metadata, bearer, serving
from .test_strategies import (
    Stub,
    eventually,
    log_lines,
    start,
    status,
    upload,
    wait_running,
)

BACKLOG = 8


@pytest.fixture
def runtime(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[HostRuntime]:
    """A host in the free mode; each strategy's backlog is the default, or the test's
    (``@pytest.mark.parametrize("runtime", [N], indirect=True)``)."""
    backlog = getattr(request, "param", 1024)
    with serving(tmp_path, strategies={"mode": "free", "backlog": backlog}) as h:
        yield h


@pytest.fixture
def strategies(channel: grpc.Channel) -> Stub:
    return Stub(channel)


PRINT_TIME = """\
def on_bar(ctx, bar):
    print("bar", bar.time.isoformat())
"""

SPINNER = """\
def on_bar(ctx, bar):
    while True:
        pass
"""

#: Spins in its first on_bar until the wall clock has moved 4 s (its budget is 10 s), then
#: prints every bar it gets.
SLOW_FIRST = """\
import datetime


def on_bar(ctx, bar):
    if not ctx.state.get("slept"):
        ctx.state["slept"] = True
        until = datetime.datetime.now() + datetime.timedelta(seconds=4)
        while datetime.datetime.now() < until:
            pass
    print("bar", bar.time.isoformat(), bar.open, bar.high, bar.low, bar.close)
"""


def bar_times(lines: list[str]) -> list[str]:
    return [line.split()[1] for line in lines if line.startswith("bar ")]


def test_feed_does_not_wait_for_a_stalled_strategy(strategies: Stub, operator: Metadata,
                                                   market: Market) -> None:
    """A strategy stuck in an endless on_bar does not hold the feed or its neighbour: the
    neighbour gets every bar once, in order, while the spinner is still in its first hook."""
    upload(strategies, operator, "spinner", SPINNER, account="mallory")
    upload(strategies, operator, "benign", PRINT_TIME, account="alice")
    for name in ("spinner", "benign"):
        start(strategies, operator, name)
        wait_running(strategies, operator, name)
    published = [market.publish(100 + k % 7) for k in range(100)]  # returns as the broker works
    want = [b.time.isoformat() for b in published]
    got = eventually(lambda: bar_times(log_lines(strategies, operator, "benign", tail=1000)),
                     lambda seen: len(seen) >= 100, "the benign strategy got 100 bars",
                     timeout=30)
    assert got == want  # every bar once, in order
    # The spinner is still in its first hook (its budget is 10 s a hook): nobody waited on it.
    spinner = status(strategies, operator, "spinner")
    assert spinner.strategy.state == spb.STRATEGY_STATE_RUNNING, spinner
    assert spinner.lag_bars > 0


@pytest.mark.parametrize("runtime", [BACKLOG], indirect=True)
def test_a_lagging_strategy_is_coalesced_and_told(strategies: Stub, operator: Metadata,
                                                   market: Market) -> None:
    """Past its backlog a slow strategy's oldest bars are merged (OHLC of the path, nothing
    of the last close lost); its status counts them and its log says it fell behind."""
    upload(strategies, operator, "slow", SLOW_FIRST, account="alice")
    start(strategies, operator, "slow")
    wait_running(strategies, operator, "slow")
    first = market.publish(100)
    eventually(lambda: status(strategies, operator, "slow").lag_bars, lambda n: n == 0,
               "the first bar taken (the strategy spins on it now)")
    published = [market.publish(100 + k, 110 + k, 90 - k, 101 + k) for k in range(1, 30)]
    lines = eventually(lambda: log_lines(strategies, operator, "slow", tail=1000),
                       lambda seen: published[-1].time.isoformat() in " ".join(seen),
                       "the slow strategy caught up with the last bar", timeout=60)
    bars = [line.split() for line in lines if line.startswith("bar ")]
    times = [datetime.fromisoformat(b[1]) for b in bars]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert times[0] == first.time
    final = status(strategies, operator, "slow")
    c = final.bars_coalesced
    assert c > 0 and final.bars_dropped == 0
    assert c + len(bars) == 30
    # The oldest pending bars were merged, one into the next: the first bar it got after
    # its long hook spans published[0..c], the whole path of those bars.
    span = published[:c + 1]
    assert [float(x) for x in bars[1][2:]] == [
        span[0].open, max(b.high for b in span), min(b.low for b in span), span[-1].close]
    assert bars[1][1] == span[-1].time.isoformat()
    assert bar_times(lines)[2:] == [b.time.isoformat() for b in published[c + 1:]]
    assert any("falling behind" in line and "coalesced" in line for line in lines), lines


def test_fanout_stats_need_the_operator(strategies: Stub, operator: Metadata,
                                        market: Market, make_token: object) -> None:
    upload(strategies, operator, "one", PRINT_TIME, account="alice")
    start(strategies, operator, "one")
    wait_running(strategies, operator, "one")
    for k in range(5):
        market.publish(100 + k)
    stats = eventually(lambda: strategies.GetFanoutStats(spb.GetFanoutStatsRequest(),
                                                         metadata=operator, timeout=5),
                       lambda s: s.bars >= 5, "five bars measured")
    assert stats.mode == "free" and stats.strategies == 1
    assert 0 <= stats.p50_ms <= stats.p99_ms <= stats.max_ms
    assert [(lag.name, lag.account) for lag in stats.lags] == [("one", "alice")]
    assert stats.lags[0].events >= 5 and stats.lags[0].p99_ms <= stats.max_ms + 1e-6
    alice_admin = bearer(make_token("alice", "admin"))  # type: ignore[operator]
    with pytest.raises(grpc.RpcError) as err:
        strategies.GetFanoutStats(spb.GetFanoutStatsRequest(), metadata=alice_admin, timeout=5)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "operator" in (err.value.details() or "")


@pytest.mark.parametrize(("settings", "pace", "lockstep"), [
    ({}, 0, True), ({}, 20, False), ({"mode": "free"}, 0, False),
    ({"mode": "lockstep"}, 20, True)])
def test_lockstep_is_the_default_at_full_speed(tmp_path: Path, settings: dict[str, str],
                                               pace: float, lockstep: bool) -> None:
    with serving(tmp_path, market={"bars_per_second": pace}, strategies=settings) as h:
        assert h.strategies is not None and h.strategies.lockstep is lockstep


#: Spins 3 s in its first on_bar (the market moves on meanwhile), then buys at market.
LATE_BUYER = """\
import datetime


def on_bar(ctx, bar):
    if not ctx.state.get("bought"):
        ctx.state["bought"] = True
        until = datetime.datetime.now() + datetime.timedelta(seconds=3)
        while datetime.datetime.now() < until:
            pass
        ctx.buy(1)
"""


def test_orders_of_a_lagging_strategy_fill_at_the_next_bar_the_broker_works(
        strategies: Stub, operator: Metadata, market: Market, trading: Any) -> None:
    """A strategy that decided on a stale bar does not trade at that bar's prices: its order
    reaches the broker when it is sent and fills at the open of the next bar the broker works
    after that, as in a real market (the bars published while it computed are history)."""
    upload(strategies, operator, "late", LATE_BUYER, account="lena")
    start(strategies, operator, "late")
    wait_running(strategies, operator, "late")
    market.publish(100)  # the bar it decides on; it spins on it
    for k in range(1, 5):
        market.publish(100 + k)  # worked while it spins: nobody's order is waiting
    orders = eventually(
        lambda: trading.ListOrders(tpb.ListOrdersRequest(account="lena"), metadata=operator,
                                   timeout=10).orders,
        lambda got: len(got) == 1, "the late order reached the broker", timeout=30)
    assert orders[0].status != common_pb2.ORDER_STATUS_FILLED
    after = market.publish(250)  # the first bar worked after the order arrived
    filled = eventually(
        lambda: trading.ListOrders(tpb.ListOrdersRequest(account="lena"), metadata=operator,
                                   timeout=10).orders[0],
        lambda o: o.status == common_pb2.ORDER_STATUS_FILLED, "the order filled", timeout=10)
    assert filled.avg_fill_price == after.open == 250
