"""A plain table of option quotes: it stands in for market data (the outside world) in the
multi-leg tests."""

from __future__ import annotations

from datetime import datetime

from sandtrade.models import Quote

#: SPY contracts expiring 2024-01-19, the tests' underlying trading at 470.
EXP = "240119"


def occ(strike: float, right: str = "C", root: str = "SPY", exp: str = EXP) -> str:
    """The OCC symbol of a contract."""
    return f"{root}{exp}{right}{round(strike * 1000):08d}"


class QuoteTable:
    """symbol -> (bid, ask); what the broker's quote provider reads."""

    def __init__(self, quotes: dict[str, tuple[float, float]] | None = None) -> None:
        self.quotes = dict(quotes or {})

    def __call__(self, symbol: str) -> Quote | None:
        q = self.quotes.get(symbol)
        return None if q is None else Quote(symbol, datetime(2024, 1, 2), q[0], q[1])

    def set(self, symbol: str, bid: float, ask: float) -> None:
        self.quotes[symbol] = (bid, ask)
