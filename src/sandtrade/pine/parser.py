"""Reading Pine Script: lark's LALR(1) parser over our grammar (``pine.lark``) gives the syntax
tree of :mod:`sandtrade.pine.nodes`.

Why lark and not pynescript's ANTLR grammar, which we tried first: pynescript parses every
example strategy, but the ANTLR Python runtime builds its prediction tables on the first parse
in a process, which took 8 s of CPU for TradingView's Bollinger Bands strategy and 26 s for
the eight examples (measured here; ANTLR's SLL mode did not help), so every ``sandtrade pine
import`` and every back-test of a ``.pine`` file would wait that long. Lark's LALR tables are
built once per process in well under a second and a script parses in milliseconds. The
grammar covers what strategies are written in (and constructs the importer refuses, so that
they are named rather than syntax errors).
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator
from importlib.resources import files
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedInput
from lark.indenter import Indenter

from sandtrade.pine import nodes as pn

__all__ = ["PineIndenter", "PineSyntaxError", "parse"]

_OPS: dict[str, type[pn.Operator]] = {
    "+": pn.Add, "-": pn.Sub, "*": pn.Mult, "/": pn.Div, "%": pn.Mod, "==": pn.Eq,
    "!=": pn.NotEq, "<": pn.Lt, "<=": pn.LtE, ">": pn.Gt, ">=": pn.GtE,
}


class PineSyntaxError(Exception):
    """A script that does not parse: ``line``, ``column`` (from 1) and what was wrong."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


class PineIndenter(Indenter):
    """Pine's layout: a block is indented by 4 spaces (or a tab) more than its header; a line
    indented by a count that is not a multiple of 4 continues the line before it."""

    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]  # noqa: RUF012  (lark reads them as class lists)
    CLOSE_PAREN_types = ["RPAR", "RSQB"]  # noqa: RUF012
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 4

    def handle_NL(self, token: Token) -> Iterator[Token]:
        """Drop the line break before a continuation line; else Python's rules."""
        if self.paren_level > 0:
            return
        last = token.rsplit("\n", 1)[-1]
        spaces = last[:len(last) - len(last.lstrip(" \t"))]
        indent = spaces.count(" ") + spaces.count("\t") * self.tab_len
        if indent % 4:
            return
        yield from super().handle_NL(Token.new_borrow_pos(token.type, "\n" + spaces, token))


@functools.cache
def _parser() -> Lark:
    grammar = files("sandtrade.pine").joinpath("pine.lark").read_text(encoding="utf-8")
    return Lark(grammar, parser="lalr", postlex=PineIndenter(), propagate_positions=True,
                maybe_placeholders=True)


def _at(node: pn.Node, meta: Any) -> Any:
    node.lineno = meta.line
    node.col_offset = meta.column - 1
    node.end_lineno = meta.end_line
    return node


def _tok(node: pn.Node, tok: Token) -> Any:
    node.lineno = tok.line or 0
    node.col_offset = (tok.column or 1) - 1
    node.end_lineno = tok.end_line or node.lineno
    return node


def _params(head: str, tok: Token) -> tuple[str, list[pn.Param], bool, bool]:
    """Name, parameters, ``method`` and ``export`` of a function head ``f(a, b) =>``."""
    words, rest = head.split("(", 1)[0].split(), head.split("(", 1)[1].rsplit(")", 1)[0]
    out = []
    for part in (p.strip() for p in rest.split(",")):
        if not part:
            continue
        default = None
        if "=" in part:
            part, value = (x.strip() for x in part.split("=", 1))
            default = pn.Constant(value)
        name = part.split()[-1]
        out.append(_tok(pn.Param(name, default), tok))
    return words[-1], out, "method" in words[:-1], "export" in words[:-1]


