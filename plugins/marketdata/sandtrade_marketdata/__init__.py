"""Market data from the outside world: crypto through ccxt, US equities through Alpaca.

Two sources for the ``sandtrade_market_sources`` hook (see :mod:`.plugin`):
:class:`~sandtrade_marketdata.ccxt_source.CcxtSource` (``ccxt``: an exchange's public
OHLCV, no key) and :class:`~sandtrade_marketdata.alpaca_source.AlpacaSource` (``alpaca``:
Alpaca's market data with the user's key). Both poll a REST API for closed bars and keep
their link's health (:mod:`.polling`).
"""
