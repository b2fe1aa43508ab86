"""The market hub: where a live host's bars arrive, are kept, and are handed on.

A feed (:class:`MarketFeed`) pulls bars from a source plugin and publishes them to the hub at a
chosen pace; when the source has no more bars it loops, continues synthetically or stops, as
``market.then`` says (:mod:`sandtrade.market.continuation`), and :meth:`MarketFeed.status`
tells where each symbol is (running, looping, synthetic, ended). The hub keeps a bounded
history per symbol (what ``GetBars`` serves: only bars already published, so a replay never
shows the future), the latest quote, and hands every bar to its listeners (the broker first,
then strategies and streams) in publication order.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sandtrade.market.continuation import FeedNote, Then, continued
from sandtrade.market.live import SourceHealth
from sandtrade.models import Bar, Instrument, Quote
from sandtrade.streams import EventStream

__all__ = ["BarSubscription", "FeedStatus", "MarketFeed", "MarketHub", "MarketSource",
           "SymbolFeedStatus", "format_bar_time"]

log = logging.getLogger(__name__)

#: Live bars a stream subscriber may fall behind by before it is cut off.
STREAM_BACKLOG = 10_000


class MarketSource(Protocol):
    """What a market-data source plugin provides.

    A source for the outside world may also have (the feed looks for each with ``getattr``):

    - ``live = True``: its bars are new prices as they come, not a replay, so a restarted host
      skips none of them (the bars worked before the restart are history the source will not
      give again);
    - ``health() -> SourceHealth``: whether it is getting prices (``/health``,
      ``sandtrade doctor``);
    - ``close()``: called by the feed when the host stops, from another thread; ``bars()``
      must then end promptly (a source that waits between polls waits on an event that
      ``close`` sets).
    """

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
        # Private to this module: a subscription ends by its own close(), which calls this.
        super().__init__(STREAM_BACKLOG, hub._unsubscribe)  # noqa: SLF001
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


@dataclass(frozen=True, slots=True)
class SymbolFeedStatus:
    """Where one symbol's feed is."""

    symbol: str
    #: ``running`` (the source's own bars), ``looping`` (a later pass, times moved forward),
    #: ``synthetic`` (generated bars after the source's end) or ``ended`` (no more prices).
    state: str
    #: Bars of the symbol published in the current pass (``synthetic``: since it began).
    bars: int
    #: Bars of the symbol in one pass of the source; 0 until the first pass has ended.
    source_bars: int
    #: Passes of the source completed.
    passes: int
    #: The last bar published (None before the first).
    last_bar_time: datetime | None
    #: The source's last bar before the current state began (the end of the data).
    ended_at: datetime | None
    #: ``looping``: how far this pass's times are moved forward from the source's own.
    shift: timedelta
    #: One line a person reads: ``replay of DEMO ended at 2024-08-01 (bar 2500 of 2500);
    #: orders on DEMO cannot fill``.
    message: str

    def to_json(self) -> dict[str, Any]:
        """The status as JSON-ready values (what ``/health`` shows)."""
        return {"state": self.state, "bars": self.bars, "source_bars": self.source_bars,
                "passes": self.passes, "last_bar_time": _iso(self.last_bar_time),
                "ended_at": _iso(self.ended_at), "message": self.message}


