"""The strategy log (``print``, ``ctx.log``): bounded in encoded bytes, in what one event's lines
take on the wire, and (in a live run) in rate; what it does not keep it counts."""

from __future__ import annotations

import json

from sandtrade.sandbox.wire import untrusted_text
from sandtrade.strategy.policy import MAX_LOG_LINE, StrategyLog


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_size_cap_counts_encoded_bytes_not_characters() -> None:
    log = StrategyLog(max_bytes=100)
    for _ in range(10):
        log.write_line("é" * 10)  # 20 bytes and a newline
    assert len(log.lines) == 4 and log.dropped == 6
    assert log.size == 84


def test_a_long_line_is_cut_in_a_live_run() -> None:
    log = StrategyLog(max_line=MAX_LOG_LINE)
    log.write_line("x" * (MAX_LOG_LINE + 50))
    assert log.lines == ["x" * MAX_LOG_LINE]


def test_an_events_lines_are_bounded_as_they_travel_escaped() -> None:
    """A control character is one byte in UTF-8 and six in a JSON frame: the wire cap counts
    the six, so the frame carrying the lines stays under it whatever they hold."""
    log = StrategyLog(max_wire_bytes=10_000)
    for _ in range(1000):
        log.write_line("\x1b" * 100)
    assert len(json.dumps(log.lines)) <= 10_000
    assert log.lines and log.dropped == 1000 - len(log.lines)
    log.new_event()
    log.lines = []
    log.write_line("next event")
    assert log.lines == ["next event"]


def test_a_lone_surrogate_is_logged_not_raised_into_the_strategy() -> None:
    log = StrategyLog(max_wire_bytes=1000)
    log.write_line("a\ud800b")
    assert log.lines == ["a\ud800b"]  # the host replaces it on intake
    assert untrusted_text(log.lines[0], 100) == "a\ufffdb"


def test_the_rate_is_a_token_bucket_with_a_burst() -> None:
    clock = Clock()
    log = StrategyLog(clock=clock)
    log.throttle(lines_per_s=10, bytes_per_s=1 << 20, burst_seconds=2)
    for _ in range(50):
        log.write_line("x")
    assert len(log.lines) == 20 and log.dropped == 30  # the burst: 2 s of 10 lines
    clock.now += 1.0
    for _ in range(50):
        log.write_line("x")
    assert len(log.lines) == 30 and log.dropped == 70  # one second more: 10 lines
    clock.now += 100.0  # a long quiet spell refills only up to the burst
    for _ in range(50):
        log.write_line("x")
    assert len(log.lines) == 50


def test_the_rate_counts_bytes_too() -> None:
    clock = Clock()
    log = StrategyLog(clock=clock)
    log.throttle(lines_per_s=1000, bytes_per_s=1000, burst_seconds=1)
    for _ in range(10):
        log.write_line("y" * 299)  # 300 bytes a line
    assert len(log.lines) == 3 and log.dropped == 7


def test_untrusted_text_is_valid_utf8_without_nul_and_cut() -> None:
    assert untrusted_text("a\x00b\udfffc\U0001f600", 100) == "ab\ufffdc\U0001f600"
    assert untrusted_text("\ud83d\ude00", 100) == "\U0001f600"  # a pair joins
    assert untrusted_text("x" * 50, 10) == "x" * 10
    untrusted_text("\ud800" * 10, 100).encode("utf-8")
