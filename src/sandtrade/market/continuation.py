"""What a live feed does when its source has no more bars: loop, continue synthetically, or stop.

A replay of CSV history ends; a host left running must not simply go quiet. ``market.then``
(``sandtrade serve --then``) chooses, and :func:`continued` applies it to a source's bars:

- ``loop``: the source's bars again, every time moved forward by one *period* (the span of
  the data plus one bar interval, rounded up to whole weeks when the data has no weekend
  bars, so weekdays and times of day stay what they were), so each symbol's times keep
  increasing and the clock the broker and strategies see never goes back. Prices are the
  file's own: at each seam the price goes back to the file's first bar, a gap.
- ``synthetic``: each symbol goes on with seeded geometric Brownian motion bars
  (:func:`~sandtrade.market.synthetic.iter_gbm_bars`) from its last close, at its usual bar
  interval (the most common time between its bars), with the per-bar volatility of its
  log returns, no drift, volumes in its range, and no weekend bars if it had none.
- ``stop``: nothing more. The host then refuses orders on the symbol with the reason.

Each change is a :class:`FeedNote` in the stream itself, right after the symbol's last bar
of a pass, so the host learns it exactly when it happens (and again, in the same place, when
a restarted host's feed skips the bars it worked before). Everything is deterministic: the
same data, ``then`` and seed give the same bars, which is what lets a restarted host resume
after bar N of the continued stream.

A source is continued per *part*: the built-in replay offers one part per file
(``parts()``), so a short file loops or ends on its own while the others go on; any other
source is one part of all its instruments.
"""

from __future__ import annotations

import heapq
import math
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, NamedTuple, Protocol

from sandtrade.market.synthetic import iter_gbm_bars
from sandtrade.models import Bar, Instrument

__all__ = ["THEN_CHOICES", "FeedNote", "SourcePart", "Then", "continued", "source_parts"]

Then = Literal["loop", "synthetic", "stop"]
THEN_CHOICES: tuple[Then, ...] = ("loop", "synthetic", "stop")

_WEEK = timedelta(weeks=1)
_DAY = timedelta(days=1)
#: Steps between bars counted to find a symbol's usual interval: irregular data would
#: otherwise keep one counter per distinct gap of the whole file.
_STEP_SAMPLE = 10_000


class SourcePart(NamedTuple):
    """Symbols whose bars come from one restartable stream (one file of a replay)."""

    symbols: tuple[str, ...]
    #: A new iterator over the part's bars from its first, in time order, on every call.
    bars: Callable[[], Iterable[Bar]]


class _Source(Protocol):
    name: str

    def instruments(self) -> list[Instrument]: ...

    def bars(self) -> Iterator[Bar]: ...


@dataclass(frozen=True, slots=True)
class FeedNote:
    """A change in what the feed publishes for one symbol, in its place in the stream."""

    symbol: str
    #: ``ended`` (no more bars), ``looped`` (the next pass begins) or ``synthetic``
    #: (generated bars follow).
    kind: Literal["ended", "looped", "synthetic"]
    #: Where the note falls in the time-ordered stream: the last bar of its part's pass.
    time: datetime
    #: The symbol's last bar before the change (None: the source never gave it one).
    last_bar: datetime | None
    #: Bars of the symbol in one pass of its source.
    bars: int
    #: Passes of the source completed (1 at the end of the first).
    passes: int
    #: ``looped``: how far the next pass's times are moved forward from the file's own.
    shift: timedelta = timedelta(0)


def source_parts(source: _Source) -> list[SourcePart]:
    """The source's parts: its own ``parts()`` when it has one, else one part of all."""
    parts = getattr(source, "parts", None)
    if callable(parts):
        return list(parts())
    return [SourcePart(tuple(i.symbol for i in source.instruments()), source.bars)]


def continued(source: _Source, then: Then, seed: int = 42) -> Iterator[Bar | FeedNote]:
    """The source's bars, then what ``then`` says, with a :class:`FeedNote` at each change;
    merged in time order across the source's parts. Endless unless ``then`` is ``stop``."""
    if then not in THEN_CHOICES:
        raise ValueError(f"market.then: {then!r} is not one of {', '.join(THEN_CHOICES)}")
    parts = source_parts(source)
    seeds: dict[str, int] = {}
    for part in parts:
        for symbol in part.symbols:
            seeds.setdefault(symbol, seed + len(seeds))
    streams = [_part(part, then, seeds) for part in parts]
    if len(streams) == 1:
        return streams[0]
    return heapq.merge(*streams, key=_time)


def _time(item: Bar | FeedNote) -> datetime:
    return item.time


