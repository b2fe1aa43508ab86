"""The host against a hostile worker: whatever a worker that escaped the language layer sends.

A sandboxed back-test is measured on the host from the equity values the worker streams and
the bars the host sent itself, so every equity and result frame is untrusted input. These
tests replace the worker with ``hostile_worker.py``, which speaks the real protocol (boot,
ready, task, bars) and then sends one kind of malformed answer; each must end the run with
``SandboxKilled(reason="protocol")`` and a message naming the problem, kill the fake worker,
and leave the host able to run the next strategy as before. A well-behaved fake shows the
other side: the host computes the figures from the values it was sent.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import psutil
import pytest

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.result import BacktestResult
from sandtrade.market import load_csv
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.runner import SandboxRunner
from sandtrade.sandbox.supervisor import SandboxKilled, Supervisor

from .conftest import BARS, LIMITS, Sandbox
from .hostile_worker import START

FAKE = Path(__file__).with_name("hostile_worker.py")


def run_fake(sandbox: Sandbox, mode: str, limits: WorkerLimits = LIMITS
             ) -> tuple[SandboxRunner, BacktestResult | SandboxKilled]:
    """Back-test a harmless strategy on the sandbox's CSV with the fake worker in ``mode``;
    the runner (for its last worker) and the result or the kill."""
    path = sandbox.write("def on_bar(ctx, bar):\n    pass\n", "fake.py")
    supervisor = Supervisor(limits)
    supervisor.worker_command = (sys.executable, "-I", str(FAKE), mode)
    runner = SandboxRunner(supervisor=supervisor)
    request = BacktestRequest(strategy=str(path), data=[DataSpec(path=str(sandbox.csv))])
    try:
        return runner, runner.run(request)
    except SandboxKilled as e:
        return runner, e


def assert_fake_gone(runner: SandboxRunner) -> None:
    """The fake never exits by itself: the host must have killed and reaped it."""
    assert runner.last_worker is not None
    pid = runner.last_worker.pid
    assert runner.last_worker.proc.returncode == -signal.SIGKILL
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def killed_for_protocol(sandbox: Sandbox, mode: str, *fragments: str,
                        limits: WorkerLimits = LIMITS) -> SandboxKilled:
    """Run the fake in ``mode``: the run must end in a protocol kill whose message holds every
    fragment, the fake must be gone and the host unharmed."""
    runner, outcome = run_fake(sandbox, mode, limits)
    assert isinstance(outcome, SandboxKilled), (
        f"the host accepted {mode!r} as a result of {outcome.bars} bars, final equity "
        f"{outcome.stats['Equity Final [$]']}")
    assert outcome.reason == "protocol", f"{outcome.reason}: {outcome}"
    message = str(outcome)
    assert message.startswith(str(sandbox.root / "fake.py") + ": "), message
    for fragment in fragments:
        assert fragment in message, message
    assert_fake_gone(runner)
    sandbox.assert_host_unharmed(outcome)
    return outcome


# ---------------------------------------------------------------- a well-behaved fake


def test_host_measures_the_values_the_worker_sent_on_the_bars_it_sent(sandbox: Sandbox) -> None:
    """An honest stream (one value a bar, START, START + 1, ...) and a result without trades:
    the figures are the host's, from those values and its own bars, not anything the worker
    computed (it sent no statistics at all)."""
    runner, result = run_fake(sandbox, "good")
    assert isinstance(result, BacktestResult), result
    assert result.bars == BARS
    assert result.stats["Equity Final [$]"] == START + BARS - 1
    assert result.stats["Equity Peak [$]"] == START + BARS - 1
    assert result.stats["Max. Drawdown [%]"] == 0.0
    assert [p.equity for p in result.equity_curve] == [START + k for k in range(BARS)]
    bars = load_csv(sandbox.csv)
    assert result.prices == {"ACME": bars}
    assert result.stats["Start"] == bars[0].time.isoformat()
    assert result.stats["End"] == bars[-1].time.isoformat()
    assert_fake_gone(runner)
    sandbox.assert_host_unharmed(result)


def test_trades_sent_along_with_the_values_come_first_in_the_result(sandbox: Sandbox) -> None:
    """Closed trades travel with the equity values (validated by the host as they arrive)
    and the result holds the rest: the run's trades are both, in order."""
    runner, result = run_fake(sandbox, "good_trades")
    assert isinstance(result, BacktestResult), result
    assert [t.entry_price for t in result.trades] == [100.0, 101.0, 102.0]
    assert result.stats["# Trades"] == 3
    assert_fake_gone(runner)
    sandbox.assert_host_unharmed(result)


# ---------------------------------------------------------------- equity frames


def test_more_equity_values_than_bars_sent_is_a_protocol_kill(sandbox: Sandbox) -> None:
    killed_for_protocol(sandbox, "too_many", "equity frame is malformed",
                        f"{BARS + 1} equity values for {BARS} bars")


@pytest.mark.parametrize("mode", ["nan", "inf"])
def test_an_equity_value_that_is_not_finite_is_a_protocol_kill(sandbox: Sandbox,
                                                                mode: str) -> None:
    killed_for_protocol(sandbox, mode, "equity frame is malformed", "not a finite number")


def test_an_equity_count_that_disagrees_with_the_payload_is_a_protocol_kill(
        sandbox: Sandbox) -> None:
    killed_for_protocol(sandbox, "count_short", "equity frame is malformed",
                        f"{(BARS - 1) * 8:,} bytes says {BARS} values")


