"""Back-tests and checks in the sandbox: the host side of ``sandtrade backtest`` and ``check``.

:class:`SandboxRunner` implements the same :class:`~sandtrade.backtest.request.BacktestRunner`
interface as the in-process runner. The host reads the strategy file and the CSV history (a
bad row is the host's error, with file and line); the worker gets the source text and the
bars in large binary chunks and runs the strategy and the broker simulation itself. It
streams back one equity value per timestamp and the trades it closes; this process checks
them and measures the run (:mod:`sandtrade.backtest.meter`) while the worker goes on.
"""

from __future__ import annotations

import heapq
import os
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sandtrade import pine
from sandtrade.backtest.meter import Meter, MeterError
from sandtrade.backtest.request import BacktestRequest
from sandtrade.backtest.result import TRADES, BacktestResult, Simulation
from sandtrade.errors import SandtradeError, StrategyError
from sandtrade.market import iter_csv
from sandtrade.models import Bar, Trade
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.supervisor import SandboxKilled, Supervisor, Worker
from sandtrade.sandbox.wire import encode_bars, untrusted_text
from sandtrade.strategy.loader import resolve_params
from sandtrade.strategy.params import ParamSpec

__all__ = ["CHUNK_BARS", "CheckedStrategy", "SandboxRunner", "check_in_sandbox",
           "check_source_in_sandbox", "inspect_in_sandbox", "inspect_source_in_sandbox"]

#: Bars per message to the worker: large enough that the pipe costs little per bar, small
#: enough (50 bytes a bar) that the next chunk fits in the 1 MiB pipe while the worker works.
CHUNK_BARS = 16_000
#: The first chunk is small, so the worker starts on bars while the host parses the rest; each
#: next chunk is twice the last up to CHUNK_BARS, so the host, which parses a bar in about half
#: the time the worker takes to run it, always has the next chunk sent before the worker is
#: done with the one it has. (A jump from 1,000 straight to 16,000 bars left the worker waiting
#: for its second chunk: about 50 ms of the host's parsing, 49-173 ms measured at load 4-5.)
FIRST_CHUNK_BARS = 1_000
#: Checks that run at once in a shared supervisor's workers (each is a short burst of CPU: more
#: at once than there are cores only makes every one of them slower).
_CHECKS = threading.BoundedSemaphore(os.cpu_count() or 1)


