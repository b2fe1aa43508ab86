"""What a strategy would fail on at run time, found by reading its source (``sandtrade check``).

The sandbox refuses some things only when the line runs: a builtin it does not provide
(``open(...)``: a NameError), ``"{}".format(x)`` (refused by the attribute guard), an attribute
the strategy API does not have (``ctx.ta.macd``). Such a file compiles and loads, then fails on
its first bar, or weeks later on the first bar that takes that branch. :func:`run_time_problems`
finds them by reading the file, so that ``check``, and an upload (which runs the same check),
refuse it with the line and what to write instead.

Only what is certain to fail when its line runs is reported; a miss is better than refusing a
good file:

* a name that no scope the line can see binds and that the sandbox's builtins lack. Scopes are
  the compiler's own (:mod:`symtable`), so parameters, nested functions, ``global``, class
  bodies, comprehensions, ``except ... as``, walrus and the rest resolve as Python resolves
  them; where a nested scope cannot be matched to its table (two lambdas on one line), only
  names bound nowhere in the file are reported;
* ``.format``, ``.format_map``, ``.mro`` on any object; ``getattr`` with a literal name the
  guard refuses; ``print(file=...)``;
* on a parameter named ``ctx`` of a ``def`` (not reassigned there): attributes that
  :class:`~sandtrade.strategy.context.Context` and ``ctx.ta`` lack, and any assignment to them
  or to ``ctx.params[...]``; on a hook's ``bar``, ``fill`` and ``signal``: attributes that
  ``Bar``, ``FillView`` and ``SignalView`` lack;
* on a module imported whole (``import datetime``): names its sandboxed proxy does not expose.

Nothing is reported inside a ``try`` whose handlers catch the error it would raise, nor for an
attribute name the file tests with ``hasattr`` or ``getattr(x, name, default)``. The names
allowed are read from the policy and the API classes themselves, so the two cannot drift.
Imports, ``_`` names and the rest of RestrictedPython's compile-time policy are reported by
:func:`~sandtrade.strategy.policy.compile_strategy`.

Only ``check`` runs this (and so every upload); loading a file for a back-test or a live run
does not, so a strategy stored before the check learnt something new still starts, and at run
time the sandbox's own guards are what stop code (the security tests exercise those).
"""

from __future__ import annotations

import ast
import builtins
import difflib
import inspect
import symtable
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from RestrictedPython.transformer import INSPECT_ATTRIBUTES

from sandtrade.models import Bar
from sandtrade.strategy.context import TA, Context, FillView, SignalView
from sandtrade.strategy.hooks import HOOK_NAMES, StrategySpec
from sandtrade.strategy.policy import (
    ALLOWED_MODULES,
    DENIED_ATTRIBUTES,
    StrategyLog,
    restricted_globals,
)

__all__ = ["run_time_problems"]

_GLOBALS = restricted_globals(StrategyLog())
#: Every name a strategy may use without binding it: the sandbox's builtins and globals, and
#: ``print``/``printed``, which RestrictedPython rewrites.
AVAILABLE_NAMES = frozenset(_GLOBALS["__builtins__"]) | frozenset(_GLOBALS) | {"print", "printed"}
#: Attributes the guard refuses on every object that the compiler lets through.
REFUSED_ATTRIBUTES = frozenset(DENIED_ATTRIBUTES - INSPECT_ATTRIBUTES)

