"""Parameter optimisation: grids, constraints, objectives and searches over an executor.

``sandtrade optimize`` is built from these parts:

* :func:`parse_param_range`: ``fast=5:30:5`` (``START:STOP:STEP``, both ends included),
  ``kind=SMA,EMA`` (a list), ``fast=10`` (one value) or ``fast`` alone (the range its
  ``param(...)`` declares), each value converted to the parameter's type and checked against
  its declaration (``file:line`` errors).
* :class:`Constraint`: ``fast < slow``, parsed with :mod:`ast` into a tiny evaluator of
  parameter names, numbers, strings, comparisons, ``and``/``or``/``not`` and ``+ - * / %``;
  nothing of the user's text is ever ``eval``'d.
* :class:`Objective`: any statistic of the back-test, maximised or minimised.
* :class:`Search`: runs points (parameter sets) on a window through an
  :class:`~sandtrade.backtest.sweep.Executor`, skipping runs the store already has for this
  sweep and storing new ones as they come; :func:`grid_search`, :func:`random_search` and
  :func:`optuna_search` choose the points.
"""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
import math
import operator
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandtrade.backtest.sweep import Executor, RunResult, RunSpec, SweepJob
from sandtrade.errors import SandtradeError
from sandtrade.store.base import RunRecord, Store, SweepRecord
from sandtrade.strategy.params import ParamSpec, number_range

__all__ = ["Constraint", "Objective", "ParamRange", "Search", "SweepError", "grid_points",
           "grid_search", "optuna_search", "parse_param_range", "random_search",
           "sweep_id_for"]


class SweepError(SandtradeError):
    """A sweep's request is wrong (a range, a constraint, an objective): says what and where."""


# ---------------------------------------------------------------------------- ranges


@dataclass(frozen=True)
class ParamRange:
    """The values a sweep tries for one parameter, in order."""

    name: str
    values: tuple[Any, ...]


def _typed(name: str, text: str, spec: ParamSpec | None, where: str) -> Any:
    """``text`` as a value of the parameter's type (a string parameter takes it as is)."""
    kind = spec.type if spec is not None else "float"
    try:
        if kind == "int":
            value = float(text)
            if not value.is_integer():
                raise ValueError
            return int(value)
        if kind == "float":
            return float(text)
        if kind == "bool":
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
    except ValueError:
        raise SweepError(f"{where}: --param {name}: {text!r} is not a {kind}") from None
    return text


def parse_param_range(text: str, specs: Mapping[str, ParamSpec], *, where: str,
                      lines: Mapping[str, int] | None = None,
                      max_values: int = 100_000) -> ParamRange:
    """One ``--param`` of a sweep (see the module's docstring), checked against the
    strategy's declarations ``specs`` (``where``: the strategy's path; ``lines``: the line of
    each parameter, for ``file:line`` errors)."""
    name, eq, rest = text.partition("=")
    name = name.strip()
    if name not in specs:
        known = ", ".join(specs) or "none"
        raise SweepError(f"{where}: --param {name}: the strategy has no parameter {name!r} "
                         f"(its parameters: {known})")
    spec = specs[name]
    if not eq:
        grid = spec.grid()
        if grid is None:
            raise SweepError(f"{where}: --param {name}: give its values (START:STOP:STEP or "
                             "A,B,C): its declaration has no min, max and step")
        values: list[Any] = list(grid)
    elif rest.count(":") == 2:
        start, stop, step = (_typed(name, p, spec, where) for p in rest.split(":"))
        if spec.type not in ("int", "float"):
            raise SweepError(f"{where}: --param {name}: START:STOP:STEP is for numbers; "
                             f"{name} is a {spec.type} (give A,B,C)")
        if step <= 0 or stop < start:
            raise SweepError(f"{where}: --param {name}={rest}: STEP must be positive and "
                             "STOP at least START")
        if (stop - start) / step + 1 > max_values:
            raise SweepError(f"{where}: --param {name}={rest}: more than {max_values:,} values")
        values = number_range(start, stop, step, integer=spec.type == "int")
    else:
        values = [_typed(name, p.strip(), spec, where) for p in rest.split(",") if p.strip()]
        if not values:
            raise SweepError(f"{where}: --param {name}: no values")
    values = list(dict.fromkeys(values))
    line = (lines or {}).get(name)
    for value in values:
        problem = spec.problem(value)
        if problem is not None:
            at = f"{where}:{line}" if line else where
            raise SweepError(f"{at}: {name}: {problem}")
    return ParamRange(name, tuple(values))


# ---------------------------------------------------------------------------- constraints

_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}
_ARITH: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Mod: operator.mod,
}
#: The longest constraint text accepted, and the deepest expression.
MAX_CONSTRAINT = 500
MAX_DEPTH = 30


