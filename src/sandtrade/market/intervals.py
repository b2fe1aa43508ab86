"""Bar intervals written as people write them: ``"15min"``, ``"4h"``, ``"1d"``, ``"1w"``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Final

__all__ = ["describe_interval", "parse_interval"]

_UNITS: Final[dict[str, timedelta]] = {
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), timedelta(seconds=1)),
    **dict.fromkeys(("min", "mins", "minute", "minutes"), timedelta(minutes=1)),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), timedelta(hours=1)),
    **dict.fromkeys(("d", "day", "days"), timedelta(days=1)),
    **dict.fromkeys(("w", "wk", "wks", "week", "weeks"), timedelta(weeks=1)),
}
_SPEC: Final = re.compile(r"^\s*(\d+)?\s*([A-Za-z]+)\s*$")
_ACCEPTED: Final = "s, min, h, d or w, e.g. '30s', '15min', '4h', '1d', '1w'"


def parse_interval(spec: timedelta | str) -> timedelta:
    """Read ``"15min"``, ``"4h"``, ``"1d"``, ``"1w"`` (or a ``timedelta``) as a positive timedelta.

    Units, any case: ``s``/``sec``, ``min``/``minute``, ``h``/``hr``/``hour``, ``d``/``day``,
    ``w``/``wk``/``week``, each optionally plural; the count defaults to 1 (``"h"``). ``"m"`` is
    refused as ambiguous (minute or month); calendar months and years are not fixed lengths and
    are not supported. Raises ``ValueError`` saying what would be right.
    """
    if isinstance(spec, timedelta):
        if spec <= timedelta(0):
            raise ValueError(f"an interval must be positive, got {spec}")
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"an interval is a timedelta or a string like '4h', got {spec!r}")
    m = _SPEC.match(spec)
    if not m:
        raise ValueError(f"{spec!r} is not an interval; write a count and a unit: {_ACCEPTED}")
    count, unit = int(m[1] or 1), m[2]
    if unit in ("m", "M"):
        raise ValueError(f"{spec!r} is ambiguous: write {count}min for minutes (calendar months "
                         "are not supported)")
    base = _UNITS.get(unit.lower())
    if base is None:
        raise ValueError(f"{spec!r}: unknown unit {unit!r}; use {_ACCEPTED}")
    if count == 0:
        raise ValueError(f"an interval must be positive, got {spec!r}")
    return count * base


def describe_interval(interval: timedelta) -> str:
    """The shortest spelling of ``interval`` that :func:`parse_interval` reads back: ``"4h"``."""
    micros = interval // timedelta(microseconds=1)
    for name, unit in (("w", 7 * 86_400), ("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1)):
        if micros % (unit * 1_000_000) == 0 and micros > 0:
            return f"{micros // (unit * 1_000_000)}{name}"
    return str(interval)
