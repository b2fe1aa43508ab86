"""The host's window of what live strategies plot: each event's points as a worker sends them,
checked again (a worker is untrusted), bounded in series, window and rate."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from sandtrade.sandbox.plotbook import BURST_SECONDS, POINTS_PER_SECOND, WINDOW, PlotBook
from sandtrade.strategy.plots import MAX_WIRE_BYTES, PlotOutbox

T0 = 1_700_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def add(book: PlotBook, points: Any, styles: Any = None) -> int:
    return book.add("sid", "alice", "trend", points, styles)


def test_points_are_kept_per_series_with_their_style_and_a_bars_last_value() -> None:
    book = PlotBook()
    assert add(book, [["fast", T0, 1.0], ["rsi", T0, 55.0], ["fast", T0 + 60, 2.0]],
               {"fast": ["price", "#ff9800", "DEMO"], "rsi": ["below", None, "DEMO"]}) == 0
    assert add(book, [["fast", T0 + 60, 2.5]], {"fast": ["price", "#ff9800", "DEMO"]}) == 0
    assert book.series("sid") == [
        {"name": "fast", "pane": "price", "color": "#ff9800", "symbol": "DEMO",
         "points": [[T0, 1.0], [T0 + 60, 2.5]]},
        {"name": "rsi", "pane": "below", "color": None, "symbol": "DEMO",
         "points": [[T0, 55.0]]}]


def test_what_a_hostile_worker_sends_is_dropped_and_counted() -> None:
    book = PlotBook()
    bad = [
        ["x" * 41, T0, 1.0],              # a name too long
        ["\x1b[2Jowned", T0, 1.0],        # terminal control in a name
        [["x"], T0, 1.0],                 # not a string
        ["x", T0, math.nan],              # not finite
        ["x", T0, math.inf],
        ["x", "2020", 1.0],               # a time that is not a number
        ["x", 1e300, 1.0],                # a time out of range
        ["x", T0, True],                  # a bool is not a number here
        ["x", T0],                        # short
        "x",
        None,
    ]
    assert add(book, bad) == len(bad)
    assert book.series("sid") == []
    assert add(book, "not a list") == 0 and add(book, [["ok", T0, 1.0]], "styles?") == 0
    (series,) = book.series("sid")
    assert (series["pane"], series["color"], series["symbol"]) == ("price", None, "")


def test_a_bad_style_falls_back_to_the_defaults() -> None:
    book = PlotBook()
    add(book, [["x", T0, 1.0]], {"x": ["side", "url(javascript:1)", "\x00" * 3]})
    (series,) = book.series("sid")
    assert (series["pane"], series["color"], series["symbol"]) == ("price", None, "")


def test_at_most_sixteen_series_a_strategy() -> None:
    book = PlotBook()
    assert add(book, [[f"s{k}", T0, 1.0] for k in range(20)]) == 4
    assert len(book.series("sid")) == 16


def test_a_window_per_series_and_times_only_forward() -> None:
    book = PlotBook(clock=Clock())  # the clock stands still: the burst is the budget
    n = min(WINDOW + 10, int(POINTS_PER_SECOND * BURST_SECONDS))
    assert add(book, [["x", T0 + k, float(k)] for k in range(n)]) == 0
    assert add(book, [["x", T0 - 5, 1.0]]) == 1  # back in time: not kept
    points = book.series("sid")[0]["points"]
    assert len(points) == WINDOW and points[-1] == [T0 + n - 1, float(n - 1)]


def test_a_flood_is_held_to_the_rate_after_its_burst() -> None:
    clock = Clock()
    book = PlotBook(clock=clock)
    burst = int(POINTS_PER_SECOND * BURST_SECONDS)
    dropped = sum(add(book, [[f"s{k % 16}", T0 + j, 1.0] for k in range(16)])
                  for j in range(burst // 16 + 10))
    assert dropped == 16 * (burst // 16 + 10) - burst
    clock.now += 1.0  # a second later: a second's worth again
    assert add(book, [["s0", T0 + 1e6 + k, 1.0] for k in range(1000)]) == \
        1000 - int(POINTS_PER_SECOND)


def test_followers_get_each_accepted_batch_and_forget_drops_a_strategy() -> None:
    book = PlotBook()
    stream = book.follow()
    add(book, [["x", T0, 1.0], ["x", T0 + 1, 2.0], ["bad\x00", T0, 1.0]],
        {"x": ["below", "teal", "DEMO"]})
    batch = stream.get(timeout=1)
    assert batch is not None
    assert (batch.account, batch.strategy, batch.name, batch.pane, batch.color,
            batch.symbol, batch.points) == ("alice", "trend", "x", "below", "teal", "DEMO",
                                            ((T0, 1.0), (T0 + 1, 2.0)))
    assert stream.get(timeout=0) is None
    book.forget("sid")
    assert book.series("sid") == []
    stream.close()


def test_a_workers_event_sends_its_newest_points_within_the_frames_share() -> None:
    """The worker's side: an event that plotted more than a frame may carry (a lagging run
    catching up, names escaped to six bytes a character) sends its newest points, and the
    JSON stays within MAX_WIRE_BYTES, so the done frame stays under the host's cap."""
    outbox = PlotOutbox()
    start = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(3000):
        for k in range(16):
            outbox.record("é" * 38 + f"{k:02d}", -1.2345678901234567e-300 * (i + 1), "below",
                          "#ff9800", "DEMO", i, start + timedelta(minutes=i))
    points, styles = outbox.take()
    assert len(json.dumps(points)) <= MAX_WIRE_BYTES
    assert points[-1][1] == (start + timedelta(minutes=2999)).timestamp()
    assert len(points) > 100 and set(styles) == {p[0] for p in points}
    assert styles[points[0][0]] == ["below", "#ff9800", "DEMO"]
    assert outbox.take() == ([], {})  # taken: the next event starts empty
