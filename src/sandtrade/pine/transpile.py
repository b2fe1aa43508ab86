"""Pine Script v5/v6 strategies to sandtrade strategy files.

The script is parsed by :mod:`sandtrade.pine.parser` (lark, LALR(1), our grammar
``pine.lark``; its docstring says why not pynescript's ANTLR grammar). What we own is that
grammar, the mapping of its tree to Python, and the refusals.

The generated file is an ordinary strategy: it runs in the sandbox like any other
(RestrictedPython, the import whitelist) and reaches Pine's semantics only through
``ctx.pine`` (:mod:`sandtrade.strategy.pine`). Each Pine statement is a comment above what it
became. What the mapping does not cover is refused with ``file.pine:LINE:COL: 'name' is not
supported (yet)``, never dropped; the only calls left out are those that only draw
(``bgcolor``, ``hline``, …), each named in a comment where it stood and in
:attr:`PineImport.dropped`.

It is one file because the translator is one recursive walk over the syntax tree: its
statement and expression halves call each other at every level of nesting, and share one
state (the names declared, the call sites, the inputs found).
"""

from __future__ import annotations

import ast
import inspect
import keyword
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sandtrade.errors import StrategyError
from sandtrade.pine import nodes as pn
from sandtrade.pine.parser import PineSyntaxError, parse
from sandtrade.strategy.pine import PineRuntime
from sandtrade.strategy.pine_builtins import REQUIRED, TA_FUNCTIONS, TA_SHORT_FORMS, MathFunctions

__all__ = ["PineImport", "PineImportError", "import_pine"]

#: Calls that only draw on TradingView's chart: left out, with a comment where they stood.
DRAWING_ONLY = frozenset({"bgcolor", "barcolor", "fill", "hline", "plotchar", "plotarrow",
                          "plotcandle", "plotbar"})
#: Series the bar gives, as the runtime names them.
BAR_SERIES = frozenset({"open", "high", "low", "close", "volume", "hl2", "hlc3", "ohlc4",
                        "hlcc4"})
#: Names the generated code uses itself: a Pine variable of the same name is renamed.
RESERVED = frozenset({"ctx", "bar", "pine", "NA", "at", "fill", "math", "PARAMS", "on_bar",
                      "on_start", "on_fill", "on_stop", "on_signal", "printed", "print"})
#: ``strategy.*`` values read on a bar, as ``ctx.pine`` attributes.
STRATEGY_VALUES = frozenset({"position_size", "position_avg_price", "equity",
                             "initial_capital", "netprofit", "openprofit", "opentrades"})
#: ``strategy.*`` order calls, as ``ctx.pine`` methods.
STRATEGY_CALLS = frozenset({"entry", "order", "close", "close_all", "exit", "cancel",
                            "cancel_all"})
STRATEGY_CONSTANTS = {
    "long": "long", "short": "short", "fixed": "fixed", "percent_of_equity": "percent_of_equity",
    "cash": "cash", "oca.cancel": "cancel", "oca.none": "none", "oca.reduce": "reduce",
    "commission.percent": "percent", "commission.cash_per_contract": "cash_per_contract",
    "commission.cash_per_order": "cash_per_order",
}
#: ``strategy()`` arguments that change nothing in a back-test (how TradingView draws).
STRATEGY_DISPLAY = frozenset({"title", "shorttitle", "overlay", "format", "precision", "scale",
                              "max_bars_back", "max_lines_count", "max_labels_count",
                              "max_boxes_count", "max_polylines_count", "explicit_plot_zorder",
                              "risk_free_rate", "fill_orders_on_standard_ohlc", "currency",
                              "dynamic_requests", "behind_chart"})
STRATEGY_DEFAULTS: dict[str, Any] = {
    "pyramiding": 0, "default_qty_type": "fixed", "default_qty_value": 1,
    "initial_capital": 1_000_000, "commission_type": "percent", "commission_value": 0,
    "process_orders_on_close": False, "calc_on_every_tick": False,
    "calc_on_order_fills": False, "slippage": 0, "close_entries_rule": "FIFO",
    "use_bar_magnifier": False, "backtest_fill_limits_assumption": 0, "margin_long": 100,
    "margin_short": 100,
}
STRATEGY_PARAMS = ("title", "shorttitle", "overlay", "format", "precision", "scale",
                   "pyramiding", "calc_on_order_fills", "calc_on_every_tick", "max_bars_back",
                   "backtest_fill_limits_assumption", "default_qty_type", "default_qty_value",
                   "initial_capital", "currency", "slippage", "commission_type",
                   "commission_value", "process_orders_on_close", "close_entries_rule")
#: Why a ``strategy()`` setting other than its default is refused.
STRATEGY_REFUSED = {
    "calc_on_every_tick": "a back-test on bars has no ticks, and live the strategy runs once "
                          "per bar; TradingView's own back-test also runs once per bar",
    "calc_on_order_fills": "the strategy runs once per bar, not again after each fill",
    "slippage": "slippage in ticks is not supported (yet); give --slippage to the back-test",
    "close_entries_rule": "only FIFO closing of entries is supported (yet)",
    "use_bar_magnifier": "the back-test has no lower time frame to look into",
    "backtest_fill_limits_assumption": "limit orders fill when the price touches them",
    "margin_long": "margin is not supported (yet): the paper broker sizes on cash",
    "margin_short": "margin is not supported (yet): the paper broker sizes on cash",
}
INPUT_KINDS = ("int", "float", "bool", "string", "source", "price")
SOURCES = ("open", "high", "low", "close", "volume", "hl2", "hlc3", "ohlc4", "hlcc4")
#: Functions known by name (besides ``ta.*``), mapped to the runtime.
PLAIN_FUNCTIONS = {"nz": "pine.nz", "na": "pine.isna", "fixnan": None,
                   "str.tostring": "pine.tostring"}
