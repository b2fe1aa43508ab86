"""Live attacks: a hostile strategy in a real host, against the host and its other strategies.

Each test uploads the attack through StrategyService to a real host (:class:`HostRuntime`
with its gRPC server on a real port, the sqlite store, real sandboxed workers), the market
moved by the test through the ``steps`` source of ``rpc/conftest.py``, and checks that the
attack is cut with a reason a person understands while a neighbour strategy goes on.

The feed still waits for every strategy on every bar (the lockstep), so a neighbour's bar
may wait for the attacker's hook until it is killed: these tests publish without the usual
5 s wait and assert that the neighbour receives the bars published after the kill.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import grpc
import pytest

from rpc.conftest import START, WAIT, StepSource, bearer, serving
from rpc.test_strategies import eventually, log_lines, start, status, upload, wait_running
from sandtrade.host.runtime import HostRuntime
from sandtrade.models import Bar
from sandtrade.sandbox.manager import LIVE_LIMITS
from sandtrade.v1 import strategies_pb2 as spb
from sandtrade.v1 import strategies_pb2_grpc

#: Hooks killed at their 5 s budget: part of the slow set.
pytestmark = pytest.mark.slow

Stub = strategies_pb2_grpc.StrategyServiceStub
#: How long the feed may take with one bar while an attacker's hook holds it (the lockstep
#: waits up to twice the hook budget plus 10 s).
FEED_WAIT = 40.0

NEIGHBOUR = """\
def on_bar(ctx, bar):
    print("bar", bar.close)
"""


class Feed:
    """Publishes bars of AAA one minute apart, waiting as long as the lockstep may take."""

    def __init__(self, host: HostRuntime) -> None:
        assert isinstance(host.source, StepSource)
        self.source = host.source
        self.count = 0

    def publish(self, close: float) -> None:
        self.count += 1
        when = START + timedelta(minutes=self.count)
        self.source.push(Bar.checked("AAA", when, close, close, close, close, 1_000.0))
        self.source.wait_handled(self.count, timeout=FEED_WAIT)


@pytest.fixture
def host(tmp_path: Path) -> Iterator[HostRuntime]:
    """A started host in ``tmp_path`` (gRPC on a free port), fed by the ``steps`` source."""
    with serving(tmp_path) as runtime:
        yield runtime


@pytest.fixture
def stub(host: HostRuntime) -> Iterator[Stub]:
    assert host.rpc is not None
    with grpc.insecure_channel(host.rpc.address) as channel:
        yield Stub(channel)


@pytest.fixture
def operator(host: HostRuntime) -> tuple[tuple[str, str], ...]:
    return bearer(host.operator_token_path.read_text().strip())


def strategy_lines(stub: Stub, operator: tuple[tuple[str, str], ...], name: str) -> list[str]:
    return log_lines(stub, operator, name, tail=1000, origin=spb.LOG_ORIGIN_STRATEGY)


# ------------------------------------------------------------------ the hook budget

#: Spins in its first run's on_bar, calling ctx.account and swallowing every refusal; the
#: runs after it (on_start counts them in ctx.state, committed before the first bar) behave.
CTX_SPINNER = """\
def on_start(ctx):
    ctx.state["starts"] = ctx.state.get("starts", 0) + 1


def on_bar(ctx, bar):
    while ctx.state["starts"] == 1:
        try:
            ctx.account
        except Exception:
            pass
    print("bar", bar.close)
"""


def test_on_bar_calling_ctx_account_forever_is_killed_at_its_budget(
        host: HostRuntime, stub: Stub, operator: tuple[tuple[str, str], ...]) -> None:
    """Every ctx call is a frame from the worker, and frames used to count as signs of life:
    a hook that kept calling was never killed. It is now killed at its hook budget (5 s live),
    the reason names the budget and how many calls it made, and the neighbour's bars go on."""
    assert LIVE_LIMITS.event_seconds == 5
    upload(stub, operator, "spinner", CTX_SPINNER, account="mallory")
    upload(stub, operator, "neighbour", NEIGHBOUR, account="alice")
    for name in ("spinner", "neighbour"):
        start(stub, operator, name)
        wait_running(stub, operator, name)
    feed = Feed(host)

    published = time.monotonic()
    feed.publish(1.0)
    st = eventually(lambda: status(stub, operator, "spinner"),
                    lambda s: s.kill_reason != "", "the spinner was not killed", FEED_WAIT)
    killed_after = time.monotonic() - published
    match = re.search(r"on_bar ran past its 5 s budget while calling ctx ([\d,]+) times",
                      st.kill_reason)
    assert match, st.kill_reason
    # Past the per-event quota of 1,000 calls: refused, and still killed at the budget.
    assert int(match[1].replace(",", "")) > 1_000, st.kill_reason
    assert st.kill_reason.startswith("spinner: stopped by the sandbox (timeout): "), \
        st.kill_reason
    assert 4.5 < killed_after < 20, f"killed {killed_after:.1f} s after the bar"

    feed.publish(2.0)
    feed.publish(3.0)
    eventually(lambda: strategy_lines(stub, operator, "neighbour"),
               lambda lines: lines == ["bar 1.0", "bar 2.0", "bar 3.0"],
               "the neighbour did not get every bar", FEED_WAIT)
    assert status(stub, operator, "neighbour").strategy.state == spb.STRATEGY_STATE_RUNNING


