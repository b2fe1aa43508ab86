"""numpy and TA-Lib inside the sandbox: every route to files, raw memory, object arrays, dtype
tricks and ``__array_*__`` hooks that the research notes (sandbox.md) and issue 21 name, tried
from a strategy. Each test is one attack; to keep the suite fast, the attacks that fail at run
time run together in one real sandbox worker (each in its own ``try``, its outcome printed to
the strategy's log), and those refused when the file is checked are checked together in one
file (every refusal is reported with its line). Resource attacks run in workers of their own.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from sandtrade.errors import StrategyError
from sandtrade.sandbox.limits import WorkerLimits
from sandtrade.sandbox.runner import check_in_sandbox

from .conftest import EVENT_LIMITS, LIMITS, Sandbox, run_file

# ---------------------------------------------------------------- attacks at run time

#: name -> (the body of ``attempt(ctx, a, path)``, a fragment of the refusal). ``a`` is a
#: float64 array from ``ctx.history(..., as_array=True)``, ``path`` a file in the worker's
#: directory that must never be written. Written as a strategy author would, with literal
#: names where the static check would refuse them (the run does not run that check: what is
#: tested here is the run-time layer).
RUN_TIME_ATTACKS: dict[str, tuple[str, str]] = {
    # numpy's file and memory functions (research notes: numpy's dangerous public surface)
    "np_load": ("np.load(path, allow_pickle=True)", "numpy.load is not available"),
    "np_save": ("np.save(path, a)", "numpy.save is not available"),
    "np_savez": ("np.savez(path, a=a)", "numpy.savez is not available"),
    "np_savetxt": ("np.savetxt(path, a)", "numpy.savetxt is not available"),
    "np_loadtxt": ("np.loadtxt('/etc/passwd', dtype=str)", "numpy.loadtxt is not available"),
    "np_genfromtxt": ("np.genfromtxt('/etc/passwd')", "numpy.genfromtxt is not available"),
    "np_fromfile": ("np.fromfile('/etc/passwd', dtype='u1')", "numpy.fromfile is not available"),
    "np_memmap": ("np.memmap(path, mode='w+', shape=(8,))", "numpy.memmap is not available"),
    "np_frombuffer": ("np.frombuffer(bytes(64), dtype='i8')", "numpy.frombuffer is not avail"),
    "np_ctypeslib": ("np.ctypeslib.ctypes.CDLL(None)", "numpy.ctypeslib is not available"),
    "np_f2py": ("np.f2py.os.system('id')", "numpy.f2py is not available"),
    "np_testing": ("np.testing.extbuild.subprocess.run(['id'])", "numpy.testing is not avail"),
    "np_lib_as_strided": ("np.lib.stride_tricks.as_strided(a, shape=(10**6,), strides=(0,))",
                          "numpy.lib is not available"),
    "np_random_bit_generator": ("np.random.PCG64().state", "numpy.random is not available"),
    "np_ndarray_buffer_offset": ("np.ndarray((4,), 'i8', buffer=bytes(32), offset=-4096)",
                                 "numpy.ndarray is not available"),
    "np_empty_uninitialised": ("np.empty(10**6)", "numpy.empty is not available"),
    "np_vectorize_callable": ("np.vectorize(print)(a)", "numpy.vectorize is not available"),
    "np_frompyfunc_callable": ("np.frompyfunc(print, 1, 1)(a)",
                               "numpy.frompyfunc is not available"),
    "np_seterr_process_state": ("np.seterr(all='ignore')", "numpy.seterr is not available"),
    "np_set_printoptions": ("np.set_printoptions(threshold=1)",
                            "numpy.set_printoptions is not available"),
    "np_computed_name": ("getattr(np, 'lo' + 'ad')(path)", "numpy.load is not available"),
    "np_core_module": ("np.core.multiarray", "numpy.core is not available"),
    "np_linalg_internals": ("np.linalg.lapack_lite", "numpy.linalg.lapack_lite is not avail"),
    # the array's own methods and attributes
    "array_dump": ("a.dump(path)", "array.dump is not available"),
    "array_tofile": ("a.tofile(path)", "array.tofile is not available"),
    "array_ctypes": ("a.ctypes.data_as", "array.ctypes is not available"),
    "array_data_memoryview": ("a.data.cast('B')", "array.data is not available"),
    "array_base": ("a.T.base", "array.base is not available"),
    "array_view_dtype": ("a.view('O')", "array.view is not available"),
    "array_resize_refcheck": ("a.resize((10**6,), refcheck=False)",
                              "array.resize is not available"),
    "array_flags": ("a.flags", "array.flags is not available"),
    "array_setflags": ("a.setflags(write=True)", "array.setflags is not available"),
    "array_getfield_offset": ("a.getfield('i8', 10**6)", "array.getfield is not available"),
    "array_tobytes": ("a.tobytes()", "array.tobytes is not available"),
    "array_flat": ("a.flat", "array.flat is not available"),
    "array_set_strides": ("setattr(a, 'strides', (0,))", "'setattr' is not defined"),
    "array_assign_shape": ("a.shape = (10**6,)", "array.shape cannot be assigned"),
    "array_assign_dtype": ("a.dtype = 'O'", "array.dtype cannot be assigned"),
    "array_delete_item": ("del a[0]", "cannot be deleted"),
    "array_store_host_object": ("a[0] = ctx", "a Context cannot be passed to numpy"),
    "scalar_dump": ("a[0].dump(path)", "float64.dump is not available"),
    "scalar_class_method": ("np.float64.tofile", "has no attribute 'tofile'"),
    "dtype_type_reaches_type": ("a.dtype.type", "dtype.type is not available"),
    "complex_scalar_dump": ("(a * 1j)[0].dump(path)", "complex128.dump is not available"),
    "complex_array_method": ("(a * 1j).sum()", "dtype complex128 are not available"),
    "complex_dtype_type": ("(a * 1j).dtype", "dtype complex128 are not available"),
    "error_carries_the_ufunc": ("caught(lambda: a + 'x').args[0].at(a, [0], 1.0)",
                                "args is not available in strategies"),
    "error_ufunc_attribute": ("caught(lambda: a + 'x').ufunc", "ufunc is not available"),
    # object arrays and dtype tricks
    "object_array_zeros": ("np.zeros(3, dtype=object)", "dtype <class 'object'> is not"),
    "object_array_code": ("np.array([1], dtype='O')", "dtype 'O' is not available"),
    "object_array_positional_dtype": ("np.zeros(3, 'O')", "dtype 'O' is not available"),
    "object_array_astype": ("a.astype(object)", "is not available in strategies"),
    "object_array_host_objects": ("np.array([ctx, ctx])", "a Context cannot be passed"),
    "object_array_own_objects": ("np.sort([Mine(1), Mine(2)])", "a Mine cannot be passed"),
    "object_array_from_operator": ("(a.astype('int64') + [decimal.Decimal(1)]).sum()",
                                   "arrays of dtype object are not available"),
    "object_array_into_function": ("np.sum(a.astype('int64') + [decimal.Decimal(1)])",
                                   "arrays of dtype object are not available"),
    "structured_dtype_with_object": ("np.zeros(2, dtype='i8,O')", "is not available"),
    "void_dtype": ("np.zeros(2, dtype='V8')", "dtype 'V8' is not available"),
    "string_array_result": ("np.array(['a', 'b'])", "gave an array of dtype <U1"),
    "reduction_to_object": ("a.sum(dtype=object)", "is not available in strategies"),
    "dtype_from_scalar_type_object": ("np.zeros(2, dtype=a.dtype.type)",
                                      "dtype.type is not available"),
    # ufunc objects and their hooks
    "ufunc_at": ("np.add.at(a, [0], 1.0)", "has no attribute 'at'"),
    "ufunc_reduce_object": ("np.add.reduce(a, dtype=object)", "has no attribute 'reduce'"),
    "ufunc_out_view": ("np.add(a, a, out=a[:2])", "out= is not available"),
    "ufunc_signature": ("np.add(a, a, signature='dd->O')", "signature= is not available"),
    "method_out": ("a.sum(out=a[:1])", "out= is not available"),
    "ufunc_positional_out": ("np.add(a, a, a)", "takes at most 2 arguments"),
    "reduction_positional_out": ("np.sum(a, None, None, a[:1])", "takes at most 3 argum"),
    "method_positional_out": ("a.cumsum(None, None, a)", "takes at most 2 arguments"),
    "positional_object_dtype": ("np.cumsum(a, 0, object)", "dtype <class 'object'> is not"),
    "method_positional_object_dtype": ("a.mean(None, 'O')", "dtype 'O' is not available"),
    "array_function_like": ("np.array([1.0], like=Mine(1))", "like= is not available"),
    "where_with_host_object": ("np.where(a > 0, a, ctx)", "a Context cannot be passed"),
    # TA-Lib
    "talib_object_input": ("talib.SMA([ctx, ctx], 2)", "a Context cannot be passed"),
    "talib_string_input": ("talib.SMA('abcd', 2)", "argument 1 is a str"),
    "talib_host_parameter": ("talib.SMA(a, timeperiod=ctx)", "timeperiod= must be a number"),
    "talib_two_dimensional": ("talib.SMA([[1.0, 2.0]], 2)", "must be one-dimensional"),
    "talib_global_state": ("talib.set_unstable_period('EMA', 10**6)",
                           "talib.set_unstable_period is not available"),
    "talib_stream_module": ("talib.stream.SMA(a)", "talib.stream is not available"),
    "talib_abstract_module": ("talib.abstract.Function('SMA')", "talib.abstract is not avail"),
    # huge allocations end as MemoryError inside the address-space limit
    "huge_zeros": ("np.zeros(10**12)", "MemoryError"),
    "huge_ones_2d": ("np.ones((10**5, 10**5))", "MemoryError"),
    "huge_repeat": ("np.repeat(a, 10**11)", "MemoryError"),
    "huge_bincount": ("np.bincount([10**11])", "MemoryError"),
    "huge_outer": ("np.outer(np.ones(10**6), np.ones(10**6))", "MemoryError"),
    "huge_range": ("np.array(range(10**12))", "MemoryError"),
    "self_containing_list": ("np.array(nested())", "nested more than 32 deep"),
}

_DRIVER = '''
import decimal

import numpy as np
import talib


class Mine(object):
    def __init__(self, v):
        self.v = v

    def __eq__(self, other):
        return True

    def __lt__(self, other):
        return True


def nested():
    inner = []
    inner.append(inner)
    return inner


def caught(f):
    try:
        f()
    except Exception as e:
        return e


class Once(object):
    def __init__(self):
        self.done = False


ONCE = Once()

{attempts}

ATTEMPTS = [{names}]


def on_bar(ctx, bar):
    if ONCE.done or len(ctx.history(8)) < 8:
        return
    ONCE.done = True
    for name, attempt in ATTEMPTS:
        a = ctx.history(8, as_array=True)
        try:
            value = attempt(ctx, a, "written-by-an-attack")
            outcome = "ESCAPED " + repr(value)[:200]
        except MemoryError as e:
            outcome = "refused MemoryError: " + str(e)
        except AttributeError as e:
            outcome = "refused AttributeError: " + str(e)
        except TypeError as e:
            outcome = "refused TypeError: " + str(e)
        except NameError as e:
            outcome = "refused NameError: " + str(e)
        except Exception as e:
            outcome = "refused Exception: " + str(e)
        print("ATTEMPT " + name + " " + outcome.replace("\\n", " ")[:600])
    # A legitimate use right after every attack: numpy and TA-Lib still work.
    closes = ctx.history(8, as_array=True)
    print("AFTER", float(np.convolve(closes, np.ones(4) / 4, "valid")[-1]),
          float(talib.SMA(closes, 4)[-1]), float(closes[-4:].mean()))
'''


def _batch_source() -> str:
    functions = []
    for name, (body, _) in RUN_TIME_ATTACKS.items():
        functions.append(f"def attempt_{name}(ctx, a, path):\n    return {body}\n"
                         if not body.startswith(("del ", "a.shape =", "a.dtype =", "a[0] ="))
                         else f"def attempt_{name}(ctx, a, path):\n    {body}\n")
    names = ", ".join(f"({n!r}, attempt_{n})" for n in RUN_TIME_ATTACKS)
    return _DRIVER.format(attempts="\n\n".join(functions), names=names)


@pytest.fixture(scope="module")
def batch(tmp_path_factory: pytest.TempPathFactory, market_csv: Path) -> dict[str, Any]:
    """Every run-time attack, run once in one real sandbox worker: name -> outcome line."""
    root = tmp_path_factory.mktemp("numpy-batch")
    path = root / "attack.py"
    path.write_text(_batch_source(), encoding="utf-8")
    result = run_file(path, market_csv, LIMITS)
    outcomes = {}
    for line in result.logs:
        m = re.match(r"ATTEMPT (\w+) (.*)$", line)
        if m:
            outcomes[m.group(1)] = m.group(2)
    after = [line for line in result.logs if line.startswith("AFTER ")]
    return {"outcomes": outcomes, "after": after, "result": result, "root": root}


@pytest.mark.parametrize("name", sorted(RUN_TIME_ATTACKS))
def test_run_time_attack_is_refused(batch: dict[str, Any], name: str) -> None:
    """The attack raised inside the worker, with an error that names what is refused."""
    outcome = batch["outcomes"].get(name)
    assert outcome is not None, f"{name} never reported (the worker's log: {batch['result']})"
    assert outcome.startswith("refused "), f"{name}: {outcome}"
    assert RUN_TIME_ATTACKS[name][1] in outcome, f"{name}: {outcome}"


def test_numpy_and_talib_still_work_after_every_attack(batch: dict[str, Any]) -> None:
    """After the attacks, in the same worker: an SMA by convolution, TA-Lib's SMA and the
    array's mean agree (the attacks changed nothing numpy or TA-Lib hold)."""
    assert len(batch["after"]) == 1, batch["result"].logs[-5:]
    conv, sma, mean = map(float, batch["after"][0].split()[1:])
    assert conv == pytest.approx(sma) == pytest.approx(mean)