@pytest.mark.parametrize(("mode", "shown"), [("count_str", "'3'"), ("count_float", "2.5")])
def test_an_equity_count_that_is_not_an_int_is_a_protocol_kill(sandbox: Sandbox, mode: str,
                                                                shown: str) -> None:
    """2.5 values in 20 bytes agree arithmetically: only the type check can refuse it."""
    killed_for_protocol(sandbox, mode, "equity frame is malformed", f"says {shown} values")


@pytest.mark.parametrize(("mode", "shown"), [("trades_bytes_lie", "bytes of trades"),
                                             ("trades_bytes_negative", "-8 bytes of trades")])
def test_a_trades_size_that_disagrees_with_the_payload_is_a_protocol_kill(
        sandbox: Sandbox, mode: str, shown: str) -> None:
    killed_for_protocol(sandbox, mode, "equity frame is malformed", shown)


def test_trades_sent_frame_after_frame_count_against_one_result_cap(sandbox: Sandbox) -> None:
    """Each frame is under the size cap of a result, but the trades of all of them are what
    the result would hold: past the cap, the host stops taking them (its memory is at stake)."""
    limits = LIMITS.model_copy(update={"result_bytes": 64_000})
    killed_for_protocol(sandbox, "trades_flood", "equity frame is malformed",
                        "passed the 64,000-byte limit of a result", limits=limits)


def test_a_malformed_trade_sent_with_the_values_is_a_protocol_kill(sandbox: Sandbox) -> None:
    killed_for_protocol(sandbox, "trades_invalid", "equity frame is malformed", "exit_price")


def test_a_result_that_miscounts_the_trades_sent_is_a_protocol_kill(sandbox: Sandbox) -> None:
    killed_for_protocol(sandbox, "trades_sent_lie", "result frame is malformed",
                        "counts 3 trades sent before it, 1 arrived")


# ---------------------------------------------------------------- result frames


def test_a_result_claiming_another_bar_count_is_a_protocol_kill(sandbox: Sandbox) -> None:
    killed_for_protocol(sandbox, "bars_mismatch", "result frame is malformed",
                        f"reports {BARS - 1} bars but {BARS} equity values arrived")


def test_a_result_with_negative_warmup_bars_is_a_protocol_kill(sandbox: Sandbox) -> None:
    """A negative warm-up would index Buy & Hold's closes from the end."""
    killed_for_protocol(sandbox, "warmup_negative", "result frame is malformed",
                        "warmup_bars: Input should be greater than or equal to 0")


def test_a_strategy_log_past_the_log_limit_is_a_protocol_kill(sandbox: Sandbox) -> None:
    """The worker caps the strategy's log; one that sends more would have the host keep and
    print (`sandtrade backtest --log`) as much as fits in a result."""
    limits = LIMITS.model_copy(update={"log_bytes": 64_000})
    killed_for_protocol(sandbox, "log_flood", "result frame is malformed",
                        "strategy log of 100,000 characters passed the 64,000-byte limit",
                        limits=limits)


@pytest.mark.parametrize("mode, problem", [
    ("plot_many", "List should have at most 16 items"),
    ("plot_name", "a plot's name must be 1 to 40 printable characters"),
    ("plot_nan", "values must be finite"),
    ("plot_long", "List should have at most 4001 items"),
])
def test_plots_out_of_their_bounds_are_a_protocol_kill(sandbox: Sandbox, mode: str,
                                                        problem: str) -> None:
    """ctx.plot's bounds (16 series, printable names, finite values, decimated points) hold
    for what a worker sends, not only for what the strategy API lets it make."""
    killed_for_protocol(sandbox, mode, "result frame is malformed", problem)


def test_a_result_that_is_not_json_is_a_protocol_kill(sandbox: Sandbox) -> None:
    killed_for_protocol(sandbox, "result_not_json", "result frame is malformed",
                        "Invalid JSON")


def test_a_frame_past_the_cap_is_a_protocol_kill_that_names_its_size(sandbox: Sandbox) -> None:
    """Stays a kill, in words a person reads: what was sent and what the limit is, not "frame
    too large"."""
    killed = killed_for_protocol(sandbox, "huge_header",
                                 "the worker sent a 3.1 MiB message (limit 1 MiB)")
    assert "frame too large" not in str(killed), killed


# ---------------------------------------------------------------- frames of no known type


def test_an_unexpected_frame_type_is_a_protocol_kill(sandbox: Sandbox) -> None:
    """Progress now travels in equity frames; a "progress" frame is no longer part of the
    protocol."""
    killed_for_protocol(sandbox, "progress_then_wait", "unexpected frame 'progress'")


def test_a_child_process_after_ready_is_killed(sandbox: Sandbox) -> None:
    """A worker past every layer that starts a process after it reported ``ready``: the
    watchdog (which lists children once a second) kills the whole group and says so."""
    runner, outcome = run_fake(sandbox, "fork")
    assert isinstance(outcome, SandboxKilled), outcome
    assert outcome.reason == "child", f"{outcome.reason}: {outcome}"
    assert "started a child process (pid " in str(outcome), str(outcome)
    assert_fake_gone(runner)
    sandbox.assert_host_unharmed(outcome)


def test_frames_queued_behind_an_unexpected_frame_are_not_taken_as_the_answer(
        sandbox: Sandbox) -> None:
    """The worker that sent the bad frame is killed, but frames it wrote just before dying
    are already in the host's queue: a valid-looking result among them must not turn the
    protocol violation into a successful run."""
    killed_for_protocol(sandbox, "progress_then_result", "unexpected frame 'progress'")
