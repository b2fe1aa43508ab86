"""Back-test statistics with backtesting.py's names and definitions, computed while streaming.

:class:`EquityRecorder` takes one equity value per timestamp and keeps only running figures
(peak, drawdown periods, one equity value per calendar day, co-moments for beta) and a
decimated curve for charts, so memory grows with the number of days and trades, not bars.
:func:`compute_stats` then produces the same figures as backtesting.py 0.6.6's
``compute_stats`` (``_stats.py``): the same drawdown periods, daily geometric returns,
annualisation (252 or 365 days, weekly/monthly/yearly data), Sharpe, Sortino, Calmar, SQN,
Kelly and the rest. Where backtesting.py uses numpy, we do the same arithmetic in pure Python.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from operator import itemgetter
from typing import Any, Generic, TypeVar

from sandtrade.models import Trade

__all__ = ["STAT_KEYS", "Decimator", "EquityRecorder", "compute_stats", "format_timedelta"]

NAN = math.nan
T = TypeVar("T")

STAT_KEYS = (
    "Start", "End", "Duration", "Exposure Time [%]", "Equity Final [$]", "Equity Peak [$]",
    "Commissions [$]", "Return [%]", "Buy & Hold Return [%]", "Return (Ann.) [%]",
    "Volatility (Ann.) [%]", "CAGR [%]", "Sharpe Ratio", "Sortino Ratio", "Calmar Ratio",
    "Alpha [%]", "Beta", "Max. Drawdown [%]", "Avg. Drawdown [%]", "Max. Drawdown Duration",
    "Avg. Drawdown Duration", "# Trades", "Win Rate [%]", "Best Trade [%]", "Worst Trade [%]",
    "Avg. Trade [%]", "Max. Trade Duration", "Avg. Trade Duration", "Profit Factor",
    "Expectancy [%]", "SQN", "Kelly Criterion",
)


class Decimator(Generic[T]):
    """Keeps a long series down to between ``max_points`` and ``2 * max_points`` points.

    Raw points go in through :attr:`append` or :attr:`extend` (bound methods of a list: the
    hot loop pays no Python call); :meth:`compact`, called now and then, folds them into
    buckets of ``stride`` consecutive points and halves the series whenever it reaches
    ``2 * max_points``. ``merge(a, b)`` combines two consecutive points (for OHLC: first
    open, highest high, lowest low, last close).
    """

    def __init__(self, merge: Callable[[T, T], T], max_points: int = 2000,
                 fold: Callable[[list[T]], T] | None = None) -> None:
        self._merge = merge
        self._fold_fn = fold
        self._max = max_points
        self.points: list[T] = []
        self._tail: list[T] = []
        self.append = self._tail.append
        self.extend = self._tail.extend
        self.stride = 1

    def _fold(self, chunk: list[T]) -> T:
        if self._fold_fn is not None:
            return self._fold_fn(chunk)
        out = chunk[0]
        for p in chunk[1:]:
            out = self._merge(out, p)
        return out

    def compact(self) -> None:
        """Fold the raw points taken in so far into buckets; bounded memory from here on."""
        tail, st = self._tail, self.stride
        full = len(tail) - len(tail) % st
        if st == 1:
            self.points.extend(tail)
        else:
            self.points.extend(self._fold(tail[k:k + st]) for k in range(0, full, st))
        del tail[:full]
        while len(self.points) >= 2 * self._max:
            pts = self.points
            self.points = [self._fold(pts[k:k + 2]) for k in range(0, len(pts) - 1, 2)]
            if len(pts) % 2:
                self.points.append(pts[-1])
            self.stride *= 2

    def discard(self) -> None:
        """Drop the raw points taken in since the last :meth:`compact` (a series nobody will
        read: the buckets would cost more than the points)."""
        self._tail.clear()

    def result(self) -> list[T]:
        """The decimated series, including a trailing partial bucket."""
        self.compact()
        return self.points + ([self._fold(self._tail)] if self._tail else [])


_DRAWDOWN = itemgetter(2)
_DAY = timedelta(days=1)
#: Benchmark values kept from the start, for Buy & Hold from the end of a warm-up: an
#: indicator is at most 10,000 bars long and the slowest (RSI) has its first value at the
#: bar of that index, so the warm-up of indicators made in the first bars always falls here.
WARMUP_WINDOW = 10_001


def _fold_equity(chunk: list[tuple[datetime, float, float]]) -> tuple[datetime, float, float]:
    """``(time, equity, drawdown)`` points as one: the first time, the last equity, the deepest
    drawdown (the merge, over a whole bucket at once)."""
    return chunk[0][0], chunk[-1][1], max(map(_DRAWDOWN, chunk))


class EquityRecorder:
    """Running figures of an equity curve, one :meth:`record` per timestamp."""

    def __init__(self, max_points: int = 2000, *, curve: bool = True) -> None:
        #: False: no decimated curve (a sweep's runs want their statistics only).
        self.keep_curve = curve
        self.n = 0
        self.first_equity = NAN
        self.last_equity = NAN
        self.peak = -math.inf
        self.max_dd = 0.0
        self.start: datetime | None = None
        self.end: datetime | None = None
        self._recent_times: deque[datetime] = deque(maxlen=100)
        self._weekend_bars = 0
        # drawdown periods, as backtesting.py's compute_drawdown_duration_peaks
        self._last_zero = -1
        self._last_zero_time: datetime | None = None
        self._cur_period_max = 0.0
        self._last_dd = 0.0
        self.dd_periods: list[tuple[timedelta, float]] = []
        # one equity value per calendar day (the last)
        self.days: list[tuple[date, float]] = []
        self._day: date | None = None
        # [start, end) of self._day as datetimes: two comparisons per bar instead of a date()
        self._day_span = (datetime.max, datetime.min)
        self._day_equity = NAN
        self._day_bars = 0
        # beta: co-moments of equity and market log returns
        self._prev_eq = NAN
        self._prev_mkt = NAN
        self._beta_n = 0
        self._beta_valid = True
        self._mx = self._my = self._cxy = self._cyy = 0.0
        #: The benchmark's values at the first :data:`WARMUP_WINDOW` timestamps.
        self.first_closes: list[float] = []
        #: Its first value other than 0.0 ("not started"), whenever that comes.
        self.first_market = NAN
        self.last_close = NAN
        self.curve: Decimator[tuple[datetime, float, float]] = Decimator(
            lambda a, b: (a[0], b[1], max(a[2], b[2])), max_points, _fold_equity)
        #: Records not yet folded in (see :meth:`flush`).
        self.pending: list[tuple[datetime, float, float]] = []

    def record(self, time: datetime, equity: float, market: float) -> None:
        """Take the equity at the end of a timestamp and the benchmark's close there."""
        self.pending.append((time, equity, market))
        if len(self.pending) >= 4096:
            self.flush()

    def flush(self) -> None:
        """Fold the pending records into the running figures.

        The engine appends ``(time, equity, close)`` to :attr:`pending` once per bar (a list
        append, no Python call) and flushes every few thousand bars; the loop below keeps its
        state in locals, which is what makes it cheap per bar.
        """
        items = self.pending
        if not items:
            return
        i = self.n
        if not i:
            self.first_equity = items[0][1]
            self.start = items[0][0]
        peak, max_dd = self.peak, self.max_dd
        last_zero, last_zero_time = self._last_zero, self._last_zero_time
        cur_max, periods = self._cur_period_max, self.dd_periods
        day, day_bars, day_equity = self._day, self._day_bars, self._day_equity
        day_start, day_end = self._day_span
        prev_eq, prev_mkt, beta_valid = self._prev_eq, self._prev_mkt, self._beta_valid
        k, mx, my, cxy, cyy = self._beta_n, self._mx, self._my, self._cxy, self._cyy
        first_closes = self.first_closes
        window = WARMUP_WINDOW
        curve_append = self.curve.append
        log = math.log
        dd = self._last_dd
        for time, equity, market in items:
            if equity > peak:
                peak = equity
            dd = 1 - equity / peak if peak else NAN
            if dd == 0:
                if i > last_zero + 1 and last_zero_time is not None:
                    periods.append((time - last_zero_time, cur_max))
                last_zero = i
                last_zero_time = time
                cur_max = 0.0
            elif dd > cur_max:
                cur_max = dd
                if dd > max_dd:
                    max_dd = dd
            if not day_start <= time < day_end:
                d = time.date()
                if day is not None:
                    self.days.append((day, day_equity))
                    if day.weekday() >= 5:
                        self._weekend_bars += day_bars
                day = d
                day_bars = 1
                day_start = datetime(d.year, d.month, d.day)
                day_end = day_start + _DAY
            else:
                day_bars += 1
            day_equity = equity
            if i < window:
                first_closes.append(market)
            if i and beta_valid and prev_mkt:  # not before the benchmark's first close
                if equity > 0 and prev_eq > 0 and market > 0 and prev_mkt > 0:
                    try:
                        x = log(equity / prev_eq)
                        y = log(market / prev_mkt)
                    except ValueError:  # a ratio below the smallest float: no beta
                        beta_valid = False
                        x = y = 0.0
                    k += 1
                    dx = x - mx
                    dy = y - my
                    mx += dx / k
                    my += dy / k
                    cxy += dx * (y - my)
                    cyy += dy * (y - my)
                else:
                    beta_valid = False
            prev_eq = equity
            prev_mkt = market
            curve_append((time, equity, dd))
            i += 1
        if self.first_market != self.first_market:
            self.first_market = next((m for _, _, m in items if m), NAN)
        last_time, last_eq, last_mkt = items[-1]
        self.n = i
        self.end = last_time
        self.last_equity = last_eq
        self.last_close = last_mkt
        self._recent_times.extend(t for t, _, _ in items[-100:])
        self.peak, self.max_dd = peak, max_dd
        self._last_zero, self._last_zero_time = last_zero, last_zero_time
        self._cur_period_max, self._last_dd = cur_max, dd
        self._day, self._day_bars, self._day_equity = day, day_bars, day_equity
        self._day_span = (day_start, day_end)
        self._prev_eq, self._prev_mkt, self._beta_valid = prev_eq, prev_mkt, beta_valid
        self._beta_n, self._mx, self._my, self._cxy, self._cyy = k, mx, my, cxy, cyy
        items.clear()

    def closing_periods(self) -> list[tuple[timedelta, float]]:
        """Drawdown periods including the one still open at the last bar (as backtesting.py)."""
        periods = list(self.dd_periods)
        last = self.n - 1
        if self._last_dd != 0 and last > self._last_zero + 1 and self._last_zero_time:
            assert self.end is not None
            periods.append((self.end - self._last_zero_time, self._cur_period_max))
        return periods

    def day_equities(self) -> list[tuple[date, float]]:
        """Last equity of every calendar day with data."""
        return self.days + ([(self._day, self._day_equity)] if self._day is not None else [])

    def compact(self) -> None:
        """Fold pending records in and bound the memory of the decimated curve."""
        self.flush()
        if self.keep_curve:
            self.curve.compact()
        else:
            self.curve.discard()

    def data_period(self) -> timedelta:
        """Median spacing of the last 100 timestamps (backtesting.py's ``_data_period``)."""
        t = list(self._recent_times)
        diffs = [b - a for a, b in itertools.pairwise(t)]
        if not diffs:
            return timedelta(0)
        diffs.sort()
        mid = len(diffs) // 2
        if len(diffs) % 2:
            return diffs[mid]
        return (diffs[mid - 1] + diffs[mid]) / 2

    @property
    def beta(self) -> float:
        """Covariance of equity and market log returns over the market's variance."""
        if not self._beta_valid or self._beta_n < 2 or self._cyy == 0:
            return NAN
        return self._cxy / self._cyy

    @property
    def have_weekends(self) -> bool:
        """True when enough bars fall on weekends to count the year as 365 days."""
        weekend = self._weekend_bars
        if self._day is not None and self._day.weekday() >= 5:
            weekend += self._day_bars
        return self.n > 0 and weekend / self.n > 2 / 7 * 0.6


