"""The built-in market sources say what each symbol is: crypto pairs trade fractionally."""

from __future__ import annotations

from sandtrade.market.sources import MarketSettings, ReplaySource, SyntheticSource
from sandtrade.models import AssetClass


def test_a_replay_of_btcusd_csv_trades_btcusd_as_fractional_crypto() -> None:
    """``sandtrade serve --data BTCUSD.csv --data DEMO.csv`` (the shipped samples)."""
    source = ReplaySource(MarketSettings(files=["BTCUSD.csv", "DEMO.csv"]))
    kinds = {i.symbol: (i.asset_class, i.lot_size) for i in source.instruments()}
    assert kinds == {"BTCUSD": (AssetClass.CRYPTO, 1e-8), "DEMO": (AssetClass.EQUITY, 1.0)}


def test_synthetic_symbols_are_classified_the_same_way() -> None:
    source = SyntheticSource(MarketSettings(source="synthetic",
                                            symbols=["ETH-USD", "BRK-B", "SOLUSDT"]))
    kinds = {i.symbol: i.asset_class for i in source.instruments()}
    assert kinds == {"ETH-USD": AssetClass.CRYPTO, "BRK-B": AssetClass.EQUITY,
                     "SOLUSDT": AssetClass.CRYPTO}
