"""Sweeps on a Dask cluster: Dask places the runs, each run is a sandboxed back-test.

:class:`DaskExecutor` is an :class:`~sandtrade.backtest.sweep.Executor` that runs a sweep on
a `Dask distributed <https://distributed.dask.org>`_ cluster (a scheduler and ``dask
worker`` processes on this machine or others, each with sandtrade installed). Dask is only
the placement: a Dask task is one run, and runs exactly as in a local sweep
(:class:`~sandtrade.sandbox.sweep.LocalExecutor`): in a sandboxed worker of the sweep's
``sweep`` task (:mod:`sandtrade.sandbox.worker.sweep_task`), started by the Dask worker's own
:class:`~sandtrade.sandbox.supervisor.Supervisor` (one per Dask worker process, its workers
forked from a warm zygote), so the sandbox stays the unit of isolation.

The sweep's job (strategy and bars) is scattered once to every Dask worker; each Dask worker
thread keeps one sandboxed worker for the sweep, sent the bars once, and hands it the runs
that Dask gives the thread, one at a time (as the local pool's threads do); it is replaced
when a limit killed it or it used half of its CPU time, and closed when the sweep ends.
Results are gathered as they finish (``as_completed``). A run whose Dask worker was lost is
run again on another (Dask reschedules it), and each run yields exactly one result.

``distributed`` is an optional dependency (``pip install 'sandtrade[cluster]'``): this module
imports it when it is used, and says how to install it when it is missing.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from sandtrade.backtest.sweep import RunResult, RunSpec, SweepJob
from sandtrade.errors import SandtradeError
from sandtrade.sandbox.supervisor import Supervisor, Worker
from sandtrade.sandbox.sweep import LocalExecutor, encoded_bars

if TYPE_CHECKING:
    from distributed import Client, LocalCluster

__all__ = ["ClusterError", "DaskExecutor", "cluster_executor", "start_local_cluster"]

#: What to install when ``distributed`` is missing.
INSTALL_HINT = "pip install 'sandtrade[cluster]' (Dask distributed)"


class ClusterError(SandtradeError):
    """The cluster cannot be used: ``distributed`` is missing, the address is wrong, or the
    scheduler cannot be reached."""


class _Session:
    """One sandboxed worker of one sweep, in one Dask worker thread: started with the
    sweep's task, sent its bars once, then given that thread's runs one at a time."""

    def __init__(self, job: SweepJob, supervisor: Supervisor) -> None:
        symbols, chunks = encoded_bars(job)
        task = {"task": "sweep", "path": job.strategy, "source": job.source,
                "request": job.request.model_dump(mode="json"), "symbols": symbols}
        self.worker: Worker = supervisor.start(task, name=job.strategy, wall_limit=False)
        self._closed = False
        try:
            for count, payload in chunks:
                self.worker.send({"type": "bars", "count": count}, payload)
            self.worker.send({"type": "end"})
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """End the worker (once: the sweep's end and the thread that drives it may both)."""
        with _LOCK:
            if self._closed:
                return
            self._closed = True
        self.worker.close_input()
        with contextlib.suppress(SandtradeError, OSError):
            self.worker.close()


_SUPERVISOR: Supervisor | None = None
_LOCK = threading.Lock()
#: Each sweep's sandboxed workers in this Dask worker process, by sweep token.
_SESSIONS: dict[str, list[_Session]] = {}
#: The session of each Dask worker thread: ``(sweep token, session)``.
_THREAD = threading.local()
#: The latest sweeps that ended here: a run of one that starts late (Dask had started it
#: before the sweep's end cancelled it) starts no sandbox that nobody would close.
_ENDED: deque[str] = deque(maxlen=256)
#: How many sandboxed workers each sweep started here (replacements included).
_STARTED: Counter[str] = Counter()


def _process_supervisor() -> Supervisor:
    """The supervisor of this (Dask worker) process: made by its first run, kept for the
    next (its zygote stays warm between runs and sweeps)."""
    global _SUPERVISOR
    with _LOCK:
        if _SUPERVISOR is None:
            _SUPERVISOR = Supervisor(zygote=True)
        return _SUPERVISOR


def _drop(token: str, session: _Session) -> None:
    with _LOCK:
        sessions = _SESSIONS.get(token, [])
        if session in sessions:
            sessions.remove(session)
    session.close()


def _dask_run(job: SweepJob, spec: RunSpec, token: str) -> RunResult:
    """A Dask task: one run of the sweep ``token``, on this thread's sandboxed worker."""
    held: tuple[str, _Session] | None = getattr(_THREAD, "held", None)
    if held is not None and held[0] != token:  # left from an earlier sweep
        _drop(*held)
        held = None
    if held is None:
        session = None if token in _ENDED else _Session(job, _process_supervisor())
        with _LOCK:
            ended = token in _ENDED
            if session is not None and not ended:
                _SESSIONS.setdefault(token, []).append(session)
                _STARTED[token] += 1
        if session is None or ended:
            if session is not None:
                session.close()
            return RunResult(spec.run_id, dict(spec.params), {}, "the sweep has ended")
        held = (token, session)
        _THREAD.held = held
    try:
        result, healthy = LocalExecutor.run_one(held[1].worker, spec)
    except BaseException:  # the strategy does not even load: the executor re-raises it
        healthy = False
        raise
    finally:
        if not healthy:  # killed by a limit, or due for renewal: the next run starts one
            _drop(*held)
            _THREAD.held = None
    return result


def _end_sweep(token: str) -> int:
    """Close the sweep's sandboxed workers in this Dask worker process (run on every
    worker when the sweep ends); returns how many it started."""
    with _LOCK:
        _ENDED.append(token)
        sessions = _SESSIONS.pop(token, [])
        started = _STARTED.pop(token, 0)
    for session in sessions:
        session.close()
    return started


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"--cluster needs Dask distributed: {INSTALL_HINT}") from None
    return distributed


