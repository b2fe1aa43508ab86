"""numpy and TA-Lib for strategies: reviewed, read-only proxies built from memory-unsafe C.

A strategy writes ``import numpy as np`` and ``import talib`` as every tutorial does, and gets
:func:`numpy_module` and :func:`talib_module`: facade modules whose every name is a reviewed
wrapper, handed over by :func:`~sandtrade.strategy.policy.guarded_import` as any other
sandboxed module. numpy is treated as C code that can read and write any memory of the worker
(sandbox.md in the research notes; issue 21): reachable from plain Python, the ``ndarray``
constructor with ``buffer=`` and a negative ``offset=``, ``resize(refcheck=False)`` under a
live view, a bit generator's ``set_state``, object dtypes over raw bytes and ``as_strided``
each do it. So the rule is an allow-list at every door, never a deny-list:

* **Functions.** Only the names in :data:`NUMPY_FUNCTIONS` (creation from numbers,
  arithmetic and ufuncs, reductions, sorting, ``where``, ``diff``, ``cumsum``, ``convolve``,
  ``polyfit``, the ``nan*`` functions) and :data:`LINALG_FUNCTIONS`, each wrapped: nothing
  that reads or writes files or raw memory (``load``, ``save*``, ``fromfile``, ``memmap``,
  ``frombuffer``, ``ctypeslib``, ``lib``, ``f2py``, ``testing``, ``random``), nothing that
  takes a callable (``vectorize``, ``frompyfunc``, ``apply_along_axis``), no uninitialised
  memory (``empty``), no process-wide state (``seterr``, ``set_printoptions``). ufuncs are
  wrappers too: a strategy never holds a ufunc object (``np.add.at``, ``out=``,
  ``signature=``).
* **Arguments** (:func:`_check_arguments`), before numpy sees them (and never an ``out``,
  by name or by position; a ``dtype`` by position is checked as ``dtype=``): numbers, booleans,
  strings, ``None``, arrays and scalars of a numeric dtype, and lists, tuples, ranges and
  deques of those (looked through to the bottom). Anything else is refused, so no object of
  the strategy or of the host ever reaches numpy: no ``__array__``,
  ``__array_ufunc__``/``__array_function__``, ``__index__`` or buffer protocol of
  theirs runs inside numpy (a strategy class cannot define those names anyway: the compiler
  refuses ``_`` names). ``out=`` is refused; ``dtype=`` only names a numeric dtype
  (:data:`DTYPE_NAMES`, or ``float``/``int``/``bool``, or ``np.float64`` and the other
  scalar wrappers).
* **Results** (:func:`_checked_result`): an exact ``ndarray`` or numpy scalar of a numeric
  dtype (kind ``b``, ``i``, ``u``, ``f``), a Python number, string, bool or ``None``, or a
  tuple or list of those; named tuples (``linalg.eig``) come back as plain tuples. An object,
  string or structured array, a subclass (``matrix``, ``memmap``, ``recarray``), anything
  else: refused.
* **The arrays themselves.** An ``ndarray`` is a C type, and RestrictedPython's guards see
  every attribute a strategy reads on it, so instead of a wrapper class (which would put a
  Python call in every ``a + b`` and ``a[i]``: the operators, indexing, iteration, ``len`` and
  ``float(a[0])`` stay numpy's own) the policy's ``_getattr_`` sends every attribute of an
  array, a numpy scalar and a dtype here (:func:`_array_attribute`, registered in
  :data:`~sandtrade.strategy.policy.TYPE_ATTRIBUTE_GUARDS`). Only :data:`ARRAY_ATTRIBUTES`
  are given, methods wrapped like the functions (``astype(object)`` and ``sum(out=view)`` are
  refused); never ``base``, ``data``, ``ctypes``, ``flags``, ``strides``, ``view``,
  ``resize``, ``tofile``, ``dump``, ``tobytes``, ``getfield``/``setfield``, ``flat``. An
  array of another dtype that an operator made (``a + [Decimal(1)]`` gives an object array)
  is inert: none of its attributes is given and no wrapper takes it. Writes go through
  ``_write_``: ``a[i] = x`` is allowed with a checked value
  (:data:`~sandtrade.strategy.policy.TYPE_WRITE_GUARDS`), ``a.shape = ...``,
  ``a.strides = ...``, ``a.dtype = ...`` are not.
* **TA-Lib.** Every function of TA-Lib's function API takes its price inputs as float64:
  a one-dimensional float64 array goes as it is (TA-Lib only reads it), lists, tuples and
  other numeric arrays are converted to fresh float64 arrays, anything else is refused with
  the function's name and the argument's position; its other arguments must be numbers. Its
  process-wide settings (``set_unstable_period``, ``set_compatibility``) and the
  ``stream``/``abstract`` interfaces are not exposed.

Arrays a strategy is handed (``ctx.history(n, field, as_array=True)``) are fresh float64
copies, never views of the engine's buffers. Huge allocations end as ``MemoryError`` inside
the worker's address-space limit, and long computations inside its CPU and per-event limits:
numpy releases no limit the worker runs under. The worker imports numpy (with one BLAS
thread) and warms up every wrapper (:func:`warm_up`) before it confines itself.

It is one file because the numpy facade, the guards of the objects it hands out and TA-Lib's
wrappers share one set of argument and result checks, and a reviewer reads them together:
split, each part would reach into the others' internals.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import importlib
import inspect
import sys
import types
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from sandtrade.strategy import policy

__all__ = [
    "ARRAY_ATTRIBUTES",
    "DTYPE_NAMES",
    "LINALG_FUNCTIONS",
    "NUMPY_FUNCTIONS",
    "NumericError",
    "array_write_guard",
    "float_array",
    "numpy_module",
    "register_guards",
    "talib_module",
    "warm_up",
]


class NumericError(TypeError):
    """A numpy or TA-Lib call a strategy may not make; says what and where."""


#: dtypes a strategy may name (``dtype=`` or ``astype``): numbers and booleans only.
DTYPE_NAMES = frozenset({
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "float16", "float32", "float64", "float", "int", "f8", "f4", "i8", "i4", "i2", "i1",
    "u8", "u4", "u2", "u1", "?", "b1", "double", "single",
})
_NUMERIC_KINDS = frozenset("biuf")
#: The numpy scalar types of numeric dtypes (what indexing and iterating an array give).
SCALAR_TYPES: frozenset[type] = frozenset(
    np.dtype(c).type for c in np.typecodes["AllInteger"] + np.typecodes["Float"] + "?")
_DTYPE_TYPES: frozenset[type] = frozenset(type(np.dtype(c)) for c in
                                          np.typecodes["AllInteger"] + np.typecodes["Float"]
                                          + "?")
_PLAIN = (int, float, bool, str, type(None))
_SEQUENCES = (list, tuple, range, collections.deque)
_MAX_DEPTH = 32


def _check_value(value: object, where: str, depth: int = 0) -> None:
    """Refuse ``value`` unless it is plain numbers/strings, numeric arrays, or sequences of
    those (to the bottom: a list of a strategy's objects would reach numpy's conversion)."""
    t = type(value)
    if t in _PLAIN or t in SCALAR_TYPES or t in _DTYPE_WRAPPER_TYPES:
        return
    if t is np.ndarray:
        if value.dtype.kind not in _NUMERIC_KINDS:  # type: ignore[attr-defined]
            raise NumericError(f"{where}: arrays of dtype {value.dtype} are not available in "  # type: ignore[attr-defined]
                               "strategies (numbers and booleans only)")
        return
    if t is range:  # integers, however many (not looked through: range(10**12))
        return
    if t in _SEQUENCES:
        if depth >= _MAX_DEPTH:
            raise NumericError(f"{where}: nested more than {_MAX_DEPTH} deep")
        kinds = set(map(type, value))  # type: ignore[call-overload]
        if kinds <= _SIMPLE_TYPES:
            return
        for item in value:  # type: ignore[attr-defined]
            _check_value(item, where, depth + 1)
        return
    if t is slice:  # an index: a[1:3] = ...
        for part in (value.start, value.stop, value.step):  # type: ignore[attr-defined]
            _check_value(part, where, depth + 1)
        return
    if value is Ellipsis or value is float or value is int or value is bool:  # dtype=float
        return
    raise NumericError(f"{where}: a {t.__name__} cannot be passed to numpy in strategies "
                       "(numbers, booleans, strings, numeric arrays and lists or tuples of "
                       "them)")


def _dtype(value: object, where: str) -> object:
    """A ``dtype=`` value a strategy may give, as numpy takes it."""
    if value is None or value is float or value is int or value is bool:
        return value
    if type(value) is str and value in DTYPE_NAMES:
        return value
    real = _DTYPE_WRAPPERS.get(id(value))
    if real is not None and real[0] is value:
        return real[1]
    if type(value) in _DTYPE_TYPES:
        return value
    raise NumericError(f"{where}: dtype {value!r} is not available in strategies (numbers "
                       f"and booleans: {', '.join(sorted(DTYPE_NAMES))})")


def _call_shape(fn: Any, method: bool) -> tuple[int | None, int | None]:
    """How many positional arguments ``fn`` may be given in a strategy (those before its
    ``out``, which may not be given: ``np.sum(a, None, None, view)``; a ufunc's inputs), or
    None for any; and the position of its ``dtype``, checked like ``dtype=``
    (``np.cumsum(a, 0, object)``). ``method``: an unbound method, ``self`` not counted."""
    key = (fn, method)
    shape = _CALL_SHAPES.get(key)
    if shape is None:
        if isinstance(fn, np.ufunc):
            shape = (fn.nin, None)
        else:
            params = list(inspect.signature(fn).parameters.values())[1 if method else 0:]
            names = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY,
                                                          p.POSITIONAL_OR_KEYWORD)]
            shape = (names.index("out") if "out" in names else None,
                     names.index("dtype") if "dtype" in names else None)
        _CALL_SHAPES[key] = shape
    return shape


_CALL_SHAPES: dict[tuple[Any, bool], tuple[int | None, int | None]] = {}


def _check_arguments(where: str, args: tuple[Any, ...], kwargs: dict[str, Any],
                     dtype_at: int | None = None, most: int | None = None
                     ) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The checked arguments of a call to ``where`` (see the module docstring)."""
    if most is not None and len(args) > most:
        raise NumericError(f"{where}: takes at most {most} arguments in strategies (out is "
                           "not available; use the returned array)")
    if kwargs:
        if "out" in kwargs:
            raise NumericError(f"{where}: out= is not available in strategies; use the "
                               "returned array")
        for key in ("signature", "extobj", "buffer", "offset", "strides", "like", "subok"):
            if key in kwargs:
                raise NumericError(f"{where}: {key}= is not available in strategies")
        if "dtype" in kwargs:
            kwargs["dtype"] = _dtype(kwargs["dtype"], where)
        for key, value in kwargs.items():
            if key != "dtype":
                _check_value(value, f"{where}({key}=...)")
    if dtype_at is not None and len(args) > dtype_at:
        args = (*args[:dtype_at], _dtype(args[dtype_at], where), *args[dtype_at + 1:])
    for k, value in enumerate(args):
        t = type(value)
        if t is np.ndarray or t in _SIMPLE_TYPES:
            if t is np.ndarray and value.dtype.kind not in _NUMERIC_KINDS:
                _check_value(value, f"{where}: argument {k + 1}")
            continue
        _check_value(value, f"{where}: argument {k + 1}")
    return args, kwargs


def _checked_result(value: Any, where: str, depth: int = 0) -> Any:
    """``value`` if a strategy may hold it (see the module docstring), else refused."""
    t = type(value)
    if t is np.ndarray:
        if value.dtype.kind not in _NUMERIC_KINDS:
            raise NumericError(f"{where}: gave an array of dtype {value.dtype}; only numeric "
                               "arrays are available in strategies")
        return value
    if t in _PLAIN or t in SCALAR_TYPES or t in _DTYPE_TYPES:
        return value
    if isinstance(value, tuple) and depth < 4:  # named tuples (EigResult): plain tuples
        return tuple(_checked_result(v, where, depth + 1) for v in value)
    if t is list and depth < 4:
        return value if set(map(type, value)) <= _SIMPLE_TYPES else [
            _checked_result(v, where, depth + 1) for v in value]
    raise NumericError(f"{where}: gave a {t.__name__}, which is not available in strategies")


_SIMPLE_TYPES: frozenset[type] = frozenset({int, float, bool, *SCALAR_TYPES})
_FAST_ARGUMENT_TYPES: frozenset[type] = _SIMPLE_TYPES | {str, type(None)}
ndarray = np.ndarray


def _wrap(fn: Callable[..., Any], where: str) -> Callable[..., Any]:
    """``fn`` behind the argument and result checks; named ``where`` in errors."""
    most, dtype_at = _call_shape(fn, False)
    # More positional arguments than this: a dtype among them, or too many (checked slowly).
    simple = min(1 << 30 if most is None else most, 1 << 30 if dtype_at is None else dtype_at)

    def reviewed(*args: Any, **kwargs: Any) -> Any:
        if kwargs or len(args) > simple:
            args, kwargs = _check_arguments(where, args, kwargs, dtype_at, most)
        else:  # the common call, checked inline: this runs several times a bar
            for value in args:
                t = type(value)
                if t is ndarray:
                    if value.dtype.kind not in _NUMERIC_KINDS:
                        _check_value(value, where)
                elif t not in _FAST_ARGUMENT_TYPES:
                    _check_value(value, where)
        result = fn(*args, **kwargs)
        if type(result) is ndarray and result.dtype.kind in _NUMERIC_KINDS:
            return result
        return _checked_result(result, where)

    reviewed.__name__ = reviewed.__qualname__ = where.rpartition(".")[2]
    reviewed.__doc__ = f"{where}: numpy's, reviewed for strategies (numbers in, numbers out)."
    return reviewed


# ---------------------------------------------------------------- numpy: what is exposed

#: Functions, by name in ``numpy``. Reviewed: each creates new arrays from numbers or computes
#: on them; none reads or writes memory it was not given, a file, or process state.
NUMPY_FUNCTIONS: tuple[str, ...] = (
    # creation from numbers
    "array", "asarray", "zeros", "ones", "full", "zeros_like",
    "ones_like", "full_like", "arange", "linspace", "logspace",
    "eye", "identity", "copy", "concatenate", "stack",
    "vstack", "hstack", "column_stack", "append", "repeat",
    "tile", "reshape", "ravel", "flip", "roll",
    "transpose", "atleast_1d", "squeeze", "expand_dims",
    "clip", "diag", "tri", "triu", "tril", "meshgrid",
    # arithmetic and ufuncs (wrapped: a strategy never holds a ufunc object)
    "add", "subtract", "multiply", "divide", "true_divide",
    "floor_divide", "power", "mod", "remainder", "negative",
    "absolute", "abs", "fabs", "sign", "sqrt", "cbrt",
    "square", "reciprocal", "exp", "exp2", "expm1",
    "log", "log2", "log10", "log1p", "sin", "cos",
    "tan", "arcsin", "arccos", "arctan", "arctan2",
    "sinh", "cosh", "tanh", "hypot", "degrees",
    "radians", "floor", "ceil", "round", "around",
    "rint", "trunc", "maximum", "minimum", "fmax",
    "fmin", "isnan", "isinf", "isfinite", "greater",
    "greater_equal", "less", "less_equal", "equal",
    "not_equal", "logical_and", "logical_or", "logical_not",
    "logical_xor", "isclose", "allclose", "array_equal",
    "dot", "matmul", "inner", "outer", "cross",
    # reductions and statistics
    "sum", "prod", "mean", "median", "std", "var",
    "min", "max", "amin", "amax", "argmin", "argmax",
    "ptp", "percentile", "quantile", "average", "cumsum",
    "cumprod", "diff", "ediff1d", "gradient", "all",
    "any", "count_nonzero", "nonzero", "flatnonzero",
    "argwhere", "corrcoef", "cov", "correlate", "convolve",
    "polyfit", "polyval", "interp", "histogram", "digitize",
    "bincount", "trapezoid",
    # sorting, searching, selection
    "sort", "argsort", "searchsorted", "unique", "partition",
    "argpartition", "where", "select", "extract", "take",
    # nan-aware
    "nansum", "nanmean", "nanstd", "nanvar", "nanmin",
    "nanmax", "nanargmin", "nanargmax", "nanmedian",
    "nanpercentile", "nanquantile", "nancumsum", "nancumprod",
    "nanprod", "nan_to_num",
)
#: ``np.linalg``: the basics, on numeric arrays.
LINALG_FUNCTIONS = ("norm", "inv", "pinv", "solve", "det", "slogdet", "lstsq", "eig",
                    "eigh", "eigvals", "eigvalsh", "matrix_rank", "cholesky", "qr", "svd",
                    "matrix_power")
#: Plain constants.
NUMPY_CONSTANTS = ("nan", "inf", "pi", "e", "newaxis")
#: Scalar types, exposed as constructors (and valid ``dtype=`` values): the real classes
#: would hand out their unbound C methods (``np.float64.tofile``).
NUMPY_SCALARS = ("float64", "float32", "int64", "int32", "int16", "int8", "uint8",
                 "uint16", "uint32", "uint64", "bool_", "bool")

_DTYPE_WRAPPERS: dict[int, tuple[object, type]] = {}
_DTYPE_WRAPPER_TYPES: frozenset[type] = frozenset()


class _ScalarType:
    """``np.float64`` in a strategy: builds a scalar from a number; a valid ``dtype=``."""

    __slots__ = ("_ScalarType__name", "_ScalarType__type")
    __name: str
    __type: type

    def __init__(self, name: str, real: type) -> None:
        object.__setattr__(self, "_ScalarType__name", name)
        object.__setattr__(self, "_ScalarType__type", real)

    def __call__(self, value: object = 0) -> Any:
        if type(value) not in _SIMPLE_TYPES and type(value) is not str:
            _check_value(value, f"numpy.{self.__name}")
            if type(value) is not np.ndarray or value.ndim:  # type: ignore[attr-defined]
                raise NumericError(f"numpy.{self.__name}: takes one number")
        return _checked_result(self.__type(value), f"numpy.{self.__name}")

    @property
    def dtype(self) -> np.dtype[Any]:
        """Its dtype: what lets numpy read it as one (``a.dtype == np.float64``)."""
        return np.dtype(self.__type)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("read-only")

    def __repr__(self) -> str:
        return f"<numpy.{self.__name} (sandboxed)>"


_DTYPE_WRAPPER_TYPES = frozenset({_ScalarType})


# ---------------------------------------------------------------- ndarray, scalars, dtypes

#: What a strategy may read on an ``ndarray``: ``True`` for a method (wrapped, checked like
#: the functions), ``False`` for a plain attribute.
ARRAY_ATTRIBUTES: dict[str, bool] = {
    **{n: False for n in ("shape", "ndim", "size", "dtype", "T", "real", "imag", "itemsize",
                          "nbytes")},
    **{n: True for n in (
        "all", "any", "argmax", "argmin", "argsort", "clip", "copy", "cumprod", "cumsum",
        "diagonal", "dot", "flatten", "item", "max", "mean", "min", "nonzero", "prod",
        "ravel", "repeat", "reshape", "round", "searchsorted", "sort", "squeeze", "std",
        "sum", "swapaxes", "take", "tolist", "trace", "transpose", "var", "fill", "conj",
        "conjugate", "argpartition", "partition", "astype")},
}
#: On a numpy scalar (``a[0]``, ``for x in a``), as on a float or int.
SCALAR_ATTRIBUTES: dict[str, bool] = {
    **{n: False for n in ("real", "imag", "dtype", "ndim", "shape", "size")},
    **{n: True for n in ("item", "is_integer", "as_integer_ratio", "conjugate", "tolist",
                         "round", "astype")},
}
#: On a dtype (``a.dtype``): its name and kind.
DTYPE_ATTRIBUTES = ("name", "kind", "itemsize", "char", "str")


def _array_attribute(obj: Any, name: str, default: object) -> Any:
    """The attribute guard of ``ndarray`` and numpy scalars (see the module docstring)."""
    t = type(obj)
    table = ARRAY_ATTRIBUTES if t is np.ndarray else SCALAR_ATTRIBUTES
    method = table.get(name)
    where = f"{'array' if t is np.ndarray else t.__name__}.{name}"
    if method is None:
        raise AttributeError(f"{where} is not available in strategies (available: "
                             f"{', '.join(sorted(table))})")
    if t is np.ndarray and obj.dtype.kind not in _NUMERIC_KINDS:
        raise AttributeError(f"{where}: arrays of dtype {obj.dtype} are not available in "
                             "strategies")
    if not method:
        return _checked_result(getattr(obj, name), where)
    unbound = getattr(t, name)
    most, dtype_at = _call_shape(unbound, True)

    def reviewed(*args: Any, **kwargs: Any) -> Any:
        args, kwargs = _check_arguments(where, args, kwargs, dtype_at, most)
        return _checked_result(unbound(obj, *args, **kwargs), where)

    return reviewed


def _dtype_attribute(obj: Any, name: str, default: object) -> Any:
    if name not in DTYPE_ATTRIBUTES:
        raise AttributeError(f"dtype.{name} is not available in strategies (available: "
                             f"{', '.join(DTYPE_ATTRIBUTES)})")
    return getattr(obj, name)


class _ArrayItems:
    """What ``_write_`` gives for an array: ``a[i] = x`` with a checked ``x``, no attribute
    writes (``a.shape``, ``a.strides``, ``a.dtype``) and no ``del``."""

    __slots__ = ("_ArrayItems__array",)
    __array: Any

    def __init__(self, array: np.ndarray) -> None:
        object.__setattr__(self, "_ArrayItems__array", array)

    def __setitem__(self, key: object, value: object) -> None:
        _check_value(key, "array[...] = value: the index")
        _check_value(value, "array[...] = value: the value")
        self.__array[key] = value

    def __delitem__(self, key: object) -> None:
        raise TypeError("items of an array cannot be deleted")

    def __setattr__(self, name: str, value: object) -> None:
        raise TypeError(f"array.{name} cannot be assigned in strategies")

    __delattr__ = __setattr__  # type: ignore[assignment]


def array_write_guard(array: Any) -> Any:
    """``_write_`` of an ``ndarray`` (see :class:`_ArrayItems`)."""
    if array.dtype.kind not in _NUMERIC_KINDS:
        raise TypeError(f"arrays of dtype {array.dtype} are not available in strategies")
    return _ArrayItems(array)


def _refused_attribute(obj: Any, name: str, default: object) -> Any:
    raise AttributeError(f"{type(obj).__name__}.{name} is not available in strategies")


def _guarded_numpy_types() -> Iterable[tuple[type, Callable[[Any, str, object], Any]]]:
    """Every numpy type a strategy could hold, and the guard of its attributes."""
    yield np.ndarray, _array_attribute
    # Scalars of every dtype: an operator can make a complex or object array (``a * 1j``),
    # whose items are not numbers of ours; their attributes (``dump``, ``tofile``) are refused.
    for t in {*np.sctypeDict.values(), *SCALAR_TYPES}:
        yield t, _array_attribute if t in SCALAR_TYPES else _refused_attribute
    for t in vars(np.dtypes).values():
        if isinstance(t, type) and issubclass(t, np.dtype):
            yield t, _dtype_attribute if t in _DTYPE_TYPES else _refused_attribute
    # A ufunc is never handed out, but numpy's own errors carry the real one (``a + "x"``
    # raises a UFuncTypeError whose ``args[0]`` and ``ufunc`` are ``np.add``): their
    # attributes are refused too (``str(e)`` still reads the message).
    yield np.ufunc, _refused_attribute
    errors = importlib.import_module("numpy._core._exceptions")
    for t in vars(errors).values():
        if isinstance(t, type) and issubclass(t, BaseException) and \
                t.__module__ == errors.__name__:
            yield t, _refused_attribute


def register_guards(attribute_guards: dict[type, Callable[[Any, str, object], Any]],
                    write_guards: dict[type, Callable[[Any], Any]]) -> None:
    """Put the guards of arrays, numpy scalars, dtypes, ufuncs and numpy's own errors in the
    policy's tables."""
    for t, guard in _guarded_numpy_types():
        attribute_guards[t] = guard
    write_guards[np.ndarray] = array_write_guard


# ---------------------------------------------------------------- the facade modules


def float_array(values: tuple[Any, ...]) -> np.ndarray:
    """A fresh float64 array of ``values`` (``ctx.history(..., as_array=True)``)."""
    return np.array(values, dtype=np.float64)


def _facade(name: str, values: dict[str, Any]) -> types.ModuleType:
    module = types.ModuleType(name, f"{name}, reviewed for strategies (sandtrade)")
    module.__dict__.update(values)
    module.__all__ = sorted(values)  # type: ignore[attr-defined]
    return module


@functools.cache
def numpy_module() -> types.ModuleType:
    """The ``numpy`` a strategy imports: a facade of reviewed wrappers (the policy exposes
    its ``__all__`` through a read-only proxy)."""
    values: dict[str, Any] = {n: _wrap(getattr(np, n), f"numpy.{n}") for n in NUMPY_FUNCTIONS}
    for n in NUMPY_CONSTANTS:
        values[n] = getattr(np, n)
    for n in NUMPY_SCALARS:
        real = np.bool_ if n in ("bool_", "bool") else getattr(np, n)
        wrapper = _ScalarType(n, real)
        _DTYPE_WRAPPERS[id(wrapper)] = (wrapper, real)
        values[n] = wrapper
    linalg = {n: _wrap(getattr(np.linalg, n), f"numpy.linalg.{n}") for n in LINALG_FUNCTIONS}
    linalg["LinAlgError"] = np.linalg.LinAlgError
    linalg_facade = _facade("numpy.linalg", linalg)
    values["linalg"] = policy.ModuleProxy(linalg_facade, linalg_facade.__all__)
    return _facade("numpy", values)


#: TA-Lib names left out: process-wide settings and other interfaces.
_TALIB_LEFT_OUT = frozenset({"set_unstable_period", "get_unstable_period", "set_compatibility",
                             "get_compatibility"})


def _talib_wrap(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    where = f"talib.{name}"

    def reviewed(*args: Any, **kwargs: Any) -> Any:
        converted = []
        for k, value in enumerate(args):
            t = type(value)
            if t in _SIMPLE_TYPES:
                converted.append(value)
                continue
            if t is ndarray and value.dtype == np.float64 and value.ndim == 1:
                converted.append(value)  # TA-Lib only reads it
                continue
            if t is np.ndarray or t in _SEQUENCES:
                _check_value(value, f"{where}: argument {k + 1}")
                try:
                    array = np.array(value, dtype=np.float64)
                except (TypeError, ValueError) as e:
                    raise NumericError(f"{where}: argument {k + 1} must be numbers "
                                       f"(float64): {e}") from None
                if array.ndim != 1:
                    raise NumericError(f"{where}: argument {k + 1} must be one-dimensional, "
                                       f"got shape {array.shape}")
                converted.append(array)
                continue
            raise NumericError(f"{where}: argument {k + 1} is a {t.__name__}; TA-Lib takes "
                               "float64 arrays (or lists of numbers) and numbers")
        for key, value in kwargs.items():
            if type(value) not in _SIMPLE_TYPES:
                raise NumericError(f"{where}: {key}= must be a number, got "
                                   f"{type(value).__name__}")
        try:
            result = fn(*converted, **kwargs)
        except Exception as e:  # TA-Lib's own errors name its C function; say ours
            raise NumericError(f"{where}: {type(e).__name__}: {e}") from None
        return _checked_result(result, where)

    reviewed.__name__ = reviewed.__qualname__ = name
    reviewed.__doc__ = f"{where}: TA-Lib's, on float64 arrays."
    return reviewed


@functools.cache
def talib_module() -> types.ModuleType:
    """The ``talib`` a strategy imports: every function of TA-Lib's function API, wrapped."""
    # TA-Lib imports pandas and polars when it finds them, for their Series: a third of a
    # second of a worker's boot, and a library no strategy may reach. Its wrappers here only
    # ever pass it float64 arrays, so it is loaded without them.
    hidden = [n for n in ("pandas", "polars") if n not in sys.modules]
    for n in hidden:
        sys.modules[n] = None  # type: ignore[assignment]
    try:
        import talib
    finally:
        for n in hidden:
            del sys.modules[n]

    names = [n for n in talib.get_functions()
             if n not in _TALIB_LEFT_OUT and callable(getattr(talib, n, None))]
    return _facade("talib", {n: _talib_wrap(getattr(talib, n), n) for n in names})


def _talib_available() -> bool:
    try:
        import talib  # noqa: F401
    except ImportError:
        return False
    return True


def warm_up(names: Iterable[str] = ("numpy", "talib")) -> None:
    """Call the wrappers once in trusted code, so that every module numpy and TA-Lib import
    lazily (array printing, ``_methods``, linalg) is loaded before the worker confines itself:
    an import from inside a strategy's frame goes through the strategy's ``__import__`` and is
    refused."""
    with np.errstate(all="ignore"):
        _warm_up(set(names))


def _warm_up(wanted: set[str]) -> None:
    if "numpy" in wanted:
        m = numpy_module()
        a = m.array([1.0, 2.0, 3.0, 4.0, 5.0])
        for n in NUMPY_FUNCTIONS:
            fn = getattr(m, n)
            for args in ((a,), (a, a), (a, 2), (3,)):
                try:
                    fn(*args)
                    break
                except Exception:
                    continue
        for k in (1, 2):
            m.polyfit(a, a, k)
        repr(a), str(a), repr(a[0]), str(a > 2), repr(np.arange(3)), f"{a[0]:.2f}"
        b = np.array([[2.0, 1.0], [1.0, 3.0]])
        for n in LINALG_FUNCTIONS:
            fn = getattr(m.linalg, n)
            args = (b, 2) if n == "matrix_power" else (b, a[:2]) if n in ("solve", "lstsq") \
                else (b,)
            with contextlib.suppress(Exception):
                fn(*args)
        for n, method in ARRAY_ATTRIBUTES.items():
            value = _array_attribute(a.copy(), n, None)
            if method:
                with contextlib.suppress(Exception):
                    value()
        _array_attribute(a, "astype", None)("int64")
        _array_attribute(a[0], "item", None)()
    if "talib" in wanted and _talib_available():
        t = talib_module()
        closes = [float(10 + k % 7) for k in range(60)]
        for n in t.__all__:
            with contextlib.suppress(Exception):
                getattr(t, n)(closes)
        t.MACD(closes), t.ATR(closes, closes, closes), t.STOCH(closes, closes, closes)


# Whenever this module is loaded (and so whenever a strategy can be handed an array:
# ``ctx.history(..., as_array=True)`` imports it), arrays are guarded, whether or not
# ``numpy`` itself may be imported.
register_guards(policy.TYPE_ATTRIBUTE_GUARDS, policy.TYPE_WRITE_GUARDS)
