"""The plugin API: hooks documented and exercised; entry-point plugins found, broken ones named."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap
from datetime import datetime
from pathlib import Path

import pluggy
import pytest
from strategies_examples import example_path

from sandtrade import hookspecs
from sandtrade.host.plugins import BUILTIN_PLUGINS, PluginHost
from sandtrade.market import gbm_bars, write_csv

HOOKS = [name for name, fn in vars(hookspecs).items()
         if name.startswith("sandtrade_") and inspect.isfunction(fn)]


def make_plugin_dist(root: Path, module: str, source: str) -> None:
    """Install a plugin the way pip would leave it: a module plus a dist-info with its
    ``sandtrade`` entry point, on a path the test puts on PYTHONPATH."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[sandtrade]\n{module} = {module}\n")


MID_PROFILE = """
    from sandtrade.broker import NextOpenProfile
    from sandtrade.hookspecs import hookimpl

    class MidProfile(NextOpenProfile):
        name = "mid"
        description = "market orders at the bar's (high+low)/2"

        def bar_price(self, order, bar):
            if order.type.value == "market":
                return (bar.high + bar.low) / 2
            return super().bar_price(order, bar)

    @hookimpl
    def sandtrade_fill_profiles():
        return [MidProfile]
"""


@pytest.mark.parametrize("name", HOOKS)
def test_every_hook_is_documented(name: str) -> None:
    doc = inspect.getdoc(getattr(hookspecs, name)) or ""
    assert len(doc) > 80, f"{name} needs a docstring saying when it is called and what it returns"
    assert ":return:" in doc or ":param" in doc


def test_every_hook_is_called_by_a_test_in_this_file() -> None:
    source = Path(__file__).read_text()
    missing = [name for name in HOOKS if f"pm.hook.{name}(" not in source]
    assert not missing, f"hooks no test calls: {missing}"


def test_builtin_plugins_answer_sandtrade_fill_profiles() -> None:
    host = PluginHost.create(load_entry_points=False)
    results = host.pm.hook.sandtrade_fill_profiles()
    names = {p.name for profiles in results for p in profiles}
    assert names == {"next_open", "close", "quote"}


def test_a_plugin_profile_with_a_builtin_name_replaces_it() -> None:
    from sandtrade.broker import NextOpenProfile
    from sandtrade.hookspecs import hookimpl

    class Mine(NextOpenProfile):
        name = "close"

    class Plugin:
        @hookimpl
        def sandtrade_fill_profiles(self):  # type: ignore[no-untyped-def]
            return [Mine]

    host = PluginHost.create(load_entry_points=False, extra=[Plugin()])
    assert host.fill_profiles()["close"] is Mine
    assert host.fill_profiles()["next_open"].__name__ == "NextOpenProfile"


def test_entry_point_plugin_adds_a_fill_profile_used_by_a_backtest(tmp_path: Path) -> None:
    make_plugin_dist(tmp_path, "sandtrade_midfill", MID_PROFILE)
    csv = tmp_path / "ACME.csv"
    write_csv(gbm_bars(300, symbol="ACME", seed=3), csv)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "sandtrade.cli", "backtest", str(example_path("sma_cross")),
         "--data", str(csv), "--fill-profile", "mid", "--json"],
        capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["settings"]["fill_profile"] == "mid"
    bars = {b.time.isoformat(): b for b in gbm_bars(300, symbol="ACME", seed=3)}
    first = out["trades"][0]
    bar = bars[first["entry_time"]]
    assert first["entry_price"] == pytest.approx((bar.high + bar.low) / 2)


