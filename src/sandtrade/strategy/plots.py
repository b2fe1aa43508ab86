"""``ctx.plot``: series a strategy draws beside the price, and the bounds they keep.

A strategy calls ``ctx.plot("fast", fast[0])`` on its bars; each name is a series with one
value per bar (the last written on a bar wins), drawn on the price chart (``pane="price"``)
or in a pane below it (``pane="below"``), in an optional colour. A back-test keeps them in
its result (decimated, as its price curve is) and its report draws them; a live run sends
each event's points to the host, which keeps a recent window per strategy for the dashboard.

The names and values come from untrusted code, so they are bounded where they are made and
checked again wherever they arrive: at most :data:`MAX_SERIES` series, names of at most
:data:`MAX_NAME` printable characters, finite values (``nan`` or None is Pine's ``na``: no
point on that bar), a pane of :data:`PANES` and a colour as ``#rgb``/``#rrggbb``/``#rrggbbaa``
or a plain colour name.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = ["MAX_NAME", "MAX_POINTS", "MAX_SERIES", "MAX_WIRE_BYTES", "PANES", "PlotOutbox",
           "PlotRecorder", "check_color", "check_name", "check_pane", "epoch"]

#: Series one strategy may plot.
MAX_SERIES = 16
#: Longest series name, in characters.
MAX_NAME = 40
#: Points a back-test keeps of a series: past this it keeps every other one (and then every
#: fourth...), so a series holds between half of this and this many, plus the last.
MAX_POINTS = 4000
#: What one live event's points may take in its ``done`` frame, as JSON (the frame's header
#: is capped at 1 MiB with the log's lines and ``ctx.state`` in it).
MAX_WIRE_BYTES = 64 << 10
#: JSON bytes of a point besides its name: two floats (at most 24 characters each as JSON
#: writes them), the brackets, commas and a space or two.
_POINT_WIRE = 56
#: A string as JSON writes it in a frame (escaped to ASCII).
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]
#: Where a series is drawn: on the price chart, or in a pane below it.
PANES = ("price", "below")
_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})|[a-z]{3,20}")


def check_name(name: object) -> str:
    """A series name: a string of 1 to :data:`MAX_NAME` printable characters."""
    if type(name) is not str:
        raise TypeError(f"a plot's name must be a string, got {type(name).__name__}")
    if not 1 <= len(name) <= MAX_NAME or not name.isprintable():
        raise ValueError(f"a plot's name must be 1 to {MAX_NAME} printable characters, "
                         f"got {name[:MAX_NAME + 1]!r}")
    return name


def check_pane(pane: object) -> str:
    """``price`` or ``below``."""
    if pane not in PANES:
        raise ValueError(f"pane must be 'price' or 'below', got {pane!r}")
    return pane  # type: ignore[return-value]


def check_color(color: object) -> str | None:
    """None, ``#rgb``/``#rrggbb``/``#rrggbbaa`` or a colour name of 3 to 20 letters."""
    if color is None:
        return None
    if type(color) is not str or not _COLOR.fullmatch(color):
        raise ValueError("color must be '#rgb', '#rrggbb', '#rrggbbaa' or a colour name "
                         f"such as 'orange', got {color!r}"[:200])
    return color


def check_value(value: object) -> float:
    """A plotted value: a finite number; nan (or None) for no point on this bar."""
    if value is None:
        return math.nan
    if type(value) is float:
        v: float = value  # type: ignore[assignment]
    elif type(value) is int or type(value) is bool:
        v = float(value)  # type: ignore[arg-type]
    else:
        try:
            if isinstance(value, str | bytes | bytearray):
                raise TypeError
            v = float(value)  # type: ignore[arg-type]  # a Series: its value now
        except (TypeError, ValueError):
            raise TypeError(f"a plotted value must be a number, got {type(value).__name__}"
                            ) from None
    if math.isinf(v):
        raise ValueError(f"a plotted value must be finite, got {v}")
    return v


def epoch(t: datetime) -> float:
    """Seconds since 1970 of a bar time (a time without a zone is UTC, as the bars')."""
    return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).timestamp()


@dataclass(slots=True)
class _Series:
    name: str
    pane: str
    color: str | None
    symbol: str
    bars: list[int] = field(default_factory=list)
    times: list[datetime] = field(default_factory=list)
    values: list[float] = field(default_factory=list)
    stride: int = 1
    # This bar's point, kept apart until the next bar: the last write on a bar wins.
    bar: int = -1
    time: datetime | None = None
    value: float = math.nan


