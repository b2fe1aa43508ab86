"""Moving-average cross: long when the fast average crosses above the slow one, short (or
flat) when it crosses below.

    sandtrade backtest NAME.py --data DEMO
    sandtrade optimize NAME.py --data DEMO --param fast --param slow --constraint "fast < slow"

Each parameter is declared with param(): its type, its bounds (checked wherever it is set:
--param, an upload, a sweep) and the step `sandtrade optimize --param NAME` sweeps it by.
"""

PARAMS = {
    "fast": param(10, min=2, max=50, step=5, title="Fast MA",
                  help="bars of the fast moving average"),
    "slow": param(30, min=5, max=200, step=10, title="Slow MA",
                  help="bars of the slow moving average"),
    "kind": param("SMA", choices=("SMA", "EMA"), title="Average",
                  help="simple or exponential moving averages"),
    "allow_short": param(True, title="Go short", help="sell short on a cross down"),
}


def on_bar(ctx, bar):
    # Ask for every indicator on every bar (as in Pine): each one must see every bar.
    average = ctx.ta.ema if ctx.params["kind"] == "EMA" else ctx.ta.sma
    fast = average(ctx.params["fast"])
    slow = average(ctx.params["slow"])
    if ctx.ta.crossover(fast, slow):
        ctx.close_position()
        ctx.buy()  # all the buying power, whole units, commission included
    elif ctx.ta.crossunder(fast, slow):
        ctx.close_position()
        if ctx.params["allow_short"]:
            ctx.sell()
