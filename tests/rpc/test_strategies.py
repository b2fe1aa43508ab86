"""StrategyService over a real host: strategies uploaded through the API run in their own
sandboxed workers, in lockstep with the market, trading the paper broker through the same door
as every other client.

It is one file because it is StrategyService's specification: its tests drive strategies
through one life (upload, start, trade, log, stop, restart, back-test) on the real host of the
``runtime`` fixture in ``rpc/conftest.py``, with the upload, start, status and waiting helpers
defined below.

A strategy's worker gets each bar after the broker has worked it, and the feed waits for every
strategy before the next bar, so :meth:`Market.publish` returns once the strategy has handled
the bar too. A live replay therefore trades exactly as a back-test of the same file on the same
bars. Bad uploads are refused with the field (or, for a strategy that fails the check, every
diagnostic) named and nothing stored; a strategy's token reaches its own account only and dies
with its run; ``ctx.state`` and "should be running" survive a host restart; a hook that raises
is reported and the strategy goes on; a worker killed for a limit is started again with backoff.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sandtrade.auth import AuthError
from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.host.runtime import HostRuntime
from sandtrade.market import iter_csv, sample_csv_path
from sandtrade.models import Bar, Trade
from sandtrade.rpc.door import TradingDoor
from sandtrade.sandbox.runner import SandboxRunner
from sandtrade.v1 import strategies_pb2 as spb
from sandtrade.v1 import strategies_pb2_grpc, trading_pb2, trading_pb2_grpc

from .conftest import (
    WAIT,
    Caller,
    Market,
    Metadata,
    StepSource,
    StreamReader,
    field_violations,
    market_order,
)

Stub = strategies_pb2_grpc.StrategyServiceStub
Trading = trading_pb2_grpc.TradingServiceStub
T = TypeVar("T")

RUNNING = spb.STRATEGY_STATE_RUNNING
STOPPED = spb.STRATEGY_STATE_STOPPED
FAILED = spb.STRATEGY_STATE_FAILED
STATE_NAMES = {v.number: v.name for v in spb.DESCRIPTOR.enum_types_by_name[
    "StrategyState"].values}

EXAMPLES = Path(__file__).resolve().parents[2] / "strategies_examples"
#: How long a strategy may take to get (back) to RUNNING: a worker starts in well under a
#: second; a restart after a kill waits 1 s of backoff first.
START_WAIT = 15.0


# ------------------------------------------------------------------ helpers


@pytest.fixture
def strategies(channel: grpc.Channel) -> Stub:
    """A StrategyService client."""
    return Stub(channel)


def params_struct(**values: Any) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(values)
    return s


def upload(stub: Stub, metadata: Metadata, name: str, source: str, *, account: str = "",
           symbols: tuple[str, ...] = ("AAA",), **params: Any) -> spb.Strategy:
    """Upload a strategy (the test fails if the host refuses it)."""
    req = spb.UploadStrategyRequest(name=name, source=source, account=account,
                                    symbols=list(symbols), params=params_struct(**params))
    return stub.UploadStrategy(req, metadata=metadata, timeout=WAIT).strategy


def start(stub: Stub, metadata: Metadata, name: str) -> spb.Strategy:
    return stub.StartStrategy(spb.StartStrategyRequest(name=name), metadata=metadata,
                              timeout=WAIT).strategy


def stop(stub: Stub, metadata: Metadata, name: str) -> spb.Strategy:
    return stub.StopStrategy(spb.StopStrategyRequest(name=name), metadata=metadata,
                             timeout=3 * WAIT).strategy


def status(stub: Stub, metadata: Metadata, name: str) -> spb.GetStrategyStatusResponse:
    return stub.GetStrategyStatus(spb.GetStrategyStatusRequest(name=name), metadata=metadata,
                                  timeout=WAIT)


def listed(stub: Stub, metadata: Metadata) -> list[spb.Strategy]:
    resp = stub.ListStrategies(spb.ListStrategiesRequest(), metadata=metadata, timeout=WAIT)
    assert not resp.next_page_token
    return list(resp.strategies)


def log_lines(stub: Stub, metadata: Metadata, name: str, tail: int = 0,
              origin: int | None = None) -> list[str]:
    """The strategy's log (the last ``tail`` lines; 0: the server's default of 100), only the
    lines of ``origin`` (a ``LOG_ORIGIN_*``) when given."""
    call = stub.StreamStrategyLogs(spb.StreamStrategyLogsRequest(name=name, tail=tail),
                                   metadata=metadata, timeout=WAIT)
    return [m.line for m in call if origin is None or m.origin == origin]


def refused(call: Callable[[], Any]) -> grpc.RpcError:
    """The error ``call`` fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def precondition_violations(err: grpc.RpcError) -> list[tuple[str, str]]:
    """(subject, description) of the ``google.rpc.PreconditionFailure`` in an error."""
    st = rpc_status.from_call(err)
    assert st is not None, f"no google.rpc.Status in the error details: {err}"
    out = []
    for detail in st.details:
        failure = error_details_pb2.PreconditionFailure()
        if detail.Unpack(failure):
            out.extend((v.subject, v.description) for v in failure.violations)
    return out


