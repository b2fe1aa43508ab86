"""Live attacks through ``ctx.state`` and through failing hooks, on a real host.

Each test runs a real :class:`HostRuntime` (SQLite store, live broker, gRPC on port 0, real
sandboxed workers) fed bar by bar by the ``steps`` source of the gRPC room, with strategies
uploaded and started over gRPC with the operator's token. The attacks:

* a ``ctx.state`` the worker could encode but the host could not (a list nested about 985
  deep; variants 33, 5,000 and 100,000 deep and a 10 MiB string) used to raise
  ``RecursionError`` inside the broker's group commit, failing another account's orders and
  rebuilding the broker: now it fails only the attacker, who is stopped, with the depth named;
* a stored state too deep to read used to make StartStrategy an internal error: now the run
  starts with an empty state and a note, the bad state kept aside;
* state errors used to reset the error counter, and a strategy failing 19 events of every 20
  was never stopped: both now stop it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rpc.conftest import Market, Metadata, bearer, serving
from rpc.test_strategies import (
    FAILED,
    RUNNING,
    STATE_NAMES,
    eventually,
    log_lines,
    start,
    status,
    upload,
)
from sandtrade.host.runtime import HostRuntime
from sandtrade.models import OrderStatus
from sandtrade.sandbox.manager import MAX_ERRORS_IN_A_ROW, state_key
from sandtrade.store import JsonText
from sandtrade.v1 import strategies_pb2 as spb
from sandtrade.v1 import strategies_pb2_grpc

Stub = strategies_pb2_grpc.StrategyServiceStub
#: Seconds a stopped strategy may take to show as FAILED (its worker is killed first).
STOP_WAIT = 15.0


@pytest.fixture
def host(tmp_path: Path) -> Iterator[HostRuntime]:
    """A started host in ``tmp_path`` whose market moves only when the test publishes."""
    with serving(tmp_path) as runtime:
        yield runtime


@pytest.fixture
def market(host: HostRuntime) -> Market:
    return Market(host)


@pytest.fixture
def operator(host: HostRuntime) -> Metadata:
    return bearer(host.operator_token_path.read_text().strip())


@pytest.fixture
def strategies(host: HostRuntime) -> Iterator[Stub]:
    assert host.rpc is not None
    with grpc.insecure_channel(host.rpc.address) as channel:
        yield Stub(channel)


def wait_failed(stub: Stub, operator: Metadata, name: str) -> str:
    """The kill reason of ``name`` once it shows as FAILED."""
    st = eventually(lambda: status(stub, operator, name), lambda s: s.strategy.state == FAILED,
                    f"strategy {name!r} was not stopped", STOP_WAIT)
    return st.kill_reason


# ------------------------------------------------------------------ a deep ctx.state

NEIGHBOUR = """\
def on_bar(ctx, bar):
    if ctx.state.get("n", 0) < 20:
        ctx.buy(1)
        ctx.state["n"] = ctx.state.get("n", 0) + 1
"""

DEEP_STATE = """\
def on_bar(ctx, bar):
    value = []
    for _ in range({depth} - 1):
        value = [value]
    ctx.state["deep"] = value
"""

HUGE_STATE = """\
def on_bar(ctx, bar):
    ctx.state["huge"] = "x" * (10 << 20)
"""

ATTACKS = {
    "33 deep": (DEEP_STATE.format(depth=33), "nested deeper than 32"),
    "985 deep": (DEEP_STATE.format(depth=985), "nested deeper than 32"),
    "5,000 deep": (DEEP_STATE.format(depth=5_000), "nested deeper than 32"),
    "100,000 deep": (DEEP_STATE.format(depth=100_000), "nested deeper than 32"),
    "a 10 MiB string": (HUGE_STATE, "larger than the limit of 262,144 bytes"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
def test_deep_state_fails_only_its_own_strategy(attack: str, host: HostRuntime,
                                                strategies: Stub, operator: Metadata,
                                                market: Market,
                                                caplog: pytest.LogCaptureFixture) -> None:
    """Mallory's strategy sets a ctx.state the host must not take in, on every bar, while
    Bob's strategy (another account) buys on the same bars. Every one of Bob's orders is
    accepted and filled, no group commit fails, the broker is never rebuilt, and Mallory's
    strategy is stopped for its state, with the problem named."""
    source, problem = ATTACKS[attack]
    caplog.set_level(logging.WARNING)
    upload(strategies, operator, "mallory-bot", source, account="mallory")
    upload(strategies, operator, "bob-bot", NEIGHBOUR, account="bob")
    start(strategies, operator, "mallory-bot")
    start(strategies, operator, "bob-bot")

    for k in range(MAX_ERRORS_IN_A_ROW + 2):
        market.publish(100.0 + k)
    reason = wait_failed(strategies, operator, "mallory-bot")

    assert "events in a row" in reason and problem in reason and "ctx.state" in reason, reason
    assert host.store is not None and host.live is not None
    # Bob's last order fills on the bar after it was placed; a worker that started a bar or
    # two late (a loaded machine) places it later, so the market goes on until it has.
    orders = host.store.list_orders("bob")
    for k in range(10):
        if len(orders) == 20 and all(o.status == OrderStatus.FILLED for o in orders):
            break
        market.publish(200.0 + k)
        orders = host.store.list_orders("bob")
    assert len(orders) == 20, [o.reject_reason for o in orders]
    assert {o.status for o in orders} == {OrderStatus.FILLED}, \
        [(o.status, o.reject_reason) for o in orders]
    assert host.live.rebuilds == 0
    assert "group commit" not in caplog.text
    assert host.store.get_state(state_key("mallory-bot")) in (None, {})
    bob = status(strategies, operator, "bob-bot")
    assert bob.strategy.state == RUNNING and list(bob.last_errors) == []


# ------------------------------------------------------------------ a bad stored state

SHOWS_STATE = """\
def on_start(ctx):
    ctx.log("state at start", ctx.state)