def test_no_attack_wrote_a_file(batch: dict[str, Any]) -> None:
    """Nothing was written next to the strategy, nor anywhere the host can see: the worker
    runs in a private directory that is removed, with file size limit 0 and Landlock."""
    assert sorted(p.name for p in batch["root"].iterdir()) == ["attack.py"]
    assert not Path("written-by-an-attack").exists()


def test_host_unharmed_after_the_numpy_attacks(sandbox: Sandbox, batch: dict[str, Any]
                                               ) -> None:
    """The batch's whole result holds no host secret; the host is as before."""
    sandbox.assert_host_unharmed(batch["result"])


# ---------------------------------------------------------------- attacks refused at check

#: One file, each line an attack the check refuses: (the line, a fragment of its refusal).
CHECK_TIME_ATTACKS: list[tuple[str, str]] = [
    ("import numpy.ctypeslib", "import of 'numpy.ctypeslib' is not allowed"),
    ("import numpy.f2py", "import of 'numpy.f2py' is not allowed"),
    ("import numpy.testing", "import of 'numpy.testing' is not allowed"),
    ("import numpy.lib.stride_tricks", "import of 'numpy.lib.stride_tricks' is not allowed"),
    ("from numpy.lib.stride_tricks import as_strided", "import from 'numpy.lib.stride_tricks'"),
    ("from numpy import load", "numpy.load is not available in strategies"),
    ("from numpy import memmap", "numpy.memmap is not available in strategies"),
    ("from numpy import frombuffer", "numpy.frombuffer is not available in strategies"),
    ("from numpy import ndarray", "numpy.ndarray is not available in strategies"),
    ("from talib import stream", "talib.stream is not available in strategies"),
    ("import talib.abstract", "import of 'talib.abstract' is not allowed"),
    ("import numpy as np", ""),
    ("np._core", "\"_core\" is an invalid attribute name"),
    ("class ArrayLike(object):", ""),
    ("    def __array__(self, dtype=None):", "\"__array__\" is an invalid"),
    ("        return 1", ""),
    ("    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):",
     "\"__array_ufunc__\" is an invalid"),
    ("        return 1", ""),
    ("    def __array_function__(self, func, types, args, kwargs):",
     "\"__array_function__\" is an invalid"),
    ("        return 1", ""),
    ("    __array_interface__ = {}", "\"__array_interface__\" is an invalid"),
    ("    def __index__(self):", "\"__index__\" is an invalid"),
    ("        return 1", ""),
    ("    def __len__(self):", "\"__len__\" is an invalid"),
    ("        return 1", ""),
    ("x = np.zeros(2).__array_interface__", "\"__array_interface__\" is an invalid"),
    # last: its message lists numpy's names, and the host keeps the first 4,000 characters
    ("np.save('x', np.zeros(2))", "numpy.save is not available in strategies"),
]


