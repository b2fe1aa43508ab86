"""Donchian breakout: buy a close above the highest high of the last N bars, sell a close
below the lowest low of the last M bars; each entry risks a share of equity.

Long only. The position is sized so that a move of a few ATRs against it costs `risk` of the
equity, in whole units, and never more than the cash buys.

    sandtrade backtest NAME.py --data DEMO
    sandtrade optimize NAME.py --data DEMO --param entry_bars --param exit_bars
"""

PARAMS = {
    "entry_bars": param(20, min=5, max=100, step=5, title="Entry channel",
                        help="break above the highest high of this many previous bars"),
    "exit_bars": param(10, min=2, max=50, step=2, title="Exit channel",
                       help="exit below the lowest low of this many previous bars"),
    "atr_length": param(20, min=2, max=100, step=2, title="ATR length", help="bars"),
    "risk": param(0.01, min=0.001, max=0.1, step=0.005, title="Risk per trade",
                  help="share of equity a move of stop_atr ATRs against the trade costs"),
    "stop_atr": param(2.0, min=0.5, max=5, step=0.5, title="Risk in ATRs"),
}


def on_bar(ctx, bar):
    upper = ctx.ta.highest(ctx.params["entry_bars"])
    lower = ctx.ta.lowest(ctx.params["exit_bars"])
    atr = ctx.ta.atr(ctx.params["atr_length"])
    if ctx.position().qty == 0:
        # [1]: the channel of the previous bars (nan in the warm-up: comparisons are False).
        if bar.close > upper[1] and atr.ready and not ctx.orders():
            units = int(ctx.account.equity * ctx.params["risk"]
                        / (ctx.params["stop_atr"] * atr[0]))
            units = min(units, int(ctx.account.buying_power * 0.98 / bar.close))
            if units >= 1:
                ctx.buy(units)
    elif bar.close < lower[1]:
        ctx.close_position()
