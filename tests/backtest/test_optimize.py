"""Sweeps: ranges, constraints, objectives, storing and resuming, walk-forward, the command."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from strategies_examples import example_path

from sandtrade.backtest.optimize import (
    Constraint,
    Objective,
    ParamRange,
    Search,
    SweepError,
    grid_points,
    parse_param_range,
)
from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.sweep import RunResult, RunSpec, SweepJob
from sandtrade.backtest.walkforward import Length, WalkForwardSpec, parse_walk_forward, windows
from sandtrade.cli import main
from sandtrade.market import iter_csv, sample_csv_path, write_csv
from sandtrade.models import Bar
from sandtrade.sandbox.sweep import LocalExecutor
from sandtrade.store import SQLiteStore, SweepRecord
from sandtrade.strategy.params import param

SPECS = {"fast": param(10, min=2, max=50, step=1), "slow": param(20.0),
         "kind": param("EMA", choices=("SMA", "EMA")), "on": param(True)}


# ---------------------------------------------------------------- ranges and constraints


def test_ranges_include_both_ends_and_take_the_parameters_type() -> None:
    assert parse_param_range("fast=5:30:5", SPECS, where="s.py").values == (5, 10, 15, 20,
                                                                            25, 30)
    assert parse_param_range("slow=0.5:1.5:0.5", SPECS, where="s.py").values == (0.5, 1.0,
                                                                                 1.5)
    assert parse_param_range("kind=SMA,EMA", SPECS, where="s.py").values == ("SMA", "EMA")
    assert parse_param_range("on", SPECS, where="s.py").values == (False, True)
    assert parse_param_range("fast", SPECS, where="s.py").values == tuple(range(2, 51))


@pytest.mark.parametrize(("text", "message"), [
    ("fast=40:60:5", r"s\.py:3: fast: 55 is above its maximum 50"),
    ("kind=WMA", r"s\.py:5: kind: 'WMA' is not one of its choices"),
    ("nope=1:2:1", r"no parameter 'nope'"),
    ("fast=5:1:1", r"STOP at least START"),
    ("fast=a:b:c", r"'a' is not a int"),
    ("slow", r"its declaration has no min, max and step"),
    ("kind=A:B:C", r"START:STOP:STEP is for numbers"),
])
def test_a_bad_range_says_what_and_where(text: str, message: str) -> None:
    with pytest.raises(SweepError, match=message):
        parse_param_range(text, SPECS, where="s.py", lines={"fast": 3, "kind": 5})


def test_a_constraint_evaluates_comparisons_logic_and_arithmetic() -> None:
    c = Constraint("fast < slow and not (slow - fast) % 20 == 0 or fast == 7", ["fast", "slow"])
    assert c({"fast": 5, "slow": 10}) and not c({"fast": 5, "slow": 25})
    assert c({"fast": 7, "slow": 1}) and not c({"fast": 30, "slow": 10})
    assert Constraint("1 < fast <= 3", ["fast"])({"fast": 3})
    assert not Constraint("fast / 0 > 1", ["fast"])({"fast": 3}), "an error is a no"


@pytest.mark.parametrize("text", [
    "__import__('os').system('x')", "fast.__class__", "[fast][0] < 1", "(lambda: 1)()",
    "fast if slow else 1", "open('x')", "fast ** 99999999", "nope < 1", "fast <",
    "(fast := 3)", "'a' * 10**9", "f'{fast}'",
])
def test_a_constraint_refuses_anything_beyond_the_small_language(text: str) -> None:
    with pytest.raises(SweepError, match="--constraint"):
        Constraint(text, ["fast", "slow"])


def test_the_grid_varies_the_first_parameter_slowest_and_applies_the_constraint() -> None:
    ranges = [ParamRange("fast", (1, 2)), ParamRange("slow", (1, 2, 3))]
    assert grid_points(ranges, Constraint("fast < slow", ["fast", "slow"])) == [
        {"fast": 1, "slow": 2}, {"fast": 1, "slow": 3}, {"fast": 2, "slow": 3}]


def test_the_best_run_is_the_first_of_equals_and_skips_failures_and_nan() -> None:
    runs = [RunResult("a", {}, {"S": float("nan")}), RunResult("b", {}, {"S": 2.0}),
            RunResult("c", {}, {"S": 2.0}), RunResult("d", {}, {}, error="x"),
            RunResult("e", {}, {"S": 1.0})]
    assert Objective("S").best(runs).run_id == "b"  # type: ignore[union-attr]
    assert Objective("S", maximize=False).best(runs).run_id == "e"  # type: ignore[union-attr]


# ---------------------------------------------------------------- storing and resuming


class Counting:
    """The local executor, counting the runs it is asked for."""

    def __init__(self) -> None:
        self.inner = LocalExecutor(2)
        self.asked: list[str] = []

    def run(self, job: SweepJob, runs: Sequence[RunSpec]) -> Iterator[RunResult]:
        self.asked += [r.run_id for r in runs]
        return self.inner.run(job, runs)


def sma_job() -> SweepJob:
    bars = list(iter_csv(sample_csv_path(), symbol="DEMO"))[:1000]
    path = example_path("sma_cross")
    return SweepJob(str(path), Path(path).read_text(), {"DEMO": bars},
                    BacktestRequest(strategy=str(path), data=[DataSpec(path="x.csv")]))


def test_an_interrupted_sweep_resumes_without_redoing_finished_runs(tmp_path: Path) -> None:
    job = sma_job()
    points = grid_points([ParamRange("fast", (5, 10, 15)), ParamRange("slow", (20, 30, 40))])
    store = SQLiteStore(tmp_path / "st.db")
    sweep = SweepRecord(id="sw-test", strategy=job.strategy, created_at=datetime.now(UTC),
                        spec={})
    store.save_sweep(sweep)
    seen = 0

    def interrupt(result: RunResult, reused: bool) -> None:
        nonlocal seen
        seen += 1
        if seen == 4:
            raise KeyboardInterrupt  # Ctrl-C after the fourth result

    first = Search(Counting(), job, store, sweep, on_result=interrupt, flush_seconds=3600)
    with pytest.raises(KeyboardInterrupt):
        first.run(points, 0, 1000)
    stored = store.list_sweep_runs("sw-test")
    assert len(stored) == 4, "the results that arrived were stored on the way out"

    executor = Counting()
    resumed = Search(executor, job, SQLiteStore(tmp_path / "st.db"), sweep)
    results = resumed.run(points, 0, 1000)
    done_before = {r.id.partition("/")[2] for r in stored}
    assert len(executor.asked) == 5 and not done_before & set(executor.asked), \
        "only the five unfinished runs ran"
    assert resumed.reused == 4

    fresh = Search(LocalExecutor(2), job).run(points, 0, 1000)
    assert [(r.params, r.stats) for r in results] == [(r.params, r.stats) for r in fresh], \
        "the resumed sweep equals an uninterrupted one"


# ---------------------------------------------------------------- walk-forward


def test_walk_forward_lengths_parse_in_bars_or_dates() -> None:
    assert parse_walk_forward("train=2y,test=6m") == WalkForwardSpec(
        Length(24, "months"), Length(6, "months"), Length(6, "months"))
    assert parse_walk_forward("train=500,test=100,step=50").step == Length(50, "bars")
    for bad in ("train=2y", "train=2y,test=100", "train=0,test=1", "test=1,train=2,x=3"):
        with pytest.raises(SweepError):
            parse_walk_forward(bad)


def test_date_windows_are_what_a_calendar_gives() -> None:
    days = [datetime(2020, 1, 1) + timedelta(days=k) for k in range(366)]  # 2020: leap year
    spans = windows(days, parse_walk_forward("train=3m,test=1m"))
    # Train 2020-01-01..03-31 (91 days), test April (30 days); then one month later each time.
    assert spans[0] == (0, 91, 121)
    assert spans[1] == (31, 31 + 29 + 31 + 30, 31 + 29 + 31 + 30 + 31)  # Feb 1: Feb..Apr, May
    assert [days[a].month for a, _, _ in spans] == list(range(1, 10))
    assert days[spans[-1][2] - 1] == datetime(2020, 12, 31)


def regime_bars() -> list[Bar]:
    """400 daily bars: +1 % a bar for 200 bars, then -1 % a bar."""
    price, out = 100.0, []
    for k in range(400):
        step = 1.01 if k < 200 else 0.99
        new = price * step
        out.append(Bar("RC", datetime(2020, 1, 1) + timedelta(days=k), price, max(price, new),
                       min(price, new), new, 1000.0))
        price = new
    return out


SIDE = '''PARAMS = {"side": param("long", choices=("long", "short"))}


def on_bar(ctx, bar):
    if ctx.position().qty == 0 and not ctx.orders():
        if ctx.params["side"] == "long":
            ctx.buy()
        else:
            ctx.sell()
'''


def test_walk_forward_on_a_regime_change_chooses_what_a_hand_computation_gives(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Up 1 % a bar for 200 bars, then down: train 100 bars, test 100, step 100. By hand:
    windows (0,100,200), (100,200,300), (200,300,400); the train periods rise, rise, fall, so
    the best side is long, long, short; out of sample the second window (long into the fall)
    loses and the others win."""
    csv = tmp_path / "RC.csv"
    write_csv(regime_bars(), csv)
    strategy = tmp_path / "side.py"
    strategy.write_text(SIDE)
    code = main(["optimize", str(strategy), "--data", str(csv), "--param", "side",
                 "--maximize", "Return [%]", "--walk-forward", "train=100,test=100",
                 "--workers", "2", "--no-store", "--json", "--report",
                 str(tmp_path / "wf.html")])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    wf = out["walk_forward"]
    assert [w["bars"] for w in wf["windows"]] == [[0, 100, 200], [100, 200, 300],
                                                   [200, 300, 400]]
    assert [w["params"]["side"] for w in wf["windows"]] == ["long", "long", "short"]
    oos = [w["out_of_sample"]["Return [%]"] for w in wf["windows"]]
    assert oos[0] > 0 and oos[1] < 0 and oos[2] > 0
    assert wf["windows"][1]["test"][0].startswith("2020-07-19")  # bar 200
    growth = 1.0
    for r in oos:
        growth *= 1 + r / 100
    assert wf["out_of_sample"]["Return [%]"] == pytest.approx((growth - 1) * 100, rel=1e-6)
    assert "Walk-forward windows" in (tmp_path / "wf.html").read_text()


