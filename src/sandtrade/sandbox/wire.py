"""The host <-> worker channel: length-prefixed frames of JSON plus an optional binary payload.

A frame is ``!II`` (header length, payload length), the UTF-8 JSON header, then the payload.
Bars travel as binary payloads (epoch microseconds as int64, OHLCV as float64, a symbol index
as uint16), so a 200,000-bar history crosses the pipe in a few hundred milliseconds.
Everything read from a worker is untrusted: sizes are capped and JSON is validated by the
reader, and every string a worker wrote that the host keeps or shows (a log line, an error, a
reason) passes :func:`untrusted_text` first.
"""

from __future__ import annotations

import json
import struct
from array import array
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import accumulate, islice, repeat
from operator import add, sub
from typing import IO, Any

from sandtrade.models import Bar

__all__ = [
    "FrameTooLarge",
    "ProtocolError",
    "decode_bars",
    "encode_bars",
    "read_frame",
    "untrusted_text",
    "write_frame",
]

_HEAD = struct.Struct("!II")
EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)


class ProtocolError(Exception):
    """A frame that breaks the protocol (too big, truncated, not JSON)."""


class FrameTooLarge(ProtocolError):
    """A frame past the reader's caps; its text reads ``a 3.1 MiB message (limit 1 MiB)``."""

    def __init__(self, size: int, limit: int, part: str = "message") -> None:
        super().__init__(f"a {byte_size(size)} {part} (limit {byte_size(limit)})")
        self.size = size
        self.limit = limit


def byte_size(n: int) -> str:
    """``n`` bytes for a person: ``3.1 MiB``, ``1 MiB``, ``64 KiB``, ``900 bytes``."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            text = f"{n / scale:.1f}"
            return f"{text.removesuffix('.0')} {unit}"
    return f"{n:,} bytes"


def untrusted_text(text: str, limit: int) -> str:
    """A string a worker sent, made safe to keep, send over gRPC and store: lone surrogates
    (which no UTF-8 encoder accepts) become U+FFFD, NUL characters go, and the text is cut at
    ``limit`` characters. Showing it is the CLI's business (markup and control characters stay
    here as data)."""
    if len(text) > limit:
        text = text[:limit]
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: pairs join, the rest become U+FFFD
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text


def write_frame(stream: IO[bytes], header: dict[str, Any], payload: bytes = b"") -> None:
    """Write one frame and flush."""
    head = json.dumps(header, separators=(",", ":"), allow_nan=True).encode()
    stream.write(_HEAD.pack(len(head), len(payload)) + head + payload)
    stream.flush()


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    chunks = []
    while n:
        chunk = stream.read(n)
        if not chunk:
            raise EOFError("channel closed")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def read_frame(stream: IO[bytes], *, max_header: int = 1 << 20,
               max_payload: int = 1 << 30) -> tuple[dict[str, Any], bytes]:
    """Read one frame; raises ``EOFError`` at a clean end and ``ProtocolError`` otherwise."""
    head_len, payload_len = _HEAD.unpack(_read_exact(stream, _HEAD.size))
    if head_len > max_header:
        raise FrameTooLarge(head_len, max_header)
    if payload_len > max_payload:
        raise FrameTooLarge(payload_len, max_payload, "payload")
    try:
        header = json.loads(_read_exact(stream, head_len))
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"frame header is not JSON: {e}") from None
    if not isinstance(header, dict) or type(header.get("type")) is not str:
        raise ProtocolError("frame header must be an object with a string 'type'")
    payload = _read_exact(stream, payload_len) if payload_len else b""
    return header, payload


def encode_bars(bars: Iterable[Bar], symbol_index: dict[str, int]) -> tuple[int, bytes]:
    """Pack bars (naive datetimes) into one payload; returns ``(count, payload)``."""
    times = array("q")
    values = array("d")
    syms = array("H")
    for b in bars:
        times.append((b.time - EPOCH) // _US)
        values.extend((b.open, b.high, b.low, b.close, b.volume))
        syms.append(symbol_index[b.symbol])
    return len(times), times.tobytes() + values.tobytes() + syms.tobytes()


class _Steps(dict[int, timedelta]):
    """Microsecond gaps between bars as timedeltas, each made once (bars are mostly evenly
    spaced, so a history has a handful of distinct gaps)."""

    def __missing__(self, gap: int) -> timedelta:
        step = self[gap] = gap * _US
        return step


_STEPS = _Steps()


def decode_bars(count: int, payload: bytes, symbols: list[str]) -> list[Bar]:
    """Unpack what :func:`encode_bars` packed (a list: the caller iterates it in C).

    Every step runs in C (``map``, ``zip``, ``accumulate``): this is per bar in the worker.
    Each datetime is the previous one plus the gap, which datetime arithmetic (whole
    microseconds) makes exact.
    """
    times = array("q")
    values = array("d")
    syms = array("H")
    t_end = 8 * count
    v_end = t_end + 40 * count
    if len(payload) != v_end + 2 * count:
        raise ProtocolError(f"bar payload of {len(payload)} bytes does not hold {count} bars")
    if not count:
        return []
    times.frombytes(payload[:t_end])
    values.frombytes(payload[t_end:v_end])
    syms.frombytes(payload[v_end:])
    try:
        first = EPOCH + times[0] * _US
        stamps = accumulate(map(_STEPS.__getitem__, map(sub, islice(times, 1, None), times)),
                            add, initial=first)
        names = (repeat(symbols[0]) if len(symbols) == 1 and not any(syms)
                 else map(symbols.__getitem__, syms))
        return list(map(tuple.__new__, repeat(Bar), zip(
            names, stamps, values[0::5], values[1::5], values[2::5], values[3::5],
            values[4::5], strict=False)))  # names may be an endless repeat()
    except (OverflowError, IndexError) as e:
        raise ProtocolError(f"bar payload out of range: {e}") from None