def eventually(probe: Callable[[], T], ok: Callable[[T], bool], what: str,
               timeout: float = START_WAIT) -> T:
    """Poll ``probe`` until ``ok`` holds for its value; fail with ``what`` and the last value
    after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} within {timeout} s; last seen: {value}")
        time.sleep(0.05)


def wait_running(stub: Stub, metadata: Metadata, name: str, timeout: float = START_WAIT
                 ) -> spb.GetStrategyStatusResponse:
    return eventually(lambda: status(stub, metadata, name),
                      lambda s: s.strategy.state == RUNNING,
                      f"strategy {name!r} did not get to RUNNING", timeout)


def line_of(source: str, text: str) -> int:
    """The 1-based line of ``source`` that contains ``text``."""
    return next(k for k, line in enumerate(source.splitlines(), 1) if text in line)


def trade_key(t: Trade) -> tuple[Any, ...]:
    return (t.symbol, t.size, t.entry_time, t.entry_price, t.exit_time, t.exit_price)


# ------------------------------------------------------------------ running a strategy

IDLE = "def on_bar(ctx, bar):\n    pass\n"

BUY_ONCE = """\
def on_start(ctx):
    ctx.log("hello from on_start")


def on_bar(ctx, bar):
    print("bar", bar.close)
    if not ctx.state.get("ordered"):
        ctx.buy(10)
        ctx.state["ordered"] = True


def on_fill(ctx, fill):
    ctx.log("filled", fill.side, fill.qty, "at", fill.price)
"""


def test_uploaded_strategy_runs_trades_and_logs(strategies: Stub, trading: Trading,
                                                 operator: Metadata, market: Market,
                                                 runtime: HostRuntime) -> None:
    """A strategy uploaded and started through the API gets the bars, its order on the first
    bar fills at the next bar's open in its own account (created with the host's cash), and
    what it printed and logged comes back from StreamStrategyLogs, in order."""
    stored = upload(strategies, operator, "buyer", BUY_ONCE, account="s1")
    assert (stored.name, stored.account, list(stored.symbols)) == ("buyer", "s1", ["AAA"])
    assert stored.state == STOPPED
    started = start(strategies, operator, "buyer")
    assert started.state in (spb.STRATEGY_STATE_STARTING, RUNNING)

    market.publish(100.0)
    market.publish(101.0, 103.0, 99.0, 102.0)
    market.publish(103.0)

    positions = trading.ListPositions(trading_pb2.ListPositionsRequest(account="s1"),
                                      metadata=operator, timeout=WAIT).positions
    assert [(p.symbol, p.qty, p.avg_price) for p in positions] == [("AAA", 10.0, 101.0)], \
        "bought 10 on the first bar, filled at the second bar's open"
    account = trading.GetAccount(trading_pb2.GetAccountRequest(account="s1"),
                                 metadata=operator, timeout=WAIT).account
    assert account.initial_cash == runtime.settings.cash
    assert account.cash == pytest.approx(runtime.settings.cash - 10 * 101.0)

    st = status(strategies, operator, "buyer")
    assert st.strategy.state == RUNNING, STATE_NAMES[st.strategy.state]
    assert list(st.last_errors) == [] and st.restarts == 0 and not st.kill_reason
    assert st.rss_bytes > 0
    assert [(s.name, s.account, s.state) for s in listed(strategies, operator)] == [
        ("buyer", "s1", RUNNING)]

    lines = log_lines(strategies, operator, "buyer")
    mine = log_lines(strategies, operator, "buyer", origin=spb.LOG_ORIGIN_STRATEGY)
    assert mine[0].endswith("hello from on_start")
    assert mine[1:] == ["bar 100.0", f"{market.published[1].time.isoformat()} filled buy 10.0 "
                        "at 101.0", "bar 102.0", "bar 103.0"], lines
    assert log_lines(strategies, operator, "buyer", tail=2) == ["bar 102.0", "bar 103.0"]


CHATTY = """\
def on_bar(ctx, bar):
    for k in range(30):
        print("line", k)