def test_attacks_refused_at_check(sandbox: Sandbox) -> None:
    """``sandtrade check`` (a real worker) refuses each line with ``file:line:`` and why."""
    path = sandbox.write("\n".join(line for line, _ in CHECK_TIME_ATTACKS) + "\n")
    with pytest.raises(StrategyError) as info:
        check_in_sandbox(str(path), LIMITS)
    message = str(info.value)
    for k, (line, fragment) in enumerate(CHECK_TIME_ATTACKS, 1):
        if fragment:
            found = [m for m in message.splitlines() if m.startswith(f"{path}:{k}:")]
            assert any(fragment in m for m in found), f"line {k} ({line!r}): {found}"
    sandbox.assert_host_unharmed(info.value)


# ---------------------------------------------------------------- resources


def test_long_numpy_computation_killed_by_the_event_budget(sandbox: Sandbox) -> None:
    """One C call that runs for minutes (a direct convolution of two million-element arrays:
    10**12 multiplications) never returns to Python: the supervisor's per-hook budget stops
    it from outside."""
    err = sandbox.killed("""
        import numpy as np

        def on_bar(ctx, bar):
            np.convolve(np.ones(10**6), np.ones(10**6))
    """, "timeout", EVENT_LIMITS, "budget")
    sandbox.assert_host_unharmed(err)


