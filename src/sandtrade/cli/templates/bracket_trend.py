"""Trend follower with bracket orders: in an up-trend (close above its long average), buy a
pullback to the fast average with a take-profit and a stop loss set from the ATR.

Each entry is one bracket: when it fills, a take-profit limit and a stop-loss stop work
together and the first to fill cancels the other. Long only, one trade at a time.

    sandtrade backtest NAME.py --data DEMO
    sandtrade optimize NAME.py --data DEMO --param take_atr --param stop_atr
"""

PARAMS = {
    "trend": param(100, min=20, max=300, step=20, title="Trend MA",
                   help="bars of the average that defines the trend"),
    "fast": param(20, min=5, max=60, step=5, title="Pullback MA",
                  help="buy when the close dips to this average in an up-trend"),
    "atr_length": param(14, min=2, max=50, step=2, title="ATR length", help="bars"),
    "take_atr": param(3.0, min=0.5, max=10, step=0.5, title="Take profit [ATR]",
                      help="take profit this many ATRs above the entry"),
    "stop_atr": param(1.5, min=0.5, max=5, step=0.5, title="Stop loss [ATR]",
                      help="stop loss this many ATRs below the entry"),
}


def on_bar(ctx, bar):
    trend = ctx.ta.sma(ctx.params["trend"])
    fast = ctx.ta.ema(ctx.params["fast"])
    atr = ctx.ta.atr(ctx.params["atr_length"])
    if ctx.position().qty != 0 or not atr.ready:
        return
    for order in ctx.orders():  # flat: a leg left from the last bracket, now pointless
        ctx.cancel(order.id)
    if bar.close > trend[0] and bar.low <= fast[0] < bar.close:
        ctx.buy(tp=bar.close + ctx.params["take_atr"] * atr[0],
                sl=bar.close - ctx.params["stop_atr"] * atr[0])
