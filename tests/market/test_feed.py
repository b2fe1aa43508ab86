"""The live feed past the source's end: what it publishes, what it says, and where a restarted
feed resumes."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from itertools import islice, pairwise
from pathlib import Path

import pytest

from sandtrade.market import gbm_bars, write_csv
from sandtrade.market.continuation import FeedNote, Then, continued
from sandtrade.market.hub import MarketFeed, MarketHub, SymbolFeedStatus
from sandtrade.market.sources import MarketSettings, ReplaySource
from sandtrade.models import Bar

WAIT = 10.0


@pytest.fixture
def source(tmp_path: Path) -> ReplaySource:
    """A replay of 12 weekday bars of SYN, 2024-01-01 .. 2024-01-16."""
    write_csv(gbm_bars(12, symbol="SYN", seed=3, start=datetime(2024, 1, 1), interval="1d",
                       skip_weekends=True), tmp_path / "SYN.csv")
    return ReplaySource(MarketSettings(files=[f"SYN={tmp_path / 'SYN.csv'}"]))


class Recorder:
    """Collects what a feed publishes and the notes it gives, and lets a test wait for them."""

    def __init__(self, hub: MarketHub) -> None:
        self.bars: list[Bar] = []
        self.notes: list[tuple[FeedNote, SymbolFeedStatus]] = []
        self._cond = threading.Condition()
        hub.add_listener(self._bar)

    def _bar(self, bar: Bar) -> None:
        with self._cond:
            self.bars.append(bar)
            self._cond.notify_all()

    def note(self, note: FeedNote, status: SymbolFeedStatus) -> None:
        with self._cond:
            self.notes.append((note, status))
            self._cond.notify_all()

    def wait_bars(self, n: int) -> list[Bar]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.bars) >= n, WAIT), \
                f"{len(self.bars)} of {n} bars published"
            return self.bars[:n]


def run_feed(source: ReplaySource, then: Then, *, skip: int = 0
             ) -> tuple[MarketFeed, MarketHub, Recorder]:
    hub = MarketHub()
    recorder = Recorder(hub)
    feed = MarketFeed(source, hub, then=then, skip=skip, on_note=recorder.note).start()
    return feed, hub, recorder


def test_a_stopped_replay_says_it_ended_and_where(source: ReplaySource) -> None:
    feed, _hub, recorder = run_feed(source, "stop")
    assert feed.done.wait(WAIT)

    status = feed.status()
    assert (status.source, status.then, status.state, status.position) == (
        "replay", "stop", "ended", 12)
    (syn,) = status.symbols
    assert (syn.state, syn.bars, syn.source_bars, syn.passes) == ("ended", 12, 12, 1)
    assert syn.ended_at == syn.last_bar_time == datetime(2024, 1, 16)
    assert syn.message == ("replay of SYN ended at 2024-01-16 (bar 12 of 12); orders on SYN "
                           "cannot fill")
    assert [(n.kind, s.message) for n, s in recorder.notes] == [("ended", syn.message)]
    assert len(recorder.bars) == 12


def test_a_looping_feed_counts_its_passes_and_keeps_time_moving(source: ReplaySource) -> None:
    feed, _hub, recorder = run_feed(source, "loop")
    try:
        bars = recorder.wait_bars(30)
    finally:
        feed.stop()

    times = [b.time for b in bars]
    assert all(b > a for a, b in pairwise(times))
    assert times[12] == datetime(2024, 1, 22), "the Monday three weeks after the first bar"
    looped = [n for n, _ in recorder.notes]
    assert [(n.kind, n.passes, n.shift) for n in looped[:2]] == [
        ("looped", 1, timedelta(weeks=3)), ("looped", 2, timedelta(weeks=6))]
    assert recorder.notes[0][1].message == (
        "replay of SYN ended at 2024-01-16 (bar 12 of 12); replaying it again (pass 2), "
        "times moved forward 21 days")


def test_a_restarted_feed_resumes_the_continued_stream_where_it_was(
        source: ReplaySource) -> None:
    """The bars of a feed started with skip=N (a host restarted after N bars worked) are the
    bars N+1, N+2, ... of an uninterrupted run, past the source's end too; the skipped ones
    are its history, and its status knows which pass it is in."""
    for then in ("loop", "synthetic"):
        expected = [b for b in islice(continued(source, then), 80) if isinstance(b, Bar)]
        feed, hub, recorder = run_feed(source, then, skip=25)
        try:
            after = recorder.wait_bars(30)
        finally:
            feed.stop()

        assert hub.bars("SYN")[:25] == expected[:25], then
        assert after == expected[25:55], then
        assert feed.status().position >= 55
        if then == "loop":
            # 25 = two passes of 12 and one bar: the passes skipped are noted in their place
            assert [n.passes for n, _ in recorder.notes][:2] == [1, 2]
            assert all(s.state == "looping" for _, s in recorder.notes)


def test_a_feed_that_has_not_caught_up_says_it_is_starting(source: ReplaySource) -> None:
    hub = MarketHub()
    feed = MarketFeed(source, hub, then="stop")  # not started

    status = feed.status()

    assert status.state == "starting"
    assert status.symbols[0].message == "replay of SYN: no bar yet; when the data ends: stop"
