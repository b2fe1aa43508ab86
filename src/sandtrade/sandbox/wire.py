"""The host <-> worker channel: length-prefixed frames of JSON plus an optional binary payload.

A frame is ``!II`` (header length, payload length), the UTF-8 JSON header, then the payload.
Bars travel as binary payloads (epoch microseconds as int64, OHLCV as float64, a symbol index
as uint16), so a 200,000-bar history crosses the pipe in a few hundred milliseconds.
Everything read from a worker is untrusted: sizes are capped and JSON is validated by the
reader. A JSON value that crosses the boundary as data (a strategy's ``ctx.state``) is checked
on both sides by :func:`check_json`: bounded in depth and size, walked without recursion.
Every string a worker wrote that the host keeps or shows (a log line, an error, a reason)
passes :func:`untrusted_text` first.
"""

from __future__ import annotations

import json
import math
import re
import struct
from array import array
from collections.abc import Iterable
from datetime import datetime, timedelta
from itertools import accumulate, islice, repeat
from operator import add, sub
from typing import IO, Any

from sandtrade.models import Bar

__all__ = [
    "JSON_DEPTH",
    "POSTED_CALLS",
    "FrameReader",
    "FrameTooLarge",
    "ProtocolError",
    "RepeatedHeaders",
    "check_json",
    "check_json_text",
    "decode_bars",
    "encode_bars",
    "frame_bytes",
    "json_depth",
    "read_frame",
    "untrusted_text",
    "write_frame",
]

_HEAD = struct.Struct("!II")
#: The calls a live worker posts: it sends them and goes on without waiting for an answer
#: (``{"type": "call", "op": ..., "args": ..., "post": 1, "at": LINES}``, see
#: :mod:`sandtrade.sandbox.worker.live_task`); every other call is answered with a ``reply``.
POSTED_CALLS = frozenset({"submit", "close"})
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


def frame_bytes(header: dict[str, Any], payload: bytes = b"") -> bytes:
    """One frame as it crosses the pipe."""
    head = json.dumps(header, separators=(",", ":"), allow_nan=True).encode()
    return _HEAD.pack(len(head), len(payload)) + head + payload


def write_frame(stream: IO[bytes], header: dict[str, Any], payload: bytes = b"") -> None:
    """Write one frame and flush."""
    stream.write(frame_bytes(header, payload))
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
    head, payload = _read_parts(stream, max_header, max_payload)
    return _header(head), payload


def _read_parts(stream: IO[bytes], max_header: int = 1 << 20, max_payload: int = 1 << 30
                ) -> tuple[bytes, bytes]:
    """One frame's header bytes and payload, the caps checked (one read for both: this runs
    per bar in a worker)."""
    head_len, payload_len = _sizes(_read_exact(stream, _HEAD.size), 0, max_header,
                                   max_payload)
    body = _read_exact(stream, head_len + payload_len)
    if not payload_len:
        return body, b""
    return body[:head_len], body[head_len:]


