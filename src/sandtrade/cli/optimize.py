"""``sandtrade optimize``: a parameter sweep of a strategy, every run sandboxed.

    sandtrade optimize STRATEGY --data CSV... --param fast=5:30:5 --param slow=20:100:10
        [--maximize STAT | --minimize STAT] [--constraint "fast < slow"]
        [--method grid|random|optuna] [--max-runs N] [--workers N] [--top N]
        [--walk-forward train=2y,test=6m[,step=6m]] [--json] [--report FILE.html]

The sweep is stored in the data directory's store as it goes; the same command run again
(same strategy source, data, settings and grid) finds it by its id and resumes: finished runs
are read back, not run again.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

from sandtrade.backtest.optimize import (
    Constraint,
    Objective,
    ParamRange,
    Search,
    SweepError,
    grid_points,
    optuna_search,
    parse_param_range,
    random_search,
    sweep_id_for,
)
from sandtrade.backtest.sweep import Executor, RunResult, SweepJob
from sandtrade.cli.common import add_config_args, format_stat, load_cli_settings
from sandtrade.cli.tables import safe

__all__ = ["add_optimize_command", "make_executor", "run_optimize"]

METHODS = ("grid", "random", "optuna")
#: Runs of a random or Optuna search when --max-runs is not given.
DEFAULT_MAX_RUNS = 100


def add_optimize_command(sub: Any) -> None:
    """Register ``sandtrade optimize``."""
    op = sub.add_parser(
        "optimize", help="sweep a strategy's parameters: grid, random or Optuna search",
        description="Back-test STRATEGY once per parameter set, each run in a sandboxed "
        "worker, and rank the runs by a statistic. Ranges are START:STOP:STEP (both ends "
        "included), A,B,C, or a name alone for the range its param(...) declares. The sweep "
        "is stored as it goes: the same command again resumes it.")
    op.add_argument("strategy", metavar="STRATEGY", help="the strategy .py file")
    op.add_argument("--data", action="append", required=True, metavar="CSV",
                    help="CSV of bars (or a sample's name); repeat for a portfolio; "
                    "SYMBOL=path.csv names the symbol")
    op.add_argument("--param", action="append", default=[], metavar="K=RANGE",
                    help="a parameter to sweep: K=START:STOP:STEP, K=A,B,C, K=V or K "
                    "(repeatable)")
    goal = op.add_mutually_exclusive_group()
    goal.add_argument("--maximize", metavar="STAT",
                      help='the statistic to maximise (default "Sharpe Ratio")')
    goal.add_argument("--minimize", metavar="STAT", help="the statistic to minimise")
    op.add_argument("--constraint", metavar="EXPR",
                    help='a condition on the parameters, e.g. "fast < slow" (names, numbers, '
                    "comparisons, and/or/not, + - * / %%)")
    op.add_argument("--method", choices=METHODS, default="grid",
                    help="grid: every point; random: --max-runs points of the grid at random; "
                    "optuna: Optuna's TPE sampler over the grid's values")
    op.add_argument("--max-runs", type=int, metavar="N",
                    help=f"runs of a random or Optuna search (default {DEFAULT_MAX_RUNS}); a "
                    "grid larger than N is sampled at random")
    op.add_argument("--seed", type=int, default=0, help="seed of the random and Optuna draws")
    op.add_argument("--workers", type=int, metavar="N",
                    help="sandboxed workers at once (default: one per core)")
    op.add_argument("--cluster", metavar="ADDRESS",
                    help="run on a Dask cluster: its scheduler's tcp://HOST:8786, or local:N "
                    "to start N worker processes here (shows the Dask dashboard's link); "
                    "needs sandtrade[cluster]")
    op.add_argument("--walk-forward", metavar="SPEC",
                    help="train=LEN,test=LEN[,step=LEN]: optimise on each train window and run "
                    "the winner on the test window after it (LEN: bars, or 2y, 6m, 4w, 30d)")
    op.add_argument("--cash", type=float, help="starting cash (default 10000)")
    op.add_argument("--commission", type=float, metavar="F",
                    help="commission as a fraction of traded value, e.g. 0.002")
    op.add_argument("--close-at-end", action="store_true",
                    help="close open trades at the last bar so they count in the stats")
    op.add_argument("--top", type=int, default=10, metavar="N", help="rows of the table")
    op.add_argument("--json", action="store_true",
                    help="print one JSON object: best (params, stats) and runs")
    op.add_argument("--report", metavar="FILE.html",
                    help="write an HTML report: heatmaps of each pair of parameters, the best "
                    "run's equity")
    op.add_argument("--no-store", action="store_true",
                    help="do not store the sweep (it cannot be resumed)")
    add_config_args(op)


def make_executor(args: argparse.Namespace, stack: contextlib.ExitStack | None = None,
                  err: Console | None = None) -> Executor:
    """Where the sweep's runs go: the local pool of sandboxed workers, or with ``--cluster``
    a Dask cluster (closed, a ``local:N`` one stopped, with ``stack``; its dashboard link
    shown on ``err``)."""
    cluster = getattr(args, "cluster", None)
    if cluster:
        from sandtrade.sandbox.cluster import cluster_executor

        def say(message: str) -> None:
            if err is not None:
                err.print(Text(message))

        managed = cluster_executor(cluster, say=say)
        return stack.enter_context(managed) if stack is not None else managed.__enter__()
    from sandtrade.sandbox.sweep import LocalExecutor

    return LocalExecutor(args.workers)


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def run_optimize(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run ``sandtrade optimize``; returns the exit status."""
    with contextlib.ExitStack() as stack:  # the executor's cluster, when there is one
        return _run_optimize(args, out, err, stack)


