"""What a booted worker holds: the worker wing's closure, as the running process has it.

``lint-imports`` checks the worker's imports in the source; these tests check the process. A
worker booted with ``Supervisor(report_modules=True)`` lists ``sys.modules`` as it stood just
before it confined itself (no user code has run then), and the host keeps the list as
``Worker.modules``. Nothing of the host, the store, transport, signals, auth, the market or a
plugin may be in it: each is code an escaped strategy could reach, and boot time. Fill profiles
that plugins contribute reach the worker by reference only: it imports exactly those.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.broker import BrokerSettings
from sandtrade.broker.fills import BUILTIN_FILL_PROFILES
from sandtrade.errors import StrategyError
from sandtrade.market import gbm_bars, write_csv
from sandtrade.sandbox.runner import SandboxRunner
from sandtrade.sandbox.supervisor import MAX_MODULES, SandboxKilled, Supervisor, Worker

from .conftest import LIMITS

#: Modules a worker must never hold (the module itself or anything under it).
FORBIDDEN = (
    "sandtrade.host", "sandtrade.hookspecs", "sandtrade.plugin_api", "sandtrade.store",
    "sandtrade.rpc", "sandtrade.client", "sandtrade.http", "sandtrade.v1", "sandtrade.signals",
    "sandtrade.signal_model", "sandtrade.auth", "sandtrade.market",
    "sandtrade.sandbox.supervisor", "sandtrade.sandbox.runner", "sandtrade.sandbox.manager",
    "sandtrade.sandbox.strategy_run", "sandtrade.options.picture",
    "grpc", "fastapi", "uvicorn", "psutil", "plotly", "rich",
)
#: Plugins are top-level packages named ``sandtrade_*``.
PLUGIN_PREFIX = "sandtrade_"

#: Every sandtrade module a booted worker holds. A change here is a reviewed diff: a module
#: added to the worker is code every strategy run loads (and boot time).
EXPECTED_SANDTRADE = (
    "sandtrade",
    "sandtrade.backtest", "sandtrade.backtest.engine", "sandtrade.backtest.options_desk",
    "sandtrade.backtest.request", "sandtrade.backtest.result",
    # a sweep's worker measures its own runs (sandbox/worker/sweep_task.py)
    "sandtrade.backtest.meter", "sandtrade.backtest.stats",
    "sandtrade.broker", "sandtrade.broker.checks", "sandtrade.broker.execution",
    "sandtrade.broker.expiry", "sandtrade.broker.fills", "sandtrade.broker.ids",
    "sandtrade.broker.legs", "sandtrade.broker.lots", "sandtrade.broker.multileg",
    "sandtrade.broker.paper", "sandtrade.broker.prices",
    "sandtrade.broker.restore", "sandtrade.broker.risk",
    "sandtrade.broker.settings",
    "sandtrade.errors", "sandtrade.models",
    # ctx.options: chains, QuantLib pricing and templates (not the picture: no plotly)
    "sandtrade.options", "sandtrade.options.chain", "sandtrade.options.contracts",
    "sandtrade.options.greeks", "sandtrade.options.loader", "sandtrade.options.payoff",
    "sandtrade.options.pricing", "sandtrade.options.settings", "sandtrade.options.sources",
    "sandtrade.options.templates",
    "sandtrade.sandbox", "sandtrade.sandbox.limits", "sandtrade.sandbox.wire",
    "sandtrade.sandbox.worker", "sandtrade.sandbox.worker.backtest_task",
    "sandtrade.sandbox.worker.boot", "sandtrade.sandbox.worker.confine",
    "sandtrade.sandbox.worker.live_task", "sandtrade.sandbox.worker.sweep_task",
    "sandtrade.strategy", "sandtrade.strategy.context", "sandtrade.strategy.hooks",
    # ctx.ta's value-fed cores, ctx.plot's recorders and bounds, typed PARAMS, ctx.pine,
    # the strategy modules' registry
    "sandtrade.strategy.indicators", "sandtrade.strategy.loader", "sandtrade.strategy.modules",
    "sandtrade.strategy.params", "sandtrade.strategy.pine", "sandtrade.strategy.pine_builtins",
    "sandtrade.strategy.plots",
    "sandtrade.strategy.policy", "sandtrade.strategy.static_check", "sandtrade.strategy.ta",
)

#: ... and one that builds numpy and TA-Lib for strategies (a spare, a zygote's child,
#: ``doctor``, or a worker whose strategy imports them): their reviewed facades.
EXPECTED_WITH_NUMPY = (*EXPECTED_SANDTRADE, "sandtrade.strategy.numeric")

MID_PROFILE = '''
from sandtrade.broker import NextOpenProfile


class MidProfile(NextOpenProfile):
    name = "mid"
    description = "market orders at the bar's (high+low)/2"

    def bar_price(self, order, bar):
        if order.type.value == "market":
            return (bar.high + bar.low) / 2
        return super().bar_price(order, bar)
'''

BUY_ONCE = "def on_bar(ctx, bar):\n    if not ctx.position().qty:\n        ctx.buy(1)\n"


def forbidden(module: str) -> bool:
    """Whether ``module`` is one a worker must not hold."""
    return module.startswith(PLUGIN_PREFIX) or any(
        module == f or module.startswith(f + ".") for f in FORBIDDEN)


def boot(supervisor: Supervisor) -> Worker:
    """A worker of ``supervisor``, booted and confined, given a check task of an empty file."""
    return supervisor.start({"task": "check", "path": "empty.py", "source": ""}, name="empty")


@pytest.fixture(scope="module")
def modules() -> list[str]:
    """The modules a plain worker (no plugin profile) holds before it confines itself."""
    worker = boot(Supervisor(LIMITS, report_modules=True))
    try:
        assert worker.modules is not None
        return worker.modules
    finally:
        worker.close()


@pytest.fixture
def mid_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """A plugin's module with a fill profile, importable by the host and (through the host's
    import path) by its workers."""
    (tmp_path / "midfill_profile.py").write_text(MID_PROFILE)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("midfill_profile")
    yield module
    sys.modules.pop("midfill_profile", None)


def test_a_booted_worker_holds_no_host_store_transport_or_plugin_module(
        modules: list[str]) -> None:
    assert "sandtrade.sandbox.worker.boot" in modules  # the list is the worker's own
    assert [m for m in modules if forbidden(m)] == []


def test_the_sandtrade_modules_of_a_booted_worker_are_the_expected_ones(
        modules: list[str]) -> None:
    assert [m for m in modules if m.partition(".")[0] == "sandtrade"] == \
        sorted(EXPECTED_SANDTRADE)


def test_a_worker_whose_strategy_never_names_options_loads_no_quantlib(
        modules: list[str]) -> None:
    assert "sandtrade.options.pricing" in modules  # the room, without its library
    assert not [m for m in modules if m.partition(".")[0] == "QuantLib"]


def test_a_worker_whose_strategy_names_options_loads_quantlib_before_it_confines_itself(
        ) -> None:
    worker = Supervisor(LIMITS, report_modules=True).start(
        {"task": "check", "path": "chain.py",
         "source": "def on_bar(ctx, bar):\n    ctx.options.chain()\n"}, name="chain")
    try:
        assert worker.modules is not None and "QuantLib" in worker.modules
    finally:
        worker.close()


def test_an_option_price_asked_of_a_worker_without_quantlib_says_why(tmp_path: Path) -> None:
    """The attribute's name computed, so the source never names it: the worker went without
    the library, and where the process layer keeps it from loading it later the strategy is
    told why (elsewhere the late import simply works)."""
    source = 'def on_bar(ctx, bar):\n    getattr(ctx, "opt" + "ions").chain()\n'
    request = BacktestRequest(strategy="computed.py", data=[DataSpec(path="unused.csv")])
    runner = SandboxRunner(supervisor=Supervisor(LIMITS))
    try:
        runner.run_source(source, request, {"ACME": gbm_bars(30, symbol="ACME", seed=3)})
    except StrategyError as e:
        assert "computed.py:2" in str(e)
        assert "needs QuantLib, which this sandbox worker did not load before it confined " \
               "itself" in str(e)
    else:
        assert runner.last_worker is not None
        assert not runner.last_worker.layers.get("landlock", "").startswith("on")


def test_a_worker_lists_no_modules_unless_asked() -> None:
    worker = boot(Supervisor(LIMITS))
    try:
        assert worker.modules is None
        assert "fill_profiles" not in worker.layers  # no plugin profile named, none loaded
    finally:
        worker.close()


def test_doctor_prints_the_worker_modules() -> None:
    proc = subprocess.run([sys.executable, "-m", "sandtrade.cli", "doctor", "--worker-modules"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "seccomp" in proc.stdout  # the layers table is still there
    lines = proc.stdout.splitlines()
    own = next(line for line in lines if line.startswith("sandtrade ("))
    names = own.partition(": ")[2].split(", ")
    assert names == sorted(EXPECTED_WITH_NUMPY)
    assert own.startswith(f"sandtrade ({len(EXPECTED_WITH_NUMPY)}): ")
    third = next(line for line in lines if line.startswith("third-party packages ("))
    packages = [p.split(" (")[0] for p in third.partition(": ")[2].split(", ")]
    assert {"pydantic", "RestrictedPython", "pluggy", "numpy", "talib"} <= set(packages)
    assert "pandas" not in packages  # TA-Lib loads without it
    assert not [p for p in packages if forbidden(p)]
    assert any(line.startswith("standard library: ") for line in lines)


def test_plain_doctor_lists_no_modules() -> None:
    proc = subprocess.run([sys.executable, "-m", "sandtrade.cli", "doctor"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "seccomp" in proc.stdout and "sandtrade (" not in proc.stdout


def test_a_worker_imports_exactly_the_fill_profiles_the_host_names(
        mid_profile: ModuleType) -> None:
    supervisor = Supervisor(LIMITS, report_modules=True,
                            fill_profiles=[*BUILTIN_FILL_PROFILES, mid_profile.MidProfile])
    assert supervisor.fill_profiles == ("midfill_profile:MidProfile",)  # built-ins left out
    worker = boot(supervisor)
    try:
        assert worker.layers["fill_profiles"] == "on (mid)"
        assert worker.modules is not None
        assert "midfill_profile" in worker.modules
        assert [m for m in worker.modules if forbidden(m)] == []
    finally:
        worker.close()


def test_a_back_test_uses_a_fill_profile_the_worker_imported(
        tmp_path: Path, mid_profile: ModuleType) -> None:
    csv = tmp_path / "ACME.csv"
    bars = gbm_bars(50, symbol="ACME", seed=3)
    write_csv(bars, csv)
    strategy = tmp_path / "buy_once.py"
    strategy.write_text(BUY_ONCE)
    request = BacktestRequest(strategy=str(strategy), data=[DataSpec(path=str(csv))],
                              broker=BrokerSettings(fill_profile="mid"), close_at_end=True)
    supervisor = Supervisor(LIMITS, fill_profiles=[mid_profile.MidProfile])
    result = SandboxRunner(supervisor=supervisor).run(request)
    first = result.trades[0]
    bar = next(b for b in bars if b.time == first.entry_time)
    assert first.entry_price == pytest.approx((bar.high + bar.low) / 2)


def test_a_fill_profile_the_worker_cannot_import_is_reported_and_unknown_to_a_run(
        tmp_path: Path) -> None:
    """The host can import it (from a file), the worker cannot (not on the import path): the
    worker still boots, says why in its layers, and a run that selects the profile fails as
    an unknown profile does, naming the ones the worker has."""
    path = tmp_path / "gone" / "gonefill.py"
    path.parent.mkdir()
    path.write_text(MID_PROFILE)
    spec = importlib.util.spec_from_file_location("gonefill", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    supervisor = Supervisor(LIMITS, fill_profiles=[module.MidProfile])
    worker = boot(supervisor)
    try:
        assert worker.layers["fill_profiles"] == (
            "failed: gonefill:MidProfile: ModuleNotFoundError: No module named 'gonefill'")
    finally:
        worker.close()
    csv = tmp_path / "ACME.csv"
    write_csv(gbm_bars(20, symbol="ACME"), csv)
    strategy = tmp_path / "buy_once.py"
    strategy.write_text(BUY_ONCE)
    request = BacktestRequest(strategy=str(strategy), data=[DataSpec(path=str(csv))],
                              broker=BrokerSettings(fill_profile="mid"))
    with pytest.raises(StrategyError, match=r"unknown fill profile 'mid' \(known: close, "
                       r"next_open, quote\)"):
        SandboxRunner(supervisor=supervisor).run(request)


FAKE_READY = """
import sys
from sandtrade.sandbox.wire import read_frame, write_frame

