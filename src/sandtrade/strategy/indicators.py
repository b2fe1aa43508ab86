"""Value-fed indicator cores: one class per Pine Script ``ta.*`` function.

Each core is built with its settings and fed one bar at a time: ``Sma(20).update(x)`` takes
this bar's value and returns the indicator's value for this bar, ``nan`` where Pine gives
``na``. They know nothing of bars, symbols or contexts, so the same object serves the bar-fed
``ctx.ta`` methods, ``ctx.ta.stream(...)`` on values a strategy computes, and the strategies
the Pine importer writes. Every ``update`` is O(1) or O(length).

The definitions are Pine's (the functions its reference manual spells out in Pine), down to
the warm-up and ``na`` handling:

- ``sma``, ``wma``, ``stdev``, ``vwma``, ``cci``, ``highest``/``lowest``: ``na`` until ``length``
  values are in the window, and ``na`` while a ``na`` input is still in it.
- ``ema`` and ``rma``: ``na(prev) ? ta.sma(src, length) : alpha * src + (1 - alpha) * prev``:
  seeded with the SMA of the first ``length`` values; a ``na`` input makes the average ``na``
  and it seeds again from the SMA once the window holds ``length`` values again.
- ``stdev`` is biased (divides by ``length``), ``rsi`` is ``rma`` of gains over ``rma`` of
  losses, ``atr`` is ``rma(tr(true))``, ``dmi`` uses ``tr(false)`` and ``fixnan``.
- ``crossover(a, b)`` is ``a > b and a[1] <= b[1]`` (Pine's, not backtesting.py's strict
  one that ``ctx.ta.crossover`` keeps).
- ``pivothigh``/``pivotlow`` give the pivot's value on the bar that confirms it (``right``
  bars after it): a bar to the left equal to the candidate does not spoil it, one to the
  right does (the later equal bar is the pivot), as TradingView resolves ties; scanning a
  side stops at a ``na``.
- ``supertrend`` returns ``(value, direction)`` with Pine's sign: -1 is an up trend.

:data:`INDICATORS` maps each Pine name to its class.

It is one file because the cores are built from one another (a MACD of EMAs, an ATR of a true
range and an RMA, Bollinger bands reading their standard deviation's window, a SuperTrend of
an ATR, a DMI of RMAs) and share their internals, which a split would make public; and the
registry names them all in one place, as Pine's reference does.
"""

from __future__ import annotations

import inspect
import math
from collections import deque

__all__ = [
    "INDICATORS", "Atr", "Barssince", "Bb", "Cci", "Change", "Cross", "Crossover",
    "Crossunder", "Dmi", "Ema", "Highest", "Kc", "Lowest", "Macd", "Mom", "Pivothigh",
    "Pivotlow", "Rma", "Rsi", "Sma", "Stdev", "Stoch", "Supertrend", "Tr", "Valuewhen",
    "Vwap", "Vwma", "Wma", "as_float", "check_length", "settings_of",
]

NAN = math.nan
#: The longest window an indicator takes, in bars.
MAX_LENGTH = 10_000
#: Removals from a running sum before it is summed again exactly (bounds float drift).
_REFRESH = 4096


def check_length(name: str, value: object, *, minimum: int = 1) -> int:
    """``value`` as a window length: a whole number from ``minimum`` to 10000."""
    if type(value) is not int or not minimum <= value <= MAX_LENGTH:  # type: ignore[operator]
        raise ValueError(f"{name} must be a whole number from {minimum} to {MAX_LENGTH}, "
                         f"got {value!r}")
    return value  # type: ignore[return-value]


def _check_float(name: str, value: object) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):  # type: ignore[arg-type]
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def as_float(x: object) -> float:
    """An input value as a float: a number (or a series), ``nan`` for None (Pine's ``na``)."""
    if type(x) is float:
        return x  # type: ignore[return-value]
    if x is None:
        return NAN
    if not isinstance(x, str | bytes | bytearray):
        try:
            return float(x)  # type: ignore[arg-type]  # int, bool, a Series, a numpy float
        except (TypeError, ValueError):
            pass
    raise TypeError(f"an indicator takes numbers, got {type(x).__name__}")


