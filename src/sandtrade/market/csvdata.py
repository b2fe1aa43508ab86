"""OHLCV history from CSV files: the files backtesting.py, Yahoo Finance and pandas write.

The format is a header row naming the columns, then one bar per row, oldest first:

- a time column named ``Date``, ``Time``, ``Datetime``, ``Timestamp`` or a variant of these
  (``Date-Time``, ``date_time``, ``TIMESTAMP``; case, spaces, ``-`` and ``_`` do not matter).
  An unnamed first column is the time column when no column is named so: that is how pandas
  writes a DataFrame's index, and how backtesting.py's sample files start (``,Open,High,...``).
  A file with both a ``Date`` and a ``Time`` column (``2024-01-02,09:30``) has them joined;
- ``Open``, ``High``, ``Low`` and ``Close``, any case, and an optional ``Volume`` (0 when absent);
- any other column (Yahoo's ``Adj Close``, dividends, indicators) is ignored, in any order.

Times may be ISO 8601 dates or date-times (``2004-08-19``, ``2004-08-19 09:30:00``,
``2004-08-19T09:30:00Z``, ``...+02:00``) or UNIX epoch numbers. Times come out *naive*: a
naive timestamp is kept as it is (local exchange time, whatever the file meant); one with a UTC
offset is converted to UTC and the offset dropped, so ``09:30-05:00`` becomes ``14:30``. A file
must not mix the two. Epoch numbers are UTC; their unit is told by magnitude: below 1e11
seconds, below 1e14 milliseconds, below 1e17 microseconds, nanoseconds above (each covers at
least 1973 to 2200; a value outside 1900-2200 in every unit is an error).

A UTF-8 byte-order mark, CRLF line ends, blank lines and all-empty rows (``,,,,``, left by
spreadsheets) are accepted. The delimiter is a comma, or a semicolon or tab when the header
row holds no comma.

Rows whose price cells all read ``null`` are how Yahoo Finance marks a day without trading
data; they are skipped, and one :class:`DataWarning` at the end of the file says how many and
on which lines. Anything else that is not a sane bar is a :class:`~sandtrade.errors.DataError`
whose message names the file (as the caller spelled the path), the 1-based line and the column,
for example ``GOOG.csv:17: column 'Close': 'abc' is not a number``.

Rows are parsed with the ``csv`` module and checked with plain comparisons; only a row that
fails them takes the slow path that works out what exactly is wrong.
"""

from __future__ import annotations

import csv
import math
import os
import re
import warnings
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from itertools import chain, islice
from pathlib import Path
from typing import Final

from sandtrade.errors import DataError
from sandtrade.models import Bar

__all__ = ["DataWarning", "iter_csv", "load_csv", "write_csv"]

StrPath = str | os.PathLike[str]


class DataWarning(UserWarning):
    """Market data loaded, but something in it was skipped or is worth a look."""


# Header names are compared after lower-casing and dropping spaces, "-" and "_".
_TIME_NAMES: Final = frozenset({"date", "time", "datetime", "timestamp"})
_PRICE_NAMES: Final = ("open", "high", "low", "close")
_EXAMPLE_HEADER: Final = "Date,Open,High,Low,Close,Volume"
_INF: Final = math.inf
_EPOCH: Final = datetime(1970, 1, 1)
_DECIMAL_COMMA: Final = re.compile(r"^\s*[+-]?\d+,\d+\s*$")
_THOUSANDS: Final = re.compile(r"^\s*[+-]?\d{1,3}(,\d{3})+(\.\d*)?\s*$")
_new_bar: Final = tuple.__new__  # Bar(...) without NamedTuple's Python-level __new__


def _normalise(name: str) -> str:
    return re.sub(r"[\s_\-]", "", name).lower()


