"""Black-Scholes-Merton prices, greeks and implied volatility, from QuantLib.

The library: QuantLib (the ``QuantLib`` wheel, 1.44 here), not a formula of ours. Chosen over
vollib/py_vollib and py_vollib_vectorized after trying all three on Python 3.11:

* QuantLib installs as one self-contained abi3 wheel with no dependencies; vollib 1.0.11
  (py_vollib 1.0.12 is now a shim over it) pulls numpy, scipy, pandas, simplejson and three
  small packages, and takes 1.4 s to import; py_vollib_vectorized (last release 2021)
  monkey-patches py_vollib and needs numba.
* Speed, both priced one contract at a time (neither is vectorised; a numpy formula would be
  our own): price plus delta, gamma, theta and vega of 2,000 contracts took 10 ms with
  QuantLib's ``BlackCalculator`` and 59 ms with vollib's analytical greeks on this machine.
* Both agree with Hull's textbook value to the last digit (4.759422392871536).
* American exercise, where it matters (early exercise of deep puts, dividends), is in the
  same library (Barone-Adesi-Whaley, binomial and finite-difference engines) if we need it;
  today every price here is European, which is what put-call parity and the listed greeks
  of vendors assume. Implied volatility is QuantLib's ``blackFormulaImpliedStdDev`` solved to
  1e-12 in price.

Units, as brokers show them (Alpaca's snapshot greeks): ``delta`` per 1 of the underlying,
``gamma`` per 1 of the underlying, ``theta`` per calendar day, ``vega`` and ``rho`` per one
percentage point (0.01) of volatility and of the rate. Time is ACT/365: calendar days to the
expiry moment (16:00 New York on the expiry date) over 365.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta
from types import ModuleType
from typing import NamedTuple

from sandtrade.models import OptionRight

__all__ = ["Greeks", "bsm_greeks", "bsm_price", "expiry_moment", "implied_volatility",
           "quantlib", "years_to_expiry"]

_SECONDS_PER_YEAR = 365.0 * 24 * 3600
_ql: ModuleType | None = None


def quantlib() -> ModuleType:
    """QuantLib, imported on first use: 70-90 ms of CPU that a back-test without options never
    needs (every sandbox worker paid it at boot). A worker imports it here before it confines
    itself whenever its strategy may price options (:mod:`sandtrade.sandbox.worker.boot`);
    one that did not cannot read the library's files afterwards, and says so."""
    global _ql
    if _ql is None:
        try:
            import QuantLib
        except (ImportError, OSError) as e:
            raise RuntimeError(
                "options pricing needs QuantLib, which this sandbox worker did not load before "
                "it confined itself (a worker loads it when the strategy's source names "
                f"`options` or an option symbol): {type(e).__name__}") from None
        _ql = QuantLib
    return _ql


class Greeks(NamedTuple):
    """A contract's theoretical price and sensitivities (per share, see the module's units)."""

    price: float
    delta: float
    gamma: float
    theta: float
    vega: float
    rho: float


def _new_york_close(day: date) -> datetime:
    """16:00 New York time on ``day``, in UTC: 20:00 while US daylight saving time is on
    (second Sunday of March to first Sunday of November, the rule since 2007), else 21:00.
    Computed, not read from a time-zone database, so that a sandboxed worker (which reads no
    files) prices exactly as the host does, and as the broker settles expiries
    (``broker.multileg.session_end``)."""
    march = date(day.year, 3, 8)
    dst_start = march.replace(day=8 + (6 - march.weekday()) % 7)
    nov = date(day.year, 11, 1)
    dst_end = nov.replace(day=1 + (6 - nov.weekday()) % 7)
    return datetime.combine(day, time(20 if dst_start <= day < dst_end else 21), UTC)


_MOMENTS: dict[date, datetime] = {}


def expiry_moment(expiry: date) -> datetime:
    """When a contract expiring on ``expiry`` stops trading: 16:00 New York time, in UTC."""
    moment = _MOMENTS.get(expiry)
    if moment is None:
        moment = _MOMENTS[expiry] = _new_york_close(expiry)
    return moment


