"""What the host offers plugins: the one object a plugin's routes talk to, and the types a
market source is built from.

A plugin (the TradingView adapter is one) gets a :class:`HostApi` in its
``sandtrade_http_routes`` hook and uses nothing else of the host: its own settings, token
checks, and signal submission. Everything here is safe to call from the HTTP server's event
loop.

A market source plugin (``sandtrade_market_sources``; the ccxt and Alpaca sources in
``plugins/marketdata`` are two) builds :class:`Bar` and :class:`Instrument` values from its
:class:`MarketSettings`, raises :class:`DataError` for settings it cannot use, and, when it
talks to the outside world, keeps a :class:`Connection` (backoff between failed attempts, and
the :class:`SourceHealth` the host shows in ``/health`` and ``sandtrade doctor``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandtrade.auth import AuthError, Principal, TokenAuthority
from sandtrade.errors import DataError, QuotaExceeded
from sandtrade.market.live import Backoff, Connection, SourceHealth, redact
from sandtrade.market.sources import MarketSettings
from sandtrade.models import Bar, Instrument
from sandtrade.signal_model import SignalError, SignalRecord, SignalStatus
from sandtrade.signals.pipeline import Overloaded, SignalPipeline, Submitted

__all__ = ["AuthError", "Backoff", "Bar", "Connection", "DataError", "HostApi", "Instrument",
           "MarketSettings", "Overloaded", "Principal", "QuotaExceeded", "SignalError",
           "SignalRecord", "SignalStatus", "SourceHealth", "Submitted", "redact"]


class HostApi:
    """The host as a plugin sees it."""

    def __init__(self, *, pipeline: SignalPipeline, auth: TokenAuthority,
                 plugins: dict[str, dict[str, Any]], config_path: Path | None = None,
                 performance: Callable[[Principal, str, Any], dict[str, dict[str, Any]]]
                 | None = None) -> None:
        self._pipeline = pipeline
        self._performance = performance
        self._auth = auth
        self._plugins = plugins
        #: The configuration file the host was started with (for error messages).
        self.config_path = config_path

    def plugin_settings(self, name: str) -> dict[str, Any]:
        """``[plugins.NAME]`` of the configuration (empty when absent)."""
        return dict(self._plugins.get(name, {}))

    def verify_token(self, token: str, scope: str = "signal") -> Principal:
        """Who the token speaks for; :class:`AuthError` when it is not valid or lacks
        ``scope``."""
        principal = self._auth.verify(token)
        principal.require_scope(scope)
        return principal

    async def submit_signal(self, body: str, *, source: str, principal: Principal,
                            fmt: str | None = None, idempotency_key: str | None = None,
                            dry_run: bool = False) -> Submitted:
        """Journal the signal durably and queue it for execution; returns once it is durable.

        A body that cannot be read is journaled as ``rejected`` and comes back with that
        status and the reason. Raises :class:`Overloaded` (nothing journaled) when the host
        cannot take it now, and the store's error when the journal cannot be written.
        """
        return await self._pipeline.submit_async(body, source=source, principal=principal,
                                                 fmt=fmt, idempotency_key=idempotency_key,
                                                 dry_run=dry_run)

    def performance(self, principal: Principal, account: str = "", by: str = "account"
                    ) -> dict[str, dict[str, Any]]:
        """An account's live performance, by the back-test's definitions (the same code):
        ``{key: {"return_pct", "max_drawdown_pct", "sharpe", "win_rate_pct",
        "profit_factor", "trades"}}`` with ``by`` one of ``"account"`` (one key, the
        account), ``"strategy"`` (per strategy name; other orders left out) or ``"source"``
        (per source kind of the orders: tradingview, grpc, client, strategy, replay, cli,
        unknown). A figure a back-test shows as NaN is None.

        ``principal`` reads its own account only (empty ``account``: that one); the
        operator's names any. Raises :class:`AuthError` for another account,
        ``ValueError`` for an unknown ``by``. It reads the store: call it off the event
        loop (``await asyncio.to_thread(...)``) when the account is large."""
        if self._performance is None:
            raise RuntimeError("this host was built without live performance")
        if by not in ("account", "strategy", "source"):
            raise ValueError(f"by must be account, strategy or source (got {by!r})")
        return self._performance(principal, account, by)

    def health(self) -> dict[str, Any]:
        """The signal pipeline's state for a health endpoint."""
        return self._pipeline.health()
