"""Sweeps on this machine: :class:`LocalExecutor`, a pool of warm sandboxed workers.

Each of the pool's ``workers`` threads drives one sandboxed worker
(:mod:`sandtrade.sandbox.worker.sweep_task`): it starts it with the sweep's strategy and
settings, ships it the sweep's bars once (encoded once for every worker), then hands it runs
one at a time from a shared queue, so a fast worker takes more runs and none waits for
another; each result is yielded as it arrives. A worker is replaced, and sent the bars again,
when a limit killed it (that run is a result with its reason) and when it has used half of its
CPU-time limit (``RLIMIT_CPU`` holds for a worker's whole life, so a long sweep renews its
workers rather than raising the limit). The sandbox's other limits hold for every run: the
per-event budget (a hook that hangs), memory, output; a run's wall time is bounded by
``wall_seconds``.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

from sandtrade.backtest.sweep import RunResult, RunSpec, SweepJob
from sandtrade.errors import SandtradeError, StrategyError
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.runner import CHUNK_BARS
from sandtrade.sandbox.supervisor import SandboxKilled, Supervisor, Worker
from sandtrade.sandbox.wire import encode_bars, untrusted_text

__all__ = ["LocalExecutor", "checked_stats", "encoded_bars"]

#: Bounds on the statistics a worker reports for a run (untrusted data).
MAX_STATS = 200
MAX_STAT_KEY = 100
MAX_STAT_TEXT = 200
#: A worker is renewed once it has used this share of its CPU-time limit.
RECYCLE_CPU_SHARE = 0.5


def checked_stats(stats: object) -> dict[str, Any]:
    """A worker's statistics of a run, checked as the untrusted data they are: a bounded
    dict of names to numbers, booleans, short strings or None. ``ValueError`` otherwise."""
    if type(stats) is not dict or len(stats) > MAX_STATS:
        raise ValueError(f"the statistics are not a dict of at most {MAX_STATS} entries")
    for key, value in stats.items():
        if type(key) is not str or len(key) > MAX_STAT_KEY or not key.isprintable():
            raise ValueError("a statistic's name is not short printable text")
        if value is None or type(value) in (bool, int):
            continue
        if type(value) is float:
            continue  # NaN and inf are what a figure without data is
        if type(value) is str and len(value) <= MAX_STAT_TEXT:
            continue
        raise ValueError(f"the statistic {key!r} is not a number or short text")
    return stats


def encoded_bars(job: SweepJob) -> tuple[list[str], list[tuple[int, bytes]]]:
    """The job's symbols and its bars merged in time order as ``bars`` frames' ``(count,
    payload)``: encoded once per sweep, sent to every worker."""
    import heapq

    symbols = list(job.data)
    index = {s: k for k, s in enumerate(symbols)}
    streams = list(job.data.values())
    merged = iter(streams[0]) if len(streams) == 1 else heapq.merge(
        *streams, key=lambda b: b.time)
    chunks = []
    while chunk := list(islice(merged, CHUNK_BARS)):
        chunks.append(encode_bars(chunk, index))
    return symbols, chunks


_STARTER: ThreadPoolExecutor | None = None
_STARTER_LOCK = threading.Lock()


def _starter() -> ThreadPoolExecutor:
    """The threads that spawn sweep workers, alive as long as the process (see
    ``supervisor._spawner``: ``PR_SET_PDEATHSIG`` follows the spawning thread)."""
    global _STARTER
    with _STARTER_LOCK:
        if _STARTER is None:
            _STARTER = ThreadPoolExecutor(max_workers=os.cpu_count() or 2,
                                          thread_name_prefix="sweep-start")
        return _STARTER


class LocalExecutor:
    """Runs a sweep's runs in ``workers`` sandboxed worker processes on this machine.

    Between :meth:`run` calls of the same job the workers wait warm, holding the bars (a
    walk-forward's windows and Optuna's batches then cost no boot and no new copy of the
    bars); :meth:`close` (or leaving a ``with`` block) ends them.

    :param workers: how many at once (default: one per core).
    :param limits: each worker's limits (default: the sandbox's defaults).
    :param supervisor: where workers come from (default: a plain supervisor with ``limits``).
    """

    def __init__(self, workers: int | None = None, *, limits: WorkerLimits | None = None,
                 supervisor: Supervisor | None = None) -> None:
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.supervisor = supervisor or Supervisor(limits)
        #: Workers started during the last :meth:`run` (the first ones and replacements).
        self.started = 0
        # Workers that finished their share of a run() and wait, warm and holding the bars,
        # for the next run() of the same job (a walk-forward's windows, Optuna's batches).
        self._idle: list[Worker] = []
        self._idle_job: SweepJob | None = None
        self._idle_lock = threading.Lock()

    def close(self) -> None:
        """End the workers kept warm between :meth:`run` calls."""
        with self._idle_lock:
            idle, self._idle, self._idle_job = self._idle, [], None
        for worker in idle:
            worker.close_input()
            with contextlib.suppress(SandtradeError, OSError):
                worker.close()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _warm(self, job: SweepJob) -> Worker | None:
        with self._idle_lock:
            while self._idle and self._idle_job is job:
                worker = self._idle.pop()
                if worker.proc.poll() is None and worker.kill_reason is None:
                    return worker
                worker.close()
        return None

    def _park(self, job: SweepJob, worker: Worker) -> None:
        with self._idle_lock:
            if self._idle_job is not job:
                stale, self._idle = self._idle, []
                self._idle_job = job
            else:
                stale = []
            self._idle.append(worker)
        for old in stale:
            old.close()

    def run(self, job: SweepJob, runs: Sequence[RunSpec]) -> Iterator[RunResult]:
        """Run every one of ``runs`` and yield each result as it finishes (see
        :class:`~sandtrade.backtest.sweep.Executor`). ``StrategyError`` when the strategy
        cannot even load (every run would fail the same way)."""
        todo: deque[RunSpec] = deque(runs)
        if not todo:
            return
        if self._idle_job is not job:
            self.close()  # another job's workers hold other bars
        symbols, chunks = encoded_bars(job)
        task = {"task": "sweep", "path": job.strategy, "source": job.source,
                "request": job.request.model_dump(mode="json"), "symbols": symbols}
        results: queue.Queue[RunResult | BaseException | None] = queue.Queue()
        stop = threading.Event()
        lock = threading.Lock()
        live: dict[int, Worker] = {}
        self.started = 0

        def take() -> RunSpec | None:
            with lock:
                return todo.popleft() if todo and not stop.is_set() else None

        def start() -> Worker:
            # On a thread that outlives this run: a worker's parent-death signal fires when
            # the thread that spawned it ends, and a warm worker outlives its run() call.
            worker = _starter().submit(self.supervisor.start, task, name=job.strategy,
                                       wall_limit=False).result()
            with lock:
                live[id(worker)] = worker
                self.started += 1
            for count, payload in chunks:
                worker.send({"type": "bars", "count": count}, payload)
            worker.send({"type": "end"})
            return worker

        def drive() -> None:
            worker: Worker | None = None
            try:
                while (spec := take()) is not None:
                    if worker is None:
                        worker = self._warm(job)
                        if worker is not None:
                            with lock:
                                live[id(worker)] = worker
                        else:
                            worker = start()
                    result, healthy = self.run_one(worker, spec)
                    results.put(result)
                    if not healthy:
                        self._close(worker, live, lock)
                        worker = None
                if worker is not None and not stop.is_set():
                    with lock:
                        live.pop(id(worker), None)
                    self._park(job, worker)
                    worker = None
            except BaseException as e:  # the executor's own failure: the sweep stops
                results.put(e)
            finally:
                if worker is not None:
                    self._close(worker, live, lock)
                results.put(None)

        threads = [threading.Thread(target=drive, daemon=True, name=f"sweep-{k}")
                   for k in range(min(self.workers, len(todo)))]
        for t in threads:
            t.start()
        running = len(threads)
        try:
            while running:
                item = results.get()
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    raise item
                else:
                    yield item
        finally:
            stopped_early = running > 0
            stop.set()
            with lock:
                doomed = list(live.values()) if stopped_early else []
            for worker in doomed:  # Ctrl-C or an early close: no run goes on unseen
                worker.kill("exit", "the sweep was stopped")
            for t in threads:
                t.join(timeout=10)
            if stopped_early:
                self.close()

    @staticmethod
    def run_one(worker: Worker, spec: RunSpec) -> tuple[RunResult, bool]:
        """Run ``spec`` on ``worker`` (a ``sweep`` task's, its bars sent): its result, and
        whether the worker may take more. The Dask executor drives its workers with it too."""
        worker.event_hook = f"run {spec.run_id}"
        worker.expect_progress = True
        worker.send({"type": "run", "run_id": spec.run_id, "params": spec.params,
                     "start": spec.start, "end": spec.end})
        try:
            header, _ = worker.recv(timeout=worker.limits.wall_seconds)
        except SandboxKilled as e:
            return RunResult(spec.run_id, spec.params, {}, str(e)), False
        finally:
            worker.expect_progress = False
        kind = header.get("type")
        if kind == "error":  # the task itself failed: the strategy does not load
            message = untrusted_text(str(header.get("message", "failed")), 4000)
            if header.get("reason") == "memory":
                return RunResult(spec.run_id, spec.params, {}, message), False
            raise StrategyError(message)
        if kind not in ("run_done", "run_error") or header.get("run_id") != spec.run_id:
            worker.kill("protocol", f"unexpected frame {kind!r} for run {spec.run_id}")
            return RunResult(spec.run_id, spec.params, {},
                             f"{worker.name}: the worker broke the protocol"), False
        if kind == "run_error":
            message = untrusted_text(str(header.get("message", "failed")), 4000)
            return RunResult(spec.run_id, spec.params, {}, message), True
        try:
            stats = checked_stats(header.get("stats"))
        except ValueError as e:
            worker.kill("protocol", f"malformed statistics: {e}")
            return RunResult(spec.run_id, spec.params, {},
                             f"{worker.name}: the worker's statistics are malformed: {e}"), False
        cpu = header.get("cpu_s")
        spent = float(cpu) if isinstance(cpu, int | float) and math.isfinite(cpu) else 0.0
        healthy = spent < worker.limits.cpu_seconds * RECYCLE_CPU_SHARE
        return RunResult(spec.run_id, spec.params, stats), healthy

    @staticmethod
    def _close(worker: Worker, live: dict[int, Worker], lock: threading.Lock) -> None:
        worker.close_input()
        with contextlib.suppress(SandtradeError, OSError):
            worker.close()
        with lock:
            live.pop(id(worker), None)