def years_to_expiry(expiry: date, now: datetime) -> float:
    """Years (ACT/365) from ``now`` (timezone-aware; naive is taken as UTC) to ``expiry``'s
    close; 0 once it has passed."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    seconds = (expiry_moment(expiry) - now) / timedelta(seconds=1)
    return max(0.0, seconds / _SECONDS_PER_YEAR)


def _checked(spot: float, strike: float, years: float, vol: float) -> None:
    for name, value in (("spot", spot), ("strike", strike)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not (math.isfinite(years) and years >= 0):
        raise ValueError(f"years to expiry must be 0 or more, got {years!r}")
    if not (math.isfinite(vol) and vol > 0):
        raise ValueError(f"volatility must be a positive number, got {vol!r}")


def _expired(right: OptionRight, spot: float, strike: float) -> Greeks:
    # At expiry the option is its intrinsic value; delta is 1 in the money, 0 out.
    if right is OptionRight.CALL:
        return Greeks(max(0.0, spot - strike), 1.0 if spot > strike else 0.0, 0.0, 0.0, 0.0, 0.0)
    return Greeks(max(0.0, strike - spot), -1.0 if spot < strike else 0.0, 0.0, 0.0, 0.0, 0.0)


def bsm_greeks(right: OptionRight, spot: float, strike: float, years: float, vol: float,
               rate: float, dividend_yield: float = 0.0) -> Greeks:
    """Price and greeks of a European option under Black-Scholes-Merton (QuantLib's
    ``BlackCalculator``). ``years`` is the time to expiry; at 0 the option is worth its
    intrinsic value."""
    _checked(spot, strike, years, vol)
    if years <= 0.0:
        return _expired(right, spot, strike)
    ql = quantlib()
    calc = ql.BlackCalculator(
        ql.PlainVanillaPayoff(ql.Option.Call if right is OptionRight.CALL else ql.Option.Put,
                              strike),
        spot * math.exp((rate - dividend_yield) * years), vol * math.sqrt(years),
        math.exp(-rate * years))
    # QuantLib's value of a far out-of-the-money option can be -1e-15: rounding, not a price
    return Greeks(max(0.0, calc.value()), calc.delta(spot), calc.gamma(spot),
                  calc.theta(spot, years) / 365.0, calc.vega(years) / 100.0,
                  calc.rho(years) / 100.0)


def bsm_price(right: OptionRight, spot: float, strike: float, years: float, vol: float,
              rate: float, dividend_yield: float = 0.0) -> float:
    """The Black-Scholes-Merton price of a European option (QuantLib's ``blackFormula``)."""
    _checked(spot, strike, years, vol)
    if years <= 0.0:
        return _expired(right, spot, strike).price
    ql = quantlib()
    return max(0.0, float(ql.blackFormula(
        ql.Option.Call if right is OptionRight.CALL else ql.Option.Put, strike,
        spot * math.exp((rate - dividend_yield) * years), vol * math.sqrt(years),
        math.exp(-rate * years))))


def implied_volatility(price: float, right: OptionRight, spot: float, strike: float,
                       years: float, rate: float, dividend_yield: float = 0.0) -> float:
    """The volatility at which the Black-Scholes-Merton price is ``price``.

    Raises ``ValueError`` naming the bound when no volatility gives that price: at or below
    the discounted intrinsic value, at or above the discounted forward (a call) or strike (a
    put), or at expiry.
    """
    _checked(spot, strike, years, 1.0)
    if not math.isfinite(price):
        raise ValueError(f"price must be a number, got {price!r}")
    if years <= 0.0:
        raise ValueError("no implied volatility at or after expiry")
    discount = math.exp(-rate * years)
    forward = spot * math.exp((rate - dividend_yield) * years)
    call = right is OptionRight.CALL
    low = discount * max(0.0, forward - strike if call else strike - forward)
    high = discount * (forward if call else strike)
    if not low < price < high:
        raise ValueError(
            f"price {price:g} has no implied volatility: a {right.value} at strike {strike:g} "
            f"with spot {spot:g} is worth more than {low:.6g} (its discounted intrinsic value) "
            f"and less than {high:.6g}")
    ql = quantlib()
    std = ql.blackFormulaImpliedStdDev(ql.Option.Call if call else ql.Option.Put, strike,
                                       forward, price,
                                       discount, 0.0, ql.nullDouble(), 1e-12, 200)
    return float(std) / math.sqrt(years)
