"""Option chains: the rows of one underlying at one moment, and the synthetic chain.

A synthetic chain lists strikes around the spot on a grid (``[options] strike_step``, or about
1 % of the spot), the next weekly and monthly expiries, prices each contract with
Black-Scholes-Merton at a volatility from a simple smile (:func:`smile_volatility`), and
quotes it with a spread (:func:`quoted`). Recorded chains (:mod:`.loader`) are the same type.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

from sandtrade.models import OptionRight, Quote
from sandtrade.options.contracts import (
    fridays,
    monthly_expiries,
    nearest,
    occ_symbol,
    select_expiry,
)
from sandtrade.options.pricing import bsm_greeks, years_to_expiry
from sandtrade.options.settings import OptionsSettings

__all__ = ["ChainRow", "OptionChain", "auto_strike_step", "quoted", "smile_volatility",
           "synthetic_chain", "synthetic_row"]


class ChainRow(NamedTuple):
    """One contract of a chain: its quote, its volatility and its greeks (per share; units as
    :mod:`.pricing` says). ``None`` where a recorded chain gave nothing."""

    symbol: str
    underlying: str
    expiry: date
    right: OptionRight
    strike: float
    bid: float
    ask: float
    last: float | None = None
    volume: float | None = None
    open_interest: float | None = None
    iv: float | None = None
    delta: float | None = None
    gamma: float | None = None
    theta: float | None = None
    vega: float | None = None
    theo: float | None = None

    @property
    def mark(self) -> float:
        """Where the contract is marked: the mid of a two-sided quote, else the last trade,
        else the ask (a bid of 0 with an ask is a one-sided market)."""
        if self.bid > 0 and self.ask > 0:
            return (self.bid + self.ask) / 2.0
        if self.last is not None and self.last > 0:
            return self.last
        return self.ask


@dataclass
class OptionChain:
    """The listed contracts of ``underlying`` at ``as_of``, with the spot they were priced at."""

    underlying: str
    as_of: datetime
    spot: float | None
    rows: list[ChainRow]
    _by_symbol: dict[str, ChainRow] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_symbol = {r.symbol: r for r in self.rows}

    def __iter__(self) -> Iterator[ChainRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def get(self, symbol: str) -> ChainRow | None:
        """The row of ``symbol`` (canonical OCC), or None when it is not in the chain."""
        return self._by_symbol.get(symbol)

    def expiries(self) -> list[date]:
        """The listed expiries, soonest first."""
        return sorted({r.expiry for r in self.rows})

    def select_expiry(self, selector: str | date) -> date:
        """The listed expiry ``selector`` names (:func:`.contracts.select_expiry`)."""
        return select_expiry(selector, self.expiries(), self.as_of.date())

    def rows_for(self, expiry: date, right: OptionRight | None = None) -> list[ChainRow]:
        """The rows of one expiry (and one right), by strike."""
        return sorted((r for r in self.rows if r.expiry == expiry
                       and (right is None or r.right is right)), key=lambda r: r.strike)

    def strikes(self, expiry: date, right: OptionRight) -> list[float]:
        """The listed strikes of one expiry and right, ascending."""
        return [r.strike for r in self.rows_for(expiry, right)]

    def find(self, expiry: date, right: OptionRight, strike: float) -> ChainRow | None:
        """The row of one contract, or None when it is not listed."""
        return self._by_symbol.get(occ_symbol(self.underlying, expiry, right, strike))

    def atm_strike(self, expiry: date) -> float:
        """The listed strike of ``expiry`` nearest the spot."""
        strikes = sorted({r.strike for r in self.rows if r.expiry == expiry})
        if not strikes:
            raise ValueError(f"{self.underlying}: nothing listed for {expiry}")
        return nearest(strikes, self.spot if self.spot is not None else strikes[len(strikes) // 2])

    def quote(self, symbol: str) -> Quote | None:
        """``symbol``'s quote as the broker takes it (None when not in the chain)."""
        row = self._by_symbol.get(symbol)
        if row is None:
            return None
        return Quote(symbol, self.as_of, row.bid, row.ask)


