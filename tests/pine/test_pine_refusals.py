"""Everything outside the subset is refused at import, named with file:line:col; one test per
family of constructs."""

from __future__ import annotations

import pytest

from sandtrade.cli import main
from sandtrade.pine import PineImportError, import_pine

from .conftest import HEAD

REFUSED = [
    # (what, Pine source after the header, the message expected, its line:col)
    ("other symbols' data", 'x = request.security("AAPL", "D", close)\n',
     "'request.security' is not supported (yet)", "3:5"),
    ("varip", "varip int n = 0\n", "'varip' is not supported (yet)", "3:1"),
    ("switch", "x = switch\n    close > open => 1\n    => 0\n", "'switch as a value'", "3:5"),
    ("if as a value", "x = if close > open\n    1\nelse\n    0\n", "'if as a value'", "3:5"),
    ("arrays", "a = array.new_float(3)\n", "'array.new_float' is not supported (yet)", "3:5"),
    ("matrices", "m = matrix.new<float>(2, 2)\n", "'matrix.new<…>' is not supported", "3:5"),
    ("for…in", "for x in array.from(1, 2)\n    y = x\n", "'for…in' is not supported", "3:1"),
    ("drawing objects", 'label.new(bar_index, high, "x")\n', "'label.new' is not supported",
     "3:1"),
    ("inputs of other kinds", "c = input.color(color.red)\n", "'input.color' is not supported",
     "3:5"),
    ("future bars", "x = last_bar_index\n", "'last_bar_index' is not supported: it needs bars",
     "3:5"),
    ("built-in variables outside the subset", "x = dayofweek\n",
     "'dayofweek' is not supported (yet)", "3:5"),
    ("ta functions outside the subset", "x = ta.linreg(close, 10, 0)\n",
     "'ta.linreg' is not supported (yet)", "3:5"),
    ("math outside the subset", "x = math.sum(close, 3)\n", "'math.sum' is not supported",
     "3:5"),
    ("strings beyond tostring", 'x = str.format("{0}", close)\n',
     "'str.format' is not supported", "3:5"),
    ("strategy.risk", "strategy.risk.max_drawdown(10, strategy.percent_of_equity)\n",
     "'strategy.risk.max_drawdown' is not supported", "3:1"),
    ("trade lists", "x = strategy.closedtrades.profit(0)\n",
     "'strategy.closedtrades.profit' is not supported", "3:5"),
    ("oca reduce", 'strategy.entry("L", strategy.long, oca_name="g", '
     "oca_type=strategy.oca.reduce)\n", "'strategy.oca.reduce' is not supported", "3:59"),
    ("order arguments outside the subset", 'strategy.entry("L", strategy.long, foo=1)\n',
     "'strategy.entry(foo=…)' is not supported", "3:1"),
    ("default parameter values", "f(x, y = 1) => x + y\n",
     "'a default parameter value' is not supported", "3:1"),
    ("methods", "method f(float x) => x\n", "'method' is not supported", "3:1"),
    ("types", "type P\n    float x\n", "'type' is not supported", "3:1"),
    ("libraries", "import TradingView/ta/7 as tv\n", "'import' is not supported", "3:1"),
]


@pytest.mark.parametrize(("what", "body", "message", "where"), REFUSED,
                         ids=[r[0] for r in REFUSED])
def test_construct_outside_the_subset_is_refused_with_file_line_col(
        what: str, body: str, message: str, where: str) -> None:
    with pytest.raises(PineImportError) as e:
        import_pine(HEAD + body, "mine.pine")
    assert str(e.value).startswith(f"mine.pine:{where}: "), str(e.value)
    assert message in str(e.value)


def test_calc_on_every_tick_is_refused_with_a_reason() -> None:
    with pytest.raises(PineImportError, match=r"t.pine:2:34: strategy\(calc_on_every_tick=true"
                       r"\) is refused: a back-test on bars has no ticks"):
        import_pine('//@version=5\nstrategy("t", calc_on_every_tick=true)\n', "t.pine")


@pytest.mark.parametrize("setting", ["margin_long=50", "calc_on_order_fills=true",
                                     "close_entries_rule=\"ANY\"", "use_bar_magnifier=true"])
def test_strategy_settings_the_back_test_cannot_honour_are_refused(setting: str) -> None:
    key = setting.split("=")[0]
    with pytest.raises(PineImportError, match=rf"t.pine:2:\d+: strategy\({key}=.*is refused"):
        import_pine(f'//@version=5\nstrategy("t", {setting})\n', "t.pine")


def test_an_indicator_script_is_refused() -> None:
    with pytest.raises(PineImportError, match=r"t.pine:2:1: an indicator\(\) script places no "
                       "orders"):
        import_pine('//@version=5\nindicator("t")\nplot(close)\n', "t.pine")


@pytest.mark.parametrize("version", ["//@version=4\n", ""])
def test_versions_before_5_are_refused(version: str) -> None:
    with pytest.raises(PineImportError, match="only Pine Script v5 and v6 are supported"):
        import_pine(version + 'strategy("t")\n', "t.pine")


def test_a_syntax_error_names_its_line_and_column() -> None:
    with pytest.raises(PineImportError, match=r"t.pine:3:5: Pine syntax error"):
        import_pine(HEAD + "x = = 1\n", "t.pine")


def test_a_refusal_reaches_the_command_line_as_one_line(
        tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    from pathlib import Path
    path = Path(str(tmp_path)) / "sec.pine"
    path.write_text(HEAD + 'x = request.security("AAPL", "D", close)\n')
    assert main(["pine", "import", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"{path}:3:5: 'request.security' is not supported (yet)"
    assert not path.with_suffix(".py").exists()


def test_drawing_only_calls_are_left_out_by_name_not_silently() -> None:
    got = import_pine(HEAD + "hline(50)\nbgcolor(color.red)\n", "t.pine")
    assert got.dropped == ["t.pine:3: hline", "t.pine:4: bgcolor"]
    assert "# hline(50)" in got.source
    assert "hline(…) only draws on TradingView's chart: left out" in got.source
