"""What a worker loads before it confines itself, read from a strategy's source."""

from __future__ import annotations

import pytest

from sandtrade.strategy.modules import may_price_options


@pytest.mark.parametrize("source", [
    "def on_bar(ctx, bar):\n    ctx.options.chain()\n",
    'def on_bar(ctx, bar):\n    getattr(ctx, "options").greeks()\n',
    'def on_bar(ctx, bar):\n    ctx.order("AAPL250117C00150000", "buy", 1)\n',
    'def on_bar(ctx, bar):\n    ctx.order("spy   250117p00400000", "sell", 1)\n',
])
def test_a_source_naming_options_or_an_option_symbol_may_price_options(source: str) -> None:
    assert may_price_options(source)


def test_a_run_on_an_options_bars_may_price_options() -> None:
    assert may_price_options("def on_bar(ctx, bar):\n    pass\n", ["AAPL250117C00150000"])


def test_an_sma_cross_prices_no_options() -> None:
    source = ("def on_bar(ctx, bar):\n    if ctx.ta.crossover(ctx.ta.sma(10), ctx.ta.sma(20)):"
              "\n        ctx.buy()\n")
    assert not may_price_options(source, ["AAPL", "BTCUSD", 20250117])
