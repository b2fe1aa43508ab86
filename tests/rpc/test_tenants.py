"""Tenants: a strategy belongs to the account whose token uploaded it, and its name is unique
within that account only.

Two accounts' ``admin`` tokens (alice and bob) and the operator's try every StrategyService
call, and a signal, against each other's strategies. Another account's strategy, running,
stopped or deleted, answers exactly as a name that never existed (the same code, the same
words); an upload under another account's name makes the uploader's own strategy and takes
nothing over; a name used again after a delete starts with an empty ``ctx.state`` and an empty
log. The operator's token sees every account, and names the account when several have a
strategy of that name.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from sandtrade.cli import main
from sandtrade.host.runtime import HostRuntime
from sandtrade.store.base import strategy_state_key
from sandtrade.v1 import signals_pb2 as sgpb
from sandtrade.v1 import signals_pb2_grpc, strategies_pb2_grpc
from sandtrade.v1 import strategies_pb2 as spb

from .conftest import WAIT, Caller, MakeAccount, MakeToken, Market, Metadata, field_violations
from .test_strategies import eventually

Stub = strategies_pb2_grpc.StrategyServiceStub

RUNNING = spb.STRATEGY_STATE_RUNNING
STOPPED = spb.STRATEGY_STATE_STOPPED

COUNTER = """\
def on_start(ctx):
    print("state at start", dict(ctx.state))


def on_bar(ctx, bar):
    ctx.state["n"] = ctx.state.get("n", 0) + 1
    print("secret bar", ctx.state["n"], bar.close)
"""

LISTENER = """\
def on_bar(ctx, bar):
    pass


def on_signal(ctx, signal):
    ctx.state.setdefault("seen", []).append([signal.symbol, signal.action, signal.qty])
