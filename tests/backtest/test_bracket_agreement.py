"""Stop loss and take profit agree with backtesting.py's ``buy(sl=..., tp=...)``, bar for bar.

An SMA 10/20 crossover that, when flat, enters long on a cross up and short on a cross down
with a stop loss and a take profit a percent away from the signal bar's close (computed in
the strategy, as a backtesting.py user writes it). Both libraries run on the same data with
the tutorial's settings (cash 10,000, commission 0.002); the trades (entry and exit bars,
sizes, prices) and the final equity to the cent must be the same. The data must contain exits
on bars that touched both exits and on bars that gapped through one (checked, so a change of
data cannot quietly make the test easy).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

backtesting = pytest.importorskip("backtesting", reason="backtesting.py is in the test extras")
from backtesting import Backtest, Strategy  # noqa: E402
from backtesting.lib import crossover  # noqa: E402
from backtesting.test import SMA  # noqa: E402

from sandtrade.backtest.runner import run_backtest  # noqa: E402
from sandtrade.cli import main  # noqa: E402
from sandtrade.errors import StrategyError  # noqa: E402
from sandtrade.market import iter_gbm_bars  # noqa: E402
from sandtrade.market.synthetic import reference_gbm_frame  # noqa: E402
from sandtrade.strategy import load_strategy  # noqa: E402

from .test_backtesting_agreement import SAMPLES, assert_agree  # noqa: E402

OURS = '''
PARAMS = {"sl": 0.02, "tp": 0.03}


def on_bar(ctx, bar):
    fast = ctx.ta.sma(10)
    slow = ctx.ta.sma(20)
    if ctx.position().qty:
        return
    sl, tp = ctx.params["sl"], ctx.params["tp"]
    if ctx.ta.crossover(fast, slow):
        ctx.buy(sl=bar.close * (1 - sl), tp=bar.close * (1 + tp))
    elif ctx.ta.crossunder(fast, slow):
        ctx.sell(sl=bar.close * (1 + sl), tp=bar.close * (1 - tp))
'''


class SmaBracket(Strategy):
    """The same strategy in backtesting.py."""

    sl = 0.02
    tp = 0.03

    def init(self):
        close = self.data.Close
        self.sma1 = self.I(SMA, close, 10)
        self.sma2 = self.I(SMA, close, 20)

    def next(self):
        if self.position:
            return
        close = self.data.Close[-1]
        if crossover(self.sma1, self.sma2):
            self.buy(sl=close * (1 - self.sl), tp=close * (1 + self.tp))
        elif crossover(self.sma2, self.sma1):
            self.sell(sl=close * (1 + self.sl), tp=close * (1 - self.tp))


def run_both(df: pd.DataFrame, csv: Path, tmp_path: Path, sl: float, tp: float,
             capsys: pytest.CaptureFixture[str]) -> tuple[pd.Series, dict]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = Backtest(df, SmaBracket, cash=10_000, commission=0.002).run(sl=sl, tp=tp)
    strategy = tmp_path / "sma_bracket.py"
    strategy.write_text(OURS)
    code = main(["backtest", str(strategy), "--data", str(csv), "--commission", "0.002",
                 "--param", f"sl={sl}", "--param", f"tp={tp}", "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return ref, json.loads(out)


def exit_kinds(df: pd.DataFrame, trades: pd.DataFrame) -> dict[str, int]:
    """How many exits were on a bar that touched both exits, and how many gapped through."""
    both = gaps = 0
    for t in trades.itertuples():
        bar = df.iloc[t.ExitBar]
        sl, tp = t.SL, t.TP
        long = t.Size > 0
        if bar.Low <= min(sl, tp) and bar.High >= max(sl, tp):
            both += 1
        if (bar.Open <= sl or bar.Open >= tp) if long else (bar.Open >= sl or bar.Open <= tp):
            gaps += 1
    return {"both": both, "gap": gaps}


def test_goog_sl_tp_matches_backtesting_py(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    csv = SAMPLES / "GOOG.csv"
    df = pd.read_csv(csv, index_col=0, parse_dates=True)
    ref, got = run_both(df, csv, tmp_path, 0.01, 0.015, capsys)
    assert_agree(ref, got)
    kinds = exit_kinds(df, ref["_trades"])
    assert kinds["gap"] > 0 and kinds["both"] > 0, kinds
    assert len(got["trades"]) > 90


def gapped(df: pd.DataFrame, seed: int = 7) -> pd.DataFrame:
    """``df`` with every bar's open moved off the previous close (a gap of about 0.3 %), the
    high and low widened to hold it: the reference series opens where it closed, so nothing
    could gap through an exit."""
    rng = np.random.default_rng(seed)
    out = df.copy()
    opens = out["Open"].to_numpy() * np.exp(0.003 * rng.standard_normal(len(out)))
    out["Open"] = opens
    out["High"] = np.maximum(out["High"].to_numpy(), opens)
    out["Low"] = np.minimum(out["Low"].to_numpy(), opens)
    return out


def test_synthetic_30k_sl_tp_matches_backtesting_py(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    df = gapped(reference_gbm_frame(30_000))
    csv = tmp_path / "SYN.csv"
    df.to_csv(csv, index_label="Datetime", float_format="%.17g")
    ref, got = run_both(df, csv, tmp_path, 0.003, 0.004, capsys)
    assert_agree(ref, got)
    kinds = exit_kinds(df, ref["_trades"])
    assert kinds["gap"] > 0 and kinds["both"] > 0, kinds
    assert len(got["trades"]) > 500


# ------------------------------------------------------------------ ctx's exit arguments

PERCENT_EXITS = '''
def on_bar(ctx, bar):
    if not ctx.position().qty and not ctx.orders():
        ctx.buy(sl_percent=1, tp_percent=1.5)
'''


def test_percent_exits_are_priced_from_each_entrys_fill(tmp_path: Path) -> None:
    """``sl_percent``/``tp_percent``: every trade leaves at 1 % below or 1.5 % above its
    own entry price (or at the open when the bar gapped past it)."""
    path = tmp_path / "pct.py"
    path.write_text(PERCENT_EXITS)
    result = run_backtest(load_strategy(path), iter_gbm_bars(3_000))
    assert len(result.trades) > 20
    for t in result.trades:
        assert t.exit_price is not None
        move = t.exit_price / t.entry_price - 1
        assert move <= -0.01 + 1e-9 or move >= 0.015 - 1e-9, (t.entry_price, t.exit_price)


TRAILING = '''
def on_bar(ctx, bar):
    if not ctx.position().qty and not ctx.orders():
        ctx.buy(trail_percent=2)
'''


def test_trailing_exit_never_leaves_below_its_best_price_less_the_trail(
        tmp_path: Path) -> None:
    path = tmp_path / "trail.py"
    path.write_text(TRAILING)
    result = run_backtest(load_strategy(path), iter_gbm_bars(3_000))
    assert len(result.trades) > 10
    assert any(t.exit_price is not None and t.exit_price > t.entry_price
               for t in result.trades), "a trailing stop that never locked in a gain"


@pytest.mark.parametrize(("call", "words"), [
    ("ctx.buy(sl=90, sl_percent=2)", r"give sl \(a price\) or sl_percent"),
    ("ctx.buy(sl_percent=2, trail_percent=1)", "cannot be a bracket leg"),
    ("ctx.buy(tp='high')", "tp must be a number"),
])
def test_bad_exit_arguments_stop_the_strategy_naming_them(tmp_path: Path, call: str,
                                                           words: str) -> None:
    path = tmp_path / "bad.py"
    path.write_text(f"def on_bar(ctx, bar):\n    {call}\n")
    with pytest.raises(StrategyError, match=words):
        run_backtest(load_strategy(path), iter_gbm_bars(50))
