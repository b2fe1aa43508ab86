"""The Pine Script syntax tree the importer reads: one small class per construct, with the
line and column where it starts (``lineno`` from 1, ``col_offset`` from 0) and the line where
it ends. :mod:`sandtrade.pine.parser` builds it; :mod:`sandtrade.pine.transpile` walks it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Add", "And", "Arg", "Assign", "Attribute", "AugAssign", "BinOp", "BoolOp", "Break", "Call",
    "Compare", "Conditional", "Constant", "Continue", "Div", "EnumDef", "Eq", "Expr", "ForIn",
    "ForTo", "FunctionDef", "Gt", "GtE", "If", "Import", "Lt", "LtE", "Mod", "Mult", "Name",
    "Node", "Not", "NotEq", "Or", "Param", "ReAssign", "Script", "Specialize", "Sub", "Subscript",
    "Switch", "Tuple", "TypeDef", "UAdd", "USub", "UnaryOp", "Var", "VarIp", "While",
]


@dataclass(eq=False)
class Node:
    """Where a construct stands in the source."""

    lineno: int = field(default=0, kw_only=True)
    col_offset: int = field(default=0, kw_only=True)
    end_lineno: int = field(default=0, kw_only=True)

    @property
    def _fields(self) -> tuple[str, ...]:
        return tuple(f for f in self.__dataclass_fields__
                     if f not in ("lineno", "col_offset", "end_lineno"))


class Operator:
    """An operator: its class is what it is."""


class Add(Operator): ...
class Sub(Operator): ...
class Mult(Operator): ...
class Div(Operator): ...
class Mod(Operator): ...
class And(Operator): ...
class Or(Operator): ...
class Not(Operator): ...
class USub(Operator): ...
class UAdd(Operator): ...
class Eq(Operator): ...
class NotEq(Operator): ...
class Lt(Operator): ...
class LtE(Operator): ...
class Gt(Operator): ...
class GtE(Operator): ...
class Var(Operator): ...
class VarIp(Operator): ...


@dataclass(eq=False)
class Script(Node):
    body: list[Any]


@dataclass(eq=False)
class Name(Node):
    id: str


@dataclass(eq=False)
class Constant(Node):
    value: Any


@dataclass(eq=False)
class Attribute(Node):
    value: Any
    attr: str


@dataclass(eq=False)
class Subscript(Node):
    value: Any
    slice: Any


@dataclass(eq=False)
class Tuple(Node):
    elts: list[Any]


@dataclass(eq=False)
class Arg(Node):
    value: Any
    name: str | None = None


@dataclass(eq=False)
class Call(Node):
    func: Any
    args: list[Arg]


@dataclass(eq=False)
class Specialize(Node):
    value: Any
    args: Any


@dataclass(eq=False)
class BinOp(Node):
    left: Any
    op: Operator
    right: Any


@dataclass(eq=False)
class UnaryOp(Node):
    op: Operator
    operand: Any


@dataclass(eq=False)
class BoolOp(Node):
    op: Operator
    values: list[Any]


@dataclass(eq=False)
class Compare(Node):
    left: Any
    ops: list[Operator]
    comparators: list[Any]


@dataclass(eq=False)
class Conditional(Node):
    test: Any
    body: Any
    orelse: Any


@dataclass(eq=False)
class If(Node):
    test: Any
    body: list[Any]
    orelse: list[Any]


@dataclass(eq=False)
class ForTo(Node):
    target: Any
    start: Any
    end: Any
    body: list[Any]
    step: Any = None


@dataclass(eq=False)
class ForIn(Node):
    target: Any
    iter: Any
    body: list[Any]


@dataclass(eq=False)
class While(Node):
    test: Any
    body: list[Any]


@dataclass(eq=False)
class Switch(Node):
    subject: Any


@dataclass(eq=False)
class Expr(Node):
    value: Any


@dataclass(eq=False)
class Assign(Node):
    target: Any
    value: Any
    type: Any = None
    mode: Operator | None = None


@dataclass(eq=False)
class ReAssign(Node):
    target: Any
    value: Any


@dataclass(eq=False)
class AugAssign(Node):
    target: Any
    op: Operator
    value: Any


@dataclass(eq=False)
class Param(Node):
    name: str
    default: Any = None


@dataclass(eq=False)
class FunctionDef(Node):
    name: str
    args: list[Param]
    body: list[Any]
    method: bool = False
    export: bool = False


@dataclass(eq=False)
class TypeDef(Node):
    name: str


@dataclass(eq=False)
class EnumDef(Node):
    name: str


@dataclass(eq=False)
class Import(Node):
    name: str


@dataclass(eq=False)
class Break(Node):
    pass


@dataclass(eq=False)
class Continue(Node):
    pass