read_frame(sys.stdin.buffer)
mode = sys.argv[1]
modules = {"too_many": ["m%d" % k for k in range(%(max)d + 1)],
           "as_many_as_allowed": ["m%d" % k for k in range(%(max)d)],
           "not_a_list": "sandtrade", "not_names": ["sandtrade", 1]}.get(mode)
ready = {"type": "ready", "layers": {}}
if modules is not None:
    ready["modules"] = modules
write_frame(sys.stdout.buffer, ready)
sys.stdin.buffer.read()
""".replace("%(max)d", str(MAX_MODULES))


def fake_supervisor(mode: str) -> Supervisor:
    """A supervisor asking for the module list, whose worker answers ``ready`` as ``mode``."""
    supervisor = Supervisor(LIMITS, report_modules=True)
    supervisor.worker_command = (sys.executable, "-I", "-c", FAKE_READY, mode)
    return supervisor


@pytest.mark.parametrize("mode", ["too_many", "not_a_list", "not_names", "missing"])
def test_a_module_list_that_is_not_at_most_5000_names_is_a_protocol_error(mode: str) -> None:
    with pytest.raises(SandboxKilled, match="broke the protocol") as caught:
        boot(fake_supervisor(mode))
    assert caught.value.reason == "protocol"


def test_a_module_list_of_5000_names_is_taken() -> None:
    worker = boot(fake_supervisor("as_many_as_allowed"))
    try:
        assert worker.modules is not None and len(worker.modules) == MAX_MODULES == 5_000
    finally:
        worker.close()
