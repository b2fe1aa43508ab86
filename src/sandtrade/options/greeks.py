"""Greeks, marks and P&L of positions and of an account, from the chain pricer.

Functions the gRPC and CLI layers call with the broker's :class:`~sandtrade.models.Position`
list and a row lookup (``OptionQuotes.row``); no transport here. Per position the greeks are
the contract's per-share greeks times ``qty * multiplier``: ``delta`` in shares of the
underlying, ``gamma`` in shares per 1 of the underlying, ``theta`` in dollars per calendar day,
``vega`` in dollars per volatility point. A stock position has a delta of its quantity.
Options are marked at the chain's mark (the mid of a two-sided quote, :attr:`ChainRow.mark`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from sandtrade.models import Position
from sandtrade.options.chain import ChainRow
from sandtrade.options.contracts import OptionContract

__all__ = ["AccountGreeks", "PositionGreeks", "account_greeks", "position_greeks"]


class PositionGreeks(NamedTuple):
    """One position marked and measured (see the module for units). ``priced`` is False
    when no mark was found: the position is then at its last known price and its option
    greeks are 0."""

    symbol: str
    underlying: str
    qty: float
    multiplier: float
    mark: float | None
    market_value: float
    unrealized_pnl: float
    delta: float
    gamma: float
    theta: float
    vega: float
    priced: bool


class AccountGreeks(NamedTuple):
    """The positions of an account and their sums."""

    positions: list[PositionGreeks]
    delta: float
    gamma: float
    theta: float
    vega: float
    market_value: float
    unrealized_pnl: float

    def by_underlying(self) -> dict[str, tuple[float, float, float, float]]:
        """Delta, gamma, theta and vega summed per underlying (a stock is its own)."""
        out: dict[str, tuple[float, float, float, float]] = {}
        for p in self.positions:
            d, g, t, v = out.get(p.underlying, (0.0, 0.0, 0.0, 0.0))
            out[p.underlying] = (d + p.delta, g + p.gamma, t + p.theta, v + p.vega)
        return out


def position_greeks(position: Position, row: Callable[[str], ChainRow | None],
                    stock_price: Callable[[str], float | None]) -> PositionGreeks:
    """One position's mark, value, P&L and greeks. ``row(symbol)`` prices options (the
    quote provider's :meth:`~.sources.OptionQuotes.row`), ``stock_price(symbol)`` stocks."""
    qty, mult = position.qty, position.multiplier
    try:
        contract: OptionContract | None = OptionContract.parse(position.symbol)
    except ValueError:
        contract = None
    if contract is None:
        mark = stock_price(position.symbol)
        priced = mark is not None
        if mark is None:
            mark = position.market_price
        delta, gamma, theta, vega = qty * mult, 0.0, 0.0, 0.0
        underlying = position.symbol
    else:
        r = row(contract.symbol)
        underlying = contract.underlying
        priced = r is not None
        mark = r.mark if r is not None else position.market_price
        size = qty * mult
        delta = size * (r.delta or 0.0) if r is not None else 0.0
        gamma = size * (r.gamma or 0.0) if r is not None else 0.0
        theta = size * (r.theta or 0.0) if r is not None else 0.0
        vega = size * (r.vega or 0.0) if r is not None else 0.0
    price = position.avg_price if mark is None else mark
    pnl = 0.0 if mark is None else qty * (mark - position.avg_price) * mult
    return PositionGreeks(position.symbol, underlying, qty, mult, mark, qty * price * mult, pnl,
                          delta, gamma, theta, vega, priced)


def account_greeks(positions: Iterable[Position], row: Callable[[str], ChainRow | None],
                   stock_price: Callable[[str], float | None]) -> AccountGreeks:
    """Every open position of ``positions`` measured (:func:`position_greeks`), and the sums."""
    measured = [position_greeks(p, row, stock_price) for p in positions if p.qty != 0]
    return AccountGreeks(measured, sum(p.delta for p in measured),
                         sum(p.gamma for p in measured), sum(p.theta for p in measured),
                         sum(p.vega for p in measured), sum(p.market_value for p in measured),
                         sum(p.unrealized_pnl for p in measured))
