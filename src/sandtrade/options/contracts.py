"""Option contracts by their OCC symbols, the listed expiry calendar, and expiry selectors.

A contract's symbol is the canonical, unpadded OCC form (``SPY251219C00450000``), the same
spelling ``market/symbols.py`` gives a padded one. An expiry selector is what a trader writes
for "which expiry": ``"2026-12-18"``, ``"30d"`` (the listed expiry nearest to 30 days away),
``"monthly"`` (the nearest monthly, a third Friday) or ``"weekly"`` (the nearest of all).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import NamedTuple

from sandtrade.models import OptionRight, parse_occ_symbol

__all__ = [
    "OptionContract",
    "fridays",
    "is_monthly",
    "monthly_expiries",
    "nearest",
    "occ_symbol",
    "select_expiry",
    "third_friday",
]


def occ_symbol(underlying: str, expiry: date, right: OptionRight, strike: float) -> str:
    """The unpadded OCC symbol: ROOT + YYMMDD + C/P + strike x 1000 in 8 digits."""
    milli = round(strike * 1000)
    if not 0 < milli < 100_000_000:
        raise ValueError(f"strike {strike!r} does not fit an OCC symbol (0 < strike < 100000)")
    return (f"{underlying.upper()}{expiry:%y%m%d}{'C' if right is OptionRight.CALL else 'P'}"
            f"{milli:08d}")


class OptionContract(NamedTuple):
    """One listed option: its OCC symbol and what the symbol says."""

    symbol: str
    underlying: str
    expiry: date
    right: OptionRight
    strike: float

    @classmethod
    def parse(cls, symbol: str) -> OptionContract:
        """The contract an OCC symbol (padded or not) names; ``ValueError`` says what is wrong."""
        underlying, expiry, right, strike = parse_occ_symbol(symbol)
        return cls(occ_symbol(underlying, expiry, right, strike), underlying, expiry, right,
                   strike)


def third_friday(year: int, month: int) -> date:
    """The monthly expiry of ``year``-``month``: its third Friday."""
    first = date(year, month, 1)
    return first + timedelta(days=(4 - first.weekday()) % 7 + 14)


def is_monthly(day: date) -> bool:
    """True when ``day`` is a third Friday (a standard monthly expiry)."""
    return day == third_friday(day.year, day.month)


def fridays(after: date, count: int) -> list[date]:
    """The next ``count`` Fridays on or after ``after``."""
    first = after + timedelta(days=(4 - after.weekday()) % 7)
    return [first + timedelta(weeks=i) for i in range(count)]


def monthly_expiries(after: date, count: int) -> list[date]:
    """The next ``count`` third Fridays on or after ``after``."""
    out: list[date] = []
    year, month = after.year, after.month
    while len(out) < count:
        day = third_friday(year, month)
        if day >= after:
            out.append(day)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


_DAYS = re.compile(r"^(\d{1,4})\s*d$")


def select_expiry(selector: str | date, expiries: Iterable[date], today: date) -> date:
    """The listed expiry ``selector`` names among ``expiries`` (those before ``today`` are
    not listed). ``ValueError`` names the selector and the expiries there are."""
    listed = sorted(e for e in set(expiries) if e >= today)
    if not listed:
        raise ValueError(f"expiry {selector!s}: no expiries are listed on or after {today}")
    shown = ", ".join(str(e) for e in listed[:8]) + (" ..." if len(listed) > 8 else "")
    if isinstance(selector, date):
        wanted: date | None = selector
    else:
        text = str(selector).strip().lower()
        days = _DAYS.match(text)
        if days:
            target = today + timedelta(days=int(days[1]))
            # nearest; a tie goes to the earlier expiry (less time bought for the same gap)
            return min(listed, key=lambda e: (abs((e - target).days), e))
        if text == "weekly":
            return listed[0]
        if text == "monthly":
            monthly = [e for e in listed if is_monthly(e)]
            if not monthly:
                raise ValueError(f"expiry 'monthly': no third-Friday expiry is listed ({shown})")
            return monthly[0]
        try:
            wanted = date.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"expiry {selector!r} is not an expiry selector: write a date (2026-12-18), "
                "a number of days ('30d': the listed expiry nearest to 30 days), 'monthly' "
                "or 'weekly'") from None
    if wanted not in listed:
        raise ValueError(f"expiry {wanted}: not listed (listed: {shown})")
    return wanted


def nearest(values: Sequence[float], target: float) -> float:
    """The value of ``values`` nearest ``target`` (a tie goes to the lower)."""
    return min(values, key=lambda v: (abs(v - target), v))
