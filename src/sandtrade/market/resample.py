"""Coarser bars from finer ones: hourly to daily, minutes to hours, days to weeks.

A bucket takes the first open, the highest high, the lowest low, the last close and the summed
volume of the bars that start inside it, and is **labelled by its start**: the daily bar of
2024-01-02 covers [2024-01-02 00:00, 2024-01-03 00:00). That is what a :class:`Bar`'s ``time``
means everywhere in sandtrade, what exchanges' candle APIs and charting tools show, and pandas'
default below a week.

backtesting.py labels the other way: its ``resample_apply()`` and the ``OHLCV_AGG`` example use
``label='right'``, stamping a bucket with its *end*, so that a value aligned by time onto the
finer bars is only seen once it is known. Users who read the stamp as the bar's open find
their 22:05 bar holding 22:00-22:04 (backtesting.py issue #1243). Here look-ahead is prevented
by *when* a bucket is yielded, not by its label: only once complete (below). Code that aligns
coarse bars onto fine ones by time must use ``bar.time + interval``, the moment it closes.

Buckets are aligned to the UNIX epoch, 1970-01-01 00:00, so days start at midnight and 4-hour
buckets at 00:00, 04:00, ...; whole-week intervals are aligned to a Monday (1969-12-29), so
weeks run Monday to Sunday.

A bucket is yielded as soon as it is known to be complete: when its last input interval has
been seen, otherwise when the first bar of a later bucket arrives, and the last bucket at the
end of the input, even if partial. The first and last buckets may be partial when the input
starts or stops inside them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from itertools import chain, islice, pairwise
from typing import Final

from sandtrade.errors import DataError
from sandtrade.market.intervals import describe_interval, parse_interval
from sandtrade.models import Bar

__all__ = ["resample"]

_EPOCH: Final = datetime(1970, 1, 1)
_MONDAY: Final = datetime(1969, 12, 29)
_WEEK: Final = timedelta(weeks=1)
_INFER_FROM: Final = 64  # bars looked at to infer the input interval


def resample(bars: Iterable[Bar], interval: timedelta | str, *,
             source_interval: timedelta | str | None = None) -> Iterator[Bar]:
    """Aggregate time-ordered bars of one symbol into bars of ``interval``, labelled by start.

    ``interval`` is a ``timedelta`` or a string such as ``"15min"``, ``"4h"``, ``"1d"``,
    ``"1w"``. ``source_interval`` is the input bars' interval; by default it is the smallest
    gap between the first 64 bars. ``interval`` must be a whole multiple of it, and each input
    bar must fit inside one bucket (hourly bars starting at :30 do not fit 2-hour buckets).
    Streams: memory stays constant, and each bucket is yielded once complete (see the module
    docstring). Raises ``ValueError`` for a malformed interval, and
    :class:`~sandtrade.errors.DataError` for an interval that does not fit the input or input
    that is not sorted, mixes symbols or carries time zones.
    """
    step = parse_interval(interval)
    source = parse_interval(source_interval) if source_interval is not None else None
    if source is not None:
        _check_fits(step, source, inferred=False)
    return _resample(iter(bars), step, source)


def _check_fits(step: timedelta, source: timedelta, *, inferred: bool) -> None:
    if step % source == timedelta(0):
        return
    src = describe_interval(source)
    how = f" (inferred from the gaps between the first {_INFER_FROM} bars)" if inferred else ""
    if step < source:
        raise DataError(f"cannot resample {src} bars{how} to {describe_interval(step)}: the "
                        "target interval must be coarser than the input, a whole multiple of it")
    raise DataError(f"cannot resample {src} bars{how} to {describe_interval(step)}: the target "
                    f"interval must be a whole multiple of {src}")


def _resample(bars: Iterator[Bar], step: timedelta, source: timedelta | None) -> Iterator[Bar]:
    inferred = source is None
    if source is None:
        head = list(islice(bars, _INFER_FROM))
        gaps = [b.time - a.time for a, b in pairwise(head) if b.time > a.time]
        if gaps:
            source = min(gaps)
            _check_fits(step, source, inferred=True)
        bars = chain(head, bars)
    origin = _MONDAY if step % _WEEK == timedelta(0) else _EPOCH

    symbol = ""
    prev: datetime | None = None
    key: int | None = None
    start = origin
    o = h = lo = c = v = 0.0
    open_bucket = False
    for bar in bars:
        t = bar.time
        if prev is None:
            symbol = bar.symbol
            if t.tzinfo is not None:
                raise DataError(f"resample: bar {bar.symbol} {t} has a time zone; resample "
                                "works on naive times (the CSV loader gives naive UTC)")
        elif t <= prev:
            raise DataError(f"resample: bars must be in ascending time order; {bar.symbol} {t} "
                            f"follows {prev}")
        elif bar.symbol != symbol:
            raise DataError(f"resample: one symbol at a time; got {bar.symbol!r} after "
                            f"{symbol!r}")
        elif source is not None and t - prev < source:
            how = (f" (inferred from the first {_INFER_FROM} bars; pass source_interval)"
                   if inferred else "")
            raise DataError(
                f"resample: bars {prev} and {t} are {describe_interval(t - prev)} apart, less "
                f"than the input interval {describe_interval(source)}{how}"
            )
        k, offset = divmod(t - origin, step)
        if source is not None and offset + source > step:
            bucket = origin + k * step
            raise DataError(
                f"resample: the {describe_interval(source)} bar at {t} does not fit in the "
                f"{describe_interval(step)} bucket {bucket} - {bucket + step}; bucket edges "
                "fall on multiples of the interval from midnight (Monday for weeks)"
            )
        if k != key or not open_bucket:
            if open_bucket:
                yield Bar(symbol, start, o, h, lo, c, v)
            key, start = k, origin + k * step
            o, h, lo, c, v = bar.open, bar.high, bar.low, bar.close, bar.volume
            open_bucket = True
        else:
            if bar.high > h:
                h = bar.high
            if bar.low < lo:
                lo = bar.low
            c = bar.close
            v += bar.volume
        if source is not None and offset + source == step:  # the bucket's last bar: complete
            yield Bar(symbol, start, o, h, lo, c, v)
            open_bucket = False
        prev = t
    if open_bucket:
        yield Bar(symbol, start, o, h, lo, c, v)
