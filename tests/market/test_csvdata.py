"""CSV history: files as exported load as they are; a bad file says file:line: column."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from sandtrade.errors import DataError
from sandtrade.market import DataWarning, gbm_bars, iter_csv, load_csv, write_csv
from sandtrade.models import Bar

WriteFile = Callable[..., Path]

GOOD = ("Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9,10.5,100\n"
        "2024-01-03,10.5,12,10,11,200\n")


def error_of(path: Path | str, symbol: str | None = None) -> str:
    """The message of the DataError that loading ``path`` raises."""
    with pytest.raises(DataError) as info:
        load_csv(path, symbol)
    return str(info.value)


# --------------------------------------------------------------------------- files as exported


@pytest.mark.parametrize(
    ("name", "rows", "first", "last"),
    [
        ("GOOG", 2148,
         (datetime(2004, 8, 19), 100.0, 104.06, 95.96, 100.34, 22351900.0),
         (datetime(2013, 3, 1), 797.8, 807.14, 796.15, 806.19, 2175400.0)),
        ("EURUSD", 5000,
         (datetime(2017, 4, 19, 9), 1.0716, 1.0722, 1.07083, 1.07219, 1413.0),
         (datetime(2018, 2, 7, 15), 1.23427, 1.23444, 1.22904, 1.22904, 6143.0)),
        ("BTCUSD", 156,
         (datetime(2012, 1, 31), 4.58, 7.38, 3.8, 5.55, 2012.25343589),
         (datetime(2024, 12, 31), 96515.0, 108364.0, 92092.0, 93381.0, 25342.80228337)),
    ],
)
def test_backtesting_py_sample_files_load_as_they_are(
    backtesting_data: Path, name: str, rows: int, first: tuple[object, ...],
    last: tuple[object, ...],
) -> None:
    bars = load_csv(backtesting_data / f"{name}.csv")
    assert len(bars) == rows
    assert bars[0] == Bar(name, *first)  # type: ignore[arg-type]
    assert bars[-1] == Bar(name, *last)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["GOOG", "EURUSD", "BTCUSD"])
def test_backtesting_py_sample_files_match_pandas_read_csv(backtesting_data: Path,
                                                           name: str) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(backtesting_data / f"{name}.csv", index_col=0, parse_dates=True)
    bars = load_csv(backtesting_data / f"{name}.csv")
    assert [b.time for b in bars] == list(frame.index.to_pydatetime())
    for column in ("Open", "High", "Low", "Close", "Volume"):
        assert [getattr(b, column.lower()) for b in bars] == frame[column].tolist()


def test_yahoo_finance_export_loads_and_ignores_adj_close(write_file: WriteFile) -> None:
    path = write_file(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2024-01-02,187.149994,188.440002,183.889999,185.639999,184.532257,82488700\n"
        "2024-01-03,184.220001,185.880005,183.429993,184.250000,183.150528,58414500\n",
        name="AAPL.csv",
    )
    bars = load_csv(path)
    assert bars == [
        Bar("AAPL", datetime(2024, 1, 2), 187.149994, 188.440002, 183.889999, 185.639999,
            82488700.0),
        Bar("AAPL", datetime(2024, 1, 3), 184.220001, 185.880005, 183.429993, 184.25,
            58414500.0),
    ]


def test_yahoo_null_rows_are_skipped_with_one_warning(write_file: WriteFile) -> None:
    path = write_file(
        "Date,Open,High,Low,Close,Adj Close,Volume\n"
        "2019-12-24,10,11,9,10,10,100\n"
        "2019-12-25,null,null,null,null,null,null\n"
        "2019-12-26,10,11,9,10.5,10.5,100\n"
        "2019-12-27,null,null,null,null,null,null\n"
        "2019-12-30,10.5,11,9,10,10,100\n",
        name="SPY.csv",
    )
    with pytest.warns(DataWarning) as caught:
        bars = load_csv(path)
    assert [b.time.day for b in bars] == [24, 26, 30]
    assert len(caught) == 1
    assert str(caught[0].message) == (
        f"{path}: skipped 2 rows whose prices are all 'null' (Yahoo Finance marks days "
        "without data so): lines 3, 5"
    )


def test_a_row_with_only_some_null_prices_is_an_error(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close,Volume\n2019-12-25,10,null,9,10,100\n")
    assert error_of(path) == (
        f"{path}:2: column 'High': 'null' is not a number (a missing value)"
    )


def test_a_file_of_only_null_rows_has_no_bars(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close\n2019-12-25,null,null,null,null\n")
    assert error_of(path) == f"{path}:1: no bars: all 1 data rows are 'null'"


def test_columns_in_any_order_and_case_and_extra_columns_are_ignored(
    write_file: WriteFile,
) -> None:
    path = write_file("note,VOLUME,close,LOW,High,open,DATE\n"
                      "x,100,10.5,9,11,10,2024-01-02\n")
    assert load_csv(path, "X") == [Bar("X", datetime(2024, 1, 2), 10, 11, 9, 10.5, 100)]


def test_volume_is_optional_and_defaults_to_zero(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close\n2024-01-02,10,11,9,10.5\n")
    assert load_csv(path)[0].volume == 0.0


@pytest.mark.parametrize(
    "time_header",
    ["Date", "date", "TIME", "Datetime", "DateTime", "Date-Time", "date_time", "Date Time",
     "Timestamp", "time_stamp", " Date "],
)
def test_time_column_names_are_recognised_in_any_spelling(write_file: WriteFile,
                                                          time_header: str) -> None:
    path = write_file(f"{time_header},Open,High,Low,Close\n2024-01-02,10,11,9,10.5\n")
    assert load_csv(path)[0].time == datetime(2024, 1, 2)


def test_an_unnamed_first_column_is_the_time(write_file: WriteFile) -> None:
    path = write_file(",Open,High,Low,Close,Volume\n2024-01-02 09:00:00,10,11,9,10.5,1\n")
    assert load_csv(path)[0].time == datetime(2024, 1, 2, 9)


def test_a_named_time_column_wins_over_an_unnamed_row_number_column(
    write_file: WriteFile,
) -> None:
    # What pandas writes for a DataFrame with a default RangeIndex and a Date column.
    path = write_file(",Date,Open,High,Low,Close\n0,2024-01-02,10,11,9,10.5\n"
                      "1,2024-01-03,10,11,9,10.5\n")
    assert [b.time.day for b in load_csv(path)] == [2, 3]


def test_separate_date_and_time_columns_are_joined(write_file: WriteFile) -> None:
    path = write_file("Date,Time,Open,High,Low,Close\n2024-01-02,09:30,10,11,9,10.5\n"
                      "2024-01-02,09:31:00,10,11,9,10.5\n")
    assert [b.time for b in load_csv(path)] == [datetime(2024, 1, 2, 9, 30),
                                                 datetime(2024, 1, 2, 9, 31)]


def test_bom_and_crlf_line_ends_are_accepted(write_file: WriteFile) -> None:
    path = write_file("\ufeffDate,Open,High,Low,Close,Volume\r\n2024-01-02,10,11,9,10.5,1\r\n"
                      "2024-01-03,10,11,9,10.5,1\r\n")
    assert len(load_csv(path)) == 2


def test_blank_lines_and_empty_spreadsheet_rows_are_skipped(write_file: WriteFile) -> None:
    path = write_file("\nDate,Open,High,Low,Close\n\n2024-01-02,10,11,9,10.5\n,,,,\n"
                      "2024-01-03,10,11,9,10.5\n\n")
    assert len(load_csv(path)) == 2


def test_line_numbers_count_blank_lines(write_file: WriteFile) -> None:
    path = write_file("\nDate,Open,High,Low,Close\n\n2024-01-02,10,11,9,10.5\n"
                      "2024-01-03,10,11,9,abc\n")
    assert error_of(path).startswith(f"{path}:5: column 'Close'")


def test_semicolon_delimited_files_are_read(write_file: WriteFile) -> None:
    path = write_file("Date;Open;High;Low;Close\n2024-01-02;10;11;9;10.5\n")
    assert load_csv(path)[0].close == 10.5


def test_symbol_defaults_to_the_upper_cased_file_stem(write_file: WriteFile) -> None:
    assert load_csv(write_file(GOOD, name="msft.daily.csv"))[0].symbol == "MSFT.DAILY"
    assert load_csv(write_file(GOOD, name="msft.csv"), symbol="MSFT-X")[0].symbol == "MSFT-X"


def test_iter_csv_streams_rows_as_they_are_read(write_file: WriteFile) -> None:
    rows = "".join(f"2024-01-01 {h:02d}:00,10,11,9,10\n" for h in range(24))
    path = write_file("Date,Open,High,Low,Close\n" + rows + "garbage,1,1,1,1\n")
    bars = iter_csv(path)
    first = next(bars)  # the bad last line has not been reached yet
    assert first.time == datetime(2024, 1, 1)
    assert sum(1 for _ in zip(range(23), bars, strict=False)) == 23
    with pytest.raises(DataError, match=r":26: column 'Date': 'garbage' is not a time"):
        next(bars)


# --------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2024-01-02", datetime(2024, 1, 2)),
        ("20240102", datetime(2024, 1, 2)),
        ("2024-01-02 09:30:00", datetime(2024, 1, 2, 9, 30)),
        ("2024-01-02T09:30", datetime(2024, 1, 2, 9, 30)),
        ("2024-01-02 09:30:00.250", datetime(2024, 1, 2, 9, 30, 0, 250_000)),
    ],
)
def test_iso_dates_and_naive_datetimes_stay_as_written(write_file: WriteFile, cell: str,
                                                       expected: datetime) -> None:
    path = write_file(f"Date,Open,High,Low,Close\n{cell},10,11,9,10.5\n")
    assert load_csv(path)[0].time == expected


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2024-01-02T09:30:00Z", datetime(2024, 1, 2, 9, 30)),
        ("2024-01-02 09:30:00+00:00", datetime(2024, 1, 2, 9, 30)),
        ("2024-01-02 09:30:00-05:00", datetime(2024, 1, 2, 14, 30)),
        ("2024-01-02T01:00:00+02:00", datetime(2024, 1, 1, 23, 0)),
        ("2024-01-02 09:30:00+0530", datetime(2024, 1, 2, 4, 0)),
    ],
)
def test_timezone_aware_times_become_naive_utc(write_file: WriteFile, cell: str,
                                               expected: datetime) -> None:
    path = write_file(f"Datetime,Open,High,Low,Close\n{cell},10,11,9,10.5\n")
    (bar,) = load_csv(path)
    assert bar.time == expected
    assert bar.time.tzinfo is None


def test_a_file_of_aware_times_loads_every_row_in_utc(write_file: WriteFile) -> None:
    path = write_file("Datetime,Open,High,Low,Close\n"
                      "2024-03-31 00:30:00+01:00,10,11,9,10.5\n"
                      "2024-03-31 03:30:00+02:00,10,11,9,10.5\n")
    assert [b.time for b in load_csv(path)] == [datetime(2024, 3, 30, 23, 30),
                                                 datetime(2024, 3, 31, 1, 30)]


def test_mixing_naive_and_aware_times_is_an_error(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close\n2024-01-02 09:00,10,11,9,10.5\n"
                      "2024-01-02 10:00+00:00,10,11,9,10.5\n")
    assert error_of(path) == (
        f"{path}:3: column 'Date': '2024-01-02 10:00+00:00' is an ISO time with a UTC offset, "
        "but the first bar's time is an ISO time without a UTC offset; one file must use one "
        "kind of time"
    )


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("1704186000", datetime(2024, 1, 2, 9, 0)),  # seconds
        ("1704186000.5", datetime(2024, 1, 2, 9, 0, 0, 500_000)),  # fractional seconds
        ("1704186000000", datetime(2024, 1, 2, 9, 0)),  # milliseconds
        ("1704186000123", datetime(2024, 1, 2, 9, 0, 0, 123_000)),
        ("1704186000000000", datetime(2024, 1, 2, 9, 0)),  # microseconds
        ("1704186000000000000", datetime(2024, 1, 2, 9, 0)),  # nanoseconds (pandas)
        ("1.704186e9", datetime(2024, 1, 2, 9, 0)),
    ],
)
def test_epoch_numbers_are_utc_with_the_unit_told_by_magnitude(write_file: WriteFile,
                                                               cell: str,
                                                               expected: datetime) -> None:
    path = write_file(f"Timestamp,Open,High,Low,Close\n{cell},10,11,9,10.5\n")
    assert load_csv(path)[0].time == expected


def test_a_file_of_epoch_milliseconds_loads_every_row(write_file: WriteFile) -> None:
    rows = "".join(f"{1704186000000 + i * 60_000},10,11,9,10.5\n" for i in range(5))
    path = write_file("time,open,high,low,close\n" + rows)
    assert [b.time.minute for b in load_csv(path)] == [0, 1, 2, 3, 4]


def test_an_iso_time_in_an_epoch_file_is_an_error(write_file: WriteFile) -> None:
    path = write_file("time,open,high,low,close\n1704186000,10,11,9,10.5\n"
                      "2024-01-02 09:01,10,11,9,10.5\n")
    assert ":3: column 'time': '2024-01-02 09:01' is an ISO time without a UTC offset, but " \
           "the first bar's time is a UNIX epoch number" in error_of(path)


def test_an_implausible_epoch_number_is_not_a_time(write_file: WriteFile) -> None:
    path = write_file("time,open,high,low,close\n99999999999999999999,10,11,9,10.5\n")
    assert error_of(path).startswith(f"{path}:2: column 'time': '99999999999999999999' is "
                                     "not a time")


# --------------------------------------------------------------------------- errors


def test_the_headline_error_names_file_line_and_column(write_file: WriteFile,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    rows = "".join(f"2024-01-{d:02d},10,11,9,10.5,100\n" for d in range(1, 16))
    write_file("Date,Open,High,Low,Close,Volume\n" + rows + "2024-01-16,10,11,9,abc,100\n",
               name="GOOG.csv")
    monkeypatch.chdir(write_file("", name="unused.csv").parent)
    assert error_of("GOOG.csv") == "GOOG.csv:17: column 'Close': 'abc' is not a number"


def test_missing_columns_are_named_with_the_columns_present(write_file: WriteFile) -> None:
    path = write_file("Date,Open,Close,Adj Close\n2024-01-02,10,10.5,10.5\n")
    assert error_of(path) == (
        f"{path}:1: missing required columns 'High', 'Low' (any case); the header has: "
        "'Date', 'Open', 'Close', 'Adj Close'"
    )


def test_a_file_without_a_header_row_gets_a_hint(write_file: WriteFile) -> None:
    path = write_file("2024-01-02,10,11,9,10.5\n2024-01-03,10,11,9,10.5\n")
    assert error_of(path).endswith(
        "the first row looks like data: add a header row such as "
        "Date,Open,High,Low,Close,Volume"
    )


def test_a_missing_time_column_is_named(write_file: WriteFile) -> None:
    path = write_file("Day,Open,High,Low,Close\n2024-01-02,10,11,9,10.5\n")
    assert error_of(path) == (
        f"{path}:1: no time column: name one Date, Time, Datetime or Timestamp (any case), or "
        "leave the first header cell empty; the header has: 'Day', 'Open', 'High', 'Low', "
        "'Close'"
    )


def test_two_time_columns_are_ambiguous(write_file: WriteFile) -> None:
    path = write_file("Date,Timestamp,Open,High,Low,Close\n2024-01-02,1704186000,10,11,9,10\n")
    assert "more than one time column ('Date', 'Timestamp')" in error_of(path)


def test_a_duplicated_column_is_an_error(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close,close\n2024-01-02,10,11,9,10.5,10.5\n")
    assert error_of(path) == (
        f"{path}:1: column 'close' appears twice (columns 5 and 6); keep one of them"
    )


def test_an_empty_file_is_an_error(write_file: WriteFile) -> None:
    path = write_file("")
    assert error_of(path) == (
        f"{path}: the file is empty; expected a header row such as "
        "Date,Open,High,Low,Close,Volume, then one bar per row"
    )


def test_a_header_without_rows_is_an_error(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close,Volume\n\n")
    assert error_of(path) == f"{path}:1: no bars: the header is not followed by any data rows"


def test_a_decimal_comma_gets_a_hint(write_file: WriteFile) -> None:
    path = write_file("Date;Open;High;Low;Close\n2024-01-02;10;11;9;10,5\n")
    assert error_of(path) == (
        f"{path}:2: column 'Close': '10,5' is not a number (a decimal comma? the decimal "
        "separator must be a point: '10.5')"
    )


def test_thousands_separators_get_a_hint(write_file: WriteFile) -> None:
    path = write_file('Date,Open,High,Low,Close\n2024-01-02,"1,010.5",1011,1009,1010\n')
    assert error_of(path) == (
        f"{path}:2: column 'Open': '1,010.5' is not a number (remove the thousands separators)"
    )


def test_an_empty_cell_is_an_error(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close,Volume\n2024-01-02,,11,9,10.5,100\n")
    assert error_of(path) == f"{path}:2: column 'Open': the cell is empty"


@pytest.mark.parametrize("cell", ["nan", "NaN", "inf", "-Infinity"])
def test_non_finite_numbers_are_errors(write_file: WriteFile, cell: str) -> None:
    path = write_file(f"Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9,10.5,{cell}\n")
    assert error_of(path) == f"{path}:2: column 'Volume': '{cell}' is not a finite number"


def test_a_bad_time_names_the_time_column(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close\n2024-13-45,10,11,9,10.5\n")
    assert error_of(path) == (
        f"{path}:2: column 'Date': '2024-13-45' is not a time (expected an ISO date or "
        "date-time such as 2004-08-19 or 2004-08-19 09:30:00[+00:00], or UNIX epoch seconds "
        "or milliseconds)"
    )


def test_an_unnamed_time_column_is_named_by_position(write_file: WriteFile) -> None:
    path = write_file(",Open,High,Low,Close\nyesterday,10,11,9,10.5\n")
    assert error_of(path).startswith(f"{path}:2: column 1 (unnamed): 'yesterday' is not a time")


def test_high_below_low_is_an_error_with_file_and_line(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close\n2024-01-02,10,11,9,10.5\n"
                      "2024-01-03,10,9,11,10\n", name="ABC.csv")
    assert error_of(path) == (
        f"{path}:3: bar ABC 2024-01-03 00:00:00: high/low do not contain open/close "
        "(open=10.0, high=9.0, low=11.0, close=10.0)"
    )


def test_a_close_above_the_high_is_an_error(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close\n2024-01-02,10,11,9,12\n", name="ABC.csv")
    assert "high/low do not contain open/close" in error_of(path)


@pytest.mark.parametrize(("row", "message"), [
    ("2024-01-02,0,11,0,10,1", "open must be positive, got 0.0"),
    ("2024-01-02,10,11,9,10,-5", "volume must not be negative, got -5.0"),
])
def test_non_positive_prices_and_negative_volume_are_errors(write_file: WriteFile, row: str,
                                                             message: str) -> None:
    path = write_file(f"Date,Open,High,Low,Close,Volume\n{row}\n", name="ABC.csv")
    assert error_of(path) == f"{path}:2: bar ABC 2024-01-02 00:00:00: {message}"


def test_unsorted_times_are_an_error(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close\n2024-01-02,10,11,9,10\n2024-01-04,10,11,9,10\n"
                      "2024-01-03,10,11,9,10\n")
    assert error_of(path) == (
        f"{path}:4: column 'Date': 2024-01-03 00:00:00 is earlier than 2024-01-04 00:00:00 on "
        "line 3; rows must be in ascending time order, oldest first"
    )


def test_a_newest_first_file_gets_a_hint(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close\n2024-01-03,10,11,9,10\n2024-01-02,10,11,9,10\n")
    assert error_of(path).endswith("(the file looks newest first: reverse its rows)")


def test_duplicate_times_are_an_error(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close\n2024-01-02,10,11,9,10\n\n"
                      "2024-01-02,10,11,9,10\n")
    assert error_of(path) == (
        f"{path}:4: column 'Date': duplicate time 2024-01-02 00:00:00, already on line 2; "
        "each bar needs its own time"
    )


def test_a_short_row_is_an_error(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9\n")
    assert error_of(path) == (
        f"{path}:2: the row has 4 cells but the header has 6 (column 'Close' is missing)"
    )


def test_a_file_that_is_not_utf8_is_an_error(write_file: WriteFile) -> None:
    path = write_file("Date,Open,High,Low,Close,Bemerkung\n2024-01-02,10,11,9,10,Grüße\n",
                      encoding="latin-1")
    assert error_of(path) == f"{path}: not UTF-8 text (byte 0xfc); save the file as UTF-8 CSV"


def test_a_missing_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    assert error_of(path) == f"{path}: cannot open the file: No such file or directory"


# --------------------------------------------------------------------------- writing


def test_written_daily_bars_read_back_identically(tmp_path: Path) -> None:
    bars = gbm_bars(300, symbol="RT", interval="1d", skip_weekends=True)
    path = tmp_path / "rt.csv"
    assert write_csv(bars, path) == 300
    assert path.read_text().splitlines()[:2] == [
        "Date,Open,High,Low,Close,Volume",
        f"2000-01-03,100.0,{bars[0].high!r},{bars[0].low!r},{bars[0].close!r},"
        f"{int(bars[0].volume)}",
    ]
    assert load_csv(path) == bars


def test_written_intraday_bars_read_back_identically(tmp_path: Path) -> None:
    bars = gbm_bars(500, symbol="RT", interval="15min")
    path = tmp_path / "rt.csv"
    write_csv(bars, path)
    lines = path.read_text().splitlines()
    assert lines[0] == "Datetime,Open,High,Low,Close,Volume"
    assert lines[1].startswith("2000-01-01 00:00:00,")
    assert load_csv(path) == bars


def test_write_csv_refuses_bars_of_two_symbols(tmp_path: Path) -> None:
    bars = gbm_bars(2, symbol="A") + gbm_bars(1, symbol="B", start=datetime(2001, 1, 1))
    with pytest.raises(ValueError, match=re.escape("bars of 'A' and 'B' in one file")):
        write_csv(bars, tmp_path / "x.csv")


def test_no_warning_for_a_clean_file(write_file: WriteFile) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert len(load_csv(write_file(GOOD))) == 2
