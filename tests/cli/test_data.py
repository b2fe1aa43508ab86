"""`sandtrade data` and sample names where a CSV file goes: the README's commands need no
download, in a fresh clone and after a plain `pip install`."""

from __future__ import annotations

import json
from pathlib import Path

from strategies_examples import example_path

from cli.test_cli_backtest import assert_one_clear_error, sandtrade
from sandtrade.market import SAMPLES, sample_path

SMA = str(example_path("sma_cross"))


def test_data_list_shows_every_sample_with_its_span(tmp_path: Path) -> None:
    proc = sandtrade("data", "list", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in SAMPLES:
        assert name in proc.stdout
    assert "2015-01-02" in proc.stdout and "2024-08-01" in proc.stdout, "DEMO's first and last day"
    assert str(sample_path("DEMO").parent) in proc.stdout.replace("\n", "")


def test_data_path_prints_one_readable_path(tmp_path: Path) -> None:
    proc = sandtrade("data", "path", "btcusd", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    path = Path(proc.stdout.strip())
    assert path.read_text().startswith("Datetime,Open,High,Low,Close,Volume\n")
    assert path == sample_path("BTCUSD")


def test_data_path_of_an_unknown_name_lists_the_samples(tmp_path: Path) -> None:
    assert_one_clear_error(sandtrade("data", "path", "GOOG", cwd=tmp_path),
                           "'GOOG' is not a bundled sample", "DEMO", "sandtrade data list")


def test_backtest_takes_a_sample_name_for_data(tmp_path: Path) -> None:
    proc = sandtrade("backtest", SMA, "--data", "DEMO", "--data", "ACME.csv", "--json",
                     cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["symbols"] == ["DEMO", "ACME"]
    assert out["stats"]["# Trades"] > 0


def test_a_missing_file_names_the_samples_one_could_use(tmp_path: Path) -> None:
    assert_one_clear_error(sandtrade("backtest", SMA, "--data", "GOOG.csv", cwd=tmp_path),
                           "GOOG.csv: cannot read: No such file", "DEMO, ACME, BTCUSD")
