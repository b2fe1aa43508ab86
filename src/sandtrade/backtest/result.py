"""What a back-test returns: plain, JSON-serialisable data.

The engine's :class:`Simulation` (and the closed trades, :data:`TRADES`) cross the sandbox
boundary: a back-test simulates inside a worker process and sends them back. The measured
:class:`BacktestResult` goes into the store and feeds the report. So all of it is plain data,
and this module imports nothing but the floor (and the plots' bounds): the worker imports it.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator, model_validator

from sandtrade.models import Bar, Trade
from sandtrade.strategy.plots import MAX_POINTS, MAX_SERIES, check_color, check_name, check_pane

__all__ = ["TRADES", "BacktestResult", "EquityPoint", "PlotSeries", "Simulation"]

#: Closed trades as JSON (the sandbox's worker sends them along with its equity values).
TRADES: TypeAdapter[list[Trade]] = TypeAdapter(list[Trade])


class PlotSeries(BaseModel):
    """One series a strategy plotted (``ctx.plot``): where it is drawn and its points, one a
    bar (decimated as the price curve is), checked again on arrival since the worker sent
    it."""

    name: str
    pane: str = "price"
    color: str | None = None
    #: The symbol of the bar the series was first plotted on (its chart in the report).
    symbol: str = ""
    times: list[datetime] = Field(default_factory=list, max_length=MAX_POINTS + 1)
    values: list[float] = Field(default_factory=list, max_length=MAX_POINTS + 1)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_name(v)

    @field_validator("pane")
    @classmethod
    def _pane(cls, v: str) -> str:
        return check_pane(v)

    @field_validator("color")
    @classmethod
    def _color(cls, v: str | None) -> str | None:
        return check_color(v)

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, v: str) -> str:
        if len(v) > 64 or not v.isprintable():
            raise ValueError("a plot's symbol must be up to 64 printable characters")
        return v

    @model_validator(mode="after")
    def _points(self) -> PlotSeries:
        if len(self.times) != len(self.values):
            raise ValueError(f"plot {self.name!r}: {len(self.times)} times for "
                             f"{len(self.values)} values")
        if not all(math.isfinite(v) for v in self.values):
            raise ValueError(f"plot {self.name!r}: values must be finite")
        return self


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
    #: What the strategy plotted (``ctx.plot``).
    plots: list[PlotSeries] = Field(default_factory=list, max_length=MAX_SERIES)

    @field_validator("plots")
    @classmethod
    def _distinct(cls, v: list[PlotSeries]) -> list[PlotSeries]:
        if len({p.name for p in v}) != len(v):
            raise ValueError("two plotted series of one name")
        return v


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
    #: What the strategy plotted (``ctx.plot``): drawn on its symbol's price chart or in a
    #: pane below it by the report.
    plots: list[PlotSeries] = Field(default_factory=list)
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