def auto_strike_step(spot: float) -> float:
    """A listed-looking strike step for ``spot``: the 1-2.5-5 number nearest 1 % of it."""
    raw = max(spot * 0.01, 0.5)
    exponent = math.floor(math.log10(raw))
    return nearest([m * 10.0 ** exponent for m in (1.0, 2.5, 5.0, 10.0)], raw)


def smile_volatility(atm: float, skew: float, smile: float, spot: float, strike: float,
                     years: float, rate: float, dividend_yield: float) -> float:
    """The synthetic chain's volatility at ``strike``: ``atm + skew*m + smile*m**2`` with
    ``m = ln(K/F)/sqrt(T)`` (standardised moneyness), floored at 1 %.

    Standardising by sqrt(T) keeps the same shape across expiries in delta terms, as a
    quoted surface roughly has it; a zero skew and smile is a flat volatility.
    """
    if years <= 0:
        return atm
    forward = spot * math.exp((rate - dividend_yield) * years)
    m = math.log(strike / forward) / math.sqrt(years)
    return max(0.01, atm + skew * m + smile * m * m)


def quoted(theo: float, settings: OptionsSettings) -> tuple[float, float]:
    """Bid and ask around a theoretical price: a spread of ``spread_percent`` of the price,
    at least ``min_spread``, the bid rounded down and the ask up to ``tick``; the bid never
    below 0."""
    half = max(theo * settings.spread_percent / 100.0, settings.min_spread) / 2.0
    tick = settings.tick
    bid = max(0.0, math.floor((theo - half) / tick + 1e-9) * tick)
    ask = math.ceil((theo + half) / tick - 1e-9) * tick
    return round(bid, 10), round(max(ask, tick), 10)


def synthetic_row(underlying: str, expiry: date, right: OptionRight, strike: float,
                  spot: float, now: datetime, settings: OptionsSettings) -> ChainRow:
    """One synthetic contract priced at ``spot``: the smile's volatility, BSM price and
    greeks, and the spread model's quote."""
    rate, div = settings.rate, settings.dividend_for(underlying)
    years = years_to_expiry(expiry, now)
    vol = smile_volatility(settings.volatility_for(underlying), settings.skew, settings.smile,
                           spot, strike, years, rate, div)
    g = bsm_greeks(right, spot, strike, years, vol, rate, div)
    bid, ask = quoted(g.price, settings)
    return ChainRow(occ_symbol(underlying, expiry, right, strike), underlying, expiry, right,
                    strike, bid, ask, None, None, None, vol, g.delta, g.gamma, g.theta, g.vega,
                    g.price)


def synthetic_expiries(today: date, settings: OptionsSettings) -> list[date]:
    """The synthetic chain's expiries: the next weeklies and monthlies after ``today``."""
    return sorted(set(fridays(today, settings.weeklies))
                  | set(monthly_expiries(today, settings.monthlies)))


def synthetic_chain(underlying: str, spot: float, now: datetime, settings: OptionsSettings,
                    expiries: Iterable[date] | None = None) -> OptionChain:
    """The synthetic chain of ``underlying`` at ``spot`` and ``now``: calls and puts on
    ``2 * strikes_each_side + 1`` strikes around the spot for each expiry (default: the next
    ``weeklies`` Fridays and ``monthlies`` third Fridays still trading at ``now``)."""
    if not (math.isfinite(spot) and spot > 0):
        raise ValueError(f"{underlying}: spot must be a positive number, got {spot!r}")
    step = settings.strike_step or auto_strike_step(spot)
    centre = round(spot / step)
    strikes = [round(k * step, 6) for k in range(centre - settings.strikes_each_side,
                                                  centre + settings.strikes_each_side + 1)
               if k > 0]
    listed = sorted(e for e in (expiries if expiries is not None
                                else synthetic_expiries(now.date(), settings))
                    if years_to_expiry(e, now) > 0)
    rows = [synthetic_row(underlying, expiry, right, strike, spot, now, settings)
            for expiry in listed for strike in strikes
            for right in (OptionRight.CALL, OptionRight.PUT)]
    return OptionChain(underlying, now, spot, rows)
