"""What a back-test measures: statistics and chart curves, from its bars and equity values.

The engine (:mod:`sandtrade.backtest.engine`) simulates: it produces one equity value per
timestamp and a :class:`~sandtrade.backtest.result.Simulation` (trades, logs, warnings, how
many bars it used). A :class:`Meter` pairs the equity values with the bars they belong to and
keeps the running statistics (:class:`~sandtrade.backtest.stats.EquityRecorder`) and the
decimated curves; :meth:`Meter.finish` then makes the
:class:`~sandtrade.backtest.result.BacktestResult`.

Keeping the two apart is what lets a sandboxed back-test measure on the host: the worker only
simulates and streams its equity values (8 bytes a timestamp), and the host, which read the
bars itself, measures them on its own core while the worker goes on with the strategy. The
statistics are then computed by trusted code, and an in-process run goes through the very
same :class:`Meter`, so both give identical figures.

The benchmark (``Buy & Hold Return [%]``, and the market of ``Beta`` and ``Alpha [%]``):

* One symbol: backtesting.py's definition. Buy & Hold runs from the close at the end of the
  strategy's warm-up (the bar where its last indicator got a value) to the last close; Beta
  is measured on the log returns of the closes of every bar.
* A portfolio, by default: an equal-weight buy and hold of every symbol. Each of the N
  symbols is given 1/N of the cash, which stays cash until that symbol's first close and is
  then invested in it at that close (fractional units, no costs), and held to the end. Its
  value at each timestamp is the sum over the symbols of ``(the symbol's last close so far /
  its first close) / N``, 1/N for a symbol that has not started; Buy & Hold is that value at
  the last timestamp minus one, i.e. the mean of the symbols' own ``last / first - 1``. Beta
  is measured on the log returns of that value, one per timestamp, and Alpha is
  ``Return - Beta * Buy & Hold`` as for one symbol. There is no warm-up: one warm-up for the
  whole portfolio would be the bar where the latest symbol's indicators got their values,
  which can lie after another symbol's last bar. The order of the symbols does not change
  Buy & Hold (it is summed exactly at the end); Beta's running sum can differ in its last bit.
* A portfolio with a chosen benchmark symbol: that symbol alone, from its first close
  however late it comes (Beta from its first two closes on), to its last close.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from operator import attrgetter, itemgetter

from sandtrade.backtest.result import BacktestResult, EquityPoint, Simulation
from sandtrade.backtest.stats import Decimator, EquityRecorder, compute_stats, to_jsonable
from sandtrade.errors import DataError
from sandtrade.models import Bar

__all__ = ["Meter", "MeterError"]


class MeterError(ValueError):
    """Equity values that do not fit the bars (more values than timestamps, not finite)."""


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
    :param benchmark: with ``grouped``, the benchmark symbol; None: the equal-weight buy and
        hold of ``symbols`` (see the module's docstring). One stream of bars is always its
        own benchmark; a ``benchmark`` other than its symbol is a ``DataError``.
    :param symbols: the symbols of the equal-weight benchmark.
    :param prices: False: no price curves (a sweep's runs only want their statistics; the
        curves cost about a third of the measuring).
    :param equity_curve: False: no equity curve either (the result's is empty); its buckets
        and points were 3-10 % of a sweep run's time.
    """

    def __init__(self, *, grouped: bool, benchmark: str | None = None,
                 symbols: Sequence[str] = (), max_points: int = 2000,
                 prices: bool = True, equity_curve: bool = True) -> None:
        self.grouped = grouped
        self.keep_prices = prices
        self.benchmark = benchmark
        self.max_points = max_points
        self.rec = EquityRecorder(max_points, curve=equity_curve)
        self.prices: dict[str, Decimator[Bar]] = {}
        self._bars: list[Bar] = []
        # Grouped: the benchmark's symbols, each with its first close (0.0: none yet) and
        # the value of its share, ``close / first close``: before its first close 1.0 (its
        # cash) in the equal-weight benchmark, 0.0 ("not started") for a chosen symbol.
        members = [benchmark] if benchmark is not None else list(dict.fromkeys(symbols))
        self._bench_first = dict.fromkeys(members, 0.0)
        self._bench_value = dict.fromkeys(members, 0.0 if benchmark is not None else 1.0)
        self._bench_total = math.fsum(self._bench_value.values())

    @classmethod
    def for_symbols(cls, symbols: Sequence[str] | None, *, benchmark: str | None = None,
                    max_points: int = 2000, prices: bool = True,
                    equity_curve: bool = True) -> Meter:
        """The meter for a run over one stream per symbol in ``symbols`` (None: one stream
        of bars), grouped as the engine groups them, with ``benchmark`` (None: the default
        of the module's docstring). ``DataError`` when ``benchmark`` is not in ``symbols``."""
        if benchmark is not None and symbols is not None and benchmark not in symbols:
            raise _unknown_benchmark(benchmark, symbols)
        return cls(grouped=symbols is not None and len(symbols) > 1, benchmark=benchmark,
                   symbols=symbols or (), max_points=max_points, prices=prices,
                   equity_curve=equity_curve)

    def describe_benchmark(self) -> str | None:
        """What the benchmark is, for the result's settings: a symbol, or ``"equal-weight"``
        for a portfolio's default (None before one stream's first bar)."""
        if self.benchmark is not None:
            return self.benchmark
        if self.grouped:
            return "equal-weight"
        return next(iter(self.prices), None)

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
            if not self.grouped and self.benchmark not in (None, symbol):
                raise _unknown_benchmark(self.benchmark, [symbol])
            curve = self.prices[symbol] = Decimator(merge_ohlc, self.max_points, fold_ohlc)
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
            if self.keep_prices:
                self._curve(use[0].symbol).extend(use)
            pending.extend(zip(map(_TIME, use), equities, map(_CLOSE, use), strict=True))
        else:
            k = 0
            end = len(bars)
            prices = self.prices
            firsts, values = self._bench_first, self._bench_value
            total = self._bench_total
            for equity in equities:
                if k >= end:
                    raise MeterError(f"more equity values than timestamps ({self.n + 1:,})")
                t = bars[k].time
                while k < end and bars[k].time == t:
                    bar = bars[k]
                    symbol = bar.symbol
                    if self.keep_prices:
                        curve = prices.get(symbol)
                        if curve is None:
                            curve = self._curve(symbol)
                        curve.append(bar)
                    first = firsts.get(symbol)
                    if first is not None:  # one of the benchmark's symbols
                        close = bar.close
                        if not first and close > 0:
                            first = firsts[symbol] = close
                        if first:
                            value = close / first
                            # A running sum: its rounding does not reach Buy & Hold, which
                            # finish() takes from the values themselves.
                            total += value - values[symbol]
                            values[symbol] = value
                    k += 1
                pending.append((t, equity, total))
            self._bench_total = total
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
        rec = self.rec
        rec.flush()
        if self.grouped:
            # Exactly rounded, so the order of the symbols cannot change the last bit.
            if rec.n:
                try:
                    rec.last_close = math.fsum(self._bench_value.values())
                except (OverflowError, ValueError):  # past the largest float: no figure
                    rec.last_close = math.nan
            stats = compute_stats(rec, sim.trades, warmup_bars=0)
        else:
            stats = compute_stats(rec, sim.trades, warmup_bars=sim.warmup_bars)
        stats["# Open Trades"] = len(sim.open_trades)
        stats["Open Trades P&L [$]"] = sum(t.pnl for t in sim.open_trades)
        return BacktestResult(
            strategy=sim.strategy,
            symbols=sim.symbols,
            params=sim.params,
            settings={**sim.settings, "benchmark": self.describe_benchmark()},
            bars=sim.bars,
            stats=to_jsonable(stats),
            trades=sim.trades,
            open_trades=sim.open_trades,
            equity_curve=[EquityPoint(time=p[0], equity=p[1], drawdown_pct=-p[2] * 100)
                          for p in self.rec.curve.result()] if self.rec.keep_curve else [],
            prices={s: d.result() for s, d in self.prices.items()},
            logs=sim.logs,
            warnings=sim.warnings,
            plots=sim.plots,
            elapsed_s=elapsed_s,
        )


def _unknown_benchmark(benchmark: str, symbols: Sequence[str]) -> DataError:
    return DataError(f"benchmark {benchmark!r} is not a symbol of this back-test (its symbols: "
                     f"{', '.join(symbols)}); name one of them, or none for an equal-weight "
                     "buy and hold of them all")
