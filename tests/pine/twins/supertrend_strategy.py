"""Supertrend Strategy, by hand: the SuperTrend of factor 3 on a 10-bar ATR around hl2 (Pine's
definition, written out); long when its direction turns up, short when it turns down; each
entry 15 % of the equity in whole shares (at the close), reversing."""

import math

PARAMS = {"atrPeriod": 10, "factor": 3.0}
NAN = float("nan")


def nz(x):
    return 0.0 if x != x else x


def enter(ctx, direction, close):
    pos = ctx.position().qty
    if pos * direction > 0:
        return
    q = math.floor(ctx.account.equity * 15.0 / 100 / close) + abs(pos)
    if direction > 0:
        ctx.buy(q)
    else:
        ctx.sell(q)


def on_bar(ctx, bar):
    s, p = ctx.state, ctx.params
    atr = ctx.ta.atr(p["atrPeriod"])
    mid = (bar.high + bar.low) / 2
    upper = mid + p["factor"] * atr[0]
    lower = mid - p["factor"] * atr[0]
    prev_lower, prev_upper = nz(s.get("lower", NAN)), nz(s.get("upper", NAN))
    prev_close = s.get("close", NAN)
    lower = lower if lower > prev_lower or prev_close < prev_lower else prev_lower
    upper = upper if upper < prev_upper or prev_close > prev_upper else prev_upper
    if atr[1] != atr[1]:
        direction = 1
    elif s.get("trend", NAN) == prev_upper:
        direction = -1 if bar.close > upper else 1
    else:
        direction = 1 if bar.close < lower else -1
    change = direction - s.get("direction", NAN)
    s.update(lower=lower, upper=upper, close=bar.close, direction=direction,
             trend=lower if direction == -1 else upper)
    if change < 0:
        enter(ctx, 1, bar.close)
    if change > 0:
        enter(ctx, -1, bar.close)