"""


# ------------------------------------------------------------------ fixtures and helpers


@pytest.fixture
def strategies(channel: grpc.Channel) -> Stub:
    """A StrategyService client."""
    return Stub(channel)


@pytest.fixture
def alice(make_account: MakeAccount, make_token: MakeToken) -> Caller:
    """Account ``alice`` with an ``admin`` token for her own account (not the operator's)."""
    return Caller(make_account("alice"), make_token("alice", ("admin",)))


@pytest.fixture
def bob(make_account: MakeAccount, make_token: MakeToken) -> Caller:
    """Account ``bob`` with an ``admin`` token for his own account."""
    return Caller(make_account("bob"), make_token("bob", ("admin",)))


def upload(stub: Stub, md: Metadata, name: str, source: str = COUNTER, *,
           account: str = "") -> spb.Strategy:
    return stub.UploadStrategy(spb.UploadStrategyRequest(
        name=name, source=source, account=account, symbols=["AAA"]),
        metadata=md, timeout=WAIT).strategy


def start(stub: Stub, md: Metadata, name: str, account: str = "") -> spb.Strategy:
    return stub.StartStrategy(spb.StartStrategyRequest(name=name, account=account),
                              metadata=md, timeout=WAIT).strategy


def stop(stub: Stub, md: Metadata, name: str, account: str = "") -> spb.Strategy:
    return stub.StopStrategy(spb.StopStrategyRequest(name=name, account=account),
                             metadata=md, timeout=3 * WAIT).strategy


def delete(stub: Stub, md: Metadata, name: str, account: str = "",
           request_id: str = "") -> spb.Strategy:
    return stub.DeleteStrategy(spb.DeleteStrategyRequest(name=name, account=account,
                                                         request_id=request_id),
                               metadata=md, timeout=3 * WAIT).strategy


def status(stub: Stub, md: Metadata, name: str, account: str = ""
           ) -> spb.GetStrategyStatusResponse:
    return stub.GetStrategyStatus(spb.GetStrategyStatusRequest(name=name, account=account),
                                  metadata=md, timeout=WAIT)


def logs(stub: Stub, md: Metadata, name: str, account: str = "") -> list[str]:
    call = stub.StreamStrategyLogs(spb.StreamStrategyLogsRequest(name=name, account=account,
                                                                 tail=1000),
                                   metadata=md, timeout=WAIT)
    return [m.line for m in call]


def follow(stub: Stub, md: Metadata, name: str, account: str = "") -> list[str]:
    """The first message of a followed log (the call fails at once for a strategy the caller
    cannot reach)."""
    call = stub.StreamStrategyLogs(spb.StreamStrategyLogsRequest(
        name=name, account=account, tail=1, follow=True), metadata=md, timeout=WAIT)
    try:
        return [next(call).line]
    finally:
        call.cancel()


def backtest(stub: Stub, md: Metadata, name: str, account: str = "") -> list[Any]:
    return list(stub.RunBacktest(spb.RunBacktestRequest(name=name, account=account),
                                 metadata=md, timeout=3 * WAIT))


def listed(stub: Stub, md: Metadata, account: str = "") -> list[tuple[str, str]]:
    resp = stub.ListStrategies(spb.ListStrategiesRequest(account=account), metadata=md,
                               timeout=WAIT)
    return [(s.account, s.name) for s in resp.strategies]


def refused(call: Callable[[], Any]) -> grpc.RpcError:
    """The error ``call`` fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def answer(call: Callable[[], Any], name: str) -> tuple[grpc.StatusCode, str]:
    """The code and words of a refusal, the strategy's name written NAME."""
    err = refused(call)
    return err.code(), (err.details() or "").replace(repr(name), "'NAME'")


def wait_running(stub: Stub, md: Metadata, name: str, account: str = "") -> None:
    eventually(lambda: status(stub, md, name, account).strategy.state,
               lambda s: s == RUNNING, f"{name!r} did not get to RUNNING")


#: Every call that names a strategy, as bob makes it (``account`` "" means his own).
CALLS: dict[str, Callable[[Stub, Metadata, str, str], Any]] = {
    "StartStrategy": start, "StopStrategy": stop, "DeleteStrategy": delete,
    "GetStrategyStatus": status, "StreamStrategyLogs": logs,
    "StreamStrategyLogs(follow)": follow, "RunBacktest": backtest,
}


# ------------------------------------------------------------------ no existence leak


@pytest.mark.parametrize("alices", ["running", "stopped", "deleted"])
def test_another_accounts_strategy_answers_as_one_that_never_existed(
        strategies: Stub, market: Market, alice: Caller, bob: Caller, alices: str) -> None:
    """Whether alice's "alice-bot" runs, is stopped or was deleted, every call of bob's that
    names it, with his own account or with hers, gets the same code and the same words as a
    name that never existed; then his upload of that name succeeds as a new name's does, as
    his own strategy, never "is running"; alice's is untouched."""
    market.publish(10.0)  # history, so that a back-test would get past its data check
    mine = upload(strategies, alice.metadata, "alice-bot")
    start(strategies, alice.metadata, "alice-bot")
    wait_running(strategies, alice.metadata, "alice-bot")
    if alices == "stopped":
        stop(strategies, alice.metadata, "alice-bot")
    elif alices == "deleted":
        delete(strategies, alice.metadata, "alice-bot")

    for what, call in CALLS.items():
        never = answer(lambda c=call: c(strategies, bob.metadata, "never-existed", ""),
                       "never-existed")
        assert never[0] == grpc.StatusCode.NOT_FOUND, (what, never)
        for account in ("", "alice"):
            theirs = answer(lambda c=call, a=account: c(strategies, bob.metadata,
                                                         "alice-bot", a), "alice-bot")
            assert theirs == never, (what, account, theirs, never)
    assert listed(strategies, bob.metadata) == []

    got = upload(strategies, bob.metadata, "alice-bot", "def on_bar(ctx, bar):\n    pass\n")
    fresh = upload(strategies, bob.metadata, "never-existed", "def on_bar(ctx, bar):\n    pass\n")
    assert (got.account, got.state) == (fresh.account, fresh.state) == ("bob", STOPPED)
    assert got.id != mine.id
    if alices != "deleted":
        st = status(strategies, alice.metadata, "alice-bot")
        assert st.strategy.id == mine.id
        assert st.strategy.state == (RUNNING if alices == "running" else STOPPED)


def test_upload_to_another_account_is_refused_whatever_it_holds(
        strategies: Stub, alice: Caller, bob: Caller) -> None:
    """Bob naming alice's account in an upload is refused in the same words whether she has a
    strategy of that name or not."""
    upload(strategies, alice.metadata, "alice-bot")
    answers = {name: answer(lambda n=name: upload(strategies, bob.metadata, n,
                                                  account="alice"), name)
               for name in ("alice-bot", "never-existed")}
    assert answers["alice-bot"] == answers["never-existed"]
    assert answers["alice-bot"][0] == grpc.StatusCode.PERMISSION_DENIED


def test_own_running_strategy_is_still_a_conflict(strategies: Stub, alice: Caller) -> None:
    """The "is running" answer is kept for the caller's own strategy."""
    upload(strategies, alice.metadata, "alice-bot")
    start(strategies, alice.metadata, "alice-bot")
    wait_running(strategies, alice.metadata, "alice-bot")
    err = refused(lambda: upload(strategies, alice.metadata, "alice-bot"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "strategy 'alice-bot' is running" in (err.details() or "")


# ------------------------------------------------------------------ no takeover, no state leak


def test_bob_cannot_take_over_alices_stopped_strategy(
        strategies: Stub, market: Market, runtime: HostRuntime, alice: Caller, bob: Caller,
        operator: Metadata) -> None:
    """The issue's attack: bob uploads under the name of alice's stopped strategy. His upload
    becomes bob/alice-bot, a strategy of his own that starts with an empty ctx.state and a log
    without a line of hers; alice's strategy, state and log are untouched, and both exist."""
    mine = upload(strategies, alice.metadata, "alice-bot")
    start(strategies, alice.metadata, "alice-bot")
    wait_running(strategies, alice.metadata, "alice-bot")
    market.publish(10.0)
    market.publish(11.0)
    stop(strategies, alice.metadata, "alice-bot")
    manager = runtime.strategies
    assert manager is not None
    assert manager.state("alice", "alice-bot") == {"n": 2}
    alices_log = logs(strategies, alice.metadata, "alice-bot")
    assert any("secret bar 2" in line for line in alices_log)

    his = upload(strategies, bob.metadata, "alice-bot")
    assert (his.account, his.name) == ("bob", "alice-bot") and his.id != mine.id
    start(strategies, bob.metadata, "alice-bot")
    wait_running(strategies, bob.metadata, "alice-bot")
    market.publish(12.0)

    bobs_log = logs(strategies, bob.metadata, "alice-bot")
    assert any(line.endswith("state at start {}") for line in bobs_log), bobs_log
    assert "secret bar 1 12.0" in bobs_log, bobs_log  # his own count, from nothing
    assert not {"secret bar 1 10.0", "secret bar 2 11.0"} & set(bobs_log), bobs_log
    assert manager.state("bob", "alice-bot") == {"n": 1}
    assert manager.state("alice", "alice-bot") == {"n": 2}, "alice's state untouched"
    assert logs(strategies, alice.metadata, "alice-bot") == alices_log, "and her log"
    assert status(strategies, alice.metadata, "alice-bot").strategy.state == STOPPED
    assert listed(strategies, operator) == [("alice", "alice-bot"), ("bob", "alice-bot")]


def test_reused_name_after_delete_has_fresh_state_and_logs(
        strategies: Stub, market: Market, runtime: HostRuntime, alice: Caller) -> None:
    """DeleteStrategy stops a running strategy and removes it with its ctx.state and log; the
    name uploaded again is a new strategy (a new id) that starts with {} and an empty log. A
    retried delete with the same request id gets the first answer."""
    old = upload(strategies, alice.metadata, "bot")
    start(strategies, alice.metadata, "bot")
    wait_running(strategies, alice.metadata, "bot")
    market.publish(10.0)
    market.publish(11.0)
    assert runtime.store is not None
    assert runtime.store.get_state(strategy_state_key(old.id)) == {"n": 2}

    gone = delete(strategies, alice.metadata, "bot", request_id="del-1")
    assert (gone.id, gone.state) == (old.id, STOPPED)
    assert delete(strategies, alice.metadata, "bot", request_id="del-1") == gone, "a retry"
    assert refused(lambda: delete(strategies, alice.metadata, "bot")).code() == \
        grpc.StatusCode.NOT_FOUND, "a second delete without the id finds nothing"
    assert refused(lambda: status(strategies, alice.metadata, "bot")).code() == \
        grpc.StatusCode.NOT_FOUND
    assert runtime.store.get_state_text(strategy_state_key(old.id)) is None
    assert runtime.strategies is not None and runtime.strategies.running() == []

    new = upload(strategies, alice.metadata, "bot")
    assert new.id != old.id
    fresh = logs(strategies, alice.metadata, "bot")
    assert len(fresh) == 1 and fresh[0].startswith("uploaded"), \
        f"its own upload note only: {fresh}"
    start(strategies, alice.metadata, "bot")
    wait_running(strategies, alice.metadata, "bot")
    market.publish(12.0)
    lines = logs(strategies, alice.metadata, "bot")
    assert any(line.endswith("state at start {}") for line in lines), lines
    assert "secret bar 1 12.0" in lines, lines
    assert not {"secret bar 1 10.0", "secret bar 2 11.0"} & set(lines), lines
    assert runtime.strategies.state("alice", "bot") == {"n": 1}


# ------------------------------------------------------------------ listing and the operator


def test_list_shows_only_the_callers_own_strategies(strategies: Stub, alice: Caller,
                                                    bob: Caller, operator: Metadata) -> None:
    """An account's token lists its own strategies; naming another account is refused
    whatever that account holds; the operator lists every account's, by account and name,
    or one account's."""
    for name in ("b", "a"):
        upload(strategies, alice.metadata, name)
    upload(strategies, bob.metadata, "a")
    assert listed(strategies, alice.metadata) == [("alice", "a"), ("alice", "b")]
    assert listed(strategies, bob.metadata) == [("bob", "a")]
    assert listed(strategies, bob.metadata, "bob") == [("bob", "a")]
    codes = {refused(lambda a=acct: listed(strategies, bob.metadata, a)).code()
             for acct in ("alice", "nobody")}
    assert codes == {grpc.StatusCode.PERMISSION_DENIED}
    assert listed(strategies, operator) == [("alice", "a"), ("alice", "b"), ("bob", "a")]
    assert listed(strategies, operator, "bob") == [("bob", "a")]

    page = strategies.ListStrategies(spb.ListStrategiesRequest(page_size=2),
                                     metadata=operator, timeout=WAIT)
    rest = strategies.ListStrategies(spb.ListStrategiesRequest(
        page_size=2, page_token=page.next_page_token), metadata=operator, timeout=WAIT)
    assert [(s.account, s.name) for s in [*page.strategies, *rest.strategies]] == [
        ("alice", "a"), ("alice", "b"), ("bob", "a")] and not rest.next_page_token


def test_operator_must_name_the_account_when_a_name_is_ambiguous(
        strategies: Stub, alice: Caller, bob: Caller, operator: Metadata) -> None:
    """The operator's token may leave the account out while one account has the name; once
    two have it, every call must name one (INVALID_ARGUMENT on ``account``), and then reaches
    that account's strategy."""
    upload(strategies, alice.metadata, "bot")
    assert status(strategies, operator, "bot").strategy.account == "alice"
    upload(strategies, bob.metadata, "bot")

    for what, call in CALLS.items():
        err = refused(lambda c=call: c(strategies, operator, "bot", ""))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, what
        assert field_violations(err) == ["account"], what
        assert (err.details() or "").startswith("account: name an account: "), err.details()
        assert "alice, bob" in (err.details() or "")
    assert status(strategies, operator, "bot", "bob").strategy.account == "bob"
    assert status(strategies, operator, "bot", "alice").strategy.account == "alice"
    assert refused(lambda: status(strategies, operator, "bot", "carol")).code() == \
        grpc.StatusCode.NOT_FOUND
    start(strategies, operator, "bot", "bob")
    wait_running(strategies, operator, "bot", "bob")
    assert status(strategies, operator, "bot", "alice").strategy.state == STOPPED


# ------------------------------------------------------------------ signals


def test_a_signal_naming_another_accounts_strategy_is_not_delivered(
        channel: grpc.Channel, strategies: Stub, market: Market, runtime: HostRuntime,
        alice: Caller, bob: Caller, make_token: MakeToken) -> None:
    """A signal body naming a strategy reaches the strategy of that name in the signal's own
    account only: bob's signal naming alice's running "listener" is refused in the words of a
    strategy that does not exist, and never reaches it; alice's own signal does."""
    signals = signals_pb2_grpc.SignalServiceStub(channel)
    upload(strategies, alice.metadata, "listener", LISTENER)
    start(strategies, alice.metadata, "listener")
    wait_running(strategies, alice.metadata, "listener")
    market.publish(10.0)

    def submit(token: str, body: str) -> sgpb.SubmitSignalResponse:
        return signals.SubmitSignal(sgpb.SubmitSignalRequest(body=body),
                                    metadata=(("authorization", f"Bearer {token}"),),
                                    timeout=WAIT)

    bobs = make_token("bob", ("signal",))
    words = {}
    for name in ("listener", "nobody"):
        err = refused(lambda n=name: submit(bobs, f"buy 1 AAA strategy={n}"))
        words[name] = (err.code(), re.sub(r"sig_[0-9a-f]+", "sig_…",
                                          (err.details() or "").replace(repr(name), "'NAME'")))
    assert words["listener"] == words["nobody"]
    assert "does not exist" in words["listener"][1]

    manager = runtime.strategies
    assert manager is not None
    alices = make_token("alice", ("signal",))
    sent = submit(alices, "sell 2 AAA strategy=listener").signal
    eventually(lambda: manager.state("alice", "listener"), lambda s: bool(s.get("seen")),
               "alice's own signal did not reach her strategy")
    assert manager.state("alice", "listener") == {"seen": [["AAA", "sell", 2.0]]}, \
        "only alice's signal was delivered"
    assert sent.destination == "strategy:alice/listener"


# ------------------------------------------------------------------ the CLI


def test_cli_strategies_commands_take_the_account(
        strategies: Stub, runtime: HostRuntime, alice: Caller, bob: Caller,
        capsys: pytest.CaptureFixture[str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``sandtrade strategies ... --account``: with the operator's token, a name two accounts
    have needs it (the error says so), and then each command reaches that account's strategy;
    ``list`` shows account and name; ``delete`` removes one account's only."""
    monkeypatch.chdir(tmp_path)
    upload(strategies, alice.metadata, "bot")
    upload(strategies, bob.metadata, "bot")
    assert runtime.rpc is not None
    host = ["--grpc", runtime.rpc.address,
            "--token", runtime.operator_token_path.read_text().strip()]

    def cli(*args: str) -> tuple[int, str, str]:
        code = main(["strategies", *args, *host])
        out, err = capsys.readouterr()
        return code, out, err

    code, _, err = cli("status", "bot")
    assert code != 0 and "account: name an account" in err, err
    code, out, _ = cli("status", "bot", "--account", "bob", "--json")
    assert code == 0 and json.loads(out)["account"] == "bob"
    code, out, _ = cli("logs", "bot", "--account", "alice", "--json")
    first = json.loads(out.splitlines()[0])
    assert code == 0 and first["line"].startswith("uploaded") and first["origin"] == "host"
    code, out, _ = cli("list", "--json")
    assert [(s["account"], s["name"]) for s in json.loads(out)] == [("alice", "bot"),
                                                                     ("bob", "bot")]
    code, out, _ = cli("list")
    assert code == 0 and re.search(r"account\s+name", out), out
    code, out, _ = cli("delete", "bot", "--account", "bob")
    assert code == 0 and "deleted bob/bot" in out, out
    code, out, _ = cli("list", "--account", "alice", "--json")
    assert [(s["account"], s["name"]) for s in json.loads(out)] == [("alice", "bot")]
    code, out, _ = cli("status", "bot", "--json")  # unique again: no account needed
    assert code == 0 and json.loads(out)["account"] == "alice"
