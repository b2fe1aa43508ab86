"""The local sweep executor: warm sandboxed workers, bars shipped once, results as they come."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from strategies_examples import example_path

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.runner import run_backtest
from sandtrade.backtest.sweep import RunSpec, SweepJob, run_id_for
from sandtrade.errors import StrategyError
from sandtrade.market import iter_csv, sample_csv_path
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.sweep import LocalExecutor, checked_stats
from sandtrade.strategy import load_strategy

BARS = list(iter_csv(sample_csv_path(), symbol="DEMO"))[:800]


def job_for(path: Path | str, source: str | None = None) -> SweepJob:
    source = Path(path).read_text() if source is None else source
    return SweepJob(str(path), source, {"DEMO": BARS},
                    BacktestRequest(strategy=str(path), data=[DataSpec(path="unused.csv")]))


def run_all(job: SweepJob, runs: list[RunSpec], **kw: object) -> list:
    """Every result of ``runs`` on a fresh one-worker executor, closed afterwards."""
    with LocalExecutor(1, **kw) as executor:  # type: ignore[arg-type]
        return list(executor.run(job, runs))


def same(a: object, b: object) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a)
                      and math.isnan(b))


def test_runs_give_the_stats_of_a_single_backtest_and_each_worker_gets_the_bars_once() -> None:
    path = example_path("sma_cross")
    runs = [RunSpec.of({"fast": f, "slow": s}, 0, len(BARS)) for f in (5, 10) for s in (20, 30)]
    runs.append(RunSpec.of({"fast": 5, "slow": 20}, 100, 600))
    job = job_for(path)
    with LocalExecutor(2) as executor:
        results = {r.run_id: r for r in executor.run(job, runs)}
        assert executor.started == 2, "two workers for five runs: the bars went to each once"
        again = {r.run_id: r for r in executor.run(job, runs[:2])}
        assert executor.started == 0, "the same job again: the warm workers took it"
    assert sorted(results) == sorted(r.run_id for r in runs), "every run once"
    assert all(same(v, results[k].stats[s]) for k in again for s, v in again[k].stats.items())
    strategy = load_strategy(path)
    for spec in (runs[0], runs[-1]):
        reference = run_backtest(strategy, {"DEMO": BARS[spec.start:spec.end]},
                                 params=spec.params)
        got = results[spec.run_id]
        assert got.error is None and got.params == spec.params
        assert all(same(v, got.stats[k]) for k, v in reference.stats.items()), spec


def test_run_ids_are_stable_and_name_params_and_window() -> None:
    assert run_id_for({"a": 1, "b": 2}, 0, 10) == run_id_for({"b": 2, "a": 1}, 0, 10)
    assert run_id_for({"a": 1}, 0, 10) != run_id_for({"a": 1}, 0, 11)
    assert run_id_for({"a": 1}, 0, 10) != run_id_for({"a": 2}, 0, 10)


def test_a_run_that_fails_is_a_result_and_the_others_go_on(tmp_path: Path) -> None:
    path = tmp_path / "fragile.py"
    path.write_text('PARAMS = {"n": 1}\n\n\ndef on_bar(ctx, bar):\n'
                    '    if ctx.params["n"] == 2:\n        raise ValueError("two")\n')
    runs = [RunSpec.of({"n": n}, 0, 50) for n in (1, 2, 3)]
    results = {r.params["n"]: r for r in run_all(job_for(path), runs)}
    assert results[1].error is None and results[3].error is None
    assert results[2].error is not None and "fragile.py:6" in results[2].error
    assert "ValueError: two" in results[2].error


def test_module_state_does_not_leak_from_one_run_to_the_next(tmp_path: Path) -> None:
    """Each run loads the strategy afresh: a module-level counter starts at zero in every
    run, so the same run gives the same figures whatever ran before it in that worker."""
    path = tmp_path / "counter.py"
    path.write_text('PARAMS = {"n": 1}\nseen = []\n\n\ndef on_bar(ctx, bar):\n'
                    '    seen.append(1)\n    if len(seen) == 10:\n        ctx.buy()\n')
    runs = [RunSpec.of({"n": n}, 0, 100) for n in (1, 2, 3)]
    results = run_all(job_for(path), runs)
    assert len({r.stats["# Trades"] + r.stats["# Open Trades"] for r in results}) == 1
    assert all(r.stats["# Open Trades"] == 1 for r in results)


def test_a_run_killed_by_a_limit_is_reported_and_its_worker_replaced(tmp_path: Path) -> None:
    path = tmp_path / "hang.py"
    path.write_text('PARAMS = {"n": 1}\n\n\ndef on_bar(ctx, bar):\n'
                    '    while ctx.params["n"] == 2:\n        pass\n')
    runs = [RunSpec.of({"n": n}, 0, 50) for n in (2, 1, 3)]
    with LocalExecutor(1, limits=WorkerLimits(event_seconds=0.5)) as executor:
        results = {r.params["n"]: r for r in executor.run(job_for(path), runs)}
    assert results[2].error is not None and "timeout" in results[2].error
    assert results[1].error is None and results[3].error is None
    assert executor.started == 2, "the killed worker was replaced once"


def test_a_strategy_that_does_not_load_stops_the_sweep_with_its_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.py"
    path.write_text("import os\n")
    with pytest.raises(StrategyError, match=r"broken\.py:1"):
        run_all(job_for(path), [RunSpec.of({}, 0, 10)])


@pytest.mark.parametrize("stats", [[], {"x": [1]}, {1: 2}, {"x" * 101: 1}, {"a\x1b": 1},
                                   {"s": "x" * 201}, {f"k{i}": 0 for i in range(201)}])
def test_malformed_statistics_from_a_worker_are_refused(stats: object) -> None:
    with pytest.raises(ValueError):
        checked_stats(stats)
