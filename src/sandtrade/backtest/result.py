"""What a back-test returns: plain, JSON-serialisable data.

The engine's :class:`Simulation` (and the closed trades, :data:`TRADES`) cross the sandbox
boundary: a back-test simulates inside a worker process and sends them back. The measured
:class:`BacktestResult` goes into the store and feeds the report. So all of it is plain data,
and this module imports nothing but the floor: the worker imports it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from sandtrade.models import Bar, Trade

__all__ = ["TRADES", "BacktestResult", "EquityPoint", "Simulation"]

#: Closed trades as JSON (the sandbox's worker sends them along with its equity values).
TRADES: TypeAdapter[list[Trade]] = TypeAdapter(list[Trade])


class Simulation(BaseModel):
    """What the engine produces besides its equity values (in the sandbox: the worker's
    answer, validated by the host like everything a worker sends)."""

    strategy: str
    symbols: list[str]
    params: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    #: Timestamps simulated, one equity value each (fewer than given after a bankruptcy).
    bars: int = Field(ge=0)
    #: Bars the strategy's indicators needed before they had a value (one symbol's Buy &
    #: Hold starts there).
    warmup_bars: int = Field(default=0, ge=0)
    #: The closed trades (in the sandbox: those not sent along with the equity values).
    trades: list[Trade] = Field(default_factory=list)
    #: Closed trades sent before this answer, with the equity values (the sandbox's worker).
    trades_sent: int = Field(default=0, ge=0)
    open_trades: list[Trade] = Field(default_factory=list)
    logs: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


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
