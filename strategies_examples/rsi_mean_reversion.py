"""RSI mean reversion: buy an oversold dip as it turns, sell the bounce, with an ATR stop.

Long only. When RSI(14) crosses up through the oversold level (30), the dip is turning: buy
with all the buying power. When the entry fills, a protective stop goes in 2 ATRs below the
fill price. The trade ends when RSI crosses above the exit level (55), or when the stop is
hit. On a signal exit the working stop is cancelled, so it cannot open a short later on.

    sandtrade backtest strategies_examples/rsi_mean_reversion.py --data prices.csv

Change a parameter with ``--param``, e.g. ``--param oversold=25 --param exit_level=60``.
"""

PARAMS = {
    "rsi_length": 14,  # RSI look-back, in bars
    "oversold": 30.0,  # buy when RSI crosses up through this level
    "exit_level": 55.0,  # sell when RSI crosses above this level
    "atr_length": 14,  # ATR look-back, in bars
    "stop_atr": 2.0,  # protective stop: this many ATRs below the entry price
}


def on_bar(ctx, bar):
    # Ask for every indicator on every bar, as in Pine: each one must see every bar.
    rsi = ctx.ta.rsi(ctx.params["rsi_length"])
    atr = ctx.ta.atr(ctx.params["atr_length"])

    if ctx.position().qty == 0:
        # ATR must have a value by the time the entry fills, to place the stop.
        if atr.ready and ctx.ta.crossover(rsi, ctx.params["oversold"]):
            ctx.state["entry"] = ctx.buy()  # no size: all of the buying power
    elif rsi > ctx.params["exit_level"]:
        # The first bar above the level is the cross; ">" also catches a jump from below 30
        # to above 55 on the entry bar itself, which a crossover on a later bar would miss.
        ctx.close_position()
        stop = ctx.state.pop("stop", None)
        if stop:
            ctx.cancel(stop)  # or the stop would sell short later


def on_fill(ctx, fill):
    if fill.order_id == ctx.state.get("entry"):
        # The entry filled at fill.price: protect the whole position with a stop order.
        # The position is whole shares (1 or more), so ctx.sell() reads it as units.
        old = ctx.state.pop("stop", None)
        if old:
            ctx.cancel(old)  # a partial fill before this one placed a smaller stop
        atr = ctx.ta.atr(ctx.params["atr_length"])[0]
        stop_price = fill.price - ctx.params["stop_atr"] * atr
        if stop_price > 0:
            ctx.state["stop"] = ctx.sell(ctx.position().qty, stop=stop_price)
            ctx.log(f"bought {fill.qty:g} at {fill.price:.2f}, stop at {stop_price:.2f}")
    elif fill.order_id == ctx.state.get("stop"):
        ctx.state.pop("stop")
        ctx.log(f"stopped out at {fill.price:.2f}")
