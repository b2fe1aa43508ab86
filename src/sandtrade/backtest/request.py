"""What a back-test is asked to do, and the seam every runner implements.

A :class:`BacktestRequest` names the strategy file, the data files and the settings: plain
data that crosses a process boundary as JSON (the sandbox's worker reads it). A
:class:`BacktestRunner` runs one somewhere and returns its
:class:`~sandtrade.backtest.result.BacktestResult`: in this process
(:class:`~sandtrade.backtest.runner.InProcessRunner`) or in a sandboxed worker
(:class:`~sandtrade.sandbox.runner.SandboxRunner`). Callers (the CLI, the gRPC service) only
ever see the interface.

Pure types on purpose: the worker imports this module, so it imports nothing that reads files
or the market (:func:`~sandtrade.backtest.runner.parse_data_spec` resolves sample names).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from sandtrade.backtest.result import BacktestResult
from sandtrade.broker.risk import RiskRules
from sandtrade.broker.settings import BrokerSettings
from sandtrade.options.settings import OptionsSettings

__all__ = ["BacktestRequest", "BacktestRunner", "DataSpec"]


class DataSpec(BaseModel):
    """One CSV file of bars and the symbol its bars belong to (default: the file's stem)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    symbol: str | None = None


class BacktestRequest(BaseModel):
    """Everything a back-test needs, as plain data."""

    model_config = ConfigDict(extra="forbid")

    strategy: str
    data: Annotated[list[DataSpec], Field(min_length=1)]
    cash: Annotated[float, Field(gt=0)] = 10_000.0
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    params: dict[str, Any] = Field(default_factory=dict)
    close_at_end: bool = False
    #: The symbol of Buy & Hold and Beta; None: one symbol is its own, a portfolio's is the
    #: equal-weight buy and hold of all its symbols (see :mod:`sandtrade.backtest.meter`).
    benchmark: str | None = None
    #: The account's risk rules, enforced as the live broker does (None: no rules), so a
    #: strategy a rule stops live is stopped the same way here.
    risk: RiskRules | None = None
    #: How ``ctx.options`` chains look (the ``[options]`` settings: volatility, strikes,
    #: expiries, spread), synthesised from the underlying's bars; ``source = "recorded"``
    #: replays its ``files`` instead (in-process runs only: a sandboxed worker reads no
    #: files). None: the defaults.
    options: OptionsSettings | None = None


class BacktestRunner(Protocol):
    """Runs a back-test request somewhere and returns its result."""

    def run(self, request: BacktestRequest,
            progress: Callable[[int], None] | None = None) -> BacktestResult:
        """Run ``request``; ``progress`` gets the number of timestamps done so far."""
        ...