"""


def test_a_strategys_own_lines_never_push_the_hosts_notes_out(
        strategies: Stub, operator: Metadata, market: Market, runtime: HostRuntime) -> None:
    """A strategy's log is a ring of its last lines (at most its bound, and once over it,
    trimmed to nine tenths of it); the host's notes about it are kept apart, so that a
    strategy writing a lot cannot hide what the host said (that it fell behind, that its log
    was cut, that it was restarted)."""
    from sandtrade.sandbox.logbook import LogBounds

    assert runtime.strategies is not None
    runtime.strategies.logbook.bounds = LogBounds(lines=20)
    upload(strategies, operator, "chatty", CHATTY, account="s1")
    start(strategies, operator, "chatty")
    wait_running(strategies, operator, "chatty")
    market.publish(100.0)
    eventually(lambda: log_lines(strategies, operator, "chatty", tail=1000),
               lambda got: "line 29" in got, "the strategy's lines")
    runtime.strategies.logbook.flush()  # stored, and trimmed to its bound
    own = log_lines(strategies, operator, "chatty", tail=1000,
                    origin=spb.LOG_ORIGIN_STRATEGY)
    assert 18 <= len(own) <= 20 and own == [f"line {k}" for k in range(30 - len(own), 30)]
    notes = log_lines(strategies, operator, "chatty", tail=1000, origin=spb.LOG_ORIGIN_HOST)
    assert notes[0].startswith("uploaded") and notes[1].startswith("starting")
    lines = log_lines(strategies, operator, "chatty", tail=1000)
    assert lines.index(notes[1]) < lines.index(own[0])  # in order of arrival


def test_followed_logs_bring_new_lines(strategies: Stub, operator: Metadata,
                                       market: Market) -> None:
    """StreamStrategyLogs with follow sends the tail, then each line as the strategy writes
    it."""
    upload(strategies, operator, "printer", "def on_bar(ctx, bar):\n    print('close', "
           "bar.close)\n")
    start(strategies, operator, "printer")
    market.publish(10.0)
    call = strategies.StreamStrategyLogs(
        spb.StreamStrategyLogsRequest(name="printer", tail=1, follow=True),
        metadata=operator, timeout=30)
    logs: StreamReader[spb.StreamStrategyLogsResponse] = StreamReader(call)
    try:
        assert logs.get().line == "close 10.0"
        market.publish(11.0)
        assert logs.get().line == "close 11.0"
        market.publish(12.0)
        assert logs.get().line == "close 12.0"
    finally:
        logs.close()


WARM = """\
def on_start(ctx):
    ctx.log("history", list(ctx.history(100)))


def on_bar(ctx, bar):
    print("on_bar", bar.close, "sees", list(ctx.history(100)))
