"""Typed parameters: ``param(...)`` in PARAMS, checked wherever an override meets the file
(``check``, back-tests in the host and in the sandbox, sweeps) with ``file:line`` errors."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.runner import InProcessRunner
from sandtrade.errors import StrategyError
from sandtrade.market import sample_csv_path
from sandtrade.sandbox.runner import SandboxRunner, inspect_in_sandbox
from sandtrade.strategy import load_strategy
from sandtrade.strategy.loader import resolve_params
from sandtrade.strategy.params import ParamSpec, param

TYPED = textwrap.dedent('''\
    PARAMS = {
        "fast": param(10, min=2, max=50, step=1, title="Fast MA", help="bars"),
        "slow": param(30.0, min=5, max=200),
        "kind": param("EMA", choices=("SMA", "EMA")),
        "plain": 3,
    }


    def on_bar(ctx, bar):
        pass
    ''')


@pytest.fixture
def typed(tmp_path: Path) -> Path:
    path = tmp_path / "typed.py"
    path.write_text(TYPED)
    return path


def test_param_infers_the_type_and_keeps_its_declaration() -> None:
    spec = param(10, min=2, max=50, step=1, title="Fast MA", help="bars")
    assert spec == ParamSpec(default=10, type="int", min=2, max=50, step=1, title="Fast MA",
                             help="bars")
    assert param(1.5, min=1).min == 1.0 and isinstance(param(1.5, min=1).min, float)
    assert param(True).type == "bool" and param("x").type == "str"
    assert param(2, min=1, max=3, step=1).grid() == [1, 2, 3]
    assert param(0.2, min=0.1, max=0.3, step=0.1).grid() == [0.1, 0.2, 0.3]
    assert param("EMA", choices=["SMA", "EMA"]).grid() == ["SMA", "EMA"]
    assert param(5).grid() is None


@pytest.mark.parametrize(("call", "message"), [
    (lambda: param([1]), "the default must be an int, float, bool or str"),
    (lambda: param(1, min="a"), "min must be a number"),
    (lambda: param(1, min=5, max=2), "min 5 is above max 2"),
    (lambda: param(1, step=0), "step must be positive"),
    (lambda: param(1, step=0.5), "not a whole number"),
    (lambda: param("x", min=1), "min, max and step are for numbers"),
    (lambda: param("x", choices=["a", 1]), "choice 1 is not a str"),
    (lambda: param(float("nan")), "finite"),
])
def test_a_mistaken_declaration_says_what_is_wrong(call, message: str) -> None:
    with pytest.raises((TypeError, ValueError), match=message):
        call()


def test_a_spec_round_trips_through_json_and_bad_json_is_refused() -> None:
    spec = param("EMA", choices=("SMA", "EMA"), title="Kind")
    assert ParamSpec.from_json(spec.to_json()) == spec
    for bad in ({"default": 1, "type": "str"}, {"default": 1, "min": "x"}, [],
                {"default": 1, "evil": 2}):
        with pytest.raises((TypeError, ValueError)):
            ParamSpec.from_json(bad)


def test_the_loader_gives_defaults_and_specs(typed: Path) -> None:
    strategy = load_strategy(typed)
    assert strategy.params == {"fast": 10, "slow": 30.0, "kind": "EMA", "plain": 3}
    assert strategy.specs["fast"].max == 50 and strategy.specs["plain"].type == "int"
    assert strategy.lines == {"fast": 2, "slow": 3, "kind": 4, "plain": 5}


def test_an_override_out_of_bounds_names_file_line_and_the_bound(typed: Path) -> None:
    strategy = load_strategy(typed)

    def resolve(**overrides: object) -> dict:
        return resolve_params(strategy.params, overrides, where=str(typed),
                              specs=strategy.specs, lines=strategy.lines)

    assert resolve(fast="20", kind="SMA") == {"fast": 20, "slow": 30.0, "kind": "SMA",
                                              "plain": 3}
    with pytest.raises(StrategyError, match=rf"^{typed}:2: fast: 80 is above its maximum 50$"):
        resolve(fast="80")
    with pytest.raises(StrategyError, match=rf"^{typed}:3: slow: 1.0 is below its minimum 5.0"):
        resolve(slow=1)
    with pytest.raises(StrategyError, match=rf"^{typed}:4: kind: 'WMA' is not one of its "):
        resolve(kind="WMA")


def test_a_default_outside_its_own_bounds_is_refused_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.py"
    path.write_text('PARAMS = {\n    "fast": param(80, max=50),\n}\n')
    with pytest.raises(StrategyError, match=r"bad.py:2: fast: the default 80 is above its "
                                            r"maximum 50"):
        load_strategy(path)


def test_check_in_the_sandbox_reports_the_specs(typed: Path) -> None:
    checked = inspect_in_sandbox(str(typed))
    assert checked.specs["kind"].choices == ("SMA", "EMA")
    assert checked.params["slow"] == 30.0
    with pytest.raises(StrategyError, match=r"typed.py:2: fast: 1 is below its minimum 2"):
        checked.resolve({"fast": 1})


@pytest.mark.parametrize("runner", [InProcessRunner(), SandboxRunner()],
                         ids=["in-process", "sandbox"])
def test_a_backtest_refuses_an_override_out_of_bounds(typed: Path, runner) -> None:
    request = BacktestRequest(strategy=str(typed), params={"fast": 51},
                              data=[DataSpec(path=str(sample_csv_path()))])
    with pytest.raises(StrategyError, match=r"typed.py:2: fast: 51 is above its maximum 50"):
        runner.run(request)


def test_a_strategy_cannot_change_a_declaration_in_the_sandbox(tmp_path: Path) -> None:
    """A spec is the host's frozen object: the sandbox refuses writing its attributes."""
    path = tmp_path / "sneaky.py"
    path.write_text('p = param(10, max=50)\np.max = 10**9\nPARAMS = {"fast": p}\n')
    with pytest.raises(StrategyError, match=r"sneaky.py:2"):
        inspect_in_sandbox(str(path))
