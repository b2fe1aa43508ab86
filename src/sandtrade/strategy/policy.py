"""The language layer: what strategy code may say and touch. Pure: no I/O, no processes.

Strategy source is compiled with RestrictedPython's ``compile_restricted_exec`` and runs with
the guards built by :func:`restricted_globals`:

* ``_getattr_`` (:func:`compiled_getattr`, else :func:`guarded_getattr`): no ``_`` names, none of
  RestrictedPython's frame/code attributes, no ``format``/``format_map``/``mro`` on any object
  (``str`` and look-alikes such as ``collections.UserString``), and never a module object as a
  value. Attribute names must be exactly ``str``. Plain Python functions of library classes are
  refused when read from the class, a ``property`` or a ``super`` object (unbound, they run
  with any ``self``: ``collections.Counter.copy(int)`` returned the builtin ``type``, and with
  it 3-argument ``type`` and ``str``/``float`` subclasses that ``__build_class__`` refuses);
  bound methods (``counter.copy()``) are unaffected. A read-only ``mappingproxy`` value
  (``pattern.groupindex``, ``dict.keys().mapping``) comes back as a copy: in CPython 3.11
  ``proxy == x`` passes the dict behind the proxy to ``x.__eq__``, and a strategy's ``__eq__``
  could then rewrite ``re``'s process-wide cached patterns (shared with the worker's own code).
* ``__import__`` (:func:`guarded_import`): only the modules in :data:`ALLOWED_MODULES`, each
  handed over as a :class:`ModuleProxy` that exposes only reviewed names; ``from X import Y``
  resolves through the proxy too (it bypasses ``_getattr_``, the proxy does not).
* ``_getitem_`` is ``operator.getitem``: RestrictedPython's default puts no restriction on
  subscripts either (``ob[index]``); the C function saves a Python call per ``x[i]``.
* ``_write_``: a strategy may change its own objects (instances of classes it defined) and plain
  containers; anything else (modules, host objects) is refused.
* ``_getitem_``, ``_getiter_``, ``_iter_unpack_sequence_``, ``_unpack_sequence_``,
  ``_inplacevar_``, ``_apply_``, ``_print_``: complete set; ``print`` goes to the strategy log,
  bounded in size. ``_apply_`` takes its callee positional-only, so that ``g(*a, f=1)`` and
  ``dict(**{"f": 1})`` pass ``f`` on instead of failing.
* builtins: RestrictedPython's ``safe_builtins`` plus the plain iteration helpers (``list``,
  ``dict``, ``sorted``, ``zip``, ``min``, ``max``, ``sum``, ...), which are safe because
  ``_getiter_`` is plain ``iter`` here. No ``exec``, ``eval``, ``compile``, ``open``,
  ``globals``, ``vars``, ``type``, ``getattr`` other than the guarded one, ``ExceptionGroup``.

Published RestrictedPython advisories and the test that tries each (tests/security/):

* CVE-2023-37271, generator ``gi_frame`` walk: ``test_cve_2023_37271_generator_frame``
* CVE-2023-41039, ``str.format`` attribute traversal: ``test_cve_2023_41039_str_format``
* CVE-2024-47532, ``AttributeError.obj`` leaking a module:
  ``test_cve_2024_47532_attribute_error_obj``
* CVE-2025-22153, ``try/except*`` type confusion: ``test_cve_2025_22153_except_star``
* CVE-2026-55830, guard shadowing through positional-only parameters:
  ``test_cve_2026_55830_positional_only_guard_shadowing``
* CVE-2026-76825, ``string.Formatter`` traversal: ``test_cve_2026_76825_string_formatter``

This module holds no secrets and starts nothing; the worker applies it after the process has
limited itself. The language layer is one of three: a hole here is still caught by the process
limits and the supervisor.
"""

from __future__ import annotations

import _strptime  # datetime.strptime imports it; imported before the worker confines itself
import ast
import bisect
import builtins
import collections
import datetime
import decimal
import heapq
import itertools
import json
import math
import operator
import re
import statistics
import time
import types
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from RestrictedPython import RestrictingNodeTransformer, compile_restricted_exec, safe_builtins
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
)
from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from sandtrade.strategy.params import param

__all__ = [
    "ALLOWED_MODULES",
    "MAX_LOG_LINE",
    "Diagnostic",
    "ModuleProxy",
    "StrategyLog",
    "compile_strategy",
    "guarded_getattr",
    "guarded_import",
    "restricted_globals",
]

DENIED_ATTRIBUTES = frozenset({"format", "format_map", "mro"}) | INSPECT_ATTRIBUTES


