"""Reading Pine's layout: blocks, continuation lines, comments, functions, tuples."""

from __future__ import annotations

import pytest

from sandtrade.pine import PineImportError, import_pine
from sandtrade.pine import nodes as pn
from sandtrade.pine.parser import PineSyntaxError, parse

from .conftest import HEAD, alerts, bars, run


def test_a_line_indented_off_the_grid_continues_the_line_before() -> None:
    script = parse(HEAD + "x = close > open ? 1\n : 2\ny = (1 +\n    2)\n")
    x, y = script.body[1:]
    assert isinstance(x, pn.Assign) and isinstance(x.value, pn.Conditional)
    assert (x.lineno, x.end_lineno) == (3, 4)
    assert isinstance(y.value, pn.BinOp)


def test_blocks_by_tab_or_four_spaces_with_comments_anywhere() -> None:
    script = parse(HEAD + "if close > open // up\n\ta = 1\n\t// note\n\n\tif a == 1\n"
                   "        b = 2\nelse if close < open\n    c = 3\nelse\n    d = 4\n")
    top = script.body[1].value
    assert isinstance(top, pn.If) and len(top.body) == 2
    assert isinstance(top.orelse[0].value, pn.If)
    assert top.orelse[0].value.orelse[0].target.id == "d"


def test_declarations_var_types_tuples_and_functions() -> None:
    script = parse(HEAD + "var float x = na\nvarip int n = 0\n[a, b] = f(1)\n"
                   "g(v) => v * 2\nh(v, w) =>\n    s = v + w\n    [s, s * 2]\n")
    x, n, ab, g, h = script.body[1:]
    assert isinstance(x.mode, pn.Var) and x.type.id == "float"
    assert isinstance(n.mode, pn.VarIp)
    assert [e.id for e in ab.target.elts] == ["a", "b"]
    assert (g.name, [p.name for p in g.args]) == ("g", ["v"])
    assert isinstance(h.body[-1].value, pn.Tuple)


def test_a_v6_script_imports_and_runs() -> None:
    got = run('//@version=6\nstrategy("t")\ndouble(x) =>\n    x * 2\n'
              'if bar_index == 2\n    alert(str.tostring(double(close)))\n',
              bars([10.0, 11.0, 12.0, 13.0]))
    assert alerts(got) == ["24"]


def test_syntax_errors_name_line_and_column() -> None:
    with pytest.raises(PineSyntaxError) as e:
        parse(HEAD + "x = (1 + \n")
    assert e.value.line >= 3
    with pytest.raises(PineImportError, match=r"t.pine:4:\d+: Pine syntax error"):
        import_pine(HEAD + "if close\nx = )\n", "t.pine")


def test_a_hostile_nesting_is_a_clear_error_not_a_crash() -> None:
    for deep in ("-" * 5000 + "1", "nz(" * 3000 + "1" + ")" * 3000):
        with pytest.raises(PineImportError, match=r"t\.pine: the script nests too deeply"):
            import_pine(HEAD + f"x = {deep}\n", "t.pine")
    # brackets alone make no nodes: 5000 of them are one number
    assert "x = 1" in import_pine(HEAD + "x = " + "(" * 5000 + "1" + ")" * 5000 + "\n",
                                  "t.pine").source
