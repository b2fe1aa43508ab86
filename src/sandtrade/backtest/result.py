"""What a back-test returns: plain, JSON-serialisable data.

The result crosses the sandbox boundary (a back-test runs inside a worker process and sends this
back), goes into the store and feeds the report, so it holds only plain data.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from sandtrade.models import Bar, Trade

__all__ = ["BacktestResult", "EquityPoint"]


class EquityPoint(BaseModel):
    """The account's equity at the end of one bar (or one bucket of bars, when decimated)."""

    model_config = ConfigDict(frozen=True)

    time: datetime
    equity: float
    drawdown_pct: float


class BacktestResult(BaseModel):
    """Stats, trades and curves of one back-test run.

    ``stats`` uses backtesting.py's names where they mean the same thing ("Return [%]",
    "Sharpe Ratio", ...); durations are strings in pandas' format (``"830 days 00:00:00"``) and
    times are ISO 8601 strings, so the dict is JSON as it is. ``equity_curve`` and ``prices``
    are decimated to a few thousand points for charts (each price point then stands for a bucket
    of consecutive bars: first open, highest high, lowest low, last close). ``trades`` holds the
    closed trades; ``open_trades`` those still open at the end, marked to the last close.
    """

    strategy: str
    symbols: list[str]
    params: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    bars: int = 0
    stats: dict[str, Any] = Field(default_factory=dict)
    trades: list[Trade] = Field(default_factory=list)
    open_trades: list[Trade] = Field(default_factory=list)
    equity_curve: list[EquityPoint] = Field(default_factory=list)
    prices: dict[str, list[Bar]] = Field(default_factory=dict)
    logs: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    elapsed_s: float = 0.0

    def to_json_summary(self) -> dict[str, Any]:
        """What ``sandtrade backtest --json`` prints: stats, trades, the strategy's log and the
        rest, no curves."""
        return {
            "strategy": self.strategy,
            "symbols": self.symbols,
            "params": self.params,
            "settings": self.settings,
            "bars": self.bars,
            "stats": self.stats,
            "trades": [t.model_dump(mode="json") for t in self.trades],
            "open_trades": [t.model_dump(mode="json") for t in self.open_trades],
            "warnings": self.warnings,
            "logs": self.logs,
        }