# ---------------------------------------------------------------- the command


def test_optimize_prints_json_stores_the_sweep_and_a_second_run_reuses_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv = tmp_path / "D.csv"
    write_csv(list(iter_csv(sample_csv_path(), symbol="D"))[:600], csv)
    args = ["optimize", str(example_path("sma_cross")), "--data", str(csv), "--param",
            "fast=5:15:5", "--param", "slow=10:30:10", "--constraint", "fast < slow",
            "--maximize", "Equity Final [$]", "--data-dir", str(tmp_path / "d"), "--json",
            "--report", str(tmp_path / "r.html")]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert [(r["params"]["fast"], r["params"]["slow"]) for r in first["runs"]] == [
        (5, 10), (5, 20), (5, 30), (10, 20), (10, 30), (15, 20), (15, 30)]
    assert first["best"]["stats"]["Equity Final [$]"] == max(
        r["stats"]["Equity Final [$]"] for r in first["runs"])
    html = (tmp_path / "r.html").read_text()
    assert "Equity Final [$] by slow (rows) and fast (columns)" in html
    with SQLiteStore(tmp_path / "d" / "sandtrade.db") as store:
        record = store.get_sweep(first["sweep"])
        assert record is not None and record.status == "finished"
        assert len(store.list_sweep_runs(first["sweep"])) == 7
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == first


def test_optimize_names_an_unknown_statistic(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["optimize", str(example_path("sma_cross")), "--data", "DEMO", "--param",
                 "fast=5", "--maximize", "Profit Potential", "--no-store"])
    assert code == 1
    assert "'Profit Potential': not a statistic" in capsys.readouterr().err


def test_optuna_search_asks_distinct_points_within_the_constraint_and_repeats_with_its_seed(
        ) -> None:
    from sandtrade.backtest.optimize import optuna_search

    job = sma_job()
    ranges = [ParamRange("fast", (5, 10, 15, 20)), ParamRange("slow", (10, 20, 30, 40))]
    constraint = Constraint("fast < slow", ["fast", "slow"])

    def search() -> list[tuple[int, int]]:
        with LocalExecutor(2) as executor:
            results = optuna_search(Search(executor, job), ranges, constraint,
                                    Objective("Sharpe Ratio"), 0, 600, max_runs=6, batch=2,
                                    seed=7)
        return [(r.params["fast"], r.params["slow"]) for r in results]

    points = search()
    assert len(points) == len(set(points)) == 6
    assert all(f < s for f, s in points)
    assert search() == points, "seeded: a resumed sweep asks the same points"
