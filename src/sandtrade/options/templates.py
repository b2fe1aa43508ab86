"""Strategy templates: a named multi-leg position built from a chain, checked, and measured.

``build_strategy("iron_condor", chain, expiry="30d", short_delta=0.16, width=5)`` returns a
:class:`StrategyPlan`: the legs (the shared :class:`~sandtrade.models.Leg` list an ``mleg``
order carries), the net price per spread at the legs' marks (positive: a debit, paid;
negative: a credit, received; in option points, x100 = dollars), and the maximum profit,
maximum loss (dollars per spread; None = unlimited) and break-evens (:mod:`.payoff`).

Strikes are chosen by price (``strike=450``, ``short_strike=...``), by an offset from the
spot (``offset=10``: a call 10 above it, a put 10 below; negative goes in the money), by a
width from another leg (``width=5``) or by delta (``short_delta=0.16``: the listed strike
whose |delta| is nearest). Without any, a strike is the one nearest the spot. The expiry is
a selector (:func:`~.contracts.select_expiry`: ``"2026-12-18"``, ``"30d"``, ``"monthly"``).
A stock leg (covered call, protective put, collar) is 100 shares a spread.

Every refusal is a :class:`TemplateError` that names the template and the parameter:
``iron_condor: call_short 440 must be above put_short 450``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sandtrade.errors import SandtradeError
from sandtrade.models import Leg, LegIntent, OptionRight, OrderSide
from sandtrade.options.chain import ChainRow, OptionChain
from sandtrade.options.payoff import PayoffLeg, PayoffSummary, summarise
from sandtrade.options.settings import OptionsSettings

__all__ = ["TEMPLATES", "StrategyPlan", "TemplateError", "build_strategy"]

BUY, SELL = OrderSide.BUY, OrderSide.SELL
CALL, PUT = OptionRight.CALL, OptionRight.PUT


class TemplateError(SandtradeError, ValueError):
    """A template's parameters do not make a position; the message names the parameter."""


@dataclass(frozen=True)
class StrategyPlan:
    """A built template (see the module for units)."""

    name: str
    underlying: str
    expiry: date
    legs: list[Leg]
    payoff_legs: list[PayoffLeg]
    net_price: float
    max_profit: float | None
    max_loss: float | None
    breakevens: list[float]
    spot: float | None = None
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def is_debit(self) -> bool:
        """True when opening it costs money."""
        return self.net_price > 0

    @property
    def cost(self) -> float:
        """Dollars per spread to open it (negative: received)."""
        return round(self.net_price * 100.0, 6)