@dataclass(frozen=True, slots=True)
class FeedStatus:
    """Where the market feed is: the source, what happens at its end, each symbol."""

    #: The market source plugin (``replay``, ``synthetic``, ...).
    source: str
    #: What the feed does when the source ends: ``loop``, ``synthetic`` or ``stop``.
    then: str
    #: ``starting`` (skipping the bars worked before a restart), ``running``, ``ended`` (no
    #: symbol has more prices), ``failed`` (see ``error``) or ``stopped`` (host shutting down).
    state: str
    #: Bars published since the source's first bar, across restarts.
    position: int
    #: Why the feed failed (``failed`` only).
    error: str
    symbols: tuple[SymbolFeedStatus, ...]
    #: A live source's link (None for a replay): live, or reconnecting since when, and why.
    connection: SourceHealth | None = None

    def symbol(self, symbol: str) -> SymbolFeedStatus | None:
        """The status of ``symbol``, or None when the feed does not carry it."""
        return next((s for s in self.symbols if s.symbol == symbol), None)

    def to_json(self) -> dict[str, Any]:
        """The status as JSON-ready values (what ``/health`` shows)."""
        return {"state": self.state, "source": self.source, "then": self.then,
                "position": self.position, "error": self.error,
                "symbols": {s.symbol: s.to_json() for s in self.symbols},
                "connection": None if self.connection is None else self.connection.to_json()}


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def format_bar_time(t: datetime) -> str:
    """A bar time as people write it: the date alone for daily bars."""
    if t.hour == t.minute == t.second == t.microsecond == 0:
        return f"{t:%Y-%m-%d}"
    return f"{t:%Y-%m-%d %H:%M:%S}" if t.second else f"{t:%Y-%m-%d %H:%M}"