"""


def test_late_start_is_warmed_up_with_the_market_history(strategies: Stub, operator: Metadata,
                                                        market: Market) -> None:
    """A strategy started after some bars gets them as history before on_start (so its
    indicators have data), and on_bar only for the bars that come after."""
    for price in (10.0, 11.0, 12.0):
        market.publish(price)
    upload(strategies, operator, "warm", WARM)
    start(strategies, operator, "warm")
    market.publish(13.0)

    mine = log_lines(strategies, operator, "warm", origin=spb.LOG_ORIGIN_STRATEGY)
    assert mine == [f"{market.published[2].time.isoformat()} history [10.0, 11.0, 12.0]",
                    "on_bar 13.0 sees [10.0, 11.0, 12.0, 13.0]"]


def test_list_strategies_pages_by_name(strategies: Stub, operator: Metadata) -> None:
    """ListStrategies gives the strategies by name, page by page."""
    for name in ("c", "a", "b"):
        upload(strategies, operator, name, IDLE)

    first = strategies.ListStrategies(spb.ListStrategiesRequest(page_size=2),
                                      metadata=operator, timeout=WAIT)
    assert [s.name for s in first.strategies] == ["a", "b"] and first.next_page_token
    rest = strategies.ListStrategies(
        spb.ListStrategiesRequest(page_size=2, page_token=first.next_page_token),
        metadata=operator, timeout=WAIT)
    assert [s.name for s in rest.strategies] == ["c"] and not rest.next_page_token
    assert all(s.state == STOPPED for s in [*first.strategies, *rest.strategies])
    err = refused(lambda: strategies.ListStrategies(spb.ListStrategiesRequest(page_size=1001),
                                                    metadata=operator, timeout=WAIT))
    assert field_violations(err) == ["page_size"]


def test_live_replay_trades_as_the_backtest(strategies: Stub, operator: Metadata,
                                            runtime: HostRuntime) -> None:
    """The SMA-cross example replayed through the host's feed at full speed closes exactly the
    trades a sandboxed back-test of the same file closes on the same bars, with the same
    starting cash: same entries, exits, sizes and prices."""
    source = (EXAMPLES / "sma_cross.py").read_text()
    params = {"fast": 5, "slow": 12}
    upload(strategies, operator, "sma", source, account="s1", **params)
    start(strategies, operator, "sma")
    bars = [Bar("AAA", b.time, b.open, b.high, b.low, b.close, b.volume)
            for b in iter_csv(sample_csv_path())][:300]

    assert isinstance(runtime.source, StepSource)
    for bar in bars:
        runtime.source.push(bar)
    runtime.source.wait_handled(len(bars), timeout=120)
    assert runtime.live is not None
    live = runtime.live.call(lambda b: list(b.closed_trades("s1")))

    request = BacktestRequest(strategy="sma_cross.py", data=[DataSpec(path="AAA")],
                              cash=runtime.settings.cash, params=params)
    result = SandboxRunner().run_source(source, request, {"AAA": bars})

    assert len(result.trades) >= 10, "the comparison is not vacuous"
    assert [trade_key(t) for t in live] == [trade_key(t) for t in result.trades]
    assert [t.pnl for t in live] == pytest.approx([t.pnl for t in result.trades])
    st = status(strategies, operator, "sma")
    assert st.strategy.state == RUNNING and list(st.last_errors) == []


# ------------------------------------------------------------------ bad input

TWO_PROBLEMS = "import os\n\ndef on_bar(ctx, bar):\n    return bar._secret\n"


def test_bad_uploads_are_refused_and_change_nothing(strategies: Stub, operator: Metadata,
                                                     market: Market) -> None:
    """Every malformed request is refused with the field named (or, for a file failing the
    check, every diagnostic with its line), nothing is stored, and a strategy accepted before
    keeps running with its own source."""
    good = upload(strategies, operator, "good",
                  "PARAMS = {'n': 1}\n\ndef on_bar(ctx, bar):\n    print('bar', bar.close)\n")
    start(strategies, operator, "good")
    wait_running(strategies, operator, "good")

    def bad(**fields: Any) -> grpc.RpcError:
        request = dict(name="new", source="def on_bar(ctx, bar):\n    pass\n",
                       symbols=["AAA"])
        request.update(fields)
        return refused(lambda: strategies.UploadStrategy(
            spb.UploadStrategyRequest(**request), metadata=operator, timeout=WAIT))

    for fields, field in [
        (dict(name=""), "name"),
        (dict(name="no spaces"), "name"),
        (dict(symbols=["ZZZ"]), "symbols[0]"),
        (dict(symbols=["AAA", "NOPE"]), "symbols[1]"),
        (dict(symbols=[]), "symbols"),
        (dict(params=params_struct(nope=1)), "params"),
        (dict(source=""), "source"),
        (dict(source="# " + "x" * (1 << 20) + "\ndef on_bar(ctx, bar):\n    pass\n"),
         "source"),
    ]:
        err = bad(**fields)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, (fields, err)
        assert field_violations(err) == [field], (fields, err)
    assert "nope" in (bad(params=params_struct(nope=1)).details() or "")

    err = bad(name="broken", source=TWO_PROBLEMS)
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    violations = precondition_violations(err)
    assert [subject for subject, _ in violations] == ["broken.py:1", "broken.py:4"], violations
    assert "os" in violations[0][1]
    assert "_secret" in violations[1][1]

    assert [s.name for s in listed(strategies, operator)] == ["good"], "nothing else stored"
    for err in (refused(lambda: start(strategies, operator, "broken")),
                refused(lambda: status(strategies, operator, "broken"))):
        assert err.code() == grpc.StatusCode.NOT_FOUND, err
    err = refused(lambda: start(strategies, operator, "never-uploaded"))
    assert err.code() == grpc.StatusCode.NOT_FOUND

    err = refused(lambda: upload(strategies, operator, "good",
                                 "def on_bar(ctx, bar):\n    ctx.buy()\n"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, "cannot replace a running one"
    assert "running" in (err.details() or "")

    st = status(strategies, operator, "good")
    assert st.strategy.state == RUNNING
    assert st.strategy.source_sha256 == good.source_sha256
    market.publish(42.0)
    assert log_lines(strategies, operator, "good", tail=1) == ["bar 42.0"]


FIRST_BAR_TRAPS = """\
def on_bar(ctx, bar):
    secrets = open("/etc/passwd").read()
    ctx.log("close {}".format(bar.close))
    cloud = ctx.ta.ichimoku(12, 26)