@v_args(meta=True)
class _Build(Transformer[Token, Any]):
    """Lark's tree to :mod:`sandtrade.pine.nodes`."""

    def start(self, meta: Any, stmts: list[Any]) -> pn.Script:
        return pn.Script([_wrap(s) for s in stmts if s is not None])

    # ------------------------------------------------------------ statements

    def declaration(self, meta: Any, c: list[Any]) -> pn.Assign:
        mode = None
        if isinstance(c[0], Token) and c[0].type == "MODE":
            mode = pn.VarIp() if str(c[0]) == "varip" else pn.Var()
            c = c[1:]
        c = [x for x in c if x is not None]  # an untyped block declaration's empty type
        kind = _tok(pn.Name(str(c[0])), c[0]) if len(c) == 3 else None
        target = c[-2]
        return _at(pn.Assign(_tok(pn.Name(str(target)), target), c[-1], kind, mode), meta)

    def tuple_declaration(self, meta: Any, c: list[Any]) -> pn.Assign:
        names = [n.strip() for n in str(c[0]).strip("[] \t").split(",")]
        target = _tok(pn.Tuple([_tok(pn.Name(n), c[0]) for n in names]), c[0])
        return _at(pn.Assign(target, c[1]), meta)

    def reassign(self, meta: Any, c: list[Any]) -> pn.ReAssign:
        return _at(pn.ReAssign(c[0], c[1]), meta)

    def augassign(self, meta: Any, c: list[Any]) -> pn.AugAssign:
        return _at(pn.AugAssign(c[0], _OPS[str(c[1])[0]](), c[2]), meta)

    def expr_stmt(self, meta: Any, c: list[Any]) -> pn.Expr:
        return _at(pn.Expr(c[0]), meta)

    def break_stmt(self, meta: Any, c: list[Any]) -> pn.Break:
        return _at(pn.Break(), meta)

    def continue_stmt(self, meta: Any, c: list[Any]) -> pn.Continue:
        return _at(pn.Continue(), meta)

    def import_stmt(self, meta: Any, c: list[Any]) -> pn.Import:
        return _at(pn.Import(str(c[0])), meta)

    def _stmt_of(self, node: Any) -> Any:
        return node if isinstance(node, pn.Node) and not isinstance(
            node, (pn.If, pn.ForTo, pn.ForIn, pn.While, pn.Switch)) else _wrap(node)

    def if_stmt(self, meta: Any, c: list[Any]) -> pn.If:
        test, *body = c
        orelse: list[Any] = []
        if body and isinstance(body[-1], _Else):
            orelse = body.pop().body
        return _at(pn.If(test, [_wrap(s) for s in body], orelse), meta)

    def elif_part(self, meta: Any, c: list[Any]) -> _Else:
        return _Else([_wrap(c[0])])

    def else_part(self, meta: Any, c: list[Any]) -> _Else:
        return _Else([_wrap(s) for s in c])

    def for_to(self, meta: Any, c: list[Any]) -> pn.ForTo:
        name, start, end, *rest = c
        step = None
        if rest and not _is_stmt(rest[0]):
            step = rest.pop(0)
        return _at(pn.ForTo(_tok(pn.Name(str(name)), name), start, end,
                            [_wrap(s) for s in rest], step), meta)

    def for_in(self, meta: Any, c: list[Any]) -> pn.ForIn:
        return _at(pn.ForIn(_tok(pn.Name(str(c[0])), c[0]), c[1], [_wrap(s) for s in c[2:]]),
                   meta)

    def while_stmt(self, meta: Any, c: list[Any]) -> pn.While:
        return _at(pn.While(c[0], [_wrap(s) for s in c[1:]]), meta)

    def switch_stmt(self, meta: Any, c: list[Any]) -> pn.Switch:
        return _at(pn.Switch(c[0] if c and not isinstance(c[0], Tree) else None), meta)

    def case(self, meta: Any, c: list[Any]) -> Tree[Any]:
        return Tree("case", c)

    def function_line(self, meta: Any, c: list[Any]) -> pn.FunctionDef:
        name, params, method, export = _params(str(c[0]), c[0])
        body = [_at(pn.Expr(c[1]), meta)]
        body[0].lineno = body[0].end_lineno = c[0].line
        return _at(pn.FunctionDef(name, params, body, method, export), meta)

    def function_block(self, meta: Any, c: list[Any]) -> pn.FunctionDef:
        name, params, method, export = _params(str(c[0]), c[0])
        return _at(pn.FunctionDef(name, params, [_wrap(s) for s in c[1:]], method, export),
                   meta)

    def type_def(self, meta: Any, c: list[Any]) -> pn.TypeDef | pn.EnumDef:
        words = str(c[0]).split()
        node = pn.EnumDef(words[-1]) if "enum" in words else pn.TypeDef(words[-1])
        return _at(node, meta)

    # ------------------------------------------------------------ expressions

    def conditional(self, meta: Any, c: list[Any]) -> pn.Conditional:
        return _at(pn.Conditional(*c), meta)

    def or_op(self, meta: Any, c: list[Any]) -> pn.BoolOp:
        return _at(pn.BoolOp(pn.Or(), c), meta)

    def and_op(self, meta: Any, c: list[Any]) -> pn.BoolOp:
        return _at(pn.BoolOp(pn.And(), c), meta)

    def compare(self, meta: Any, c: list[Any]) -> pn.Compare:
        return _at(pn.Compare(c[0], [_OPS[str(c[1])]()], [c[2]]), meta)

    def binop(self, meta: Any, c: list[Any]) -> pn.BinOp:
        return _at(pn.BinOp(c[0], _OPS[str(c[1])](), c[2]), meta)

    def not_op(self, meta: Any, c: list[Any]) -> pn.UnaryOp:
        return _at(pn.UnaryOp(pn.Not(), c[0]), meta)

    def sign(self, meta: Any, c: list[Any]) -> pn.UnaryOp:
        return _at(pn.UnaryOp(pn.USub() if str(c[0]) == "-" else pn.UAdd(), c[1]), meta)

    def call(self, meta: Any, c: list[Any]) -> pn.Call:
        return _at(pn.Call(c[0], c[1] or []), meta)

    def generic_call(self, meta: Any, c: list[Any]) -> pn.Call:
        func = _at(pn.Specialize(c[0], str(c[1])), meta)
        return _at(pn.Call(func, c[2] or []), meta)

    def field(self, meta: Any, c: list[Any]) -> None:
        return None

    def attribute(self, meta: Any, c: list[Any]) -> pn.Attribute:
        return _at(pn.Attribute(c[0], str(c[1])), meta)

    def subscript(self, meta: Any, c: list[Any]) -> pn.Subscript:
        return _at(pn.Subscript(c[0], c[1]), meta)

    def name(self, meta: Any, c: list[Any]) -> pn.Name:
        return _at(pn.Name(str(c[0])), meta)

    def number(self, meta: Any, c: list[Any]) -> pn.Constant:
        text = str(c[0])
        value = float(text) if any(ch in text for ch in ".eE") else int(text)
        return _at(pn.Constant(value), meta)

    def string(self, meta: Any, c: list[Any]) -> pn.Constant:
        text = str(c[0])
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text[1:-1]
        return _at(pn.Constant(str(value)), meta)

    def color(self, meta: Any, c: list[Any]) -> pn.Constant:
        return _at(pn.Constant(str(c[0])), meta)

    def true(self, meta: Any, c: list[Any]) -> pn.Constant:
        return _at(pn.Constant(True), meta)

    def false(self, meta: Any, c: list[Any]) -> pn.Constant:
        return _at(pn.Constant(False), meta)

    def tuple(self, meta: Any, c: list[Any]) -> pn.Tuple:
        return _at(pn.Tuple([x for x in c if x is not None]), meta)

    def args(self, meta: Any, c: list[Any]) -> list[pn.Arg]:
        return c

    def keyword_arg(self, meta: Any, c: list[Any]) -> pn.Arg:
        return _at(pn.Arg(c[1], str(c[0])), meta)

    def positional_arg(self, meta: Any, c: list[Any]) -> pn.Arg:
        return _at(pn.Arg(c[0]), meta)