class _Build:
    """One template being built: its chain, expiry and legs so far."""

    def __init__(self, name: str, chain: OptionChain, expiry: date) -> None:
        self.name, self.chain, self.expiry = name, chain, expiry
        if chain.spot is None:
            raise TemplateError(f"{name}: the {chain.underlying} chain has no spot price")
        self.spot: float = chain.spot
        self.legs: list[tuple[Leg, ChainRow | None, float]] = []

    def fail(self, message: str) -> TemplateError:
        return TemplateError(f"{self.name}: {message}")

    def listed(self, right: OptionRight, label: str, strike: float,
               expiry: date | None = None) -> ChainRow:
        when = expiry or self.expiry
        row = self.chain.find(when, right, strike)
        if row is None:
            strikes = self.chain.strikes(when, right)
            near = sorted(strikes, key=lambda k: abs(k - strike))[:2]
            raise self.fail(f"{label} {strike:g} is not a listed {right.value} strike for "
                            f"{when} (nearest: {', '.join(f'{k:g}' for k in sorted(near))})")
        return row

    def pick(self, right: OptionRight, label: str, *, strike: float | None = None,
             offset: float | None = None, delta: float | None = None,
             default: float | None = None, expiry: date | None = None,
             names: tuple[str, ...] = ()) -> ChainRow:
        """A strike by price, offset from spot, or |delta|; ``names`` are the parameters."""
        given = [n for n, v in zip(names or (label, f"{label}_offset", f"{label}_delta"),
                                   (strike, offset, delta), strict=False) if v is not None]
        if len(given) > 1:
            raise self.fail(f"give one of {', '.join(names)} (got {' and '.join(given)})")
        when = expiry or self.expiry
        rows = self.chain.rows_for(when, right)
        if not rows:
            raise self.fail(f"no {right.value}s listed for {when}")
        if strike is not None:
            return self.listed(right, label, strike, when)
        if delta is not None:
            if not 0 < delta < 1:
                raise self.fail(f"{given[0]} {delta:g} must be between 0 and 1 (an absolute "
                                "delta such as 0.16)")
            priced = [r for r in rows if r.delta is not None]
            if not priced:
                raise self.fail(f"the chain has no deltas for {when}; choose {label} by strike")
            return min(priced, key=lambda r: (abs(abs(r.delta or 0.0) - delta), r.strike))
        if offset is not None:
            target = self.spot + offset if right is CALL else self.spot - offset
        else:
            target = self.spot if default is None else default
        return min(rows, key=lambda r: (abs(r.strike - target), r.strike))

    def add(self, side: OrderSide, row: ChainRow, ratio: int = 1) -> None:
        self.legs.append((Leg(symbol=row.symbol, side=side, ratio=ratio,
                              intent=LegIntent.OPEN), row, row.mark))

    def add_stock(self, side: OrderSide) -> None:
        self.legs.append((Leg(symbol=self.chain.underlying, side=side, ratio=100,
                              intent=LegIntent.OPEN), None, self.spot))

    def above(self, high_label: str, high: ChainRow, low_label: str, low: ChainRow) -> None:
        if high.strike <= low.strike:
            raise self.fail(f"{high_label} {high.strike:g} must be above {low_label} "
                            f"{low.strike:g}")


def _wing(b: _Build, right: OptionRight, label: str, base: ChainRow, direction: int,
          width: float | None, strike: float | None, delta: float | None,
          names: tuple[str, str, str]) -> ChainRow:
    if width is not None:
        if strike is not None or delta is not None:
            raise b.fail(f"give one of {', '.join(names)}")
        if width <= 0:
            raise b.fail(f"width {width:g} must be above 0")
        return b.listed(right, label, round(base.strike + direction * width, 6))
    if strike is None and delta is None:
        raise b.fail(f"give the {label} leg by {' or '.join(names)}")
    return b.pick(right, label, strike=strike, delta=delta, names=(names[0], names[2]))


# ----------------------------------------------------------------------------- verticals


def bull_call_spread(b: _Build, *, long_strike: float | None = None,
                     long_offset: float | None = None, long_delta: float | None = None,
                     short_strike: float | None = None, width: float | None = None,
                     short_delta: float | None = None) -> None:
    """Buy a call, sell a higher call (a debit)."""
    low = b.pick(CALL, "long_strike", strike=long_strike, offset=long_offset, delta=long_delta,
                 names=("long_strike", "long_offset", "long_delta"))
    high = _wing(b, CALL, "short_strike", low, +1, width, short_strike, short_delta,
                 ("short_strike", "width", "short_delta"))
    b.above("short_strike", high, "long_strike", low)
    b.add(BUY, low)
    b.add(SELL, high)


def bear_put_spread(b: _Build, *, long_strike: float | None = None,
                    long_offset: float | None = None, long_delta: float | None = None,
                    short_strike: float | None = None, width: float | None = None,
                    short_delta: float | None = None) -> None:
    """Buy a put, sell a lower put (a debit)."""
    high = b.pick(PUT, "long_strike", strike=long_strike, offset=long_offset,
                  delta=long_delta, names=("long_strike", "long_offset", "long_delta"))
    low = _wing(b, PUT, "short_strike", high, -1, width, short_strike, short_delta,
                ("short_strike", "width", "short_delta"))
    b.above("long_strike", high, "short_strike", low)
    b.add(BUY, high)
    b.add(SELL, low)


