"""The host's own defaults, registered through the same hooks as third-party plugins."""

from __future__ import annotations

from sandtrade.broker.fills import BUILTIN_FILL_PROFILES, FillProfile
from sandtrade.hookspecs import hookimpl

__all__ = ["BrokerDefaults"]


class BrokerDefaults:
    """Contributes the built-in fill profiles: next_open, close and quote."""

    @hookimpl(trylast=True)
    def sandtrade_fill_profiles(self) -> list[type[FillProfile]]:
        """The three built-in fill profiles."""
        return list(BUILTIN_FILL_PROFILES)