def start_local_cluster(workers: int) -> LocalCluster:
    """A Dask cluster of ``workers`` processes on this machine (one run at a time each),
    listening on loopback only; its ``dashboard_link`` is the dashboard."""
    if workers < 1:
        raise ClusterError(f"local:{workers}: a local cluster needs at least one worker")
    distributed = _distributed()
    return distributed.LocalCluster(  # type: ignore[no-any-return]
        n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address="127.0.0.1:0")


class DaskExecutor:
    """Runs sweeps on the Dask cluster whose scheduler is at ``address``
    (``tcp://host:8786``), or with a ``distributed.Client`` already made."""

    def __init__(self, address: str | Client, *, timeout: float = 30.0) -> None:
        self._address = address
        self._timeout = timeout
        self._client: Client | None = None
        self._owns_client = isinstance(address, str)
        #: Sandboxed workers the last :meth:`run` started on the workers still there at its
        #: end (one per Dask worker thread that got runs, plus replacements).
        self.started = 0

    @property
    def client(self) -> Client:
        """The client of the cluster (connected on first use)."""
        if self._client is None:
            if not isinstance(self._address, str):
                self._client = self._address
            else:
                distributed = _distributed()
                try:
                    self._client = distributed.Client(self._address, timeout=self._timeout)
                except (OSError, TimeoutError) as e:
                    raise ClusterError(f"cannot reach the Dask scheduler at "
                                       f"{self._address}: {e}") from None
        return self._client

    def run(self, job: SweepJob, runs: Sequence[RunSpec]) -> Iterator[RunResult]:
        """Run each spec of ``runs`` once on the cluster (a run id given twice runs once) and
        yield each result as its run finishes (see :class:`~sandtrade.backtest.sweep.
        Executor`). ``StrategyError`` when the strategy cannot even load. Closing the
        iterator early cancels what is left."""
        distributed = _distributed()
        client = self.client
        specs = list({spec.run_id: spec for spec in runs}.values())
        if not specs:
            return
        # Once to every worker now, from there to any worker that joins later.
        data = client.scatter(job, broadcast=True, hash=False)
        token = uuid.uuid4().hex[:12]
        futures = {client.submit(_dask_run, data, spec, token,
                                 key=f"sandtrade-run-{spec.run_id}-{token}"): spec
                   for spec in specs}
        left = set(futures)
        try:
            for future in distributed.as_completed(futures):
                spec = futures[future]
                left.discard(future)
                try:
                    # Waits when the result was lost with its worker after it finished:
                    # the scheduler computes it again for this future.
                    result = future.result()
                except distributed.KilledWorker as error:
                    # Every worker that took it died (Dask gives up after a few). Any other
                    # exception is the executor failing (the strategy does not load, no
                    # sandbox starts), raised as LocalExecutor raises it.
                    result = RunResult(spec.run_id, dict(spec.params), {},
                                       f"the Dask workers running it died: {error}")
                future.release()
                yield result
        finally:
            if left:
                client.cancel(list(left))
            client.cancel([data])
            with contextlib.suppress(Exception):  # a worker may be gone; its sessions too
                ended = client.run(_end_sweep, token, on_error="ignore")
                self.started = sum(n for n in ended.values() if type(n) is int)

    def close(self) -> None:
        """Disconnect from the cluster (when this executor connected)."""
        if self._client is not None and self._owns_client:
            self._client.close()
        self._client = None


_LOCAL = re.compile(r"local:(\d{1,4})")
_SCHEDULER = re.compile(r"(tcp|tls)://[^\s/]+:\d{1,5}")


@contextlib.contextmanager
def cluster_executor(cluster: str, *, say: Callable[[str], None] = print
                     ) -> Iterator[DaskExecutor]:
    """The executor of ``--cluster``: ``tcp://HOST:PORT`` (or ``tls://``) connects to that
    scheduler; ``local:N`` starts a Dask cluster of N worker processes here (loopback only)
    and ``say`` s its dashboard link. Closed (the local cluster stopped) on exit."""
    if m := _LOCAL.fullmatch(cluster):
        local = start_local_cluster(int(m.group(1)))
        distributed = _distributed()
        client = distributed.Client(local)
        say(f"Dask dashboard: {local.dashboard_link}")
        try:
            yield DaskExecutor(client)
        finally:
            client.close()
            local.close()
    elif _SCHEDULER.fullmatch(cluster):
        executor = DaskExecutor(cluster)
        try:
            yield executor
        finally:
            executor.close()
    else:
        raise ClusterError(f"--cluster {cluster!r}: give a Dask scheduler's address "
                           "(tcp://HOST:8786) or local:N (N worker processes here)")