class _Sink:
    """What both recorders share: the series and their bounds."""

    def __init__(self) -> None:
        self._series: dict[str, _Series] = {}

    def record(self, name: object, value: object, pane: object, color: object, symbol: str,
               bar: int, time: datetime | None) -> None:
        """Record ``value`` for series ``name`` on bar ``bar`` (its ``time``); checks all."""
        v = check_value(value)
        s = self._series.get(name) if type(name) is str else None
        if s is None:
            key = check_name(name)
            if len(self._series) >= MAX_SERIES:
                raise ValueError(f"ctx.plot: at most {MAX_SERIES} series a strategy (it plots "
                                 f"{', '.join(sorted(self._series))})"[:400])
            s = self._series[key] = _Series(key, check_pane(pane), check_color(color), symbol)
        else:
            if pane != s.pane:
                s.pane = check_pane(pane)
            if color != s.color:
                s.color = check_color(color)
        if time is None:
            raise ValueError("ctx.plot needs a bar: call it from on_bar (or a hook after one)")
        if bar != s.bar:
            self._commit(s)
            s.bar, s.time = bar, time
        s.value = v

    def _commit(self, s: _Series) -> None:
        raise NotImplementedError


class PlotRecorder(_Sink):
    """A back-test's plots: every series, decimated to at most :data:`MAX_POINTS` points."""

    def __init__(self, max_points: int = MAX_POINTS) -> None:
        super().__init__()
        self.max_points = max_points

    def _commit(self, s: _Series) -> None:
        if s.time is None or s.value != s.value or s.bar % s.stride:
            return
        s.bars.append(s.bar)
        s.times.append(s.time)
        s.values.append(s.value)
        if len(s.bars) > self.max_points:
            s.stride *= 2
            keep = [k for k, b in enumerate(s.bars) if b % s.stride == 0]
            s.bars = [s.bars[k] for k in keep]
            s.times = [s.times[k] for k in keep]
            s.values = [s.values[k] for k in keep]

    def result(self) -> list[dict[str, Any]]:
        """Every series as ``{name, pane, color, symbol, times, values}`` (the last bar's point
        included), in the order they were first plotted."""
        out = []
        for name, s in self._series.items():
            times, values = list(s.times), list(s.values)
            if s.time is not None and s.value == s.value and (not s.bars or s.bars[-1] != s.bar):
                times.append(s.time)
                values.append(s.value)
            out.append({"name": name, "pane": s.pane, "color": s.color, "symbol": s.symbol,
                        "times": times, "values": values})
        return out


class PlotOutbox(_Sink):
    """A live run's plots: the points of the current event, taken by :meth:`take` when it
    is done (a bar written again in a later event is sent again; the host keeps the last)."""

    def __init__(self) -> None:
        super().__init__()
        self._out: list[list[Any]] = []

    def _commit(self, s: _Series) -> None:
        if s.time is not None and s.value == s.value:
            self._out.append([s.name, epoch(s.time), s.value])

    @property
    def pending(self) -> bool:
        """Whether :meth:`take` may have something to send (False: it surely has not)."""
        return bool(self._series or self._out)

    def take(self, max_wire_bytes: int = MAX_WIRE_BYTES
             ) -> tuple[list[list[Any]], dict[str, list[Any]]]:
        """The points of this event as ``[name, time, value]`` (time in seconds since 1970),
        the newest that fit in ``max_wire_bytes`` of JSON (an event that plotted more, a
        lagging run catching up, sends its latest: the host keeps a window of those anyway),
        and the style of each series they name: ``{name: [pane, color, symbol]}``."""
        for s in self._series.values():
            self._commit(s)
            s.time, s.value = None, math.nan  # sent: a later write on this bar sends it again
            s.bar = -1
        out, self._out = self._out, []
        size, first = 0, len(out)
        wire = {name: len(_json_string(name)) + _POINT_WIRE for name in self._series}
        while first and size + wire[out[first - 1][0]] <= max_wire_bytes:
            first -= 1
            size += wire[out[first][0]]
        del out[:first]
        styles = {p[0]: [self._series[p[0]].pane, self._series[p[0]].color,
                         self._series[p[0]].symbol] for p in out}
        return out, styles
