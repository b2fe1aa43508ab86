"""The one I/O loop of live runs (``sandbox/dispatch.py``) in a real host, in the free mode.

Every live worker is driven by the thread ``sandbox-io``: the host's threads do not grow with
the strategies it runs, a worker that stops reading its pipe holds up nobody (the loop writes
without blocking), and a strategy's ``ctx.state`` is committed before its next event is sent.
The last two use the fake worker of ``live_worker.py`` (what a worker could do after an escape
from the language layer), plugged into the host's supervisor; the first runs real workers.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from sandtrade.errors import StoreError
from sandtrade.host.runtime import HostRuntime
from sandtrade.sandbox.dispatch import dispatcher
from sandtrade.v1 import strategies_pb2 as spb
from sandtrade.v1 import strategies_pb2_grpc

from .conftest import Market, Metadata, serving
from .test_strategies import IDLE, eventually, log_lines, start, status, upload, wait_running

Stub = strategies_pb2_grpc.StrategyServiceStub
FAKE = Path(__file__).with_name("live_worker.py")
#: Threads a host may start for its live runs, whatever their number: the loop, its door and
#: life pools (8 + 4), the spare's booter, the watchdog, and the spare timers of the latest
#: starts (each lives 1 s).
THREADS = 20


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[HostRuntime]:
    """A host in the free mode."""
    with serving(tmp_path, strategies={"mode": "free"}) as h:
        yield h


@pytest.fixture
def strategies(channel: grpc.Channel) -> Stub:
    return Stub(channel)


def fake_workers(runtime: HostRuntime) -> None:
    """The host's live runs get the fake worker (uploads are still checked by real ones)."""
    runtime.strategies.supervisor.worker_command = (sys.executable, "-I", str(FAKE))


def events(lines: list[str], kind: str) -> list[str]:
    return [line for line in lines if line.startswith(f"{kind} ")]


@pytest.mark.slow
def test_two_hundred_idle_strategies_cost_no_threads(strategies: Stub, operator: Metadata,
                                                     market: Market) -> None:
    """Thirty real strategies (two hundred in the bench) running and fed add a constant
    number of threads to the host, not two or three per strategy as the run thread and the
    pipe readers of each worker did."""
    market.publish(100.0)
    before = threading.active_count()
    names = [f"idle-{k}" for k in range(30)]
    for name in names:
        upload(strategies, operator, name, IDLE, account=f"acct{name[5:]}")
        start(strategies, operator, name)
    for name in names:
        wait_running(strategies, operator, name, timeout=120)
    for k in range(5):
        market.publish(101.0 + k)
    assert dispatcher().driving() >= len(names)
    eventually(threading.active_count, lambda n: n - before <= THREADS,
               f"the host's threads to grow by at most {THREADS} (it had {before})",
               timeout=30)
    assert not [t.name for t in threading.enumerate() if t.name.startswith("strategy-")]
    assert all(status(strategies, operator, n).strategy.state == spb.STRATEGY_STATE_RUNNING
               for n in names)


def test_a_worker_that_stops_reading_does_not_block_the_loop(
        runtime: HostRuntime, strategies: Stub, operator: Metadata, market: Market) -> None:
    """A worker that never reads its stdin again (its pipe one page long, too short for its
    warm-up) leaves its frame half written; the loop goes on with the other strategy, which
    gets every bar, and the deaf one is killed at its hook budget."""
    fake_workers(runtime)
    upload(strategies, operator, "benign", IDLE, account="alice")
    start(strategies, operator, "benign")
    wait_running(strategies, operator, "benign")
    for k in range(200):  # the deaf one's warm-up: 200 bars, 10 kB, past its 4 kB pipe
        market.publish(100.0 + k % 7)
    upload(strategies, operator, "deaf", IDLE + "# deaf\n", account="mallory")
    start(strategies, operator, "deaf")
    eventually(lambda: runtime.strategies.run("mallory", "deaf"),
               lambda run: run is not None and run.worker is not None,
               "the deaf strategy's worker to start")
    for k in range(40):
        market.publish(100.0 + k % 5)
    got = eventually(lambda: events(log_lines(strategies, operator, "benign", tail=1000),
                                    "bars"),
                     lambda seen: sum(int(line.split()[1]) for line in seen) >= 240,
                     "the benign strategy to get all 240 bars", timeout=30)
    assert got
    ended = eventually(lambda: log_lines(strategies, operator, "deaf", tail=1000),
                       lambda lines: any("worker ended" in line for line in lines),
                       "the deaf worker to be killed at its budget", timeout=30)
    assert any("the warm-up ran past its 5 s budget" in line for line in ended), ended