_f = as_float


def _ratio(a: float, b: float) -> float:
    """``a / b``, nan where ``b`` is 0 (Pine's division by zero gives ``na``)."""
    return a / b if b else NAN


class Sma:
    """``ta.sma(source, length)``: the mean of the last ``length`` values.

    Summed as ``ctx.ta.sma`` sums (pandas' ``rolling(length).mean()``, to the last bit: a
    running sum with Kahan compensation for the values added and for those removed, a window
    of one repeated value giving that value exactly); ``ctx.ta.sma`` is this core too. A
    plain running sum differs in the last bit now and then, and where two averages are equal
    by pandas' sums (GOOG, SMA 5 and 25, 2013-10-04) that bit decided a crossover the other
    way, and a parameter sweep's figures with it."""

    __slots__ = ("_comp_add", "_comp_remove", "_mean", "_nans", "_negatives", "_prev",
                 "_same", "_sum", "_win", "length")

    def __init__(self, length: int) -> None:
        self.length = check_length("length", length)
        self._win: deque[float] = deque()
        self._sum = self._comp_add = self._comp_remove = 0.0
        self._nans = self._negatives = self._same = 0
        self._prev = NAN
        self._mean = NAN

    def update(self, x: float) -> float:
        """Take this bar's value; the average, or nan while fewer than ``length`` values (or a
        nan) are in the window."""
        if type(x) is not float:  # a bar's field is one already: no call on the hot path
            x = _f(x)
        win = self._win
        if len(win) == self.length:
            old = win.popleft()
            if old != old:
                self._nans -= 1
            else:
                y = -old - self._comp_remove
                t = self._sum + y
                self._comp_remove = t - self._sum - y
                self._sum = t
                if old < 0.0 or (old == 0.0 and math.copysign(1.0, old) < 0.0):
                    self._negatives -= 1
        win.append(x)
        if x != x:
            self._nans += 1
            self._same = 0
            self._prev = NAN
        else:
            y = x - self._comp_add
            t = self._sum + y
            self._comp_add = t - self._sum - y
            self._sum = t
            if x < 0.0 or (x == 0.0 and math.copysign(1.0, x) < 0.0):
                self._negatives += 1
            self._same = self._same + 1 if x == self._prev else 1
            self._prev = x
        n = self.length
        if len(win) < n or self._nans:
            mean = NAN
        elif self._same >= n:
            mean = x
        else:
            mean = self._sum / n
            if (self._negatives == 0 and mean < 0.0) or (self._negatives == n and mean > 0.0):
                mean = 0.0
        self._mean = mean
        return mean


class _Smoothed:
    """An exponential average seeded with the SMA of its first ``length`` values."""

    __slots__ = ("_alpha", "_prev", "_sma", "length")

    def __init__(self, length: int, alpha: float) -> None:
        self.length = check_length("length", length)
        self._alpha = alpha
        self._sma = Sma(length)
        self._prev = NAN

    def update(self, x: float) -> float:
        """Take this bar's value; the average (nan until seeded)."""
        x = _f(x)
        seed = self._sma.update(x)
        prev = self._prev
        if prev != prev:
            # Seeded with the exactly rounded mean of the first window, as ctx.ta's ema is.
            self._prev = seed if seed != seed else math.fsum(self._sma._win) / self.length
        else:
            self._prev = self._alpha * x + (1 - self._alpha) * prev
        return self._prev


class Ema(_Smoothed):
    """``ta.ema(source, length)``: alpha = 2 / (length + 1), seeded with the first SMA."""

    __slots__ = ()

    def __init__(self, length: int) -> None:
        super().__init__(length, 2.0 / (check_length("length", length) + 1))


