"""The back-test engine: streaming, progress, portfolio, bankruptcy, close at end."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from sandtrade.backtest.engine import MAX_LOG_BYTES
from sandtrade.backtest.runner import run_backtest
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
    """A chosen benchmark whose history starts after another symbol's: Buy & Hold runs from
    its first close and beta from its first two (once, a close of 0.0 stood in for it and
    the stats divided by zero)."""
    s = strategy(tmp_path, BUY_AND_HOLD)
    early = gbm_bars(300, symbol="EARLY", seed=1)
    late = gbm_bars(200, symbol="LATE", seed=2, start=early[100].time)
    result = run_backtest(s, {"EARLY": early, "LATE": late}, benchmark="LATE")
    assert result.bars == 300
    bh = result.stats["Buy & Hold Return [%]"]
    assert bh == pytest.approx((late[-1].close - late[0].close) / late[0].close * 100)
    assert math.isfinite(result.stats["Beta"])


def test_a_portfolio_is_measured_against_all_its_symbols_in_equal_weights(
        tmp_path: Path) -> None:
    """By default half of the cash goes into each symbol at its own first close: Buy & Hold
    is the mean of the two symbols' own, in whatever order they are given."""
    s = strategy(tmp_path, BUY_AND_HOLD)
    early = gbm_bars(300, symbol="EARLY", seed=1)
    late = gbm_bars(200, symbol="LATE", seed=2, start=early[100].time)
    own = [(rows[-1].close / rows[0].close - 1) * 100 for rows in (early, late)]
    figures = {run_backtest(s, data).stats["Buy & Hold Return [%]"]
               for data in ({"EARLY": early, "LATE": late}, {"LATE": late, "EARLY": early})}
    assert len(figures) == 1
    assert figures.pop() == pytest.approx(sum(own) / 2)


def test_an_unknown_benchmark_is_refused_before_the_strategy_runs(tmp_path: Path) -> None:
    s = strategy(tmp_path, "def on_start(ctx):\n    raise ValueError('ran')\n")
    data = {"AAA": gbm_bars(5, symbol="AAA"), "BBB": gbm_bars(5, symbol="BBB")}
    with pytest.raises(DataError, match=r"benchmark 'MSFT' .*symbols: AAA, BBB"):
        run_backtest(s, data, benchmark="MSFT")


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


def test_the_strategy_log_kept_in_process_is_capped_like_the_sandboxs(tmp_path: Path) -> None:
    """10 kB a bar for 200 bars is 2 MB: only the first MAX_LOG_BYTES are kept (so what
    `sandtrade backtest --unsafe-in-process --log` prints is bounded too), and a warning
    counts the rest."""
    s = strategy(tmp_path, "def on_bar(ctx, bar):\n    ctx.log('x' * 10_000)\n")
    result = run_backtest(s, gbm_bars(200))
    assert sum(len(line) + 1 for line in result.logs) <= MAX_LOG_BYTES + 1
    assert len(result.logs) == MAX_LOG_BYTES // 10_021  # each line: a time stamp, a space
    dropped = 200 - len(result.logs)
    assert result.warnings == [f"the strategy log reached its {MAX_LOG_BYTES:,}-byte limit; "
                               f"{dropped} lines were dropped"]


def test_a_crypto_pair_trades_in_fractions_as_it_does_live(tmp_path: Path) -> None:
    """BTCUSD at 60,000 with 10,000 of cash: buy() buys a fraction of a coin, as the host's
    paper broker would; an equity at that price cannot be bought at all."""
    bars = {sym: gbm_bars(50, symbol=sym, s0=60_000.0, seed=5) for sym in ("BTCUSD", "BIGCO")}
    for sym, data in bars.items():
        result = run_backtest(strategy(tmp_path, BUY_AND_HOLD), data, close_at_end=True)
        sizes = [t.size for t in result.trades]
        if sym == "BTCUSD":
            assert len(sizes) == 1 and 0 < sizes[0] < 1, sizes
            assert sizes[0] * result.trades[0].entry_price == pytest.approx(10_000, rel=1e-3)
        else:
            assert sizes == [], "whole shares only"
