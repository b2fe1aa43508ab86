"""wire.check_json and check_json_text: JSON values from a worker, bounded in depth and size,
checked without recursion, named where they go wrong, and encoded one canonical way."""

from __future__ import annotations

import json
import sys
import time

import pytest

from sandtrade.sandbox.wire import check_json, check_json_text, json_depth

LIMIT = 256 << 10


def nested(depth: int) -> list[object]:
    value: list[object] = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_output_is_canonical_compact_sorted_ascii() -> None:
    value = {"b": [1, 2.5, None, True, False], "a": {"z": "é\n", "y": ""}}
    text = check_json(value, max_bytes=LIMIT)
    assert text == '{"a":{"y":"","z":"\\u00e9\\n"},"b":[1,2.5,null,true,false]}'
    assert json.loads(text) == value
    assert check_json(json.loads(text), max_bytes=LIMIT) == text


def test_tuples_are_lists_and_dict_subclasses_are_dicts() -> None:
    from collections import OrderedDict

    assert check_json(OrderedDict(b=(1, 2), a=[]), max_bytes=LIMIT) == '{"a":[],"b":[1,2]}'


@pytest.mark.parametrize("depth", [33, 985, 5_000, 100_000, sys.getrecursionlimit() * 10])
def test_too_deep_is_refused_naming_the_path_without_recursion(depth: int) -> None:
    # Ten times the recursion limit deep: a recursive walk would raise RecursionError.
    with pytest.raises(ValueError) as err:
        check_json({"a": nested(depth)}, where="ctx.state", max_bytes=LIMIT)
    assert str(err.value) == "ctx.state['a'][0][0][0][0][0][0][0]…: nested deeper than 32"


def test_depth_limit_is_exact() -> None:
    assert check_json(nested(32), max_bytes=LIMIT) == "[" * 32 + "]" * 32
    with pytest.raises(ValueError, match=r"value\[0\].*nested deeper than 32"):
        check_json(nested(33), max_bytes=LIMIT)
    assert check_json(nested(3), max_depth=3, max_bytes=LIMIT) == "[[[]]]"


def test_a_cycle_is_refused_by_depth() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nested deeper than 32"):
        check_json(loop, max_bytes=LIMIT)


@pytest.mark.parametrize(("value", "message"), [
    ({"a": [0, {1: 2}]}, "ctx.state['a'][1]: the key 1 (int) is not a string"),
    ({"s": {1, 2}}, "ctx.state['s']: set is not a JSON value"),
    ({"f": float("nan")}, "ctx.state['f']: nan is not a JSON number"),
    ({"f": [float("inf")]}, "ctx.state['f'][0]: inf is not a JSON number"),
    ({"big": 1 << 63}, "ctx.state['big']: the integer is outside the signed 64-bit range"),
    ({"b": b"x"}, "ctx.state['b']: bytes is not a JSON value"),
])
def test_what_is_not_plain_json_is_named(value: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        check_json(value, where="ctx.state", max_bytes=LIMIT)
    assert str(err.value).startswith(message), str(err.value)


def test_int_range_is_signed_64_bits() -> None:
    assert check_json([-(1 << 63), (1 << 63) - 1], max_bytes=LIMIT) == \
        f"[{-(1 << 63)},{(1 << 63) - 1}]"


def test_size_limit_is_exact_and_a_huge_value_is_refused_early() -> None:
    value = {"k": "x" * 100}
    text = check_json(value, max_bytes=LIMIT)
    assert check_json(value, max_bytes=len(text)) == text
    with pytest.raises(ValueError, match=r"^value: .*limit of 107 bytes"):
        check_json(value, max_bytes=len(text) - 1)
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"ctx.state: larger than the limit of 262,144 bytes"):
        check_json({"huge": "x" * (10 << 20)}, where="ctx.state", max_bytes=LIMIT)
    with pytest.raises(ValueError, match=r"larger than the limit"):
        check_json([None] * 10_000_000, where="ctx.state", max_bytes=LIMIT)
    assert time.perf_counter() - started < 2.0


def test_json_depth_ignores_brackets_in_strings() -> None:
    assert json_depth('{"a": "[[[{{", "b": [["\\"]]"]]}') == 3
    assert json_depth("1") == 0
    assert json_depth("[" * 100_000 + "]" * 100_000) == 100_000


@pytest.mark.parametrize(("text", "message"), [
    (["not", "text"], "state: came as a list, not JSON text"),
    ("x" * 101, "state: 101 characters of JSON, over the limit of 100 bytes"),
    ("[" * 50 + "]" * 50, "state: nested deeper than 32"),
    ("{'a': 1}", "state: not JSON text"),
    ('{"a": NaN}', "state['a']: nan is not a JSON number"),
])
def test_check_json_text_refuses_before_parsing(text: object, message: str) -> None:
    with pytest.raises(ValueError) as err:
        check_json_text(text, where="state", max_bytes=100)
    assert str(err.value).startswith(message), str(err.value)


def test_check_json_text_gives_the_canonical_form() -> None:
    assert check_json_text('{ "b": 1, "a": [1, 2] }', max_bytes=100) == '{"a":[1,2],"b":1}'