ON_STOP_SPINNER = """\
def on_bar(ctx, bar):
    pass


def on_stop(ctx):
    while True:
        try:
            ctx.account
        except Exception:
            pass
"""


def test_on_stop_calling_ctx_forever_does_not_hang_stop_strategy(
        host: HostRuntime, stub: Stub, operator: tuple[tuple[str, str], ...]) -> None:
    """StopStrategy used to wait for on_stop longer than a client's deadline: it now answers
    within about 2 s with STOPPING, and the spinning on_stop is killed at its 5 s budget in
    the background; the strategy then reads STOPPED and its log says why."""
    upload(stub, operator, "stuck", ON_STOP_SPINNER, account="mallory")
    start(stub, operator, "stuck")
    wait_running(stub, operator, "stuck")
    assert host.strategies is not None
    run = host.strategies.run("mallory", "stuck")
    assert run is not None and run.worker is not None
    worker = run.worker

    asked = time.monotonic()
    answer = stub.StopStrategy(spb.StopStrategyRequest(name="stuck"), metadata=operator,
                               timeout=3.0).strategy
    assert time.monotonic() - asked < 3.0
    assert answer.state == spb.STRATEGY_STATE_STOPPING
    assert status(stub, operator, "stuck").strategy.state == spb.STRATEGY_STATE_STOPPING

    eventually(lambda: worker.proc.poll(), lambda code: code is not None,
               "the worker of the spinning on_stop was not killed", 10.0)
    gone_after = time.monotonic() - asked
    assert gone_after < 8.0, f"the worker ended {gone_after:.1f} s after the stop"
    st = eventually(lambda: status(stub, operator, "stuck"),
                    lambda s: s.strategy.state == spb.STRATEGY_STATE_STOPPED,
                    "the strategy did not read STOPPED", WAIT)
    assert not st.kill_reason, st.kill_reason  # stopped as asked, not failed
    notes = log_lines(stub, operator, "stuck", origin=spb.LOG_ORIGIN_HOST)
    assert re.fullmatch(r"stopped \(on_stop ran past its 5 s budget while calling "
                        r"ctx [\d,]+ times\)", notes[-1]), notes


# ------------------------------------------------------------------ quotas

QUOTA_PROBE = """\
def on_bar(ctx, bar):
    answered = 0
    refused = []
    for i in range(1003):
        try:
            ctx.account
            answered += 1
        except Exception as e:
            refused.append(str(e))
    print("answered", answered, "refused", len(refused))
    print(refused[0] if refused else "none refused")
"""


def test_ctx_calls_beyond_the_per_event_quota_are_refused(
        host: HostRuntime, stub: Stub, operator: tuple[tuple[str, str], ...]) -> None:
    """1,003 ctx calls in one on_bar: the first 1,000 are answered, the rest refused with a
    reason naming the quota, counted by the host per event (the next bar gets 1,000 again);
    the strategy is not stopped for it."""
    upload(stub, operator, "chatty", QUOTA_PROBE, account="mallory")
    start(stub, operator, "chatty")
    wait_running(stub, operator, "chatty")
    feed = Feed(host)
    feed.publish(1.0)
    feed.publish(2.0)
    refusal = ("quota: 1,000 ctx calls in one on_bar (strategy_ctx_calls); the rest of "
               "this event's calls are refused (RESOURCE_EXHAUSTED)")
    eventually(lambda: strategy_lines(stub, operator, "chatty"),
               lambda lines: lines == ["answered 1000 refused 3", refusal] * 2,
               "the calls past the quota were not refused as expected", WAIT)
    st = status(stub, operator, "chatty")
    assert st.strategy.state == spb.STRATEGY_STATE_RUNNING and not st.kill_reason
    assert list(st.last_errors) == []
