"""The back-test engine: streaming, progress, portfolio, bankruptcy, close at end."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sandtrade.backtest.engine import run_backtest
from sandtrade.broker import BrokerSettings
from sandtrade.errors import DataError, StrategyError
from sandtrade.market import gbm_bars, iter_gbm_bars
from sandtrade.strategy import load_strategy


def strategy(tmp_path: Path, body: str, name: str = "s.py"):  # type: ignore[no-untyped-def]
    path = tmp_path / name
    path.write_text(body)
    return load_strategy(path)


BUY_AND_HOLD = "def on_bar(ctx, bar):\n    if not ctx.position().qty:\n        ctx.buy()\n"


def test_progress_is_reported_and_ends_at_the_bar_count(tmp_path: Path) -> None:
    seen: list[int] = []
    result = run_backtest(strategy(tmp_path, BUY_AND_HOLD), iter_gbm_bars(10_000),
                          progress=seen.append)
    assert result.bars == 10_000
    assert seen[0] == 1 and seen[-1] == 10_000 and seen == sorted(seen)


def test_curves_are_decimated_for_long_histories(tmp_path: Path) -> None:
    result = run_backtest(strategy(tmp_path, BUY_AND_HOLD), iter_gbm_bars(50_000),
                          max_points=500)
    assert 500 <= len(result.equity_curve) < 1_200
    bars = result.prices["SYN"]
    assert bars[0].open == next(iter_gbm_bars(1)).open
    assert max(b.high for b in bars) == max(b.high for b in gbm_bars(50_000))


def test_portfolio_trades_two_symbols_from_one_cash_pool(tmp_path: Path) -> None:
    s = strategy(tmp_path, "def on_bar(ctx, bar):\n"
                           "    if not ctx.position().qty:\n        ctx.buy(0.5)\n")
    data = {"AAA": gbm_bars(300, symbol="AAA", seed=1), "BBB": gbm_bars(300, symbol="BBB", seed=2)}
    result = run_backtest(s, data, close_at_end=True)
    assert {t.symbol for t in result.trades} == {"AAA", "BBB"}
    first = sorted(result.trades, key=lambda t: t.entry_time)[:2]
    spent = sum(t.size * t.entry_price for t in first)
    assert spent <= 10_000  # one pool: the second buy gets half of what the first left


def test_a_benchmark_that_starts_later_than_the_others_measures_from_its_first_close(
        tmp_path: Path) -> None:
    """The first symbol is the benchmark; when its history starts after another symbol's,
    Buy & Hold runs from its first close and beta from its first two (before, a close of
    0.0 stood in for it and the stats divided by zero)."""
    s = strategy(tmp_path, BUY_AND_HOLD)
    early = gbm_bars(300, symbol="EARLY", seed=1)
    late = gbm_bars(200, symbol="LATE", seed=2, start=early[100].time)
    result = run_backtest(s, {"LATE": late, "EARLY": early})
    assert result.bars == 300
    bh = result.stats["Buy & Hold Return [%]"]
    assert bh == pytest.approx((late[-1].close - late[0].close) / late[0].close * 100)
    assert math.isfinite(result.stats["Beta"])


def test_close_at_end_counts_the_open_trade(tmp_path: Path) -> None:
    s = strategy(tmp_path, BUY_AND_HOLD)
    kept = run_backtest(s, gbm_bars(200))
    closed = run_backtest(s, gbm_bars(200), close_at_end=True)
    assert kept.stats["# Trades"] == 0 and kept.stats["# Open Trades"] == 1
    assert closed.stats["# Trades"] == 1 and closed.stats["# Open Trades"] == 0
    assert closed.stats["Equity Final [$]"] == pytest.approx(kept.stats["Equity Final [$]"])


def test_bankrupt_account_is_liquidated_and_the_run_stops(tmp_path: Path) -> None:
    # A short of everything at 5x margin into a rally loses more than the account.
    s = strategy(tmp_path, "def on_bar(ctx, bar):\n    if not ctx.position().qty:\n"
                           "        ctx.sell()\n")
    rally = gbm_bars(2_000, mu=40.0, sigma=0.2, seed=4)
    result = run_backtest(s, rally, settings=BrokerSettings(short_margin=0.2))
    assert result.bars < 2_000
    assert any("equity reached" in w for w in result.warnings)
    assert result.stats["# Open Trades"] == 0


def test_one_stream_with_two_symbols_is_refused(tmp_path: Path) -> None:
    mixed = gbm_bars(3, symbol="AAA") + gbm_bars(3, symbol="BBB")
    with pytest.raises(DataError, match="AAA and BBB"):
        run_backtest(strategy(tmp_path, BUY_AND_HOLD), mixed)


def test_no_bars_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match="no bars"):
        run_backtest(strategy(tmp_path, BUY_AND_HOLD), [])


def test_rejected_orders_are_reported_as_warnings(tmp_path: Path) -> None:
    s = strategy(tmp_path, "def on_bar(ctx, bar):\n    ctx.buy(1_000_000)\n")
    result = run_backtest(s, gbm_bars(3))
    assert result.warnings and "insufficient buying power" in result.warnings[0]