class _Layout:
    """Where each field sits in the rows of one file, and how to name its columns in errors."""

    def __init__(self, where: str, header: list[str], line: int) -> None:
        self.where = where
        self.line = line
        self.header = header
        names = [_normalise(h) for h in header]
        self.index: dict[str, int] = {}
        for i, name in enumerate(names):
            if name in _TIME_NAMES or name in _PRICE_NAMES or name == "volume":
                if name in self.index:
                    raise DataError(
                        f"{where}:{line}: column {header[i]!r} appears twice (columns "
                        f"{self.index[name] + 1} and {i + 1}); keep one of them"
                    )
                self.index[name] = i
        missing = [n.capitalize() for n in _PRICE_NAMES if n not in self.index]
        if missing:
            listed = ", ".join(repr(h) for h in header)
            hint = ""
            if _looks_like_time(header[0]):
                hint = ("; the first row looks like data: add a header row such as "
                        f"{_EXAMPLE_HEADER}")
            raise DataError(
                f"{where}:{line}: missing required column{'s' if len(missing) > 1 else ''} "
                f"{', '.join(repr(m) for m in missing)} (any case); the header has: {listed}{hint}"
            )
        self.time_cols = self._time_columns(names)
        self.ncols = max(self.index.values(), default=0) + 1
        self.price_cols = [self.index[n] for n in _PRICE_NAMES]
        self.volume_col = self.index.get("volume")

    def _time_columns(self, names: list[str]) -> tuple[int, ...]:
        present = [n for n in ("date", "time", "datetime", "timestamp") if n in self.index]
        if present == ["date", "time"]:
            return (self.index["date"], self.index["time"])
        if len(present) == 1:
            return (self.index[present[0]],)
        if len(present) > 1:
            cols = ", ".join(repr(self.header[self.index[n]]) for n in present)
            raise DataError(
                f"{self.where}:{self.line}: more than one time column ({cols}); keep one of them "
                "(or exactly 'Date' and 'Time', which are joined)"
            )
        if names and names[0] == "":
            return (0,)
        listed = ", ".join(repr(h) for h in self.header)
        raise DataError(
            f"{self.where}:{self.line}: no time column: name one Date, Time, Datetime or Timestamp "
            f"(any case), or leave the first header cell empty; the header has: {listed}"
        )

    def label(self, col: int) -> str:
        """How an error names column ``col`` (0-based): its header, or its position if unnamed."""
        name = self.header[col] if col < len(self.header) else ""
        return f"column {name!r}" if name.strip() else f"column {col + 1} (unnamed)"

    @property
    def time_label(self) -> str:
        """How an error names the time column(s)."""
        if len(self.time_cols) == 2:
            d, t = self.time_cols
            return f"columns {self.header[d]!r} and {self.header[t]!r}"
        return self.label(self.time_cols[0])


# --------------------------------------------------------------------------- timestamps


def _looks_like_time(text: str) -> bool:
    try:
        _parse_time_any(text)
    except ValueError:
        return False
    return True


def _epoch_time(text: str) -> datetime:
    """A UNIX epoch number (s, ms, µs or ns by magnitude) as a naive UTC datetime."""
    s = text.strip()
    value: int | float
    try:
        value = int(s)
    except ValueError:
        value = float(s)  # ValueError propagates: not a number at all
        if not math.isfinite(value):
            raise ValueError(f"{text!r} is not a time") from None
    magnitude = abs(value)
    try:
        if magnitude < 1e11:
            t = _EPOCH + timedelta(seconds=value)
        elif magnitude < 1e14:
            t = _EPOCH + timedelta(milliseconds=value)
        elif magnitude < 1e17:
            t = _EPOCH + timedelta(microseconds=value)
        else:  # nanoseconds, as pandas writes them; a datetime holds microseconds
            t = _EPOCH + timedelta(microseconds=value // 1000 if isinstance(value, int)
                                   else value / 1000)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range") from None
    if not 1900 <= t.year <= 2200:
        raise ValueError(f"{text!r} is out of range")
    return t