def _public(mod: types.ModuleType) -> list[str]:
    return [n for n in dir(mod) if not n.startswith("_")
            and not isinstance(getattr(mod, n), types.ModuleType)]


#: Importable modules and exactly the names each exposes (reviewed; see research/sandbox.md).
ALLOWED_MODULES: dict[str, tuple[types.ModuleType, tuple[str, ...]]] = {
    "math": (math, tuple(_public(math))),
    "statistics": (statistics, (
        "mean", "fmean", "geometric_mean", "harmonic_mean", "median", "median_low",
        "median_high", "median_grouped", "mode", "multimode", "quantiles", "pstdev",
        "pvariance", "stdev", "variance", "covariance", "correlation", "linear_regression",
        "NormalDist", "StatisticsError")),
    "datetime": (datetime, ("date", "datetime", "time", "timedelta", "timezone", "MINYEAR",
                            "MAXYEAR")),
    "decimal": (decimal, ("Decimal", "InvalidOperation", "DivisionByZero", "ROUND_CEILING",
                          "ROUND_DOWN", "ROUND_FLOOR", "ROUND_HALF_DOWN", "ROUND_HALF_EVEN",
                          "ROUND_HALF_UP", "ROUND_UP", "ROUND_05UP")),
    "collections": (collections, ("deque", "defaultdict", "OrderedDict", "Counter")),
    "itertools": (itertools, tuple(_public(itertools))),
    "bisect": (bisect, tuple(_public(bisect))),
    "heapq": (heapq, tuple(_public(heapq))),
    "json": (json, ("dumps", "loads", "JSONDecodeError")),
    "re": (re, ("compile", "match", "search", "fullmatch", "findall", "finditer", "sub", "subn",
                "split", "escape", "error", "IGNORECASE", "MULTILINE", "DOTALL", "VERBOSE",
                "ASCII", "I", "M", "S", "X", "A")),
}


class ModuleProxy:
    """A read-only view of a module that exposes only an explicit list of names."""

    __slots__ = ("_ModuleProxy__attrs", "_ModuleProxy__name")

    def __init__(self, mod: types.ModuleType, names: Iterable[str]) -> None:
        attrs = {n: getattr(mod, n) for n in names}
        for n, v in attrs.items():
            if isinstance(v, types.ModuleType):
                raise ValueError(f"{mod.__name__}.{n} is a module and cannot be exposed")
        object.__setattr__(self, "_ModuleProxy__name", mod.__name__)
        object.__setattr__(self, "_ModuleProxy__attrs", attrs)

    def __getattr__(self, name: str) -> Any:
        try:
            return self.__attrs[name]
        except KeyError:
            # "from None" and no .obj: the error must not carry the real module (CVE-2024-47532)
            raise AttributeError(f"{self.__name}.{name} is not available in strategies "
                                 f"(available: {', '.join(sorted(self.__attrs))})") from None

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"module {self.__name} is read-only")

    __delattr__ = __setattr__  # type: ignore[assignment]

    def __dir__(self) -> list[str]:
        return sorted(self.__attrs)

    def __repr__(self) -> str:
        return f"<module {self.__name} (sandboxed)>"


_PROXIES = {name: ModuleProxy(mod, names) for name, (mod, names) in ALLOWED_MODULES.items()}

#: Modules that C code of an allowed module imports while a strategy's hook runs: CPython's
#: ``datetime`` calls ``__import__("time")`` for ``strftime``/``timetuple`` (so
#: ``f"{bar.time:%Y-%m-%d}"`` would fail) and ``__import__("_strptime")`` for ``strptime``.
#: ``__import__`` resolves through the strategy's builtins, which hold :func:`guarded_import`;
#: it answers these names with proxies of exactly what that C code calls. A strategy cannot
#: ask for them itself: ``import time`` is refused when the file is compiled, and
#: ``__import__`` is an underscore name.
_INTERNAL_PROXIES = {
    "time": ModuleProxy(time, ("strftime", "struct_time")),
    "_strptime": ModuleProxy(_strptime, ("_strptime_datetime",)),
}


def guarded_import(name: object, globals: object = None, locals: object = None,
                   fromlist: object = (), level: object = 0) -> ModuleProxy:
    """``__import__`` for strategies: only allowed modules, always as their proxy."""
    if type(name) is not str or level != 0:
        raise ImportError("only plain absolute imports are allowed in strategies")
    proxy = _PROXIES.get(name) or _INTERNAL_PROXIES.get(name)
    if proxy is None:
        raise ImportError(f"import of {name!r} is not allowed "
                          f"(allowed: {', '.join(sorted(_PROXIES))})")
    return proxy