class Constraint:
    """A condition on a point's parameters (``fast < slow and slow - fast >= 10``).

    Parsed once with :mod:`ast`; only parameter names, number and string literals,
    comparisons (chained too), ``and``/``or``/``not``, unary ``-`` and ``+ - * / %`` are
    allowed, anything else is a :class:`SweepError` naming it. Evaluating walks the tree:
    the text is never compiled or ``eval``'d."""

    def __init__(self, text: str, names: Iterable[str]) -> None:
        self.text = text
        self.names = set(names)
        if len(text) > MAX_CONSTRAINT:
            raise SweepError(f"--constraint: longer than {MAX_CONSTRAINT} characters")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as e:
            raise SweepError(f"--constraint {text!r}: not an expression ({e.msg})") from None
        self._check(tree.body, 0)
        self.tree = tree.body

    def _check(self, node: ast.AST, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise SweepError(f"--constraint {self.text!r}: nested too deeply")
        ok = (
            isinstance(node, ast.BoolOp)
            or (isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not | ast.USub))
            or (isinstance(node, ast.BinOp) and type(node.op) in _ARITH)
            or (isinstance(node, ast.Compare) and all(type(o) in _COMPARE for o in node.ops))
            or (isinstance(node, ast.Constant) and type(node.value) in (int, float, str, bool))
            or isinstance(node, ast.Name)
        )
        if not ok:
            what = ast.unparse(node) if isinstance(node, ast.expr) else type(node).__name__
            raise SweepError(f"--constraint {self.text!r}: {what!r} is not allowed (use "
                             "parameter names, numbers, comparisons, and/or/not, + - * / %)")
        if isinstance(node, ast.Name) and node.id not in self.names:
            raise SweepError(f"--constraint {self.text!r}: {node.id!r} is not a parameter "
                             f"(parameters: {', '.join(sorted(self.names))})")
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.expr):
                self._check(child, depth + 1)

    def __call__(self, params: Mapping[str, Any]) -> bool:
        """Whether ``params`` satisfy the constraint (an arithmetic error: they do not)."""
        try:
            return bool(self._eval(self.tree, params))
        except (ArithmeticError, TypeError):
            return False

    def _eval(self, node: ast.expr, params: Mapping[str, Any]) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, ast.Name):
            return params[node.id]
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(self._eval(v, params) for v in node.values)
            return any(self._eval(v, params) for v in node.values)
        if isinstance(node, ast.UnaryOp):
            value = self._eval(node.operand, params)
            return (not value) if isinstance(node.op, ast.Not) else -value
        if isinstance(node, ast.BinOp):
            return _ARITH[type(node.op)](self._eval(node.left, params),
                                         self._eval(node.right, params))
        assert isinstance(node, ast.Compare)
        left = self._eval(node.left, params)
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self._eval(right_node, params)
            if not _COMPARE[type(op)](left, right):
                return False
            left = right
        return True


# ---------------------------------------------------------------------------- objective


@dataclass(frozen=True)
class Objective:
    """The statistic a sweep optimises, and in which direction."""

    stat: str
    maximize: bool = True

    def value(self, stats: Mapping[str, Any]) -> float | None:
        """The statistic's value as a number, or None (missing, NaN, not a number): such a
        run is never the best."""
        v = stats.get(self.stat)
        if isinstance(v, bool) or not isinstance(v, int | float) or math.isnan(v):
            return None
        return float(v)

    def best(self, results: Iterable[RunResult]) -> RunResult | None:
        """The best of ``results`` (the first of equals, in the order given), or None."""
        best: RunResult | None = None
        best_value = 0.0
        for r in results:
            v = self.value(r.stats) if r.error is None else None
            if v is None:
                continue
            if best is None or (v > best_value if self.maximize else v < best_value):
                best, best_value = r, v
        return best


# ---------------------------------------------------------------------------- the search


def grid_points(ranges: Sequence[ParamRange],
                constraint: Constraint | None = None) -> list[dict[str, Any]]:
    """Every combination of the ranges' values (the first range varying slowest) that
    satisfies ``constraint``."""
    names = [r.name for r in ranges]
    points = [dict(zip(names, combo, strict=True))
              for combo in itertools.product(*(r.values for r in ranges))]
    return [p for p in points if constraint is None or constraint(p)]


