"""User mappings: ``[signals.mappings.NAME]`` read as native JSON, errors named by the
sender's own paths.
"""

from __future__ import annotations

from typing import Any

import pytest

from sandtrade.signal_model import Command
from sandtrade.signals.formats import FormatRegistry, MappingSpec

from .reading import MAPPED, NATIVE, js, parse, refused


def test_mapping_detects_its_json_and_maps_the_fields() -> None:
    signal = parse('{"sig": {"pair": "btcusd", "side": "LONG", "size": 0.5}, "other": 1}',
                   registry=MAPPED)
    assert signal.format == "bot"
    assert signal.commands == [Command(action="buy", symbol="BTCUSD", qty=0.5)]
    assert signal.fields == {"sig.pair (mapped to symbol)": "btcusd",
                             "sig.side (mapped to action)": "buy",
                             "sig.size (mapped to qty)": 0.5}
    sell = parse('{"sig": {"pair": "ETHUSD", "side": "sell", "size": 2}}', registry=MAPPED)
    assert sell.commands == [Command(action="sell", symbol="ETHUSD", qty=2.0)]


def test_mapping_is_not_used_for_other_bodies() -> None:
    assert parse(NATIVE, registry=MAPPED).format == "native"
    assert parse("buy 1 AAPL", registry=MAPPED).format == "text"


@pytest.mark.parametrize(("sig", "field", "message"), [
    ({"pair": "btcusd", "side": "LONG", "size": "0,5"}, "sig.size (mapped to qty)",
     '"0,5" is a number written with a comma'),
    ({"pair": "btcusd", "side": "LONG", "size": -1}, "sig.size (mapped to qty)",
     "must be above 0, got -1"),
    ({"pair": "btcusd", "side": "HOLD", "size": 1}, "sig.side (mapped to action)",
     'unknown action "HOLD"'),
    ({"pair": "BTC USD", "side": "LONG", "size": 1}, "sig.pair (mapped to symbol)",
     '"BTC USD" is not a symbol'),
])
def test_mapping_wrong_value_names_the_original_path(sig: dict[str, Any], field: str,
                                                     message: str) -> None:
    e = refused(js(sig=sig), registry=MAPPED)
    assert e.field == field
    assert e.detail.startswith(message)


def test_mapping_number_in_quotes_is_that_number() -> None:
    signal = parse(js(sig={"pair": "btcusd", "side": "LONG", "size": "0.5"}), registry=MAPPED)
    assert signal.commands == [Command(action="buy", symbol="BTCUSD", qty=0.5)]


def test_mapping_without_a_size_takes_the_default_named_by_the_senders_path() -> None:
    [cmd] = parse(js(sig={"pair": "btcusd", "side": "LONG"}), registry=MAPPED).commands
    assert cmd.size is not None
    assert (cmd.size.type, cmd.size.field) == ("default", "sig.size (mapped to qty)")


@pytest.mark.parametrize(("sig", "field"), [
    ({"side": "LONG", "size": 1}, "sig.pair (mapped to symbol)"),
    ({"pair": "btcusd", "size": 1}, "sig.side (mapped to action)"),
])
def test_mapping_missing_value_names_the_path_it_was_expected_at(sig: dict[str, Any],
                                                                 field: str) -> None:
    e = refused(js(sig=sig), registry=MAPPED)
    assert e.field == field


def test_mapping_without_detect_is_used_only_when_named() -> None:
    registry = FormatRegistry.default({"quiet": MappingSpec(symbol="s", action="a", qty="q")})
    body = js(s="AAPL", a="buy", q=1)
    assert str(refused(body, registry=registry)).startswith("no symbol: the JSON has none")
    signal = parse(body, fmt="quiet", registry=registry)
    assert signal.format == "quiet"
    assert signal.commands == [Command(action="buy", symbol="AAPL", qty=1.0)]
