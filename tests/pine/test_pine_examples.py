"""TradingView's example strategies, imported from Pine: each passes `sandtrade check` and
back-tests to the same trades, bar for bar, as a Python strategy written by hand from the same
description (tests/pine/twins/), on GOOG (backtesting.py's sample) and on 10,000 synthetic
bars; ``bench/pine_parity.py`` makes the same comparison on 30,000 (measured: all the same).

One file on purpose: the synthetic runs are the slow part, and xdist keeps a file on one
process, so they never run twice on one machine at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandtrade.backtest.runner import run_backtest
from sandtrade.cli import main
from sandtrade.market.csvdata import iter_csv
from sandtrade.market.synthetic import gbm_bars
from sandtrade.models import Bar, Trade
from sandtrade.pine import import_pine
from sandtrade.strategy.loader import load_strategy_source

backtesting = pytest.importorskip("backtesting", reason="backtesting.py (GOOG sample) is in "
                                  "the test extras")

ROOT = Path(__file__).resolve().parents[2]
PINE = ROOT / "strategies_examples" / "pine"
TWINS = Path(__file__).parent / "twins"
GOOG = Path(backtesting.__file__).parent / "test" / "GOOG.csv"
EXAMPLES = sorted(p.stem for p in PINE.glob("*.pine"))
#: 10,000 bars keep the suite short; bench/pine_parity.py compares 30,000 (all the same).
SYNTHETIC_BARS = 10_000


@pytest.fixture(scope="module")
def data() -> dict[str, list[Bar]]:
    return {"GOOG": list(iter_csv(GOOG)), "synthetic": gbm_bars(SYNTHETIC_BARS, seed=7)}


def trades(result_trades: list[Trade], open_trades: list[Trade]) -> list[tuple[object, ...]]:
    """What "the same trades, bar for bar" compares: bars, prices and sizes."""
    return [(t.entry_bar, t.entry_price, t.exit_bar, t.exit_price, t.size)
            for t in [*result_trades, *open_trades]]


def test_there_are_eight_examples_each_with_a_twin_and_a_source() -> None:
    assert len(EXAMPLES) >= 8
    for name in EXAMPLES:
        assert (TWINS / f"{name}.py").exists(), name
        head = (PINE / f"{name}.pine").read_text().split("//@version")[0]
        assert "tradingview.com" in head, f"{name}.pine does not say where it comes from"


@pytest.mark.parametrize("name", EXAMPLES)
def test_imported_example_trades_as_its_hand_written_twin(
        name: str, data: dict[str, list[Bar]]) -> None:
    imported = import_pine((PINE / f"{name}.pine").read_text(), f"{name}.pine")
    pine = load_strategy_source(imported.source, f"{name}.py", restricted=True)
    twin = load_strategy_source((TWINS / f"{name}.py").read_text(), f"twin_{name}.py",
                                restricted=True)
    for label, bars in data.items():
        got = run_backtest(pine, bars, cash=imported.settings["cash"])
        want = run_backtest(twin, bars, cash=imported.settings["cash"])
        mine, theirs = trades(got.trades, got.open_trades), trades(want.trades, want.open_trades)
        assert len(mine) > 10, f"{name} on {label}: too few trades to compare"
        assert mine == theirs, f"{name} on {label}: first difference at trade " + str(next(
            (i for i, (a, b) in enumerate(zip(mine, theirs, strict=False)) if a != b),
            min(len(mine), len(theirs))))
        assert not got.warnings, got.warnings[:3]


def test_every_example_passes_sandtrade_check(capsys: pytest.CaptureFixture[str]) -> None:
    for name in EXAMPLES:
        assert main(["check", str(PINE / f"{name}.pine")]) == 0, capsys.readouterr().err
        assert f"{name}.pine: ok (hooks: on_bar, on_fill, on_start" in capsys.readouterr().out


def test_backtest_of_a_pine_file_runs_it_in_the_sandbox_with_its_settings(
        capsys: pytest.CaptureFixture[str], data: dict[str, list[Bar]]) -> None:
    path = PINE / "supertrend_strategy.pine"
    assert main(["backtest", str(path), "--data", str(GOOG), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    imported = import_pine(path.read_text(), path.name)
    here = run_backtest(load_strategy_source(imported.source, "st.py", restricted=True),
                        data["GOOG"], cash=imported.settings["cash"])
    assert out["stats"]["# Trades"] == len(here.trades)
    assert [t["size"] for t in out["trades"]] == [t.size for t in here.trades]
    # strategy()'s initial_capital (TradingView's default, 1,000,000) is the run's cash
    assert imported.settings == {"cash": 1_000_000.0}
    assert out["stats"]["Equity Final [$]"] == pytest.approx(here.stats["Equity Final [$]"])


def test_an_error_while_a_pine_file_runs_names_its_pine_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.pine"
    path.write_text('//@version=5\nstrategy("bad")\nx = close\nif bar_index == 3\n'
                    "    y = str.tostring(x) + 1\n")
    assert main(["backtest", str(path), "--data", str(GOOG)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{path}:5: in on_bar at "), err
    assert "TypeError" in err


def test_pine_import_writes_a_strategy_file_that_passes_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "macd.py"
    assert main(["pine", "import", str(PINE / "macd_strategy.pine"), "-o", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"wrote {out} (MACD Strategy)" in said and "--cash 1000000" in said
    assert "# MACD = ta.ema(close, fastLength) - ta.ema(close, slowlength)" in out.read_text()
    assert main(["pine", "import", str(PINE / "macd_strategy.pine"), "-o", str(out)]) == 1
    assert "exists; give --force" in capsys.readouterr().err
    assert main(["check", str(out)]) == 0