def on_bar(ctx, bar):
    ctx.state["n"] = ctx.state.get("n", 0) + 1
"""


def test_bad_stored_state_starts_empty_with_a_note(host: HostRuntime, strategies: Stub,
                                                   operator: Metadata, market: Market) -> None:
    """A stored ctx.state too deep to read (written before the checks, or by hand) does not
    make StartStrategy an internal error: the strategy starts with {} and a host note naming
    the problem, the store says running, the bad text is kept under ``…:state.bad``, and the
    new state is saved as usual."""
    upload(strategies, operator, "victim", SHOWS_STATE, account="vic")
    assert host.store is not None
    stored = host.store.get_strategy("vic", "victim")
    assert stored is not None
    key = state_key(stored.id)
    bad = "[" * 985 + "]" * 985
    host.store.commit_many([], {key: JsonText(bad)})

    start(strategies, operator, "victim")  # raises on INTERNAL
    eventually(lambda: status(strategies, operator, "victim"),
               lambda s: s.strategy.state == RUNNING, "victim did not start", STOP_WAIT)
    record = host.store.get_strategy("vic", "victim")
    assert record is not None and record.desired == "running"
    market.publish(10.0)

    lines = log_lines(strategies, operator, "victim")
    notes = log_lines(strategies, operator, "victim", origin=spb.LOG_ORIGIN_HOST)
    assert ("stored ctx.state was unreadable (ctx.state: nested deeper than 32); "
            f"started with an empty state (kept aside as {key}.bad)") in notes, notes
    assert any(line.endswith("state at start {}") for line in lines), lines
    assert host.store.get_state(f"{key}.bad") == bad
    assert host.store.get_state(key) == {"n": 1}


# ------------------------------------------------------------------ counting failures

BAD_STATE_ONLY = """\
def on_bar(ctx, bar):
    ctx.state["seen"] = {bar.close}
"""


def test_state_errors_count_toward_stopping(strategies: Stub, operator: Metadata,
                                            market: Market) -> None:
    """Hooks that never raise but leave an unsaveable ctx.state fail each event: after
    MAX_ERRORS_IN_A_ROW of them the strategy is stopped, the reason naming the spot."""
    upload(strategies, operator, "setter", BAD_STATE_ONLY)
    start(strategies, operator, "setter")
    for k in range(MAX_ERRORS_IN_A_ROW - 1):
        market.publish(10.0 + k)
    st = status(strategies, operator, "setter")
    assert st.strategy.state == RUNNING, STATE_NAMES[st.strategy.state]
    assert "ctx.state['seen']: set is not a JSON value" in st.last_errors[-1]
    market.publish(100.0)

    reason = wait_failed(strategies, operator, "setter")
    assert f"its hooks failed {MAX_ERRORS_IN_A_ROW} events in a row" in reason, reason
    assert "ctx.state['seen']: set is not a JSON value" in reason, reason


NINETEEN_OF_TWENTY = """\
def on_bar(ctx, bar):
    ctx.state["n"] = ctx.state.get("n", 0) + 1
    if ctx.state["n"] % 20:
        raise ValueError("failing again")
"""


def test_failing_19_of_20_events_is_stopped(strategies: Stub, operator: Metadata,
                                            market: Market) -> None:
    """A strategy that succeeds only every 20th event never fails 20 in a row, but failing
    half of its recent events (once 40 are in) stops it, with the count in the reason."""
    upload(strategies, operator, "flaky", NINETEEN_OF_TWENTY)
    start(strategies, operator, "flaky")
    for k in range(30):
        market.publish(10.0 + k)
    assert status(strategies, operator, "flaky").strategy.state == RUNNING, \
        "30 events are too few to weigh"
    for k in range(12):
        market.publish(50.0 + k)

    reason = wait_failed(strategies, operator, "flaky")
    assert "in a row" not in reason
    assert "its hooks failed 38 of the last 40 events" in reason, reason
    assert "failing again" in reason
