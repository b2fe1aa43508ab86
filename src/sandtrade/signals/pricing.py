"""Which symbol a signal trades, and at what price, when no market source covers it.

With ``[signals] symbols = "any"`` (the default) a signal may name any symbol: it is read in
its canonical spelling (:mod:`sandtrade.market.symbols`, ``[symbols]`` aliases applied) and,
unless the market feed trades it under some spelling, becomes a new instrument of its inferred
kind. Its price, in this order (:func:`price_sources`):

1. ``feed``: a market source covers the symbol (its instruments, or any symbol it has
   published a bar of since the host started): orders wait for its bars, as ever;
2. ``signal``: the price the signal carried (``price``, ``signalPrice``, ``close``,
   ``order_price``, ``limitPrice``: what the format read as the signal's price); its orders
   fill at it at once under the ``signal_price`` fill profile, with the broker's slippage and
   commission;
3. ``last``: the last price a signal of the same account carried for the symbol (kept across
   restarts);
4. none: the signal is refused, saying what to send.

The price is the account's own (:mod:`sandtrade.broker.prices`). Shared by the live pipeline
(deciding at receipt, for the sender's answer, and again at execution, where a market source
that has started covering the symbol in between takes over) and by the replay.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sandtrade.market.symbols import SymbolTable
from sandtrade.models import Fill, Instrument
from sandtrade.signal_model import Command, SignalError
from sandtrade.signals.commands import resolve_symbol

if TYPE_CHECKING:
    from sandtrade.broker.paper import PaperBroker

__all__ = ["PriceSource", "Pricing", "no_price_message", "price_sources", "resolve_commands",
           "signal_price_source", "trade_at_signal_prices", "unknown_symbol_message"]

PriceSource = Literal["feed", "signal", "last"]


@dataclass(frozen=True)
class Pricing:
    """What deciding a symbol's price needs.

    :param covered: whether a market source covers a symbol (now).
    :param instrument: the instrument of a symbol the broker does not know yet.
    """

    covered: Callable[[str], bool]
    instrument: Callable[[str], Instrument]


def unknown_symbol_message(symbol: str, known: Sequence[str]) -> str:
    """Why ``symbol`` is refused with ``symbols = "known"``."""
    shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
    return f"{symbol!r} is not traded on this host (known: {shown or 'none'})"


def no_price_message(symbol: str) -> str:
    """What to send when nothing prices ``symbol``."""
    return (f'no price for {symbol}: add "price": {{{{close}}}} to the alert, or configure a '
            "market source that covers it")


def resolve_commands(commands: Sequence[Command], known: Sequence[str], *,
                     table: SymbolTable, any_symbol: bool) -> list[Command]:
    """``commands`` with each symbol as the host trades it.

    A symbol the feed trades is kept (in the feed's spelling: TradingView's BTCUSD is a feed's
    BTC-USD); with ``any_symbol`` any other becomes its canonical spelling (aliases applied),
    otherwise it is refused, naming the symbols the host knows.
    """
    out = []
    for cmd in commands:
        symbol: str | None = cmd.symbol if cmd.symbol in known else None
        if symbol is None:
            if any_symbol:
                name = table.resolve(cmd.symbol)
                symbol = name if name in known else (resolve_symbol(name, known) or name)
            else:
                symbol = resolve_symbol(cmd.symbol, known)
                if symbol is None:
                    raise SignalError(unknown_symbol_message(cmd.symbol, known),
                                      field="symbol")
        out.append(cmd if symbol == cmd.symbol else cmd.model_copy(update={"symbol": symbol}))
    return out


def price_sources(commands: Sequence[Command], signal_price: float | None,
                  covered: Callable[[str], bool], last: Callable[[str], float | None]
                  ) -> dict[str, tuple[PriceSource, float | None]]:
    """Each traded symbol's price source and, when not the feed, its price; raises
    :class:`SignalError` for a symbol nothing prices.

    The signal's price prices a symbol only when the signal trades that one symbol: a price
    written once cannot be the price of two things.
    """
    # A spread's legs are priced by the broker's option quotes, from the feed's underlying.
    symbols = list(dict.fromkeys(c.symbol for c in commands
                                 if c.action not in ("cancel", "spread", "close_spread")))
    out: dict[str, tuple[PriceSource, float | None]] = {}
    for symbol in symbols:
        if covered(symbol):
            out[symbol] = ("feed", None)
        elif signal_price is not None and len(symbols) == 1:
            out[symbol] = ("signal", signal_price)
        else:
            price = last(symbol)
            if price is None:
                raise SignalError(no_price_message(symbol))
            out[symbol] = ("last", price)
    return out


def signal_price_source(sources: dict[str, tuple[PriceSource, float | None]]) -> PriceSource | None:
    """The price source of a whole signal: ``signal`` or ``last`` when some symbol is priced
    so, else ``feed``; None when it trades nothing (a cancel)."""
    kinds = {kind for kind, _ in sources.values()}
    for kind in ("signal", "last", "feed"):
        if kind in kinds:
            return kind  # type: ignore[return-value]
    return None


def trade_at_signal_prices(b: PaperBroker, account: str, commands: Sequence[Command],
                           signal_price: float | None, pricing: Pricing,
                           place: Callable[[], tuple[list, list[str], str | None]],
                           when: datetime | None) -> tuple[tuple[list, list[str], str | None],
                                                           PriceSource | None, list[Fill]]:
    """Inside the broker's lock: register the symbols the broker does not know, note the
    prices of the ones no feed covers, ``place()`` the orders, then work them at those
    prices. Returns what ``place()`` returned, the signal's price source and the fills."""
    for cmd in commands:
        if cmd.action in ("buy", "sell", "target") and b.instrument(cmd.symbol) is None:
            b.register_new(pricing.instrument(cmd.symbol))
    sources = price_sources(commands, signal_price, pricing.covered,
                            lambda symbol: b.last_signal_price(account, symbol))
    for symbol, (kind, price) in sources.items():
        if kind == "signal" and price is not None:
            b.note_signal_price(account, symbol, price)
    placed = place()
    fills: list[Fill] = []
    for symbol, (kind, price) in sources.items():
        if kind != "feed" and price is not None:
            fills += b.work_at_price(account, symbol, price, kind, when)
    return placed, signal_price_source(sources), fills
