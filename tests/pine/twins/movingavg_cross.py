"""MovingAvg Cross, by hand: go long when the close has been above its 9-bar SMA for
``confirmBars`` bars in a row, short when below for as many; one unit, reversing."""

PARAMS = {"length": 9, "confirmBars": 1}


def enter(ctx, direction):
    pos = ctx.position().qty
    if pos * direction > 0:  # one entry per direction: already in
        return
    if direction > 0:
        ctx.buy(1 + abs(pos))
    else:
        ctx.sell(1 + abs(pos))


def on_bar(ctx, bar):
    ma = ctx.ta.sma(ctx.params["length"]).value
    above = ctx.state.get("above", 0)
    below = ctx.state.get("below", 0)
    above = above + 1 if bar.close > ma else 0
    below = below + 1 if bar.close < ma else 0
    ctx.state["above"], ctx.state["below"] = above, below
    if above == ctx.params["confirmBars"]:
        enter(ctx, 1)
    if below == ctx.params["confirmBars"]:
        enter(ctx, -1)