class _Shape:
    """What a symbol's first pass looked like: enough to loop it or to continue it."""

    __slots__ = ("bars", "decimals", "first", "last", "m2", "max_volume", "mean", "min_volume",
                 "returns", "steps", "weekend")

    def __init__(self, bar: Bar) -> None:
        self.first = bar.time
        self.last = bar
        self.bars = 1
        self.steps: Counter[timedelta] = Counter()
        self.weekend = bar.time.weekday() >= 5
        self.returns = 0
        self.mean = 0.0
        self.m2 = 0.0
        self.min_volume = self.max_volume = bar.volume
        self.decimals = _decimals(bar.close)

    def see(self, bar: Bar) -> None:
        prev = self.last
        if self.bars <= _STEP_SAMPLE:
            self.steps[bar.time - prev.time] += 1
            if self.decimals is not None:
                d = _decimals(bar.close)
                self.decimals = None if d is None else max(d, self.decimals)
        if bar.time.weekday() >= 5:
            self.weekend = True
        r = math.log(bar.close / prev.close)
        self.returns += 1
        delta = r - self.mean  # Welford: one pass, no list of returns kept
        self.mean += delta / self.returns
        self.m2 += delta * (r - self.mean)
        if bar.volume < self.min_volume:
            self.min_volume = bar.volume
        elif bar.volume > self.max_volume:
            self.max_volume = bar.volume
        self.last = bar
        self.bars += 1

    @property
    def step(self) -> timedelta:
        """The most common time between bars (a day for weekday-only daily bars)."""
        positive = [(n, s) for s, n in self.steps.items() if s > timedelta(0)]
        return max(positive, key=lambda p: (p[0], -p[1]))[1] if positive else _DAY

    def synthetic(self, symbol: str, seed: int) -> Iterator[Bar]:
        """Seeded GBM bars from the last close, one step after the last bar."""
        step = self.step
        # Weekly (or longer) bars keep their weekday anyway; iter_gbm_bars refuses to skip
        # weekends with them.
        skip_weekends = not self.weekend and step % _WEEK != timedelta(0)
        sigma = math.sqrt(self.m2 / (self.returns - 1)) if self.returns > 1 else 0.0
        if not (math.isfinite(sigma) and sigma > 0):
            sigma = 0.3 * math.sqrt(step / timedelta(days=365))  # 30 % a year
        low = max(0, int(self.min_volume))
        high = max(low, int(self.max_volume)) + 1
        # periods_per_year=1 makes dt 1: sigma is the volatility of one bar, as measured.
        bars = iter_gbm_bars(sys.maxsize, symbol=symbol, seed=seed,
                             start=self.last.time + step, interval=step, s0=self.last.close,
                             mu=0.0, sigma=sigma, periods_per_year=1.0,
                             skip_weekends=skip_weekends, volume_range=(low, high))
        return bars if self.decimals is None else _rounded(bars, self.decimals)


def _decimals(price: float) -> int | None:
    """The fewest decimals that write ``price`` exactly (2 for 163.45); None beyond 8."""
    for d in range(9):
        if round(price, d) == price:
            return d
    return None


def _rounded(bars: Iterator[Bar], decimals: int) -> Iterator[Bar]:
    """Prices rounded to the data's own precision (cents stay cents). Rounding never
    reorders values, so every bar stays sane; one whose low would round to 0 is kept as is."""
    for bar in bars:
        low = round(bar.low, decimals)
        if low <= 0:
            yield bar
            continue
        yield bar._replace(open=round(bar.open, decimals), high=round(bar.high, decimals),
                           low=low, close=round(bar.close, decimals))


def _period(shapes: Iterable[_Shape]) -> timedelta:
    """How far each pass of a loop moves times: the data's span plus one bar interval, rounded
    up to whole weeks when no bar fell on a weekend (weekdays stay weekdays)."""
    shapes = list(shapes)
    first = min(s.first for s in shapes)
    last = max(s.last.time for s in shapes)
    period = last - first + min(s.step for s in shapes)
    if not any(s.weekend for s in shapes):
        period = -(-period // _WEEK) * _WEEK
    return period


def _part(part: SourcePart, then: Then, seeds: dict[str, int]) -> Iterator[Bar | FeedNote]:
    shapes: dict[str, _Shape] = {}
    for bar in part.bars():
        shape = shapes.get(bar.symbol)
        if shape is None:
            shapes[bar.symbol] = _Shape(bar)
        else:
            shape.see(bar)
        yield bar
    end = max((s.last.time for s in shapes.values()), default=datetime.min)
    # A symbol the source never gave a bar has no prices to loop or continue from.
    for symbol in part.symbols:
        if symbol not in shapes:
            yield FeedNote(symbol, "ended", end, None, 0, 1)
    if not shapes:
        return
    ordered = sorted(shapes.items())
    if then == "stop":
        for symbol, shape in ordered:
            yield FeedNote(symbol, "ended", end, shape.last.time, shape.bars, 1)
        return
    if then == "synthetic":
        for symbol, shape in ordered:
            yield FeedNote(symbol, "synthetic", end, shape.last.time, shape.bars, 1)
        streams = [shape.synthetic(symbol, seeds.get(symbol, 0)) for symbol, shape in ordered]
        yield from streams[0] if len(streams) == 1 else heapq.merge(*streams, key=_time)
        return
    period = _period(shapes.values())
    passes = 1
    while True:
        shift = period * passes
        for symbol, shape in ordered:
            yield FeedNote(symbol, "looped", end + shift - period, shape.last.time + shift
                           - period, shape.bars, passes, shift)
        count = 0
        for bar in part.bars():
            count += 1
            yield bar._replace(time=bar.time + shift)
        if not count:  # the data is gone (a file emptied under a running host): stop
            for symbol, shape in ordered:
                yield FeedNote(symbol, "ended", end + shift - period,
                               shape.last.time + shift - period, shape.bars, passes)
            return
        passes += 1
