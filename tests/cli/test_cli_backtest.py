"""`sandtrade backtest|check|demo` as a user runs them: a real process, real files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from strategies_examples import example_path

from sandtrade.market import gbm_bars, sample_csv_path, write_csv

SMA = str(example_path("sma_cross"))


def sandtrade(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed console entry point in a fresh interpreter."""
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run([sys.executable, "-m", "sandtrade.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env)


def assert_one_clear_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def good_csv(tmp_path: Path) -> Path:
    path = tmp_path / "ACME.csv"
    write_csv(gbm_bars(300, symbol="ACME", seed=3), path)
    return path


def test_backtest_prints_a_stats_table(good_csv: Path) -> None:
    proc = sandtrade("backtest", SMA, "--data", str(good_csv), "--commission", "0.002")
    assert proc.returncode == 0, proc.stderr
    for key in ("Return [%]", "Sharpe Ratio", "# Trades", "Equity Final [$]"):
        assert key in proc.stdout


def test_backtest_json_is_one_object_with_stats_and_trades(good_csv: Path) -> None:
    proc = sandtrade("backtest", SMA, "--data", str(good_csv), "--json", "--param", "fast=5")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["params"] == {"fast": 5, "slow": 20}
    assert out["stats"]["# Trades"] == len(out["trades"]) > 0
    trade = out["trades"][0]
    for key in ("entry_time", "exit_time", "entry_price", "exit_price", "size", "pnl"):
        assert key in trade


def test_backtest_report_is_written(good_csv: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.html"
    proc = sandtrade("backtest", SMA, "--data", str(good_csv), "--report", str(report))
    assert proc.returncode == 0, proc.stderr
    assert report.stat().st_size > 100_000  # the chart library is embedded


def test_portfolio_of_two_symbols_shares_one_account(tmp_path: Path) -> None:
    a, b = tmp_path / "AAA.csv", tmp_path / "BBB.csv"
    write_csv(gbm_bars(400, symbol="AAA", seed=1), a)
    write_csv(gbm_bars(400, symbol="BBB", seed=2), b)
    proc = sandtrade("backtest", SMA, "--data", str(a), "--data", str(b), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["symbols"] == ["AAA", "BBB"]
    assert {t["symbol"] for t in out["trades"]} == {"AAA", "BBB"}


def test_demo_trades_live_then_agrees_with_the_backtest(tmp_path: Path) -> None:
    """The README's main job: a live host, the example strategy in its sandbox on the replayed
    sample, then a back-test of the same file whose trades are the same (exit 0 says so)."""
    data = tmp_path / "data"
    proc = sandtrade("demo", "--report", str(tmp_path / "demo.html"), "--data-dir", str(data))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = " ".join(proc.stdout.split())  # rich wraps long lines
    assert "the same trades" in out
    live = re.search(r"live paper trading (\d+) ([\d,.]+)", out)
    back = re.search(r"back-test (\d+) ([\d,.]+)", out)
    assert live and back and live.groups() == back.groups() and int(live[1]) > 20
    assert "# Trades" in proc.stdout
    assert (tmp_path / "demo.html").exists()
    assert (data / "sandtrade.db").exists()  # the live host's store, kept when named
    assert sample_csv_path().exists()


@pytest.mark.parametrize(
    ("content", "needles"),
    [
        ("Date,Open,High,Low\n2024-01-02,1,2,0.5\n", ("ACME.csv", "Close")),
        ("Date,Open,High,Low,Close\n2024-01-02,1,2,0.5,1.5\n2024-01-03,1,2,0.5,abc\n",
         ("ACME.csv:3", "Close", "abc")),
        ("Date,Open,High,Low,Close\n2024-01-03,1,2,0.5,1.5\n2024-01-02,1,2,0.5,1.5\n",
         ("ACME.csv:3",)),
        ("Date,Open,High,Low,Close\n2024-01-02,1,2,0.5,1.5\n2024-01-02,1,2,0.5,1.5\n",
         ("ACME.csv:3", "duplicate")),
        ("", ("ACME.csv", "empty")),
    ],
    ids=["missing-column", "non-numeric-price", "unsorted", "duplicate-timestamp", "empty-file"],
)
def test_bad_csv_gets_one_clear_error(tmp_path: Path, content: str,
                                      needles: tuple[str, ...]) -> None:
    path = tmp_path / "ACME.csv"
    path.write_text(content)
    assert_one_clear_error(sandtrade("backtest", SMA, "--data", str(path)), *needles)


def test_strategy_with_a_syntax_error_gets_file_and_line(tmp_path: Path,
                                                         good_csv: Path) -> None:
    strat = tmp_path / "broken.py"
    strat.write_text("def on_bar(ctx, bar):\n    if True\n        pass\n")
    assert_one_clear_error(sandtrade("backtest", str(strat), "--data", str(good_csv)),
                           "broken.py:2", "syntax error")


def test_exception_in_on_bar_gets_file_line_and_bar_time(tmp_path: Path,
                                                         good_csv: Path) -> None:
    strat = tmp_path / "boom.py"
    strat.write_text("def on_bar(ctx, bar):\n    x = 1\n    return x / 0\n")
    proc = sandtrade("backtest", str(strat), "--data", str(good_csv))
    assert_one_clear_error(proc, "boom.py:3", "on_bar", "ZeroDivisionError")


def test_unknown_param_names_the_known_ones(good_csv: Path) -> None:
    proc = sandtrade("backtest", SMA, "--data", str(good_csv), "--param", "fats=5")
    assert_one_clear_error(proc, "fats", "did you mean 'fast'", "known: fast, slow")


def test_param_of_the_wrong_type_is_refused(good_csv: Path) -> None:
    proc = sandtrade("backtest", SMA, "--data", str(good_csv), "--param", "fast=ten")
    assert_one_clear_error(proc, "fast", "int", "ten")


def test_missing_data_file_is_one_clear_error(tmp_path: Path) -> None:
    proc = sandtrade("backtest", SMA, "--data", str(tmp_path / "nope.csv"))
    assert_one_clear_error(proc, "nope.csv")


def test_check_passes_a_clean_file_and_fails_a_misspelled_hook(tmp_path: Path) -> None:
    assert sandtrade("check", SMA).returncode == 0
    bad = tmp_path / "typo.py"
    bad.write_text("PARAMS = {}\n\n\ndef on_bars(ctx, bar):\n    pass\n")
    proc = sandtrade("check", str(bad))
    assert proc.returncode == 1
    assert "typo.py:4" in proc.stderr and "on_bar" in proc.stderr


def test_check_reports_policy_violations_and_hook_mistakes_in_one_run(tmp_path: Path
                                                                      ) -> None:
    """A file with refused imports *and* hook mistakes: one ``check`` lists every problem, in
    file order, the hook mistakes with the same words as for a file that compiles."""
    bad = tmp_path / "both.py"
    bad.write_text("import os\n\n\ndef on_bars(ctx, bar):\n    pass\n\n\n"
                   "def on_bar(context, bar):\n    import subprocess\n\n\n"
                   "def on_fill(ctx, fill):\n    yield fill\n\n\n"
                   "def on_stop(ctx, *rest):\n    pass\n")
    proc = sandtrade("check", str(bad))
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.startswith(str(bad))]
    where = [int(line.split(":")[1]) for line in lines]
    assert where == [1, 4, 8, 9, 12, 16], proc.stderr
    assert "import of 'os' is not allowed" in lines[0]
    assert "on_bars is not a strategy hook; did you mean on_bar?" in lines[1]
    assert "on_bar(context, bar): argument 'context' is not one of on_bar's" in lines[2]
    assert "import of 'subprocess' is not allowed" in lines[3]
    assert "on_fill is a generator" in lines[4]
    assert "on_stop(ctx, rest): argument 'rest' is not one of on_stop's arguments" in lines[5]
    # the same hook mistakes, found by running the file once the imports are gone
    fixed = tmp_path / "hooks_only.py"
    fixed.write_text(bad.read_text().replace("import os", "import math")
                     .replace("import subprocess", "import json"))
    again = sandtrade("check", str(fixed))
    assert again.returncode == 1
    assert [line.split(": ", 1)[1] for line in again.stderr.splitlines()
            if line.startswith(str(fixed))] == [line.split(": ", 1)[1] for line in lines
                                                if "import of" not in line]


def test_config_file_and_environment_set_defaults(tmp_path: Path, good_csv: Path) -> None:
    cfg = tmp_path / "sandtrade.toml"
    cfg.write_text("cash = 50000\n[broker]\ncommission_pct = 0.001\n")
    proc = sandtrade("backtest", SMA, "--data", str(good_csv), "--config", str(cfg), "--json")
    assert proc.returncode == 0, proc.stderr
    settings = json.loads(proc.stdout)["settings"]
    assert settings["cash"] == 50000 and settings["commission_pct"] == 0.001
    env = {**os.environ, "SANDTRADE_BROKER__COMMISSION_PCT": "0.003"}
    proc = subprocess.run([sys.executable, "-m", "sandtrade.cli", "backtest", SMA, "--data",
                           str(good_csv), "--config", str(cfg), "--json"],
                          capture_output=True, text=True, timeout=120, env=env)
    assert json.loads(proc.stdout)["settings"]["commission_pct"] == 0.003


def test_invalid_config_value_names_the_key(tmp_path: Path, good_csv: Path) -> None:
    cfg = tmp_path / "sandtrade.toml"
    cfg.write_text("[broker]\ncommission_pct = -1\n")
    proc = sandtrade("backtest", SMA, "--data", str(good_csv), "--config", str(cfg))
    assert_one_clear_error(proc, "sandtrade.toml", "broker.commission_pct")