class Rma(_Smoothed):
    """``ta.rma(source, length)``: Wilder's average, alpha = 1 / length, seeded with the first
    SMA."""

    __slots__ = ()

    def __init__(self, length: int) -> None:
        super().__init__(length, 1.0 / check_length("length", length))


class Wma(Sma):
    """``ta.wma(source, length)``: weights length, length-1, …, 1 from the newest value."""

    __slots__ = ()

    def update(self, x: float) -> float:
        """Take this bar's value; the weighted average, or nan during the warm-up."""
        mean = super().update(x)
        if mean != mean:  # the warm-up, or a nan in the window
            return NAN
        n = self.length
        return math.fsum(v * (k + 1) for k, v in enumerate(self._win)) / (n * (n + 1) / 2)


class Vwma:
    """``ta.vwma(source, length)``: ``sma(source * volume) / sma(volume)``."""

    __slots__ = ("_pv", "_v", "length")

    def __init__(self, length: int) -> None:
        self.length = check_length("length", length)
        self._pv = Sma(length)
        self._v = Sma(length)

    def update(self, x: float, volume: float) -> float:
        """Take this bar's value and volume; the volume-weighted average."""
        x, volume = _f(x), _f(volume)
        pv, v = self._pv.update(x * volume), self._v.update(volume)
        return pv / v if v else NAN


class Stdev:
    """``ta.stdev(source, length)``: the biased (population) standard deviation."""

    __slots__ = ("_sma", "length")

    def __init__(self, length: int) -> None:
        self.length = check_length("length", length)
        self._sma = Sma(length)

    def update(self, x: float) -> float:
        """Take this bar's value; the standard deviation of the window."""
        average = self._sma.update(x)
        if average != average:
            return NAN
        # The mean exactly rounded, as ctx.ta's stdev takes it.
        win = self._sma._win
        mean = math.fsum(win) / self.length
        return math.sqrt(math.fsum((v - mean) ** 2 for v in win) / self.length)


class Change:
    """``ta.change(source, length=1)``: ``source - source[length]``."""

    __slots__ = ("_win", "length")

    def __init__(self, length: int = 1) -> None:
        self.length = check_length("length", length)
        self._win: deque[float] = deque(maxlen=self.length + 1)

    def update(self, x: float) -> float:
        """Take this bar's value; its change over ``length`` bars."""
        x = _f(x)
        win = self._win
        win.append(x)
        return x - win[0] if len(win) > self.length else NAN


class Mom(Change):
    """``ta.mom(source, length)``: the same as ``ta.change``."""

    __slots__ = ()


class Rsi:
    """``ta.rsi(source, length)``: ``100 - 100 / (1 + rma(gain) / rma(loss))``, 100 when there
    were no losses; 0..100."""

    __slots__ = ("_down", "_last", "_up", "length")

    def __init__(self, length: int) -> None:
        self.length = check_length("length", length)
        self._up = Rma(length)
        self._down = Rma(length)
        self._last = NAN

    def update(self, x: float) -> float:
        """Take this bar's value; the RSI (nan for the first ``length`` bars)."""
        x = _f(x)
        d = x - self._last
        self._last = x
        if d != d:
            up = down = NAN
        else:
            up, down = max(d, 0.0), max(-d, 0.0)
        g, lo = self._up.update(up), self._down.update(down)
        if g != g or lo != lo:
            return NAN
        return 100.0 if lo == 0 else 100.0 - 100.0 / (1 + g / lo)


class Macd:
    """``ta.macd(source, fast, slow, signal)``: ``(macd, signal, hist)`` with
    ``macd = ema(fast) - ema(slow)``, ``signal = ema(macd, signal)``, ``hist = macd - signal``."""

    __slots__ = ("_fast", "_signal", "_slow")

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self._fast = Ema(check_length("fast", fast))
        self._slow = Ema(check_length("slow", slow))
        self._signal = Ema(check_length("signal", signal))

    def update(self, x: float) -> tuple[float, float, float]:
        """Take this bar's value; ``(macd, signal, histogram)``."""
        m = self._fast.update(x) - self._slow.update(x)
        s = self._signal.update(m)
        return m, s, m - s


