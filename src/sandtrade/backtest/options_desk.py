"""What ``ctx.options`` answers, computed once for both of its doors.

A strategy's ``ctx.options`` reaches a broker in two ways: in a back-test through the engine's
:class:`~sandtrade.backtest.engine.LocalTrading` (the broker in the same process, chains
synthesised from the underlying's bars), live through its run's door in the host
(:mod:`sandtrade.rpc.door`, the host's ``[options]`` chains). Both turn a chain into the
strategy's rows, a template into legs, positions into greeks and position groups into their
value with the functions here, so a back-test and a live replay answer a strategy alike.

The chains come from an :class:`~sandtrade.options.sources.OptionQuotes` (a chain source
priced at the underlying's last price and a clock); the back-test's is
:func:`backtest_quotes`: the broker's last price of the underlying at the broker's time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from sandtrade.broker.paper import PaperBroker
from sandtrade.errors import OrderRejected
from sandtrade.models import Leg, Position
from sandtrade.options.greeks import account_greeks
from sandtrade.options.settings import OptionsSettings
from sandtrade.options.sources import ChainSource, OptionQuotes, SyntheticChains
from sandtrade.options.templates import build_strategy
from sandtrade.strategy.context import GreeksView, GroupView, OptionRowView

__all__ = ["backtest_quotes", "chain_rows", "greeks_view", "group_views", "template_legs"]


def backtest_quotes(broker: PaperBroker, settings: OptionsSettings | None = None,
                    source: ChainSource | None = None) -> OptionQuotes:
    """Option quotes for a back-test's broker: ``source`` (default: synthetic chains with
    ``settings``, the host's ``[options]``), priced at the broker's last price of the
    underlying (the close of its latest bar) at the broker's time (that bar's)."""

    def clock() -> datetime:
        return broker.now or datetime.min

    return OptionQuotes(source or SyntheticChains(settings or OptionsSettings()),
                        broker.last_price, clock)


def chain_rows(quotes: OptionQuotes, symbol: str, expiry: str | None) -> list[OptionRowView]:
    """``symbol``'s chain now as the strategy sees it (one expiry, or all); an expiry that
    selects nothing raises ``ValueError`` naming it."""
    chain = quotes.chain(symbol)
    if chain is None:
        raise OrderRejected(f"no option chain for {symbol!r} yet: it has no price",
                            field="symbol")
    rows = chain.rows if expiry is None else chain.rows_for(chain.select_expiry(expiry))
    return [OptionRowView(r.symbol, r.underlying, r.expiry.isoformat(), r.right.value,
                          r.strike, r.bid, r.ask, r.mark, r.iv, r.delta, r.gamma, r.theta,
                          r.vega) for r in rows]


def template_legs(quotes: OptionQuotes, symbol: str, template: str,
                  params: Mapping[str, Any]) -> list[Leg]:
    """Template ``template`` on ``symbol`` built from the chain now (``expiry`` among
    ``params``, "30d" by default); a bad parameter raises
    :class:`~sandtrade.options.templates.TemplateError` naming it."""
    chain = quotes.chain(symbol)
    if chain is None:
        raise OrderRejected(f"no option chain for {symbol!r} yet: it has no price",
                            field="symbol")
    args = dict(params)
    expiry = args.pop("expiry", "30d")
    settings = getattr(quotes.source, "settings", None)
    plan = build_strategy(template, chain, expiry=expiry,
                          settings=settings if isinstance(settings, OptionsSettings) else None,
                          **args)
    return plan.legs


def greeks_view(quotes: OptionQuotes, positions: Iterable[Position],
                stock_price: Callable[[str], float | None]) -> GreeksView:
    """The account's greeks summed over ``positions`` (shares count as delta)."""
    g = account_greeks(positions, quotes.row, stock_price)
    return GreeksView(g.delta, g.gamma, g.theta, g.vega, g.market_value, g.unrealized_pnl)


def group_views(quotes: OptionQuotes, groups: Iterable[tuple[str, Mapping[str, float]]],
                price: Callable[[str], float | None],
                multiplier: Callable[[str], float]) -> list[GroupView]:
    """Each ``(group id, {symbol: units})`` with the value of its legs at their marks now
    (an option at its chain's mark, a stock at ``price``; a leg not priced counts 0)."""
    out = []
    for group_id, legs in groups:
        value = 0.0
        for sym, units in legs.items():
            row = quotes.row(sym)
            mark = row.mark if row is not None else price(sym)
            value += units * (mark or 0.0) * multiplier(sym)
        out.append(GroupView(group_id, tuple((s, float(u)) for s, u in legs.items()),
                             round(value, 6)))
    return out
