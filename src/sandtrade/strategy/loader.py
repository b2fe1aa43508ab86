"""Loading a strategy file and checking its hooks against the strategy hookspecs.

A strategy is one ``.py`` file with an optional module-level ``PARAMS`` dict and any of the
hooks in :class:`~sandtrade.strategy.hooks.StrategySpec`. The file's functions are registered
with a pluggy ``PluginManager`` against those specs, so a misspelled hook (``on_bars``) or a
wrong argument name (``def on_bar(context, bar)``) is a ``file:line`` error when the file is
loaded, not a hook that silently never runs.

Here the file runs in the calling process; the sandbox moves this into a resource-limited
worker. Everything that loads or runs a strategy goes through :func:`load_strategy` and the
runner seam in :mod:`sandtrade.backtest.request`, so that move stays small.
"""

from __future__ import annotations

import ast
import builtins
import difflib
import inspect
import math
import traceback
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pluggy

from sandtrade.errors import StrategyError
from sandtrade.strategy.hooks import HOOK_NAMES, PROJECT, StrategySpec
from sandtrade.strategy.params import ParamSpec, param, spec_for

__all__ = [
    "LoadedStrategy",
    "load_strategy",
    "load_strategy_source",
    "param_problem",
    "params_lines",
    "resolve_params",
    "static_hook_problems",
    "strategy_error",
]


class _StrategyPluginManager(pluggy.PluginManager):
    """Treats every module-level ``on_*`` function as a hook implementation."""

    def parse_hookimpl_opts(self, plugin: Any, name: str) -> Any:
        if name.startswith("on_") and inspect.isfunction(getattr(plugin, name, None)):
            return {"wrapper": False, "hookwrapper": False, "optionalhook": False,
                    "tryfirst": False, "trylast": False, "specname": None}
        return None


@dataclass
class LoadedStrategy:
    """A strategy file that compiled, ran its module body and passed the hook checks."""

    name: str
    path: str
    params: dict[str, Any]
    hooks: dict[str, Callable[..., Any]] = field(default_factory=dict)
    #: Each parameter's declaration (a plain default's only fixes its type), and the line of
    #: its key in ``PARAMS`` (for ``file:line`` errors about an override).
    specs: dict[str, ParamSpec] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def caller(self, hook: str) -> Callable[..., Any] | None:
        """A fast positional caller for ``hook`` with the spec's arguments, or None.

        The user's function may declare fewer arguments than the spec (``def on_bar(ctx)``);
        the caller then passes only those it declared, as pluggy would.
        """
        fn = self.hooks.get(hook)
        if fn is None:
            return None
        spec_args = tuple(inspect.signature(getattr(StrategySpec, hook)).parameters)[1:]
        own = tuple(inspect.signature(fn).parameters)
        if own == spec_args:
            return fn
        picks = [spec_args.index(a) for a in own]
        return lambda *args: fn(*(args[i] for i in picks))


def _line(fn: Callable[..., Any]) -> int:
    return int(fn.__code__.co_firstlineno)


def _hook_problem(path: str, name: str, fn: Callable[..., Any]) -> str | None:
    """What is wrong with the hook ``name`` (as ``file:line: message``), or None."""
    where = _where(path, fn)
    if name not in HOOK_NAMES:
        return _unknown_hook(where, name)
    if inspect.iscoroutinefunction(fn) or inspect.isgeneratorfunction(fn) \
            or inspect.isasyncgenfunction(fn):
        # Calling one only makes a coroutine or generator: its body would never run.
        return _never_runs(where, name, async_=inspect.iscoroutinefunction(fn))
    sig = inspect.signature(fn)
    return _bad_arguments(where, name, [(a, prm.kind is prm.POSITIONAL_OR_KEYWORD)
                                        for a, prm in sig.parameters.items()])


# The messages of both hook checks (the loaded function's and the source's), worded once.

