"""The dashboard plugin object, registered under the ``sandtrade`` entry point ``dashboard``.

Like the TradingView plugin it stays small: every process that loads the host's plugins
imports it, and the web stack (:mod:`sandtrade_dashboard.app`) is imported only when the host
asks for HTTP routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandtrade.hookspecs import hookimpl

if TYPE_CHECKING:
    from sandtrade.plugin_api import HostApi

__all__ = ["DashboardPlugin", "plugin"]


class DashboardPlugin:
    """The plugin object registered under the entry point."""

    @hookimpl
    def sandtrade_http_routes(self, host: HostApi) -> list[Any]:
        """The dashboard's pages, its JSON reads and actions and its event stream."""
        from sandtrade_dashboard.app import make_router

        return [make_router(host)]


plugin = DashboardPlugin()
