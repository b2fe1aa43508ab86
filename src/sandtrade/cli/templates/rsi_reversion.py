"""RSI mean reversion: buy an oversold dip as it turns, sell the bounce, with a stop.

Long only. When RSI crosses up through the oversold level, buy with all the buying power and
protect the entry with a stop loss a few percent below its fill; the trade ends when RSI rises
above the exit level, or at the stop.

    sandtrade backtest NAME.py --data DEMO
    sandtrade optimize NAME.py --data DEMO --param oversold --param exit_level
"""

PARAMS = {
    "rsi_length": param(14, min=2, max=50, step=2, title="RSI length", help="bars"),
    "oversold": param(30.0, min=5, max=50, step=5, title="Oversold",
                      help="buy when RSI crosses up through this level"),
    "exit_level": param(55.0, min=40, max=90, step=5, title="Exit level",
                        help="sell when RSI rises above this level"),
    "stop_percent": param(5.0, min=0.5, max=20, step=0.5, title="Stop loss [%]",
                          help="stop loss this many percent below the entry's fill"),
}


def on_bar(ctx, bar):
    rsi = ctx.ta.rsi(ctx.params["rsi_length"])
    if ctx.position().qty == 0:
        # Flat: an order still working is the stop of the last trade (its entry fills at
        # the open, before this hook runs): cancel it, or it would sell short later.
        for order in ctx.orders():
            ctx.cancel(order.id)
        if ctx.ta.crossover(rsi, ctx.params["oversold"]):
            ctx.buy(sl_percent=ctx.params["stop_percent"])
    elif rsi > ctx.params["exit_level"]:
        ctx.close_position()