"""


def test_upload_refuses_code_that_would_fail_on_its_first_bar(strategies: Stub,
                                                              operator: Metadata) -> None:
    """An upload runs ``sandtrade check``: what the file is certain to fail on when its lines
    run (a builtin the sandbox lacks, ``.format``, an indicator ``ctx.ta`` does not have) is
    refused like a policy violation, each with its line and what to write instead."""
    err = refused(lambda: upload(strategies, operator, "traps", FIRST_BAR_TRAPS))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION, err
    violations = precondition_violations(err)
    assert [subject for subject, _ in violations] == ["traps.py:2", "traps.py:3", "traps.py:4"]
    assert "'open' is not available in strategies (no file access" in violations[0][1]
    assert "use an f-string" in violations[1][1]
    assert "ctx.ta has no indicator 'ichimoku' (available: atr, bb," in violations[2][1]
    assert listed(strategies, operator) == [], "nothing stored"


# ------------------------------------------------------------------ who may do what


def test_read_trade_token_cannot_manage_strategies(strategies: Stub, operator: Metadata,
                                                   alice: Caller, bob: Caller) -> None:
    """Uploading, starting and stopping need the admin scope: alice's read,trade token is
    refused even for her own account's strategy, which she may read; bob's token does not
    see alice's strategy at all."""
    upload(strategies, operator, "alice-strat", IDLE, account="alice")
    start(strategies, operator, "alice-strat")

    for call in (lambda: upload(strategies, alice.metadata, "mine", IDLE, account="alice"),
                 lambda: upload(strategies, alice.metadata, "mine", IDLE),
                 lambda: start(strategies, alice.metadata, "alice-strat"),
                 lambda: stop(strategies, alice.metadata, "alice-strat")):
        assert refused(call).code() == grpc.StatusCode.PERMISSION_DENIED
    assert [s.name for s in listed(strategies, operator)] == ["alice-strat"]
    wait_running(strategies, alice.metadata, "alice-strat")  # alice reads her own

    assert refused(lambda: status(strategies, bob.metadata, "alice-strat")).code() == \
        grpc.StatusCode.NOT_FOUND
    assert refused(lambda: log_lines(strategies, bob.metadata, "alice-strat")).code() == \
        grpc.StatusCode.NOT_FOUND
    assert listed(strategies, bob.metadata) == []


def test_other_accounts_strategy_names_do_not_leak(strategies: Stub, operator: Metadata,
                                                   bob: Caller) -> None:
    """Whether another account's strategy of that name exists or not, bob's token gets the
    same answer, so it cannot learn the names of other accounts' strategies."""
    upload(strategies, operator, "alice-strat", IDLE, account="alice")
    for act in (start, stop, status):
        codes = [refused(lambda act=act, name=name: act(strategies, bob.metadata, name)).code()
                 for name in ("alice-strat", "no-such-strategy")]
        assert codes[0] == codes[1], (act.__name__, codes)


