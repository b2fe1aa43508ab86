"""``sandtrade optimize`` agrees with backtesting.py's ``Backtest.optimize``: GOOG, SmaCross,
fast 5..30 and slow 10..100 (step 5), fast < slow, maximising ``Equity Final [$]`` and then
``Sharpe Ratio``: the same best parameters, the same statistics, the same value at every point.

The strategy and settings are those of the single-run parity test (commission 0.002, cash
10,000). The second objective reuses the first sweep's stored runs (a grid's id does not
depend on its objective), so the ~100 sandboxed runs happen once, on two workers.
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
from backtesting import Backtest  # noqa: E402
from strategies_examples import example_path  # noqa: E402

from sandtrade.cli import main  # noqa: E402

from .test_backtesting_agreement import SAMPLES, SmaCross  # noqa: E402


def optimize(tmp_path: Path, capsys: pytest.CaptureFixture[str], stat: str) -> dict:
    code = main(["optimize", str(example_path("sma_cross")), "--data", str(SAMPLES / "GOOG.csv"),
                 "--param", "fast=5:30:5", "--param", "slow=10:100:5", "--constraint",
                 "fast < slow", "--maximize", stat, "--commission", "0.002", "--workers", "2",
                 "--data-dir", str(tmp_path / "data"), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def same(mine: object, ref: object) -> bool:
    if isinstance(ref, pd.Timestamp):
        return mine == ref.isoformat()
    if isinstance(ref, pd.Timedelta):
        return mine == str(ref)
    if isinstance(ref, (int, float, np.number)) and not math.isnan(float(ref)):
        return mine == pytest.approx(float(ref), rel=1e-9, abs=1e-9)
    return mine is None


def test_optimize_matches_backtesting_py_on_goog(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    df = pd.read_csv(SAMPLES / "GOOG.csv", index_col=0, parse_dates=True)
    bt = Backtest(df, SmaCross, cash=10_000, commission=0.002)
    for stat in ("Equity Final [$]", "Sharpe Ratio"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref, heatmap = bt.optimize(n1=range(5, 31, 5), n2=range(10, 101, 5),
                                       constraint=lambda p: p.n1 < p.n2, maximize=stat,
                                       return_heatmap=True)
        got = optimize(tmp_path, capsys, stat)
        points = {(r["params"]["fast"], r["params"]["slow"]): r["stats"][stat]
                  for r in got["runs"]}
        assert sorted(points) == sorted(heatmap.index.tolist()), "the same grid"
        for (n1, n2), value in heatmap.items():
            assert same(points[(n1, n2)], value), (stat, n1, n2)
        best = got["best"]
        assert (best["params"]["fast"], best["params"]["slow"]) == (
            ref["_strategy"].n1, ref["_strategy"].n2), stat
        for key, value in ref.items():
            if not key.startswith("_"):
                assert same(best["stats"].get(key, "missing"), value), (stat, key)