#: Types whose every public attribute is safe to hand out (the strategy API's own objects);
#: registered by the worker so that the per-bar ``ctx.ta.sma(...)`` skips the slow checks.
FAST_ATTRIBUTE_TYPES: set[type] = set()
_MISSING = object()


def guarded_getattr(obj: object, name: object, default: object = _MISSING) -> Any:
    """``getattr`` for strategies (also their ``_getattr_``); see the module docstring."""
    if type(name) is not str:
        raise TypeError("attribute names must be plain strings")
    if name.startswith("_"):
        raise AttributeError(f"{name!r}: names starting with '_' are not allowed in strategies")
    if type(obj) in FAST_ATTRIBUTE_TYPES:
        try:
            return getattr(obj, name)
        except AttributeError:
            if default is _MISSING:  # a fresh error: never the original's .obj
                raise AttributeError(f"{type(obj).__name__} has no attribute {name!r}") from None
            return default
    if name in DENIED_ATTRIBUTES:
        raise AttributeError(f"{name!r} is not allowed in strategies")
    try:
        value = getattr(obj, name)
    except AttributeError as e:
        if default is not _MISSING:
            return default
        # A fresh error either way: the original may carry the object in ``.obj``.
        if isinstance(obj, ModuleProxy):
            raise AttributeError(str(e)) from None
        raise AttributeError(f"{type(obj).__name__} object has no attribute {name!r}") from None
    if isinstance(value, types.ModuleType):
        raise AttributeError(f"{name!r} is a module; modules are reachable only by import")
    if type(value) is types.FunctionType and value.__module__ != "strategy" and (
            isinstance(obj, (property, super))
            or (isinstance(obj, type) and obj.__module__ != "strategy")):
        # An unbound library method runs with any ``self``: ``Counter.copy(int)`` is
        # ``int.__class__(int)``, i.e. the builtin ``type``.
        raise AttributeError(f"{name!r}: unbound methods of library classes are not available "
                             "in strategies; call the method on an instance")
    if type(value) is types.MappingProxyType:
        return dict(value)  # a copy: ``proxy == x`` hands the dict behind it to ``x.__eq__``
    return value


def compiled_getattr(obj: object, name: str) -> Any:
    """``_getattr_``: what ``obj.name`` in strategy source compiles to.

    RestrictedPython emits it only with the literal name written in the source, which its
    compiler has already checked (no ``_`` prefix, no frame attributes), so the strategy API's
    own objects skip straight to the lookup: this runs several times per bar. Everything else,
    and every computed name (the ``getattr`` builtin), takes :func:`guarded_getattr`.
    """
    if type(obj) in FAST_ATTRIBUTE_TYPES:
        try:
            return getattr(obj, name)
        except AttributeError:
            raise AttributeError(f"{type(obj).__name__} has no attribute {name!r}") from None
    return guarded_getattr(obj, name)


def guarded_hasattr(obj: object, name: object) -> bool:
    """``hasattr`` under the same rules as :func:`guarded_getattr` (refused names: False)."""
    try:
        guarded_getattr(obj, name)
    except (AttributeError, TypeError):
        return False
    return True


#: Longest log line a live run keeps, in characters (the host keeps no more): the rest of a
#: longer line is cut.
MAX_LOG_LINE = 4000


