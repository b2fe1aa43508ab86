"""The TradingView webhook adapter: a sandtrade plugin like any other (see :mod:`.plugin`)."""