def _unknown_hook(where: str, name: str) -> str:
    close = difflib.get_close_matches(name, HOOK_NAMES, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return f"{where}: {name} is not a strategy hook; {hint}hooks are: {', '.join(HOOK_NAMES)}"


def _never_runs(where: str, name: str, *, async_: bool) -> str:
    kind = "an async function" if async_ else "a generator"
    return f"{where}: {name} is {kind}; hooks must be plain functions (def, no async, no yield)"


def _bad_arguments(where: str, name: str, params: list[tuple[str, bool]]) -> str | None:
    """``params``: each argument's name and whether it is a plain (positional-or-keyword)
    one; a problem when one is not plain or not among the hook's arguments."""
    spec_args = tuple(inspect.signature(getattr(StrategySpec, name)).parameters)[1:]
    bad = [n for n, plain in params if n not in spec_args or not plain]
    if not bad:
        return None
    return (f"{where}: {name}({', '.join(n for n, _ in params)}): argument {bad[0]!r} is not "
            f"one of {name}'s arguments ({', '.join(spec_args)})")


def static_hook_problems(source: str, path: str) -> list[tuple[int, str]]:
    """The hook mistakes :func:`_hook_problem` finds, read from the source without running it:
    ``(line, "file:line: message")`` for every module-level ``def on_*``.

    For a file the sandbox policy refuses (its body never runs), so that one ``check`` reports
    the policy violations and the hook mistakes together. The messages are the same.
    """
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    out: list[tuple[int, str]] = []
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                or not node.name.startswith("on_"):
            continue
        name = node.name
        line = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        where = f"{path}:{line}"
        a = node.args
        params = [(x.arg, False) for x in a.posonlyargs] + [(x.arg, True) for x in a.args]
        params += [(a.vararg.arg, False)] if a.vararg else []
        params += [(x.arg, False) for x in a.kwonlyargs]
        params += [(a.kwarg.arg, False)] if a.kwarg else []
        if name not in HOOK_NAMES:
            problem: str | None = _unknown_hook(where, name)
        elif isinstance(node, ast.AsyncFunctionDef) or _yields(node):
            problem = _never_runs(where, name, async_=isinstance(node, ast.AsyncFunctionDef))
        else:
            problem = _bad_arguments(where, name, params)
        if problem:
            out.append((line, problem))
    return out


def _yields(fn: Any) -> bool:
    """Whether a function's own body (not nested functions or classes) yields."""
    todo = list(fn.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda,
                                 ast.ClassDef)):
            todo.extend(ast.iter_child_nodes(node))
    return False


def _where(path: str, fn: Callable[..., Any]) -> str:
    return f"{path}:{fn.__code__.co_firstlineno}"


def strategy_error(path: str, exc: BaseException, during: str) -> StrategyError:
    """Turn an exception raised by strategy code into a ``file:line: message`` error.

    The first line names the innermost line of the strategy file; when the error passed
    through several of the strategy's own functions, the lines after it trace them, outermost
    first. Frames of sandtrade itself are never shown: they are not the author's to fix.
    """
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == path]
    where = f"{path}:{frames[-1].lineno}" if frames else path
    text = f"{exc}"[:2000]
    message = f"{where}: {during}: {type(exc).__name__}: {text}"
    if len(frames) > 1:
        message += "\n" + "\n".join(f"  {path}:{f.lineno} in {f.name}" for f in frames)
    return StrategyError(message)