class StrategyLog:
    """Where ``print`` and ``ctx.log`` go: a list of lines, capped in size and, in a live run,
    in rate and in what one event's lines take on the wire.

    ``size`` counts encoded bytes (UTF-8, a newline a line) against ``max_bytes``. With
    ``max_line``, a longer line is cut to that many characters. With ``max_wire_bytes``,
    ``wire_size`` counts what the lines take in a frame (JSON-escaped, where
    a control character is six bytes), so the frame that carries them is bounded by
    construction whatever they hold. :meth:`throttle` adds a token bucket in lines and bytes a
    second. A line past any of these is not kept but counted in ``dropped``.
    """

    def __init__(self, max_bytes: int = 1 << 20, *, max_line: int | None = None,
                 max_wire_bytes: int | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lines: list[str] = []
        self.max_bytes = max_bytes
        self.max_line = max_line
        self.max_wire_bytes = max_wire_bytes
        self.size = 0
        self.wire_size = 0
        self.dropped = 0
        self._clock = clock
        self._rated = False
        self._line_rate = self._byte_rate = 0.0
        self._line_cap = self._byte_cap = 0.0
        self._lines = self._bytes = 0.0
        self._refilled = 0.0

    def throttle(self, lines_per_s: float, bytes_per_s: float, burst_seconds: float) -> None:
        """Keep at most ``lines_per_s`` lines and ``bytes_per_s`` bytes a second on average,
        with bursts of up to ``burst_seconds`` of either (a token bucket, full at the start)."""
        self._rated = True
        self._line_rate, self._byte_rate = lines_per_s, bytes_per_s
        self._lines = self._line_cap = lines_per_s * burst_seconds
        self._bytes = self._byte_cap = bytes_per_s * burst_seconds
        self._refilled = self._clock()

    def new_event(self) -> None:
        """Start the per-event count again (a live run caps each event's lines)."""
        self.size = 0
        self.wire_size = 0

    def _take(self, n: int) -> bool:
        """One line of ``n`` bytes from the bucket, if it holds them."""
        now = self._clock()
        elapsed, self._refilled = now - self._refilled, now
        lines = min(self._line_cap, self._lines + elapsed * self._line_rate)
        size = min(self._byte_cap, self._bytes + elapsed * self._byte_rate)
        if lines < 1 or size < n:
            self._lines, self._bytes = lines, size
            return False
        self._lines, self._bytes = lines - 1, size - n
        return True

    def write_line(self, line: str) -> None:
        """Keep ``line`` (cut at ``max_line`` characters) unless a cap or the rate is reached;
        then count it as dropped."""
        if self.max_line is not None and len(line) > self.max_line:
            line = line[:self.max_line]
        n = len(line.encode("utf-8", "surrogatepass")) + 1
        if self.size + n > self.max_bytes:
            self.dropped += 1
            return
        if self.max_wire_bytes is not None:
            wire = len(_json_string(line)) + 1
            if self.wire_size + wire > self.max_wire_bytes:
                self.dropped += 1
                return
        else:
            wire = 0
        if self._rated and not self._take(n):
            self.dropped += 1
            return
        self.size += n
        self.wire_size += wire
        self.lines.append(line)


#: A string as JSON writes it in a frame (``json.dumps`` escapes to ASCII), in C.
_json_string: Callable[[str], str] = (
    json.encoder.encode_basestring_ascii)  # type: ignore[attr-defined]


class _Printer:
    """What ``print`` becomes in restricted code: one log line per call, no file argument."""

    def __init__(self, log: StrategyLog) -> None:
        self._log = log

    def __call__(self, _getattr_: object = None) -> _Printer:  # RestrictedPython's _print_ API
        return self

    def _call_print(self, *objects: object, sep: object = " ", end: object = "\n",
                    file: object = None, flush: object = False) -> None:
        if file is not None:
            raise TypeError("print(file=...) is not available in strategies")
        text = (sep if type(sep) is str else " ").join(str(o) for o in objects)
        self._log.write_line(text)


def _inplacevar(op: str, x: Any, y: Any) -> Any:
    fn = _INPLACE.get(op)
    if fn is None:
        raise SyntaxError(f"augmented assignment {op!r} is not allowed")
    return fn(x, y)


_INPLACE: dict[str, Callable[[Any, Any], Any]] = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow,
    "<<=": operator.ilshift, ">>=": operator.irshift, "&=": operator.iand,
    "|=": operator.ior, "^=": operator.ixor,
}

_EXTRA_BUILTINS = ("list", "dict", "set", "frozenset", "tuple", "sorted", "reversed", "zip",
                   "min", "max", "sum", "enumerate", "map", "filter", "any", "all", "iter",
                   "next", "bytes", "object", "property", "staticmethod", "classmethod",
                   "super")
_REMOVED_BUILTINS = ("setattr", "delattr", "_getattr_")


