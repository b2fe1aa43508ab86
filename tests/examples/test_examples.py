"""Every example strategy runs on the shipped DEMO sample, trades, and passes ``sandtrade check``.

The examples are what a new user copies first: each one must load, trade on the sample that
``sandtrade demo`` uses, produce finite statistics, and pass the same check an upload does.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from strategies_examples import EXAMPLES, example_path

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.result import BacktestResult
from sandtrade.backtest.runner import InProcessRunner, run_backtest
from sandtrade.broker import BrokerSettings
from sandtrade.cli import main
from sandtrade.market import gbm_bars, load_csv, sample_csv_path
from sandtrade.strategy import load_strategy

LONG_ONLY = ("rsi_mean_reversion", "breakout")
#: backtesting.py's names for the figures a user reads first.
STATS = ("Equity Final [$]", "Return [%]", "Max. Drawdown [%]", "Sharpe Ratio", "Win Rate [%]",
         "# Trades", "Avg. Trade [%]", "Profit Factor")


@pytest.fixture(scope="module", params=EXAMPLES)
def demo_run(request: pytest.FixtureRequest) -> tuple[str, BacktestResult]:
    """The example back-tested on DEMO as ``sandtrade demo`` runs it (0.2 % commission)."""
    name = request.param
    run = BacktestRequest(strategy=str(example_path(name)),
                          data=[DataSpec(path=str(sample_csv_path()))],
                          broker=BrokerSettings(commission_pct=0.002))
    return name, InProcessRunner().run(run)


def test_every_listed_example_ships_as_a_file() -> None:
    shipped = {p.stem for p in Path(str(example_path(EXAMPLES[0]))).parent.glob("*.py")}
    assert set(EXAMPLES) <= shipped
    assert shipped - set(EXAMPLES) == {"__init__"}, "an example file is missing from EXAMPLES"


def test_the_example_trades_on_the_demo_sample(demo_run: tuple[str, BacktestResult]) -> None:
    name, result = demo_run
    assert result.symbols == ["DEMO"]
    assert result.bars == 2_500
    assert result.stats["# Trades"] >= 3, name
    assert result.warnings == [], result.warnings[:3]


def test_the_example_has_finite_stats_on_the_demo_sample(
        demo_run: tuple[str, BacktestResult]) -> None:
    name, result = demo_run
    # Times and durations are strings; every other stat is a finite number.
    numbers = {k: v for k, v in result.stats.items() if not isinstance(v, str)}
    bad = {k: v for k, v in numbers.items()
           if not isinstance(v, int | float) or not math.isfinite(v)}
    assert bad == {}, name
    assert set(STATS) <= set(numbers)
    assert result.stats["Equity Final [$]"] > 0


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_example_trades_on_synthetic_bars(name: str) -> None:
    bars = gbm_bars(1_500, seed=7, interval="1d")
    result = run_backtest(load_strategy(example_path(name)), bars)
    assert result.stats["# Trades"] >= 3
    assert result.warnings == []


@pytest.mark.parametrize("name", LONG_ONLY)
def test_a_long_only_example_never_goes_short(name: str) -> None:
    strategy = load_strategy(example_path(name))
    for bars in (load_csv(sample_csv_path()), gbm_bars(1_500, seed=1, interval="1d")):
        result = run_backtest(strategy, bars)
        assert all(t.size > 0 for t in [*result.trades, *result.open_trades])


def test_the_rsi_example_is_stopped_out_and_its_stop_never_outlives_the_trade() -> None:
    result = run_backtest(load_strategy(example_path("rsi_mean_reversion")),
                          gbm_bars(1_500, seed=1, interval="1d"))
    stopped = [line for line in result.logs if "stopped out" in line]
    assert stopped, "the stop path was not exercised"
    assert all(t.size > 0 for t in result.trades)  # a forgotten stop would have sold short


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_example_passes_sandtrade_check(name: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = str(example_path(name))
    assert main(["check", path]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: ok (hooks: ")


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_example_says_what_it_does_and_how_to_run_it(name: str) -> None:
    text = example_path(name).read_text(encoding="utf-8")
    assert text.startswith('"""'), "a module docstring first"
    assert f"sandtrade backtest strategies_examples/{name}.py --data" in text
    assert "PARAMS = {" in text


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_gives_the_same_result_in_the_sandbox(name: str) -> None:
    """The sandbox changes where the strategy runs, not what it does."""
    from sandtrade.sandbox.runner import SandboxRunner

    run = BacktestRequest(strategy=str(example_path(name)),
                          data=[DataSpec(path=str(sample_csv_path()))],
                          broker=BrokerSettings(commission_pct=0.002))
    here = InProcessRunner().run(run)
    sandboxed = SandboxRunner().run(run)
    assert sandboxed.stats == here.stats
    assert sandboxed.trades == here.trades
    assert sandboxed.logs == here.logs
