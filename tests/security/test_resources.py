"""Resources: CPU, time, memory, the C stack, the compiler, processes, threads and output.
Limits are enforced from outside the strategy's reach (kernel rlimits, the supervisor), so an
``except BaseException`` in the strategy cannot swallow them. Each test is one attack."""

from __future__ import annotations

import threading
import time

import pytest

from sandtrade.errors import StrategyError
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.runner import check_in_sandbox
from sandtrade.sandbox.supervisor import SandboxKilled, Supervisor
from sandtrade.sandbox.watchdog import watchdog

from .conftest import CPU_LIMITS, EVENT_LIMITS, LIMITS, WALL_LIMITS, Sandbox

#: Workers killed at their CPU, memory and wall limits (seconds each): part of the slow set.
pytestmark = pytest.mark.slow


def _out_of_memory(sandbox: Sandbox, source: str) -> BaseException:
    """Run ``source``; it must end as a memory kill or a reported ``MemoryError``."""
    with pytest.raises((SandboxKilled, StrategyError)) as info:
        sandbox.run(source)
    err = info.value
    if isinstance(err, SandboxKilled):
        assert err.reason == "memory", f"{err.reason}: {err}"
    else:
        assert "MemoryError" in str(err), str(err)
        assert str(sandbox.root / "attack.py") in str(err)
    return err


# ---------------------------------------------------------------- CPU and time


def test_infinite_loop_killed_for_cpu(sandbox: Sandbox) -> None:
    """``while True: pass`` in a hook: the kernel's CPU limit (SIGXCPU) stops it."""
    err = sandbox.killed("""
        def on_bar(ctx, bar):
            while True:
                pass
    """, "cpu", CPU_LIMITS, "CPU time")
    sandbox.assert_host_unharmed(err)


def test_loop_that_swallows_every_exception_is_still_killed(sandbox: Sandbox) -> None:
    """``except BaseException: pass`` around the loop: in-process timeouts would be swallowed,
    a signal-kill from the kernel is not."""
    err = sandbox.killed("""
        def on_start(ctx):
            while True:
                try:
                    while True:
                        pass
                except BaseException:
                    pass
    """, "cpu", CPU_LIMITS)
    sandbox.assert_host_unharmed(err)


def test_busy_wait_killed_by_the_event_budget(sandbox: Sandbox) -> None:
    """Sleeping without ``time``: a busy wait on the clock inside one hook, under a large CPU
    allowance; the supervisor's per-hook budget stops it."""
    err = sandbox.killed("""
        import datetime

        def on_bar(ctx, bar):
            until = datetime.datetime.now() + datetime.timedelta(days=1)
            while datetime.datetime.now() < until:
                pass
    """, "timeout", EVENT_LIMITS, "budget")
    sandbox.assert_host_unharmed(err)


def test_busy_wait_killed_by_the_wall_budget(sandbox: Sandbox) -> None:
    """The same wait where the per-hook budget is generous: the whole run's wall budget."""
    err = sandbox.killed("""
        import datetime

        def on_start(ctx):
            until = datetime.datetime.now() + datetime.timedelta(days=1)
            while datetime.datetime.now() < until:
                pass
    """, "timeout", WALL_LIMITS, "ran longer")
    sandbox.assert_host_unharmed(err)


def test_endless_module_body_killed_at_check(sandbox: Sandbox) -> None:
    """The module body runs at ``check`` time too: an endless one must not hang the check."""
    path = sandbox.write("""
        n = 0
        while True:
            n = n + 1
    """)
    with pytest.raises(SandboxKilled) as info:
        check_in_sandbox(str(path), EVENT_LIMITS)
    assert info.value.reason == "timeout", str(info.value)
    sandbox.assert_host_unharmed(info.value)


def test_catastrophic_regex_backtracking_killed_for_cpu(sandbox: Sandbox) -> None:
    """ReDoS: ``(a+)+$`` on ``"a" * 40 + "!"`` runs in C for years."""
    err = sandbox.killed("""
        import re

        def on_start(ctx):
            re.match("(a+)+$", "a" * 40 + "!")
    """, "cpu", CPU_LIMITS)
    sandbox.assert_host_unharmed(err)


def test_huge_integer_to_text_is_refused(sandbox: Sandbox) -> None:
    """Quadratic int-to-str conversion of a 100,000-digit number (CVE-2020-10735's limit)."""
    err = sandbox.fails("""
        def on_start(ctx):
            print(str(10 ** 100000))
    """, "ValueError", "Exceeds the limit", line=2)
    sandbox.assert_host_unharmed(err)


# ---------------------------------------------------------------- memory


def test_memory_bomb_single_allocation(sandbox: Sandbox) -> None:
    """``"a" * 10**10``: ten gigabytes at once."""
    err = _out_of_memory(sandbox, """
        def on_bar(ctx, bar):
            x = "a" * (10 ** 10)
    """)
    sandbox.assert_host_unharmed(err)