def _aware_to_utc(t: datetime) -> datetime:
    offset = t.utcoffset()
    return (t - offset if offset else t).replace(tzinfo=None)


def _parse_time_any(text: str) -> tuple[datetime, str]:
    """Parse any supported time; returns ``(naive time, kind)`` with kind iso/aware/epoch."""
    s = text.strip()
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        return _epoch_time(s), "epoch"
    if t.tzinfo is None:
        return t, "iso"
    return _aware_to_utc(t), "aware"


def _iso_aware(text: str) -> datetime:
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        raise ValueError("naive")
    return _aware_to_utc(t)


_TIME_PARSERS: Final[dict[str, Callable[[str], datetime]]] = {
    "iso": datetime.fromisoformat,  # a naive result is checked in the loop, inline
    "aware": _iso_aware,
    "epoch": _epoch_time,
}

_KIND_WORDS: Final = {
    "iso": "an ISO time without a UTC offset",
    "aware": "an ISO time with a UTC offset",
    "epoch": "a UNIX epoch number",
}


# --------------------------------------------------------------------------- the slow path


class _Skip(Exception):
    """Raised by the slow path for a row that is no error but no bar either."""

    def __init__(self, null: bool) -> None:
        super().__init__()
        self.null = null


def _number_problem(cell: str) -> str | None:
    """Why ``cell`` is not a usable number, or None when it is one."""
    try:
        value = float(cell)
    except ValueError:
        text = cell.strip()
        if not text:
            return "the cell is empty"
        if text.lower() in ("null", "none", "nan", "na", "n/a", "-"):
            return f"{cell!r} is not a number (a missing value)"
        if _THOUSANDS.match(text):
            return f"{cell!r} is not a number (remove the thousands separators)"
        if _DECIMAL_COMMA.match(text):
            return (f"{cell!r} is not a number (a decimal comma? the decimal separator must "
                    f"be a point: {text.replace(',', '.')!r})")
        return f"{cell!r} is not a number"
    if not math.isfinite(value):
        return f"{cell!r} is not a finite number"
    return None


def _parse_row_slowly(layout: _Layout, row: list[str], line: int, kind: str | None,
                      symbol: str) -> tuple[Bar, str]:
    """Parse a row the fast path refused: the bar and its kind of time, or the exact error.

    Raises :class:`_Skip` for blank rows and Yahoo's all-'null' rows, and
    :class:`~sandtrade.errors.DataError` naming the line and the column for anything else.
    """
    where = f"{layout.where}:{line}"
    if not any(cell.strip() for cell in row):
        raise _Skip(null=False)
    if len(row) < layout.ncols:
        cells = f"{len(row)} cell{'' if len(row) == 1 else 's'}"
        raise DataError(f"{where}: the row has {cells} but the header has "
                        f"{len(layout.header)} ({layout.label(len(row))} is missing)")
    value_cols = list(layout.price_cols)
    if layout.volume_col is not None:
        value_cols.append(layout.volume_col)
    if all(row[c].strip().lower() == "null" for c in value_cols):
        raise _Skip(null=True)

    time_text = " ".join(row[c].strip() for c in layout.time_cols)
    try:
        t, row_kind = _parse_time_any(time_text)
    except ValueError:
        raise DataError(
            f"{where}: {layout.time_label}: {time_text!r} is not a time (expected an ISO date "
            "or date-time such as 2004-08-19 or 2004-08-19 09:30:00[+00:00], or UNIX epoch "
            "seconds or milliseconds)"
        ) from None
    if kind is not None and row_kind != kind:
        raise DataError(
            f"{where}: {layout.time_label}: {time_text!r} is {_KIND_WORDS[row_kind]}, but the "
            f"first bar's time is {_KIND_WORDS[kind]}; one file must use one kind of time"
        )
    for c in value_cols:
        problem = _number_problem(row[c])
        if problem:
            raise DataError(f"{where}: {layout.label(c)}: {problem}")
    values = [float(row[c]) for c in value_cols]
    try:
        return Bar.checked(symbol, t, *values), row_kind
    except ValueError as e:
        raise DataError(f"{where}: {e}") from None


