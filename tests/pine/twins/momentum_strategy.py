"""Momentum Strategy, by hand: momentum = close - close 12 bars ago, and its own one-bar
change. While both are positive, a buy stop one tick above the bar's high (renewed every bar);
while both are negative, a sell stop one tick below the low; otherwise those orders are
cancelled. One unit; an entry against the position also closes it."""

PARAMS = {"length": 12}
TICK = 0.01
NAN = float("nan")


def enter(ctx, name, direction, stop):
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


def on_bar(ctx, bar):
    follow(ctx)
    n = ctx.params["length"]
    closes = ctx.history(n + 1)
    mom0 = bar.close - closes[0] if len(closes) == n + 1 else NAN
    mom1 = mom0 - ctx.state.get("mom0", NAN)
    ctx.state["mom0"] = mom0
    if mom0 > 0 and mom1 > 0:
        enter(ctx, "MomLE", 1, bar.high + TICK)
    else:
        cancel(ctx, "MomLE")
    if mom0 < 0 and mom1 < 0:
        enter(ctx, "MomSE", -1, bar.low - TICK)
    else:
        cancel(ctx, "MomSE")
