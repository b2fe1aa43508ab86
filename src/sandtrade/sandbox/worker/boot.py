"""The worker's life: boot, confine, run one task. The child side of the sandbox.

Started by the supervisor as ``python -I -m sandtrade.sandbox.worker`` with an empty
environment, only stdin/stdout/stderr open, its own session, in an empty private directory.
Its first frame (on stdin, ``boot``) carries the limits, never argv or the environment; the
task (the strategy's source and what to run) comes in a second frame, after confinement, so a
supervisor can boot a spare worker before it knows the task. Before any strategy code it:

1. imports everything it will need (after the uid drop the interpreter's files may be
   unreadable, and a strategy must not be able to trigger imports anyway): its own modules,
   the fill profiles plugins contribute, which the host names in the boot frame by reference
   (``module:QualName``; the worker never loads plugins itself), the strategy modules it
   names (``[name, factory]``: numpy's and TA-Lib's reviewed facades, and plugins'; built and
   warmed up here, with one BLAS thread, and only those the strategy imports when the task
   was known before the boot), QuantLib for option prices (unless the task was known before
   the boot and cannot price options: :func:`~sandtrade.strategy.modules.may_price_options`),
   and whatever a tiny trusted back-test loads lazily (:func:`_warm_up`);
2. confines itself (:mod:`sandtrade.sandbox.worker.confine`: rlimits, parent-death signal,
   network namespace, uid drop, no_new_privs, Landlock, seccomp).

Each OS layer is detected and reported in the ``ready`` frame; none is required, so the worker
runs on machines that refuse some of them, and ``sandtrade doctor`` shows what this machine
gives. The worker is single-threaded. Then it compiles the strategy under the policy
(:mod:`sandtrade.strategy.policy`) and runs the task: ``check``, ``live``
(:mod:`~sandtrade.sandbox.worker.live_task`) or ``backtest``
(:mod:`~sandtrade.sandbox.worker.backtest_task`).
"""

from __future__ import annotations

# Everything the worker and strategies may use is imported before the process limits itself.
import _strptime  # noqa: F401  - datetime.strptime imports it lazily
import ctypes
import encodings.idna  # noqa: F401
import importlib
import json  # noqa: F401
import os
import sys
import traceback
from array import array
from collections.abc import Callable
from typing import IO, Any

from sandtrade.backtest.engine import simulate
from sandtrade.backtest.request import BacktestRequest
from sandtrade.backtest.result import TRADES, Simulation
from sandtrade.broker.fills import FillProfile
from sandtrade.errors import SandtradeError, StrategyError
from sandtrade.models import Bar, Order, Trade
from sandtrade.options import pricing
from sandtrade.sandbox.limits import RunQuotas, WorkerLimits
from sandtrade.sandbox.wire import read_frame, write_frame
from sandtrade.sandbox.worker.backtest_task import run_backtest_task
from sandtrade.sandbox.worker.confine import NOBODY, confine
from sandtrade.sandbox.worker.live_task import EVENT_LOG_WIRE_BYTES, run_live
from sandtrade.sandbox.worker.sweep_task import run_sweep_task
from sandtrade.strategy import (
    modules,
    policy,
    static_check,  # noqa: F401  - a check task reads the source
)
from sandtrade.strategy.context import API_TYPES
from sandtrade.strategy.loader import load_strategy_source

__all__ = ["main", "prepare", "run_task", "serve"]

_WARMUP_STRATEGY = """
def on_bar(ctx, bar):
    fast = ctx.ta.sma(3)
    if ctx.ta.crossover(fast, ctx.ta.sma(5)) or ctx.ta.crossunder(fast, ctx.ta.ema(5)):
        ctx.close_position()
        ctx.buy(limit=bar.close * 1.01, tif="day") if ctx.position().qty >= 0 else ctx.sell()
    ctx.ta.rsi(3), ctx.ta.atr(3), ctx.ta.bb(3), ctx.ta.highest(3), ctx.ta.lowest(3)
    ctx.history(3), ctx.account, ctx.orders(), ctx.log("warm")
"""


