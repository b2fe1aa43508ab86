"""Interval strings: the spellings traders use, and a clear refusal of the ambiguous ones."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sandtrade.market import describe_interval, parse_interval


@pytest.mark.parametrize(("spec", "expected"), [
    ("4h", timedelta(hours=4)),
    ("1d", timedelta(days=1)),
    ("15min", timedelta(minutes=15)),
    ("1w", timedelta(weeks=1)),
    ("30s", timedelta(seconds=30)),
    ("1H", timedelta(hours=1)),
    ("h", timedelta(hours=1)),
    (" 2 hours ", timedelta(hours=2)),
    ("90minutes", timedelta(minutes=90)),
    ("3D", timedelta(days=3)),
    (timedelta(minutes=5), timedelta(minutes=5)),
])
def test_intervals_parse(spec: str | timedelta, expected: timedelta) -> None:
    assert parse_interval(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("1m", "'1m' is ambiguous: write 1min for minutes"),
    ("1M", "'1M' is ambiguous"),
    ("1y", "unknown unit 'y'"),
    ("1.5h", "is not an interval"),
    ("", "is not an interval"),
    ("0d", "must be positive"),
    (timedelta(0), "must be positive"),
])
def test_bad_intervals_are_refused(spec: str | timedelta, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_interval(spec)


@pytest.mark.parametrize(("interval", "text"), [
    (timedelta(hours=4), "4h"), (timedelta(days=1), "1d"), (timedelta(weeks=2), "2w"),
    (timedelta(minutes=90), "90min"), (timedelta(seconds=45), "45s"), (timedelta(days=8), "8d"),
])
def test_describe_interval_is_the_short_spelling(interval: timedelta, text: str) -> None:
    assert describe_interval(interval) == text
    assert parse_interval(text) == interval
