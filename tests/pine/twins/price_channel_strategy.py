"""Price Channel Strategy, by hand: once 20 bars have passed, on every bar a buy stop at the
highest high of the last 20 bars and a sell stop at their lowest low (renewed every bar).
One unit; an entry against the position also closes it, and none is placed with the position
already that way."""

PARAMS = {"length": 20}


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
    hh = ctx.ta.highest(n, "high").value
    ll = ctx.ta.lowest(n, "low").value
    if ctx.bar_index >= n:
        enter(ctx, "PChLE", 1, hh)
        enter(ctx, "PChSE", -1, ll)