def test_run_principal_reaches_its_own_account_only_and_dies_with_the_run(
        strategies: Stub, operator: Metadata, runtime: HostRuntime, market: Market,
        alice: Caller, bob: Caller, trading: Trading) -> None:
    """The principal a run trades as (held by the host side, never the worker) reads and
    trades the strategy's account and nothing else, cannot manage strategies, and its door
    shuts (and its token is revoked) when the strategy stops. The worker's calls go through
    the trading API's own methods, with its checks and scopes, not through a copy of them."""
    upload(strategies, operator, "alice-strat", IDLE, account="alice")
    start(strategies, operator, "alice-strat")
    wait_running(strategies, operator, "alice-strat")
    market.publish(50.0)  # a price, so that the broker takes orders
    assert runtime.strategies is not None and runtime.trading is not None
    run = runtime.strategies.run("alice", "alice-strat")
    assert run is not None and isinstance(run.door, TradingDoor)
    door, principal, api = run.door, run.door.principal, runtime.trading
    assert (principal.account, principal.ephemeral) == ("alice", True)

    cash = ask(door, "account", {})["result"][0]
    assert cash == api.get_account(principal, trading_pb2.GetAccountRequest()).account.cash
    placed = ask(door, "submit", {"symbol": "AAA", "side": "buy", "qty": 3, "type": "market",
                                    "tif": "gtc", "reduce_only": False, "tag": None})
    assert placed["result"]["account"] == "alice", placed
    market.publish(51.0)
    assert ask(door, "position", {"symbol": "AAA"})["result"][0] == 3.0

    for call in (lambda: api.get_account(principal, trading_pb2.GetAccountRequest(
                     account="bob")),
                 lambda: api.list_positions(principal, trading_pb2.ListPositionsRequest(
                     account="bob")),
                 lambda: api.submit_order(principal, market_order(qty=1, account="bob"))):
        with pytest.raises(AuthError) as err:
            call()
        assert err.value.code == "permission_denied"
    with pytest.raises(AuthError):
        principal.require_scope("admin")  # no strategy management
    bob_account = trading.GetAccount(trading_pb2.GetAccountRequest(), metadata=bob.metadata,
                                     timeout=WAIT).account
    assert bob_account.cash == bob_account.initial_cash, "bob's account was not touched"
    assert status(strategies, operator, "alice-strat").strategy.state == RUNNING

    assert stop(strategies, operator, "alice-strat").state == STOPPED
    assert ask(door, "account", {}) == {"type": "reply", "error": "the run has ended"}
    assert runtime.auth is not None and not runtime.auth.revoke(principal.token_id), \
        "the run's token was revoked when it ended"
    assert get_account_ok(trading, alice), "alice's own token is unaffected"


def ask(door: TradingDoor, op: str, args: dict[str, Any]) -> dict[str, Any]:
    """A call through ``door`` as a worker makes it; its answer once it is durable."""
    answers: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()
    door.handle(op, args, answers.put)
    return answers.get(timeout=WAIT)


def get_account_ok(trading: Trading, caller: Caller) -> bool:
    resp = trading.GetAccount(trading_pb2.GetAccountRequest(), metadata=caller.metadata,
                              timeout=WAIT)
    return resp.account.id == caller.account


# ------------------------------------------------------------------ a host restart

COUNTER = """\
def on_bar(ctx, bar):
    ctx.state["n"] = ctx.state.get("n", 0) + 1
    print("bar", ctx.state["n"], bar.close)
"""


@contextmanager
def restarted(host: HostRuntime) -> Iterator[HostRuntime]:
    """Stop ``host`` and start another on the same data directory and settings; the new
    host's feed skips the bars the old one had worked, so replay those first."""
    assert isinstance(host.source, StepSource)
    host.source.push(None)
    host.stop()
    new = HostRuntime(host.settings, plugins=host.plugins).start()
    try:
        yield new
    finally:
        if isinstance(new.source, StepSource):
            new.source.push(None)
        new.stop()


def replay(host: HostRuntime, market: Market) -> Market:
    """A Market for ``host`` that has re-published (to the skipping feed) what ``market``
    published."""
    again = Market(host)
    for bar in market.published:
        again.source.push(bar)
    again.source.wait_handled(len(market.published))
    again.published = list(market.published)
    again.time = market.time
    return again


def test_running_strategy_resumes_after_restart_with_its_state(
        strategies: Stub, operator: Metadata, runtime: HostRuntime, market: Market) -> None:
    """A host started again on the same data starts the strategies that were running without
    being asked, each with its committed ctx.state, and the bars go on counting from there;
    a strategy stopped before a restart stays stopped, its state kept."""
    upload(strategies, operator, "counter", COUNTER)
    start(strategies, operator, "counter")
    for price in (10.0, 11.0, 12.0):
        market.publish(price)
    assert runtime.strategies is not None
    assert runtime.strategies.state("counter", "counter") == {"n": 3}

    with restarted(runtime) as host2, grpc.insecure_channel(host2.rpc.address) as ch2:
        stub2 = Stub(ch2)
        market2 = replay(host2, market)  # strategies resume once the feed has caught up
        wait_running(stub2, operator, "counter")
        market2.publish(13.0)
        market2.publish(14.0)
        assert host2.strategies is not None
        assert host2.strategies.state("counter", "counter") == {"n": 5}, \
            "3 bars before the restart, 2 after; none twice"
        assert log_lines(stub2, operator, "counter", tail=2) == ["bar 4 13.0", "bar 5 14.0"]
        assert stop(stub2, operator, "counter").state == STOPPED

        with restarted(host2) as host3, grpc.insecure_channel(host3.rpc.address) as ch3:
            stub3 = Stub(ch3)
            market3 = replay(host3, market2)
            market3.publish(15.0)
            st = status(stub3, operator, "counter")
            assert st.strategy.state == STOPPED, STATE_NAMES[st.strategy.state]
            assert host3.strategies is not None
            assert host3.strategies.running() == [], "no worker was started"
            assert host3.strategies.state("counter", "counter") == {"n": 5}


