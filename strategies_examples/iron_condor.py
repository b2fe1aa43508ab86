"""A monthly iron condor: sell the 20-delta strangle 45 days out, buy wings 4 % further out.

Once a month, with no condor open, it sells an iron condor on the bar's symbol: short put and
short call near ``short_delta``, long wings ``width_pct`` % of the price further out (in whole
dollars), the expiry nearest ``dte`` days away. A month whose chain lists no such strikes is
skipped, with the reason in the log. It closes the condor as one order once it has made
``take`` of its maximum profit (the credit received), or ``exit_dte`` days before expiry,
whichever comes first; a
condor still open at expiry is exercised, assigned or expires as the broker settles it (the
fills say which, in ``fill.kind``).

    sandtrade backtest strategies_examples/iron_condor.py --data DEMO

In a back-test the chains are synthesised from the bars (the ``[options]`` settings: 25 %
volatility by default); live, they are the host's.
"""

from datetime import date

PARAMS = {
    "dte": 45,  # days to the expiry to sell (the listed one nearest)
    "short_delta": 0.20,  # |delta| of the short strikes
    "width_pct": 4,  # wing width, % of the price (whole dollars, at least 1)
    "take": 0.5,  # close at this share of the maximum profit
    "exit_dte": 21,  # close this many days before expiry at the latest
    "qty": 1,  # condors per trade
}


def on_bar(ctx, bar):
    s = ctx.state
    p = ctx.params
    if s.get("group"):
        held = [g for g in ctx.options.groups() if g.id == s["group"]]
        if not held:  # settled at expiry (on_fill said how)
            s["group"] = None
            return
        profit = s["credit"] + held[0].value  # value: what closing would pay (negative)
        days_left = (date.fromisoformat(s["expiry"]) - bar.time.date()).days
        if profit >= p["take"] * s["credit"] or days_left <= p["exit_dte"]:
            why = "take profit" if profit >= p["take"] * s["credit"] else "time"
            ctx.log(f"closing {s['group']} ({why}): profit {profit:.2f} of {s['credit']:.2f}")
            ctx.options.close(s["group"], tag="close condor")
            s["group"] = None
        return
    month = bar.time.strftime("%Y-%m")
    if s.get("month") == month:
        return
    s["month"] = month
    width = max(1, round(bar.close * p["width_pct"] / 100))
    try:
        order = ctx.options.order("iron_condor", p["qty"], expiry=f"{p['dte']}d",
                                  short_delta=p["short_delta"], width=width, tag="condor")
    except ValueError as e:  # no such strikes listed this month
        ctx.log(f"no condor in {month}: {e}")
        return
    s["group"] = order
    s["credit"] = 0.0
    s["expiry"] = ""


def on_fill(ctx, fill):
    s = ctx.state
    if fill.kind != "trade":
        ctx.log(f"{fill.kind}: {fill.side} {fill.qty:g} {fill.symbol} at {fill.price:.2f}")
        return
    if fill.order_id == s.get("group"):
        sign = 1 if fill.side == "sell" else -1
        s["credit"] = s.get("credit", 0.0) + sign * fill.price * fill.qty * 100
        # the OCC symbol holds the expiry: ROOT + YYMMDD + C/P + strike
        code = fill.symbol[-15:-9]
        s["expiry"] = f"20{code[:2]}-{code[2:4]}-{code[4:]}"
