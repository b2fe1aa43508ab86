"""A watch event's data and text: made once, when first read, however many readers send it;
JSON's missing NaN and infinity shown as null."""

from __future__ import annotations

import json

import pytest

from sandtrade.watch import WatchEvent


def test_an_events_data_is_made_on_first_read_and_only_once() -> None:
    made: list[int] = []

    def make() -> dict[str, object]:
        made.append(1)
        return {"symbol": "DEMO", "qty": 2}

    event = WatchEvent(7, "signal", "alice", make=make)
    assert made == []  # nobody read it: nothing was built
    texts = {event.text for _ in range(10)}  # ten readers
    assert texts == {'{"symbol":"DEMO","qty":2}'} and made == [1]
    assert event.data == {"symbol": "DEMO", "qty": 2} and made == [1]


def test_a_nan_or_infinity_is_sent_as_null() -> None:
    event = WatchEvent(1, "account", "alice", {"equity": float("nan"),
                                               "curve": [[1.0, float("inf")]]})
    assert json.loads(event.text) == {"equity": None, "curve": [[1.0, None]]}
    assert event.data["equity"] is None  # the data readers get agrees with the text


def test_an_event_needs_its_data_or_a_way_to_make_it() -> None:
    with pytest.raises(ValueError, match="data or a way to make it"):
        WatchEvent(1, "trade", None)
