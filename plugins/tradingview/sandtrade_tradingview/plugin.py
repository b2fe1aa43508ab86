"""The TradingView plugin object, registered under the ``sandtrade`` entry point ``tradingview``.

Every process that loads the host's plugins imports this module, including each sandbox
worker (for fill profiles) and every CLI command, so it stays small: the web stack (FastAPI,
:mod:`sandtrade_tradingview.webhook`) is imported only when the host asks for HTTP routes.
Importing it here cost each sandbox worker about 100 ms of its start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandtrade.hookspecs import hookimpl

if TYPE_CHECKING:
    from sandtrade.plugin_api import HostApi

__all__ = ["TradingViewPlugin", "plugin"]


class TradingViewPlugin:
    """The plugin object registered under the entry point."""

    @hookimpl
    def sandtrade_http_routes(self, host: HostApi) -> list[Any]:
        """The TradingView webhook routes (see :mod:`sandtrade_tradingview.webhook`)."""
        from sandtrade_tradingview.webhook import make_router

        return [make_router(host)]


plugin = TradingViewPlugin()