def _order_error(layout: _Layout, line: int, t: datetime, prev: datetime, prev_line: int,
                 count: int) -> DataError:
    where = f"{layout.where}:{line}: {layout.time_label}"
    if t == prev:
        return DataError(f"{where}: duplicate time {t}, already on line {prev_line}; "
                         "each bar needs its own time")
    hint = " (the file looks newest first: reverse its rows)" if count == 1 else ""
    return DataError(f"{where}: {t} is earlier than {prev} on line {prev_line}; rows must be "
                     f"in ascending time order, oldest first{hint}")


# --------------------------------------------------------------------------- reading


def _read_header(f: Iterator[str], where: str) -> tuple[_Layout, str, int]:
    """The layout, the delimiter and the number of lines up to and including the header."""
    lines = 0
    for first in f:
        lines += 1
        if first.strip():
            break
    else:
        raise DataError(f"{where}: the file is empty; expected a header row such as "
                        f"{_EXAMPLE_HEADER}, then one bar per row")
    delimiter = ","
    if "," not in first and (";" in first or "\t" in first):
        delimiter = ";" if first.count(";") >= first.count("\t") else "\t"
    header = next(csv.reader([first], delimiter=delimiter))
    return _Layout(where, [h.strip() for h in header], lines), delimiter, lines


def iter_csv(path: StrPath, symbol: str | None = None) -> Iterator[Bar]:
    """Stream the bars of a CSV file, oldest first, checking each as it is read.

    ``symbol`` defaults to the file name's stem upper-cased (``goog.csv`` -> ``GOOG``). The file
    is opened when iteration starts and closed when it ends; memory does not grow with the file.
    Raises :class:`~sandtrade.errors.DataError` (``file:line: column 'X': ...``) at the first
    row that is not a sane bar, and at the end when the file held no bar at all; warns with a
    :class:`DataWarning` when Yahoo 'null' rows were skipped. The format is described in the
    module docstring.
    """
    where = os.fspath(path)
    sym = symbol if symbol is not None else Path(where).stem.upper()
    if not sym:
        raise ValueError("symbol must not be empty")
    return _iter_csv(where, sym)


def load_csv(path: StrPath, symbol: str | None = None) -> list[Bar]:
    """Read every bar of a CSV file into a list; see :func:`iter_csv` for format and errors."""
    return list(iter_csv(path, symbol))


