"""A sweep: many back-tests of one strategy on one data set, each with its own parameters and
bar window, and the seam every place that runs them implements (:class:`Executor`).

A :class:`SweepJob` is what every run of a sweep shares: the strategy (its path, for messages,
and its source), the bars of each symbol, and the back-test settings (a
:class:`~sandtrade.backtest.request.BacktestRequest`, whose ``data`` and ``params`` are not
read). A :class:`RunSpec` is one run: its parameters and its window of the job's timestamps.
An :class:`Executor` runs a job's runs somewhere and yields a :class:`RunResult` for each as it
finishes, in any order: :class:`~sandtrade.sandbox.sweep.LocalExecutor` in sandboxed workers on
this machine (the bars shipped to each worker once per sweep, not once per run), a
``DaskExecutor`` on a Dask cluster (each task running the same sandboxed back-test).

Every run is sandboxed wherever it runs; an executor only places work. A run that fails (the
strategy raised, a limit killed its worker) is a result with ``error`` set, never an exception
that ends the sweep: a sweep of a thousand runs survives one bad parameter set.

Pure types on purpose (the worker imports none of this, the Dask executor pickles them).
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sandtrade.backtest.request import BacktestRequest
from sandtrade.models import Bar

__all__ = ["Executor", "RunResult", "RunSpec", "SweepJob", "run_id_for"]


def run_id_for(params: Mapping[str, Any], start: int, end: int) -> str:
    """A run's stable id: a hash of its parameters (by name, any order) and its window, so
    the same run has the same id in every sweep and a resumed sweep finds what it did."""
    text = json.dumps({"params": dict(sorted(params.items())), "window": [start, end]},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep: ``params`` (overrides of the strategy's defaults) on the job's
    timestamps ``start`` to ``end`` (indices into :attr:`SweepJob.times`, end exclusive)."""

    run_id: str
    params: dict[str, Any]
    start: int
    end: int

    @classmethod
    def of(cls, params: Mapping[str, Any], start: int, end: int) -> RunSpec:
        """The run of ``params`` on that window, with its stable id (:func:`run_id_for`)."""
        return cls(run_id_for(params, start, end), dict(params), start, end)


@dataclass(frozen=True)
class RunResult:
    """How one run ended: the back-test's statistics (backtesting.py's names, as ``sandtrade
    backtest --json`` prints them), or ``error`` (a person's reason: the strategy's
    ``file:line`` error, or why the sandbox stopped it) and no statistics."""

    run_id: str
    params: dict[str, Any]
    stats: dict[str, Any]
    error: str | None = None


@dataclass
class SweepJob:
    """What every run of a sweep shares.

    :param strategy: the strategy's path (as messages name it).
    :param source: the strategy's source text (the worker never reads files).
    :param data: each symbol's bars, in time order (shipped to a worker once per sweep).
    :param request: the back-test settings (cash, broker, close_at_end, benchmark, risk,
        options); its ``data`` and ``params`` are not read.
    """

    strategy: str
    source: str
    data: dict[str, list[Bar]]
    request: BacktestRequest
    _times: list[datetime] | None = field(default=None, repr=False)

    @property
    def times(self) -> list[datetime]:
        """Every timestamp of the data, sorted, once each: what a run's window indexes (for
        one symbol, its bars)."""
        if self._times is None:
            if len(self.data) == 1:
                self._times = [b.time for b in next(iter(self.data.values()))]
            else:
                self._times = sorted({b.time for bars in self.data.values() for b in bars})
        return self._times

    def window(self, start: int, end: int) -> dict[str, list[Bar]]:
        """Each symbol's bars within timestamps ``start`` to ``end`` (end exclusive)."""
        times = self.times
        if not 0 <= start < end <= len(times):
            raise ValueError(f"window {start}:{end} is not within the {len(times):,} "
                             "timestamps of the data")
        if len(self.data) == 1:
            symbol, bars = next(iter(self.data.items()))
            return {symbol: bars[start:end]}
        lo, hi = times[start], times[end - 1]
        out = {}
        for symbol, bars in self.data.items():
            keys = [b.time for b in bars]
            out[symbol] = bars[bisect_left(keys, lo):bisect_right(keys, hi)]
        return out


class Executor(Protocol):
    """Runs the runs of a sweep somewhere, each in a sandboxed worker."""

    def run(self, job: SweepJob, runs: Sequence[RunSpec]) -> Iterator[RunResult]:
        """Run every one of ``runs`` once and yield its result as it finishes (any order).

        The job's bars go to each worker once, not once per run. A run that fails is a
        result with ``error``; an exception is for the executor itself failing (no worker
        can start). Closing the iterator early (Ctrl-C) stops the workers; the runs not yet
        yielded are not done.
        """
        ...
