"""Per-account strategy quotas (``[accounts.NAME.quotas] strategy_*``): ctx calls per event,
log lines per second and the size of ``ctx.state``. The same strategy runs in two accounts of
one real host; the account with tight quotas is held to them, its neighbour is not."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from rpc.conftest import WAIT, Market, bearer, serving
from rpc.test_strategies import eventually, log_lines, start, status, upload, wait_running
from sandtrade.host.runtime import HostRuntime
from sandtrade.v1 import strategies_pb2 as spb
from sandtrade.v1 import strategies_pb2_grpc

Stub = strategies_pb2_grpc.StrategyServiceStub

# A log burst of two lines (0.04 lines/s for 50 s); the next one would pass 25 s later.
TIGHT = {"strategy_ctx_calls": 5, "strategy_log_lines_per_second": 0.04,
         "strategy_log_burst_seconds": 50, "strategy_state_bytes": 100}

CALLER = """\
def on_bar(ctx, bar):
    answered = refused = 0
    reason = "none refused"
    for i in range(8):
        try:
            ctx.account
            answered += 1
        except Exception as e:
            refused += 1
            reason = str(e)
    print("answered", answered, "refused", refused, reason)
    for i in range(5):
        print("chatter", i)
"""

KEEPER = """\
def on_bar(ctx, bar):
    ctx.state["notes"] = "x" * 200
"""


@pytest.fixture
def host(tmp_path: Path) -> Iterator[HostRuntime]:
    with serving(tmp_path, accounts={"tight": {"quotas": TIGHT}}) as runtime:
        yield runtime


@pytest.fixture
def stub(host: HostRuntime) -> Iterator[Stub]:
    assert host.rpc is not None
    with grpc.insecure_channel(host.rpc.address) as channel:
        yield Stub(channel)


@pytest.fixture
def operator(host: HostRuntime) -> tuple[tuple[str, str], ...]:
    return bearer(host.operator_token_path.read_text().strip())


def run_both(stub: Stub, operator: tuple[tuple[str, str], ...], source: str,
             prefix: str) -> tuple[str, str]:
    names = (f"{prefix}-tight", f"{prefix}-roomy")
    for name, account in zip(names, ("tight", "roomy"), strict=True):
        upload(stub, operator, name, source, account=account)
        start(stub, operator, name)
    for name in names:
        wait_running(stub, operator, name)
    return names


def strategy_lines(stub: Stub, operator: tuple[tuple[str, str], ...], name: str,
                   origin: int = spb.LOG_ORIGIN_STRATEGY) -> list[str]:
    return log_lines(stub, operator, name, tail=1000, origin=origin)


def test_ctx_calls_and_log_lines_follow_the_accounts_quotas(
        host: HostRuntime, stub: Stub, operator: tuple[tuple[str, str], ...]) -> None:
    tight, roomy = run_both(stub, operator, CALLER, "caller")
    market = Market(host)
    for k in range(3):
        market.publish(100.0 + k)

    refusal = ("quota: 5 ctx calls in one on_bar (strategy_ctx_calls); the rest of this "
               "event's calls are refused (RESOURCE_EXHAUSTED)")
    lines = eventually(lambda: strategy_lines(stub, operator, tight),
                       lambda got: bool(got), "the tight strategy logged nothing", WAIT)
    assert lines[0] == f"answered 5 refused 3 {refusal}", lines
    assert len(lines) == 2, lines  # the burst; the other 16 lines were dropped

    expected = (["answered 8 refused 0 none refused"] + [f"chatter {i}" for i in range(5)]) * 3
    eventually(lambda: strategy_lines(stub, operator, roomy), lambda got: got == expected,
               "the neighbour was held to the tight account's quotas", WAIT)

    # The dropped lines are counted and noted with the account's own rate, once the run ends.
    stub.StopStrategy(spb.StopStrategyRequest(name=tight), metadata=operator, timeout=WAIT)
    notes = eventually(lambda: strategy_lines(stub, operator, tight, spb.LOG_ORIGIN_HOST),
                       lambda got: "stopped" in got, "the strategy did not stop", WAIT)
    floods = [re.fullmatch(r"log flood: (\d+) lines dropped \(quota 0.04 lines/s\)", n)
              for n in notes if n.startswith("log flood")]
    assert floods and all(floods), notes
    assert sum(int(m[1]) for m in floods if m) == 16, notes


def test_a_state_past_the_accounts_quota_is_refused_alone(
        host: HostRuntime, stub: Stub, operator: tuple[tuple[str, str], ...]) -> None:
    tight, roomy = run_both(stub, operator, KEEPER, "keeper")
    Market(host).publish(100.0)

    st = eventually(lambda: status(stub, operator, tight), lambda s: bool(s.last_errors),
                    "the tight strategy's state was not refused", WAIT)
    assert "ctx.state: larger than the limit of 100 bytes" in st.last_errors[-1], \
        list(st.last_errors)
    assert host.store is not None
    neighbour = status(stub, operator, roomy)
    assert list(neighbour.last_errors) == []
    assert host.store.get_state_text(f"strategy:{neighbour.strategy.id}:state") is not None