def bull_put_spread(b: _Build, *, short_strike: float | None = None,
                    short_offset: float | None = None, short_delta: float | None = None,
                    long_strike: float | None = None, width: float | None = None,
                    long_delta: float | None = None) -> None:
    """Sell a put, buy a lower put (a credit)."""
    high = b.pick(PUT, "short_strike", strike=short_strike, offset=short_offset,
                  delta=short_delta, names=("short_strike", "short_offset", "short_delta"))
    low = _wing(b, PUT, "long_strike", high, -1, width, long_strike, long_delta,
                ("long_strike", "width", "long_delta"))
    b.above("short_strike", high, "long_strike", low)
    b.add(SELL, high)
    b.add(BUY, low)


def bear_call_spread(b: _Build, *, short_strike: float | None = None,
                     short_offset: float | None = None, short_delta: float | None = None,
                     long_strike: float | None = None, width: float | None = None,
                     long_delta: float | None = None) -> None:
    """Sell a call, buy a higher call (a credit)."""
    low = b.pick(CALL, "short_strike", strike=short_strike, offset=short_offset,
                 delta=short_delta, names=("short_strike", "short_offset", "short_delta"))
    high = _wing(b, CALL, "long_strike", low, +1, width, long_strike, long_delta,
                 ("long_strike", "width", "long_delta"))
    b.above("long_strike", high, "short_strike", low)
    b.add(SELL, low)
    b.add(BUY, high)


# ----------------------------------------------------------------------------- volatility


def _side(b: _Build, side: str) -> OrderSide:
    if side not in ("long", "short"):
        raise b.fail(f"side {side!r} must be 'long' or 'short'")
    return BUY if side == "long" else SELL


def straddle(b: _Build, *, strike: float | None = None, offset: float | None = None,
             side: str = "long") -> None:
    """A call and a put at one strike, both bought (``side="long"``) or both sold."""
    s = _side(b, side)
    call = b.pick(CALL, "strike", strike=strike, offset=offset, names=("strike", "offset"))
    put = b.listed(PUT, "strike", call.strike)
    b.add(s, call)
    b.add(s, put)


def strangle(b: _Build, *, put_strike: float | None = None, call_strike: float | None = None,
             offset: float | None = None, delta: float | None = None,
             side: str = "long") -> None:
    """An out-of-the-money put and call, both bought or both sold; by strikes, by one
    ``offset`` each side of the spot, or by one ``delta``."""
    s = _side(b, side)
    put = b.pick(PUT, "put_strike", strike=put_strike, offset=offset, delta=delta,
                 names=("put_strike", "offset", "delta"))
    call = b.pick(CALL, "call_strike", strike=call_strike, offset=offset, delta=delta,
                  names=("call_strike", "offset", "delta"))
    b.above("call_strike", call, "put_strike", put)
    b.add(s, put)
    b.add(s, call)


def iron_condor(b: _Build, *, put_short: float | None = None, call_short: float | None = None,
                short_delta: float | None = None, offset: float | None = None,
                width: float | None = None, put_long: float | None = None,
                call_long: float | None = None) -> None:
    """Sell a put spread and a call spread around the spot (a credit): shorts by strikes,
    ``short_delta`` or ``offset``; wings by ``width`` or ``put_long``/``call_long``."""
    if put_short is not None and call_short is not None and call_short <= put_short:
        raise b.fail(f"call_short {call_short:g} must be above put_short {put_short:g}")
    ps = b.pick(PUT, "put_short", strike=put_short, offset=offset, delta=short_delta,
                names=("put_short", "offset", "short_delta"))
    cs = b.pick(CALL, "call_short", strike=call_short, offset=offset, delta=short_delta,
                names=("call_short", "offset", "short_delta"))
    b.above("call_short", cs, "put_short", ps)
    pl = _wing(b, PUT, "put_long", ps, -1, width, put_long, None,
               ("put_long", "width", "put_long_delta"))
    cl = _wing(b, CALL, "call_long", cs, +1, width, call_long, None,
               ("call_long", "width", "call_long_delta"))
    b.above("put_short", ps, "put_long", pl)
    b.above("call_long", cl, "call_short", cs)
    b.add(BUY, pl)
    b.add(SELL, ps)
    b.add(SELL, cs)
    b.add(BUY, cl)