MATH_FUNCTIONS = frozenset(n for n in vars(MathFunctions) if not n.startswith("_"))
#: Arguments an order call takes by position (Pine's order differs between v5 and v6 after
#: these, so the rest must be given by name).
POSITIONAL_LIMIT = {"entry": 5, "order": 5, "exit": 2, "close": 1, "close_all": 0,
                    "cancel": 1, "cancel_all": 0}


class PineImportError(StrategyError):
    """A Pine script the importer cannot take, with ``file:line:col`` and the reason."""


@dataclass(frozen=True)
class PineImport:
    """A Pine strategy turned into a sandtrade strategy file.

    ``source``: the strategy file; ``title``: the strategy's title; ``settings``: the
    ``strategy()`` settings that belong to the back-test rather than the file (``cash``,
    ``commission_pct``, ``commission_per_unit``, ``commission_min``, ``fill_profile``), as
    ``sandtrade backtest FILE.pine`` applies them; ``dropped``: drawing-only calls left out.
    """

    source: str
    title: str
    settings: dict[str, Any]
    dropped: list[str] = field(default_factory=list)
    #: The Pine line each line of ``source`` came from (where one did).
    lines: dict[int, int] = field(default_factory=dict)

    def pine_message(self, message: str, path: str) -> str:
        """``message`` (an error about ``source``, named ``path``) with each
        ``path:LINE:`` of the generated file turned into the Pine line it came from."""
        def line(m: re.Match[str]) -> str:
            n = int(m.group(1))
            pine = self.lines.get(n)
            return f"{path}:{pine}:" if pine else f"{path} (imported, line {n}):"
        return re.sub(re.escape(path) + r":(\d+):", line, message)

    def backtest_flags(self) -> str:
        """The ``sandtrade backtest`` options that give a run these settings."""
        s = self.settings
        flags = [f"--cash {_number(s['cash'])}"]
        for key, flag in (("commission_pct", "--commission"),
                          ("commission_per_unit", "--commission-per-unit"),
                          ("commission_min", "--commission-min")):
            if s.get(key):
                flags.append(f"{flag} {_number(s[key])}")
        if s.get("fill_profile"):
            flags.append(f"--fill-profile {s['fill_profile']}")
        return " ".join(flags)


def import_pine(text: str, path: str = "strategy.pine") -> PineImport:
    """Translate the Pine strategy ``text`` (named ``path`` in errors) or raise
    :class:`PineImportError`."""
    try:
        script = parse(text)
    except PineSyntaxError as e:
        raise PineImportError(f"{path}:{e.line}:{e.column}: Pine syntax error: "
                              f"{e.message}") from None
    except RecursionError:
        raise PineImportError(f"{path}: the script nests too deeply to read") from None
    try:
        return _Translator(text, path).script(script)
    except RecursionError:
        raise PineImportError(f"{path}: the script nests too deeply to read") from None


def _printable(text: str) -> str:
    """``text`` with every character that is not printable spelled as an escape: a Pine line
    copied into a comment must not carry terminal controls or a line break."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _pine_literal(value: object) -> str:
    """``value`` as Pine writes it (``true``, ``"FIFO"``, ``50``)."""
    if type(value) is bool:
        return "true" if value else "false"
    return f'"{value}"' if type(value) is str else repr(value)


def _number(x: float) -> str:
    """``x`` as a command line takes it: ``1000000``, ``0.001``."""
    return str(int(x)) if x == int(x) else repr(x)


def _version(text: str) -> int | None:
    for line in text.splitlines():
        s = line.strip().replace(" ", "")
        if s.startswith("//@version="):
            try:
                return int(s.split("=", 1)[1])
            except ValueError:
                return None
    return None


def _dotted(node: Any) -> str | None:
    """``ta.sma`` for ``Attribute(Name('ta'), 'sma')``, ``close`` for a name, else None."""
    if isinstance(node, pn.Name):
        return str(node.id)
    if isinstance(node, pn.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _walk(node: Any) -> Iterator[Any]:
    """Every AST node under ``node`` (itself included)."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, list):
            stack.extend(reversed(n))
            continue
        if not hasattr(n, "_fields"):
            continue
        yield n
        for f in n._fields:
            stack.append(getattr(n, f, None))


_PREC = {pn.BoolOp: 1, pn.UnaryOp: 2, pn.Compare: 3, pn.BinOp: 4, pn.Conditional: 0}


class _Scope:
    """What a name means where it is used: the top level, or inside a user function."""

    def __init__(self, func: str | None, params: set[str]) -> None:
        self.func = func
        self.params = params
        self.tracked: set[str] = set()
        self.var: set[str] = set()

    def key(self, text: str) -> str:
        """The Python expression of a key unique to this place (and call site)."""
        return repr(text) if self.func is None else f"at + {'>' + text!r}"