class _Else:
    def __init__(self, body: list[Any]) -> None:
        self.body = body


def _is_stmt(x: Any) -> bool:
    return isinstance(x, (pn.Expr, pn.Assign, pn.ReAssign, pn.AugAssign, pn.Break,
                          pn.Continue, pn.FunctionDef, pn.TypeDef, pn.EnumDef, pn.Import,
                          pn.If, pn.ForTo, pn.ForIn, pn.While, pn.Switch))


def _wrap(node: Any) -> Any:
    """A block-shaped construct used as a statement, as an expression statement."""
    if isinstance(node, (pn.If, pn.ForTo, pn.ForIn, pn.While, pn.Switch)):
        return pn.Expr(node, lineno=node.lineno, col_offset=node.col_offset,
                       end_lineno=node.end_lineno)
    return node


def parse(text: str) -> pn.Script:
    """The syntax tree of the Pine script ``text``; :class:`PineSyntaxError` when it does
    not parse."""
    source = text.replace("\r\n", "\n")
    if not source.endswith("\n"):
        source += "\n"
    try:
        tree = _parser().parse(source)
    except UnexpectedInput as e:
        line, column = getattr(e, "line", 0) or 0, getattr(e, "column", 0) or 0
        token = getattr(e, "token", None)
        what = f"unexpected {str(token)!r}" if token is not None and str(token).strip() \
            else "unexpected end of line or indentation"
        raise PineSyntaxError(what, max(line, 1), max(column, 1)) from None
    script: pn.Script = _Build().transform(tree)
    return script
