"""Fixtures for the strategy API tests: bars made by hand, strategy files written on the fly,
and real back-tests of those files."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandtrade.backtest.result import BacktestResult
from sandtrade.backtest.runner import run_backtest
from sandtrade.models import Bar
from sandtrade.strategy import load_strategy

START = datetime(2024, 1, 1)


def _make_bars(closes: Sequence[float], *, opens: Sequence[float] | None = None,
               symbol: str = "T", spread: float = 0.0) -> list[Bar]:
    """Daily bars from 2024-01-01 with the given closes; open = close unless ``opens`` says
    otherwise, high/low ``spread`` beyond the body."""
    opens = closes if opens is None else opens
    return [Bar(symbol, START + timedelta(days=k), o, max(o, c) + spread, min(o, c) - spread,
                c, 1_000.0)
            for k, (o, c) in enumerate(zip(opens, closes, strict=True))]


@pytest.fixture
def make_bars() -> Callable[..., list[Bar]]:
    """The bar factory: ``make_bars(closes, opens=None, symbol="T", spread=0.0)``."""
    return _make_bars


@dataclass
class Run:
    """A finished back-test of a strategy file, and what the file's module recorded."""

    path: Path
    result: BacktestResult
    module: dict[str, Any]

    @property
    def messages(self) -> list[str]:
        """``ctx.log`` lines without their time stamp."""
        return [line.split(" ", 1)[1] for line in self.result.logs]


@pytest.fixture
def write_strategy(tmp_path: Path) -> Callable[..., Path]:
    """Write a strategy file (dedented) to ``tmp_path/name`` and return its path."""

    def write(source: str, name: str = "strategy.py") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(source).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def backtest(write_strategy: Callable[..., Path]) -> Callable[..., Run]:
    """Back-test strategy source on ``bars`` (default: ten flat bars at 30) with the engine."""

    def run(source: str, bars: Sequence[Bar] | None = None, **kwargs: Any) -> Run:
        path = write_strategy(source)
        strategy = load_strategy(path)
        data = _make_bars([30.0] * 10) if bars is None else bars
        result = run_backtest(strategy, data, **kwargs)
        module = next(iter(strategy.hooks.values())).__globals__ if strategy.hooks else {}
        return Run(path, result, module)

    return run