#: What to write instead of a Python builtin the sandbox does not provide.
_BUILTIN_HINTS = {
    "open": "no file access; keep data in ctx.state, which lasts across restarts",
    "input": "strategies take no input; give values as PARAMS, set with --param NAME=VALUE",
    "eval": "strategies cannot run code made from strings",
    "exec": "strategies cannot run code made from strings",
    "compile": "strategies cannot run code made from strings",
    "globals": "no introspection; keep values in variables, a dict or ctx.state",
    "locals": "no introspection; keep values in variables, a dict or ctx.state",
    "vars": "no introspection; keep values in variables, a dict or ctx.state",
    "dir": "no introspection; the strategy API is in the README",
    "type": "use isinstance(x, SomeClass)",
    "setattr": "write obj.name = value, on objects of your own classes",
    "delattr": "write del obj.name, on objects of your own classes",
    "format": 'use an f-string, e.g. f"{price:.2f}"',
    "ascii": "use repr(x)",
    "bin": 'use an f-string, e.g. f"{n:b}"',
    "bytearray": "use bytes",
    "memoryview": "use bytes",
    "breakpoint": "strategies are not interactive; print() writes to the strategy's log",
    "help": "strategies are not interactive",
    "exit": "return from the hook instead",
    "quit": "return from the hook instead",
}
_COMPREHENSIONS = {ast.ListComp: "listcomp", ast.SetComp: "setcomp", ast.DictComp: "dictcomp",
                   ast.GeneratorExp: "genexpr"}
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, *_COMPREHENSIONS)


@dataclass(frozen=True)
class _Api:
    """The public attributes of one strategy API class: all accepted, the useful ones shown."""

    what: str
    names: frozenset[str]
    shown: tuple[str, ...]

    @classmethod
    def of(cls, api: type, what: str = "attribute") -> _Api:
        names = frozenset(n for n in dir(api) if not n.startswith("_"))
        # A record's tuple methods and its constructors are not what a strategy looks for.
        shown = tuple(sorted(n for n in names if api is TA or (
            n not in dir(tuple)
            and not isinstance(inspect.getattr_static(api, n), (classmethod, staticmethod)))))
        return cls(what, names, shown)

    def missing(self, receiver: str, attr: str) -> str:
        close = difflib.get_close_matches(attr, self.shown, n=1)
        hint = f"; did you mean {receiver}.{close[0]}?" if close else ""
        return (f"{receiver} has no {self.what} {attr!r}{hint} "
                f"(available: {', '.join(self.shown)})")


_CTX = _Api.of(Context)
_TA = _Api.of(TA, "indicator")


def _hook_args(hook: str) -> dict[str, _Api]:
    spec = inspect.signature(getattr(StrategySpec, hook)).parameters
    return {a: _Api.of(t) for a, t in (("bar", Bar), ("fill", FillView), ("signal", SignalView))
            if a in spec}


#: A hook's own arguments besides ``ctx``, by hook: what each one always is.
_HOOK_ARGS = {hook: _hook_args(hook) for hook in HOOK_NAMES}