class _Translator:
    def __init__(self, text: str, path: str) -> None:
        self.lines = text.splitlines()
        self.path = path
        self.params: list[tuple[str, str, str]] = []  # (key, python literal, comment)
        self.sources: set[str] = set()
        self.functions: dict[str, list[str]] = {}
        self.dropped: list[str] = []
        self.title = "Pine strategy"
        self.setup: dict[str, Any] = dict(STRATEGY_DEFAULTS)
        self.saw_strategy = False
        self.plots = 0
        self.names: dict[str, str] = {}
        self.declared: set[str] = set()
        self.overlay_chart = False

    # ------------------------------------------------------------ errors and names

    def fail(self, node: Any, message: str) -> PineImportError:
        line = getattr(node, "lineno", 0)
        col = getattr(node, "col_offset", -1) + 1
        return PineImportError(f"{self.path}:{line}:{col}: {message}")

    def unsupported(self, node: Any, what: str) -> PineImportError:
        return self.fail(node, f"{what!r} is not supported (yet)")

    def py(self, name: str) -> str:
        """A Pine identifier as a Python name the sandbox accepts."""
        got = self.names.get(name)
        if got is None:
            got = name
            if got.startswith("_"):
                got = "v" + got
            while keyword.iskeyword(got) or got in RESERVED or got in self.names.values():
                got += "_"
            self.names[name] = got
        return got

    # ------------------------------------------------------------ the script

    def script(self, script: Any) -> PineImport:
        version = _version("\n".join(self.lines))
        if version not in (5, 6):
            raise PineImportError(
                f"{self.path}:1:1: only Pine Script v5 and v6 are supported; start the script "
                f"with //@version=5 or //@version=6 (found "
                f"{'no version' if version is None else f'version {version}'})")
        body: list[Any] = list(script.body)
        top = _Scope(None, set())
        for n in _walk(body):
            if isinstance(n, (pn.Assign, pn.ReAssign, pn.ForTo, pn.ForIn)):
                for t in _walk(n.target):
                    if isinstance(t, pn.Name):
                        self.declared.add(t.id)
            elif isinstance(n, pn.FunctionDef):
                self.declared.add(n.name)
                fn_params: list[Any] = n.args
                self.declared.update(p.name for p in fn_params)
        self._collect(body, top)
        funcs: list[str] = []
        main: list[str] = []
        for stmt in body:
            if isinstance(stmt, pn.FunctionDef):
                funcs.extend(self.function(stmt))
            else:
                main.extend(self.statement(stmt, top, 1))
        if not self.saw_strategy:
            raise PineImportError(f"{self.path}:1:1: not a strategy: the script calls no "
                                  "strategy(...) (an indicator() script places no orders)")
        source = self.render(funcs, main)
        return PineImport(source, self.title, self.settings(), self.dropped,
                          self.line_map(source))

    def line_map(self, source: str) -> dict[int, int]:
        """Generated line -> Pine line: each line after a comment that quotes a Pine line
        (found in order; a function's body is quoted where it was written) came from it."""
        pine = [_printable(t.strip()) for t in self.lines]
        out: dict[int, int] = {}
        current = 0
        at = 0
        for n, text in enumerate(source.splitlines(), 1):
            stripped = text.strip()
            if stripped.startswith("# ") and text.startswith("    "):
                quoted = stripped[2:]
                hit = next((i for i in [*range(at, len(pine)), *range(at)]
                            if pine[i] == quoted), None)
                if hit is not None:
                    current, at = hit + 1, hit + 1
                    continue
            if current and text.startswith("    ") and stripped:
                out[n] = current
        return out

    def _collect(self, body: list[Any], scope: _Scope) -> None:
        """Names whose history is read (``x[1]``) or that are ``var``: kept bar by bar."""
        for n in _walk(body):
            if isinstance(n, pn.Subscript) and isinstance(n.value, pn.Name) \
                    and n.value.id not in scope.params:
                scope.tracked.add(n.value.id)
            elif isinstance(n, pn.Assign) and n.mode is not None:
                if isinstance(n.mode, pn.VarIp):
                    raise self.unsupported(n, "varip")
                if not isinstance(n.target, pn.Name):
                    raise self.unsupported(n, "var with a tuple")
                scope.var.add(n.target.id)
                scope.tracked.add(n.target.id)
            elif isinstance(n, pn.FunctionDef) and scope.func is None:
                continue

    def render(self, funcs: list[str], main: list[str]) -> str:
        flags = PineImport("", self.title, self.settings()).backtest_flags()
        title = _printable(self.title).replace("\\", "/").replace('"""', "'''")
        out = [
            f'"""{title}: imported from Pine Script ({self.path.rsplit("/", 1)[-1]}) by '
            "`sandtrade pine import`.",
            "",
            "Each Pine statement is a comment above what it became; ctx.pine is Pine's runtime",
            "(series, indicators, named orders). The strategy() settings that belong to the",
            "back-test, not to this file:",
            "",
            f"    sandtrade backtest THIS_FILE.py --data CSV {flags}",
            '"""',
            "",
            'NA = float("nan")',
            "",
            "PARAMS = {",
            *(f"    {key!r}: {value},  # {comment}" for key, value, comment in self.params),
            "}",
            "",
            "",
            "def on_start(ctx):",
            f"    # {self.setup_line}",
            "    ctx.pine.setup(" + ", ".join(
                f"{k}={v!r}" for k, v in self.runtime_setup().items()) + ")",
            "",
            "",
            "def on_fill(ctx, fill):",
            "    ctx.pine.on_fill(fill)",
            "",
            "",
            "def on_bar(ctx, bar):",
            "    pine = ctx.pine",
            "    pine.begin(bar)",
            *funcs,
            *main,
        ]
        return "\n".join(out) + "\n"

    setup_line = "strategy()"

    def runtime_setup(self) -> dict[str, Any]:
        s = self.setup
        return {"pyramiding": int(s["pyramiding"]), "default_qty_type": s["default_qty_type"],
                "default_qty_value": float(s["default_qty_value"]),
                "initial_capital": float(s["initial_capital"])}

    def settings(self) -> dict[str, Any]:
        s = self.setup
        out: dict[str, Any] = {"cash": float(s["initial_capital"])}
        kind, value = s["commission_type"], float(s["commission_value"])
        if value:
            if kind == "percent":
                out["commission_pct"] = value / 100
            elif kind == "cash_per_contract":
                out["commission_per_unit"] = value
            else:
                out["commission_min"] = value
        if s["process_orders_on_close"]:
            out["fill_profile"] = "close"
        return out

    # ------------------------------------------------------------ statements

    def comment(self, node: Any, depth: int) -> list[str]:
        """The Pine lines of ``node`` as comments (a block's header line only)."""
        first = getattr(node, "lineno", 0)
        last = getattr(node, "end_lineno", first) or first
        inner = node.value if isinstance(node, pn.Expr) else None
        if isinstance(inner, (pn.If, pn.While)):
            last = inner.test.end_lineno or first
        elif isinstance(inner, pn.ForTo):
            last = (inner.step or inner.end).end_lineno or first
        elif isinstance(node, pn.FunctionDef):
            last = first
        pad = "    " * depth
        return [f"{pad}# {_printable(self.lines[i - 1].strip())}"
                for i in range(first, last + 1)
                if 0 < i <= len(self.lines) and self.lines[i - 1].strip()]

    def block(self, body: list[Any], scope: _Scope, depth: int) -> list[str]:
        out: list[str] = []
        for stmt in body:
            out.extend(self.statement(stmt, scope, depth))
        return out or ["    " * depth + "pass"]

    def statement(self, stmt: Any, scope: _Scope, depth: int, *,
                  comment: bool = True) -> list[str]:
        pad = "    " * depth
        head = self.comment(stmt, depth) if comment else []
        if isinstance(stmt, pn.Expr):
            value = stmt.value
            if isinstance(value, pn.If):
                return head + self.if_(value, scope, depth)
            if isinstance(value, pn.ForTo):
                target = self.target(value.target, scope)
                step = "" if value.step is None else ", " + self.expr(value.step, scope)
                start, end = self.expr(value.start, scope), self.expr(value.end, scope)
                return [*head, f"{pad}for {target} in pine.upto({start}, {end}{step}):",
                        *self.block(value.body, scope, depth + 1)]
            if isinstance(value, pn.While):
                return [*head, f"{pad}while {self.cond(value.test, scope)}:",
                        *self.block(value.body, scope, depth + 1)]
            if isinstance(value, pn.Call):
                return head + [pad + line for line in self.call_statement(value, scope)]
            if isinstance(value, (pn.ForIn, pn.Switch)):
                raise self.unsupported(stmt, "for…in" if isinstance(value, pn.ForIn)
                                       else "switch")
            return [*head, f"{pad}{self.expr(value, scope)}"]
        if isinstance(stmt, pn.Assign):
            return head + [pad + line for line in self.assign(stmt, scope)]
        if isinstance(stmt, pn.ReAssign):
            return [*head, pad + self.store(stmt.target, self.value(stmt.value, scope), scope)]
        if isinstance(stmt, pn.AugAssign):
            op = {pn.Add: "+", pn.Sub: "-", pn.Mult: "*", pn.Div: "/", pn.Mod: "%"}[
                type(stmt.op)]
            name = self.expr(stmt.target, scope)
            right = self.expr(stmt.value, scope)
            code = f"pine.div({name}, {right})" if op == "/" else \
                f"pine.mod({name}, {right})" if op == "%" else f"{name} {op} {self.paren(right)}"
            return [*head, pad + self.store(stmt.target, code, scope)]
        if isinstance(stmt, pn.Break):
            return [*head, pad + "break"]
        if isinstance(stmt, pn.Continue):
            return [*head, pad + "continue"]
        if isinstance(stmt, pn.FunctionDef):
            raise self.fail(stmt, "functions are defined at the top level only")
        kinds = {pn.TypeDef: "type", pn.EnumDef: "enum", pn.Import: "import"}
        raise self.unsupported(stmt, kinds.get(type(stmt), type(stmt).__name__))

    def if_(self, node: Any, scope: _Scope, depth: int, word: str = "if") -> list[str]:
        pad = "    " * depth
        out = [f"{pad}{word} {self.cond(node.test, scope)}:",
               *self.block(node.body, scope, depth + 1)]
        orelse = node.orelse
        if len(orelse) == 1 and isinstance(orelse[0], pn.Expr) \
                and isinstance(orelse[0].value, pn.If):
            out.extend(self.if_(orelse[0].value, scope, depth, "elif"))
        elif orelse:
            out.extend([f"{pad}else:", *self.block(orelse, scope, depth + 1)])
        return out

    def assign(self, stmt: Any, scope: _Scope) -> list[str]:
        target = stmt.target
        if stmt.value is None:
            raise self.fail(stmt, "a declaration needs a value")
        if self.is_input(stmt.value):
            if scope.func is not None or not isinstance(target, pn.Name):
                raise self.fail(stmt.value, "inputs are declared at the top level, one per "
                                "variable")
            return [self.input(target.id, stmt.value)]
        if isinstance(stmt.value, pn.Call) and _dotted(stmt.value.func) == "strategy":
            raise self.fail(stmt.value, "strategy() is called as a statement of its own")
        if stmt.mode is not None:  # var
            name = target.id
            key = scope.key(name)
            value = self.value(stmt.value, scope)
            return [f"{self.py(name)} = pine.recall({key}) if pine.has({key}) else "
                    f"pine.keep({key}, {value})"]
        return [self.store(target, self.value(stmt.value, scope), scope)]

    def value(self, node: Any, scope: _Scope) -> str:
        if isinstance(node, (pn.If, pn.Switch, pn.ForTo, pn.ForIn, pn.While)):
            raise self.unsupported(node, type(node).__name__.lower().replace("forto", "for")
                                   + " as a value")
        return self.expr(node, scope)

    def target(self, node: Any, scope: _Scope) -> str:
        if isinstance(node, pn.Name):
            return self.py(node.id)
        if isinstance(node, pn.Tuple):
            return ", ".join(self.target(e, scope) for e in node.elts)
        raise self.unsupported(node, "assignment to " + type(node).__name__)

    def store(self, target: Any, value: str, scope: _Scope) -> str:
        if isinstance(target, pn.Tuple):
            names = [e.id for e in target.elts if isinstance(e, pn.Name)]
            if len(names) != len(target.elts):
                raise self.unsupported(target, "nested tuple")
            line = f"{self.target(target, scope)} = {value}"
            kept = [n for n in names if n in scope.tracked]
            return line + "".join(f"; pine.keep({scope.key(n)}, {self.py(n)})" for n in kept)
        if not isinstance(target, pn.Name):
            raise self.unsupported(target, "assignment to " + type(target).__name__)
        name = target.id
        if name in scope.tracked:
            return f"{self.py(name)} = pine.keep({scope.key(name)}, {value})"
        return f"{self.py(name)} = {value}"

    # ------------------------------------------------------------ inputs and strategy()

    @staticmethod
    def is_input(node: Any) -> bool:
        if not isinstance(node, pn.Call):
            return False
        name = _dotted(node.func)
        return name == "input" or (name or "").startswith("input.")

    def literal(self, node: Any) -> Any:
        """A constant argument's value (numbers, strings, bools, lists of them)."""
        if isinstance(node, pn.Constant):
            return node.value
        if isinstance(node, pn.UnaryOp) and isinstance(node.op, pn.USub) \
                and isinstance(node.operand, pn.Constant) \
                and type(node.operand.value) in (int, float):
            number: Any = node.operand.value
            return -number
        if isinstance(node, pn.Tuple):
            return [self.literal(e) for e in node.elts]
        name = _dotted(node)
        if name and name.startswith("strategy.") and name[9:] in STRATEGY_CONSTANTS:
            return STRATEGY_CONSTANTS[name[9:]]
        raise self.fail(node, "expected a constant here (a number, a string, true/false)")

    def args(self, call: Any, names: tuple[str, ...], what: str) -> dict[str, Any]:
        """A call's arguments by name (positional ones take ``names`` in order)."""
        out: dict[str, Any] = {}
        for i, a in enumerate(call.args):
            if a.name is None:
                if i >= len(names):
                    raise self.fail(a, f"{what}: too many arguments")
                out[names[i]] = a.value
            else:
                out[a.name] = a.value
        return out

    def input(self, name: str, call: Any) -> str:
        kind = _dotted(call.func) or "input"
        sub = kind[6:] if kind != "input" else ""
        if sub and sub not in INPUT_KINDS:
            raise self.unsupported(call, kind)
        # Pine's positional order of each input kind's parameters
        params: tuple[str, ...] = ("defval", "title", "options", "tooltip", "inline", "group",
                                   "confirm")
        if sub in ("int", "float"):
            params = ("defval", "title", "minval", "maxval", "step", "tooltip", "inline",
                      "group", "confirm")
        elif sub == "":
            params = ("defval", "title", "tooltip", "inline", "group")
        a = self.args(call, params, kind)
        if "defval" not in a:
            raise self.fail(call, f"{kind}: a default value is needed")
        d = a["defval"]
        is_source = sub == "source" or (isinstance(d, pn.Name) and d.id in SOURCES)
        spec: list[str] = []
        if is_source:
            src = _dotted(d)
            if src not in SOURCES:
                raise self.fail(d, f"{kind}: a source is one of {', '.join(SOURCES)}")
            default: Any = src
            spec.append(f"choices={SOURCES!r}")
            self.sources.add(name)
        else:
            default = self.literal(d)
            if sub == "float" and type(default) is int:
                default = float(default)
            if sub == "int" and type(default) is not int:
                raise self.fail(d, f"{kind}: the default must be a whole number")
        for key, label in (("minval", "min"), ("maxval", "max"), ("step", "step"),
                           ("options", "choices"), ("title", "title"), ("tooltip", "help")):
            if key in a:
                v = self.literal(a[key])
                if key in ("title", "tooltip"):
                    v = _printable(str(v))
                elif key == "options":
                    v = tuple(v)
                spec.append(f"{label}={v!r}")
        line = _printable(self.lines[call.lineno - 1].strip()) \
            if 0 < call.lineno <= len(self.lines) else ""
        self.params.append((name, f"param({', '.join([repr(default), *spec])})", line))
        value = f'ctx.params[{name!r}]'
        if is_source:
            value = f"pine.source({value})"
        return f"{self.py(name)} = {value}"

    def strategy_call(self, call: Any) -> None:
        if self.saw_strategy:
            raise self.fail(call, "strategy() is called twice")
        self.saw_strategy = True
        self.setup_line = " ".join(self.comment(call, 0)).lstrip("# ")
        a = self.args(call, STRATEGY_PARAMS, "strategy")
        for key, node in a.items():
            value = self.literal(node)
            if key == "title":
                self.title = str(value)
            elif key == "overlay":
                self.overlay_chart = bool(value)
            elif key in STRATEGY_DISPLAY:
                continue
            elif key not in STRATEGY_DEFAULTS:
                raise self.unsupported(node, f"strategy({key}=…)")
            elif key in STRATEGY_REFUSED and value != STRATEGY_DEFAULTS[key]:
                raise self.fail(node, f"strategy({key}={_pine_literal(value)}) is refused: "
                                f"{STRATEGY_REFUSED[key]}")
            else:
                self.setup[key] = value
        if self.setup["default_qty_type"] not in ("fixed", "percent_of_equity", "cash"):
            raise self.fail(call, "default_qty_type: strategy.fixed, strategy.percent_of_equity "
                            "or strategy.cash")
        if self.setup["commission_type"] == "percent" \
                and not 0 <= float(self.setup["commission_value"]) < 10:
            raise self.fail(call, "commission_value: a percent from 0 to 10")

    # ------------------------------------------------------------ calls

    def call_statement(self, call: Any, scope: _Scope) -> list[str]:
        name = _dotted(call.func) or ""
        if name == "strategy":
            if scope.func is not None:
                raise self.fail(call, "strategy() belongs at the top level")
            self.strategy_call(call)
            return ["pass  # strategy(): see on_start"]
        if name in ("indicator", "library"):
            raise self.fail(call, f"an {name}() script places no orders: only strategy() "
                            "scripts can be imported")
        if name in DRAWING_ONLY:
            self.dropped.append(f"{self.path}:{call.lineno}: {name}")
            return [f"pass  # {name}(…) only draws on TradingView's chart: left out"]
        if name == "alertcondition":
            a = self.args(call, ("condition", "title", "message"), name)
            message = a.get("message", a.get("title"))
            text = self.expr(message, scope) if message is not None else "'alert'"
            return [f"if {self.cond(a['condition'], scope)}:",
                    f"    pine.alert({text})"]
        return [self.expr(call, scope)]

    def call(self, call: Any, scope: _Scope) -> str:
        name = _dotted(call.func)
        if name is None:
            if isinstance(call.func, pn.Specialize):
                raise self.unsupported(call.func, f"{_dotted(call.func.value)}<…>")
            raise self.fail(call, "only named functions can be called")
        site = scope.key(f"{call.lineno}:{call.col_offset + 1}")
        if name.startswith("ta.") or name == "fixnan":
            fn = name[3:] if name.startswith("ta.") else name
            if fn == "fixnan":
                (x,) = [self.expr(a.value, scope) for a in call.args]
                return f"pine.fixnan({site}, {x})"
            if fn not in TA_FUNCTIONS:
                raise self.unsupported(call.func, name)
            return self.ta(fn, call, site, scope)
        if name.startswith("strategy."):
            fn = name[9:]
            if fn not in STRATEGY_CALLS:
                raise self.unsupported(call.func, name)
            return f"pine.{fn}({self.keyword_args(call, getattr(PineRuntime, fn), name, scope)})"
        if name.startswith("math."):
            fn = name[5:]
            if fn not in MATH_FUNCTIONS or fn in ("pi", "e"):
                raise self.unsupported(call.func, name)
            return f"pine.math.{fn}({', '.join(self.expr(a.value, scope) for a in call.args)})"
        if name in ("nz", "na", "str.tostring"):
            if any(a.name for a in call.args):
                raise self.fail(call, f"{name}: give its arguments by position")
            args = ", ".join(self.expr(a.value, scope) for a in call.args)
            return f"{PLAIN_FUNCTIONS[name]}({args})"
        if name in ("plot", "plotshape"):
            return self.plot(name, call, scope)
        if name == "alert":
            a = self.args(call, ("message", "freq"), name)
            return f"pine.alert({self.expr(a['message'], scope)})"
        if name == "color.new":
            return self.expr(call.args[0].value, scope)
        if name in self.functions:
            params = self.functions[name]
            given = self.args(call, tuple(params), name)
            missing = [p for p in params if p not in given]
            if missing:
                raise self.fail(call, f"{name}: missing argument {missing[0]!r}")
            values = ", ".join(self.expr(given[p], scope) for p in params)
            return f"{self.py(name)}({site}{', ' if values else ''}{values})"
        if self.is_input(call):
            raise self.fail(call, "inputs are declared at the top level, one per variable")
        raise self.unsupported(call.func, name)

    def keyword_args(self, call: Any, method: Any, what: str, scope: _Scope) -> str:
        sig = inspect.signature(method)
        names = tuple(p for p in sig.parameters if p != "self")
        limit = POSITIONAL_LIMIT[what[9:]]
        if sum(1 for a in call.args if a.name is None) > limit:
            raise self.fail(call, f"{what}: give the arguments after the first {limit} by name")
        a = self.args(call, names, what)
        for key in a:
            if key not in names:
                raise self.unsupported(call, f"{what}({key}=…)")
        parts = []
        for key, node in a.items():
            if key == "oca_type" and self.literal(node) == "reduce":
                raise self.unsupported(node, "strategy.oca.reduce")
            parts.append(f"{key}={self.expr(node, scope)}")
        return ", ".join(parts)

    def ta(self, fn: str, call: Any, site: str, scope: _Scope) -> str:
        spec = TA_FUNCTIONS[fn]
        names = tuple(p for p, _ in spec.params)
        positional = [a for a in call.args if a.name is None]
        prefix: list[str] = []
        short = TA_SHORT_FORMS.get(fn)
        if short and len(positional) == short[0] and not any(a.name for a in call.args):
            prefix = [f"bar.{short[1]}"]
            names = names[1:]
        a = self.args(call, names, f"ta.{fn}")
        values = list(prefix)
        for pname, default in spec.params[len(prefix):]:
            if pname in a:
                values.append(self.expr(a[pname], scope))
            elif default is REQUIRED:
                raise self.fail(call, f"ta.{fn}: missing argument {pname!r}")
            else:
                values.append(repr(default))
        for key in a:
            if key not in names:
                raise self.unsupported(call, f"ta.{fn}({key}=…)")
        return f"pine.ta({site}, {fn!r}, {', '.join(values)})"

    def plot(self, name: str, call: Any, scope: _Scope) -> str:
        a = self.args(call, ("series", "title", "color"), name)
        self.plots += 1
        title = self.literal(a["title"]) if "title" in a else f"Plot {self.plots}"
        value = self.expr(a["series"], scope)
        if name == "plotshape":
            value = f"1.0 if {self.cond(a['series'], scope)} else NA"
        color = "" if "color" not in a else f", color={self.expr(a['color'], scope)}"
        pane = "" if self.overlay_chart else ', pane="below"'
        return f"pine.plot({str(title)!r}, {value}{pane}{color})"

    # ------------------------------------------------------------ functions

    def function(self, fn: Any) -> list[str]:
        if fn.method or fn.export:
            raise self.unsupported(fn, "method" if fn.method else "export")
        params = []
        for p in fn.args:
            if p.default is not None:
                raise self.unsupported(p, "a default parameter value")
            params.append(p.name)
        self.functions[fn.name] = params
        scope = _Scope(fn.name, set(params))
        self._collect(fn.body, scope)
        head = self.comment(fn, 1)[:1]
        names = "".join(", " + self.py(p) for p in params)
        out = [*head, f"    def {self.py(fn.name)}(at{names}):"]
        body = list(fn.body)
        last = body.pop()
        for stmt in body:
            out.extend(self.statement(stmt, scope, 2))
        out.extend(self.comment(last, 2))
        if isinstance(last, pn.Expr) and not isinstance(
                last.value, (pn.If, pn.Switch, pn.ForTo, pn.ForIn, pn.While)):
            value = last.value
            if isinstance(value, pn.Tuple):
                out.append("        return " + ", ".join(self.expr(e, scope)
                                                         for e in value.elts))
            else:
                out.append(f"        return {self.expr(value, scope)}")
        elif isinstance(last, (pn.Assign, pn.ReAssign)):
            out.extend(self.statement(last, scope, 2, comment=False))
            out.append(f"        return {self.expr(last.target, scope)}")
        else:
            raise self.unsupported(last, "a function that ends in a block")
        return out

    # ------------------------------------------------------------ expressions

    @staticmethod
    def paren(code: str) -> str:
        """``code`` in parentheses unless it is one term already."""
        if " " not in code:
            return code
        if code[0] in "'\"":
            try:
                if type(ast.literal_eval(code)) is str:
                    return code
            except (ValueError, SyntaxError):
                pass
        if code.startswith("(") and code.endswith(")"):
            depth, quote = 0, ""
            for i, ch in enumerate(code):
                if quote:
                    if ch == quote and code[i - 1] != "\\":
                        quote = ""
                elif ch in "'\"":
                    quote = ch
                elif ch == "(":
                    depth += 1
                elif ch == ")":
                    depth -= 1
                    if depth == 0 and i < len(code) - 1:
                        break
            else:
                return code
        return f"({code})"

    def cond(self, node: Any, scope: _Scope) -> str:
        """A condition: ``na`` counts as false (a plain value goes through pine.true)."""
        if isinstance(node, (pn.Compare, pn.BoolOp)) or (
                isinstance(node, pn.UnaryOp) and isinstance(node.op, pn.Not)):
            return self.expr(node, scope)
        if isinstance(node, pn.Constant) and type(node.value) is bool:
            return repr(node.value)
        if isinstance(node, pn.Call) and _dotted(node.func) in (
                "na", "ta.crossover", "ta.crossunder", "ta.cross"):
            return self.expr(node, scope)
        return f"pine.true({self.expr(node, scope)})"

    def expr(self, node: Any, scope: _Scope) -> str:
        if isinstance(node, pn.Constant):
            v = node.value
            if v is None:
                return "NA"
            if type(v) is str:
                return repr(v)
            return repr(v)
        if isinstance(node, pn.Name):
            return self.name(node, scope)
        if isinstance(node, pn.Attribute):
            return self.attribute(node)
        if isinstance(node, pn.BinOp):
            left, right = self.expr(node.left, scope), self.expr(node.right, scope)
            if isinstance(node.op, pn.Div):
                if isinstance(node.right, pn.Constant) and node.right.value:
                    return f"{self.paren(left)} / {self.paren(right)}"
                return f"pine.div({left}, {right})"
            if isinstance(node.op, pn.Mod):
                return f"pine.mod({left}, {right})"
            op = {pn.Add: "+", pn.Sub: "-", pn.Mult: "*"}[type(node.op)]
            return f"{self.paren(left)} {op} {self.paren(right)}"
        if isinstance(node, pn.UnaryOp):
            if isinstance(node.op, pn.Not):
                return f"not {self.paren(self.cond(node.operand, scope))}"
            sign = "-" if isinstance(node.op, pn.USub) else "+"
            return f"{sign}{self.paren(self.expr(node.operand, scope))}"
        if isinstance(node, pn.BoolOp):
            word = " and " if isinstance(node.op, pn.And) else " or "
            return word.join(self.paren(self.cond(v, scope)) for v in node.values)
        if isinstance(node, pn.Compare):
            ops = {pn.Eq: "==", pn.NotEq: "!=", pn.Lt: "<", pn.LtE: "<=", pn.Gt: ">",
                   pn.GtE: ">="}
            parts = [self.paren(self.expr(node.left, scope))]
            for cmp, other in zip(node.ops, node.comparators, strict=True):
                parts.append(f"{ops[type(cmp)]} {self.paren(self.expr(other, scope))}")
            return " ".join(parts)
        if isinstance(node, pn.Conditional):
            return (f"({self.paren(self.expr(node.body, scope))} if "
                    f"{self.cond(node.test, scope)} else "
                    f"{self.paren(self.expr(node.orelse, scope))})")
        if isinstance(node, pn.Call):
            return self.call(node, scope)
        if isinstance(node, pn.Subscript):
            if node.slice is None:
                raise self.unsupported(node, "array type")
            n = self.expr(node.slice, scope)
            base = node.value.id if isinstance(node.value, pn.Name) else None
            if base is not None and base not in scope.params and base not in self.declared \
                    and (base in BAR_SERIES or base in ("bar_index", "time")):
                return f"pine.bar_past({base!r}, {n})"
            if base is not None and base not in scope.params:
                return f"pine.past({scope.key(base)}, {n})"
            site = scope.key(f"{node.lineno}:{node.col_offset + 1}")
            return f"pine.at({site}, {self.expr(node.value, scope)}, {n})"
        if isinstance(node, pn.Tuple):
            raise self.unsupported(node, "a list of values here")
        if isinstance(node, (pn.If, pn.Switch, pn.ForTo, pn.ForIn, pn.While)):
            raise self.unsupported(node, type(node).__name__.lower() + " as a value")
        raise self.unsupported(node, type(node).__name__)

    def name(self, node: Any, scope: _Scope) -> str:
        n = node.id
        if n in ("true", "false"):
            return "True" if n == "true" else "False"
        if n == "na":
            return "NA"
        if n in scope.params or n in self.names:
            return self.py(n)
        if n in ("open", "high", "low", "close", "volume"):
            return f"bar.{n}"
        if n in BAR_SERIES or n in ("bar_index", "time"):
            return f"pine.{n}"
        if n in ("last_bar_index", "last_bar_time"):
            raise self.fail(node, f"{n!r} is not supported: it needs bars that have not come "
                            "yet")
        if n in self.declared:  # declared further down (in a block, or a function's)
            return self.py(n)
        raise self.unsupported(node, n)

    def attribute(self, node: Any) -> str:
        name = _dotted(node) or ""
        if name.startswith("strategy."):
            rest = name[9:]
            if rest in STRATEGY_CONSTANTS:
                return repr(STRATEGY_CONSTANTS[rest])
            if rest in STRATEGY_VALUES:
                return f"pine.{rest}"
        if name == "syminfo.mintick":
            return "pine.mintick"
        if name == "syminfo.ticker":
            return "pine.ticker"
        if name == "barstate.isfirst":
            return "pine.isfirst"
        if name in ("barstate.isconfirmed", "barstate.ishistory"):
            return "True"
        if name in ("math.pi", "math.e"):
            return f"pine.{name}"
        if name.startswith(("color.", "shape.", "location.", "size.", "plot.style",
                            "display.")):
            return repr(name.split(".", 1)[1])
        raise self.unsupported(node, name)
