"""Keltner Channels Strategy, by hand: a channel of 2 ATR(10) around the 20-bar EMA of the
close. When the close crosses above the upper line, a buy stop one tick above the bar's high,
kept until the close falls below the EMA or the high reaches the stop price; when it crosses
below the lower line, a sell stop one tick below the low, likewise. One unit; an entry against
the position also closes it."""

PARAMS = {"length": 20, "mult": 2.0, "atrlength": 10}
TICK = 0.01


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
    ctx.state.update(working={}, bprice=0.0, sprice=0.0, armed_b=False, armed_s=False)


def on_bar(ctx, bar):
    follow(ctx)
    s, p = ctx.state, ctx.params
    ma = ctx.ta.ema(p["length"]).value
    width = ctx.ta.atr(p["atrlength"]).value
    upper, lower = ma + width * p["mult"], ma - width * p["mult"]
    before = s.get("before")
    s["before"] = (bar.close, upper, lower)
    cross_up = before is not None and bar.close > upper and before[0] <= before[1]
    cross_down = before is not None and bar.close < lower and before[0] >= before[2]
    if cross_up:
        s["bprice"] = bar.high + TICK
        s["armed_b"] = True
    if cross_down:
        s["sprice"] = bar.low - TICK
        s["armed_s"] = True
    if s["armed_b"] and (bar.close < ma or bar.high >= s["bprice"]):
        cancel(ctx, "KltChLE")
    if cross_up:
        enter(ctx, "KltChLE", 1, s["bprice"])
    if s["armed_s"] and (bar.close > ma or bar.low <= s["sprice"]):
        cancel(ctx, "KltChSE")
    if cross_down:
        enter(ctx, "KltChSE", -1, s["sprice"])
