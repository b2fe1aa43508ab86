"""Each live strategy's own bounded queue of market events, so no strategy waits for another.

The feed hands every worked bar (and the fills it caused) to the mailbox of each strategy
concerned and goes on; each strategy's run takes what is pending in batches, at its own pace.
A strategy that falls behind fills only its own mailbox. When it holds
:attr:`StrategySettings.backlog` bars, the policy ``on_lag`` says what happens to the next one:

``coalesce`` (the default)
    the two oldest pending bars of one symbol become one bar (the first's open, the highest
    high, the lowest low, the last's close and time, the summed volume), as on a coarser
    timeframe: a slow strategy still sees the whole price path, its extremes and the last
    close. Their fills are kept, in order, on the merged bar.
``drop_oldest``
    the oldest pending bar is dropped (its fills move to the next one: fills are never
    dropped).
``stop``
    the strategy is stopped, with the reason.

Signals and ``stop`` are control events: never merged or dropped, delivered in order with the
bars around them (a ``stop`` skips the pending bars: a stopped strategy does not work through
its backlog).

Each bar published to several strategies carries one :class:`Ticket`, finished when the last
of them has handled it: the host measures publish → last strategy done with it, and the
lockstep mode (a replay equal to a back-test) waits on it.
"""

from __future__ import annotations

import threading
import time
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from sandtrade.models import Bar, Fill

__all__ = ["FanoutMeter", "LatencyRing", "Mailbox", "Pending", "StrategySettings", "Ticket"]

#: Bars a run takes in one batch (one frame to its worker).
BATCH = 64