class Highest:
    """``ta.highest(source, length)``: the highest of the last ``length`` values, the current
    one included (a monotonic queue: O(1) per bar on average)."""

    __slots__ = ("_i", "_nans", "_q", "_sign", "length")

    def __init__(self, length: int) -> None:
        self.length = check_length("length", length)
        self._q: deque[tuple[int, float]] = deque()  # (bar, sign * value), decreasing
        self._nans: deque[int] = deque()
        self._i = -1
        self._sign = 1.0

    def update(self, x: float) -> float:
        """Take this bar's value; the extreme of the window (nan until it is full, or while
        it holds a nan)."""
        x = _f(x)
        self._i = i = self._i + 1
        q, nans, n = self._q, self._nans, self.length
        if x != x:
            nans.append(i)
        else:
            v = self._sign * x
            while q and q[-1][1] <= v:
                q.pop()
            q.append((i, v))
        while q and q[0][0] <= i - n:
            q.popleft()
        while nans and nans[0] <= i - n:
            nans.popleft()
        if i < n - 1 or nans or not q:
            return NAN
        return self._sign * q[0][1]


class Lowest(Highest):
    """``ta.lowest(source, length)``: the lowest of the last ``length`` values."""

    __slots__ = ()

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self._sign = -1.0


class Tr:
    """``ta.tr(handle_na)``: ``max(high - low, |high - close[1]|, |low - close[1]|)``; on the
    first bar (no previous close) ``high - low`` with ``handle_na=True``, else nan."""

    __slots__ = ("_prev", "handle_na")

    def __init__(self, handle_na: bool = False) -> None:
        if type(handle_na) is not bool:
            raise TypeError(f"handle_na must be True or False, got {handle_na!r}")
        self.handle_na = handle_na
        self._prev = NAN

    def update(self, high: float, low: float, close: float) -> float:
        """Take this bar's high, low and close; its true range."""
        high, low, pc = _f(high), _f(low), self._prev
        self._prev = _f(close)
        if pc != pc:
            return high - low if self.handle_na else NAN
        return max(high - low, abs(high - pc), abs(low - pc))


class Atr:
    """``ta.atr(length)``: ``rma(tr(true), length)``; the first value on bar ``length - 1``."""

    __slots__ = ("_rma", "_tr", "length")

    def __init__(self, length: int) -> None:
        self.length = check_length("length", length)
        self._tr = Tr(True)
        self._rma = Rma(length)

    def update(self, high: float, low: float, close: float) -> float:
        """Take this bar's high, low and close; the average true range."""
        return self._rma.update(self._tr.update(high, low, close))


class Bb:
    """``ta.bb(source, length, mult)``: ``(middle, upper, lower)`` = SMA ± mult · stdev."""

    __slots__ = ("_stdev", "length", "mult")

    def __init__(self, length: int = 20, mult: float = 2.0) -> None:
        self.length = check_length("length", length)
        self.mult = _check_float("mult", mult)
        self._stdev = Stdev(length)

    def update(self, x: float) -> tuple[float, float, float]:
        """Take this bar's value; ``(middle, upper, lower)``."""
        d = self._stdev.update(x)
        if d != d:
            return NAN, NAN, NAN
        m = self._stdev._sma._mean  # the middle band is ta.sma's value, as ctx.ta.bb's is
        return m, m + self.mult * d, m - self.mult * d


