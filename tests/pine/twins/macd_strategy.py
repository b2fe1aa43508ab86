"""MACD Strategy, by hand: MACD = EMA(12) - EMA(26) of the close, its signal the 9-bar EMA of
the MACD (seeded, as Pine's, with the mean of its first 9 values); long when MACD - signal
crosses above 0, short when below; one unit, reversing."""

PARAMS = {"fastLength": 12, "slowlength": 26, "MACDLength": 9}


def enter(ctx, direction):
    pos = ctx.position().qty
    if pos * direction > 0:
        return
    if direction > 0:
        ctx.buy(1 + abs(pos))
    else:
        ctx.sell(1 + abs(pos))


def on_bar(ctx, bar):
    p, s = ctx.params, ctx.state
    macd = ctx.ta.ema(p["fastLength"]).value - ctx.ta.ema(p["slowlength"]).value
    n = p["MACDLength"]
    signal = s.get("signal")
    if macd == macd:
        if signal is None:
            seed = s.setdefault("seed", [])
            seed.append(macd)
            if len(seed) == n:
                signal = sum(seed) / n
        else:
            signal = 2 / (n + 1) * macd + (1 - 2 / (n + 1)) * signal
    s["signal"] = signal
    delta = macd - signal if signal is not None else float("nan")
    before = s.get("delta", float("nan"))
    s["delta"] = delta
    if delta > 0 and before <= 0:
        enter(ctx, 1)
    if delta < 0 and before >= 0:
        enter(ctx, -1)