def test_allocation_inside_the_limit_then_past_it(sandbox: Sandbox) -> None:
    """Arrays kept until the address space is full: a ``MemoryError`` inside the limit
    (the worker reports it, naming the strategy), never the host's memory."""
    with pytest.raises(StrategyError) as info:
        sandbox.run("""
            import numpy as np

            KEPT = []

            def on_bar(ctx, bar):
                while True:
                    KEPT.append(np.ones(10**7))
        """)
    assert "MemoryError" in str(info.value) or "out of memory" in str(info.value)
    sandbox.assert_host_unharmed(info.value)


def test_history_array_is_a_fresh_copy(sandbox: Sandbox) -> None:
    """``ctx.history(n, as_array=True)`` is the strategy's own float64 array: writing to it
    changes neither the next one nor what the indicators see."""
    result = sandbox.run(textwrap.dedent("""
        import numpy as np

        def on_bar(ctx, bar):
            a = ctx.history(5, as_array=True)
            if len(a) < 5:
                return
            a[0:5] = -1.0
            b = ctx.history(5, as_array=True)
            print("FRESH", a.dtype.name, b.dtype.name, float(b.min()) > 0,
                  float(ctx.history(5)[0]) == float(b[0]))
    """))
    fresh = [line for line in result.logs if line.startswith("FRESH")]
    assert fresh and all(line == "FRESH float64 float64 True True" for line in fresh), fresh[:3]
    sandbox.assert_host_unharmed(result)


def test_numpy_and_talib_run_at_the_smallest_memory_limit(tmp_path: Path,
                                                          market_csv: Path) -> None:
    """RLIMIT_AS counts every mapping (BLAS arenas, thread stacks): with one BLAS thread,
    numpy and TA-Lib load and compute under the smallest limit an operator may set."""
    path = tmp_path / "small.py"
    path.write_text(textwrap.dedent("""
        import numpy as np
        import talib

        def on_stop(ctx):
            closes = ctx.history(50, as_array=True)
            print("OK", len(closes), float(talib.RSI(closes, 14)[-1]) > 0,
                  float(np.linalg.inv(np.eye(50) * 2.0)[0, 0]))
    """))
    limits = WorkerLimits(**{**LIMITS.model_dump(), "memory_mb": 256})  # its minimum
    result = run_file(path, market_csv, limits)
    assert result.logs == ["OK 50 True 0.5"]