class Stoch:
    """``ta.stoch(source, high, low, length)``: the raw %K,
    ``100 * (source - lowest(low)) / (highest(high) - lowest(low))`` (nan on a flat window)."""

    __slots__ = ("_hi", "_lo", "length")

    def __init__(self, length: int) -> None:
        self.length = check_length("length", length)
        self._hi = Highest(length)
        self._lo = Lowest(length)

    def update(self, source: float, high: float, low: float) -> float:
        """Take this bar's source, high and low; %K, 0..100."""
        hh, ll = self._hi.update(high), self._lo.update(low)
        span = hh - ll
        return 100.0 * (_f(source) - ll) / span if span else NAN


class Cci:
    """``ta.cci(source, length)``: ``(source - sma) / (0.015 * mean absolute deviation)``
    (nan when the deviation is 0)."""

    __slots__ = ("_sma", "length")

    def __init__(self, length: int) -> None:
        self.length = check_length("length", length)
        self._sma = Sma(length)

    def update(self, x: float) -> float:
        """Take this bar's value; the commodity channel index."""
        x = _f(x)
        mean = self._sma.update(x)
        if mean != mean:
            return NAN
        dev = math.fsum(abs(v - mean) for v in self._sma._win) / self.length
        return (x - mean) / (0.015 * dev) if dev else NAN


class Kc:
    """``ta.kc(source, length, mult, use_true_range)``: ``(middle, upper, lower)`` with
    ``middle = ema(source)`` and the bands ``mult`` times the EMA of the true range
    (``tr(true)``) or of ``high - low`` around it."""

    __slots__ = ("_basis", "_range", "_tr", "length", "mult", "use_true_range")

    def __init__(self, length: int = 20, mult: float = 1.5,
                 use_true_range: bool = True) -> None:
        self.length = check_length("length", length)
        self.mult = _check_float("mult", mult)
        if type(use_true_range) is not bool:
            raise TypeError(f"use_true_range must be True or False, got {use_true_range!r}")
        self.use_true_range = use_true_range
        self._basis = Ema(length)
        self._range = Ema(length)
        self._tr = Tr(True)

    def update(self, x: float, high: float, low: float, close: float
               ) -> tuple[float, float, float]:
        """Take this bar's source, high, low and close; ``(middle, upper, lower)``."""
        basis = self._basis.update(x)
        tr = self._tr.update(high, low, close)
        span = self._range.update(tr if self.use_true_range else _f(high) - _f(low))
        return basis, basis + span * self.mult, basis - span * self.mult


class Crossover:
    """``ta.crossover(a, b)``: True on the bar where ``a > b`` after ``a[1] <= b[1]``."""

    __slots__ = ("_a", "_b")

    def __init__(self) -> None:
        self._a = NAN
        self._b = NAN

    def update(self, a: float, b: float) -> bool:
        """Take this bar's two values; whether ``a`` crossed over ``b`` on it."""
        a, b = _f(a), _f(b)
        a1, b1 = self._a, self._b
        self._a, self._b = a, b
        return a > b and a1 <= b1


class Crossunder(Crossover):
    """``ta.crossunder(a, b)``: True on the bar where ``a < b`` after ``a[1] >= b[1]``."""

    __slots__ = ()

    def update(self, a: float, b: float) -> bool:
        """Take this bar's two values; whether ``a`` crossed under ``b`` on it."""
        return super().update(b, a)


class Cross(Crossover):
    """``ta.cross(a, b)``: True on the bar where ``a`` crossed ``b`` either way."""

    __slots__ = ()

    def update(self, a: float, b: float) -> bool:
        """Take this bar's two values; whether one crossed the other on it."""
        a, b = _f(a), _f(b)
        a1, b1 = self._a, self._b
        self._a, self._b = a, b
        return (a > b and a1 <= b1) or (a < b and a1 >= b1)


class Barssince:
    """``ta.barssince(condition)``: bars since the condition was last true (0 on a bar where it
    is), nan before it ever was."""

    __slots__ = ("_since",)

    def __init__(self) -> None:
        self._since = NAN

    def update(self, condition: bool) -> float:
        """Take this bar's condition; the bars since it was last true."""
        if condition:
            self._since = 0.0
        else:
            self._since += 1.0  # nan stays nan
        return self._since


