"""Trade TradingView alerts (or any program's signals) routed to this strategy.

A signal's action is buy/long, sell/short, or close/flat; a signal that names a quantity
trades that many units, otherwise `size` of the buying power. Each entry can carry a stop
loss and a take profit a percentage away from its fill. Signals reach a live strategy through
a route (see `sandtrade signals --help`); a back-test has no signals, so this one only holds
what it was told.

    sandtrade check NAME.py
    sandtrade strategies upload NAME.py --symbol DEMO
"""

PARAMS = {
    "size": param(0.5, min=0.01, max=1.0, title="Size",
                  help="share of the buying power per entry when the alert names no quantity"),
    "allow_short": param(False, title="Go short", help="sell short on a sell/short alert"),
    "stop_percent": param(0.0, min=0.0, max=50.0, title="Stop loss [%]",
                          help="0: none"),
    "take_percent": param(0.0, min=0.0, max=100.0, title="Take profit [%]",
                          help="0: none"),
}


def exits(ctx):
    """The stop loss and take profit of an entry, as buy()/sell() take them."""
    out = {}
    if ctx.params["stop_percent"] > 0:
        out["sl_percent"] = ctx.params["stop_percent"]
    if ctx.params["take_percent"] > 0:
        out["tp_percent"] = ctx.params["take_percent"]
    return out


def on_signal(ctx, signal):
    action = signal.action.lower()
    size = signal.qty or ctx.params["size"]
    if action in ("buy", "long"):
        ctx.close_position()
        ctx.buy(size, symbol=signal.symbol, **exits(ctx))
    elif action in ("sell", "short"):
        ctx.close_position()
        if ctx.params["allow_short"]:
            ctx.sell(size, symbol=signal.symbol, **exits(ctx))
    elif action in ("close", "flat", "exit"):
        ctx.close_position()
    else:
        ctx.log(f"ignored a signal with the action {signal.action!r}")


def on_bar(ctx, bar):
    pass  # the alerts decide; bars only move the prices the orders fill at