def _run_optimize(args: argparse.Namespace, out: Console, err: Console,
                  stack: contextlib.ExitStack) -> int:
    from sandtrade.backtest.request import BacktestRequest
    from sandtrade.backtest.runner import parse_data_spec
    from sandtrade.backtest.walkforward import parse_walk_forward
    from sandtrade.errors import StrategyError
    from sandtrade.market import iter_csv
    from sandtrade.sandbox.runner import SandboxRunner, inspect_source_in_sandbox

    settings = load_cli_settings(args, **({"cash": args.cash} if args.cash else {}))
    broker = settings.broker
    if args.commission is not None:
        broker = broker.model_copy(update={"commission_pct": args.commission})
    try:
        source = Path(args.strategy).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise StrategyError(f"{args.strategy}: cannot read the strategy file: {e}") from None
    checked = inspect_source_in_sandbox(source, args.strategy)
    if not args.param:
        raise SweepError(f"{args.strategy}: give at least one --param to sweep (its "
                         f"parameters: {', '.join(checked.params) or 'none'})")
    ranges = [parse_param_range(p, checked.specs, where=args.strategy, lines=checked.lines)
              for p in args.param]
    names = [r.name for r in ranges]
    if len(set(names)) != len(names):
        raise SweepError("--param: a parameter is given twice")
    constraint = Constraint(args.constraint, names) if args.constraint else None
    objective = Objective(args.minimize, maximize=False) if args.minimize else \
        Objective(args.maximize or "Sharpe Ratio")
    walk = parse_walk_forward(args.walk_forward) if args.walk_forward else None
    points = grid_points(ranges, constraint)
    if not points:
        raise SweepError("the grid is empty: no point satisfies the constraint")

    specs = [parse_data_spec(d) for d in args.data]
    data: dict[str, list[Any]] = {}
    for spec in specs:
        symbol = spec.symbol or Path(spec.path).stem.upper()
        if symbol in data:
            raise SweepError(f"{spec.path}: symbol {symbol} is given twice; name one of the "
                             "files SYMBOL=path.csv")
        data[symbol] = list(iter_csv(spec.path, symbol=spec.symbol))
    request = BacktestRequest(strategy=args.strategy, data=specs, cash=settings.cash,
                              broker=broker, close_at_end=args.close_at_end)
    job = SweepJob(args.strategy, source, data, request)
    method = args.method
    max_runs = args.max_runs or (len(points) if method == "grid" else DEFAULT_MAX_RUNS)
    if method == "grid" and max_runs < len(points):
        method = "random"  # as backtesting.py's max_tries: a random part of the grid
    sweep_id = sweep_id_for(
        source=hashlib.sha256(source.encode()).hexdigest(),
        data=[(s, spec.path and _file_digest(spec.path)) for s, spec in zip(data, specs,
                                                                            strict=True)],
        settings=request.model_dump(mode="json", exclude={"strategy", "data", "params"}),
        ranges=[[r.name, list(r.values)] for r in ranges], constraint=args.constraint,
        method=method, max_runs=max_runs, seed=args.seed,
        objective=[objective.stat, objective.maximize] if method == "optuna" else None,
        walk=args.walk_forward)

    store = sweep = None
    if not args.no_store:
        from sandtrade.host.runtime import open_host_store
        from sandtrade.store import SweepRecord

        store = open_host_store(Path(settings.data_dir))
        sweep = store.get_sweep(sweep_id) or SweepRecord(
            id=sweep_id, strategy=args.strategy, created_at=datetime.now(UTC),
            spec={"params": [[r.name, list(r.values)] for r in ranges],
                  "constraint": args.constraint, "method": method, "max_runs": max_runs,
                  "objective": objective.stat, "walk_forward": args.walk_forward,
                  "data": [s.path for s in specs]})
        sweep.status = "running"
        store.save_sweep(sweep)

    executor = make_executor(args, stack, err)
    total = min(max_runs, len(points)) * (1 if walk is None else
                                          max(1, len(_spans(job, walk))))
    best_value: list[float | None] = [None]
    progress = Progress(TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[best]}", markup=False), TimeRemainingColumn(),
                        console=err, transient=True, disable=not err.is_terminal)
    task = progress.add_task("sweep", total=total, best="")
    failures: list[RunResult] = []

    def on_result(result: RunResult, reused: bool) -> None:
        if result.error is not None:
            failures.append(result)
        value = objective.value(result.stats) if result.error is None else None
        old = best_value[0]
        if value is not None and (old is None or (value > old if objective.maximize
                                                  else value < old)):
            best_value[0] = value
        shown = best_value[0]
        progress.update(task, advance=1, best="" if shown is None else
                        f"best {safe(objective.stat)} {shown:.4g}")

    search = Search(executor, job, store, sweep, on_result=on_result)
    if search.results and not args.json:
        err.print(Text(f"resuming sweep {sweep_id}: {len(search.results):,} runs already "
                       "stored are not run again"))
    n = len(job.times)
    sandbox = SandboxRunner()
    walk_result = None
    try:
        with progress:
            if walk is None:
                results = _search(search, method, ranges, points, constraint, objective, 0, n,
                                  max_runs, args)
            else:
                from sandtrade.backtest.walkforward import walk_forward

                def optimise(a: int, b: int) -> list[RunResult]:
                    return _search(search, method, ranges, points, constraint, objective, a, b,
                                   max_runs, args)

                def test(params: dict[str, Any], b: int, c: int) -> Any:
                    return sandbox.run_source(source, request.model_copy(
                        update={"params": params}), job.window(b, c))

                walk_result = walk_forward(job.times, _spans(job, walk), optimise=optimise,
                                           test=test, objective=objective, cash=request.cash)
                results = list(search.results.values())
    except BaseException:
        _close(executor)
        if store is not None and sweep is not None:
            sweep.status = "stopped"
            store.save_sweep(sweep)
            err.print(Text(f"sweep {sweep_id} stopped; the same command resumes it"))
        raise
    _close(executor)
    if store is not None and sweep is not None:
        sweep.status = "finished"
        store.save_sweep(sweep)

    if walk_result is not None:
        last = next((w for w in reversed(walk_result.windows) if w.error is None), None)
        best_run = RunResult("", last.params, last.in_sample) if last else None
    else:
        best_run = objective.best(results)
    unknown = all(objective.stat not in r.stats for r in results if r.error is None)
    if unknown and any(r.error is None for r in results):
        stats = next(r.stats for r in results if r.error is None)
        raise SweepError(f"--{'minimize' if args.minimize else 'maximize'} "
                         f"{objective.stat!r}: not a statistic of a back-test (they are: "
                         f"{', '.join(stats)})")
    best_full = None
    if best_run is not None and (args.report and walk_result is None):
        best_full = sandbox.run_source(source, request.model_copy(
            update={"params": best_run.params}), job.data)
    if args.report:
        from sandtrade.backtest.sweep_report import write_sweep_report

        charted = results
        if walk_result is not None and walk_result.windows:
            # The heatmaps of one window: the last, whose winner is the next to trade.
            a, b, _ = walk_result.windows[-1].bars
            charted = [r for r in results if search.windows.get(r.run_id) == (a, b)]
        write_sweep_report(args.report, strategy=args.strategy, results=charted,
                           ranges=ranges, objective=objective, best=best_full,
                           walk=walk_result, top=max(args.top, 20),
                           columns=("Return [%]", "Max. Drawdown [%]", "# Trades",
                                    "Win Rate [%]", "Equity Final [$]"))
    if args.json:
        print(json.dumps(_json_out(best_run, results, walk_result, sweep_id, search.windows),
                         allow_nan=False, default=str))
        return 0
    if walk_result is None:
        _print_table(out, results, ranges, objective, args.top)
    else:
        _print_walk(out, walk_result, ranges, objective)
    if best_run is not None:
        shown = ", ".join(f"{k}={v!r}" for k, v in best_run.params.items())
        label = "next window's parameters" if walk_result is not None else "best"
        out.print(Text(f"{label}: {safe(shown)}  ({safe(objective.stat)} = "
                       f"{format_stat(objective.value(best_run.stats))})"))
    if failures:
        err.print(Text(f"{len(failures):,} runs failed; the first: "
                       f"{safe(failures[0].error)}"))
    if args.report:
        out.print(Text(f"report: {args.report}"))
    return 0


