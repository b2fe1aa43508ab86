"""What a multi-leg position pays: at expiry and on any day before, its maximum profit and
loss, and its break-evens.

The legs are :class:`PayoffLeg` (one spread's worth: ``qty`` signed, in shares for a stock leg
and contracts for an option, at its entry ``price`` per share). When every option leg expires
on the same day the payoff there is piecewise linear, so :func:`summarise` is exact: it is
evaluated at 0 and at each strike, and the slope past the highest strike says whether profit
or loss is unlimited. With two expiries (calendar, diagonal) the later legs are still alive at
the first expiry; they are valued with Black-Scholes-Merton at their own volatility and the
summary is read from a fine grid of prices (0.05x to 3x the highest strike).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from datetime import date, datetime
from typing import NamedTuple

from sandtrade.models import Leg, OptionRight
from sandtrade.options.contracts import OptionContract
from sandtrade.options.pricing import bsm_price, expiry_moment, years_to_expiry

__all__ = ["PayoffLeg", "PayoffSummary", "horizon", "pnl_at", "summarise"]


class PayoffLeg(NamedTuple):
    """One leg of one spread, as the payoff sees it."""

    symbol: str
    right: OptionRight | None        # None: a stock leg
    strike: float | None
    expiry: date | None
    qty: float                       # signed: + bought, - sold; shares or contracts per spread
    multiplier: float
    price: float                     # entry price per share (the mark it is priced at)
    iv: float | None = None          # for valuing it before its expiry

    @classmethod
    def of(cls, leg: Leg, price: float, iv: float | None = None,
           quantity: float = 1.0) -> PayoffLeg:
        """A :class:`~sandtrade.models.Leg` of ``quantity`` spreads at ``price``."""
        qty = leg.side.sign * leg.ratio * quantity
        try:
            c = OptionContract.parse(leg.symbol)
        except ValueError:
            return cls(leg.symbol, None, None, None, qty, 1.0, price, None)
        return cls(c.symbol, c.right, c.strike, c.expiry, qty, 100.0, price, iv)


class PayoffSummary(NamedTuple):
    """Per spread, in dollars: ``None`` is unlimited. Break-evens in underlying prices."""

    max_profit: float | None
    max_loss: float | None
    breakevens: list[float]


def horizon(legs: Sequence[PayoffLeg]) -> date | None:
    """The first expiry among the legs (None: stock only)."""
    expiries = [leg.expiry for leg in legs if leg.expiry is not None]
    return min(expiries) if expiries else None


def _leg_value(leg: PayoffLeg, spot: float, when: datetime | None, rate: float,
               dividend_yield: float, vol: float) -> float:
    if leg.right is None or leg.strike is None or leg.expiry is None:
        return spot
    years = 0.0 if when is None else years_to_expiry(leg.expiry, when)
    if years <= 0.0 or spot <= 0.0:
        return max(0.0, spot - leg.strike if leg.right is OptionRight.CALL
                   else leg.strike - spot)
    return bsm_price(leg.right, spot, leg.strike, years, leg.iv or vol, rate, dividend_yield)


def pnl_at(legs: Sequence[PayoffLeg], spot: float, when: datetime | None = None, *,
           rate: float = 0.0, dividend_yield: float = 0.0, vol: float = 0.25) -> float:
    """P&L in dollars of the legs if the underlying is at ``spot`` at ``when`` (None: the
    first expiry, where legs expiring then are worth their intrinsic value and later ones
    their BSM value at their ``iv``, else ``vol``)."""
    at = when
    first = horizon(legs)
    if when is None and first is not None and any(
            leg.expiry is not None and leg.expiry > first for leg in legs):
        at = expiry_moment(first)
    return sum(leg.qty * leg.multiplier
               * (_leg_value(leg, spot, at, rate, dividend_yield, vol) - leg.price)
               for leg in legs)


def _crossings(points: Sequence[tuple[float, float]]) -> list[float]:
    out: list[float] = []
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        if y0 == 0.0 and (not out or abs(out[-1] - x0) > 1e-9):
            out.append(x0)
        elif y0 * y1 < 0.0:
            out.append(x0 + (0.0 - y0) * (x1 - x0) / (y1 - y0))
    return out


def summarise(legs: Sequence[PayoffLeg], *, rate: float = 0.0, dividend_yield: float = 0.0,
              vol: float = 0.25) -> PayoffSummary:
    """Maximum profit, maximum loss and break-evens at the first expiry (see the module)."""
    strikes = sorted({leg.strike for leg in legs if leg.strike is not None})
    kw = {"rate": rate, "dividend_yield": dividend_yield, "vol": vol}
    first = horizon(legs)
    one_expiry = all(leg.expiry in (None, first) for leg in legs)
    if one_expiry:
        xs = [0.0, *strikes]
        points = [(x, pnl_at(legs, x, **kw)) for x in xs]  # type: ignore[arg-type]
        slope = sum(leg.qty * leg.multiplier for leg in legs
                    if leg.right is None or leg.right is OptionRight.CALL)
        ys = [y for _, y in points]
        max_profit = None if slope > 1e-9 else max(ys)
        max_loss = None if slope < -1e-9 else -min(ys)
        breakevens = _crossings(points)
        last_x, last_y = points[-1]
        if abs(slope) > 1e-9 and last_y != 0.0 and (last_y > 0) != (slope > 0):
            breakevens.append(last_x - last_y / slope)
    else:
        top = max(strikes) if strikes else 1.0
        n = 6000
        xs = sorted({*(top * (0.05 + 2.95 * i / n) for i in range(n + 1)), *strikes})
        points = [(x, pnl_at(legs, x, **kw)) for x in xs]  # type: ignore[arg-type]
        ys = [y for _, y in points]
        max_profit, max_loss = max(ys), -min(ys)
        breakevens = _crossings(points)
    rounded = sorted({round(b, 4) for b in breakevens if math.isfinite(b) and b >= 0})
    return PayoffSummary(None if max_profit is None else round(max_profit, 6),
                         None if max_loss is None else round(max_loss, 6), rounded)
