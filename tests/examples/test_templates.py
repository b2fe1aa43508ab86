"""``sandtrade new``: every template writes a file that passes ``check`` and back-tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandtrade.cli import main
from sandtrade.cli.new import TEMPLATES

#: Each template's trades on the DEMO sample: (some trades?, long only?).
EXPECTED = {"ma_cross": (True, False), "rsi_reversion": (True, True),
            "breakout": (True, True), "bracket_trend": (True, True),
            "tradingview_signal": (False, True)}


def test_every_template_is_tested() -> None:
    assert set(EXPECTED) == set(TEMPLATES)


@pytest.mark.parametrize("template", list(TEMPLATES))
def test_a_template_passes_check_and_backtests(template: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / f"my_{template}.py"
    assert main(["new", template, str(path)]) == 0
    text = path.read_text()
    assert "param(" in text and "NAME" not in text and f"my_{template}.py" in text
    assert main(["check", str(path)]) == 0
    assert ": ok (hooks:" in capsys.readouterr().out
    assert main(["backtest", str(path), "--data", "DEMO", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    trades, long_only = EXPECTED[template]
    assert (result["stats"]["# Trades"] > 0) is trades
    if long_only:
        assert all(t["size"] > 0 for t in result["trades"] + result["open_trades"])


def test_new_refuses_to_overwrite_a_file(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mine.py"
    path.write_text("# mine\n")
    assert main(["new", "ma_cross", str(path)]) == 1
    assert "exists already" in capsys.readouterr().err
    assert path.read_text() == "# mine\n"
    assert main(["new", "ma_cross", str(path), "--force"]) == 0