def _close(executor: Executor) -> None:
    """End what an executor keeps between calls (the local pool's warm workers)."""
    close = getattr(executor, "close", None)
    if callable(close):
        close()


def _spans(job: SweepJob, walk: Any) -> list[tuple[int, int, int]]:
    from sandtrade.backtest.walkforward import windows

    spans = windows(job.times, walk)
    if not spans:
        raise SweepError(f"--walk-forward: the data ({len(job.times):,} timestamps) holds no "
                         f"complete window of train {walk.train} and test {walk.test}")
    return spans


def _search(search: Search, method: str, ranges: list[ParamRange],
            points: list[dict[str, Any]], constraint: Constraint | None,
            objective: Objective, start: int, end: int, max_runs: int,
            args: argparse.Namespace) -> list[RunResult]:
    if method == "grid":
        return search.run(points, start, end)
    if method == "random":
        return random_search(search, points, start, end, max_runs=max_runs, seed=args.seed)
    return optuna_search(search, ranges, constraint, objective, start, end,
                         max_runs=max_runs, batch=args.workers or os.cpu_count() or 1,
                         seed=args.seed)


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _json_out(best: RunResult | None, results: list[RunResult], walk: Any,
              sweep_id: str, windows: dict[str, tuple[int, int]]) -> dict[str, Any]:
    def run(r: RunResult) -> dict[str, Any]:
        item: dict[str, Any] = {"params": r.params,
                                "stats": {k: _clean(v) for k, v in r.stats.items()}}
        if walk is not None and r.run_id in windows:
            item["window"] = list(windows[r.run_id])  # timestamps start:end of its train
        if r.error is not None:
            item["error"] = r.error
        return item

    out: dict[str, Any] = {"sweep": sweep_id, "best": run(best) if best else None,
                           "runs": [run(r) for r in results]}
    if walk is not None:
        out["walk_forward"] = {
            "windows": [{"train": [w.train[0].isoformat(), w.train[1].isoformat()],
                         "test": [w.test[0].isoformat(), w.test[1].isoformat()],
                         "bars": list(w.bars), "params": w.params,
                         "in_sample": {k: _clean(v) for k, v in w.in_sample.items()},
                         "out_of_sample": {k: _clean(v) for k, v in w.out_of_sample.items()},
                         "error": w.error} for w in walk.windows],
            "out_of_sample": {k: _clean(v) for k, v in walk.out_of_sample.items()},
            "in_sample": {k: _clean(v) for k, v in walk.in_sample.items()}}
    return out