def test_resumed_strategy_is_warmed_up_with_recent_bars(
        strategies: Stub, operator: Metadata, runtime: HostRuntime, market: Market) -> None:
    """The manager's promise: a strategy resumed by a restarted host is warmed up with the
    hub's recent bars, so its indicators continue where they were."""
    upload(strategies, operator, "warm", WARM)
    start(strategies, operator, "warm")
    for price in (10.0, 11.0, 12.0):
        market.publish(price)

    with restarted(runtime) as host2, grpc.insecure_channel(host2.rpc.address) as ch2:
        stub2 = Stub(ch2)
        market2 = replay(host2, market)  # strategies resume once the feed has caught up
        wait_running(stub2, operator, "warm")
        market2.publish(13.0)
        assert log_lines(stub2, operator, "warm", tail=1) == [
            "on_bar 13.0 sees [10.0, 11.0, 12.0, 13.0]"]


# ------------------------------------------------------------------ failures

RAISES = """\
def on_bar(ctx, bar):
    ctx.state["n"] = ctx.state.get("n", 0) + 1
    if ctx.state["n"] == 2:
        return 1 / 0
    print("bar", bar.close)
"""


def test_hook_error_is_reported_and_the_strategy_goes_on(strategies: Stub, operator: Metadata,
                                                         market: Market) -> None:
    """An exception in on_bar is reported in last_errors (file:line and the exception) and in
    the log; the worker is not restarted and the next bars reach the strategy."""
    upload(strategies, operator, "div", RAISES)
    start(strategies, operator, "div")
    for price in (1.0, 2.0, 3.0, 4.0):
        market.publish(price)

    st = status(strategies, operator, "div")
    assert st.strategy.state == RUNNING, STATE_NAMES[st.strategy.state]
    assert st.restarts == 0 and not st.kill_reason
    assert len(st.last_errors) == 1, st.last_errors
    error = st.last_errors[0]
    assert f"div.py:{line_of(RAISES, '1 / 0')}" in error
    assert "ZeroDivisionError" in error and "on_bar" in error
    lines = log_lines(strategies, operator, "div")
    assert [line for line in lines if line.startswith("bar ")] == [
        "bar 1.0", "bar 3.0", "bar 4.0"], lines
    assert any("ZeroDivisionError" in line
               for line in log_lines(strategies, operator, "div", origin=spb.LOG_ORIGIN_ERROR))


ALWAYS_RAISES = "def on_bar(ctx, bar):\n    raise ValueError('never works')\n"


def test_strategy_failing_every_event_is_stopped(strategies: Stub, operator: Metadata,
                                                 market: Market, runtime: HostRuntime) -> None:
    """Hooks that fail MAX_ERRORS_IN_A_ROW events in a row stop the strategy as FAILED, with
    the reason; it is not restarted, and no longer marked to run."""
    from sandtrade.sandbox.manager import MAX_ERRORS_IN_A_ROW

    upload(strategies, operator, "hopeless", ALWAYS_RAISES)
    start(strategies, operator, "hopeless")
    for k in range(MAX_ERRORS_IN_A_ROW - 1):
        market.publish(10.0 + k)
    assert status(strategies, operator, "hopeless").strategy.state == RUNNING
    market.publish(100.0)

    st = eventually(lambda: status(strategies, operator, "hopeless"),
                    lambda s: s.strategy.state == FAILED, "the strategy was not stopped",
                    WAIT)
    assert "in a row" in st.kill_reason
    assert st.restarts == 0
    assert runtime.store is not None
    record = runtime.store.get_strategy("hopeless", "hopeless")
    assert record is not None and record.desired == "stopped"
    time.sleep(1.5)  # longer than the first backoff: a restart would have begun
    assert status(strategies, operator, "hopeless").strategy.state == FAILED


MEMORY_HOG = """\
def on_start(ctx):
    ctx.state["starts"] = ctx.state.get("starts", 0) + 1
    ctx.log("start", ctx.state["starts"])


def on_bar(ctx, bar):
    if ctx.state["starts"] == 1 and ctx.state.get("bars", 0) >= 1:
        hog = [1] * (10 ** 9)
        ctx.log(len(hog))
    ctx.state["bars"] = ctx.state.get("bars", 0) + 1
    print("bar", bar.close)
"""