def iron_butterfly(b: _Build, *, strike: float | None = None, offset: float | None = None,
                   width: float | None = None, put_long: float | None = None,
                   call_long: float | None = None) -> None:
    """Sell a straddle, buy a put below and a call above (a credit)."""
    cs = b.pick(CALL, "strike", strike=strike, offset=offset, names=("strike", "offset"))
    ps = b.listed(PUT, "strike", cs.strike)
    pl = _wing(b, PUT, "put_long", ps, -1, width, put_long, None,
               ("put_long", "width", "put_long_delta"))
    cl = _wing(b, CALL, "call_long", cs, +1, width, call_long, None,
               ("call_long", "width", "call_long_delta"))
    b.above("strike", ps, "put_long", pl)
    b.above("call_long", cl, "strike", cs)
    b.add(BUY, pl)
    b.add(SELL, ps)
    b.add(SELL, cs)
    b.add(BUY, cl)


def butterfly(b: _Build, *, strike: float | None = None, offset: float | None = None,
              width: float | None = None, right: str = "call") -> None:
    """Buy one below, sell two at ``strike``, buy one above, ``width`` apart (a debit)."""
    r = _right(b, right)
    mid = b.pick(r, "strike", strike=strike, offset=offset, names=("strike", "offset"))
    if width is None:
        raise b.fail("give the wings' distance as width")
    low = _wing(b, r, "lower wing", mid, -1, width, None, None, ("", "width", ""))
    high = _wing(b, r, "upper wing", mid, +1, width, None, None, ("", "width", ""))
    b.add(BUY, low)
    b.add(SELL, mid, ratio=2)
    b.add(BUY, high)


# ----------------------------------------------------------------------------- time spreads


def _right(b: _Build, right: str) -> OptionRight:
    try:
        return OptionRight(right)
    except ValueError:
        raise b.fail(f"right {right!r} must be 'call' or 'put'") from None


def _far(b: _Build, far_expiry: str | date | None) -> date:
    if far_expiry is None:
        raise b.fail("give far_expiry (the long leg's expiry, after expiry)")
    try:
        far = b.chain.select_expiry(far_expiry)
    except ValueError as e:
        raise b.fail(f"far_{e}") from None
    if far <= b.expiry:
        raise b.fail(f"far_expiry {far} must be after expiry {b.expiry}")
    return far


def calendar(b: _Build, *, far_expiry: str | date | None = None,
             strike: float | None = None, offset: float | None = None,
             right: str = "call") -> None:
    """Sell the near expiry, buy the far one, at one strike (a debit)."""
    r = _right(b, right)
    far = _far(b, far_expiry)
    near = b.pick(r, "strike", strike=strike, offset=offset, names=("strike", "offset"))
    b.add(SELL, near)
    b.add(BUY, b.listed(r, "strike", near.strike, far))


def diagonal(b: _Build, *, far_expiry: str | date | None = None,
             short_strike: float | None = None, short_offset: float | None = None,
             short_delta: float | None = None, long_strike: float | None = None,
             long_offset: float | None = None, long_delta: float | None = None,
             right: str = "call") -> None:
    """Sell a near-expiry option, buy a far-expiry one at another strike (a debit)."""
    r = _right(b, right)
    far = _far(b, far_expiry)
    short = b.pick(r, "short_strike", strike=short_strike, offset=short_offset,
                   delta=short_delta, names=("short_strike", "short_offset", "short_delta"))
    long = b.pick(r, "long_strike", strike=long_strike, offset=long_offset, delta=long_delta,
                  expiry=far, names=("long_strike", "long_offset", "long_delta"))
    if long.strike == short.strike:
        raise b.fail(f"long_strike {long.strike:g} equals short_strike; that is a calendar")
    b.add(SELL, short)
    b.add(BUY, long)


