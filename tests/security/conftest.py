"""Fixtures for the security suite: a hostile strategy author's attempts, one test per attack.

Every test runs its attack in a real sandbox worker (``check_in_sandbox`` or
``SandboxRunner.run`` with tight limits) and then asserts two things:

* the attempt failed the expected way: refused at check with ``file:line``, an error at run
  time that names the problem, or a kill with the right ``SandboxKilled.reason``;
* the host is unharmed (:meth:`Sandbox.assert_host_unharmed`): a canary file outside the
  worker's private directory is unchanged and was not read back, neither was a secret held in
  the host's environment and in a host module global, no process is left in any worker's
  process group, and a normal strategy run right after gives the same result as before.

The fixture fails a test that never checks the host. Everything is per test (``tmp_path``,
its own workers), so the suite may run next to other test runs on the same machine.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.result import BacktestResult
from sandtrade.errors import StrategyError
from sandtrade.market import gbm_bars, write_csv
from sandtrade.sandbox import supervisor as supervisor_module
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.runner import SandboxRunner, check_in_sandbox
from sandtrade.sandbox.supervisor import SandboxKilled, Supervisor

#: The limits most attacks run under: tight, so that a runaway attack costs seconds.
LIMITS = WorkerLimits(cpu_seconds=3, memory_mb=512, wall_seconds=20, event_seconds=3)
#: For attacks that burn CPU: the kernel's CPU limit must be what stops them.
CPU_LIMITS = WorkerLimits(cpu_seconds=1, memory_mb=512, wall_seconds=20, event_seconds=20)
#: For attacks that stall a hook: the supervisor's per-step budget must stop them.
EVENT_LIMITS = WorkerLimits(cpu_seconds=30, memory_mb=512, wall_seconds=20, event_seconds=0.5)
#: For attacks that stall a whole run: the supervisor's wall-clock budget must stop them.
WALL_LIMITS = WorkerLimits(cpu_seconds=30, memory_mb=512, wall_seconds=1.5, event_seconds=30)

BARS = 200
SECRET_ENV = "SANDTRADE_SECURITY_SECRET"

#: A well-behaved strategy that uses the allowed features (imports, a class with ``+=`` on
#: its own attribute, a deque, indicators, orders, print, ctx.log, f-strings).
REFERENCE_STRATEGY = '''
import collections
import math

PARAMS = {"fast": 5, "slow": 12}


class Tracker(object):
    def __init__(self):
        self.count = 0
        self.recent = collections.deque(maxlen=3)


T = Tracker()


def on_bar(ctx, bar):
    T.count += 1
    T.recent.append(bar.close)
    fast = ctx.ta.sma(ctx.params["fast"])
    slow = ctx.ta.sma(ctx.params["slow"])
    if ctx.ta.crossover(fast, slow):
        ctx.close_position()
        ctx.buy()
    elif ctx.ta.crossunder(fast, slow):
        ctx.close_position()
        ctx.sell()


def on_stop(ctx):
    print(f"bars={T.count} last={T.recent[-1]:.4f} sqrt2={math.sqrt(2):.3f}")
    ctx.log("done", len(ctx.history(10)))
'''


def comparable(result: BacktestResult) -> dict[str, Any]:
    """A result as plain data, without its timing (the only field that may differ)."""
    return result.model_dump(mode="json", exclude={"elapsed_s"})


def run_file(path: Path, csv: Path, limits: WorkerLimits = LIMITS, **request: Any
             ) -> BacktestResult:
    """Back-test the strategy file ``path`` on ``csv`` in a fresh sandbox worker."""
    req = BacktestRequest(strategy=str(path), data=[DataSpec(path=str(csv))], **request)
    return SandboxRunner(limits).run(req)


@pytest.fixture(scope="session")
def market_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small hourly CSV of one symbol, ACME."""
    path = tmp_path_factory.mktemp("market") / "acme.csv"
    write_csv(gbm_bars(BARS, symbol="ACME"), path)
    return path


@pytest.fixture(scope="session")
def reference_result(tmp_path_factory: pytest.TempPathFactory, market_csv: Path
                     ) -> dict[str, Any]:
    """What the reference strategy gives on a quiet host, to compare every later run with."""
    path = tmp_path_factory.mktemp("reference") / "reference.py"
    path.write_text(REFERENCE_STRATEGY)
    result = run_file(path, market_csv)
    assert result.trades, "the reference strategy should trade"
    assert any(line.startswith("bars=200 ") for line in result.logs)
    return comparable(result)


def _as_text(item: object) -> str:
    if isinstance(item, BacktestResult):
        return item.model_dump_json()
    if isinstance(item, BaseException):
        return f"{item}\n{item.args!r}"
    if isinstance(item, str):
        return item
    return json.dumps(item, default=str)


def _live_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter(["status"]):
        try:
            if os.getpgid(proc.pid) == pgid and proc.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