class RepeatedHeaders:
    """:func:`read_frame` for a worker's event loop, where the host sends the same header
    byte for byte again and again (every plain bar's): a header equal to the last one read is
    not parsed again, and the frames it returns share that dict, which callers only read."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._last: tuple[bytes, dict[str, Any]] = (b"", {})

    def read(self) -> tuple[dict[str, Any], bytes]:
        """The next frame; raises as :func:`read_frame`."""
        head, payload = _read_parts(self._stream)
        last_head, last = self._last
        if head != last_head:
            last = _header(head)
            self._last = (head, last)
        return last, payload


def _sizes(data: bytes | bytearray, at: int, max_header: int,
           max_payload: int) -> tuple[int, int]:
    head_len, payload_len = _HEAD.unpack_from(data, at)
    if head_len > max_header:
        raise FrameTooLarge(head_len, max_header)
    if payload_len > max_payload:
        raise FrameTooLarge(payload_len, max_payload, "payload")
    return head_len, payload_len


def _header(text: bytes | bytearray) -> dict[str, Any]:
    try:
        # UTF-8, as the worker writes it: json.loads would first guess among UTF-8, -16
        # and -32 in Python (about 2 % of the host's time at 100 strategies).
        header = json.loads(text.decode("utf-8", "surrogatepass"))
    except (ValueError, UnicodeDecodeError) as e:
        raise ProtocolError(f"frame header is not JSON: {e}") from None
    except RecursionError:
        raise ProtocolError("frame header is nested too deep to read") from None
    if not isinstance(header, dict) or type(header.get("type")) is not str:
        raise ProtocolError("frame header must be an object with a string 'type'")
    return header


class FrameReader:
    """Frames cut from bytes as they arrive (reads that never block), with the caps and the
    errors of :func:`read_frame`: a size over a cap is refused as soon as the 8 bytes that
    say it are in, a header that is not JSON as soon as it is complete."""

    def __init__(self, *, max_header: int = 1 << 20, max_payload: int = 1 << 30) -> None:
        self.max_header = max_header
        self.max_payload = max_payload
        self._buf = bytearray()
        self._at = 0
        self._next: tuple[int, int, dict[str, Any] | None] | None = None

    def feed(self, data: bytes) -> None:
        if self._at:
            del self._buf[:self._at]
            self._at = 0
        self._buf += data

    @property
    def buffered(self) -> int:
        """Bytes received and not yet taken as frames."""
        return len(self._buf) - self._at

    def next(self) -> tuple[dict[str, Any], bytes] | None:
        """The next complete frame, or None until more bytes come; raises
        :class:`ProtocolError`."""
        buf, at = self._buf, self._at
        if self._next is None:
            if len(buf) - at < _HEAD.size:
                return None
            head_len, payload_len = _sizes(buf, at, self.max_header, self.max_payload)
            self._next = (head_len, payload_len, None)
        head_len, payload_len, header = self._next
        start = at + _HEAD.size
        if header is None:
            if len(buf) < start + head_len:
                return None
            header = _header(bytes(buf[start:start + head_len]))
            self._next = (head_len, payload_len, header)
        end = start + head_len + payload_len
        if len(buf) < end:
            return None
        payload = bytes(buf[start + head_len:end]) if payload_len else b""
        self._next = None
        self._at = end
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
#: One bar as :func:`encode_bars` packs it (the arrays' native byte order, no padding).
_ONE_BAR = struct.Struct("=q5dH")


def decode_bars(count: int, payload: bytes, symbols: list[str]) -> list[Bar]:
    """Unpack what :func:`encode_bars` packed (a list: the caller iterates it in C).

    Every step runs in C (``map``, ``zip``, ``accumulate``): this is per bar in the worker.
    Each datetime is the previous one plus the gap, which datetime arithmetic (whole
    microseconds) makes exact.
    """
    if count == 1 and len(payload) == _ONE_BAR.size:  # a live bar: one unpack, no arrays
        t, o, h, lo, c, v, k = _ONE_BAR.unpack(payload)
        try:
            return [Bar(symbols[k], EPOCH + t * _US, o, h, lo, c, v)]
        except (OverflowError, IndexError) as e:
            raise ProtocolError(f"bar payload out of range: {e}") from None
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


# ------------------------------------------------------------------ bounded JSON values

#: How deeply a JSON value from a worker (``ctx.state``) may nest, unless a caller says.
JSON_DEPTH = 32
#: Path segments shown in an error before the rest is elided with "…".
_PATH_SHOWN = 8
_INT_MIN, _INT_MAX = -(1 << 63), (1 << 63) - 1
#: A string literal of JSON text (the scanner's own extent of a string: to the first
#: unescaped quote), in the unrolled form that matches in linear time.
_STRING_RE = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')
_NOT_BRACKET_RE = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def _path(root: str, segments: tuple[str, ...]) -> str:
    if len(segments) > _PATH_SHOWN:
        return root + "".join(segments[:_PATH_SHOWN]) + "…"
    return root + "".join(segments)


def _key_segment(key: str) -> str:
    return f"[{key if len(key) <= 40 else key[:40] + '…'!r}]"


def check_json(value: object, *, where: str = "value", max_depth: int = JSON_DEPTH,
               max_bytes: int) -> str:
    """The canonical JSON text of ``value`` (sorted keys, compact, ASCII), once it is known
    to be a plain JSON value no deeper than ``max_depth`` containers and no longer than
    ``max_bytes`` bytes.

    Plain means dicts with string keys, lists (tuples are written as lists), strings, finite
    floats, ints within the signed 64-bit range, booleans and None, of exactly those types (a
    subclass could encode otherwise than it was checked; dict subclasses are read as dicts).
    The walk keeps its own stack, so no value can exhaust the interpreter's recursion limit,
    and it stops as soon as the size is sure to exceed ``max_bytes`` (a lower bound is kept as
    it goes), so a huge value costs little to refuse. Raises :class:`ValueError` naming the
    spot, as in ``ctx.state['a'][0]…: nested deeper than 32``.
    """
    if type(value) is dict and not value and max_bytes >= 2:  # most strategies' every event
        return "{}"
    # What gets encoded is a copy made of plain containers holding exactly what was checked.
    root: list[object] = [None]
    # (the item, the container its copy goes into, the slot there, its depth, its path)
    stack: list[tuple[object, Any, Any, int, tuple[str, ...]]] = [(value, root, 0, 0, ())]
    size = 0  # a lower bound of the encoding's length so far

    def too_big() -> ValueError:
        return ValueError(f"{where}: larger than the limit of {max_bytes:,} bytes as JSON")

    while stack:
        item, into, slot, depth, path = stack.pop()
        kind = type(item)
        copy: object = item
        if kind is str:
            size += len(item) + 2  # type: ignore[arg-type]
        elif item is None or kind is bool:
            size += 4
        elif kind is int:
            if not _INT_MIN <= item <= _INT_MAX:  # type: ignore[operator]
                raise ValueError(f"{_path(where, path)}: the integer is outside the signed "
                                 "64-bit range (store a big number as a string)")
            size += 1
        elif kind is float:
            if not math.isfinite(item):  # type: ignore[arg-type]
                raise ValueError(f"{_path(where, path)}: {item!r} is not a JSON number")
            size += 1
        elif isinstance(item, dict) or kind is list or kind is tuple:
            if depth >= max_depth:
                raise ValueError(f"{_path(where, path)}: nested deeper than {max_depth}")
            n = len(item)  # type: ignore[arg-type]
            # Brackets and commas, and at least one byte a value ('"k":' more for a key).
            size += 1 + 2 * n + (3 * n if isinstance(item, dict) else 0) if n else 2
            if size > max_bytes:
                raise too_big()
            if isinstance(item, dict):
                d: dict[str, object] = {}
                copy = d
                for key, sub in dict.items(item):
                    if type(key) is not str:
                        raise ValueError(f"{_path(where, path)}: the key {key!r:.60} "
                                         f"({type(key).__name__}) is not a string")
                    d[key] = None
                    size += len(key)
                    stack.append((sub, d, key, depth + 1, (*path, _key_segment(key))))
            else:
                elems = list(item)  # type: ignore[call-overload]
                copy = [None] * n
                stack.extend((sub, copy, k, depth + 1, (*path, f"[{k}]"))
                             for k, sub in enumerate(elems))
            size -= n  # each value adds its own size when it is taken from the stack
        else:
            raise ValueError(f"{_path(where, path)}: {kind.__name__} is not a JSON value "
                             "(use dicts with string keys, lists, strings, numbers, "
                             "booleans, None)")
        into[slot] = copy
        if size > max_bytes:
            raise too_big()
    text = json.dumps(root[0], sort_keys=True, separators=(",", ":"), allow_nan=False)
    if len(text) > max_bytes:  # ASCII: one byte a character
        raise ValueError(f"{where}: {len(text):,} bytes as JSON, over the limit of "
                         f"{max_bytes:,} bytes")
    return text


def check_json_text(text: object, *, where: str = "value", max_depth: int = JSON_DEPTH,
                    max_bytes: int) -> str:
    """:func:`check_json` for JSON text from the other side (untrusted): its canonical form.

    The cheap refusals come first (not a string, longer than ``max_bytes``, nested deeper
    than ``max_depth`` as read by :func:`json_depth`), so that nothing too deep or too large
    ever reaches :func:`json.loads`. Raises :class:`ValueError` naming what is wrong."""
    if type(text) is not str:
        raise ValueError(f"{where}: came as a {type(text).__name__}, not JSON text")
    if len(text) > max_bytes:  # canonical text is ASCII: a byte a character
        raise ValueError(f"{where}: {len(text):,} characters of JSON, over the limit of "
                         f"{max_bytes:,} bytes")
    if json_depth(text) > max_depth:
        raise ValueError(f"{where}: nested deeper than {max_depth}")
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{where}: not JSON text ({e})") from None
    return check_json(value, where=where, max_depth=max_depth, max_bytes=max_bytes)


def json_depth(text: str) -> int:
    """How deeply the arrays and objects of JSON ``text`` nest, read without parsing it (in C:
    string literals removed, then a running sum over the brackets left), so that text too deep
    to parse safely is refused before :func:`json.loads` sees it."""
    brackets = _NOT_BRACKET_RE.sub("", _STRING_RE.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)
