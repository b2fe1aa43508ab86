"""The shipped sample history: loads, is what its recipe makes, and is worth back-testing."""

from __future__ import annotations

from datetime import datetime
from itertools import pairwise
from pathlib import Path

import pytest

from sandtrade.errors import DataError
from sandtrade.market import SAMPLES, load_csv, resolve_data_path, sample_csv_path, sample_path
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


# ------------------------------------------------------------------ every shipped sample

@pytest.mark.parametrize("name", list(SAMPLES))
def test_every_sample_is_what_its_recipe_makes(name: str) -> None:
    sample = SAMPLES[name]
    bars = load_csv(sample.path, name)
    assert bars == sample.recipe()
    assert {b.symbol for b in bars} == {name}
    assert sample.path.stat().st_size < 200_000, "samples stay small: they ship in the wheel"


def test_a_sample_name_resolves_in_any_case_and_with_csv(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_data_path("demo") == resolve_data_path("DEMO.csv") == str(sample_path("DEMO"))
    assert resolve_data_path("GOOG.csv") == "GOOG.csv", "not a sample: left for the reader"
    assert resolve_data_path("elsewhere/DEMO.csv") == "elsewhere/DEMO.csv", (
        "a path with a folder is the user's file, never a sample")
    (tmp_path / "DEMO.csv").write_text("Date,Open,High,Low,Close\n2024-01-02,1,1,1,1\n")
    assert resolve_data_path("DEMO.csv") == "DEMO.csv", "the user's own file wins"


def test_an_unknown_sample_names_the_ones_there_are() -> None:
    with pytest.raises(DataError, match=r"'GOOG' is not a bundled sample \(there are: DEMO, "):
        sample_path("GOOG")
