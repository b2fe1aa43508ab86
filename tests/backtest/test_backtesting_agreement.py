"""The SMA 10/20 crossover agrees with backtesting.py trade for trade and to the cent.

backtesting.py runs in the test itself, on the same data, with the tutorial's settings (cash
10,000, commission 0.002, its defaults otherwise). Its sample data is read from site-packages.
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

backtesting = pytest.importorskip("backtesting", reason="backtesting.py is in the test extras")
from backtesting import Backtest, Strategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402
from backtesting.test import SMA  # noqa: E402
from strategies_examples import example_path  # noqa: E402

from sandtrade.cli import main  # noqa: E402
from sandtrade.market.synthetic import reference_gbm_frame  # noqa: E402

SAMPLES = Path(backtesting.__file__).parent / "test"


class SmaCross(Strategy):
    """backtesting.py's Quick Start strategy, verbatim."""

    n1 = 10
    n2 = 20

    def init(self):
        close = self.data.Close
        self.sma1 = self.I(SMA, close, self.n1)
        self.sma2 = self.I(SMA, close, self.n2)

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy()
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell()


def reference(df: pd.DataFrame, commission: float) -> pd.Series:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Backtest(df, SmaCross, cash=10_000, commission=commission).run()


def ours(csv: Path, commission: float, capsys: pytest.CaptureFixture[str]) -> dict:
    code = main(["backtest", str(example_path("sma_cross")), "--data", str(csv),
                 "--commission", str(commission), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def assert_agree(ref: pd.Series, got: dict) -> None:
    stats = got["stats"]
    ref_trades = ref["_trades"]
    assert stats["# Trades"] == len(ref_trades) == len(got["trades"])
    assert [t["entry_bar"] for t in got["trades"]] == ref_trades["EntryBar"].tolist()
    assert [t["exit_bar"] for t in got["trades"]] == ref_trades["ExitBar"].tolist()
    assert [t["size"] for t in got["trades"]] == ref_trades["Size"].astype(float).tolist()
    assert [t["entry_price"] for t in got["trades"]] == pytest.approx(
        ref_trades["EntryPrice"].tolist(), rel=1e-12)
    assert round(stats["Equity Final [$]"], 2) == round(float(ref["Equity Final [$]"]), 2)
    for key, value in ref.items():
        if key.startswith("_"):
            continue
        mine = stats.get(key, "missing")
        if isinstance(value, pd.Timestamp):
            assert mine == value.isoformat(), key
        elif isinstance(value, pd.Timedelta):
            assert mine == str(value), key
        elif isinstance(value, (int, float, np.number)) and not math.isnan(float(value)):
            assert mine == pytest.approx(float(value), rel=1e-9, abs=1e-9), key
        else:
            assert mine is None, key


def test_goog_sma_cross_matches_backtesting_py(capsys: pytest.CaptureFixture[str]) -> None:
    csv = SAMPLES / "GOOG.csv"
    ref = reference(pd.read_csv(csv, index_col=0, parse_dates=True), 0.002)
    got = ours(csv, 0.002, capsys)
    assert_agree(ref, got)
    # The research notes' golden figures, so a change in both libraries would still show.
    assert got["stats"]["# Trades"] == 93
    assert round(got["stats"]["Equity Final [$]"], 2) == 56263.52
    assert [t["size"] for t in got["open_trades"]] == [69.0]


def test_eurusd_hourly_sma_cross_matches_backtesting_py(
        capsys: pytest.CaptureFixture[str]) -> None:
    csv = SAMPLES / "EURUSD.csv"
    ref = reference(pd.read_csv(csv, index_col=0, parse_dates=True), 0.0)
    assert_agree(ref, ours(csv, 0.0, capsys))


@pytest.mark.parametrize("commission", [0.0, 0.002])
def test_gbm_hourly_sma_cross_matches_backtesting_py(
        commission: float, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    df = reference_gbm_frame(30_000)
    csv = tmp_path / "SYN.csv"
    df.to_csv(csv, index_label="Datetime", float_format="%.17g")
    ref = reference(df, commission)
    assert_agree(ref, ours(csv, commission, capsys))
