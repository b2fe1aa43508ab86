"""SMA crossover: always in the market, long above the slow average and short below it.

The strategy of backtesting.py's tutorial (SmaCross, 10/20): when the fast simple moving average
crosses above the slow one, close any short and buy with all the buying power; when it crosses
below, close any long and sell short with all of it.

    sandtrade backtest strategies_examples/sma_cross.py --data prices.csv --param fast=5
"""

PARAMS = {"fast": 10, "slow": 20}


def on_bar(ctx, bar):
    fast = ctx.ta.sma(ctx.params["fast"])
    slow = ctx.ta.sma(ctx.params["slow"])
    if ctx.ta.crossover(fast, slow):
        ctx.close_position()
        ctx.buy()
    elif ctx.ta.crossunder(fast, slow):
        ctx.close_position()
        ctx.sell()