class Valuewhen:
    """``ta.valuewhen(condition, source, occurrence)``: ``source`` on the bar where the
    condition was true for the ``occurrence``-th time counting back (0 = the latest)."""

    __slots__ = ("_values", "occurrence")

    def __init__(self, occurrence: int = 0) -> None:
        self.occurrence = check_length("occurrence", occurrence, minimum=0)
        self._values: deque[float] = deque(maxlen=self.occurrence + 1)

    def update(self, condition: bool, source: float) -> float:
        """Take this bar's condition and source; the remembered value (nan until there is
        one)."""
        x = _f(source)
        if condition:
            self._values.append(x)
        vals = self._values
        return vals[0] if len(vals) > self.occurrence else NAN


class Pivothigh:
    """``ta.pivothigh(source, left, right)``: the value of a pivot high, on the bar ``right``
    bars after it that confirms it; nan on every other bar."""

    __slots__ = ("_sign", "_win", "left", "right")

    def __init__(self, left: int, right: int) -> None:
        self.left = check_length("left", left, minimum=0)
        self.right = check_length("right", right, minimum=0)
        self._win: deque[float] = deque(maxlen=self.left + self.right + 1)
        self._sign = 1.0

    def update(self, x: float) -> float:
        """Take this bar's value; the pivot confirmed on this bar, or nan."""
        win = self._win
        win.append(self._sign * _f(x))
        if len(win) < win.maxlen:  # type: ignore[operator]
            return NAN
        left, c = self.left, win[self.left]
        if c != c:
            return NAN
        for k in range(left - 1, -1, -1):  # leftwards from the candidate: ties allowed
            v = win[k]
            if v != v:
                break
            if v > c:
                return NAN
        for k in range(left + 1, len(win)):  # rightwards: a tie makes the later bar the pivot
            v = win[k]
            if v != v:
                break
            if v >= c:
                return NAN
        return self._sign * c


class Pivotlow(Pivothigh):
    """``ta.pivotlow(source, left, right)``: the value of a pivot low, on the bar that
    confirms it."""

    __slots__ = ()

    def __init__(self, left: int, right: int) -> None:
        super().__init__(left, right)
        self._sign = -1.0


class Supertrend:
    """``ta.supertrend(factor, atr_period)``: ``(value, direction)``, the band under the price
    in an up trend (direction -1) and over it in a down trend (direction 1), from ``hl2 ±
    factor * atr``."""

    __slots__ = ("_atr", "_atr_prev", "_close", "_lower", "_st", "_upper", "atr_period",
                 "factor")

    def __init__(self, factor: float = 3.0, atr_period: int = 10) -> None:
        self.factor = _check_float("factor", factor)
        self.atr_period = check_length("atr_period", atr_period)
        self._atr = Atr(atr_period)
        self._atr_prev = NAN
        self._lower = NAN
        self._upper = NAN
        self._close = NAN
        self._st = NAN

    def update(self, high: float, low: float, close: float) -> tuple[float, float]:
        """Take this bar's high, low and close; ``(supertrend, direction)`` (nan, nan during
        the warm-up)."""
        high, low, close = _f(high), _f(low), _f(close)
        atr = self._atr.update(high, low, close)
        src = (high + low) / 2
        upper, lower = src + self.factor * atr, src - self.factor * atr
        prev_lower = 0.0 if self._lower != self._lower else self._lower  # nz()
        prev_upper = 0.0 if self._upper != self._upper else self._upper
        prev_close = self._close
        if not (lower > prev_lower or prev_close < prev_lower):
            lower = prev_lower
        if not (upper < prev_upper or prev_close > prev_upper):
            upper = prev_upper
        if self._atr_prev != self._atr_prev:
            direction = 1.0
        elif self._st == prev_upper:
            direction = -1.0 if close > upper else 1.0
        else:
            direction = 1.0 if close < lower else -1.0
        st = lower if direction == -1.0 else upper
        self._atr_prev, self._lower, self._upper = atr, lower, upper
        self._close, self._st = close, st
        if atr != atr:
            return NAN, NAN
        return st, direction