# ----------------------------------------------------------------------------- with stock


def covered_call(b: _Build, *, strike: float | None = None, offset: float | None = None,
                 delta: float | None = None) -> None:
    """Hold 100 shares, sell a call on them."""
    call = b.pick(CALL, "strike", strike=strike, offset=offset, delta=delta,
                  names=("strike", "offset", "delta"))
    b.add_stock(BUY)
    b.add(SELL, call)


def protective_put(b: _Build, *, strike: float | None = None, offset: float | None = None,
                   delta: float | None = None) -> None:
    """Hold 100 shares, buy a put under them."""
    put = b.pick(PUT, "strike", strike=strike, offset=offset, delta=delta,
                 names=("strike", "offset", "delta"))
    b.add_stock(BUY)
    b.add(BUY, put)


def collar(b: _Build, *, put_strike: float | None = None, put_offset: float | None = None,
           put_delta: float | None = None, call_strike: float | None = None,
           call_offset: float | None = None, call_delta: float | None = None) -> None:
    """Hold 100 shares, buy a put below and sell a call above."""
    put = b.pick(PUT, "put_strike", strike=put_strike, offset=put_offset, delta=put_delta,
                 names=("put_strike", "put_offset", "put_delta"))
    call = b.pick(CALL, "call_strike", strike=call_strike, offset=call_offset,
                  delta=call_delta, names=("call_strike", "call_offset", "call_delta"))
    b.above("call_strike", call, "put_strike", put)
    b.add_stock(BUY)
    b.add(BUY, put)
    b.add(SELL, call)


TEMPLATES: dict[str, Callable[..., None]] = {f.__name__: f for f in (
    bull_call_spread, bear_put_spread, bull_put_spread, bear_call_spread, straddle, strangle,
    iron_condor, iron_butterfly, butterfly, calendar, diagonal, covered_call, protective_put,
    collar)}


def build_strategy(name: str, chain: OptionChain, *, expiry: str | date = "30d",
                   settings: OptionsSettings | None = None, **params: Any) -> StrategyPlan:
    """Build template ``name`` from ``chain`` (see the module); ``TemplateError`` names what
    is wrong."""
    template = TEMPLATES.get(name)
    if template is None:
        raise TemplateError(f"unknown strategy {name!r} (known: {', '.join(sorted(TEMPLATES))})")
    allowed = [p for p in inspect.signature(template).parameters if p != "b"]
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise TemplateError(f"{name}: unknown parameter(s) {', '.join(unknown)} "
                            f"(allowed: expiry, {', '.join(allowed)})")
    try:
        when = chain.select_expiry(expiry)
    except ValueError as e:
        raise TemplateError(f"{name}: {e}") from None
    b = _Build(name, chain, when)
    template(b, **params)
    conf = settings or OptionsSettings()
    legs = [PayoffLeg.of(leg, price, row.iv if row else None) for leg, row, price in b.legs]
    net = sum(leg.qty * leg.multiplier * leg.price for leg in legs) / 100.0
    summary: PayoffSummary = summarise(legs, rate=conf.rate,
                                       dividend_yield=conf.dividend_for(chain.underlying),
                                       vol=conf.volatility_for(chain.underlying))
    return StrategyPlan(name, chain.underlying, when, [leg for leg, _, _ in b.legs], legs,
                        round(net, 6), summary.max_profit, summary.max_loss,
                        summary.breakevens, chain.spot, {"expiry": expiry, **params})
