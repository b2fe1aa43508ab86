"""Symbols as traders write them: one canonical spelling each, and the kind inferred."""

from __future__ import annotations

import pytest

from sandtrade.market.symbols import SymbolTable, canonical
from sandtrade.models import AssetClass


@pytest.mark.parametrize(("written", "expected"), [
    ("AAPL", "AAPL"), ("NASDAQ:AAPL", "AAPL"), ("aapl", "AAPL"), ("NYSE:BRK.B", "BRK.B"),
    ("BRK-B", "BRK.B"), ("BRK/B", "BRK.B"),
    ("BTCUSD", "BTC-USD"), ("BTC-USD", "BTC-USD"), ("BTC/USD", "BTC-USD"),
    ("COINBASE:BTCUSD", "BTC-USD"), ("KRAKEN:XBTUSD", "BTC-USD"), ("XBT/EUR", "BTC-EUR"),
    ("BTCUSDT", "BTC-USDT"), ("BINANCE:BTCUSDT", "BTC-USDT"), ("BTC/USDT", "BTC-USDT"),
    ("BYBIT:BTCUSDT.P", "BTC-USDT"), ("ETHBTC", "ETH-BTC"), ("PEPE-USD", "PEPE-USD"),
    ("SPY   251219C00450000", "SPY251219C00450000"), ("SPY251219P00450000",
                                                      "SPY251219P00450000"),
])
def test_every_spelling_has_one_canonical_symbol(written: str, expected: str) -> None:
    assert canonical(written) == expected


@pytest.mark.parametrize(("symbol", "kind", "lot"), [
    ("AAPL", AssetClass.EQUITY, 1.0), ("BTC-USD", AssetClass.CRYPTO, 1e-8),
    ("SPY251219C00450000", AssetClass.OPTION, 1.0), ("BRK.B", AssetClass.EQUITY, 1.0),
])
def test_the_kind_of_a_new_symbol_is_inferred(symbol: str, kind: AssetClass, lot: float
                                              ) -> None:
    inst = SymbolTable().instrument(symbol)
    assert (inst.asset_class, inst.lot_size) == (kind, lot)


def test_the_table_aliases_any_spelling_and_pins_rules() -> None:
    table = SymbolTable({"XYZUSD": "BTCUSD", "AAPL": {"lot_size": 10, "tick_size": 0.05},
                         "GLD": {"kind": "crypto", "min_notional": 5}})
    assert table.resolve("BINANCE:XYZUSD") == "BTC-USD"
    aapl = table.instrument("AAPL")
    assert (aapl.lot_size, aapl.tick_size) == (10, 0.05)
    gld = table.instrument("GLD")
    assert gld.asset_class is AssetClass.CRYPTO and gld.min_notional == 5


def test_two_spellings_of_one_symbol_in_the_table_are_refused() -> None:
    with pytest.raises(ValueError, match=r"BTC/USD: the same symbol as BTCUSD \(BTC-USD\)"):
        SymbolTable({"BTCUSD": {"lot_size": 0.001}, "BTC/USD": {"lot_size": 0.01}})