def _warm_up() -> None:
    """Run a tiny trusted back-test end to end, so that every lazy import and code path the
    real run needs is loaded while the interpreter's files are still readable."""
    from datetime import datetime, timedelta

    strategy = load_strategy_source(_WARMUP_STRATEGY, "warmup.py", restricted=True)
    t0 = datetime(2000, 1, 3)
    bars = [Bar("W", t0 + timedelta(days=k), 10 + k % 7, 12 + k % 7, 9 + k % 7, 11 + k % 5, 1e3)
            for k in range(60)]

    def measure(_: list[Bar], equities: array[float], trades: list[Trade]) -> None:
        equities.tobytes()
        TRADES.dump_json(trades)
        TRADES.validate_json(TRADES.dump_json(trades))

    sim = simulate(strategy, bars, close_at_end=True, keep_bars=False, measure=measure)
    Simulation.model_validate_json(sim.model_dump_json())
    BacktestRequest.model_validate({"strategy": "x", "data": [{"path": "x"}]})
    datetime.strptime("2000-01-01", "%Y-%m-%d")
    datetime.fromisoformat("2000-01-01T00:00:00")
    # A live run's replies are orders, validated here: that path is warmed too.
    order = Order(id="w", account="w", symbol="W", side="buy", qty=1.0, created_at=t0)
    Order.model_validate(order.model_dump(mode="json"))


def _heartbeat(fd: object) -> Callable[[], None] | None:
    """The counter the supervisor watches, in the shared page it passed as ``fd``."""
    if type(fd) is not int:
        return None
    import mmap

    page = mmap.mmap(fd, 8)
    os.close(fd)
    counter = ctypes.c_uint64.from_buffer(page)
    _KEEP.append(page)

    def beat() -> None:
        counter.value += 1

    return beat


_KEEP: list[Any] = []


def _import_fill_profiles(references: object) -> tuple[list[type[FillProfile]], str | None]:
    """The fill profiles the host named (``module:QualName``, contributed by its plugins),
    imported now from the host's import path, and what to report of them (None when none
    were named). One that cannot be imported, or is no ``FillProfile``, is left out and named
    in the report: a run that selects it then fails with the broker's "unknown fill profile"
    error, as when a plugin fails to load on the host."""
    if not isinstance(references, list) or not references:
        return [], None
    loaded: list[type[FillProfile]] = []
    failed: list[str] = []
    for reference in references:
        module_name, _, qualname = str(reference).partition(":")
        try:
            found: object = importlib.import_module(module_name)
            for part in qualname.split("."):
                found = getattr(found, part)
        except Exception as e:  # third-party code: contained, reported, never fatal
            failed.append(f"{reference}: {type(e).__name__}: {e}")
            continue
        if isinstance(found, type) and issubclass(found, FillProfile):
            loaded.append(found)
        else:
            failed.append(f"{reference}: not a FillProfile subclass")
    names = ", ".join(p.name for p in loaded)
    if failed:
        return loaded, "failed: " + "; ".join(failed) + (f" (loaded: {names})" if names else "")
    return loaded, f"on ({names})"