def run_time_problems(source: str, path: str) -> list[tuple[int, str]]:
    """What ``source`` would fail on when its lines run, as ``(line, "file:line: message")``
    in file order (see the module docstring for what is looked at). Empty when the source does
    not parse: the compiler reports that."""
    try:
        tree = ast.parse(source, filename=path)
        top = symtable.symtable(source, path, "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    try:
        found = _Checker(tree, top).run()
    except Exception:  # a bug here must not refuse a file: the run-time guards still hold
        return []
    return [(line, f"{path}:{line}: {message}") for line, message in found]


@dataclass
class _Checker:
    """One file's check: its tree and its symbol tables side by side."""

    tree: ast.Module
    top: symtable.SymbolTable
    #: (line, message) -> column, so that a problem met twice on a line is told once.
    found: dict[tuple[int, str], int] = field(default_factory=dict)
    #: Names bound in some scope of the file / bound as the module's globals.
    bound_anywhere: set[str] = field(default_factory=set)
    global_bound: set[str] = field(default_factory=set)
    #: A name local somewhere -> where, in words; module-level names of imported modules.
    owners: dict[str, str] = field(default_factory=dict)
    modules: dict[str, str] = field(default_factory=dict)
    #: Attribute names the file tests for; ``exec``/``eval`` names the compiler refuses.
    tested: set[str] = field(default_factory=set)
    refused_calls: set[int] = field(default_factory=set)

    def run(self) -> list[tuple[int, str]]:
        tables = list(_tables(self.top))
        self.bound_anywhere = {s.get_name() for t in tables for s in t.get_symbols()
                               if s.is_assigned() or s.is_imported() or s.is_parameter()}
        declared = {s.get_name() for t in tables[1:] for s in t.get_symbols()
                    if s.is_declared_global() and (s.is_assigned() or s.is_imported())}
        self.global_bound = declared | {s.get_name() for s in self.top.get_symbols()
                                        if s.is_assigned() or s.is_imported()}
        self.owners = _owners(tables)
        self.tested = _tested_attributes(self.tree)
        own, nested = _scope_nodes(self.tree.body)
        self.modules = _module_aliases(own, self.top, declared)
        # RestrictedPython's compiler refuses these calls itself, with its own words.
        self.refused_calls = {id(n.func) for n in ast.walk(self.tree) if isinstance(n, ast.Call)
                              and isinstance(n.func, ast.Name) and n.func.id in ("exec", "eval")}
        self._scope(self.tree, self.top, own, nested, {})
        order = sorted(self.found.items(), key=lambda item: (item[0][0], item[1]))
        return [key for key, _ in order]

    # ------------------------------------------------------------------ walking the scopes

    def _scope(self, node: ast.AST, table: symtable.SymbolTable | None,
               own: list[tuple[ast.AST, tuple[type, ...]]], nested: list[ast.AST],
               typed: dict[str, _Api]) -> None:
        for item, caught in own:
            self._look(item, caught, table, typed)
        keys = Counter(_key(n) for n in nested)
        children: dict[tuple[str, str, int], list[symtable.SymbolTable]] = {}
        for child in table.get_children() if table is not None else ():
            key = (str(child.get_type()), child.get_name(), child.get_lineno())
            children.setdefault(key, []).append(child)
        for n in nested:
            matches = children.get(_key(n), [])
            # Two nested scopes alike on one line (two lambdas) cannot be told apart: their
            # names are checked only against the whole file.
            sub = matches[0] if len(matches) == 1 and keys[_key(n)] == 1 else None
            sub_own, sub_nested = _scope_nodes(_own_parts(n))
            self._scope(n, sub, sub_own, sub_nested,
                        _typed_in(n, sub, typed, module_level=node is self.tree))

    def _look(self, node: ast.AST, caught: tuple[type, ...],
              table: symtable.SymbolTable | None, typed: dict[str, _Api]) -> None:
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            self._name(node, caught, table)
        elif isinstance(node, ast.Attribute):
            self._attribute(node, node.ctx, caught, table, typed)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Attribute) \
                and node.target.attr in REFUSED_ATTRIBUTES \
                and not _protected(AttributeError, caught):
            self._add(node, _refused_attribute(node.target.attr))  # ``x.a += 1`` reads x.a
        elif isinstance(node, ast.Subscript) and not isinstance(node.ctx, ast.Load):
            v = node.value
            if isinstance(v, ast.Attribute) and v.attr == "params" and _typed(v.value, typed) \
                    is _CTX and not _protected(TypeError, caught):
                self._add(node, "ctx.params is read-only (the run's parameters); keep values "
                          "that change in ctx.state")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            self._call(node, node.func.id, caught, table)

    # ------------------------------------------------------------------ what is reported

    def _name(self, node: ast.Name, caught: tuple[type, ...],
              table: symtable.SymbolTable | None) -> None:
        name = node.id
        if name.startswith("_") or name in AVAILABLE_NAMES or _protected(NameError, caught) \
                or id(node) in self.refused_calls:
            return  # ``_`` names: the compiler refuses them already
        if name not in self.bound_anywhere:
            if hasattr(builtins, name):
                hint = _BUILTIN_HINTS.get(name, "a Python builtin the sandbox does not provide")
                self._add(node, f"{name!r} is not available in strategies ({hint})")
            else:
                known = self.global_bound | AVAILABLE_NAMES | set(
                    table.get_identifiers() if table else ())
                close = difflib.get_close_matches(name, sorted(known - {name}), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self._add(node, f"name {name!r} is not defined{hint}")
        elif table is not None and self._global(name, table) and name not in self.global_bound:
            owner = self.owners.get(name, "another scope")
            self._add(node, f"name {name!r} is not defined here: it is local to {owner} (pass "
                      "it as an argument, or keep it in ctx.state)")

    def _attribute(self, node: ast.Attribute, ctx: ast.expr_context, caught: tuple[type, ...],
                   table: symtable.SymbolTable | None, typed: dict[str, _Api]) -> None:
        attr = node.attr
        load = isinstance(ctx, ast.Load)
        if load and attr in REFUSED_ATTRIBUTES and not _protected(AttributeError, caught):
            self._add(node, _refused_attribute(attr))
            return
        if attr.startswith("_"):
            return  # the compiler refuses these already
        api = _typed(node.value, typed)
        if api is not None:
            receiver = ast.unparse(node.value)
            if not load:
                if not _protected(TypeError, caught):
                    keep = f'; keep your own values in ctx.state (ctx.state["{attr}"] = ...)' \
                        if api in (_CTX, _TA) else ""
                    verb = "deleted" if isinstance(ctx, ast.Del) else "assigned"
                    self._add(node, f"{receiver}.{attr} cannot be {verb}: {receiver} is "
                              f"read-only{keep}")
            elif attr not in api.names and attr not in self.tested \
                    and not _protected(AttributeError, caught):
                self._add(node, api.missing(receiver, attr))
            return
        value = node.value
        if isinstance(value, ast.Name) and value.id in self.modules and table is not None \
                and self._global(value.id, table) and attr not in self.tested \
                and not _protected(AttributeError if load else TypeError, caught):
            module = self.modules[value.id]
            mod, names = ALLOWED_MODULES[module]
            if not load:
                self._add(node, f"module {module} is read-only (sandboxed)")
            elif attr not in names:
                near = [f"{value.id}.{n}.{attr}" for n in names
                        if isinstance(getattr(mod, n), type) and hasattr(getattr(mod, n), attr)]
                near += [f"{value.id}.{n}" for n in difflib.get_close_matches(attr, names, n=1)]
                hint = f"; did you mean {near[0]}?" if near else ""
                self._add(node, f"{module}.{attr} is not available in strategies{hint} "
                          f"(available: {', '.join(sorted(names))})")

    def _call(self, node: ast.Call, func: str, caught: tuple[type, ...],
              table: symtable.SymbolTable | None) -> None:
        if func == "getattr" and len(node.args) >= 2 and self._builtin(func, table):
            name = node.args[1]
            if isinstance(name, ast.Constant) and isinstance(name.value, str) \
                    and not _protected(AttributeError, caught):
                if name.value.startswith("_"):
                    self._add(node, f"getattr(..., {name.value!r}): names starting with '_' "
                              "are not allowed in strategies")
                elif name.value in REFUSED_ATTRIBUTES:
                    self._add(node, _refused_attribute(name.value))
        elif func == "print" and not _protected(TypeError, caught):
            for kw in node.keywords:
                if kw.arg == "file" and not (isinstance(kw.value, ast.Constant)
                                             and kw.value.value is None):
                    self._add(node, "print(file=...) is not available in strategies: print "
                              "writes to the strategy's log")

    # ------------------------------------------------------------------ helpers

    def _global(self, name: str, table: symtable.SymbolTable) -> bool:
        """Whether ``name`` in ``table``'s scope is looked up among the module's globals
        (False when the table does not know the name: then nothing is certain)."""
        sym = _lookup(table, name)
        return sym is not None and sym.is_global()

    def _builtin(self, name: str, table: symtable.SymbolTable | None) -> bool:
        """Whether ``name`` certainly means the sandbox's builtin of that name here."""
        if name not in self.bound_anywhere:
            return True
        return table is not None and self._global(name, table) \
            and name not in self.global_bound

    def _add(self, node: ast.AST, message: str) -> None:
        self.found.setdefault((getattr(node, "lineno", 0), message),
                              getattr(node, "col_offset", 0))


def _refused_attribute(attr: str) -> str:
    if attr in ("format", "format_map"):
        return (f"{attr!r} is not allowed in strategies (a format string can reach attributes "
                'the sandbox hides); use an f-string, e.g. f"{price:.2f}"')
    if attr == "mro":
        return "'mro' is not allowed in strategies (no class introspection); use isinstance()"
    return f"{attr!r} is not allowed in strategies"


def _tables(table: symtable.SymbolTable) -> Iterator[symtable.SymbolTable]:
    yield table
    for child in table.get_children():
        yield from _tables(child)


def _owners(tables: list[symtable.SymbolTable]) -> dict[str, str]:
    """For each name bound locally somewhere, the first scope it is local to, in words."""
    out: dict[str, str] = {}
    for t in tables[1:]:
        kind, name = str(t.get_type()), t.get_name()
        where = (f"class {name}" if kind == "class" else "a lambda" if name == "lambda"
                 else "a comprehension" if name in _COMPREHENSIONS.values() else f"{name}()")
        for s in t.get_symbols():
            if s.is_local() and (s.is_assigned() or s.is_parameter() or s.is_imported()):
                out.setdefault(s.get_name(), where)
    return out


def _tested_attributes(tree: ast.Module) -> set[str]:
    """Attribute names the file asks about (``hasattr(x, "a")``, ``getattr(x, "a", None)``):
    code that tests for an attribute may use it where it exists."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) >= 2 \
                and isinstance(node.args[1], ast.Constant) \
                and isinstance(node.args[1].value, str) \
                and (node.func.id == "hasattr"
                     or (node.func.id == "getattr" and len(node.args) >= 3)):
            out.add(node.args[1].value)
    return out


def _module_aliases(own: list[tuple[ast.AST, tuple[type, ...]]], top: symtable.SymbolTable,
                    declared: set[str]) -> dict[str, str]:
    """Module-level names bound only by ``import X [as name]`` of an allowed module: name -> X."""
    out: dict[str, str] = {}
    other: set[str] = set(declared)
    for node, _ in own:
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.asname or alias.name.partition(".")[0]
                if alias.name in ALLOWED_MODULES and out.get(name, alias.name) == alias.name:
                    out[name] = alias.name
                else:
                    other.add(name)
        elif isinstance(node, ast.ImportFrom):
            other.update(a.asname or a.name for a in node.names)
    for name in list(out):
        sym = _lookup(top, name)
        if name in other or sym is None or sym.is_assigned():  # bound to something else too
            del out[name]
    return out


def _key(node: ast.AST) -> tuple[str, str, int]:
    """How the symbol table names the scope ``node`` opens: (kind, name, line)."""
    line = getattr(node, "lineno", 0)
    if isinstance(node, ast.ClassDef):
        return ("class", node.name, line)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return ("function", node.name, line)
    if isinstance(node, ast.Lambda):
        return ("function", "lambda", line)
    return ("function", _COMPREHENSIONS[type(node)], line)


def _own_parts(node: ast.AST) -> list[ast.AST]:
    """The parts of a scope's node that run in that scope. Annotations are left out: they are
    never evaluated in a function and not at all under ``from __future__ import annotations``."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return list(node.body)
    if isinstance(node, ast.Lambda):
        return [node.body]
    assert isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp))
    first, *rest = node.generators
    parts: list[ast.AST] = [first.target, *first.ifs]
    for gen in rest:
        parts += [gen.target, gen.iter, *gen.ifs]
    parts += [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
    return parts


def _enclosing_parts(node: ast.AST) -> list[ast.AST]:
    """The parts of a nested scope's node that run in the scope around it."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
        a = node.args
        decorators = [] if isinstance(node, ast.Lambda) else node.decorator_list
        return [*decorators, *a.defaults, *(d for d in a.kw_defaults if d is not None)]
    if isinstance(node, ast.ClassDef):
        return [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]
    assert isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp))
    return [node.generators[0].iter]


def _scope_nodes(parts: Sequence[ast.AST]) -> tuple[list[tuple[ast.AST, tuple[type, ...]]],
                                                list[ast.AST]]:
    """Every node that runs in one scope, each with the exceptions a ``try`` around it
    catches, and the nodes of the scopes nested in it."""
    own: list[tuple[ast.AST, tuple[type, ...]]] = []
    nested: list[ast.AST] = []
    todo: list[tuple[ast.AST, tuple[type, ...]]] = [(p, ()) for p in reversed(parts)]
    while todo:
        node, caught = todo.pop()
        if isinstance(node, _SCOPES):
            nested.append(node)
            todo.extend((p, caught) for p in reversed(_enclosing_parts(node)))
            continue
        own.append((node, caught))
        if isinstance(node, (ast.Try, ast.TryStar)):
            inner = caught + tuple(t for h in node.handlers for t in _catches(h))
            children = [(c, caught) for c in (*node.handlers, *node.orelse, *node.finalbody)]
            children = [(c, inner) for c in node.body] + children
        elif isinstance(node, ast.AnnAssign):
            children = [(node.target, caught)] + ([(node.value, caught)] if node.value else [])
        else:
            children = [(c, caught) for c in ast.iter_child_nodes(node)]
        todo.extend(reversed(children))
    return own, nested


def _catches(handler: ast.ExceptHandler) -> tuple[type, ...]:
    """The exception classes an ``except`` clause certainly or possibly catches."""
    kinds = handler.type
    if kinds is None:
        return (BaseException,)
    items = kinds.elts if isinstance(kinds, ast.Tuple) else [kinds]
    out: list[type] = []
    for item in items:
        known = getattr(builtins, item.id, None) if isinstance(item, ast.Name) else None
        if isinstance(known, type) and issubclass(known, BaseException):
            out.append(known)
        elif not isinstance(item, ast.Name):
            return (BaseException,)  # computed: it might catch anything
        # a class of the strategy's own: it cannot be a base of the builtin errors
    return tuple(out)


def _protected(error: type, caught: tuple[type, ...]) -> bool:
    return any(issubclass(error, c) for c in caught)


def _typed_in(node: ast.AST, table: symtable.SymbolTable | None, outer: dict[str, _Api], *,
              module_level: bool) -> dict[str, _Api]:
    """The names whose API class is known in the scope ``node`` opens: the parameters of a
    ``def`` named ``ctx`` (by convention and by the hooks' signatures) and, in a hook, its
    ``bar``/``fill``/``signal``; and those of the enclosing scope it uses unchanged. Never a
    name assigned anywhere it could be (here, or through ``nonlocal`` in a nested scope)."""
    if table is None:
        return {}
    out: dict[str, _Api] = {}
    for name, api in outer.items():
        sym = _lookup(table, name)
        if sym is not None and sym.is_free() and not sym.is_assigned():
            out[name] = api
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        candidates = {"ctx": _CTX}
        if module_level and node.name in _HOOK_ARGS:
            candidates.update(_HOOK_ARGS[node.name])
        for name, api in candidates.items():
            sym = _lookup(table, name)
            if sym is not None and sym.is_parameter() and not sym.is_assigned():
                out[name] = api
    rebound = {s.get_name() for t in list(_tables(table))[1:] for s in t.get_symbols()
               if s.is_nonlocal()}
    return {name: api for name, api in out.items() if name not in rebound}


def _lookup(table: symtable.SymbolTable, name: str) -> symtable.Symbol | None:
    try:
        return table.lookup(name)
    except KeyError:
        return None


def _typed(node: ast.AST, typed: dict[str, _Api]) -> _Api | None:
    """The API class of ``node`` when it is a typed parameter, or ``ctx.ta`` of one."""
    if isinstance(node, ast.Name):
        return typed.get(node.id)
    if isinstance(node, ast.Attribute) and node.attr == "ta" and isinstance(node.value, ast.Name) \
            and typed.get(node.value.id) is _CTX:
        return _TA
    return None