def restricted_globals(log: StrategyLog, extra: dict[str, Any] | None = None
                       ) -> dict[str, Any]:
    """A fresh globals dict for one strategy module: guards, builtins and ``extra`` names."""
    own_classes: weakref.WeakSet[type] = weakref.WeakSet()

    def build_class(func: Any, name: Any, *bases: Any, **kw: Any) -> Any:
        if kw.get("metaclass") not in (None, type):
            raise TypeError("custom metaclasses are not allowed in strategies")
        for base in bases:
            if not isinstance(base, type) or (base.__module__ != "strategy"
                                              and base not in _SAFE_BASES):
                raise TypeError(f"class {name}: subclassing {base!r} is not allowed")
        cls = builtins.__build_class__(func, name, *bases, **kw)
        own_classes.add(cls)
        return cls

    def write_guard(ob: Any) -> Any:
        if type(ob) in own_classes or (isinstance(ob, type) and ob in own_classes):
            return ob
        return full_write_guard(ob)

    b: dict[str, Any] = dict(safe_builtins)
    for n in _REMOVED_BUILTINS:
        b.pop(n, None)
    for n in _EXTRA_BUILTINS:
        b[n] = getattr(builtins, n)
    b.pop("ExceptionGroup", None)
    b.pop("BaseExceptionGroup", None)
    # param(): typed parameters in PARAMS (sandtrade.strategy.params), without an import.
    b.update(__import__=guarded_import, __build_class__=build_class, getattr=guarded_getattr,
             hasattr=guarded_hasattr, param=param)
    printer = _Printer(log)
    g: dict[str, Any] = {
        "__builtins__": b, "__name__": "strategy", "__metaclass__": type,
        "_getattr_": compiled_getattr, "_getitem_": operator.getitem, "_getiter_": iter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence, "_write_": write_guard,
        "_print_": printer, "_inplacevar_": _inplacevar,
        "_apply_": lambda f, /, *a, **k: f(*a, **k),
    }
    if extra:
        g.update(extra)
    return g


_SAFE_BASES = (object, Exception, ValueError, TypeError, RuntimeError, KeyError, IndexError,
               ArithmeticError, LookupError)


@dataclass(frozen=True)
class Diagnostic:
    """One problem in a strategy file, as ``file:line: message``."""

    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.message}"


class StrategyTransformer(RestrictingNodeTransformer):
    """RestrictedPython's policy, plus ``name.attr += value`` for a strategy's own objects.

    RestrictedPython refuses augmented assignment to attributes, which breaks ordinary code
    such as ``self.count += 1``. When the object is a plain name, the statement is rewritten
    to ``name.attr = name.attr + value`` and then checked like any assignment: the read goes
    through ``_getattr_`` and the write through ``_write_``.
    """

    def visit_AugAssign(self, node: ast.AugAssign) -> Any:
        target = node.target
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
            name = target.value.id
            new = ast.Assign(
                targets=[ast.Attribute(value=ast.Name(id=name, ctx=ast.Load()),
                                       attr=target.attr, ctx=ast.Store())],
                value=ast.BinOp(left=ast.Attribute(value=ast.Name(id=name, ctx=ast.Load()),
                                                   attr=target.attr, ctx=ast.Load()),
                                op=node.op, right=node.value))
            ast.copy_location(new, node)
            ast.fix_missing_locations(new)
            return self.visit(new)
        return super().visit_AugAssign(node)


_LINE_RE = re.compile(r"^Line (\d+): (.*)$", re.S)


def _import_diagnostics(source: str, path: str) -> list[Diagnostic]:
    """Imports the policy will refuse at run time, found before anything runs."""
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []  # the compiler reports these
    allowed = ", ".join(sorted(ALLOWED_MODULES))
    out: list[Diagnostic] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in ALLOWED_MODULES:
                    out.append(Diagnostic(path, node.lineno, f"import of {alias.name!r} is not "
                                          f"allowed (allowed: {allowed})"))
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level or mod not in ALLOWED_MODULES:
                out.append(Diagnostic(path, node.lineno, f"import from {mod!r} is not allowed "
                                      f"(allowed: {allowed})"))
                continue
            names = ALLOWED_MODULES[mod][1]
            for alias in node.names:
                if alias.name != "*" and alias.name not in names:
                    out.append(Diagnostic(path, node.lineno, f"{mod}.{alias.name} is not "
                                          f"available in strategies"))
    return out


def compile_strategy(source: str, path: str) -> tuple[types.CodeType | None, list[Diagnostic]]:
    """Compile ``source`` under the policy: the code object, or every violation found.

    Any failure of the compiler itself (RecursionError on deeply nested expressions,
    MemoryError, a null byte) becomes a diagnostic too.
    """
    try:
        result = compile_restricted_exec(source, filename=path, policy=StrategyTransformer)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        return None, [Diagnostic(path, None, f"cannot compile: {type(e).__name__}: {e}"[:500])]
    diags = _import_diagnostics(source, path)
    for err in result.errors:
        m = _LINE_RE.match(err)
        if m:
            msg = m.group(2).strip().rstrip(".")
            if msg.startswith("SyntaxError: "):
                msg = "syntax error: " + msg.removeprefix("SyntaxError: ")
            diags.append(Diagnostic(path, int(m.group(1)), msg))
        else:
            diags.append(Diagnostic(path, None, err))
    if diags or result.code is None:
        return None, diags or [Diagnostic(path, None, "does not compile")]
    return result.code, []