def _build_strategy_modules(references: object) -> str | None:
    """Build and register the strategy modules the host named (``[name, factory]`` pairs
    from its plugins, ``sandtrade_strategy_modules``), then warm them up; what to report
    (None when none were named). One that fails to build is left out and named: a strategy
    that imports it is then told it is not allowed, as with any module the host does not
    offer."""
    if not isinstance(references, list) or not references:
        return None
    built: list[str] = []
    failed: list[str] = []
    for entry in references:
        if not (isinstance(entry, list) and len(entry) == 2
                and all(type(x) is str for x in entry)):
            failed.append(f"{entry!r}: not a [name, factory] pair")
            continue
        name, factory = entry
        try:
            policy.register_module(name, modules.build(factory))
        except Exception as e:  # a plugin's code: contained, reported, never fatal
            failed.append(f"{name} ({factory}): {type(e).__name__}: {e}")
            continue
        built.append(name)
    if "numpy" in sys.modules:  # a facade loaded numpy: its arrays are guarded, warmed up
        from sandtrade.strategy import numeric

        try:
            numeric.warm_up(built)
        except Exception as e:
            failed.append(f"warm-up: {type(e).__name__}: {e}")
    names = ", ".join(built)
    if failed:
        return "failed: " + "; ".join(failed) + (f" (built: {names})" if names else "")
    return f"on ({names})"


def _narrow(allowed: object, listed: object = None) -> None:
    """``[sandbox] modules`` (the boot frame) or an account's (the task frame); ``listed``:
    every module the host lets strategies import (the boot frame), for messages."""
    if isinstance(listed, list) and all(type(x) is str for x in listed):
        policy.list_modules(listed)
    if isinstance(allowed, list) and all(type(x) is str for x in allowed):
        policy.narrow_modules(allowed)


def _user_error(e: BaseException, path: str) -> str:
    """One line for errors a person can act on; a traceback of the user's frames otherwise."""
    if isinstance(e, SandtradeError):
        return str(e)
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == path]
    where = f"{path}:{frames[-1].lineno}" if frames else path
    return f"{where}: {type(e).__name__}: {e}"


def _run_quotas(task: dict[str, Any], limits: WorkerLimits) -> RunQuotas:
    """A live task's quotas (its account's, sent by the host), else the worker's limits."""
    given = task.get("quotas")
    return limits.run_quotas() if given is None else RunQuotas(*given)


def run_task(task: dict[str, Any], limits: WorkerLimits, stdin: IO[bytes],
             stdout: IO[bytes], beat: Callable[[], None] | None,
             profiles: list[type[FillProfile]]) -> None:
    """Run the task a confined worker was given (a check, a back-test, a sweep of
    back-tests, a live run)."""
    kind = task["task"]
    path = str(task["path"])
    _narrow(task.get("modules"))
    log = policy.StrategyLog(limits.log_bytes)
    if kind == "live":
        # A live run's log is rated (a flood is cut and counted, never a kill) and each
        # event's lines are bounded as they travel, so its `done` frame always fits the
        # host's frame cap.
        log.max_line = policy.MAX_LOG_LINE
        log.max_wire_bytes = EVENT_LOG_WIRE_BYTES
        quotas = _run_quotas(task, limits)
        log.throttle(quotas.log_lines_per_s, quotas.log_bytes_per_s, quotas.log_burst_seconds)
    strategy = load_strategy_source(str(task["source"]), path, restricted=True, print_log=log,
                                    check=kind == "check")
    if kind == "check":
        write_frame(stdout, {"type": "checked", "hooks": sorted(strategy.hooks),
                             "params": strategy.params,
                             "specs": {k: v.to_json() for k, v in strategy.specs.items()},
                             "lines": strategy.lines})
        return
    if kind == "live":
        run_live({**task, "state_bytes": _run_quotas(task, limits).state_bytes}, strategy,
                 log, stdin, stdout,
                 beat, lambda e: _user_error(e, path))
        return
    if kind == "sweep":
        run_sweep_task(task, log, stdin, stdout, beat=beat, profiles=profiles)
        return
    run_backtest_task(task, strategy, log, stdin, stdout, beat=beat, profiles=profiles)


#: Longest error message sent: the text is the strategy's (``raise ValueError("x" * 10**7)``)
#: and a frame past the host's header cap read as a protocol violation, not the user's error.
_MAX_MESSAGE = 16_000