class StrategySettings(BaseModel):
    """``[strategies]`` of the configuration: how live strategies take the market."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["auto", "free", "lockstep"] = Field(
        "auto", description="free: the feed never waits for a strategy, each takes the market "
        "at its own pace from its own queue; lockstep: the feed waits until every strategy has "
        "handled each bar (a replay then trades exactly as a back-test, but one stalled "
        "strategy delays every strategy and the feed, up to its hook budget per bar); auto: "
        "lockstep when the market is replayed as fast as possible (bars_per_second = 0), "
        "free otherwise.")
    backlog: int = Field(1024, ge=1, le=1_000_000, description="Bars a strategy may have "
                         "pending before on_lag applies.")
    on_lag: Literal["coalesce", "drop_oldest", "stop"] = Field(
        "coalesce", description="What happens to a strategy's bars past its backlog: "
        "coalesce merges its two oldest bars of a symbol into one; drop_oldest drops the "
        "oldest; stop stops the strategy. Counted either way and shown in its status.")

    cpu_share: float = Field(0.5, ge=0, le=64, description="Cores each strategy's worker may "
                             "use at most while it spins (a cgroup cap where the host may "
                             "create one, else nice +5; `sandtrade doctor` says which); 0 "
                             "turns the cap off.")
    zygote: bool = Field(True, description="Fork each strategy's worker (and each upload's "
                         "check) from a warm template process that has imported everything, "
                         "a few milliseconds instead of ~140 ms of CPU; each worker still "
                         "confines itself. false: every worker boots on its own. `sandtrade "
                         "doctor` says which is in use.")

    state_bytes_per_second: float = Field(
        64 << 10, gt=0, description="Bytes of ctx.state a strategy may commit a second, after "
        "a burst of four seconds' worth; a change over it is held in the host and the latest "
        "written at the next change within it or when the run ends.")

    def lockstep(self, bars_per_second: float) -> bool:
        """Whether strategies run in lockstep with a market published at this pace."""
        if self.mode == "auto":
            return bars_per_second == 0
        return self.mode == "lockstep"


class FanoutMeter:
    """Publish → last strategy done, per bar: the latest :data:`SAMPLES` bars' figures."""

    SAMPLES = 4096

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._samples: deque[float] = deque(maxlen=self.SAMPLES)
        self.bars = 0

    def record(self, seconds: float) -> None:
        with self._lock:
            self._samples.append(seconds)
            self.bars += 1

    def figures(self, latest: int = 0) -> dict[str, float | int]:
        """``bars`` measured in all, and p50/p99/max in milliseconds of the latest ones (of
        the ``latest`` ones only, when given)."""
        with self._lock:
            kept = list(self._samples)
            bars = self.bars
        samples = sorted(kept[-latest:] if latest > 0 else kept)
        if not samples:
            return {"bars": bars, "samples": 0, "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0}

        def pct(p: float) -> float:
            return samples[min(len(samples) - 1, int(p * len(samples)))] * 1000

        return {"bars": bars, "samples": len(samples), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                "max_ms": samples[-1] * 1000}


class LatencyRing:
    """One run's latest publish → done figures (seconds), without a lock: one writer (the
    run's thread); readers take a copy."""

    SIZE = 512

    def __init__(self) -> None:
        self._values = array("d", bytes(8 * self.SIZE))
        self.count = 0

    def record(self, seconds: float) -> None:
        self._values[self.count % self.SIZE] = seconds
        self.count += 1

    def p99_ms(self, latest: int = 0) -> float:
        """The 99th percentile of the kept figures (of the ``latest`` ones, when given)."""
        n = min(self.count, self.SIZE)
        if latest > 0:
            n = min(n, latest)
        if not n:
            return 0.0
        end = self.count % self.SIZE
        ring = self._values.tolist()
        values = sorted((ring[end:] + ring[:end])[-n:] if self.count >= self.SIZE
                        else ring[:self.count][-n:])
        return values[min(n - 1, int(0.99 * n))] * 1000


class Ticket:
    """One published bar, shared by the mailboxes it went to; ``done`` is set when every one
    of them has handled it (or dropped it, or ended)."""

    __slots__ = ("_left", "_lock", "_meter", "done", "published")

    def __init__(self, meter: FanoutMeter | None, published: float | None = None) -> None:
        self.published = time.monotonic() if published is None else published
        self._left = 0
        self._lock = threading.Lock()
        self._meter = meter
        self.done = threading.Event()

    def hold(self) -> None:
        """One more mailbox has the bar."""
        with self._lock:
            self._left += 1

    def seal(self) -> None:
        """Every mailbox has been handed the bar (done at once when none took it)."""
        with self._lock:
            if self._left == 0:
                self.done.set()
                return
            self._left += 1  # the seal's own hold, released just below
        self.finish()

    def finish(self) -> None:
        """One mailbox is done with the bar."""
        with self._lock:
            self._left -= 1
            last = self._left == 0
        if last:
            if self._meter is not None:
                self._meter.record(time.monotonic() - self.published)
            self.done.set()


@dataclass
class Pending:
    """A bar (None: fills only) and the account's fills after which it comes."""

    bar: Bar | None
    fills: list[Fill]
    tickets: list[Ticket] = field(default_factory=list)
    merged: int = 1
    #: True when the next pending belongs to the same timestamp (a strategy of several
    #: symbols gets a timestamp's bars as one group, as a back-test handles them).
    joined: bool = False

    @property
    def published(self) -> float:
        return self.tickets[0].published if self.tickets else time.monotonic()


def merge(first: Bar, last: Bar) -> Bar:
    """Two bars of one symbol as one (``first`` before ``last``)."""
    return Bar(last.symbol, last.time, first.open, max(first.high, last.high),
               min(first.low, last.low), last.close, first.volume + last.volume)


class Mailbox:
    """A run's pending events: bars with fills (bounded, with a lag policy) and control events.

    Thread-safe: the feed puts, the run's thread takes.
    """

    def __init__(self, backlog: int = 1024, on_lag: str = "coalesce") -> None:
        self.backlog = backlog
        self.on_lag = on_lag
        self._cond = threading.Condition()
        self._items: deque[Pending | object] = deque()
        self._bars = 0
        self._closed = False
        self.coalesced = 0
        self.dropped = 0
        #: Set when the policy is ``stop`` and the backlog was exceeded.
        self.overflowed = False

    # ------------------------------------------------------------------ the feed's side

    def put_bar(self, pending: Pending) -> bool:
        """Queue a bar (and its fills); False when the mailbox is closed or overflowed under
        the ``stop`` policy (the pending's tickets are then finished here)."""
        with self._cond:
            if self._closed or self.overflowed:
                accepted = False
            elif self._bars >= self.backlog and not self._make_room():
                self.overflowed = True
                accepted = False
            else:
                self._items.append(pending)
                self._bars += 1
                self._cond.notify()
                accepted = True
        if not accepted:
            for ticket in pending.tickets:
                ticket.finish()
        return accepted

    def put_group(self, group: list[Pending]) -> bool:
        """Queue the pending items of one timestamp together (each but the last ``joined``),
        so that a run takes them in one event; False as :meth:`put_bar`."""
        for p in group[:-1]:
            p.joined = True
        with self._cond:
            if self._closed or self.overflowed:
                accepted = False
            elif self._bars + len(group) > self.backlog and not all(
                    self._make_room() for _ in range(self._bars + len(group) - self.backlog)):
                self.overflowed = True
                accepted = False
            else:
                self._items.extend(group)
                self._bars += len(group)
                self._cond.notify()
                accepted = True
        if not accepted:
            for p in group:
                for ticket in p.tickets:
                    ticket.finish()
        return accepted

    def put(self, event: object, *, skip_bars: bool = False) -> bool:
        """Queue a control event; False when closed. With ``skip_bars`` the pending bars are
        given up first (their fills too: for ``stop``, which needs no more market), while
        control events already queued stay ahead of it."""
        skipped: list[Pending] = []
        with self._cond:
            if self._closed:
                return False
            if skip_bars:
                skipped = [x for x in self._items if isinstance(x, Pending)]
                kept = [x for x in self._items if not isinstance(x, Pending)]
                self._items.clear()
                self._items.extend(kept)
                self._bars = 0
            self._items.append(event)
            self._cond.notify()
        for pending in skipped:
            for ticket in pending.tickets:
                ticket.finish()
        return True

    # ------------------------------------------------------------------ the run's side

    def take(self, timeout: float | None = None) -> list[Pending] | object | None:
        """The next control event, or the pending bars before it (at most :data:`BATCH`, more
        only to finish a timestamp's group); None on timeout or when closed and empty."""
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self._items:
                if self._closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)
            head = self._items[0]
            if not isinstance(head, Pending):
                self._items.popleft()
                return head
            batch: list[Pending] = []
            while self._items and (len(batch) < BATCH or batch[-1].joined) \
                    and isinstance(self._items[0], Pending):
                item = self._items.popleft()
                assert isinstance(item, Pending)
                batch.append(item)
            self._bars -= len(batch)
            return batch

    def close(self) -> tuple[list[Pending], list[object]]:
        """Refuse everything from now on; returns what was pending (bars, control events),
        so that the caller can answer them."""
        with self._cond:
            self._closed = True
            items = list(self._items)
            self._items.clear()
            self._bars = 0
            self._cond.notify_all()
        bars = [x for x in items if isinstance(x, Pending)]
        return bars, [x for x in items if not isinstance(x, Pending)]

    # ------------------------------------------------------------------ lag

    def lag(self) -> tuple[int, float]:
        """Bars pending, and seconds since the oldest of them was published."""
        if not self._bars:  # the common case, after every event: no lock needed to see it
            return 0, 0.0
        with self._cond:
            oldest = next((x for x in self._items if isinstance(x, Pending)), None)
            bars = self._bars
        if oldest is None:
            return 0, 0.0
        return bars, max(0.0, time.monotonic() - oldest.published)

    def _make_room(self) -> bool:
        """Apply the lag policy to free one place (with the lock held); False for ``stop``
        or when there is nothing to merge into."""
        if self.on_lag == "stop":
            return False
        items = self._items
        pending = ((k, x) for k, x in enumerate(items) if isinstance(x, Pending))
        first = next(pending, None)
        second = next(pending, None)
        if first is None or second is None:
            return False
        (i, a), (j, b) = first, second
        if a.bar is None:  # fills alone ride on the next bar: nothing is lost
            self._absorb(i, b)
            return True
        if self.on_lag == "coalesce":
            seen = {a.bar.symbol: i}
            for k, x in ((j, b), *pending):
                if x.bar is None:
                    continue
                earlier = seen.get(x.bar.symbol)
                if earlier is not None:
                    older = items[earlier]
                    assert isinstance(older, Pending) and older.bar is not None
                    x.bar = merge(older.bar, x.bar)
                    x.merged += older.merged
                    self._absorb(earlier, x)
                    self.coalesced += 1
                    return True
                seen[x.bar.symbol] = k
        # drop_oldest, or no symbol has two bars pending
        self.dropped += a.merged
        self._absorb(i, b)
        return True

    def _absorb(self, k: int, into: Pending) -> None:
        """Remove the pending at ``k``; its fills and tickets go to ``into`` (a later one)."""
        gone = self._items[k]
        assert isinstance(gone, Pending)
        into.fills[:0] = gone.fills
        into.tickets[:0] = gone.tickets
        del self._items[k]
        self._bars -= 1