def test_state_is_durable_before_the_next_event(runtime: HostRuntime, strategies: Stub,
                                                operator: Metadata, market: Market) -> None:
    """Each event's ``ctx.state`` is committed before the next event reaches the worker: the
    worker reads the host's store at every event and finds the state it sent last."""
    fake_workers(runtime)
    marker = uuid.uuid4().hex
    db = runtime.settings.data_dir / "sandtrade.db"
    assert db.exists()
    upload(strategies, operator, "counter", f"{IDLE}# durable: {db} {marker}\n",
           account="alice")
    start(strategies, operator, "counter")
    wait_running(strategies, operator, "counter")
    for k in range(60):
        market.publish(100.0 + k % 7)
    checks = eventually(lambda: [line for line in log_lines(strategies, operator, "counter",
                                                            tail=1000)
                                 if line.startswith("durable ")],
                        lambda seen: len(seen) >= 10 and seen[-1] == "durable "
                        f"{len(seen) - 1} of {len(seen) - 1}" and not status(
                            strategies, operator, "counter").lag_bars,
                        "the counter to handle the bars", timeout=30)
    assert checks == [f"durable {k} of {k}" for k in range(len(checks))]


def test_calls_no_worker_makes_are_refused_one_by_one(runtime: HostRuntime, strategies: Stub,
                                                     operator: Metadata,
                                                     market: Market) -> None:
    """Calls whose ``op`` or ``args`` are of the wrong kind (lists, objects, numbers: what a
    worker could send after an escape) each get a refusal, and the run goes on."""
    fake_workers(runtime)
    upload(strategies, operator, "odd", IDLE + "# odd calls\n", account="mallory")
    start(strategies, operator, "odd")
    wait_running(strategies, operator, "odd")
    market.publish(100.0)
    market.publish(101.0)
    replies = eventually(
        lambda: [line for line in log_lines(strategies, operator, "odd", tail=1000)
                 if line.startswith("reply ")],
        lambda seen: len(seen) >= 12, "the odd calls' replies (two bars of six)")
    assert replies[:6] == [
        "reply [1] malformed call", 'reply {"a": 1} malformed call', "reply 5 malformed call",
        "reply \"fly\" unknown call 'fly'", 'reply "submit" malformed call',
        'reply "position" symbol must be a string'], replies
    assert replies[6:12] == replies[:6]
    assert status(strategies, operator, "odd").strategy.state == spb.STRATEGY_STATE_RUNNING


LOSES_ITS_ORDER = """\
def on_bar(ctx, bar):
    if not ctx.state.get("ordered"):
        order_id = ctx.buy(5)
        ctx.log("placed", order_id)
        ctx.state["ordered"] = order_id
"""


def test_a_run_told_of_an_order_the_store_then_lost_restarts_from_what_is_stored(
        runtime: HostRuntime, strategies: Stub, operator: Metadata, market: Market,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The door answers a worker's order from the broker's memory, and the event ends only
    once the order is durable. When its group commit fails (a disk full, injected here),
    what the worker was told is no longer true: it is killed with that reason, the state
    it built on the order is not stored, and it restarts from what is, placing its order
    again; only the second order exists."""
    store = runtime.store
    assert store is not None
    real = store.commit_many
    lost: list[str] = []

    def failing(changes: Any, state: Any, signals: Any = (), new_signals: Any = ()) -> None:
        ids = [o.id for c in changes for o in c.orders if o.account == "lost1"]
        if ids and (not lost or set(ids) & set(lost)):
            lost.extend(ids)
            raise StoreError("disk full (injected by the test)")
        real(changes, state, signals, new_signals)

    monkeypatch.setattr(store, "commit_many", failing)
    upload(strategies, operator, "loser", LOSES_ITS_ORDER, account="lost1")
    start(strategies, operator, "loser")
    wait_running(strategies, operator, "loser")
    def publish(price: float) -> None:
        # The market's own flush of the broker may share the failed group: told so too.
        with contextlib.suppress(StoreError):
            market.publish(price)

    publish(100.0)
    eventually(lambda: (status(strategies, operator, "loser").restarts, lost),
               lambda s: s[0] >= 1 and bool(s[1]),
               "the run was not restarted after the commit of its order failed")
    done = eventually(lambda: (publish(101.0), store.list_orders("lost1"))[1],
                      lambda orders: len(orders) == 1,
                      "the restarted run did not place its order again")
    assert done[0].id not in lost, "the lost order was never stored"
    lines = log_lines(strategies, operator, "loser")
    assert any("could not store this event's orders" in line and "disk full" in line
               for line in lines), lines
    placed = [line.split(" ", 1)[1] for line in lines if " placed " in line]
    assert placed == [f"placed {done[0].id}"], \
        "the lines of the event whose order was lost are not kept, as its state is not"
