"""Resampling: OHLCV aggregation, start labels, streaming emission, and refusals."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from sandtrade.errors import DataError
from sandtrade.market import gbm_bars, load_csv, resample
from sandtrade.models import Bar

H = timedelta(hours=1)


def hourly(n: int, start: datetime = datetime(2024, 1, 1), symbol: str = "X") -> list[Bar]:
    """``n`` hourly bars with distinct, easy-to-check values."""
    return [Bar(symbol, start + i * H, 100 + i, 101 + i + (i % 3), 99 + i - (i % 5), 100.5 + i,
                10 + i) for i in range(n)]


def test_24_hourly_bars_make_one_daily_bar() -> None:
    bars = hourly(24)
    (day,) = resample(bars, "1d")
    assert day == Bar("X", datetime(2024, 1, 1), open=bars[0].open,
                      high=max(b.high for b in bars), low=min(b.low for b in bars),
                      close=bars[-1].close, volume=sum(b.volume for b in bars))


def test_buckets_are_labelled_by_their_start() -> None:
    bars = hourly(8, start=datetime(2024, 1, 1, 1))  # 01:00 .. 08:00
    out = list(resample(bars, "4h"))
    assert [b.time for b in out] == [datetime(2024, 1, 1, 0), datetime(2024, 1, 1, 4),
                                     datetime(2024, 1, 1, 8)]
    assert out[0].open == bars[0].open and out[0].close == bars[2].close  # 01:00-03:00
    assert out[1].open == bars[3].open and out[1].close == bars[6].close  # 04:00-07:00


def test_a_partial_last_bucket_is_emitted_at_the_end() -> None:
    bars = hourly(30)
    first, last = resample(bars, timedelta(days=1))
    assert last.time == datetime(2024, 1, 2)
    assert last.open == bars[24].open and last.close == bars[29].close
    assert last.volume == sum(b.volume for b in bars[24:])
    assert first.volume == sum(b.volume for b in bars[:24])


def test_a_bucket_is_emitted_as_soon_as_its_last_bar_arrives() -> None:
    pulled: list[Bar] = []

    def source() -> Iterator[Bar]:
        for bar in hourly(48):
            pulled.append(bar)
            yield bar

    out = resample(source(), "1d", source_interval="1h")
    day = next(out)
    assert day.time == datetime(2024, 1, 1)
    assert len(pulled) == 24  # the 25th bar was not needed to know the day was over


def test_without_the_last_bar_a_bucket_waits_for_the_next_one() -> None:
    bars = hourly(48)
    del bars[23]  # 23:00 is missing: the day is only known complete at the next day's bar
    pulled: list[Bar] = []

    def source() -> Iterator[Bar]:
        for bar in bars:
            pulled.append(bar)
            yield bar

    out = resample(source(), "1d", source_interval="1h")
    assert next(out).close == bars[22].close
    assert len(pulled) == 24


def test_daily_bars_make_weeks_that_start_on_monday() -> None:
    days = gbm_bars(30, interval="1d", start=datetime(2024, 1, 3), skip_weekends=True)
    weeks = list(resample(days, "1w"))
    assert [w.time for w in weeks] == [datetime(2024, 1, 1), datetime(2024, 1, 8),
                                       datetime(2024, 1, 15), datetime(2024, 1, 22),
                                       datetime(2024, 1, 29), datetime(2024, 2, 5),
                                       datetime(2024, 2, 12)]
    assert weeks[0].open == days[0].open and weeks[0].close == days[2].close  # Wed-Fri
    assert sum(w.volume for w in weeks) == sum(d.volume for d in days)


def test_minutes_resample_to_minutes() -> None:
    bars = gbm_bars(12, interval="5min")
    out = list(resample(bars, "15min"))
    assert [b.time.minute for b in out] == [0, 15, 30, 45]
    assert out[1].open == bars[3].open and out[1].close == bars[5].close


def test_resampling_to_the_same_interval_changes_nothing() -> None:
    bars = gbm_bars(50)
    assert list(resample(bars, "1h")) == bars


def test_resample_agrees_with_pandas_on_eurusd(backtesting_data: Path) -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.read_csv(backtesting_data / "EURUSD.csv", index_col=0, parse_dates=True)
    bars = load_csv(backtesting_data / "EURUSD.csv")
    for rule in ("4h", "1D"):
        expected = frame.resample(rule).agg({"Open": "first", "High": "max", "Low": "min",
                                             "Close": "last", "Volume": "sum"}).dropna()
        expected = expected[expected.Volume > 0]  # pandas also emits empty weekend buckets
        got = list(resample(bars, rule.lower()))
        assert [b.time for b in got] == list(expected.index.to_pydatetime())
        for column in ("Open", "High", "Low", "Close", "Volume"):
            assert [getattr(b, column.lower()) for b in got] == pytest.approx(
                expected[column].tolist(), rel=1e-12)


def test_an_empty_input_gives_no_bars() -> None:
    assert list(resample([], "1d")) == []


# --------------------------------------------------------------------------- refusals


def test_an_interval_finer_than_the_input_is_refused() -> None:
    with pytest.raises(DataError, match=r"cannot resample 1h bars \(inferred from the gaps "
                                        r"between the first 64 bars\) to 30min: the target "
                                        r"interval must be coarser"):
        list(resample(hourly(10), "30min"))


def test_an_interval_that_is_not_a_multiple_is_refused() -> None:
    with pytest.raises(DataError, match="cannot resample 1h bars to 90min: the target interval "
                                        "must be a whole multiple of 1h"):
        resample(hourly(10), "90min", source_interval="1h")


def test_weekend_gaps_do_not_confuse_the_inferred_interval() -> None:
    days = gbm_bars(20, interval="1d", start=datetime(2024, 1, 5), skip_weekends=True)
    assert days[1].time - days[0].time == timedelta(days=3)  # Friday to Monday first
    assert len(list(resample(days, "1w"))) == 5


def test_bars_that_straddle_a_bucket_edge_are_refused() -> None:
    bars = hourly(6, start=datetime(2024, 1, 1, 9, 30))
    with pytest.raises(DataError, match=r"the 1h bar at 2024-01-01 09:30:00 does not fit in "
                                        r"the 2h bucket 2024-01-01 08:00:00 - 2024-01-01 "
                                        r"10:00:00"):
        list(resample(bars, "2h"))


def test_bars_closer_than_the_input_interval_are_refused() -> None:
    bars = [*hourly(3), Bar("X", datetime(2024, 1, 1, 2, 30), 1, 1, 1, 1)]
    with pytest.raises(DataError, match="are 30min apart, less than the input interval 1h"):
        list(resample(bars, "1d", source_interval="1h"))


def test_unsorted_bars_are_refused() -> None:
    bars = hourly(3)
    with pytest.raises(DataError, match="bars must be in ascending time order"):
        list(resample([bars[0], bars[2], bars[1]], "1d"))


def test_bars_of_two_symbols_are_refused() -> None:
    bars = hourly(2) + hourly(1, start=datetime(2024, 1, 1, 2), symbol="Y")
    with pytest.raises(DataError, match="one symbol at a time; got 'Y' after 'X'"):
        list(resample(bars, "1d"))


def test_timezone_aware_bars_are_refused() -> None:
    from datetime import UTC

    bar = Bar("X", datetime(2024, 1, 1, tzinfo=UTC), 1, 1, 1, 1)
    with pytest.raises(DataError, match="has a time zone"):
        list(resample([bar], "1d"))


def test_a_malformed_interval_is_refused_before_iterating() -> None:
    with pytest.raises(ValueError, match="'4x': unknown unit 'x'"):
        resample(hourly(2), "4x")