def test_memory_growth_until_the_limit(sandbox: Sandbox) -> None:
    """Growing a list 10 kB at a time until something gives."""
    err = _out_of_memory(sandbox, """
        hoard = []

        def on_start(ctx):
            while True:
                hoard.append(" " * 10000 + str(len(hoard)))
    """)
    sandbox.assert_host_unharmed(err)


def test_memory_bomb_through_an_iterator(sandbox: Sandbox) -> None:
    """``list(itertools.repeat(0, 10**10))``: the size hint allocates in C."""
    err = _out_of_memory(sandbox, """
        import itertools

        def on_start(ctx):
            print(len(list(itertools.repeat(0, 10 ** 10))))
    """)
    sandbox.assert_host_unharmed(err)


def test_memory_bomb_zeroed_bytes(sandbox: Sandbox) -> None:
    """``bytes(10 ** 10)``: calloc'd pages would not even count as resident at first."""
    err = _out_of_memory(sandbox, """
        def on_start(ctx):
            print(len(bytes(10 ** 10)))
    """)
    sandbox.assert_host_unharmed(err)


def test_memory_hoarded_then_engine_starved(sandbox: Sandbox) -> None:
    """Take all the memory in ``on_start``, swallow the ``MemoryError`` and keep the hoard, so
    that the engine's own allocations fail outside any hook."""
    with pytest.raises((SandboxKilled, StrategyError)) as info:
        sandbox.run("""
            hoard = []

            def on_start(ctx):
                try:
                    while True:
                        hoard.append(bytes(1 << 20))
                except MemoryError:
                    pass

            def on_bar(ctx, bar):
                hoard.append(bytes(1 << 16))
        """)
    err = info.value
    assert (isinstance(err, SandboxKilled) and err.reason == "memory") or \
        "MemoryError" in str(err), f"{type(err).__name__}: {err}"
    sandbox.assert_host_unharmed(err)


# ---------------------------------------------------------------- stack and compiler


def test_deep_recursion_is_an_error(sandbox: Sandbox) -> None:
    """Unbounded recursion in a hook."""
    err = sandbox.fails("""
        def down(n):
            return down(n + 1)

        def on_bar(ctx, bar):
            down(0)
    """, "RecursionError", "maximum recursion depth exceeded", line=2)
    sandbox.assert_host_unharmed(err)


def test_deep_recursion_through_library_code_is_an_error(sandbox: Sandbox) -> None:
    """A 200,000-deep nested list handed to ``json.dumps`` and ``repr`` (C recursion)."""
    err = sandbox.fails("""
        import json

        def on_start(ctx):
            x = []
            for i in range(200000):
                x = [x]
            try:
                repr(x)
            except Exception as e:
                print(e)
            json.dumps(x)
    """, "RecursionError", "while encoding a JSON object", line=11)
    sandbox.assert_host_unharmed(err)


def test_c_stack_exhaustion_kills_only_the_worker(sandbox: Sandbox) -> None:
    """200,000 nested ``map`` iterators: CPython 3.11 recurses in C without a depth check and
    overflows the C stack. The worker dies of SIGSEGV (reason ``crash``); nothing else does."""
    err = sandbox.killed("""
        it = iter([1])
        for i in range(200000):
            it = map(abs, it)
        next(it)
    """, "crash", LIMITS, "SIGSEGV")
    sandbox.assert_host_unharmed(err)


def test_thousand_nested_unary_operators_are_a_diagnostic(sandbox: Sandbox) -> None:
    """``x = ----...1`` (1,000 minus signs): RestrictedPython's compiler raises RecursionError
    instead of reporting; it must come back as a ``file`` diagnostic, not a crash."""
    path = sandbox.write("x = " + "-" * 1000 + "1\n")
    with pytest.raises(StrategyError) as info:
        check_in_sandbox(str(path), LIMITS)
    assert str(path) in str(info.value)
    assert "cannot compile: RecursionError" in str(info.value)
    sandbox.assert_host_unharmed(info.value)


def test_hundred_thousand_nested_unary_operators_are_a_diagnostic(sandbox: Sandbox) -> None:
    """100,000 of them: the parser itself runs out of stack or memory."""
    path = sandbox.write("x = " + "-" * 100_000 + "1\n")
    with pytest.raises(StrategyError) as info:
        check_in_sandbox(str(path), LIMITS)
    assert str(path) in str(info.value)
    assert "cannot compile" in str(info.value) or "syntax error" in str(info.value)
    sandbox.assert_host_unharmed(info.value)


def test_deeply_nested_brackets_are_a_diagnostic(sandbox: Sandbox) -> None:
    """``[[[[...]]]]`` 1,000 deep in the source."""
    err = sandbox.refused("x = " + "[" * 1000 + "]" * 1000 + "\n", "too many nested")
    sandbox.assert_host_unharmed(err)


