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
from sandtrade.strategy.context import TA

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


@pytest.mark.slow
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


def test_check_finds_what_would_fail_on_the_first_bar(tmp_path: Path, good_csv: Path) -> None:
    """The three traps of issue 15: each compiles and loads, and each fails on the first bar;
    ``check`` names them all, with what to write instead, and exits 1."""
    bad = tmp_path / "traps.py"
    bad.write_text('PARAMS = {"fast": 12, "slow": 26}\n\n\n'
                   "def on_bar(ctx, bar):\n"
                   '    secrets = open("/etc/passwd").read()\n'
                   '    ctx.log("close {}".format(bar.close))\n'
                   '    cloud = ctx.ta.ichimoku(ctx.params["fast"], ctx.params["slow"])\n')
    proc = sandtrade("check", str(bad))
    assert proc.returncode == 1, proc.stdout
    assert proc.stderr.splitlines() == [
        f"{bad}:5: 'open' is not available in strategies (no file access; keep data in "
        "ctx.state, which lasts across restarts)",
        f"{bad}:6: 'format' is not allowed in strategies (a format string can reach attributes "
        'the sandbox hides); use an f-string, e.g. f"{price:.2f}"',
        f"{bad}:7: ctx.ta has no indicator 'ichimoku' (available: "
        f"{', '.join(n for n in dir(TA) if not n.startswith('_'))})",
    ]
    # what check found is what the first bar would have met
    run = sandtrade("backtest", str(bad), "--data", str(good_csv))
    assert run.returncode == 1 and f"{bad}:5: in on_bar" in run.stderr, run.stderr
    assert "NameError: name 'open' is not defined" in run.stderr


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


# ---------------------------------------------------------------- the strategy's log

#: 25 lines through print() and ctx.log, one 5,000 characters long.
CHATTY = '''
def on_bar(ctx, bar):
    k = ctx.bar_index
    if k < 24:
        print("line", k)
    elif k == 24:
        ctx.log("y" * 5000)
'''


def test_the_strategy_log_tail_follows_the_stats_and_log_shows_it_all(
        tmp_path: Path, good_csv: Path) -> None:
    """A strategy's print() and ctx.log lines were shown nowhere but the report. Now the last
    20 follow the stats (a long line cut short), with how many were left out; --log shows
    every line whole, and --json has them all under "logs"."""
    path = tmp_path / "chatty.py"
    path.write_text(CHATTY)
    proc = sandtrade("backtest", str(path), "--data", str(good_csv))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    head = "strategy log, the last 20 of 25 lines (5 left out; --log shows all):"
    assert out.index("Equity Final [$]") < out.index(head)
    lines = out[out.index(head):].splitlines()
    assert lines[1:20] == [f"line {k}" for k in range(5, 24)]
    stamp = lines[20].split(" ")[0]  # ctx.log's bar time
    assert lines[20] == f"{stamp} {'y' * (999 - len(stamp))}… (4,020 more characters)"
    assert len(lines) == 21

    proc = sandtrade("backtest", str(path), "--data", str(good_csv), "--log")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout[proc.stdout.index("strategy log (25 lines):"):].splitlines()
    assert lines[1:25] == [f"line {k}" for k in range(24)]
    assert lines[25].endswith(" " + "y" * 5000) and len(lines) == 26

    proc = sandtrade("backtest", str(path), "--data", str(good_csv), "--json")
    logs = json.loads(proc.stdout)["logs"]
    assert logs[:24] == [f"line {k}" for k in range(24)]
    assert logs[24].endswith(" " + "y" * 5000) and len(logs) == 25


def test_strategy_text_is_shown_as_data_not_markup_or_terminal_codes(tmp_path: Path,
                                                                    good_csv: Path) -> None:
    """Log lines, symbols and warnings come from the strategy (and the worker): rich markup
    in them is printed as it is, and control characters (an ANSI escape, a newline that
    would forge a line of output, a right-to-left override, a lone surrogate) as their
    escapes."""
    path = tmp_path / "hostile.py"
    path.write_text('def on_bar(ctx, bar):\n'
                    '    if ctx.bar_index == 0:\n'
                    '        print("[bold red]x[/] \\x1b[31mred\\x1b[0m\\nReturn [%] 9 \\u202e")\n'
                    '        ctx.log("[link=https://example.com]click[/link] :smile:")\n'
                    '        print("lone \\ud800 surrogate")\n'
                    '        ctx.buy(1_000_000)\n')
    proc = sandtrade("backtest", str(path), "--data", f"[bold]ACME={good_csv}")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr and "\u202e" not in proc.stdout
    lines = proc.stdout.splitlines()
    assert "[bold red]x[/] \\x1b[31mred\\x1b[0m\\nReturn [%] 9 \\u202e" in lines
    assert "lone \\ud800 surrogate" in lines  # not UTF-8: it once failed the whole run
    assert "[link=https://example.com]click[/link] :smile:" in proc.stdout
    assert "hostile on [bold]ACME: " in proc.stdout
    assert "(buy [bold]ACME) rejected" in proc.stderr