def _read_source(path: str) -> str:
    """The strategy file's source; a Pine strategy (``.pine``) imported first, in memory."""
    try:
        text = Path(path).read_text(encoding="utf-8")
        return pine.import_pine(text, path).source if pine.is_pine(path) else text
    except FileNotFoundError:
        raise StrategyError(f"{path}: no such strategy file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise StrategyError(f"{path}: cannot read the strategy file: {e}") from None


def _finish(worker: Worker, header: dict[str, Any]) -> SandtradeError:
    """The error a worker's ``error`` frame stands for (its message is untrusted text)."""
    message = untrusted_text(str(header.get("message", "failed")), 4000)
    if header.get("reason") == "memory":
        return SandboxKilled(message, "memory")
    return StrategyError(message)


def _validation_detail(e: ValidationError) -> str:
    """The first problem pydantic found, with where it is (``trades.3.pnl: ...``)."""
    err = e.errors()[0]
    where = ".".join(str(x) for x in err["loc"])
    return f"{where}: {err['msg']}" if where else err["msg"]


@dataclass(frozen=True)
class CheckedStrategy:
    """What a worker's check found in a strategy file: its hooks, its parameters' defaults,
    their declarations and the line of each in ``PARAMS``."""

    path: str
    hooks: list[str]
    params: dict[str, Any]
    specs: dict[str, ParamSpec]
    lines: dict[str, int]

    def resolve(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters with ``overrides`` applied and checked against the declarations
        (``StrategyError`` with ``file:line``, see ``resolve_params``)."""
        return resolve_params(self.params, overrides, where=self.path, specs=self.specs,
                              lines=self.lines)


def check_in_sandbox(path: str, limits: WorkerLimits | None = None, *,
                     supervisor: Supervisor | None = None,
                     modules: list[str] | None = None) -> tuple[list[str], dict]:
    """Compile and load ``path`` in a worker (of ``supervisor``, or a plain one), with what
    it may import narrowed to ``modules``: ``(hooks, params)`` or ``StrategyError``."""
    checked = inspect_in_sandbox(path, limits, supervisor=supervisor, modules=modules)
    return checked.hooks, checked.params


def check_source_in_sandbox(source: str, path: str, limits: WorkerLimits | None = None, *,
                            supervisor: Supervisor | None = None,
                            modules: list[str] | None = None) -> tuple[list[str], dict]:
    """Compile and load ``source`` (named ``path``) in a worker, as :func:`check_in_sandbox`:
    one of ``supervisor``'s (a long-lived host's, with its zygote and spare; at most one
    check per core at once), or of a plain supervisor with ``limits``. ``modules`` narrows
    what it may import further (an account's list)."""
    checked = inspect_source_in_sandbox(source, path, limits, supervisor=supervisor,
                                        modules=modules)
    return checked.hooks, checked.params


def inspect_source_in_sandbox(source: str, path: str, limits: WorkerLimits | None = None, *,
                              supervisor: Supervisor | None = None,
                              modules: list[str] | None = None) -> CheckedStrategy:
    """:func:`check_source_in_sandbox`, with the parameters' declarations too."""
    if supervisor is None:
        return _check(Supervisor(limits), source, path, modules)
    with _CHECKS:
        return _check(supervisor, source, path, modules)


def inspect_in_sandbox(path: str, limits: WorkerLimits | None = None, *,
                       supervisor: Supervisor | None = None,
                       modules: list[str] | None = None) -> CheckedStrategy:
    """:func:`check_in_sandbox`, with the parameters' declarations too."""
    return inspect_source_in_sandbox(_read_source(path), path, limits, supervisor=supervisor,
                                     modules=modules)


def _checked(path: str, header: dict[str, Any]) -> CheckedStrategy:
    """The worker's ``checked`` frame, read as the untrusted data it is."""
    hooks, params = header.get("hooks", []), header.get("params", {})
    specs, lines = header.get("specs", {}), header.get("lines", {})
    if not (isinstance(hooks, list) and isinstance(params, dict) and isinstance(specs, dict)
            and isinstance(lines, dict) and set(specs) == set(params)):
        raise SandboxKilled(f"{path}: the worker's check answer is malformed", "protocol")
    try:
        parsed = {str(k): ParamSpec.from_json(v) for k, v in specs.items()}
    except (TypeError, ValueError) as e:
        raise SandboxKilled(f"{path}: the worker's check answer is malformed: {e}",
                            "protocol") from None
    return CheckedStrategy(path=path, hooks=[str(h) for h in hooks], params=dict(params),
                           specs=parsed, lines={str(k): int(v) for k, v in lines.items()
                                                if type(v) is int})


def _check(supervisor: Supervisor, source: str, path: str,
           modules: list[str] | None = None) -> CheckedStrategy:
    task: dict[str, Any] = {"task": "check", "path": path, "source": source}
    if modules is not None:
        task["modules"] = list(modules)
    worker = supervisor.start(task, name=path)
    try:
        header, _ = worker.recv(timeout=worker.limits.event_seconds * 3)
        if header.get("type") == "checked":
            return _checked(path, header)
        if header.get("type") == "error":
            raise _finish(worker, header)
        raise SandboxKilled(f"{path}: unexpected answer from the worker", "protocol")
    finally:
        worker.close()


class SandboxRunner:
    """Runs each back-test in its own sandboxed worker process (from ``supervisor``, e.g. one
    that keeps a spare worker booted; by default a plain one with ``limits``); ``modules``
    narrows what the strategy may import further (an account's list)."""

    def __init__(self, limits: WorkerLimits | None = None, *,
                 supervisor: Supervisor | None = None,
                 modules: list[str] | None = None) -> None:
        self.supervisor = supervisor or Supervisor(limits)
        self.modules = modules
        self.last_worker: Worker | None = None

    def run(self, request: BacktestRequest,
            progress: Callable[[int], None] | None = None) -> BacktestResult:
        """Run ``request`` in a worker; raises ``StrategyError``, ``DataError`` or
        ``SandboxKilled`` (with the reason) when it does not finish."""
        source = _read_source(request.strategy)
        streams: dict[str, Iterator[Bar]] = {}
        for spec in request.data:
            symbol = spec.symbol or Path(spec.path).stem.upper()
            if symbol in streams:
                raise StrategyError(f"{spec.path}: symbol {symbol} is given twice; name one of "
                                    "the files SYMBOL=path.csv")
            streams[symbol] = iter_csv(spec.path, symbol=spec.symbol)
        return self.run_source(source, request, streams, progress)

    def run_source(self, source: str, request: BacktestRequest,
                   data: Mapping[str, Iterable[Bar]],
                   progress: Callable[[int], None] | None = None) -> BacktestResult:
        """Run the strategy ``source`` (named ``request.strategy``) on ``data``, a stream of
        bars per symbol, with ``request``'s settings (its ``data`` is not read).

        The worker simulates and streams its equity values; this process, which parses the
        bars, pairs them with those values and measures the run (statistics, curves) on its
        own core while the worker goes on: see :mod:`sandtrade.backtest.meter`.
        """
        started = time.perf_counter()
        symbols = list(data)
        streams = list(data.values())
        # Before the worker starts: an unknown benchmark is the request's mistake.
        meter = Meter.for_symbols(symbols, benchmark=request.benchmark)
        task = {"task": "backtest", "path": request.strategy, "source": source,
                "request": request.model_dump(mode="json"), "symbols": symbols}
        if self.modules is not None:
            task["modules"] = list(self.modules)
        worker = self.supervisor.start(task, name=request.strategy)
        self.last_worker = worker
        feed_error: list[BaseException] = []
        merged = iter(streams[0]) if len(streams) == 1 else heapq.merge(
            *streams, key=lambda b: b.time)
        index = {s: k for k, s in enumerate(symbols)}
        # Chunks sent, in order; the meter takes them when equity values arrive. Each is put
        # here before it is sent, so the bars of every value the worker reports are here.
        sent: deque[list[Bar]] = deque()

        def feed() -> None:
            try:
                size = FIRST_CHUNK_BARS
                while chunk := list(islice(merged, size)):
                    size = min(size * 2, CHUNK_BARS)
                    count, payload = encode_bars(chunk, index)
                    sent.append(chunk)
                    worker.send({"type": "bars", "count": count}, payload)
                worker.send({"type": "end"})
            except BaseException as e:  # a DataError in the CSV: stop the worker, report it
                feed_error.append(e)
                worker.kill("exit", "the host stopped the run (bad input data)")

        trades: list[Trade] = []
        # The result's size cap holds for it and all the trades sent before it together.
        trade_budget = worker.limits.result_bytes

        def measure(header: dict[str, Any], payload: bytes) -> None:
            nonlocal trade_budget
            count, trades_bytes = header.get("count"), header.get("trades_bytes", 0)
            if (type(count) is not int or type(trades_bytes) is not int or count < 0
                    or trades_bytes < 0 or count * 8 + trades_bytes != len(payload)):
                raise MeterError(f"an equity frame of {len(payload):,} bytes says {count!r} "
                                 f"values and {trades_bytes!r} bytes of trades")
            trade_budget -= trades_bytes
            if trade_budget < 0:
                raise MeterError(f"the trades sent passed the {worker.limits.result_bytes:,}-"
                                 "byte limit of a result")
            while sent:
                meter.add_bars(sent.popleft())
            values = array("d")
            values.frombytes(payload[:count * 8])
            meter.add_equity(values)
            if trades_bytes:
                trades.extend(TRADES.validate_json(payload[count * 8:]))
            if progress is not None:
                progress(meter.n)

        feeder = threading.Thread(target=feed, daemon=True)
        worker.expect_progress = True
        feeder.start()
        try:
            while True:
                try:
                    header, payload = worker.recv()
                except SandboxKilled:
                    feeder.join(timeout=5)
                    if feed_error:
                        raise feed_error[0] from None
                    raise
                kind = header.get("type")
                if kind == "error":
                    feeder.join(timeout=5)
                    if feed_error:
                        raise feed_error[0] from None
                    raise _finish(worker, header)
                if kind not in ("equity", "result"):
                    # Raised here, not left to the next recv: frames the worker wrote before
                    # the kill are still queued, and one of them must not pass for an answer.
                    worker.kill("protocol", f"unexpected frame {kind!r}")
                    raise SandboxKilled(f"{request.strategy}: the worker broke the protocol: "
                                        f"unexpected frame {kind!r}", "protocol")
                try:
                    if kind == "equity":
                        measure(header, payload)
                        continue
                    if len(payload) > trade_budget:
                        raise MeterError(f"the result and the trades sent before it passed "
                                         f"the {worker.limits.result_bytes:,}-byte limit")
                    sim = Simulation.model_validate_json(payload)
                    # The worker caps the strategy's log (StrategyLog: at most one past the
                    # limit, counting a newline a line); what is printed must stay bounded.
                    log_size = sum(len(line) + 1 for line in sim.logs)
                    if log_size > worker.limits.log_bytes + 1:
                        raise MeterError(f"the strategy log of {log_size:,} characters passed "
                                         f"the {worker.limits.log_bytes:,}-byte limit")
                    if sim.trades_sent != len(trades):
                        raise MeterError(f"the result counts {sim.trades_sent:,} trades sent "
                                         f"before it, {len(trades):,} arrived")
                    sim.trades[:0] = trades
                    sim.trades_sent = 0
                    return meter.finish(sim, elapsed_s=time.perf_counter() - started)
                except (MeterError, ValidationError) as e:
                    detail = _validation_detail(e) if isinstance(e, ValidationError) else str(e)
                    worker.kill("protocol", f"malformed {kind} frame: {detail}")
                    raise SandboxKilled(f"{request.strategy}: the worker's {kind} frame is "
                                        f"malformed: {detail}", "protocol") from None
        finally:
            worker.close()
