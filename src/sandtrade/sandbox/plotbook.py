"""What live strategies plot (``ctx.plot``), a recent window per strategy, in the host's memory.

A worker sends the points of each event in its ``done`` frame (``[name, time, value]``, and
each named series' ``[pane, color, symbol]``); :meth:`PlotBook.add` checks them again (the
worker is untrusted): names of at most 40 printable characters, finite numbers, at most 16
series a strategy, and a rate of :data:`POINTS_PER_SECOND` points a second per strategy after
a burst of :data:`BURST_SECONDS` (a token bucket, as the log's rate). What is over the rate or
the bounds is dropped and counted; the manager notes it in the strategy's log.

Why memory and not the store: a plot is a picture of the run's recent indicators for the
dashboard's chart, not a record anyone reconciles; writing up to 16 points a bar per strategy
to SQLite would load the group commit every order waits on, for data the strategy recomputes
from its bars. So each series keeps its last :data:`WINDOW` points (time-ordered, the last
value of a time wins), and a host restart starts the pictures afresh (the log says what the
store keeps). The whole book is bounded: strategies x 16 series x :data:`WINDOW` points.

Readers: :meth:`PlotBook.series` for a page's first draw, and :meth:`PlotBook.follow`, a
stream of each accepted batch (strategy id, account, name, points) for live updates.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandtrade.strategy.plots import MAX_SERIES, check_color, check_name, check_pane
from sandtrade.streams import EventStream

__all__ = ["BURST_SECONDS", "POINTS_PER_SECOND", "WINDOW", "PlotBatch", "PlotBook"]

#: Points kept per series.
WINDOW = 2000
#: Points a strategy may add a second on average (16 series at 25 bars a second)...
POINTS_PER_SECOND = 400.0
#: ...with bursts of this many seconds' worth (a warm-up, a lagging run catching up).
BURST_SECONDS = 10.0
#: Points one event may bring (more are not looked at: the newest are kept).
MAX_EVENT_POINTS = 4096
#: Bar times accepted: 1970 to 2200, in seconds.
_TIME_RANGE = (0.0, 7.3e9)


@dataclass(slots=True)
class _Series:
    pane: str = "price"
    color: str | None = None
    symbol: str = ""
    points: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=WINDOW))


@dataclass(slots=True)
class _Strategy:
    account: str
    name: str
    #: When its token bucket was last filled (the book's clock).
    stamp: float
    series: dict[str, _Series] = field(default_factory=dict)
    tokens: float = POINTS_PER_SECOND * BURST_SECONDS


@dataclass(frozen=True, slots=True)
class PlotBatch:
    """Points a strategy added to one series in one event, for live readers."""

    account: str
    strategy: str
    name: str
    pane: str
    color: str | None
    symbol: str
    points: tuple[tuple[float, float], ...]


def _style(raw: object) -> tuple[str, str | None, str]:
    """``[pane, color, symbol]`` from a worker, checked; the defaults where it is not good."""
    pane, color, symbol = "price", None, ""
    if isinstance(raw, list) and len(raw) == 3:
        with contextlib.suppress(ValueError):
            pane = check_pane(raw[0])
        with contextlib.suppress(ValueError):
            color = check_color(raw[1])
        if type(raw[2]) is str and len(raw[2]) <= 64 and raw[2].isprintable():
            symbol = raw[2]
    return pane, color, symbol


def _point(raw: object) -> tuple[str, float, float] | None:
    """``[name, time, value]`` from a worker, or None when any part is not good."""
    if not isinstance(raw, list) or len(raw) != 3:
        return None
    name, t, v = raw
    if type(t) not in (int, float) or type(v) not in (int, float):
        return None
    t, v = float(t), float(v)
    if not (math.isfinite(v) and _TIME_RANGE[0] <= t <= _TIME_RANGE[1]):
        return None
    try:
        return check_name(name), t, v
    except (TypeError, ValueError):
        return None


class PlotBook:
    """Live strategies' plotted series, a recent window each (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._strategies: dict[str, _Strategy] = {}
        self._followers: list[EventStream[PlotBatch]] = []

    def add(self, sid: str, account: str, name: str, points: object, styles: object) -> int:
        """Take a worker's ``plots`` (and ``plot_styles``) of strategy ``sid``; returns how
        many points it dropped (malformed, over the rate, or a 17th series)."""
        if not isinstance(points, list) or not points:
            return 0
        offered = len(points)
        if offered > MAX_EVENT_POINTS:
            points = points[-MAX_EVENT_POINTS:]
        style_of = styles if isinstance(styles, dict) else {}
        batches: dict[str, list[tuple[float, float]]] = {}
        with self._lock:
            book = self._strategies.get(sid)
            if book is None:
                book = self._strategies[sid] = _Strategy(account, name, self._clock())
            now = self._clock()
            book.tokens = min(POINTS_PER_SECOND * BURST_SECONDS,
                              book.tokens + max(0.0, now - book.stamp) * POINTS_PER_SECOND)
            book.stamp = now
            kept = 0
            for raw in points:
                if book.tokens < 1:
                    break
                got = _point(raw)
                if got is None:
                    continue
                key, t, v = got
                series = book.series.get(key)
                if series is None:
                    if len(book.series) >= MAX_SERIES:
                        continue
                    pane, color, symbol = _style(style_of.get(key))
                    series = book.series[key] = _Series(pane, color, symbol)
                pts = series.points
                if pts and t < pts[-1][0]:
                    continue  # the chart's times only go forward
                if pts and t == pts[-1][0]:
                    pts[-1] = (t, v)  # the last value of a bar wins
                else:
                    pts.append((t, v))
                book.tokens -= 1
                kept += 1
                batches.setdefault(key, []).append((t, v))
            dropped = offered - kept
            followers = list(self._followers)
            made = [PlotBatch(account, name, key, book.series[key].pane,
                              book.series[key].color, book.series[key].symbol, tuple(pts))
                    for key, pts in batches.items()]
        for stream in followers:
            for batch in made:
                stream.offer(batch)
        return dropped

    def series(self, sid: str) -> list[dict[str, Any]]:
        """A strategy's series, each ``{name, pane, color, symbol, points: [[t, v], ...]}``."""
        with self._lock:
            book = self._strategies.get(sid)
            if book is None:
                return []
            return [{"name": key, "pane": s.pane, "color": s.color, "symbol": s.symbol,
                     "points": [list(p) for p in s.points]} for key, s in book.series.items()]

    def forget(self, sid: str) -> None:
        """A strategy is deleted: its pictures go with it."""
        with self._lock:
            self._strategies.pop(sid, None)

    def follow(self, backlog: int = 10_000) -> EventStream[PlotBatch]:
        """Every batch accepted from now on (the stream drops what its reader leaves)."""
        def gone(stream: EventStream[PlotBatch]) -> None:
            with self._lock:
                if stream in self._followers:
                    self._followers.remove(stream)

        stream: EventStream[PlotBatch] = EventStream(backlog, gone)
        with self._lock:
            self._followers.append(stream)
        return stream