class Sandbox:
    """Writes attack strategies, runs them in real workers and checks that the host is fine."""

    def __init__(self, root: Path, csv: Path, reference: dict[str, Any]) -> None:
        self.root = root
        self.csv = csv
        self.reference = reference
        self.worker_pids: list[int] = []
        self.host_checked = False
        # Secrets the host holds: in a file outside the worker's directory, in the host's
        # environment and in a host module global. None may ever come back from a worker.
        self.canary = root / "host" / "canary.txt"
        self.canary.parent.mkdir()
        self.canary_text = f"CANARY-{secrets.token_hex(16)}"
        self.canary.write_text(self.canary_text)
        self.canary.chmod(0o644)
        stat = self.canary.stat()
        self._canary_state = (stat.st_mtime_ns, stat.st_mode, stat.st_size)
        self.env_secret = f"ENV-{secrets.token_hex(16)}"
        self.global_secret = f"GLOBAL-{secrets.token_hex(16)}"

    # ------------------------------------------------------------------ writing and running

    def write(self, source: str, name: str = "attack.py") -> Path:
        """Write a strategy file; ``CANARY_PATH`` in ``source`` becomes the canary's path."""
        path = self.root / name
        text = textwrap.dedent(source).lstrip("\n").replace("CANARY_PATH", str(self.canary))
        path.write_text(text, encoding="utf-8")
        return path

    def run(self, source: str, limits: WorkerLimits = LIMITS, name: str = "attack.py",
            **request: Any) -> BacktestResult:
        """Back-test ``source`` in a sandbox worker; returns the result or raises."""
        return run_file(self.write(source, name), self.csv, limits, **request)

    def refused(self, source: str, *fragments: str, line: int | None = None) -> StrategyError:
        """``check_in_sandbox`` must refuse ``source`` with ``attack.py:<line>:`` and every
        fragment in the message."""
        path = self.write(source)
        with pytest.raises(StrategyError) as info:
            check_in_sandbox(str(path), LIMITS)
        message = str(info.value)
        where = re.escape(str(path)) + (rf":{line}:" if line else r":\d+:")
        assert re.search(where, message), message
        for fragment in fragments:
            assert fragment in message, message
        return info.value

    def fails(self, source: str, *fragments: str, limits: WorkerLimits = LIMITS,
              line: int | None = None) -> StrategyError:
        """Running ``source`` must end in a ``StrategyError`` naming the file, a line and
        every fragment."""
        path = self.write(source)
        with pytest.raises(StrategyError) as info:
            run_file(path, self.csv, limits)
        message = str(info.value)
        where = re.escape(str(path)) + (rf":{line}:" if line else r":\d+:")
        assert re.search(where, message), message
        for fragment in fragments:
            assert fragment in message, message
        return info.value

    def killed(self, source: str, reason: str, limits: WorkerLimits = LIMITS,
               *fragments: str) -> SandboxKilled:
        """Running ``source`` must end with the worker killed for ``reason``."""
        path = self.write(source)
        with pytest.raises(SandboxKilled) as info:
            run_file(path, self.csv, limits)
        assert info.value.reason == reason, f"{info.value.reason}: {info.value}"
        for fragment in fragments:
            assert fragment in str(info.value), str(info.value)
        return info.value

    # ------------------------------------------------------------------ the host's health

    def assert_host_unharmed(self, *evidence: object) -> None:
        """No secret in ``evidence`` (results, errors, texts), the canary untouched, no process
        left in any worker's group, and a normal run right after gives the usual result."""
        self.host_checked = True
        text = "\n".join(_as_text(item) for item in evidence)
        for secret in (self.canary_text, self.env_secret, self.global_secret):
            assert secret not in text, "a host secret came back from the sandbox"
        assert self.canary.read_text() == self.canary_text
        stat = self.canary.stat()
        assert (stat.st_mtime_ns, stat.st_mode, stat.st_size) == self._canary_state
        assert list(self.canary.parent.iterdir()) == [self.canary]
        assert os.environ.get(SECRET_ENV) == self.env_secret
        assert getattr(supervisor_module, "SECURITY_TEST_SECRET", None) == self.global_secret
        self.assert_no_stray_processes()
        path = self.root / "normal" / "reference.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(REFERENCE_STRATEGY)
        assert comparable(run_file(path, self.csv)) == self.reference

    def assert_no_stray_processes(self, timeout: float = 5.0) -> None:
        """Every worker started so far is gone, with its whole process group."""
        deadline = time.monotonic() + timeout
        for pgid in list(self.worker_pids):
            while members := _live_members(pgid):
                if time.monotonic() > deadline:
                    pytest.fail(f"processes left in worker group {pgid}: "
                                f"{[(p.pid, p.name()) for p in members]}")
                time.sleep(0.05)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    """Remember whether the test body passed (the ``sandbox`` fixture checks only then)."""
    report = yield
    if report.when == "call":
        item.stash[_CALL_PASSED] = report.passed
    return report


_CALL_PASSED = pytest.StashKey[bool]()


@pytest.fixture
def sandbox(tmp_path: Path, market_csv: Path, reference_result: dict[str, Any],
            monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
            ) -> Iterator[Sandbox]:
    """A :class:`Sandbox` for one test; records every worker it (or the code under test)
    starts, and fails the test if it never checked the host."""
    box = Sandbox(tmp_path, market_csv, reference_result)
    monkeypatch.setenv(SECRET_ENV, box.env_secret)
    monkeypatch.setattr(supervisor_module, "SECURITY_TEST_SECRET", box.global_secret,
                        raising=False)
    lock = threading.Lock()
    start = Supervisor.start

    def recording_start(self: Supervisor, task: dict[str, Any], *, name: str) -> Any:
        worker = start(self, task, name=name)
        with lock:
            box.worker_pids.append(worker.pid)
        return worker

    monkeypatch.setattr(Supervisor, "start", recording_start)
    yield box
    if request.node.stash.get(_CALL_PASSED, False):
        assert box.host_checked, "the test never checked that the host is unharmed"
