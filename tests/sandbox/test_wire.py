"""The host <-> worker frames: the fast paths a live worker takes on every bar read exactly
what the general ones read."""

from __future__ import annotations

import io
import struct
from datetime import datetime, timedelta

import pytest

from sandtrade.models import Bar
from sandtrade.sandbox.wire import (
    ProtocolError,
    RepeatedHeaders,
    check_json,
    decode_bars,
    encode_bars,
    frame_bytes,
    read_frame,
)

SYMBOLS = ["AAA", "BBB", "CCC"]
INDEX = {s: i for i, s in enumerate(SYMBOLS)}


def _bar(symbol: str, minute: int, close: float) -> Bar:
    return Bar(symbol, datetime(2024, 3, 1, 9, 30) + timedelta(minutes=minute, microseconds=7),
               close - 1, close + 2, close - 3, close, 1234.5)


@pytest.mark.parametrize("bar", [_bar("AAA", 0, 100.25), _bar("CCC", 59, 1e-9),
                                 Bar("BBB", datetime(1900, 1, 1), -0.0, 1e300, -1e300, 3.5)])
def test_one_bar_decodes_as_in_a_batch(bar: Bar) -> None:
    count, payload = encode_bars([bar], INDEX)
    # The same bar read alone (the fast path) and as part of a batch (the arrays).
    _, batch = encode_bars([_bar("AAA", 1, 1.0), bar], INDEX)
    assert decode_bars(count, payload, SYMBOLS) == [bar]
    assert decode_bars(2, batch, SYMBOLS)[1] == bar


def test_one_bar_with_a_symbol_index_out_of_range_is_refused() -> None:
    _, payload = encode_bars([_bar("CCC", 0, 5.0)], INDEX)
    with pytest.raises(ProtocolError, match="out of range"):
        decode_bars(1, payload, SYMBOLS[:2])
    with pytest.raises(ProtocolError, match="does not hold 1 bars"):
        decode_bars(1, payload[:-1], SYMBOLS)


def test_repeated_headers_are_parsed_once_and_read_like_read_frame() -> None:
    bars = {"type": "bars", "count": 1, "items": [[True, []]]}
    frames = [frame_bytes(bars, b"\x01" * 50), frame_bytes(bars, b"\x02" * 50),
              frame_bytes({"type": "stop"}), frame_bytes(bars, b"\x03" * 50)]
    reader = RepeatedHeaders(io.BytesIO(b"".join(frames)))
    got = [reader.read() for _ in frames]
    expected_stream = io.BytesIO(b"".join(frames))
    assert got == [read_frame(expected_stream) for _ in frames]
    assert got[0][0] is got[1][0]  # the second equal header was not parsed again
    assert got[3][0] is not got[0][0] and got[3][0] == bars  # parsed after a different one
    with pytest.raises(EOFError):
        reader.read()


def test_repeated_headers_refuse_what_read_frame_refuses() -> None:
    with pytest.raises(ProtocolError, match="not JSON"):
        RepeatedHeaders(io.BytesIO(struct.pack("!II", 10, 0) + b"{not json}")).read()
    truncated = frame_bytes({"type": "bars"}, b"\x00" * 50)[:-1]
    with pytest.raises(EOFError):
        RepeatedHeaders(io.BytesIO(truncated)).read()


def test_an_empty_state_is_checked_as_json() -> None:
    assert check_json({}, max_bytes=2) == "{}"
    with pytest.raises(ValueError, match="larger than the limit"):
        check_json({}, max_bytes=1)
