"""The runner seam: everything that runs a back-test goes through a :class:`BacktestRunner`.

A :class:`BacktestRequest` names the strategy file, the data files and the settings: plain
data that can cross a process boundary as JSON. :class:`InProcessRunner` loads and runs the
strategy in the calling process; the sandbox provides a runner with the same interface that
runs the same engine inside a resource-limited worker and sends the :class:`BacktestResult`
back. Callers (the CLI, later the gRPC service) only ever see the interface.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

from sandtrade.backtest.engine import run_backtest
from sandtrade.backtest.result import BacktestResult
from sandtrade.broker import BrokerSettings, FillProfile
from sandtrade.errors import DataError
from sandtrade.market import iter_csv
from sandtrade.market.samples import missing_file_hint, resolve_data_path
from sandtrade.models import Bar
from sandtrade.strategy.loader import load_strategy, resolve_params

__all__ = ["BacktestRequest", "BacktestRunner", "DataSpec", "InProcessRunner", "count_rows"]


class DataSpec(BaseModel):
    """One CSV file of bars and the symbol its bars belong to (default: the file's stem)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    symbol: str | None = None

    @classmethod
    def parse(cls, text: str) -> DataSpec:
        """``path.csv`` or ``SYMBOL=path.csv``; a bundled sample's name (``DEMO``) works where
        no file of that name exists (see :mod:`sandtrade.market.samples`)."""
        if "=" in text and not Path(text).exists():
            sym, _, path = text.partition("=")
            return cls(path=resolve_data_path(path), symbol=sym.strip() or None)
        resolved = resolve_data_path(text)
        if resolved != text:  # a sample: its symbol is its name, not the file's stem
            return cls(path=resolved, symbol=Path(resolved).stem)
        return cls(path=text)


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


class BacktestRunner(Protocol):
    """Runs a back-test request somewhere and returns its result."""

    def run(self, request: BacktestRequest,
            progress: Callable[[int], None] | None = None) -> BacktestResult:
        """Run ``request``; ``progress`` gets the number of timestamps done so far."""
        ...


def count_rows(path: str | Path) -> int:
    """Data rows in a CSV file (lines after the header), counted fast for progress bars."""
    n = 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                n += chunk.count(b"\n")
            if f.tell():
                f.seek(-1, 2)
                if f.read(1) != b"\n":
                    n += 1
    except OSError as e:
        hint = f"; {missing_file_hint()}" if isinstance(e, FileNotFoundError) else ""
        raise DataError(f"{path}: cannot read: {e.strerror}{hint}") from None
    return max(0, n - 1)


class InProcessRunner:
    """Loads the strategy and the data in this process and runs the engine.

    :param profiles: fill profiles beyond the built-ins (from plugins, see ``PluginHost``).
    """

    def __init__(self, profiles: Iterable[type[FillProfile]] = ()) -> None:
        self.profiles = tuple(profiles)

    def run(self, request: BacktestRequest,
            progress: Callable[[int], None] | None = None) -> BacktestResult:
        """Run ``request`` here. Raises ``StrategyError``/``DataError`` with file:line."""
        strategy = load_strategy(request.strategy)
        params = resolve_params(strategy.params, request.params, where=strategy.path)
        streams: dict[str, Iterator[Bar]] = {}
        for spec in request.data:
            stream = iter_csv(spec.path, symbol=spec.symbol)
            symbol = spec.symbol or Path(spec.path).stem.upper()
            if symbol in streams:
                raise DataError(f"{spec.path}: symbol {symbol} is given twice; name one of "
                                "the files SYMBOL=path.csv")
            streams[symbol] = stream
        return run_backtest(strategy, streams, cash=request.cash, settings=request.broker,
                            params=params, progress=progress,
                            close_at_end=request.close_at_end, profiles=self.profiles,
                            benchmark=request.benchmark)
