"""Streaming indicators with the names Pine Script users know (``ta.sma``, ``ta.crossover``, …).

An indicator is a :class:`Series`: ``s[0]`` is its value on the current bar, ``s[1]`` on the
previous one, as in Pine; a value that does not exist yet (the warm-up) is ``nan``, and every
comparison with ``nan`` is False, so ``crossover`` stays False until both sides have two values.
Each indicator updates in O(1) per bar and keeps only a short window, so memory does not grow
with the length of the history.

Call indicators on every bar, unconditionally, as Pine requires: ``ctx.ta.sma(20)`` returns
the same series object on every call with the same arguments. An indicator first requested
late is warmed up from the bars the context still holds.

The value-fed cores (``Sma(20).update(x)``, one class per Pine ``ta.*`` function, and the
:data:`INDICATORS` registry) live in :mod:`sandtrade.strategy.indicators` and are re-exported
here.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

from sandtrade.models import Bar
from sandtrade.strategy.indicators import (
    INDICATORS,
    Atr,
    Barssince,
    Bb,
    Cci,
    Change,
    Cross,
    Crossover,
    Crossunder,
    Dmi,
    Ema,
    Highest,
    Kc,
    Lowest,
    Macd,
    Mom,
    Pivothigh,
    Pivotlow,
    Rma,
    Rsi,
    Sma,
    Stdev,
    Stoch,
    Supertrend,
    Tr,
    Valuewhen,
    Vwap,
    Vwma,
    Wma,
    as_float,
    check_length,
)

__all__ = ["FIELDS", "INDICATORS", "SOURCES", "Atr", "Bands", "Barssince", "Bb", "Cci", "Change",
           "Cross", "Crossover", "Crossunder", "Dmi", "DmiLines", "Ema", "Highest", "Kc",
           "Lowest", "Macd", "MacdLines", "Mom", "Pivothigh", "Pivotlow", "Rma", "Rsi", "Series",
           "Sma", "Stdev", "Stoch", "Supertrend", "SupertrendLines", "Tr", "Valuewhen", "Vwap",
           "Vwma", "Wma", "cross", "crossover", "crossunder", "make_fed"]

NAN = math.nan
#: The bar fields an indicator (or ``ctx.history``) may read, and their index in a :class:`Bar`.
FIELDS = {"open": 2, "high": 3, "low": 4, "close": 5, "volume": 6}
#: Every source an indicator may read: the bar's fields and Pine's derived prices.
SOURCES: dict[str, Callable[[Bar], float]] = {
    "open": lambda b: b.open, "high": lambda b: b.high, "low": lambda b: b.low,
    "close": lambda b: b.close, "volume": lambda b: b.volume,
    "hl2": lambda b: (b.high + b.low) / 2, "hlc3": lambda b: (b.high + b.low + b.close) / 3,
    "ohlc4": lambda b: (b.open + b.high + b.low + b.close) / 4,
    "hlcc4": lambda b: (b.high + b.low + 2 * b.close) / 4,
}
#: How many past values each series keeps for ``s[k]`` look-backs.
KEEP = 64


class Series:
    """A read-only series of indicator values: ``s[0]`` now, ``s[k]`` k bars ago."""

    __slots__ = ("_cur", "_hist", "_prev", "first_valid_bar", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._hist: deque[float] = deque(maxlen=KEEP)
        self._cur = NAN
        self._prev = NAN
        #: Bar index at which the series first had a value (None while warming up).
        self.first_valid_bar: int | None = None

    def _push(self, value: float, bar_index: int) -> None:
        self._hist.append(value)
        self._prev = self._cur
        self._cur = value
        if self.first_valid_bar is None and value == value:
            self.first_valid_bar = bar_index

    def __getitem__(self, k: int) -> float:
        if type(k) is not int or k < 0:
            raise IndexError(f"{self.name}[{k!r}]: use a whole number of bars ago, 0 or more")
        h = self._hist
        return h[-1 - k] if k < len(h) else NAN

    @property
    def value(self) -> float:
        """The current value (``nan`` while warming up)."""
        return self._cur

    @property
    def ready(self) -> bool:
        """True once the series has a value."""
        v = self.value
        return v == v

    def __float__(self) -> float:
        return self.value

    def __lt__(self, other: object) -> bool:
        return self.value < _num(other)

    def __le__(self, other: object) -> bool:
        return self.value <= _num(other)

    def __gt__(self, other: object) -> bool:
        return self.value > _num(other)

    def __ge__(self, other: object) -> bool:
        return self.value >= _num(other)

    def __add__(self, other: object) -> float:
        return self.value + _num(other)

    __radd__ = __add__

    def __sub__(self, other: object) -> float:
        return self.value - _num(other)

    def __rsub__(self, other: object) -> float:
        return _num(other) - self.value

    def __mul__(self, other: object) -> float:
        return self.value * _num(other)

    __rmul__ = __mul__

    def __truediv__(self, other: object) -> float:
        return self.value / _num(other)

    def __rtruediv__(self, other: object) -> float:
        return _num(other) / self.value

    def __repr__(self) -> str:
        return f"{self.name}={self.value:.6g}"

    __hash__ = None  # type: ignore[assignment]


def _num(x: object) -> float:
    if isinstance(x, Series):
        return x.value
    if type(x) in (int, float):
        return x  # type: ignore[return-value]
    raise TypeError(f"expected a number or a series, got {type(x).__name__}")


def crossover(a: Series | float, b: Series | float) -> bool:
    """True on the bar where ``a`` goes from below ``b`` to above it.

    Both comparisons are strict (``a[1] < b[1]`` and ``a[0] > b[0]``), as in backtesting.py's
    ``crossover``; Pine's ``ta.crossover`` allows ``a[1] == b[1]``.
    """
    if type(a) is Series:
        a0, a1 = a._cur, a._prev
    else:
        a0 = a1 = _num(a)
    if type(b) is Series:
        b0, b1 = b._cur, b._prev
    else:
        b0 = b1 = _num(b)
    return a1 < b1 and a0 > b0


def crossunder(a: Series | float, b: Series | float) -> bool:
    """True on the bar where ``a`` goes from above ``b`` to below it (strict, as crossover).

    ``crossover(b, a)``, inlined (``b`` read first, as there): strategies call it every bar."""
    if type(b) is Series:
        b0, b1 = b._cur, b._prev
    else:
        b0 = b1 = _num(b)
    if type(a) is Series:
        a0, a1 = a._cur, a._prev
    else:
        a0 = a1 = _num(a)
    return b1 < a1 and b0 > a0


def cross(a: Series | float, b: Series | float) -> bool:
    """True on the bar where ``a`` crosses ``b`` either way (strict, as crossover)."""
    return crossover(a, b) or crossover(b, a)


# ---------------------------------------------------------------- indicator state machines
# Each indicator is a Series plus an ``update(bar, bar_index)`` closure registered with the
# context, which calls it once per bar of its symbol before the strategy's on_bar.

Updater = Callable[[Bar, int], None]


def make_sma(name: str, field: str, length: int) -> tuple[Series, Updater]:
    """Simple moving average of ``field`` over ``length`` bars: the :class:`Sma` core, which
    sums as pandas' ``rolling(length).mean()`` does (backtesting.py's ``SMA``), to the last
    bit (see there why it matters).

    :meth:`Sma.update` and ``Series._push`` are inlined here, their state in the closure: the
    same operations in the same order (tests/strategy check the two agree bit for bit), one
    Python call a bar instead of two and no attribute reads, because every strategy with an
    average runs this once per bar per average."""
    s = Series(name)
    idx = FIELDS[field]
    n = check_length("length", length)
    win: deque[float] = deque()
    hist = s._hist
    total = comp_add = comp_remove = 0.0
    nans = negatives = same = 0
    prev = NAN
    copysign = math.copysign

    def update(bar: Bar, i: int) -> None:
        nonlocal total, comp_add, comp_remove, nans, negatives, same, prev
        x = bar[idx]
        if type(x) is not float:
            x = as_float(x)
        if len(win) == n:
            old = win.popleft()
            if old != old:
                nans -= 1
            else:
                y = -old - comp_remove
                t = total + y
                comp_remove = t - total - y
                total = t
                if old < 0.0 or (old == 0.0 and copysign(1.0, old) < 0.0):
                    negatives -= 1
        win.append(x)
        if x != x:
            nans += 1
            same = 0
            prev = NAN
        else:
            y = x - comp_add
            t = total + y
            comp_add = t - total - y
            total = t
            if x < 0.0 or (x == 0.0 and copysign(1.0, x) < 0.0):
                negatives += 1
            same = same + 1 if x == prev else 1
            prev = x
        if len(win) < n or nans:
            v = NAN
        elif same >= n:
            v = x
        else:
            v = total / n
            if (negatives == 0 and v < 0.0) or (negatives == n and v > 0.0):
                v = 0.0
        if v == v and s.first_valid_bar is None:
            s.first_valid_bar = i
        hist.append(v)
        s._prev = s._cur
        s._cur = v

    return s, update


def make_ema(name: str, field: str, length: int) -> tuple[Series, Updater]:
    """Exponential moving average, alpha = 2/(length+1), seeded with the first SMA (as Pine)."""
    return _make_smoothed(name, field, length, 2.0 / (length + 1))


def make_rma(name: str, field: str, length: int) -> tuple[Series, Updater]:
    """Wilder's moving average (alpha = 1/length), seeded with the first SMA (Pine's ta.rma)."""
    return _make_smoothed(name, field, length, 1.0 / length)


def _make_smoothed(name: str, field: str, length: int, alpha: float) -> tuple[Series, Updater]:
    s = Series(name)
    idx = FIELDS[field]
    seed: list[float] = []
    state = [NAN]

    def update(bar: Bar, i: int) -> None:
        x: float = bar[idx]  # type: ignore[assignment]  # idx picks a price field
        prev = state[0]
        if prev != prev:
            seed.append(x)
            if len(seed) == length:
                state[0] = math.fsum(seed) / length
                seed.clear()
        else:
            state[0] = alpha * x + (1 - alpha) * prev
        s._push(state[0], i)

    return s, update


def make_rsi(name: str, field: str, length: int) -> tuple[Series, Updater]:
    """Relative strength index with Wilder smoothing (Pine's ta.rsi); 0..100."""
    s = Series(name)
    idx = FIELDS[field]
    last = [NAN]
    gains: list[float] = []
    losses: list[float] = []
    avg = [NAN, NAN]
    alpha = 1.0 / length

    def update(bar: Bar, i: int) -> None:
        x: float = bar[idx]  # type: ignore[assignment]  # idx picks a price field
        prev = last[0]
        last[0] = x
        if prev != prev:
            s._push(NAN, i)
            return
        up, down = max(x - prev, 0.0), max(prev - x, 0.0)
        if avg[0] != avg[0]:
            gains.append(up)
            losses.append(down)
            if len(gains) < length:
                s._push(NAN, i)
                return
            avg[0], avg[1] = math.fsum(gains) / length, math.fsum(losses) / length
            gains.clear()
            losses.clear()
        else:
            avg[0] = alpha * up + (1 - alpha) * avg[0]
            avg[1] = alpha * down + (1 - alpha) * avg[1]
        g, lo = avg
        s._push(100.0 if lo == 0 else 100.0 - 100.0 / (1 + g / lo), i)

    return s, update


def make_atr(name: str, length: int) -> tuple[Series, Updater]:
    """Average true range with Wilder smoothing (Pine's ta.atr)."""
    s = Series(name)
    prev_close = [NAN]
    seed: list[float] = []
    state = [NAN]
    alpha = 1.0 / length

    def update(bar: Bar, i: int) -> None:
        pc = prev_close[0]
        tr = bar.high - bar.low if pc != pc else max(bar.high - bar.low, abs(bar.high - pc),
                                                      abs(bar.low - pc))
        prev_close[0] = bar.close
        if state[0] != state[0]:
            seed.append(tr)
            if len(seed) == length:
                state[0] = math.fsum(seed) / length
                seed.clear()
        else:
            state[0] = alpha * tr + (1 - alpha) * state[0]
        s._push(state[0], i)

    return s, update


def make_stdev(name: str, field: str, length: int) -> tuple[Series, Updater]:
    """Population standard deviation over ``length`` bars (Pine's ta.stdev)."""
    s = Series(name)
    idx = FIELDS[field]
    win: deque[float] = deque(maxlen=length)

    def update(bar: Bar, i: int) -> None:
        win.append(bar[idx])  # type: ignore[arg-type]  # idx picks a price field
        if len(win) < length:
            s._push(NAN, i)
            return
        mean = math.fsum(win) / length
        s._push(math.sqrt(math.fsum((v - mean) ** 2 for v in win) / length), i)

    return s, update


def make_extreme(name: str, field: str, length: int, highest: bool) -> tuple[Series, Updater]:
    """Highest (or lowest) value of ``field`` over the last ``length`` bars, current included."""
    s = Series(name)
    idx = FIELDS[field]
    win: deque[float] = deque(maxlen=length)
    pick = max if highest else min

    def update(bar: Bar, i: int) -> None:
        win.append(bar[idx])  # type: ignore[arg-type]  # idx picks a price field
        s._push(pick(win) if len(win) == length else NAN, i)

    return s, update


class Bands(NamedTuple):
    """Bollinger bands: the middle SMA and the bands ``mult`` standard deviations around it."""

    middle: Series
    upper: Series
    lower: Series


def make_bollinger(name: str, field: str, length: int, mult: float
                   ) -> tuple[Bands, Updater]:
    """Bollinger bands (Pine's ta.bb): SMA ± mult · population stdev."""
    mid, upd_mid = make_sma(f"{name}.middle", field, length)
    dev, upd_dev = make_stdev(f"{name}.stdev", field, length)
    upper, lower = Series(f"{name}.upper"), Series(f"{name}.lower")

    def update(bar: Bar, i: int) -> None:
        upd_mid(bar, i)
        upd_dev(bar, i)
        m, d = mid.value, dev.value
        upper._push(m + mult * d, i)
        lower._push(m - mult * d, i)

    return Bands(mid, upper, lower), update


class MacdLines(NamedTuple):
    """MACD (Pine's ta.macd): the MACD line, its signal line and the histogram."""

    macd: Series
    signal: Series
    hist: Series


class DmiLines(NamedTuple):
    """Directional movement (Pine's ta.dmi): +DI, -DI and the ADX."""

    plus: Series
    minus: Series
    adx: Series


class SupertrendLines(NamedTuple):
    """SuperTrend (Pine's ta.supertrend): the line and the direction (-1 up, 1 down)."""

    value: Series
    direction: Series


class _Core(Protocol):
    def update(self, *args: Any) -> Any: ...


def make_fed(name: str, core: _Core, read: Callable[[Bar], tuple[float, ...]],
             parts: tuple[str, ...] = ()) -> tuple[Any, Updater]:
    """A value-fed core (:mod:`sandtrade.strategy.indicators`) fed from bars: ``read(bar)``
    gives ``core.update``'s arguments. One :class:`Series` for a core that returns one value,
    else one per name of ``parts`` (the core's tuple, in order)."""
    upd = core.update
    if not parts:
        s = Series(name)
        push = s._push

        def update_one(bar: Bar, i: int) -> None:
            push(upd(*read(bar)), i)

        return s, update_one
    series = tuple(Series(f"{name}.{p}") for p in parts)

    def update_many(bar: Bar, i: int) -> None:
        for s, v in zip(series, upd(*read(bar)), strict=True):
            s._push(v, i)

    return series, update_many
