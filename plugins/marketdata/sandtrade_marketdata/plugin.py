"""The market-data plugin object, registered under the ``sandtrade`` entry point
``marketdata``.

Every process that loads the host's plugins imports this module (every CLI command), so it
stays small: the sources (and ccxt, about 0.3 s to import) are imported only when the host
asks for market sources, and ccxt only when the ccxt source is chosen.
"""

from __future__ import annotations

from typing import Any

from sandtrade.hookspecs import hookimpl

__all__ = ["MarketDataPlugin", "plugin"]


class MarketDataPlugin:
    """The plugin object registered under the entry point."""

    @hookimpl
    def sandtrade_market_sources(self) -> list[Any]:
        """The ``ccxt`` and ``alpaca`` sources."""
        from sandtrade_marketdata.alpaca_source import AlpacaSource
        from sandtrade_marketdata.ccxt_source import CcxtSource

        return [CcxtSource, AlpacaSource]


plugin = MarketDataPlugin()
