"""Donchian breakout, turtle style: buy new highs, sell new lows, size by risk.

Long only. Buy when the close breaks above the highest high of the previous 20 bars; sell when
it breaks below the lowest low of the previous 10 bars. Each entry risks 1 % of equity: the
position is sized so that a move of 2 ATRs against it costs that much, in whole units, and
never more than the cash on hand buys.

    sandtrade backtest strategies_examples/breakout.py --data prices.csv

Change a parameter with ``--param``, e.g. ``--param entry_bars=55 --param exit_bars=20`` (the
turtles' slower system).
"""

PARAMS = {
    "entry_bars": 20,  # N: breakout above the highest high of the previous N bars
    "exit_bars": 10,  # M: exit below the lowest low of the previous M bars
    "atr_length": 20,  # ATR look-back, in bars (the turtles' "N")
    "risk": 0.01,  # share of equity risked per trade
    "stop_atr": 2.0,  # the risk is measured over a move of this many ATRs
}


def on_bar(ctx, bar):
    # Ask for every indicator on every bar, as in Pine: each one must see every bar.
    upper = ctx.ta.highest(ctx.params["entry_bars"])  # high channel, this bar included
    lower = ctx.ta.lowest(ctx.params["exit_bars"])  # low channel, this bar included
    atr = ctx.ta.atr(ctx.params["atr_length"])

    if ctx.position().qty == 0:
        # [1]: the channel of the previous bars, so that this bar's own high cannot block it.
        # nan during the warm-up, and every comparison with nan is False.
        if bar.close > upper[1] and atr.ready and not ctx.orders():
            equity = ctx.account.equity
            units = int(equity * ctx.params["risk"] / (ctx.params["stop_atr"] * atr[0]))
            affordable = int(ctx.account.buying_power * 0.98 / bar.close)  # room for a gap
            units = min(units, affordable)
            if units >= 1:
                ctx.buy(units)
                ctx.log(f"breakout above {upper[1]:.2f}: buying {units}")
    elif bar.close < lower[1]:
        ctx.close_position()