def test_unknown_fill_profile_lists_the_known_ones(tmp_path: Path) -> None:
    csv = tmp_path / "ACME.csv"
    write_csv(gbm_bars(50, symbol="ACME"), csv)
    proc = subprocess.run(
        [sys.executable, "-m", "sandtrade.cli", "backtest", str(example_path("sma_cross")),
         "--data", str(csv), "--fill-profile", "magic"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "unknown fill profile 'magic'" in proc.stderr and "next_open" in proc.stderr


def test_broken_entry_point_plugin_is_named_and_skipped(tmp_path: Path) -> None:
    make_plugin_dist(tmp_path, "sandtrade_broken", "raise ImportError('needs libfoo')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        host = PluginHost.create()
    finally:
        sys.path.remove(str(tmp_path))
    assert [(e.name, "needs libfoo" in e.error) for e in host.errors] == [
        ("sandtrade_broken", True)]
    assert "next_open" in host.fill_profiles()  # the rest of the host still works


def test_broken_builtin_plugin_is_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandtrade.hookspecs import hookimpl

    class Bad:
        @hookimpl
        def sandtrade_fill_profile(self):  # type: ignore[no-untyped-def]  # misspelled hook
            return []

    monkeypatch.setattr("sandtrade.host.plugins.BUILTIN_PLUGINS",
                        (*BUILTIN_PLUGINS, ("bad", Bad())))
    with pytest.raises(pluggy.PluginValidationError, match="sandtrade_fill_profile"):
        PluginHost.create(load_entry_points=False)


def test_builtin_plugins_answer_sandtrade_market_sources() -> None:
    host = PluginHost.create(load_entry_points=False)
    results = host.pm.hook.sandtrade_market_sources()
    names = {s.name for sources in results for s in sources}
    assert names == {"replay", "synthetic"}


def test_a_plugin_market_source_is_found_by_name() -> None:
    from sandtrade.hookspecs import hookimpl
    from sandtrade.models import Bar, Instrument

    class Ticks:
        name = "ticks"

        def __init__(self, settings: object) -> None:
            self.settings = settings

        def instruments(self) -> list[Instrument]:
            return [Instrument.equity("TCK")]

        def bars(self):  # type: ignore[no-untyped-def]
            yield Bar("TCK", datetime(2024, 1, 1), 1.0, 1.0, 1.0, 1.0)

    class Plugin:
        @hookimpl
        def sandtrade_market_sources(self) -> list[type]:
            return [Ticks]

    host = PluginHost.create(load_entry_points=False, extra=[Plugin()])
    sources = host.market_sources()
    assert set(sources) == {"replay", "synthetic", "ticks"}
    assert [i.symbol for i in sources["ticks"](None).instruments()] == ["TCK"]  # type: ignore[call-arg]


def test_builtin_plugins_answer_sandtrade_signal_formats() -> None:
    host = PluginHost.create(load_entry_points=False)
    results = host.pm.hook.sandtrade_signal_formats()
    names = {f.name for formats in results for f in formats}
    assert names == {"native", "tradingview", "traderspost", "text"}


def test_a_plugin_signal_format_is_detected_before_the_builtins() -> None:
    from sandtrade.hookspecs import hookimpl
    from sandtrade.signals import Command, ParsedSignal
    from sandtrade.signals.formats import SignalFormat

    class Pine(SignalFormat):
        """A PineConnector-like line: ``LICENSE,buy,EURUSD,risk=1``."""

        name = "pine"

        def detect(self, body: str, data: object) -> bool:
            return data is None and body.count(",") >= 2

        def parse(self, body: str, data: object) -> ParsedSignal:
            _, action, symbol, *_ = body.split(",")
            return ParsedSignal(format=self.name, commands=[
                Command(action=action, symbol=symbol, qty=1.0)])  # type: ignore[arg-type]

    class Plugin:
        @hookimpl
        def sandtrade_signal_formats(self) -> list[type]:
            return [Pine]

    host = PluginHost.create(load_entry_points=False, extra=[Plugin()])
    parsed = host.signal_formats().parse("123,sell,EURUSD,risk=1")
    assert parsed.format == "pine"
    assert parsed.commands[0].action == "sell" and parsed.commands[0].symbol == "EURUSD"
    # the built-in text format still reads what the plugin does not claim
    assert host.signal_formats().parse("buy 2 AAPL").format == "text"


def test_no_builtin_answers_sandtrade_live_brokers_and_a_plugin_adds_one() -> None:
    from sandtrade.hookspecs import hookimpl
    from sandtrade.signals.destinations import LiveBrokerAdapter

    host = PluginHost.create(load_entry_points=False)
    assert host.pm.hook.sandtrade_live_brokers() == []  # sandtrade ships no live broker

    class FakeBroker(LiveBrokerAdapter):
        name = "fake"

        def execute(self, record, commands, client_order_ids):  # type: ignore[no-untyped-def]
            return "sent"

    class Plugin:
        @hookimpl
        def sandtrade_live_brokers(self) -> list[type]:
            return [FakeBroker]

    host = PluginHost.create(load_entry_points=False, extra=[Plugin()])
    assert host.live_brokers() == {"fake": FakeBroker}


def test_the_tradingview_plugin_is_found_through_its_entry_point_and_adds_routes() -> None:
    host = PluginHost.create()
    assert host.pm.has_plugin("tradingview"), [e.error for e in host.errors]

    class Api:
        config_path = None

        def plugin_settings(self, name: str) -> dict[str, object]:
            return {}

    routers = host.pm.hook.sandtrade_http_routes(host=Api())
    paths = {route.path for routers_ in routers for r in routers_ for route in r.routes}
    assert {"/webhooks/tradingview/{token}", "/webhooks/tradingview"} <= paths
    # The dashboard plugin (plugins/dashboard) is found the same way.
    assert host.pm.has_plugin("dashboard"), [e.error for e in host.errors]
    assert {"/", "/dashboard", "/dashboard/signin", "/dashboard/events"} <= paths


def test_builtin_plugins_answer_sandtrade_option_chains() -> None:
    host = PluginHost.create(load_entry_points=False)
    results = host.pm.hook.sandtrade_option_chains()
    assert {s.name for sources in results for s in sources} == {"synthetic", "recorded"}


def test_a_plugin_chain_source_with_a_builtin_name_replaces_it() -> None:
    from sandtrade.hookspecs import hookimpl
    from sandtrade.options import SyntheticChains

    class Feed(SyntheticChains):
        name = "synthetic"

    class Plugin:
        @hookimpl
        def sandtrade_option_chains(self):  # type: ignore[no-untyped-def]
            return [Feed]

    host = PluginHost.create(load_entry_points=False, extra=[Plugin()])
    assert host.option_chain_sources()["synthetic"] is Feed
    assert host.option_chain_sources()["recorded"].__name__ == "RecordedChains"


def test_builtin_plugins_answer_sandtrade_strategy_modules() -> None:
    host = PluginHost.create(load_entry_points=False)
    results = host.pm.hook.sandtrade_strategy_modules()
    assert {m.name for modules in results for m in modules} == {"numpy", "talib"}


#: A trusted plugin's reviewed module: a facade that lists exactly what strategies may use.
CLAMP_MODULE = """
    import types

    from sandtrade.hookspecs import hookimpl
    from sandtrade.plugin_api import StrategyModule


    def clamp(x, low, high):
        if not all(type(v) in (int, float) for v in (x, low, high)):
            raise TypeError("clamp takes numbers")
        return min(max(x, low), high)


    def build():
        module = types.ModuleType("clampx")
        module.clamp = clamp
        module.__all__ = ["clamp"]
        return module


    class Plugin:
        @hookimpl
        def sandtrade_strategy_modules(self):
            return [StrategyModule("clampx", "sandtrade_clampx:build", "clamp(x, low, high)")]
"""

USES_CLAMPX = """
import clampx

def on_bar(ctx, bar):
    print("CLAMPED", clampx.clamp(bar.close, 0, 1))
"""


def test_a_plugin_strategy_module_reaches_strategies_through_a_real_worker(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin contributes ``clampx``; the worker builds it by reference and a strategy
    imports it; ``[sandbox] modules`` without it refuses the import at check."""
    from sandtrade.backtest.request import BacktestRequest, DataSpec
    from sandtrade.errors import StrategyError
    from sandtrade.sandbox.runner import SandboxRunner, check_in_sandbox
    from sandtrade.sandbox.supervisor import Supervisor

    (tmp_path / "sandtrade_clampx.py").write_text(textwrap.dedent(CLAMP_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    import sandtrade_clampx  # type: ignore[import-not-found]

    host = PluginHost.create(load_entry_points=False, extra=[sandtrade_clampx.Plugin()])
    assert [m.name for ms in host.pm.hook.sandtrade_strategy_modules() for m in ms] == [
        "clampx", "numpy", "talib"]
    modules = host.strategy_modules().values()
    strategy = tmp_path / "uses_clampx.py"
    strategy.write_text(USES_CLAMPX.lstrip())
    csv = tmp_path / "ACME.csv"
    write_csv(gbm_bars(20, symbol="ACME"), csv)
    supervisor = Supervisor(strategy_modules=modules)
    try:
        result = SandboxRunner(supervisor=supervisor).run(BacktestRequest(
            strategy=str(strategy), data=[DataSpec(path=str(csv))]))
    finally:
        supervisor.close()
    assert result.logs[0] == "CLAMPED 1"
    narrowed = Supervisor(strategy_modules=modules, modules=["math", "numpy"])
    try:
        with pytest.raises(StrategyError, match=r"uses_clampx.py:1: import of 'clampx' is not "
                           r"allowed \(allowed: math, numpy\)"):
            check_in_sandbox(str(strategy), supervisor=narrowed)
    finally:
        narrowed.close()
