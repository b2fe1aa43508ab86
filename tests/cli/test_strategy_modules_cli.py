"""The library whitelist and the workers' interpreter from the command line: ``check
--config`` refuses an import the configuration leaves out with ``file:line``, ``doctor`` lists
what strategies may import, ``[sandbox] python`` is checked before any worker starts, and a
numpy/TA-Lib strategy back-tests in its sandbox to the trades of the same rules in
``ctx.ta``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from strategies_examples import example_path

from sandtrade.cli import main

USES_BOTH = "import numpy as np\nimport talib\n\ndef on_bar(ctx, bar):\n    pass\n"


def config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "sandtrade.toml"
    path.write_text(text)
    return str(path)


def test_check_with_a_whitelist_refuses_what_it_leaves_out(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    strategy = tmp_path / "both.py"
    strategy.write_text(USES_BOTH)
    cfg = config(tmp_path, '[sandbox]\nmodules = ["math", "talib"]\n\n'
                 '[accounts.strict]\nmodules = ["math"]\n')
    assert main(["check", str(strategy)]) == 0
    assert main(["check", str(strategy), "--config", cfg]) == 1
    err = capsys.readouterr().err
    assert f"{strategy}:1: import of 'numpy' is not allowed (allowed: math, talib)" in err
    assert ":2:" not in err
    assert main(["check", str(strategy), "--config", cfg, "--account", "strict"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err == [f"{strategy}:1: import of 'numpy' is not allowed (allowed: math)",
                   f"{strategy}:2: import of 'talib' is not allowed (allowed: math)"]


def test_a_whitelist_naming_an_unknown_module_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path, '[sandbox]\nmodules = ["numpy", "pandas"]\n')
    assert main(["check", str(example_path("sma_cross")), "--config", cfg]) == 1
    assert "[sandbox] modules[1]: 'pandas' is not a module strategies can import" in \
        capsys.readouterr().err


def test_the_workers_python_is_checked_at_start(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Missing, not executable, or unable to import the worker: a clear error, no worker
    started; the host's own interpreter named explicitly works."""
    not_python = tmp_path / "not-python"
    not_python.write_text("#!/bin/sh\nexit 3\n")
    not_python.chmod(0o755)
    for python, why in ((str(tmp_path / "missing"), "no such file"),
                        (str(tmp_path / "sandtrade.toml"), "not executable"),
                        (str(not_python), "cannot run sandbox workers: exit status 3"),
                        ("python3", "give the interpreter's absolute path")):
        cfg = config(tmp_path, f'[sandbox]\npython = "{python}"\n')
        assert main(["check", str(example_path("sma_cross")), "--config", cfg]) == 1
        err = capsys.readouterr().err
        assert f"[sandbox] python = '{python}': {why}" in err, err
    cfg = config(tmp_path, f'[sandbox]\npython = "{sys.executable}"\n')
    assert main(["check", str(example_path("numpy_sma_cross")), "--config", cfg]) == 0


def test_doctor_lists_what_strategies_may_import(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = config(tmp_path, '[sandbox]\nmodules = ["math", "numpy"]\n\n'
                 '[accounts.strict]\nmodules = ["math"]\n')
    assert main(["doctor", "--config", cfg, "--http", "127.0.0.1:9"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "strategies may import: math, numpy" in lines
    assert "strategies of account strict may import: math" in lines
    assert any(line.split()[:1] == ["strategy_modules"] and "on (numpy, talib)" in line
               for line in lines), lines


def test_numpy_example_backtests_to_the_trades_of_the_ctx_ta_example(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Sandboxed, on DEMO: the SMA cross computed with np.convolve and talib.SMA on
    ``ctx.history`` arrays makes the same trades as the one computed with ``ctx.ta``."""
    trades = []
    for name in ("sma_cross", "numpy_sma_cross"):
        assert main(["backtest", str(example_path(name)), "--data", "DEMO", "--json"]) == 0
        trades.append(json.loads(capsys.readouterr().out)["trades"])
    assert len(trades[0]) > 50
    assert trades[0] == trades[1]
