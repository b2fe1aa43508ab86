"""Where chains come from: the synthetic and the recorded sources, and the quote provider.

A source is a class with a unique ``name``, built with :class:`~.settings.OptionsSettings`,
that answers ``chain(underlying, spot, now)`` (an :class:`~.chain.OptionChain` or None) and
``row(symbol, spot, now)`` (one contract's :class:`~.chain.ChainRow` or None). The built-ins
are contributed through the ``sandtrade_option_chains`` hook like a plugin's real feed.

:class:`OptionQuotes` is what a host hands the broker as its ``quotes`` provider: an option
symbol's quote, priced from its underlying's last price (``last_price``, the host's feed).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar, Protocol

from sandtrade.models import Quote
from sandtrade.options.chain import ChainRow, OptionChain, synthetic_chain, synthetic_row
from sandtrade.options.contracts import OptionContract
from sandtrade.options.loader import load_chain
from sandtrade.options.pricing import years_to_expiry
from sandtrade.options.settings import OptionsSettings

__all__ = ["ChainSource", "OptionQuotes", "RecordedChains", "SyntheticChains"]


class ChainSource(Protocol):
    """What the ``sandtrade_option_chains`` hook's classes implement."""

    name: ClassVar[str]

    def chain(self, underlying: str, spot: float | None, now: datetime) -> OptionChain | None:
        """``underlying``'s chain at ``now`` (``spot``: its last price, None if unknown)."""
        ...

    def row(self, symbol: str, spot: float | None, now: datetime) -> ChainRow | None:
        """One contract's row at ``now``, or None when it is not priced."""
        ...


class SyntheticChains:
    """Chains priced from the underlying's last price (:func:`~.chain.synthetic_chain`)."""

    name: ClassVar[str] = "synthetic"

    def __init__(self, settings: OptionsSettings) -> None:
        self.settings = settings

    def chain(self, underlying: str, spot: float | None, now: datetime) -> OptionChain | None:
        """The synthetic chain at ``spot``; None without a spot."""
        if spot is None or spot <= 0:
            return None
        return synthetic_chain(underlying, spot, now, self.settings)

    def row(self, symbol: str, spot: float | None, now: datetime) -> ChainRow | None:
        """Any contract on the underlying until its expiry, priced at ``spot``."""
        contract = OptionContract.parse(symbol)
        if spot is None or spot <= 0 or years_to_expiry(contract.expiry, now) <= 0:
            return None
        return synthetic_row(contract.underlying, contract.expiry, contract.right,
                             contract.strike, spot, now, self.settings)


class RecordedChains:
    """Chains replayed from files (``[options] files``): at ``now``, each underlying's latest
    chain recorded at or before it."""

    name: ClassVar[str] = "recorded"

    def __init__(self, settings: OptionsSettings) -> None:
        self.settings = settings
        self.chains: dict[str, list[OptionChain]] = {}
        for spec in settings.files:
            symbol, sep, path = spec.partition("=")
            self.add(load_chain(Path(path if sep else spec).expanduser(),
                                underlying=symbol.strip() if sep else None, settings=settings))

    def add(self, chain: OptionChain) -> None:
        """Add one recorded chain (kept in time order)."""
        chains = self.chains.setdefault(chain.underlying, [])
        chains.append(chain)
        chains.sort(key=lambda c: c.as_of)

    def chain(self, underlying: str, spot: float | None, now: datetime) -> OptionChain | None:
        """The latest chain of ``underlying`` recorded at or before ``now``."""
        chains = self.chains.get(underlying, [])
        at = bisect.bisect_right([c.as_of for c in chains], now)
        return chains[at - 1] if at else None

    def row(self, symbol: str, spot: float | None, now: datetime) -> ChainRow | None:
        """``symbol``'s row in that chain."""
        chain = self.chain(OptionContract.parse(symbol).underlying, spot, now)
        return chain.get(OptionContract.parse(symbol).symbol) if chain else None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class OptionQuotes:
    """Option quotes and chains for a host: ``quotes(symbol)`` is the broker's provider.

    ``last_price(underlying)`` is the underlying's last price (None when not priced);
    ``clock`` the time (the feed's bar time in a replay, the wall clock live).
    """

    def __init__(self, source: ChainSource, last_price: Callable[[str], float | None],
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self.source, self.last_price, self.clock = source, last_price, clock

    def row(self, symbol: str) -> ChainRow | None:
        """``symbol``'s chain row now, or None (not an option, not priced, expired)."""
        try:
            contract = OptionContract.parse(symbol)
        except ValueError:
            return None
        return self.source.row(contract.symbol, self.last_price(contract.underlying),
                               self.clock())

    def quote(self, symbol: str) -> Quote | None:
        """``symbol``'s quote as the broker takes it, or None when it is not priced."""
        row = self.row(symbol)
        if row is None:
            return None
        return Quote(row.symbol, self.clock(), row.bid, row.ask)

    __call__ = quote

    def chain(self, underlying: str) -> OptionChain | None:
        """``underlying``'s chain now, or None."""
        return self.source.chain(underlying, self.last_price(underlying), self.clock())
