"""What a back-test measures: statistics and chart curves, from its bars and equity values.

The engine (:mod:`sandtrade.backtest.engine`) simulates: it produces one equity value per
timestamp and a :class:`Simulation` (trades, logs, warnings, how many bars it used). A
:class:`Meter` pairs the equity values with the bars they belong to and keeps the running
statistics (:class:`~sandtrade.backtest.stats.EquityRecorder`) and the decimated curves;
:meth:`Meter.finish` then makes the :class:`~sandtrade.backtest.result.BacktestResult`.

Keeping the two apart is what lets a sandboxed back-test measure on the host: the worker only
simulates and streams its equity values (8 bytes a timestamp), and the host, which read the
bars itself, measures them on its own core while the worker goes on with the strategy. The
statistics are then computed by trusted code, and an in-process run goes through the very
same :class:`Meter`, so both give identical figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from operator import attrgetter, itemgetter
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter

from sandtrade.backtest.result import BacktestResult, EquityPoint
from sandtrade.backtest.stats import Decimator, EquityRecorder, compute_stats, to_jsonable
from sandtrade.models import Bar, Trade

__all__ = ["TRADES", "Meter", "MeterError", "Simulation"]

#: Closed trades as JSON (the sandbox's worker sends them along with its equity values).
TRADES: TypeAdapter[list[Trade]] = TypeAdapter(list[Trade])


class MeterError(ValueError):
    """Equity values that do not fit the bars (more values than timestamps, not finite)."""


class Simulation(BaseModel):
    """What the engine produces besides its equity values (in the sandbox: the worker's
    answer, validated by the host like everything a worker sends)."""

    strategy: str
    symbols: list[str]
    params: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    #: Timestamps simulated, one equity value each (fewer than given after a bankruptcy).
    bars: int = Field(ge=0)
    #: Bars the strategy's indicators needed before they had a value (Buy & Hold starts there).
    warmup_bars: int = Field(default=0, ge=0)
    #: The closed trades (in the sandbox: those not sent along with the equity values).
    trades: list[Trade] = Field(default_factory=list)
    #: Closed trades sent before this answer, with the equity values (the sandbox's worker).
    trades_sent: int = Field(default=0, ge=0)
    open_trades: list[Trade] = Field(default_factory=list)
    logs: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)


def merge_ohlc(a: Bar, b: Bar) -> Bar:
    """Two consecutive bars as one (first open, highest high, lowest low, last close)."""
    return Bar(a.symbol, a.time, a.open, max(a.high, b.high), min(a.low, b.low), b.close,
               a.volume + b.volume)


_TIME, _CLOSE = attrgetter("time"), attrgetter("close")
_HIGH, _LOW, _VOLUME = itemgetter(3), itemgetter(4), itemgetter(6)


def fold_ohlc(chunk: list[Bar]) -> Bar:
    """A bucket of consecutive bars as one; map over itemgetters, so the fold runs in C (a
    generator expression per field cost about 5 % of a back-test)."""
    first = chunk[0]
    return Bar(first.symbol, first.time, first.open, max(map(_HIGH, chunk)),
               min(map(_LOW, chunk)), chunk[-1].close, sum(map(_VOLUME, chunk)))


class Meter:
    """Pairs equity values with bars and measures them.

    :param grouped: one equity value per *timestamp* of several symbols' merged bars (a run of
        bars with equal times); otherwise one per bar, as the engine's one-symbol loop records.
    :param bench: the benchmark symbol (Buy & Hold, beta); the first symbol seen when None.
    """

    def __init__(self, *, grouped: bool, bench: str | None = None,
                 max_points: int = 2000) -> None:
        self.grouped = grouped
        self.bench = bench
        self.max_points = max_points
        self.rec = EquityRecorder(max_points)
        self.prices: dict[str, Decimator[Bar]] = {}
        self._bars: list[Bar] = []
        self._bench_close = 0.0

    @classmethod
    def for_symbols(cls, symbols: Sequence[str] | None, *, max_points: int = 2000) -> Meter:
        """The meter for a run over one stream per symbol in ``symbols`` (None: one stream
        of bars), grouped as the engine groups them; the first symbol is the benchmark."""
        return cls(grouped=symbols is not None and len(symbols) > 1,
                   bench=symbols[0] if symbols else None, max_points=max_points)

    @property
    def n(self) -> int:
        """Equity values taken so far."""
        return self.rec.n + len(self.rec.pending)

    def add_bars(self, bars: Iterable[Bar]) -> None:
        """Bars in the order the engine sees them; kept until their equity values arrive."""
        self._bars.extend(bars)

    def _curve(self, symbol: str) -> Decimator[Bar]:
        curve = self.prices.get(symbol)
        if curve is None:
            curve = self.prices[symbol] = Decimator(merge_ohlc, self.max_points, fold_ohlc)
            if self.bench is None:
                self.bench = symbol
        return curve

    def add_equity(self, equities: Sequence[float]) -> None:
        """The next equity values; each takes its timestamp's bars. ``MeterError`` when there
        are more values than timestamps taken in, or a value is not a finite number."""
        n = len(equities)
        if not n:
            return
        if not all(map(math.isfinite, equities)):
            raise MeterError("an equity value is not a finite number")
        bars = self._bars
        pending = self.rec.pending
        if not self.grouped:
            if n > len(bars):
                raise MeterError(f"{n:,} equity values for {len(bars):,} bars")
            use = bars[:n]
            del bars[:n]
            self._curve(use[0].symbol).extend(use)
            pending.extend(zip(map(_TIME, use), equities, map(_CLOSE, use), strict=True))
        else:
            k = 0
            end = len(bars)
            bench_close = self._bench_close
            for equity in equities:
                if k >= end:
                    raise MeterError(f"more equity values than timestamps ({self.n + 1:,})")
                t = bars[k].time
                while k < end and bars[k].time == t:
                    bar = bars[k]
                    self._curve(bar.symbol).append(bar)
                    if bar.symbol == self.bench:
                        bench_close = bar.close
                    k += 1
                pending.append((t, equity, bench_close))
            self._bench_close = bench_close
            del bars[:k]
        self.compact()

    def compact(self) -> None:
        """Fold what was taken in into the running figures; bounded memory from here on."""
        self.rec.compact()
        for curve in self.prices.values():
            curve.compact()

    def finish(self, sim: Simulation, *, elapsed_s: float = 0.0) -> BacktestResult:
        """The result: ``sim`` with the statistics and curves of the equity values taken.
        ``MeterError`` when ``sim`` claims a number of bars other than the values taken."""
        if sim.bars != self.n:
            raise MeterError(f"the simulation reports {sim.bars:,} bars but {self.n:,} equity "
                             "values arrived")
        stats = compute_stats(self.rec, sim.trades, warmup_bars=sim.warmup_bars)
        stats["# Open Trades"] = len(sim.open_trades)
        stats["Open Trades P&L [$]"] = sum(t.pnl for t in sim.open_trades)
        return BacktestResult(
            strategy=sim.strategy,
            symbols=sim.symbols,
            params=sim.params,
            settings=sim.settings,
            bars=sim.bars,
            stats=to_jsonable(stats),
            trades=sim.trades,
            open_trades=sim.open_trades,
            equity_curve=[EquityPoint(time=p[0], equity=p[1], drawdown_pct=-p[2] * 100)
                          for p in self.rec.curve.result()],
            prices={s: d.result() for s, d in self.prices.items()},
            logs=sim.logs,
            warnings=sim.warnings,
            elapsed_s=elapsed_s,
        )