def test_worker_over_its_memory_limit_is_restarted(strategies: Stub, operator: Metadata,
                                                   market: Market, runtime: HostRuntime
                                                   ) -> None:
    """A worker that allocates past its memory limit is killed, the status says why, and it
    is started again after the backoff, with its committed ctx.state, and gets the next
    bars. (The first run blows up on its second bar; on_start of the second run records that
    it is the second, so it behaves.)"""
    upload(strategies, operator, "hog", MEMORY_HOG)
    start(strategies, operator, "hog")
    market.publish(1.0)
    market.publish(2.0)  # the first run dies on this one

    # The bar's wait ends when the worker dies; the host records why just after.
    st = eventually(lambda: status(strategies, operator, "hog"),
                    lambda s: s.kill_reason != "", "the kill was not reported", WAIT)
    assert "memory" in st.kill_reason, st
    assert st.restarts == 1
    assert st.strategy.state == FAILED, STATE_NAMES[st.strategy.state]
    st = wait_running(strategies, operator, "hog")
    assert st.restarts == 1 and "memory" in st.kill_reason

    market.publish(3.0)
    assert runtime.strategies is not None
    assert runtime.strategies.state("hog", "hog") == {"starts": 2, "bars": 2}
    lines = log_lines(strategies, operator, "hog")
    assert any("restarting in 1 s" in line for line in lines), lines
    assert [line for line in lines if line.startswith("bar ")] == ["bar 1.0", "bar 3.0"]


# ------------------------------------------------------------------ back-tests

SWING = """\
PARAMS = {"hold": 5, "burn": 0}


def on_bar(ctx, bar):
    if ctx.params["burn"] and not ctx.state.get("burnt"):
        ctx.state["burnt"] = sum(range(ctx.params["burn"])) > 0
    ctx.state["n"] = ctx.state.get("n", 0) + 1
    if ctx.state["n"] % ctx.params["hold"] == 1:
        if ctx.position().qty:
            ctx.close_position()
        else:
            ctx.buy(10)
"""


def test_backtest_streams_progress_then_the_result(strategies: Stub, operator: Metadata,
                                                   market: Market, runtime: HostRuntime) -> None:
    """RunBacktest runs a stored strategy on the hub's history in a sandbox and streams its
    progress, then one message with the statistics and the closed trades; its parameters
    override the stored ones for the run."""
    upload(strategies, operator, "swing", SWING)
    for k in range(50):
        market.publish(100.0 + (k % 7), symbol="AAA")

    call = strategies.RunBacktest(
        # burn: the first bar takes a good half second, longer than the progress interval
        spb.RunBacktestRequest(name="swing", params=params_struct(burn=50_000_000)),
        metadata=operator, timeout=60)
    messages = list(call)
    *progress, last = messages
    assert progress, "a run longer than the progress interval reports progress"
    assert all(not m.HasField("stats") and 0 < m.bars_done <= 50 and m.bars_total == 50
               for m in progress), progress
    assert [m.bars_done for m in progress] == sorted(m.bars_done for m in progress)
    assert (last.bars_done, last.bars_total) == (50, 50)
    stats = dict(last.stats)
    pnl = sum(dict(t)["pnl"] for t in last.trades)
    assert stats["Equity Final [$]"] == pytest.approx(runtime.settings.cash + pnl), (
        "flat at the end; no cash given: the host's one default, as for new accounts and "
        "`sandtrade backtest`")
    assert stats["# Trades"] == len(last.trades) == 5, "in at bars 1, 11 … 41, out at 6 … 46"
    first = dict(last.trades[0])
    assert (first["size"], first["entry_price"], first["exit_price"]) == (
        10, market.published[1].open, market.published[6].open)

    err = refused(lambda: list(strategies.RunBacktest(
        spb.RunBacktestRequest(name="swing", symbols=["BBB"]), metadata=operator,
        timeout=WAIT)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err) == ["symbols[0]"], "BBB has no history"
    err = refused(lambda: list(strategies.RunBacktest(
        spb.RunBacktestRequest(name="swing", benchmark="MSFT"), metadata=operator,
        timeout=WAIT)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err) == ["benchmark"], "not a symbol of the back-test"
    *_, chosen = strategies.RunBacktest(
        spb.RunBacktestRequest(name="swing", benchmark="AAA"), metadata=operator, timeout=60)
    assert dict(chosen.stats)["Buy & Hold Return [%]"] == stats["Buy & Hold Return [%]"]
    err = refused(lambda: list(strategies.RunBacktest(
        spb.RunBacktestRequest(name="nope"), metadata=operator, timeout=WAIT)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