def sweep_id_for(**what: Any) -> str:
    """A sweep's id: a hash of what it runs (strategy source, data, settings, grid, method),
    so that the same sweep started again finds its stored runs and resumes."""
    text = json.dumps(what, sort_keys=True, separators=(",", ":"), default=str)
    return "sw-" + hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Search:
    """Runs points of a sweep through ``executor`` and remembers every result.

    With a ``store`` and a ``sweep``, a run the store already has for this sweep is not run
    again (a sweep resumed after a crash or Ctrl-C), and each new result is stored as it
    comes (in batches of at most ``flush_seconds``: a crash loses at most that much work).
    ``on_result`` is called with every result, stored or new (the progress bar).
    """

    executor: Executor
    job: SweepJob
    store: Store | None = None
    sweep: SweepRecord | None = None
    on_result: Callable[[RunResult, bool], None] | None = None
    flush_seconds: float = 1.0
    results: dict[str, RunResult] = field(default_factory=dict)
    #: The window (start, end) of each run asked for in this process.
    windows: dict[str, tuple[int, int]] = field(default_factory=dict)
    reused: int = 0

    def __post_init__(self) -> None:
        if self.store is not None and self.sweep is not None:
            for rec in self.store.list_sweep_runs(self.sweep.id):
                run_id = rec.id.partition("/")[2]
                self.results[run_id] = RunResult(run_id, rec.params, rec.stats, rec.error)

    def run(self, points: Sequence[Mapping[str, Any]], start: int,
            end: int) -> list[RunResult]:
        """The results of ``points`` on the window ``start:end``, in the order of
        ``points``: those already known are reused, the rest are run."""
        specs = [RunSpec.of(p, start, end) for p in points]
        self.windows.update((s.run_id, (start, end)) for s in specs)
        todo = list({s.run_id: s for s in specs if s.run_id not in self.results}.values())
        for s in specs:
            if s.run_id in self.results:
                self.reused += 1
                if self.on_result is not None:
                    self.on_result(self.results[s.run_id], True)
        pending: list[RunResult] = []
        last = time.monotonic()
        try:
            for result in self.executor.run(self.job, todo):
                self.results[result.run_id] = result
                pending.append(result)
                if self.on_result is not None:
                    self.on_result(result, False)
                if time.monotonic() - last >= self.flush_seconds:
                    self._store(pending)
                    pending, last = [], time.monotonic()
        finally:
            self._store(pending)
        return [self.results[s.run_id] for s in specs]

    def _store(self, results: list[RunResult]) -> None:
        if self.store is None or self.sweep is None or not results:
            return
        now = datetime.now(UTC)
        self.store.save_sweep_runs(self.sweep.id, [
            RunRecord(id=f"{self.sweep.id}/{r.run_id}", kind="sweep",
                      strategy=self.job.strategy, started_at=now, finished_at=now,
                      params=r.params, stats=r.stats,
                      status="failed" if r.error else "finished", error=r.error)
            for r in results])


def grid_search(search: Search, points: Sequence[Mapping[str, Any]], start: int,
                end: int) -> list[RunResult]:
    """Every point of the grid."""
    return search.run(points, start, end)


def random_search(search: Search, points: Sequence[Mapping[str, Any]], start: int, end: int,
                  *, max_runs: int, seed: int = 0) -> list[RunResult]:
    """``max_runs`` points of the grid drawn at random without replacement (``seed``: the
    same draw every time, so a resumed sweep asks for the same runs)."""
    chosen = random.Random(seed).sample(range(len(points)), min(max_runs, len(points)))
    return search.run([points[k] for k in sorted(chosen)], start, end)


def optuna_search(search: Search, ranges: Sequence[ParamRange],
                  constraint: Constraint | None, objective: Objective, start: int, end: int,
                  *, max_runs: int, batch: int, seed: int = 0) -> list[RunResult]:
    """A model-based search with Optuna's TPE sampler over the grid's values: ``batch``
    trials asked at a time (one per worker), run together, told in the order asked. A point
    the constraint refuses is told as pruned without a run; a point asked again reuses its
    result. Seeded, and told in a fixed order, so a resumed sweep asks the same points and
    finds them in the store."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed)
    study = optuna.create_study(direction="maximize" if objective.maximize else "minimize",
                                sampler=sampler)
    distributions: dict[str, optuna.distributions.BaseDistribution] = {
        r.name: optuna.distributions.CategoricalDistribution(list(r.values)) for r in ranges}
    done: list[RunResult] = []
    seen: set[str] = set()
    asked = 0
    refused = 0
    while len(seen) < max_runs and asked < max_runs * 20 and refused < max_runs * 50:
        trials = [study.ask(distributions) for _ in range(min(batch, max_runs - len(seen)))]
        asked += len(trials)
        runnable = []
        for trial in trials:
            if constraint is not None and not constraint(trial.params):
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                refused += 1
            else:
                runnable.append(trial)
        results = search.run([t.params for t in runnable], start, end)
        for trial, result in zip(runnable, results, strict=True):
            value = objective.value(result.stats) if result.error is None else None
            if value is None:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(trial, value)
            if result.run_id not in seen:
                seen.add(result.run_id)
                done.append(result)
        if len(seen) >= _grid_size(ranges, constraint):
            break
    return done


def _grid_size(ranges: Sequence[ParamRange], constraint: Constraint | None) -> int:
    total = math.prod(len(r.values) for r in ranges)
    return total if constraint is None or total > 100_000 else len(grid_points(ranges,
                                                                               constraint))
