"""The shipped sample history: loads, is what its recipe makes, and is worth back-testing."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise

from sandtrade.market import load_csv, sample_csv_path
from sandtrade.market.synthetic import demo_bars


def test_the_sample_file_loads() -> None:
    bars = load_csv(sample_csv_path())
    assert len(bars) == 2_500
    assert {b.symbol for b in bars} == {"DEMO"}
    assert bars[0].time == datetime(2015, 1, 2)
    assert all(b.time.weekday() < 5 for b in bars)


def test_the_sample_file_is_small() -> None:
    assert sample_csv_path().stat().st_size < 200_000


def test_the_sample_file_is_what_its_recipe_makes() -> None:
    assert load_csv(sample_csv_path()) == demo_bars()


def test_an_sma_crossover_trades_on_the_sample() -> None:
    closes = [b.close for b in load_csv(sample_csv_path())]

    def sma(n: int, i: int) -> float:
        return sum(closes[i - n + 1:i + 1]) / n

    above = [sma(10, i) > sma(20, i) for i in range(19, len(closes))]
    crossings = sum(a != b for a, b in pairwise(above))
    assert crossings > 50
    assert max(closes) > 2 * min(closes)  # real trends, not noise around one level