class Vwap:
    """``ta.vwap(source)``: the volume-weighted average price since the session began
    (``new_session`` True on a session's first bar); nan before any volume."""

    __slots__ = ("_pv", "_v")

    def __init__(self) -> None:
        self._pv = 0.0
        self._v = 0.0

    def update(self, source: float, volume: float, new_session: bool) -> float:
        """Take this bar's source and volume, and whether it opens a session; the VWAP."""
        x, v = _f(source), _f(volume)
        if new_session:
            self._pv = self._v = 0.0
        if x == x and v == v:
            self._pv += x * v
            self._v += v
        return self._pv / self._v if self._v else NAN


class Dmi:
    """``ta.dmi(di_length, adx_smoothing)``: ``(plus_di, minus_di, adx)``, Wilder's
    directional movement as Pine computes it (``rma`` of ``tr(false)`` and of the directional
    moves, ``fixnan`` on the DIs)."""

    __slots__ = ("_adx", "_high", "_low", "_minus", "_minus_di", "_plus", "_plus_di", "_tr",
                 "_trur", "adx_length", "di_length")

    def __init__(self, di_length: int = 14, adx_length: int = 14) -> None:
        self.di_length = check_length("di_length", di_length)
        self.adx_length = check_length("adx_length", adx_length)
        self._tr = Tr(False)
        self._trur = Rma(di_length)
        self._plus = Rma(di_length)
        self._minus = Rma(di_length)
        self._adx = Rma(adx_length)
        self._high = NAN
        self._low = NAN
        self._plus_di = NAN
        self._minus_di = NAN

    def update(self, high: float, low: float, close: float) -> tuple[float, float, float]:
        """Take this bar's high, low and close; ``(+DI, -DI, ADX)``."""
        high, low = _f(high), _f(low)
        up, down = high - self._high, self._low - low
        self._high, self._low = high, low
        plus_dm = NAN if up != up else (up if up > down and up > 0 else 0.0)
        minus_dm = NAN if down != down else (down if down > up and down > 0 else 0.0)
        trur = self._trur.update(self._tr.update(high, low, close))
        p = _ratio(100 * self._plus.update(plus_dm), trur)
        m = _ratio(100 * self._minus.update(minus_dm), trur)
        if p == p:  # fixnan: a nan keeps the last value
            self._plus_di = p
        if m == m:
            self._minus_di = m
        p, m = self._plus_di, self._minus_di
        total = p + m
        adx = 100 * self._adx.update(abs(p - m) / (1.0 if total == 0 else total))
        return p, m, adx


#: Pine's ``ta.*`` name of each core.
INDICATORS: dict[str, type] = {
    "sma": Sma, "ema": Ema, "rma": Rma, "wma": Wma, "vwma": Vwma, "rsi": Rsi, "macd": Macd,
    "stoch": Stoch, "tr": Tr, "atr": Atr, "bb": Bb, "stdev": Stdev, "highest": Highest,
    "lowest": Lowest, "change": Change, "mom": Mom, "crossover": Crossover,
    "crossunder": Crossunder, "cross": Cross, "barssince": Barssince, "valuewhen": Valuewhen,
    "pivothigh": Pivothigh, "pivotlow": Pivotlow, "supertrend": Supertrend, "vwap": Vwap,
    "cci": Cci, "kc": Kc, "dmi": Dmi,
}


def settings_of(cls: type) -> str:
    """What a core's constructor takes, as a person writes it: ``(fast=12, slow=26, signal=9)``."""
    params = inspect.signature(cls).parameters.values()
    return "(" + ", ".join(p.name if p.default is p.empty else f"{p.name}={p.default!r}"
                           for p in params) + ")"
