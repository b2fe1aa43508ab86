"""What the feed publishes after the source's last bar: loop, synthetic or stop (market.then)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from itertools import islice, pairwise
from pathlib import Path

import pytest

from sandtrade.host.config import ConfigError, load_settings
from sandtrade.market import gbm_bars, write_csv
from sandtrade.market.continuation import FeedNote, continued
from sandtrade.market.sources import MarketSettings, ReplaySource
from sandtrade.models import Bar, Instrument

Item = Bar | FeedNote


def daily_csv(path: Path, n: int, *, symbol: str = "SYN", seed: int = 3,
              start: datetime = datetime(2024, 1, 1)) -> list[Bar]:
    """``n`` weekday bars in cents, written to ``path``; returns them."""
    bars = [b._replace(open=round(b.open, 2), high=round(b.high, 2), low=round(b.low, 2),
                       close=round(b.close, 2))
            for b in gbm_bars(n, symbol=symbol, seed=seed, start=start, interval="1d",
                              skip_weekends=True)]
    write_csv(bars, path)
    return bars


def replay(*specs: str, **settings: object) -> ReplaySource:
    return ReplaySource(MarketSettings(files=list(specs), **settings))  # type: ignore[arg-type]


def take(items: Iterator[Item], n: int) -> list[Item]:
    return list(islice(items, n))


def bars_of(items: list[Item], symbol: str | None = None) -> list[Bar]:
    return [i for i in items if isinstance(i, Bar) and (symbol is None or i.symbol == symbol)]


def notes_of(items: list[Item]) -> list[FeedNote]:
    return [i for i in items if isinstance(i, FeedNote)]


def assert_strictly_increasing(bars: list[Bar]) -> None:
    for symbol in {b.symbol for b in bars}:
        times = [b.time for b in bars if b.symbol == symbol]
        bad = [(a, b) for a, b in pairwise(times) if b <= a]
        assert not bad, f"{symbol}: times go back or repeat at {bad[:3]}"


# ------------------------------------------------------------------ defaults


def test_the_builtin_demo_loops_and_your_own_files_stop_by_default() -> None:
    assert MarketSettings().resolved_then() == "loop"
    assert MarketSettings(files=["AAPL.csv"]).resolved_then() == "stop"
    assert MarketSettings(source="synthetic").resolved_then() == "stop"
    assert MarketSettings(files=["AAPL.csv"], then="synthetic").resolved_then() == "synthetic"
    assert MarketSettings(then="stop").resolved_then() == "stop"


def test_then_comes_from_the_environment_and_an_unknown_value_names_the_key(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SANDTRADE_MARKET__THEN", "synthetic")
    assert load_settings().market.then == "synthetic"
    monkeypatch.delenv("SANDTRADE_MARKET__THEN")
    config = tmp_path / "sandtrade.toml"
    config.write_text('[market]\nthen = "forever"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert "sandtrade.toml:2: market.then" in str(err.value)
    assert "'loop', 'synthetic' or 'stop'" in str(err.value)


# ------------------------------------------------------------------ stop


def test_stop_ends_with_a_note_right_after_the_last_bar(tmp_path: Path) -> None:
    bars = daily_csv(tmp_path / "SYN.csv", 12)

    items = list(continued(replay(f"SYN={tmp_path / 'SYN.csv'}"), "stop"))

    assert items[:-1] == bars
    assert items[-1] == FeedNote("SYN", "ended", bars[-1].time, bars[-1].time, 12, 1)


def test_a_short_file_ends_in_its_place_while_the_longer_one_goes_on(tmp_path: Path) -> None:
    short = daily_csv(tmp_path / "A.csv", 5, symbol="AAA")
    long = daily_csv(tmp_path / "B.csv", 15, symbol="BBB", seed=4)

    items = list(continued(replay(f"AAA={tmp_path / 'A.csv'}", f"BBB={tmp_path / 'B.csv'}"),
                          "stop"))

    ended_a = items.index(FeedNote("AAA", "ended", short[-1].time, short[-1].time, 5, 1))
    assert bars_of(items[:ended_a], "AAA") == short
    assert all(b.time <= short[-1].time for b in bars_of(items[:ended_a]))
    assert all(b.time >= short[-1].time and b.symbol == "BBB"
               for b in bars_of(items[ended_a:]))
    assert bars_of(items, "BBB") == long
    assert items[-1].symbol == "BBB" and isinstance(items[-1], FeedNote)


# ------------------------------------------------------------------ loop


def test_loop_replays_the_file_with_times_moved_forward_by_whole_weeks(tmp_path: Path) -> None:
    """Weekday bars stay on the same weekdays; each pass follows the last, one week-rounded
    period later; prices are the file's own."""
    bars = daily_csv(tmp_path / "SYN.csv", 12)  # Mon 2024-01-01 .. Tue 2024-01-16

    items = take(continued(replay(f"SYN={tmp_path / 'SYN.csv'}"), "loop"), 3 * 13)

    notes = notes_of(items)
    assert [(n.kind, n.passes, n.bars) for n in notes] == [("looped", 1, 12), ("looped", 2, 12),
                                                           ("looped", 3, 12)]
    period = timedelta(weeks=3)  # 15 days of data plus one day, rounded up to weeks
    assert [n.shift for n in notes] == [period, 2 * period, 3 * period]
    published = bars_of(items)
    assert published[:12] == bars
    assert published[12:24] == [b._replace(time=b.time + period) for b in bars]
    assert published[24:] == [b._replace(time=b.time + 2 * period) for b in bars]
    assert_strictly_increasing(published)
    assert {b.time.weekday() for b in published} <= {0, 1, 2, 3, 4}


