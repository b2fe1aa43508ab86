"""The market hub: where a live host's bars arrive, are kept, and are handed on.

A feed (:class:`MarketFeed`) pulls bars from a source plugin and publishes them to the hub at a
chosen pace. The hub keeps a bounded history per symbol (what ``GetBars`` serves: only bars
already published, so a replay never shows the future), the latest quote, and hands every bar
to its listeners (the broker first, then strategies and streams) in publication order.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Protocol

from sandtrade.models import Bar, Instrument, Quote
from sandtrade.streams import EventStream

__all__ = ["BarSubscription", "MarketFeed", "MarketHub", "MarketSource"]

log = logging.getLogger(__name__)

#: Live bars a stream subscriber may fall behind by before it is cut off.
STREAM_BACKLOG = 10_000


class MarketSource(Protocol):
    """What a market-data source plugin provides."""

    name: str

    def instruments(self) -> list[Instrument]:
        """The tradable instruments whose bars :meth:`bars` yields."""
        ...

    def bars(self) -> Iterator[Bar]:
        """Bars of every instrument, merged in time order (it may never end)."""
        ...


def _time(bar: Bar) -> datetime:
    return bar.time


class BarSubscription(EventStream[Bar]):
    """Live bars of some symbols (every symbol when empty), in publication order."""

    def __init__(self, hub: MarketHub, symbols: frozenset[str]) -> None:
        super().__init__(STREAM_BACKLOG, hub._unsubscribe)
        self.symbols = symbols

    def offer(self, bar: Bar) -> None:
        if not self.symbols or bar.symbol in self.symbols:
            super().offer(bar)


class MarketHub:
    """Bars by symbol, bounded; listeners called for every published bar."""

    def __init__(self, *, history_limit: int = 200_000) -> None:
        self._history_limit = history_limit
        self._bars: dict[str, deque[Bar]] = {}
        self._lock = threading.Lock()
        self._listeners: list[Callable[[Bar], None]] = []
        self._subs: list[BarSubscription] = []
        self.published = 0

    def add_listener(self, fn: Callable[[Bar], None]) -> None:
        """Call ``fn(bar)`` for every bar published from now on, in registration order."""
        self._listeners.append(fn)

    def publish(self, bar: Bar) -> None:
        """Record ``bar`` and hand it to every listener and subscriber."""
        with self._lock:
            series = self._bars.get(bar.symbol)
            if series is None:
                series = self._bars[bar.symbol] = deque(maxlen=self._history_limit)
            if series and bar.time <= series[-1].time:
                log.warning("dropped a %s bar at %s: not after the last one (%s)", bar.symbol,
                            bar.time, series[-1].time)
                return
            series.append(bar)
            self.published += 1
            subs = list(self._subs)
        for fn in self._listeners:
            fn(bar)
        for sub in subs:
            sub.offer(bar)

    def preload(self, bars: Iterable[Bar]) -> None:
        """Record history without calling listeners (bars from before the host started)."""
        for bar in bars:
            with self._lock:
                series = self._bars.setdefault(bar.symbol, deque(maxlen=self._history_limit))
                if not series or bar.time > series[-1].time:
                    series.append(bar)

    def symbols(self) -> list[str]:
        with self._lock:
            return sorted(self._bars)

    def bars(self, symbol: str, start: datetime | None = None, end: datetime | None = None,
             limit: int = 0) -> list[Bar]:
        """Bars of ``symbol`` with ``start <= time < end``, oldest first; with ``limit`` only
        the first ``limit`` of them, or the last ``limit`` when ``start`` is None."""
        with self._lock:
            # Bisect the deque in place: copying 200k bars to answer for the last 50 would
            # make every GetBars cost the whole history.
            series = self._bars.get(symbol, deque())
            lo = 0 if start is None else bisect.bisect_left(series, start, key=_time)
            hi = len(series) if end is None else bisect.bisect_left(series, end, key=_time)
            if limit and start is None:
                lo = max(lo, hi - limit)
            elif limit:
                hi = min(hi, lo + limit)
            return list(itertools.islice(series, lo, hi))


    def latest_quote(self, symbol: str) -> Quote | None:
        """The last close as a zero-spread quote (the built-in sources publish bars only)."""
        with self._lock:
            series = self._bars.get(symbol)
            bar = series[-1] if series else None
        if bar is None:
            return None
        return Quote(bar.symbol, bar.time, bar.close, bar.close)

    def subscribe(self, symbols: Iterable[str] = ()) -> BarSubscription:
        sub = BarSubscription(self, frozenset(symbols))
        with self._lock:
            self._subs.append(sub)
        return sub

    def _unsubscribe(self, sub: EventStream[Bar]) -> None:
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)


class MarketFeed:
    """Publishes a source's bars to a hub from its own thread, ``bars_per_second`` at a time
    (0: as fast as the listeners take them)."""

    def __init__(self, source: MarketSource, hub: MarketHub, *, bars_per_second: float = 0.0,
                 skip: int = 0, on_caught_up: Callable[[], None] | None = None) -> None:
        self.source = source
        #: Called on the feed's thread once the skipped bars are in the hub's history, before
        #: the first bar is published (the host resumes its strategies there).
        self.on_caught_up = on_caught_up
        self.hub = hub
        self.bars_per_second = bars_per_second
        self.skip = skip
        self.done = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandtrade-feed", daemon=True)
        self.error: BaseException | None = None
        #: Source bars consumed so far (set before a bar is published, so listeners can
        #: record it as the place to resume from).
        self.position = 0
        self._bars: Iterator[Bar] | None = None

    def catch_up(self) -> int:
        """Read the bars to skip (those worked before a restart) into the hub's history,
        without publishing them; returns how many were read."""
        if self._bars is None:
            self._bars = iter(self.source.bars())
        while self.position < self.skip:
            bar = next(self._bars, None)
            if bar is None:
                break
            self.position += 1
            self.hub.preload((bar,))
        return self.position

    def start(self) -> MarketFeed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            interval = 1.0 / self.bars_per_second if self.bars_per_second > 0 else 0.0
            next_at = time.monotonic()
            self.catch_up()
            assert self._bars is not None
            if self.on_caught_up is not None:
                self.on_caught_up()
            for bar in self._bars:
                if self._stop.is_set():
                    return
                self.position += 1
                if interval:
                    delay = next_at - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                    next_at = max(next_at + interval, time.monotonic() - 1.0)
                self.hub.publish(bar)
        except BaseException as e:  # reported by the host, which owns the feed
            self.error = e
            log.error("market feed %s stopped: %s", self.source.name, e)
        finally:
            self.done.set()