def load_strategy(path: str | Path) -> LoadedStrategy:
    """Read a strategy file, run its module body here, and check its hooks and PARAMS.

    This runs the file in the calling process, unrestricted: for the sandbox's worker (which
    uses :func:`load_strategy_source` with ``restricted=True``) and for debugging.
    """
    p = Path(path)
    spath = str(p)
    try:
        source = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StrategyError(f"{spath}: no such strategy file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise StrategyError(f"{spath}: cannot read the strategy file: {e}") from None
    return load_strategy_source(source, spath)


def load_strategy_source(source: str, path: str, *, restricted: bool = False,
                         print_log: Any = None, check: bool = False) -> LoadedStrategy:
    """Compile ``source`` (named ``path`` in messages), run its module body, check its hooks.

    With ``restricted`` the source is compiled and run under the sandbox policy
    (:mod:`sandtrade.strategy.policy`), ``print`` going to ``print_log``; every policy
    violation is reported, one ``file:line: message`` per line. With ``check`` too (``sandtrade
    check``, an upload), so is what the file would fail on when its lines run, found by reading
    it (:mod:`sandtrade.strategy.static_check`).
    """
    spath = path
    stem = Path(path).stem
    module = types.ModuleType(stem)
    if restricted:
        from sandtrade.strategy.policy import StrategyLog, compile_strategy, restricted_globals

        code, diagnostics = compile_strategy(source, spath)
        found = [(d.line or 0, str(d)) for d in diagnostics]
        if check:
            # Imported only here: only `check` reads the source this way, and the import
            # builds the sandbox's globals and the API tables, a cost a run does not need.
            from sandtrade.strategy.static_check import run_time_problems

            found += run_time_problems(source, spath)
        if code is None or found:
            # The body never runs: the hook mistakes come from the source, so that one check
            # reports every kind, in file order (problems without a line first).
            found += static_hook_problems(source, spath)
            found.sort(key=lambda item: item[0])
            raise StrategyError("\n".join(message for _, message in found))
        module.__dict__.update(restricted_globals(print_log or StrategyLog()))
    else:
        try:
            code = compile(source, spath, "exec")
        except SyntaxError as e:
            raise StrategyError(f"{spath}:{e.lineno}: syntax error: {e.msg}") from None
        except (ValueError, RecursionError, MemoryError) as e:
            raise StrategyError(f"{spath}: cannot compile: {type(e).__name__}: {e}") from None
        module.__file__ = spath
        module.__dict__["__builtins__"] = builtins
        module.__dict__["param"] = param  # a builtin in the sandbox (see policy)
    try:
        exec(code, module.__dict__)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        raise strategy_error(spath, e, "while loading the file") from None

    params = module.__dict__.get("PARAMS", {})
    if not isinstance(params, dict):
        raise StrategyError(f"{spath}: PARAMS must be a dict with string keys, "
                            f"got {type(params).__name__}")
    lines = params_lines(source)
    specs: dict[str, ParamSpec] = {}
    for k, v in params.items():
        spec = spec_for(v)
        problem = param_problem(k, spec.default)
        if problem is None:
            problem = spec.problem(spec.default)
            problem = f"{k}: the default {problem}" if problem else None
        if problem is not None:
            where = f"{spath}:{lines[k]}" if k in lines else _params_where(source, spath, k)
            raise StrategyError(f"{where}: {problem}")
        specs[k] = spec

    pm = _StrategyPluginManager(PROJECT)
    pm.add_hookspecs(StrategySpec)
    hooks: dict[str, Callable[..., Any]] = {n: f for n, f in vars(module).items()
             if n.startswith("on_") and inspect.isfunction(f)}
    problems = [f"{spath}: {n} must be a plain function (def {n}(...)), got "
                f"{type(v).__name__}" for n, v in vars(module).items()
                if n in HOOK_NAMES and not inspect.isfunction(v)]
    problems += [p for name, fn in sorted(hooks.items(), key=lambda kv: _line(kv[1]))
                 if (p := _hook_problem(spath, name, fn))]
    if problems:  # every mistake at once, in file order, so one `check` finds them all
        raise StrategyError("\n".join(problems))
    try:
        pm.register(module, name=stem)
        pm.check_pending()
    except pluggy.PluginValidationError as e:  # the checks above should have caught it
        raise StrategyError(f"{spath}: {e}") from None
    return LoadedStrategy(name=stem, path=spath, hooks=hooks, specs=specs,
                          params={k: spec.default for k, spec in specs.items()},
                          lines={k: n for k, n in lines.items() if k in specs})


#: The bounds of a parameter: what JSON, protobuf and the store carry exactly (an int64).
MAX_PARAM_INT = 2**63
MAX_PARAM_CHARS = 1000
MAX_PARAM_NAME = 100
_PARAM_KINDS = "a parameter is a number within ±2**63, a string or a boolean"


def _int_digits(n: int) -> int:
    """Decimal digits of ``n`` (``str(n)`` refuses past 4,300 digits)."""
    n = abs(n)
    digits = max(1, int(n.bit_length() * 0.30102999566398120))
    if n >= 10 ** digits:
        digits += 1
    return digits


def _name_problem(key: str) -> str | None:
    if not key:
        return "an empty name"
    if len(key) > MAX_PARAM_NAME:
        return f"a name of {len(key):,} characters (at most {MAX_PARAM_NAME})"
    if not key.isprintable():  # control and format characters, surrogates, separators
        bad = next(c for c in key if not c.isprintable())
        return f"a name with the character {bad!r} in it (names are printable text)"
    return None


def param_problem(key: object, value: object) -> str | None:
    """What makes ``key: value`` unfit to be a strategy parameter, or None.

    A parameter must survive JSON, protobuf and the store unchanged and be shown on one line:
    its name a printable string; its value a bool, an int within ±2**63, a finite float or a
    string of at most :data:`MAX_PARAM_CHARS` characters of valid text. The answer reads
    ``PARAMS['big']: an integer of 4,401 digits; a parameter is a number within ±2**63, ...``.
    """
    if not isinstance(key, str):
        return (f"PARAMS keys must be strings (names for --param), got {type(key).__name__} "
                f"{key!r}"[:300])
    problem = _name_problem(key)
    if problem is not None:
        return f"PARAMS key {key[:MAX_PARAM_NAME]!r}: {problem}"
    kind = type(value)
    if kind is bool:
        return None
    if kind is int:
        assert isinstance(value, int)
        if -MAX_PARAM_INT <= value < MAX_PARAM_INT:
            return None
        digits = _int_digits(value)
        what = f"{value:,}" if digits <= 30 else f"an integer of {digits:,} digits"
    elif kind is float:
        assert isinstance(value, float)
        if math.isfinite(value):
            return None
        what = f"{value!r}, not a finite number"
    elif kind is str:
        assert isinstance(value, str)
        if len(value) > MAX_PARAM_CHARS:
            what = f"a string of {len(value):,} characters (at most {MAX_PARAM_CHARS:,})"
        else:
            try:
                value.encode("utf-8")
                return None
            except UnicodeEncodeError as e:
                what = f"a string that is not valid text (a lone surrogate at character {e.start})"
    else:
        what = f"a {kind.__name__}"
    return f"PARAMS[{key!r}]: {what}; {_PARAM_KINDS}"


def _params_where(source: str, path: str, key: object) -> str:
    """``path:line`` of ``key`` in the module's ``PARAMS = {...}`` (of the assignment when the
    key is not a literal there), or ``path`` when the source does not say."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return path
    line = 0
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        if not any(isinstance(t, ast.Name) and t.id == "PARAMS" for t in targets):
            continue
        line = node.lineno
        if isinstance(value, ast.Dict):
            for k in value.keys:
                if isinstance(k, ast.Constant) and k.value == key:
                    line = k.lineno
    return f"{path}:{line}" if line else path


def params_lines(source: str) -> dict[str, int]:
    """The line of each literal key of the module's ``PARAMS = {...}`` in ``source``."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return {}
    out: dict[str, int] = {}
    for node in tree.body:
        value = node.value if isinstance(node, ast.Assign | ast.AnnAssign) else None
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        if isinstance(value, ast.Dict) and any(isinstance(t, ast.Name) and t.id == "PARAMS"
                                               for t in targets):
            out = {k.value: k.lineno for k in value.keys
                   if isinstance(k, ast.Constant) and isinstance(k.value, str)}
    return out


def resolve_params(defaults: Mapping[str, Any], overrides: Mapping[str, Any],
                   *, where: str = "strategy", specs: Mapping[str, ParamSpec] | None = None,
                   lines: Mapping[str, int] | None = None) -> dict[str, Any]:
    """Apply ``--param K=V`` overrides, converting each value to its default's type.

    An unknown name or a value of the wrong type is a :class:`StrategyError` naming both;
    with ``specs`` (the strategy's declarations), so is a value outside its bounds or
    choices, at the line of its key (``lines``): ``fast.py:3: fast: 80 is above its
    maximum 50``.
    """
    out = dict(defaults)
    for key, raw in overrides.items():
        if key not in defaults:
            known = ", ".join(sorted(defaults)) or "none"
            close = difflib.get_close_matches(key, list(defaults), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise StrategyError(f"{where}: unknown parameter {key!r}{hint} (known: {known})")
        default = defaults[key]
        value = out[key] = _convert(key, raw, default, where)
        problem = param_problem(key, value)
        if problem is not None:
            raise StrategyError(f"{where}: parameter {key!r}: "
                                f"{problem.partition(': ')[2] or problem}")
        spec = specs.get(key) if specs else None
        problem = spec.problem(value) if spec is not None else None
        if problem is not None:
            line = (lines or {}).get(key)
            raise StrategyError(f"{where}:{line}: {key}: {problem}" if line
                                else f"{where}: {key}: {problem}")
    return out


def _convert(key: str, raw: Any, default: Any, where: str) -> Any:
    kind = type(default)
    if not isinstance(raw, str):
        if kind is float and type(raw) is int:
            return float(raw)
        if type(raw) is kind:
            return raw
        raise StrategyError(f"{where}: parameter {key!r} must be {kind.__name__}, "
                            f"got {type(raw).__name__} {raw!r}")
    text = raw.strip()
    try:
        if kind is bool:
            low = text.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            return int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise StrategyError(f"{where}: parameter {key!r} must be {kind.__name__} "
                            f"(default {default!r}), got {raw!r}") from None
    return text