def _iter_csv(where: str, symbol: str) -> Iterator[Bar]:
    try:
        f = open(where, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed below
    except OSError as e:
        raise DataError(f"{where}: cannot open the file: {e.strerror or e}") from e
    with f:
        try:
            yield from _read_rows(f, where, symbol)
        except UnicodeDecodeError as e:
            raise DataError(f"{where}: not UTF-8 text (byte 0x{e.object[e.start]:02x}); "
                            "save the file as UTF-8 CSV") from None
        except csv.Error as e:
            raise DataError(f"{where}: not a readable CSV file: {e}") from None


def _read_rows(f: Iterator[str], where: str, symbol: str) -> Iterator[Bar]:
    layout, delimiter, header_lines = _read_header(f, where)
    reader = csv.reader(f, delimiter=delimiter)
    rows: Iterable[list[str]] = reader
    time_col = layout.time_cols[0]
    if len(layout.time_cols) == 2:
        # Separate Date and Time columns: append the joined text as the last cell.
        d, tm, ncols = *layout.time_cols, layout.ncols
        rows = ([*r, f"{r[d]} {r[tm]}"] if len(r) >= ncols else r for r in reader)
        time_col = -1
    io, ih, il, ic = layout.price_cols
    iv = layout.volume_col
    has_volume = iv is not None
    vcol = iv if iv is not None else 0
    kind: str | None = None
    parse_time: Callable[[str], datetime] = datetime.fromisoformat
    prev = datetime.min
    prev_line = 0
    count = 0
    null_count = 0
    null_lines: list[int] = []  # the first few, for the warning
    inf = _INF
    new, bar_cls = _new_bar, Bar

    for row in rows:
        try:
            t = parse_time(row[time_col])
            o = float(row[io])
            h = float(row[ih])
            lo = float(row[il])
            c = float(row[ic])
            v = float(row[vcol]) if has_volume else 0.0
            ok = (t.tzinfo is None and 0.0 < lo <= o <= h < inf and lo <= c <= h
                  and 0.0 <= v < inf)
        except (ValueError, IndexError):
            ok = False
        if not ok:
            line = reader.line_num + header_lines
            try:
                bar, row_kind = _parse_row_slowly(layout, row, line, kind, symbol)
            except _Skip as skip:
                if skip.null:
                    null_count += 1
                    if null_count <= 5:
                        null_lines.append(line)
                continue
            if kind is None:
                kind, parse_time = row_kind, _TIME_PARSERS[row_kind]
            _, t, o, h, lo, c, v = bar
        elif kind is None:
            kind = "iso"
        if t <= prev:
            raise _order_error(layout, reader.line_num + header_lines, t, prev, prev_line, count)
        prev = t
        prev_line = reader.line_num + header_lines
        count += 1
        yield new(bar_cls, (symbol, t, o, h, lo, c, v))

    if count == 0:
        why = (f"all {null_count} data rows are 'null'" if null_count
               else "the header is not followed by any data rows")
        raise DataError(f"{where}:{header_lines}: no bars: {why}")
    if null_count:
        n = null_count
        shown = ", ".join(map(str, null_lines)) + (", ..." if n > 5 else "")
        s = "s" if n > 1 else ""
        warnings.warn(
            f"{where}: skipped {n} row{s} whose prices are all 'null' (Yahoo Finance marks "
            f"days without data so): line{s} {shown}", DataWarning, stacklevel=3)


# --------------------------------------------------------------------------- writing


def write_csv(bars: Iterable[Bar], path: StrPath) -> int:
    """Write bars to a CSV file that :func:`iter_csv` reads back identically; returns the count.

    The header is ``Date,Open,High,Low,Close,Volume`` with dates alone (``2004-08-19``) when the
    first two bars both start at midnight, as daily files have it, and otherwise
    ``Datetime,...`` with ``2004-08-19 09:30:00`` (Yahoo Finance's names for the two).
    Prices are written with ``repr``, which reads back to the identical float; a whole volume
    is written without a fraction. All bars must share one symbol: a file has no symbol column.
    """
    it = iter(bars)
    head = list(islice(it, 2))
    daily = bool(head) and all(b.time.hour == b.time.minute == b.time.second
                               == b.time.microsecond == 0 for b in head)
    symbol = head[0].symbol if head else None
    count = 0
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(("Date" if daily else "Datetime") + ",Open,High,Low,Close,Volume\n")
        for bar in chain(head, it):
            if bar.symbol != symbol:
                raise ValueError(f"write_csv: bars of {symbol!r} and {bar.symbol!r} in one file; "
                                 "write one file per symbol")
            t = bar.time
            stamp = (t.date().isoformat() if daily and not (t.hour or t.minute or t.second
                                                            or t.microsecond)
                     else t.isoformat(" "))
            v = float(bar.volume)
            vol = repr(int(v)) if v.is_integer() else repr(v)
            # float() first: numpy scalars would repr as "np.float64(...)"
            f.write(f"{stamp},{float(bar.open)!r},{float(bar.high)!r},{float(bar.low)!r},"
                    f"{float(bar.close)!r},{vol}\n")
            count += 1
    return count
