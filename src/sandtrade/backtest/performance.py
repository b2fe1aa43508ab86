"""Live performance of an account, per strategy and per source, by the back-test's own stats.

An account's fills are booked again, in time order, into a fresh book (the broker's own
:func:`~sandtrade.broker.lots.book_fill`: FIFO lots, cash, closed trades), marked at the close
of every bar of the prices given, and the equity after each timestamp goes into an
:class:`~sandtrade.backtest.stats.EquityRecorder`, as a back-test's does; the figures are then
:func:`~sandtrade.backtest.stats.compute_stats`'s, so "Sharpe" means here exactly what it means
in a back-test report. A split (per strategy, per source) books each group's fills alone on
the account's initial cash: each group's return is its share of the account's, so the groups'
returns and trades add up to the account's.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from typing import Any, Literal

from sandtrade.backtest.stats import EquityRecorder, compute_stats
from sandtrade.broker.lots import SIGN, AccountBook, Lot, book_fill
from sandtrade.models import Account, Bar, Fill, OrderSource

__all__ = ["GROUPINGS", "PERFORMANCE_KEYS", "Grouping", "performance"]

Grouping = Literal["account", "strategy", "source"]
GROUPINGS: tuple[Grouping, ...] = ("account", "strategy", "source")

#: The figures of each group, and the back-test stat each one is.
PERFORMANCE_KEYS = {
    "return_pct": "Return [%]",
    "max_drawdown_pct": "Max. Drawdown [%]",
    "sharpe": "Sharpe Ratio",
    "win_rate_pct": "Win Rate [%]",
    "profit_factor": "Profit Factor",
    "trades": "# Trades",
}


def _group(by: Grouping, account: str, source: OrderSource | None) -> str | None:
    """The key of a fill's group (None: not in any, a strategy split's non-strategy fills)."""
    if by == "account":
        return account
    if by == "strategy":
        return source.ref if source is not None and source.kind == "strategy" else None
    return source.kind if source is not None else "unknown"


def performance(account: Account, fills: Iterable[Fill],
                source_of: Callable[[str], OrderSource | None], bars: Sequence[Bar], *,
                by: Grouping = "account", multiplier: Callable[[str], float] = lambda s: 1.0
                ) -> dict[str, dict[str, Any]]:
    """``{key: {return_pct, max_drawdown_pct, sharpe, win_rate_pct, profit_factor, trades}}``
    of ``account``'s ``fills`` grouped ``by`` the account (one key, its id), the strategy
    that placed each (its name; fills of other doors are left out) or its source's kind
    (``tradingview``, ``grpc``, ``client``, ``strategy``, ``replay``, ``cli``, ``unknown``).

    ``source_of`` gives the source of a fill's order (by order id); ``bars`` are the prices
    the equity is marked at (each bar's close), in any order. A figure a back-test would show
    as NaN (no trades: no win rate) is None.
    """
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)} (got {by!r})")
    groups: dict[str, list[Fill]] = {}
    sources: dict[str, OrderSource | None] = {}
    for fill in fills:
        if fill.order_id not in sources:
            sources[fill.order_id] = source_of(fill.order_id)
        key = _group(by, account.id, sources[fill.order_id])
        if key is not None:
            groups.setdefault(key, []).append(fill)
    ordered = sorted(bars, key=lambda b: b.time)
    return {key: _figures(account, sorted(group, key=lambda f: f.time), ordered, multiplier)
            for key, group in sorted(groups.items())}


def _figures(account: Account, fills: list[Fill], bars: list[Bar],
             multiplier: Callable[[str], float]) -> dict[str, Any]:
    cash = account.initial_cash
    book = AccountBook(Account(id=account.id, cash=cash, initial_cash=cash))
    lots: dict[tuple[str, str], deque[Lot]] = {}
    marks: dict[str, float] = {}
    rec = EquityRecorder()
    pending = deque(fills)

    def equity() -> float:
        eq = book.basis
        for sym, pos in book.positions.items():
            eq += (marks.get(sym, pos.avg_price) * pos.qty - pos.cost) * pos.multiplier
        return eq

    def book_until(t: Any) -> None:
        while pending and pending[0].time <= t:
            f = pending.popleft()
            book_fill(book, lots, f.symbol, multiplier(f.symbol), SIGN[f.side], f.qty,
                      f.price, f.commission, f.time, f.bar_index, None)
            marks.setdefault(f.symbol, f.price)

    if fills and (not bars or fills[0].time <= bars[0].time):
        # No bar before the first fill (an option has none; the host keeps a window of
        # history): the curve opens at the cash, just before it, so the figures measure
        # from the account's opening and not from its first mark.
        rec.record(fills[0].time - timedelta(seconds=1), cash, 0.0)
    # Bars of one timestamp are one mark: fills at or before it, then every close of it.
    k = 0
    while k < len(bars):
        t = bars[k].time
        book_until(t)
        while k < len(bars) and bars[k].time == t:
            marks[bars[k].symbol] = bars[k].close
            k += 1
        rec.record(t, equity(), math.fsum(marks.values()))
    if pending:  # fills after the last bar: marked at their own prices
        last = pending[-1].time
        for f in pending:
            marks[f.symbol] = f.price
        book_until(last)
        rec.record(last, equity(), math.fsum(marks.values()))
    stats = compute_stats(rec, book.closed_trades, warmup_bars=0)
    out: dict[str, Any] = {}
    for key, stat in PERFORMANCE_KEYS.items():
        value = stats.get(stat)
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[key] = value
    out["trades"] = int(out["trades"] or 0)
    return out

