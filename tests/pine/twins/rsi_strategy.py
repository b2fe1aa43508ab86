"""RSI Strategy, by hand: long when the 14-bar RSI crosses above 30, short when it crosses
below 70; one unit, reversing."""

PARAMS = {"length": 14, "overSold": 30, "overBought": 70}


def enter(ctx, direction):
    pos = ctx.position().qty
    if pos * direction > 0:
        return
    if direction > 0:
        ctx.buy(1 + abs(pos))
    else:
        ctx.sell(1 + abs(pos))


def on_bar(ctx, bar):
    rsi = ctx.ta.rsi(ctx.params["length"])
    now, before = rsi[0], rsi[1]
    if now != now:  # not yet
        return
    if now > ctx.params["overSold"] and before <= ctx.params["overSold"]:
        enter(ctx, 1)
    if now < ctx.params["overBought"] and before >= ctx.params["overBought"]:
        enter(ctx, -1)
