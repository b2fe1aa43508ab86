"""Back-tests in this process: :func:`run_backtest` and :class:`InProcessRunner`.

:func:`run_backtest` is the engine's :func:`~sandtrade.backtest.engine.simulate` with a
:class:`~sandtrade.backtest.meter.Meter` in the same process. :class:`InProcessRunner` is the
:class:`~sandtrade.backtest.request.BacktestRunner` that loads a request's strategy and CSV
files here and runs it so; the sandbox provides one with the same interface that simulates
in a resource-limited worker and measures on the host
(:class:`~sandtrade.sandbox.runner.SandboxRunner`). Also the host-side helpers of a request:
reading ``--data`` arguments (:func:`parse_data_spec`) and counting a file's rows.

Host side only: it reads files and the market's samples, which the worker never imports.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from sandtrade.backtest.engine import simulate
from sandtrade.backtest.meter import Meter
from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.result import BacktestResult
from sandtrade.broker import BrokerSettings, FillProfile
from sandtrade.broker.risk import RiskRules
from sandtrade.errors import DataError
from sandtrade.market import iter_csv
from sandtrade.market.samples import missing_file_hint, resolve_data_path
from sandtrade.models import Bar, Instrument, Trade
from sandtrade.options.settings import OptionsSettings
from sandtrade.options.sources import ChainSource, RecordedChains
from sandtrade.strategy.loader import LoadedStrategy, load_strategy, resolve_params

__all__ = ["InProcessRunner", "count_rows", "parse_data_spec", "run_backtest"]


def run_backtest(strategy: LoadedStrategy, data: Mapping[str, Iterable[Bar]] | Iterable[Bar],
                 *, cash: float = 10_000.0, settings: BrokerSettings | None = None,
                 params: Mapping[str, Any] | None = None,
                 instruments: Iterable[Instrument] = (),
                 progress: Callable[[int], None] | None = None,
                 close_at_end: bool = False, max_points: int = 2000,
                 profiles: Iterable[type[FillProfile]] = (),
                 log: Callable[[str], None] | None = None,
                 heartbeat: Callable[[], None] | None = None,
                 benchmark: str | None = None,
                 risk: RiskRules | None = None, options: OptionsSettings | None = None,
                 chains: ChainSource | None = None) -> BacktestResult:
    """Run ``strategy`` over ``data`` (one stream of bars, or one per symbol) and measure it.

    Symbols without a registered instrument trade as whole-share equities. ``close_at_end``
    closes what is still open at the last close so it counts in the trade stats
    (backtesting.py's ``finalize_trades``); otherwise open trades are reported apart and only
    marked to market. ``benchmark`` is the symbol of Buy & Hold and Beta; by default a
    portfolio's is the equal-weight buy and hold of all its symbols (see
    :mod:`sandtrade.backtest.meter`). ``profiles`` adds fill profiles contributed by plugins
    to the built-in ones. ``log`` receives the strategy's log lines (default: the first
    :data:`~sandtrade.backtest.engine.MAX_LOG_BYTES` of them are collected into
    ``result.logs``). ``heartbeat`` is called before the hooks of every bar, before on_start,
    each on_fill and on_stop (the sandbox's supervisor times each event by it). The curves
    are decimated to between ``max_points`` and twice as many points. ``risk``: the
    account's risk rules, enforced as the live broker does. ``options`` and ``chains``:
    where ``ctx.options`` chains come from (see :func:`~sandtrade.backtest.engine.simulate`).

    This is :func:`~sandtrade.backtest.engine.simulate` with a
    :class:`~sandtrade.backtest.meter.Meter` in the same process; the sandbox runs the two
    apart (the simulation in the worker, the meter on the host), with the same figures.
    """
    started = time.perf_counter()
    meter = Meter.for_symbols(list(data) if isinstance(data, Mapping) else None,
                              benchmark=benchmark, max_points=max_points)

    def measure(bars: list[Bar], equities: array[float], trades: list[Trade]) -> None:
        meter.add_bars(bars)
        meter.add_equity(equities)

    sim = simulate(strategy, data, cash=cash, settings=settings, params=params,
                   instruments=instruments, progress=progress, close_at_end=close_at_end,
                   profiles=profiles, log=log, heartbeat=heartbeat, measure=measure,
                   risk=risk, options=options, chains=chains)
    return meter.finish(sim, elapsed_s=time.perf_counter() - started)


def parse_data_spec(text: str) -> DataSpec:
    """``path.csv`` or ``SYMBOL=path.csv``; a bundled sample's name (``DEMO``) works where no
    file of that name exists (see :mod:`sandtrade.market.samples`)."""
    if "=" in text and not Path(text).exists():
        sym, _, path = text.partition("=")
        return DataSpec(path=resolve_data_path(path), symbol=sym.strip() or None)
    resolved = resolve_data_path(text)
    if resolved != text:  # a sample: its symbol is its name, not the file's stem
        return DataSpec(path=resolved, symbol=Path(resolved).stem)
    return DataSpec(path=text)


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
        params = resolve_params(strategy.params, request.params, where=strategy.path,
                                specs=strategy.specs, lines=strategy.lines)
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
                            benchmark=request.benchmark, risk=request.risk,
                            options=request.options, chains=chain_source(request.options))


def chain_source(options: OptionsSettings | None) -> ChainSource | None:
    """The recorded chains ``options`` names (``source = "recorded"``), read from their
    files; None for synthetic chains (the engine's default)."""
    if options is None or options.source == "synthetic":
        return None
    if options.source != "recorded":
        raise DataError(f"options.source: a back-test takes 'synthetic' or 'recorded' chains, "
                        f"not {options.source!r}")
    return RecordedChains(options)
