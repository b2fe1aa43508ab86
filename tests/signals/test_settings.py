"""The ``[signals]`` configuration: its errors name ``FILE:LINE`` and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandtrade.host.config import ConfigError, load_settings


def config_error(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    return str(info.value)


ROUTES_BAD_TO = [
    pytest.param('[[signals.routes]]\nsymbol = "BTC*"\nto = "strategy:crypto"\n\n'
                 '[[signals.routes]]\nalert = "test-*"\nto = "somewhere"\n', 7, id="plain"),
    pytest.param('[signals]\nmode = "paper"\n\n# [[signals.routes]] (commented out)\n'
                 '[[signals.routes]]\nto = "drop"   # first\n\n[[signals.routes]]  # second\n'
                 '# to = "paper"\nto = "somewhere"\n', 10, id="comments"),
    pytest.param('[[signals.routes]]\nto = "drop"\n\n[signals.mappings.x]\nsymbol = "a"\n'
                 'action = "b"\n\n  [[ signals.routes ]]\n  "to" = "somewhere"\n', 9,
                 id="interleaved-indented-quoted"),
    pytest.param('[[signals.routes]]\r\nto = "drop"\r\n[[signals.routes]]\r\n'
                 'to = "somewhere"\r\n', 4, id="crlf"),
    pytest.param('[signals]\nroutes = [{to = "drop"}, {to = "somewhere"}]\n', 2,
                 id="inline-array"),
]


@pytest.mark.parametrize(("text", "line"), ROUTES_BAD_TO)
def test_config_bad_route_destination_names_file_line_and_key(tmp_path: Path, text: str,
                                                              line: int) -> None:
    path = tmp_path / "sandtrade.toml"
    message = config_error(path, text)
    assert message.startswith(f"{path}:{line}: signals.routes[1].to: ")
    assert "'somewhere' is not a destination (use paper, paper:ACCOUNT, strategy:NAME, " \
           "strategy:ACCOUNT/NAME, live:BROKER or drop)" in message


def test_config_unknown_route_key_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "sandtrade.toml"
    message = config_error(path, '[[signals.routes]]\nto = "drop"\n\n[[signals.routes]]\n'
                                 'symbol = "X"\ncolour = "red"\nto = "paper"\n')
    assert message.startswith(f"{path}:6: signals.routes[1].colour: ")
    assert "Extra inputs are not permitted" in message


def test_config_route_without_destination_names_the_route_header(tmp_path: Path) -> None:
    path = tmp_path / "sandtrade.toml"
    message = config_error(path, '[[signals.routes]]\nto = "drop"\n\n[[signals.routes]]\n'
                                 'symbol = "X"\n')
    assert message.startswith(f"{path}:4: signals.routes[1].to: Field required")


def test_config_mapping_without_symbol_names_its_table(tmp_path: Path) -> None:
    path = tmp_path / "sandtrade.toml"
    message = config_error(path, '[signals]\nmode = "paper"\n\n[signals.mappings.a]\n'
                                 'symbol = "a.s"\naction = "a.a"\n\n[signals.mappings.x]\n'
                                 'detect = "bot"\naction = "bot.side"\nqty = "bot.size"\n')
    assert message == f"{path}:8: signals.mappings.x.symbol: Field required"


def test_config_mapping_unknown_key_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "sandtrade.toml"
    message = config_error(path, '[signals.mappings.x]\nsymbol = "b.pair"\naction = "b.side"\n'
                                 'quantity = "b.size"\n')
    assert message.startswith(f"{path}:4: signals.mappings.x.quantity: ")