def _print_table(out: Console, results: list[RunResult], ranges: list[ParamRange],
                 objective: Objective, top: int) -> None:
    ok = [r for r in results if r.error is None and objective.value(r.stats) is not None]
    ok.sort(key=lambda r: objective.value(r.stats) or 0.0, reverse=objective.maximize)
    cols = list(dict.fromkeys([objective.stat, "Return [%]", "Max. Drawdown [%]",
                               "# Trades"]))
    table = Table(title=Text(f"top {min(top, len(ok))} of {len(results):,} runs by "
                             f"{safe(objective.stat)}"), title_justify="left")
    table.add_column("#", justify="right")
    for pr in ranges:
        table.add_column(Text(safe(pr.name)), justify="right")
    for c in cols:
        table.add_column(Text(safe(c)), justify="right")
    # Text, not str: a cell's text is data (a worker's statistic), never rich markup.
    for k, r in enumerate(ok[:top], start=1):
        table.add_row(str(k), *(Text(safe(repr(r.params.get(x.name)))) for x in ranges),
                      *(Text(safe(format_stat(r.stats.get(c)))) for c in cols))
    out.print(table)


def _print_walk(out: Console, walk: Any, ranges: list[ParamRange],
                objective: Objective) -> None:
    table = Table(title="walk-forward windows", title_justify="left")
    for head in ("train", "test", *(r.name for r in ranges), f"{objective.stat} in",
                 f"{objective.stat} out", "Return [%] out"):
        table.add_column(Text(safe(head)), justify="right")
    for w in walk.windows:
        table.add_row(f"{w.train[0]:%Y-%m-%d}..{w.train[1]:%Y-%m-%d}",
                      f"{w.test[0]:%Y-%m-%d}..{w.test[1]:%Y-%m-%d}",
                      *(Text(safe(repr(w.params.get(r.name)))) for r in ranges),
                      format_stat(objective.value(w.in_sample)),
                      format_stat(objective.value(w.out_of_sample)),
                      Text(safe(format_stat(w.out_of_sample.get("Return [%]")))))
    out.print(table)
    summary = Table(title="out of sample (stitched) and in sample", title_justify="left",
                    show_header=False)
    summary.add_column("figure")
    summary.add_column("value", justify="right")
    for label, figures in (("out of sample", walk.out_of_sample),
                           ("in sample", walk.in_sample)):
        for k, v in figures.items():
            summary.add_row(Text(safe(f"{label}: {k}")), Text(safe(format_stat(v))))
    out.print(summary)