def test_loop_of_round_the_clock_bars_follows_on_one_interval_later(tmp_path: Path) -> None:
    """Data that trades on weekends (crypto) is not rounded to weeks: the next pass starts
    one bar interval after the last bar."""
    bars = gbm_bars(30, symbol="BTC-USD", seed=5, start=datetime(2024, 1, 5), interval="1h")
    write_csv(bars, tmp_path / "btc.csv")
    bars = [b._replace(symbol="BTC-USD") for b in bars]

    items = take(continued(replay(f"BTC-USD={tmp_path / 'btc.csv'}"), "loop"), 62)

    published = bars_of(items)
    assert published[30].time == bars[-1].time + timedelta(hours=1)
    assert published[30:60] == [b._replace(time=b.time + timedelta(hours=30)) for b in bars]
    assert_strictly_increasing(published)


def test_files_of_different_lengths_loop_each_on_its_own(tmp_path: Path) -> None:
    daily_csv(tmp_path / "A.csv", 5, symbol="AAA")
    daily_csv(tmp_path / "B.csv", 23, symbol="BBB", seed=4)

    items = take(continued(replay(f"AAA={tmp_path / 'A.csv'}", f"BBB={tmp_path / 'B.csv'}"),
                           "loop"), 200)

    published = bars_of(items)
    times = [b.time for b in published]
    assert times == sorted(times), "the merged feed stays in time order"
    assert_strictly_increasing(published)
    passes = {n.symbol: n.passes for n in notes_of(items)}
    assert passes["AAA"] > passes["BBB"] >= 1


# ------------------------------------------------------------------ synthetic


def test_synthetic_goes_on_from_the_last_close_at_the_files_interval(tmp_path: Path) -> None:
    bars = daily_csv(tmp_path / "SYN.csv", 40)

    items = take(continued(replay(f"SYN={tmp_path / 'SYN.csv'}"), "synthetic"), 41 + 60)

    assert items[:40] == bars
    assert items[40] == FeedNote("SYN", "synthetic", bars[-1].time, bars[-1].time, 40, 1)
    after = bars_of(items[41:])
    assert len(after) == 60
    assert after[0].open == bars[-1].close, "no gap at the seam"
    assert bars[-1].time == datetime(2024, 2, 23)  # a Friday
    assert after[0].time == datetime(2024, 2, 26), "the next weekday, one day on"
    assert {b.time.weekday() for b in after} <= {0, 1, 2, 3, 4}, "no weekend bars, like the file"
    assert all(round(p, 2) == p for b in after for p in (b.open, b.high, b.low, b.close)), \
        "prices in cents, like the file"
    assert all(b.low <= min(b.open, b.close) <= max(b.open, b.close) <= b.high for b in after)
    assert all(later.open == earlier.close for earlier, later in pairwise(after))
    assert_strictly_increasing(bars_of(items))
    volumes = [b.volume for b in bars]
    assert all(min(volumes) <= b.volume <= max(volumes) for b in after)


def test_synthetic_bars_are_the_same_every_time_and_differ_with_the_seed(tmp_path: Path) -> None:
    daily_csv(tmp_path / "SYN.csv", 40)
    spec = f"SYN={tmp_path / 'SYN.csv'}"

    def tail(seed: int) -> list[Item]:
        return take(continued(replay(spec), "synthetic", seed=seed), 200)[41:]

    assert tail(7) == tail(7)
    assert tail(7) != tail(8)


def test_a_source_that_is_not_a_replay_is_continued_as_one_part() -> None:
    """Any plugin source is continued too: its bars() is called again to loop."""
    first = [Bar("AAA", datetime(2024, 1, 6, h), 10.0, 11.0, 9.0, 10.5, 100.0)
             for h in range(3)]

    class Finite:
        name = "finite"

        def instruments(self) -> list[Instrument]:
            return [Instrument.equity("AAA"), Instrument.equity("BBB")]

        def bars(self) -> Iterator[Bar]:
            return iter(first)

    items = take(continued(Finite(), "loop"), 8)

    assert items[:3] == first
    assert items[3] == FeedNote("BBB", "ended", first[-1].time, None, 0, 1), \
        "a symbol that never had a bar has no prices to loop"
    assert items[4].kind == "looped" and items[4].symbol == "AAA"  # type: ignore[union-attr]
    assert bars_of(items[5:]) == [b._replace(time=b.time + timedelta(hours=3))
                                  for b in first]
