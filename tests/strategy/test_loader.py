"""Loading a strategy file: hooks checked against the specs, errors as ``file:line: message``,
and ``--param`` overrides converted to the defaults' types."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sandtrade.errors import StrategyError
from sandtrade.strategy import HOOK_NAMES, load_strategy, resolve_params

Write = Callable[..., Path]


def load_error(write_strategy: Write, source: str) -> tuple[str, str]:
    """The path of the file written from ``source`` and the StrategyError loading it raised."""
    path = write_strategy(source)
    with pytest.raises(StrategyError) as info:
        load_strategy(path)
    return str(path), str(info.value)


# ---------------------------------------------------------------- hooks


def test_a_file_loads_with_its_hooks_and_params(write_strategy: Write) -> None:
    path = write_strategy("""
        PARAMS = {"fast": 10, "slow": 20.5, "long_only": True, "label": "x"}

        def helper(x):
            return x

        def on_bar(ctx, bar):
            pass

        def on_fill(ctx, fill):
            pass
    """)
    strategy = load_strategy(path)
    assert strategy.name == "strategy"
    assert strategy.path == str(path)
    assert strategy.params == {"fast": 10, "slow": 20.5, "long_only": True, "label": "x"}
    assert sorted(strategy.hooks) == ["on_bar", "on_fill"]
    assert strategy.caller("on_start") is None


def test_the_hooks_are_the_documented_five() -> None:
    assert HOOK_NAMES == ("on_start", "on_bar", "on_signal", "on_fill", "on_stop")


def test_a_misspelled_hook_names_file_line_and_the_likely_hook(write_strategy: Write) -> None:
    path, error = load_error(write_strategy, """
        PARAMS = {}


        def on_bars(ctx, bar):
            pass
    """)
    assert error == (f"{path}:4: on_bars is not a strategy hook; did you mean on_bar? hooks "
                     "are: on_start, on_bar, on_signal, on_fill, on_stop")


def test_an_unknown_hook_with_no_close_match_lists_the_hooks(write_strategy: Write) -> None:
    path, error = load_error(write_strategy, """
        def on_tick(ctx, tick):
            pass
    """)
    assert error.startswith(f"{path}:1: on_tick is not a strategy hook; hooks are: on_start")


def test_a_wrong_argument_name_is_named(write_strategy: Write) -> None:
    path, error = load_error(write_strategy, """
        def on_bar(context, bar):
            pass
    """)
    assert error == (f"{path}:1: on_bar(context, bar): argument 'context' is not one of "
                     "on_bar's arguments (ctx, bar)")


@pytest.mark.parametrize("signature, bad", [
    ("ctx, bar, extra=1", "extra"),
    ("ctx, *args", "args"),
    ("ctx, **kwargs", "kwargs"),
    ("ctx, *, bar", "bar"),
])
def test_arguments_the_hook_is_never_called_with_are_refused(write_strategy: Write,
                                                             signature: str, bad: str) -> None:
    _, error = load_error(write_strategy, f"""
        def on_bar({signature}):
            pass
    """)
    assert f"argument {bad!r} is not one of on_bar's arguments (ctx, bar)" in error


@pytest.mark.parametrize("source, kind", [
    ("async def on_bar(ctx, bar):\n    pass\n", "an async function"),
    ("def on_bar(ctx, bar):\n    yield bar\n", "a generator"),
])
def test_a_hook_whose_body_would_never_run_is_refused(write_strategy: Write, source: str,
                                                      kind: str) -> None:
    path, error = load_error(write_strategy, source)
    assert error == (f"{path}:1: on_bar is {kind}; hooks must be plain functions "
                     "(def, no async, no yield)")


@pytest.mark.parametrize("source, kind", [
    ("def f(ctx):\n    pass\n\n\non_stop = staticmethod(f)\n", "staticmethod"),
    ("on_bar = 5\n", "int"),
    ("import math\n\non_start = math.floor\n", "builtin_function_or_method"),
])
def test_a_hook_name_bound_to_something_else_than_a_function_is_refused(
        write_strategy: Write, source: str, kind: str) -> None:
    """It would never be called: a pluggy hook needs a plain function."""
    path, error = load_error(write_strategy, source)
    hook = source.split(" = ")[0].split("\n")[-1]
    assert error == f"{path}: {hook} must be a plain function (def {hook}(...)), got {kind}"


def test_a_hook_may_take_fewer_arguments_or_name_them_in_another_order(
        backtest: Any) -> None:
    run = backtest("""
        SEEN = []

        def on_start(ctx):
            ctx.buy(2)

        def on_bar(ctx):
            SEEN.append(ctx.bar_index)

        def on_fill(fill, ctx):
            SEEN.append(("fill", fill.qty, ctx.position().qty))

        def on_stop():
            SEEN.append("stop")
    """)
    assert run.module["SEEN"] == [0, ("fill", 2.0, 2.0), 1, 2, 3, 4, 5, 6, 7, 8, 9, "stop"]


# ---------------------------------------------------------------- the file itself


def test_a_syntax_error_names_file_and_line(write_strategy: Write) -> None:
    path, error = load_error(write_strategy, """
        PARAMS = {}

        def on_bar(ctx, bar)
            pass
    """)
    assert re.fullmatch(rf"{re.escape(path)}:3: syntax error: .+", error), error


def test_an_exception_at_import_time_names_file_and_line(write_strategy: Write) -> None:
    path, error = load_error(write_strategy, """
        PARAMS = {}
        LIMIT = 1 / 0
    """)
    assert error == (f"{path}:2: while loading the file: ZeroDivisionError: division by zero")


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(StrategyError, match=r"nothere\.py: no such strategy file"):
        load_strategy(tmp_path / "nothere.py")


KINDS = "a parameter is a number within ±2**63, a string or a boolean"


@pytest.mark.parametrize("params, message", [
    ("[('fast', 10)]", ": PARAMS must be a dict with string keys, got list"),
    ("{1: 10}", ":1: PARAMS keys must be strings (names for --param), got int 1"),
    ("{'fast': [10]}", f":1: PARAMS['fast']: a list; {KINDS}"),
    ("{'fast': None}", f":1: PARAMS['fast']: a NoneType; {KINDS}"),
    ("{'big': 10**4400}", f":1: PARAMS['big']: an integer of 4,401 digits; {KINDS}"),
    ("{'big': -2**63 - 1}", f":1: PARAMS['big']: -9,223,372,036,854,775,809; {KINDS}"),
    ("{'x': float('nan')}", f":1: PARAMS['x']: nan, not a finite number; {KINDS}"),
    ("{'s': 'a' * 1001}", f":1: PARAMS['s']: a string of 1,001 characters (at most 1,000); "
                          f"{KINDS}"),
    ("{'s': '\\ud800'}", f":1: PARAMS['s']: a string that is not valid text (a lone "
                          f"surrogate at character 0); {KINDS}"),
    ("{'a\\x1b[2J': 1}", ":1: PARAMS key 'a\\x1b[2J': a name with the character '\\x1b' in it "
                          "(names are printable text)"),
    ("{'': 1}", ":1: PARAMS key '': an empty name"),
])
def test_params_must_be_a_dict_of_plain_values(write_strategy: Write, params: str,
                                               message: str) -> None:
    """A parameter must survive JSON, protobuf and the store and show on one line; the error
    names the file and the line."""
    path, error = load_error(write_strategy, f"PARAMS = {params}\n")
    assert error == f"{path}{message}"


def test_a_params_error_names_the_line_of_its_key(write_strategy: Write) -> None:
    path, error = load_error(write_strategy, "PARAMS = {\n    'ok': 1,\n    'big': 2**64,\n}\n")
    assert error.startswith(f"{path}:3: PARAMS['big']: 18,446,744,073,709,551,616; "), error


def test_extreme_params_within_the_bounds_load(write_strategy: Write) -> None:
    params = load_strategy(write_strategy(
        "PARAMS = {'lo': -2**63, 'hi': 2**63 - 1, 'f': 1e308, 's': 'x' * 1000, 'b': True}\n"
    )).params
    assert params == {"lo": -2**63, "hi": 2**63 - 1, "f": 1e308, "s": "x" * 1000, "b": True}


def test_a_file_without_params_has_none(write_strategy: Write) -> None:
    assert load_strategy(write_strategy("def on_stop(ctx):\n    pass\n")).params == {}


# ---------------------------------------------------------------- resolve_params


DEFAULTS = {"fast": 10, "slow": 20.0, "long_only": False, "label": "x"}


def test_overrides_are_converted_to_the_defaults_types() -> None:
    got = resolve_params(DEFAULTS, {"fast": "5", "slow": " 1e2 ", "long_only": "yes",
                                    "label": "y"})
    assert got == {"fast": 5, "slow": 100.0, "long_only": True, "label": "y"}
    assert type(got["fast"]) is int and type(got["slow"]) is float


@pytest.mark.parametrize("text, value", [
    ("1", True), ("true", True), ("YES", True), ("on", True),
    ("0", False), ("False", False), ("no", False), ("off", False),
])
def test_bool_params_accept_the_usual_words(text: str, value: bool) -> None:
    assert resolve_params(DEFAULTS, {"long_only": text})["long_only"] is value


def test_params_given_as_values_keep_their_type_and_ints_become_floats() -> None:
    got = resolve_params(DEFAULTS, {"fast": 7, "slow": 3, "long_only": True})
    assert got == {"fast": 7, "slow": 3.0, "long_only": True, "label": "x"}
    assert type(got["slow"]) is float


def test_defaults_are_left_alone() -> None:
    defaults = dict(DEFAULTS)
    assert resolve_params(defaults, {}) == DEFAULTS
    resolve_params(defaults, {"fast": "1"})
    assert defaults == DEFAULTS


def test_an_unknown_param_suggests_the_close_one() -> None:
    with pytest.raises(StrategyError) as info:
        resolve_params(DEFAULTS, {"fsat": "5"}, where="sma.py")
    assert str(info.value) == ("sma.py: unknown parameter 'fsat'; did you mean 'fast'? "
                               "(known: fast, label, long_only, slow)")


def test_an_unknown_param_of_a_strategy_without_params() -> None:
    with pytest.raises(StrategyError, match=r"unknown parameter 'n' \(known: none\)"):
        resolve_params({}, {"n": "1"})


@pytest.mark.parametrize("key, raw, message", [
    ("fast", "ten", "parameter 'fast' must be int (default 10), got 'ten'"),
    ("fast", "2.5", "parameter 'fast' must be int (default 10), got '2.5'"),
    ("slow", "fast", "parameter 'slow' must be float (default 20.0), got 'fast'"),
    ("long_only", "maybe", "parameter 'long_only' must be bool (default False), got 'maybe'"),
    ("fast", 2.5, "parameter 'fast' must be int, got float 2.5"),
    ("fast", "1" * 30, f"parameter 'fast': {int('1' * 30):,}; {KINDS}"),
    ("fast", 2**70, f"parameter 'fast': {2**70:,}; {KINDS}"),
    ("slow", "-inf", f"parameter 'slow': -inf, not a finite number; {KINDS}"),
])
def test_a_bad_value_names_the_param_its_type_and_the_value(key: str, raw: object,
                                                            message: str) -> None:
    with pytest.raises(StrategyError) as info:
        resolve_params(DEFAULTS, {key: raw}, where="s.py")
    assert str(info.value) == f"s.py: {message}"