# ---------------------------------------------------------------- a bankrupt run


def test_a_bankrupt_run_prints_its_stats_as_json_and_as_a_table(tmp_path: Path) -> None:
    """A short of everything into a rally whose open on day 30 gaps to three times the
    close before: equity ends below zero. CAGR has no real value there; it was printed as a
    complex number and --json died with a TypeError. Now it is null / "—" and every stat is
    a real number or absent."""
    rows = ["Date,Open,High,Low,Close,Volume"]
    close = 100.0
    for k in range(60):
        day = f"2004-{1 + k // 28:02d}-{1 + k % 28:02d}"
        open_ = close * (3.0 if k == 30 else 1.01)
        close = open_ * 1.01
        rows.append(f"{day},{open_:.4f},{close:.4f},{open_:.4f},{close:.4f},1000")
    csv = tmp_path / "RALLY.csv"
    csv.write_text("\n".join(rows) + "\n")
    path = tmp_path / "short.py"
    path.write_text("def on_bar(ctx, bar):\n    if not ctx.position().qty:\n        ctx.sell()\n")

    proc = sandtrade("backtest", str(path), "--data", str(csv), "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    stats = out["stats"]
    assert stats["Equity Final [$]"] < 0
    assert any("equity reached" in w for w in out["warnings"])
    assert stats["CAGR [%]"] is None
    for key, value in stats.items():
        assert value is None or isinstance(value, int | float | str), (key, value)

    table = sandtrade("backtest", str(path), "--data", str(csv))
    assert table.returncode == 0, table.stderr
    cagr = next(line for line in table.stdout.splitlines() if "CAGR [%]" in line)
    assert cagr.split() == ["CAGR", "[%]", "—"]
    assert "j)" not in table.stdout


# ---------------------------------------------------------------- the benchmark

#: Closes by day: AAA on days 1-4 (10 -> 15, x1.5), BBB from day 2 (40 -> 30, x0.75), CCC
#: until day 3 (5 -> 8, x1.6).
CLOSES = {"AAA": {1: 10.0, 2: 12.0, 3: 11.0, 4: 15.0}, "BBB": {2: 40.0, 3: 50.0, 4: 30.0},
          "CCC": {1: 5.0, 2: 6.0, 3: 8.0}}


@pytest.fixture
def three_csvs(tmp_path: Path) -> dict[str, Path]:
    paths = {}
    for symbol, closes in CLOSES.items():
        path = paths[symbol] = tmp_path / f"{symbol}.csv"
        path.write_text("Date,Open,High,Low,Close\n" + "".join(
            f"2024-01-0{day},{c},{c},{c},{c}\n" for day, c in closes.items()))
    return paths


def buy_and_hold(proc: subprocess.CompletedProcess[str]) -> float:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["stats"]["Buy & Hold Return [%]"]


def test_a_portfolio_benchmark_is_an_equal_weight_buy_and_hold_in_any_order(
        tmp_path: Path, three_csvs: dict[str, Path]) -> None:
    """A third of the cash in each symbol at its own first close, held to its last: the mean
    of x1.5, x0.75 and x1.6, less one. It read 0 % or the first file's own figure, which
    changed with the order of the --data files; in-process it is the same figure."""
    idle = tmp_path / "idle.py"
    idle.write_text("def on_bar(ctx, bar):\n    pass\n")
    expected = ((1.5 + 0.75 + 1.6) / 3 - 1) * 100
    figures = []
    for order in (["AAA", "BBB", "CCC"], ["CCC", "BBB", "AAA"], ["BBB", "AAA", "CCC"]):
        data = [arg for s in order for arg in ("--data", str(three_csvs[s]))]
        figures.append(buy_and_hold(sandtrade("backtest", str(idle), *data, "--json")))
    figures.append(buy_and_hold(sandtrade("backtest", str(idle), "--unsafe-in-process",
                                          *data, "--json")))
    assert figures == [figures[0]] * 4
    assert figures[0] == pytest.approx(expected, rel=1e-12)


def test_benchmark_picks_one_symbol_and_an_unknown_one_is_a_clear_error(
        tmp_path: Path, three_csvs: dict[str, Path]) -> None:
    idle = tmp_path / "idle.py"
    idle.write_text("def on_bar(ctx, bar):\n    pass\n")
    data = [arg for s in ("AAA", "BBB", "CCC") for arg in ("--data", str(three_csvs[s]))]
    proc = sandtrade("backtest", str(idle), *data, "--benchmark", "BBB", "--json")
    assert buy_and_hold(proc) == pytest.approx(-25.0)
    assert json.loads(proc.stdout)["settings"]["benchmark"] == "BBB"
    proc = sandtrade("backtest", str(idle), *data, "--benchmark", "MSFT")
    assert_one_clear_error(proc, "benchmark 'MSFT' is not a symbol",
                           "(its symbols: AAA, BBB, CCC)")