def prepare(header: dict[str, Any]) -> tuple[list[type[FillProfile]], dict[str, str]]:
    """Everything a worker does before it knows its limits: take the host's import path,
    import the fill profiles the host named (trusted plugins' code, from that path: the
    worker was started with -I, which ignores PYTHONPATH) and warm up. Returns the profiles
    and what to report of them. A zygote (:mod:`~sandtrade.sandbox.worker.zygote`) does this
    once for every worker it forks."""
    sys.path[:] = [p for p in header.get("sys_path", sys.path) if os.path.isabs(p)]
    if header.get("options") is not False:  # a spare's, a zygote's, or options named
        pricing.quantlib()
    profiles, profiles_report = _import_fill_profiles(header.get("fill_profiles"))
    modules_report = _build_strategy_modules(header.get("strategy_modules"))
    _warm_up()
    report = {}
    if profiles_report is not None:
        report["fill_profiles"] = profiles_report
    if modules_report is not None:
        report["strategy_modules"] = modules_report
    return profiles, report


def serve(header: dict[str, Any], stdin: IO[bytes], stdout: IO[bytes],
          prepared: tuple[list[type[FillProfile]], dict[str, str]], *,
          parent_pid: object) -> int:
    """The rest of a worker's life after :func:`prepare`, from its ``boot`` frame
    (``header``): confine, answer ``ready``, run the one task. ``parent_pid`` is the process
    whose death must kill this one (the host, or the zygote that forked it); returns the
    exit status."""
    limits = WorkerLimits.model_validate(header["limits"])
    profiles, prepared_report = prepared
    _narrow(header.get("modules"), header.get("importable"))
    beat = _heartbeat(header.get("heartbeat_fd"))
    # Before confinement, when no user code has run: what the host is shown is what this
    # worker's code and the host's choices loaded, nothing a strategy did.
    modules = sorted(sys.modules) if header.get("report_modules") is True else None
    uid = header.get("uid")
    report = confine(limits, supervisor_pid=parent_pid if type(parent_pid) is int else None,
                     uid=uid if type(uid) is int and 0 < uid < 2**31 else NOBODY)
    report.update(prepared_report)
    policy.FAST_ATTRIBUTE_TYPES.update(API_TYPES)
    ready: dict[str, Any] = {"type": "ready", "layers": report}
    if modules is not None:
        ready["modules"] = modules
    write_frame(stdout, ready)
    try:
        task, _ = read_frame(stdin)
    except EOFError:  # a spare that was never given a task
        return 0
    if task.get("type") != "task":
        return 2
    path = str(task.get("path", "strategy.py"))
    try:
        run_task(task, limits, stdin, stdout, beat, profiles)
    except StrategyError as e:
        write_frame(stdout, {"type": "error", "message": str(e)[:_MAX_MESSAGE]})
        return 1
    except BaseException as e:
        if isinstance(e, MemoryError):
            write_frame(stdout, {"type": "error", "reason": "memory",
                                 "message": f"{path}: out of memory "
                                 f"(limit {limits.memory_mb} MiB)"})
        else:
            write_frame(stdout, {"type": "error",
                                 "message": _user_error(e, path)[:_MAX_MESSAGE]})
        return 1
    return 0


def main() -> int:
    """Entry point of the worker process.

    Two frames arrive: ``boot`` (limits, the heartbeat page, the host's import path, the fill
    profiles to import, whether to list the modules it holds), after which the worker warms
    up, confines itself and answers ``ready``; then ``task`` (the strategy's source and what
    to do with it). A supervisor may boot a worker before it has a task for it (a spare), so
    nothing of the task is known before confinement.
    """
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    # Nothing else may write to the channel: stray output goes to stderr.
    sys.stdout = sys.stderr
    try:
        header, _ = read_frame(stdin)
    except EOFError:
        return 0
    if header.get("type") != "boot":
        return 2
    return serve(header, stdin, stdout, prepare(header),
                 parent_pid=header.get("supervisor_pid"))