def format_timedelta(td: timedelta | float | None) -> str | None:
    """A duration as pandas prints it: ``'830 days 00:00:00'``; None when missing."""
    if td is None or not isinstance(td, timedelta):
        return None
    sign = "-" if td < timedelta(0) else ""
    td = abs(td)
    h, rem = divmod(td.seconds, 3600)
    m, s = divmod(rem, 60)
    frac = f".{td.microseconds:06d}" if td.microseconds else ""
    return f"{sign}{td.days} days {h:02d}:{m:02d}:{s:02d}{frac}"


_UNIT_US = {"D": 86_400_000_000, "h": 3_600_000_000, "min": 60_000_000, "s": 1_000_000,
            "ms": 1_000, "us": 1}


def _resolution(period: timedelta) -> str:
    us = period.seconds * 1_000_000 + period.microseconds
    if period.microseconds % 1000:
        return "us"
    if period.microseconds:
        return "ms"
    if us % 60_000_000:
        return "s"
    if us % 3_600_000_000:
        return "min"
    if us:
        return "h"
    return "D"


def _ceil(td: timedelta | None, unit: str) -> timedelta | None:
    if td is None:
        return None
    step = _UNIT_US[unit]
    total = (td.days * 86_400_000_000) + td.seconds * 1_000_000 + td.microseconds
    return timedelta(microseconds=-(-total // step) * step)


# Every stat is a real number or NaN (None in JSON), whatever the equity path: a bankrupt run
# ends at or below zero, and Python's float arithmetic raises (or turns complex) where
# numpy's, which backtesting.py uses, gives nan or inf. The helpers below give numpy's
# answer in those cases and Python's exact one everywhere else.


def _pow(base: float, exp: float) -> float:
    """``base ** exp`` as numpy computes it: nan for a negative base and a fractional
    exponent (Python gives a complex number), ±inf on overflow and for ``0 ** -x``."""
    try:
        out = base ** exp
    except OverflowError:
        if base > 0:
            return math.inf
        if exp != int(exp):  # a complex result
            return NAN
        return -math.inf if int(exp) % 2 else math.inf
    except ZeroDivisionError:
        return math.inf
    return NAN if isinstance(out, complex) else float(out)


def _fsum(xs: Iterable[float]) -> float:
    """``math.fsum``, or the plain sum (inf or nan) where fsum overflows or meets inf - inf."""
    xs = list(xs)
    try:
        return math.fsum(xs)
    except (OverflowError, ValueError):
        return sum(xs, 0.0)


def _geometric_mean(returns: Sequence[float]) -> float:
    if not returns:
        return NAN
    if any(1 + r <= 0 for r in returns):
        return 0.0
    try:
        return math.exp(_fsum(math.log(1 + r) for r in returns) / len(returns)) - 1
    except OverflowError:
        return math.inf


def _mean(xs: Sequence[float]) -> float:
    return _fsum(xs) / len(xs) if xs else NAN


def _var(xs: Sequence[float]) -> float:
    try:
        return statistics.variance(xs) if len(xs) > 1 else NAN
    except OverflowError:  # the exact result is beyond a float
        return math.inf


def _stdev(xs: Sequence[float]) -> float:
    try:
        return statistics.stdev(xs) if len(xs) > 1 else NAN
    except OverflowError:
        return math.inf


def _div(a: float, b: float) -> float:
    """a / b with numpy's conventions: x/0 is ±inf (nan for 0/0) instead of an exception."""
    if b == 0 or b != b:
        if b != b or a != a or a == 0:
            return NAN
        return math.copysign(math.inf, a) * (math.copysign(1, b) if b == 0 else 1)
    return a / b


def _group_days(days: list[tuple[date, float]], freq_days: int) -> list[float]:
    if freq_days == 7:
        def key(d: date) -> Any:
            return d + timedelta(days=6 - d.weekday())  # W-SUN: weeks end on Sunday
    elif freq_days == 31:
        def key(d: date) -> Any:
            return (d.year, d.month)
    elif freq_days == 365:
        def key(d: date) -> Any:
            return d.year
    else:
        return [e for _, e in days]
    out: dict[Any, float] = {}
    for d, e in days:
        out[key(d)] = e
    return list(out.values())


def compute_stats(rec: EquityRecorder, trades: Sequence[Trade], *, warmup_bars: int,
                  ) -> dict[str, Any]:
    """The stats dict, keys in backtesting.py's order; values are floats, ints, datetimes,
    timedeltas or NaN (see :func:`to_jsonable` for the JSON form)."""
    rec.flush()
    s: dict[str, Any] = {}
    n = rec.n
    s["Start"] = rec.start
    s["End"] = rec.end
    duration = (rec.end - rec.start) if rec.start and rec.end else timedelta(0)
    s["Duration"] = duration
    covered = 0
    cur_end = -1
    for a, b in sorted((t.entry_bar or 0, t.exit_bar or 0) for t in trades):
        if b <= cur_end:
            continue
        covered += b - max(a, cur_end + 1) + 1
        cur_end = b
    s["Exposure Time [%]"] = covered / n * 100 if n else NAN
    eq0, eq_final = rec.first_equity, rec.last_equity
    s["Equity Final [$]"] = eq_final
    s["Equity Peak [$]"] = rec.peak if n else NAN
    commissions = _fsum(t.commission for t in trades)
    if commissions:
        s["Commissions [$]"] = commissions
    s["Return [%]"] = _div(eq_final - eq0, eq0) * 100 if n else NAN
    # The benchmark's value from the close at the end of the warm-up (backtesting.py's
    # definition, for one symbol) to the last; with no warm-up (a portfolio, see
    # backtest/meter.py), from its first value (0.0 stands for "not started yet"), however
    # late that comes.
    if warmup_bars and rec.first_closes:
        closes = rec.first_closes[min(warmup_bars, len(rec.first_closes) - 1):]
        c0 = next((c for c in closes if c), NAN)
    else:
        c0 = rec.first_market
    bh = _div(rec.last_close - c0, c0) * 100
    s["Buy & Hold Return [%]"] = bh

    period = rec.data_period()
    freq_days = period.days
    annual_days = (52 if freq_days == 7 else 12 if freq_days == 31 else 1 if freq_days == 365
                   else (365 if rec.have_weekends else 252))
    grouped = _group_days(rec.day_equities(), freq_days)
    day_returns = [_div(b, a) - 1 for a, b in itertools.pairwise(grouped)]
    gmean = _geometric_mean(day_returns) if day_returns else NAN
    ann_return = _pow(1 + gmean, annual_days) - 1
    s["Return (Ann.) [%]"] = ann_return * 100
    var = _var(day_returns)
    try:
        vol = math.sqrt((var + (1 + gmean) ** 2) ** annual_days
                        - (1 + gmean) ** (2 * annual_days)) * 100
    except (ValueError, OverflowError):
        vol = NAN
    s["Volatility (Ann.) [%]"] = vol
    years = (duration.days + duration.seconds / 86400) / 365.25
    # A bankrupt run ends at or below zero: a negative ratio has no real root (nan, as
    # numpy's power gives backtesting.py), zero is -100 %.
    s["CAGR [%]"] = ((_pow(_div(eq_final, eq0), 1 / years) - 1) * 100 if years and eq0
                     else NAN)
    s["Sharpe Ratio"] = _div(s["Return (Ann.) [%]"], vol or NAN)
    downside = (math.sqrt(_mean([_pow(min(r, 0.0), 2) for r in day_returns]))
                * math.sqrt(annual_days)) if day_returns else NAN
    s["Sortino Ratio"] = _div(ann_return, downside)
    s["Calmar Ratio"] = _div(ann_return, rec.max_dd or NAN)
    beta = rec.beta
    s["Alpha [%]"] = s["Return [%]"] - beta * bh
    s["Beta"] = beta
    s["Max. Drawdown [%]"] = -rec.max_dd * 100
    periods = rec.closing_periods()
    res = _resolution(period)
    s["Avg. Drawdown [%]"] = -_mean([p for _, p in periods]) * 100 if periods else NAN
    s["Max. Drawdown Duration"] = _ceil(max(d for d, _ in periods), res) if periods else None
    s["Avg. Drawdown Duration"] = (_ceil(sum((d for d, _ in periods), timedelta(0))
                                         / len(periods), res) if periods else None)

    k = len(trades)
    s["# Trades"] = k
    pnl = [t.pnl for t in trades]
    rets = [t.return_pct for t in trades]
    win_rate = (sum(1 for p in pnl if p > 0) / k) if k else NAN
    s["Win Rate [%]"] = win_rate * 100
    s["Best Trade [%]"] = max(rets) * 100 if rets else NAN
    s["Worst Trade [%]"] = min(rets) * 100 if rets else NAN
    s["Avg. Trade [%]"] = _geometric_mean(rets) * 100 if rets else NAN
    durations = [t.exit_time - t.entry_time for t in trades if t.exit_time and t.entry_time]
    s["Max. Trade Duration"] = _ceil(max(durations), res) if durations else None
    s["Avg. Trade Duration"] = (_ceil(sum(durations, timedelta(0)) / len(durations), res)
                                if durations else None)
    gains = _fsum(r for r in rets if r > 0)
    losses = abs(_fsum(r for r in rets if r < 0))
    s["Profit Factor"] = _div(gains, losses or NAN) if rets else NAN
    s["Expectancy [%]"] = _mean(rets) * 100
    sd = _stdev(pnl)
    s["SQN"] = _div(math.sqrt(k) * _mean(pnl), sd or NAN) if k else NAN
    avg_win = _mean([p for p in pnl if p > 0])
    avg_loss = -_mean([p for p in pnl if p < 0])
    s["Kelly Criterion"] = win_rate - _div(1 - win_rate, _div(avg_win, avg_loss))
    return s


def to_jsonable(stats: dict[str, Any]) -> dict[str, Any]:
    """Stats as JSON values: times ISO 8601, durations pandas-style, NaN and ±inf as None."""
    out: dict[str, Any] = {}
    for key, v in stats.items():
        if isinstance(v, datetime):
            out[key] = v.isoformat()
        elif isinstance(v, timedelta):
            out[key] = format_timedelta(v)
        elif isinstance(v, float) and not math.isfinite(v):
            out[key] = None
        else:
            out[key] = v
    return out