class MarketFeed:
    """Publishes a source's bars to a hub from its own thread, ``bars_per_second`` at a time
    (0: as fast as the listeners take them); at the source's end it does what ``then`` says.

    :param on_note: called on the feed's thread at each change of a symbol's feed (the
        source ended, loops, goes synthetic), with the change and the symbol's new status;
        also for the changes among the skipped bars of a restart (``caught_up`` is False).
    """

    def __init__(self, source: MarketSource, hub: MarketHub, *, bars_per_second: float = 0.0,
                 skip: int = 0, on_caught_up: Callable[[], None] | None = None,
                 then: Then = "stop", seed: int = 42,
                 on_note: Callable[[FeedNote, SymbolFeedStatus], None] | None = None) -> None:
        self.source = source
        #: Called on the feed's thread once the skipped bars are in the hub's history, before
        #: the first bar is published (the host resumes its strategies there).
        self.on_caught_up = on_caught_up
        self.on_note = on_note
        self.hub = hub
        self.bars_per_second = bars_per_second
        self.skip = skip
        self.then = then
        self.seed = seed
        self.done = threading.Event()
        #: True once the bars worked before a restart are skipped.
        self.caught_up = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandtrade-feed", daemon=True)
        self.error: BaseException | None = None
        #: Source bars consumed so far (set before a bar is published, so listeners can
        #: record it as the place to resume from).
        self.position = 0
        self._bars: Iterator[Bar | FeedNote] | None = None
        # Written by the feed's thread only; status() copies them (a dict copy is atomic).
        self._pass_bars: dict[str, int] = {}
        self._notes: dict[str, FeedNote] = {}
        self._symbols = [i.symbol for i in source.instruments()]

    def catch_up(self) -> int:
        """Read the bars to skip (those worked before a restart) into the hub's history,
        without publishing them; returns how many were read."""
        if self._bars is None:
            self._bars = continued(self.source, self.then, self.seed)
        if getattr(self.source, "live", False):
            # New prices only: the bars worked before the restart are not given again, and
            # the position goes on counting from where it was.
            self.position = max(self.position, self.skip)
            return self.position
        while self.position < self.skip:
            item = next(self._bars, None)
            if item is None:
                break
            if isinstance(item, FeedNote):
                self._note(item)
                continue
            self.position += 1
            self._pass_bars[item.symbol] = self._pass_bars.get(item.symbol, 0) + 1
            self.hub.preload((item,))
        return self.position

    def start(self) -> MarketFeed:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        close = getattr(self.source, "close", None)
        if callable(close):  # a live source waiting for its next poll stops waiting
            try:
                close()
            except Exception:
                log.exception("market source %s: close failed", self.source.name)
        if self._thread.is_alive():
            self._thread.join()

    # ------------------------------------------------------------------ status

    def status(self) -> FeedStatus:
        """Where the feed is now (safe to call from any thread)."""
        notes = dict(self._notes)
        counts = dict(self._pass_bars)
        symbols = sorted({*self._symbols, *notes, *counts})
        if self.error is not None:
            state = "failed"
        elif self._stop.is_set():
            state = "stopped"
        elif self.done.is_set():
            state = "ended"
        else:
            state = "running" if self.caught_up else "starting"
        health = getattr(self.source, "health", None)
        return FeedStatus(self.source.name, self.then, state, self.position,
                          "" if self.error is None else str(self.error),
                          tuple(self._symbol_status(s, notes.get(s), counts.get(s, 0))
                                for s in symbols),
                          health() if callable(health) else None)

    def symbol_status(self, symbol: str) -> SymbolFeedStatus:
        """Where ``symbol``'s feed is now."""
        return self._symbol_status(symbol, self._notes.get(symbol),
                                   self._pass_bars.get(symbol, 0))

    def _symbol_status(self, symbol: str, note: FeedNote | None, bars: int
                       ) -> SymbolFeedStatus:
        newest = self.hub.bars(symbol, limit=1)
        last_time = newest[0].time if newest else None
        last = format_bar_time(last_time) if last_time is not None else "-"
        what = f"{self.source.name} of {symbol}"
        if note is None:
            at = f"bar {bars} at {last}" if last_time is not None else "no bar yet"
            return SymbolFeedStatus(symbol, "running", bars, 0, 0, last_time, None,
                                    timedelta(0), f"{what}: {at}; when the data ends: "
                                    f"{self.then}")
        if note.last_bar is None:
            ended = f"{what} ended without a bar"
        else:
            ended = (f"{what} ended at {format_bar_time(note.last_bar)} "
                     f"(bar {note.bars} of {note.bars})")
        if note.kind == "ended":
            message = f"{ended}; orders on {symbol} cannot fill"
        elif note.kind == "synthetic" and not bars:
            message = f"{ended}; synthetic bars follow (seeded GBM from its last close)"
        elif note.kind == "synthetic":
            message = (f"{ended}; then synthetic bars (seeded GBM from its last close): "
                       f"{bars} so far, the last at {last}")
        elif not bars:
            message = (f"{ended}; replaying it again (pass {note.passes + 1}), times moved "
                       f"forward {_span(note.shift)}")
        else:
            message = (f"{what}, pass {note.passes + 1} (times moved forward "
                       f"{_span(note.shift)}): bar {bars} of {note.bars} at {last}")
        state = {"ended": "ended", "synthetic": "synthetic", "looped": "looping"}[note.kind]
        return SymbolFeedStatus(symbol, state, bars, note.bars, note.passes, last_time,
                                note.last_bar, note.shift, message)

    def _note(self, note: FeedNote) -> None:
        self._notes[note.symbol] = note
        if note.kind != "ended":  # a new pass, or the synthetic bars, count from 0
            self._pass_bars[note.symbol] = 0
        if self.on_note is None:
            return
        try:
            self.on_note(note, self.symbol_status(note.symbol))
        except Exception:  # the host's reaction failed; the market goes on regardless
            log.exception("market feed: handling %s %s failed", note.symbol, note.kind)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        try:
            interval = 1.0 / self.bars_per_second if self.bars_per_second > 0 else 0.0
            next_at = time.monotonic()
            if self.catch_up() < self.skip:
                # Started again with another market.then (loop before, stop now): the bars
                # worked before lie beyond what the source gives now.
                log.warning("market feed %s: %d bars were worked before the restart, but the "
                            "source gives only %d with market.then = %s; it has ended",
                            self.source.name, self.skip, self.position, self.then)
            assert self._bars is not None
            self.caught_up = True
            if self.on_caught_up is not None:
                self.on_caught_up()
            counts = self._pass_bars
            for item in self._bars:
                if self._stop.is_set():
                    return
                if isinstance(item, FeedNote):
                    self._note(item)
                    continue
                self.position += 1
                counts[item.symbol] = counts.get(item.symbol, 0) + 1
                if interval:
                    delay = next_at - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                    next_at = max(next_at + interval, time.monotonic() - 1.0)
                self.hub.publish(item)
        except BaseException as e:  # reported by the host, which owns the feed
            self.error = e
            log.error("market feed %s stopped: %s", self.source.name, e)
        finally:
            self.done.set()


def _span(shift: timedelta) -> str:
    if shift % timedelta(days=1) == timedelta(0):
        return f"{shift.days} days"
    return str(shift)
