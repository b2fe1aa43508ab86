"""Bollinger Bands Strategy, by hand: bands of 2 standard deviations around the 20-bar SMA
of the close. When the close crosses above the lower band, a buy stop at the lower band
(good for the next bar); when it crosses below the upper band, a sell stop at the upper band;
on other bars those orders are cancelled. When one of them fills the other is cancelled (one
group). One unit; an entry against the position also closes it."""

PARAMS = {"length": 20, "mult": 2.0}


def enter(ctx, name, direction, stop):
    """Place the entry ``name`` (replacing its working order): one unit, plus the position it
    reverses; nothing when the position is already that way."""
    cancel(ctx, name)
    pos = ctx.position().qty
    if pos * direction > 0:
        return
    q = 1 + abs(pos)
    oid = ctx.buy(q, stop=stop) if direction > 0 else ctx.sell(q, stop=stop)
    ctx.state["working"][name] = [oid, direction, stop, q]


def cancel(ctx, name):
    w = ctx.state["working"].pop(name, None)
    if w:
        ctx.cancel(w[0])


def follow(ctx):
    """A working entry whose size the position has changed since is placed again."""
    live = {o.id for o in ctx.orders()}
    for name, w in list(ctx.state["working"].items()):
        if w[0] not in live:
            del ctx.state["working"][name]
            continue
        pos = ctx.position().qty
        want = 0 if pos * w[1] > 0 else 1 + abs(pos)
        if want != w[3]:
            enter(ctx, name, w[1], w[2])


def on_start(ctx):
    ctx.state["working"] = {}


def on_fill(ctx, fill):
    working = ctx.state["working"]
    for mine, other in (("BBandLE", "BBandSE"), ("BBandSE", "BBandLE")):
        if mine in working and working[mine][0] == fill.order_id:
            cancel(ctx, other)


def on_bar(ctx, bar):
    follow(ctx)
    p = ctx.params
    basis = ctx.ta.sma(p["length"]).value
    dev = p["mult"] * ctx.ta.stdev(p["length"]).value
    upper, lower = basis + dev, basis - dev
    before = ctx.state.get("before")
    ctx.state["before"] = (bar.close, lower, upper)
    up = before is not None and bar.close > lower and before[0] <= before[1]
    down = before is not None and bar.close < upper and before[0] >= before[2]
    if up:
        enter(ctx, "BBandLE", 1, lower)
    else:
        cancel(ctx, "BBandLE")
    if down:
        enter(ctx, "BBandSE", -1, upper)
    else:
        cancel(ctx, "BBandSE")