# ---------------------------------------------------------------- processes and threads


def test_fork_bomb_unreachable(sandbox: Sandbox) -> None:
    """``while True: os.fork()``."""
    err = sandbox.refused("""
        import os

        def on_start(ctx):
            while True:
                os.fork()
    """, "'os' is not allowed", line=1)
    sandbox.assert_host_unharmed(err)


def test_thread_creation_unreachable(sandbox: Sandbox) -> None:
    """Threads escape seccomp/Landlock applied to the first thread, and share the process:
    ``threading`` and ``_thread`` are both out of reach."""
    err = sandbox.refused("""
        import threading
        import _thread

        def on_start(ctx):
            threading.Thread(target=print).start()
    """, "'threading' is not allowed", '"_thread" is an invalid variable name', line=1)
    sandbox.assert_host_unharmed(err)


def test_one_watchdog_thread_for_many_workers() -> None:
    """Six idle live workers are watched by the process's one watchdog thread (a watcher
    thread per worker, polling every process on the box, made the host's CPU grow with the
    square of the workers): the host's threads grow by each worker's two pipe readers only,
    and every worker's memory and CPU are read."""
    def watchdogs() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "sandbox-watchdog"]

    task = {"task": "live", "path": "idle.py", "source": "def on_bar(ctx, bar):\n    pass\n",
            "params": {}, "symbols": ["AAA"], "state": {}}
    supervisor = Supervisor(LIMITS)
    before = threading.active_count()
    workers = []
    try:
        for k in range(6):
            workers.append(supervisor.start(task, name=f"idle-{k}", wall_limit=False))
            assert len(watchdogs()) == 1
        # Two pipe readers a worker, and the watchdog unless an earlier test started it.
        assert threading.active_count() - before <= 2 * len(workers) + 1
        assert watchdog().watching() >= len(workers)
        deadline = time.monotonic() + 10
        while not all(w.rss > 0 and w.cpu_seconds > 0 for w in workers):
            assert time.monotonic() < deadline, [(w.rss, w.cpu_seconds) for w in workers]
            time.sleep(0.05)
    finally:
        for w in workers:
            w.close()
    assert len(watchdogs()) == 1
    assert not any(w.proc.poll() is None for w in workers)


# ---------------------------------------------------------------- output


def test_print_flood_is_bounded_and_the_result_still_returned(sandbox: Sandbox) -> None:
    """5 MB of ``print`` plus one 5 MB line: the log stops at its limit, says so, and the
    back-test result still comes back."""
    limits = WorkerLimits(**{**LIMITS.model_dump(), "log_bytes": 64 << 10})
    result = sandbox.run("""
        def on_start(ctx):
            print("x" * 5000000)
            for i in range(5000):
                print("A" * 1000)
                ctx.log("B" * 10)
    """, limits)
    assert sum(len(line) + 1 for line in result.logs) <= 64 << 10
    assert result.logs and result.logs[0] == "A" * 1000
    assert any("strategy log reached its 65,536-byte limit" in w for w in result.warnings)
    assert result.bars == 200
    sandbox.assert_host_unharmed(result)


def test_rejected_order_flood_is_bounded_in_the_warnings(sandbox: Sandbox) -> None:
    """50 refused orders on every one of 200 bars (10,000 rejections, each naming a 256-char
    tag's worth of text): the result lists the first 200 and counts the rest, instead of
    growing by a warning per rejection."""
    result = sandbox.run("""
        def on_bar(ctx, bar):
            for i in range(50):
                ctx.buy(limit=bar.close * 100, tag="t" * 256)
    """)
    rejected = [w for w in result.warnings if " rejected: " in w]
    assert len(rejected) == 200
    assert "price" in rejected[0]
    assert result.warnings[-1].startswith("9,800 more orders were rejected (10,000 in all")
    assert len(result.model_dump_json()) < 200_000
    assert result.bars == 200
    sandbox.assert_host_unharmed(result)


def test_stderr_flood_killed_for_output(sandbox: Sandbox) -> None:
    """Writing to stderr without ``sys``: exceptions raised while a generator is finalised are
    printed by the interpreter ("Exception ignored in ..."). The supervisor caps stderr."""
    err = sandbox.killed("""
        def noisy():
            try:
                yield 1
            finally:
                raise ValueError("x" * 1000)

        def on_bar(ctx, bar):
            for i in range(200):
                g = noisy()
                next(g)
                g = None
    """, "output", LIMITS, "stderr")
    sandbox.assert_host_unharmed(err)


def test_huge_exception_message_is_truncated(sandbox: Sandbox) -> None:
    """A 20 MB exception message: still the strategy's error (not a protocol break), short."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            raise ValueError("x" * 20000000)
    """, "ValueError", line=2)
    assert len(str(err)) <= 4000
    sandbox.assert_host_unharmed(err)
