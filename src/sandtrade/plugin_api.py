"""What the host offers plugins: the one object a plugin's routes talk to, and the types a
market source is built from.

A plugin (the TradingView adapter is one) gets a :class:`HostApi` in its
``sandtrade_http_routes`` hook and uses nothing else of the host: its own settings, token
checks, and signal submission; and, for pages that show the host (the dashboard plugin), what
a principal may read of accounts, orders, fills, signals, strategies and bars, the few actions
it may take on them (cancel an order, close a position, start or stop a strategy, pause or
resume a signal route), and the
host's changes as one numbered log (:meth:`HostApi.events_after`, from
:class:`~sandtrade.watch.HostWatch`). Every read and action checks the principal's scope and
account exactly as the gRPC API does (a token of one account sees nothing of another's).
Submitting a signal and waiting for events are safe on the HTTP server's event loop; the other
reads and actions take the broker's turn briefly: call them from a worker thread (a plain
``def`` route).

A market source plugin (``sandtrade_market_sources``; the ccxt and Alpaca sources in
``plugins/marketdata`` are two) builds :class:`Bar` and :class:`Instrument` values from its
:class:`MarketSettings`, raises :class:`DataError` for settings it cannot use, and, when it
talks to the outside world, keeps a :class:`Connection` (backoff between failed attempts, and
the :class:`SourceHealth` the host shows in ``/health`` and ``sandtrade doctor``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sandtrade.auth import ALL_ACCOUNTS, AuthError, Principal, TokenAuthority
from sandtrade.errors import Conflict, DataError, InvalidField, NotFound, QuotaExceeded
from sandtrade.market.live import Backoff, Connection, SourceHealth, redact
from sandtrade.market.sources import MarketSettings
from sandtrade.models import Bar, Instrument
from sandtrade.signal_model import SignalError, SignalRecord, SignalStatus
from sandtrade.signals.pipeline import Overloaded, SignalPipeline, Submitted
from sandtrade.strategy.modules import StrategyModule
from sandtrade.watch import HostWatch, WatchEvent, account_json, fill_json, order_json, signal_json

if TYPE_CHECKING:
    from sandtrade.broker.durable import DurableBroker
    from sandtrade.market.hub import MarketHub
    from sandtrade.rpc.trading import TradingServicer
    from sandtrade.sandbox.manager import StrategyManager
    from sandtrade.store.base import Store

__all__ = ["ALL_ACCOUNTS", "AuthError", "Backoff", "Bar", "Conflict", "Connection", "DataError",
           "HostApi", "HostParts", "Instrument", "InvalidField", "MarketSettings", "NotFound",
           "Overloaded", "Principal", "QuotaExceeded", "SignalError", "SignalRecord",
           "SignalStatus", "SourceHealth", "StrategyModule", "Submitted", "WatchEvent",
           "redact"]


class HostApi:
    """The host as a plugin sees it."""

    def __init__(self, *, pipeline: SignalPipeline, auth: TokenAuthority,
                 plugins: dict[str, dict[str, Any]], config_path: Path | None = None,
                 performance: Callable[[Principal, str, Any], dict[str, dict[str, Any]]]
                 | None = None, parts: HostParts | None = None,
                 performances: Callable[[Principal, str], dict[str, dict[str, dict[str,
                                                                                   Any]]]]
                 | None = None) -> None:
        self._pipeline = pipeline
        self._performance = performance
        self._performances = performances
        self._auth = auth
        self._plugins = plugins
        self._parts = parts
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

    def performances(self, principal: Principal, account: str = ""
                     ) -> dict[str, dict[str, dict[str, Any]]]:
        """:meth:`performance` by account, by source and by strategy at once, from one read
        of the account's fills (read apart, a fill between two reads would be in one
        grouping and not in another): ``{"account": ..., "source": ..., "strategy": ...}``."""
        if self._performances is None:
            return {by: self.performance(principal, account, by)
                    for by in ("account", "source", "strategy")}
        return self._performances(principal, account)

    def health(self) -> dict[str, Any]:
        """The signal pipeline's state for a health endpoint."""
        return self._pipeline.health()

    # ------------------------------------------------------------------ pages of the host

    def _need(self) -> HostParts:
        if self._parts is None:
            raise NotFound("this host offers no view of its accounts to plugins")
        return self._parts

    def trading_mode(self) -> dict[str, Any]:
        """``{"mode": "paper" | "live", "brokers": [...]}``: live when a signal route may
        reach a live-broker plugin (named in ``brokers``)."""
        settings = self._pipeline.settings
        brokers = sorted({r.to.split(":", 1)[1] for r in settings.routes
                          if r.to.startswith("live:")} |
                         ({settings.live_broker} if settings.mode == "live" and
                          settings.live_broker else set()))
        return {"mode": "live" if brokers else "paper", "brokers": brokers}

    def accounts(self, principal: Principal) -> list[str]:
        """The accounts ``principal`` may read: its own, or every account for the operator."""
        principal.require_scope("read")
        if principal.account != ALL_ACCOUNTS:
            return [principal.account]
        return sorted(a.id for a in self._need().store.list_accounts())

    def _readable(self, principal: Principal, account: str) -> str:
        target = principal.require("read", account or None)
        if self._need().store.get_account(target) is None:
            raise NotFound(f"account {target!r} does not exist")
        return target

    def account(self, principal: Principal, account: str) -> dict[str, Any]:
        """An account's numbers now (equity, cash, buying power, P&L, exposure) and its open
        positions."""
        parts = self._need()
        target = self._readable(principal, account)

        def read(b: Any) -> tuple[Any, list[Any]]:
            if not b.has_account(target):
                b.ensure_account(target)
            return b.account(target), b.positions(target)

        acct, positions = parts.live.call(read)
        view = account_json(acct)
        view["positions"] = [
            {"symbol": p.symbol, "qty": p.qty, "avg_price": p.avg_price,
             "market_price": p.market_price, "market_value": p.market_value,
             "unrealized_pnl": p.unrealized_pnl, "realized_pnl": p.realized_pnl}
            for p in positions if p.qty]
        view["unrealized_pnl"] = sum(p["unrealized_pnl"] for p in view["positions"])
        curve = parts.watch.equity_curve(target) if parts.watch else []
        day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
        before = [e for t, e in curve if t < day]
        start = before[-1] if before else (curve[0][1] if curve else acct.initial_cash)
        view["day_pnl"] = view["equity"] - start
        return view

    def equity_curve(self, principal: Principal, account: str) -> list[tuple[float, float]]:
        """``(unix time, equity)`` of the account since the host began watching it (its
        opening cash first)."""
        parts = self._need()
        target = self._readable(principal, account)
        return parts.watch.equity_curve(target) if parts.watch else []

    def orders(self, principal: Principal, account: str, limit: int = 200
               ) -> list[dict[str, Any]]:
        """The account's orders, newest first, each with its source badge."""
        parts = self._need()
        target = self._readable(principal, account)
        sources = parts.watch.sources() if parts.watch else {}
        size = max(1, min(limit, 1000))
        orders = parts.live.call(lambda b: [o.model_copy() for o in b.orders(target)[-size:]]
                                 if b.has_account(target) else [])
        return [order_json(o, sources) for o in reversed(orders)]

    def fills(self, principal: Principal, account: str, limit: int = 500
              ) -> list[dict[str, Any]]:
        """The account's fills, oldest first (the last ``limit``)."""
        target = self._readable(principal, account)
        size = max(1, min(limit, 5000))
        fills = self._need().live.call(lambda b: b.fills(target)[-size:]
                                       if b.has_account(target) else [])
        return [fill_json(f) for f in fills]

    def signals(self, principal: Principal, account: str, limit: int = 200
                ) -> list[dict[str, Any]]:
        """The account's journaled signals, newest first (tokens redacted from bodies)."""
        target = self._readable(principal, account)
        rows = self._need().store.list_signals(account=target, limit=max(1, min(limit, 1000)))
        return [signal_json(r) for _, r in rows]

    def cancel_order(self, principal: Principal, order_id: str) -> dict[str, Any]:
        """Cancel a working order, with the gRPC API's checks (``trade`` scope on its
        account, its quotas): :class:`NotFound`, :class:`Conflict` or :class:`AuthError`."""
        from sandtrade.v1 import trading_pb2 as tpb

        parts = self._need()
        parts.trading.cancel_order(principal, tpb.CancelOrderRequest(order_id=order_id))
        order = parts.store.get_order(order_id)
        if order is None:
            raise NotFound(f"order {order_id!r} does not exist")
        return order_json(order)

    def close_position(self, principal: Principal, account: str, symbol: str
                       ) -> dict[str, Any]:
        """Flatten a position with a market order for its whole quantity (``trade`` scope)."""
        from sandtrade.v1 import common_pb2 as cpb
        from sandtrade.v1 import trading_pb2 as tpb

        parts = self._need()
        target = principal.require("trade", account or None)
        qty = parts.live.call(lambda b: b.position_qty(target, symbol)
                              if b.has_account(target) else 0.0)
        if not qty:
            raise Conflict(f"account {target!r} holds no {symbol!r}")
        side = cpb.ORDER_SIDE_SELL if qty > 0 else cpb.ORDER_SIDE_BUY
        answer = parts.trading.submit_order(principal, tpb.SubmitOrderRequest(
            account=target, symbol=symbol, side=side, qty=abs(qty),
            type=cpb.ORDER_TYPE_MARKET, reduce_only=True, tag="closed from the dashboard"))
        order = parts.store.get_order(answer.order.id)
        return order_json(order) if order is not None else {"id": answer.order.id}

    def strategies(self, principal: Principal, account: str) -> list[dict[str, Any]]:
        """The account's strategies: state, restarts, kill reason, last errors, CPU, memory."""
        parts = self._need()
        target = self._readable(principal, account)
        out = []
        for record, _ in parts.strategies.list_all(target):
            _, state, status = parts.strategies.status(record.account, record.name)
            out.append({"name": record.name, "account": record.account, "state": state,
                        "restarts": status.restarts, "kill_reason": status.kill_reason,
                        "last_errors": list(status.last_errors)[-5:],
                        "cpu_seconds": round(status.cpu_seconds, 1),
                        "rss_mb": round(status.rss_bytes / 2**20, 1),
                        "symbols": list(record.symbols), "desired": record.desired})
        return out

    def position_groups(self, principal: Principal, account: str, points: int = 121
                        ) -> list[dict[str, Any]]:
        """The account's open multi-leg option positions (ListPositionGroups' answer: legs,
        marks, greeks, max profit and loss, break-evens, for the units held), each with its
        payoff at the first expiry and at the marks' time (``payoff``: ``prices``,
        ``at_expiry``, ``now``, ``points`` underlying prices from 15 % under the lowest
        strike to 15 % over the highest)."""
        from google.protobuf.json_format import MessageToDict

        from sandtrade.options.picture import payoff_data
        from sandtrade.rpc.convert import group_payoff_legs
        from sandtrade.v1 import trading_pb2 as tpb

        parts = self._need()
        target = self._readable(principal, account)
        resp = parts.trading.list_position_groups(
            principal, tpb.ListPositionGroupsRequest(account=target, page_size=100))
        out = []
        for group in resp.groups:
            view = MessageToDict(group, preserving_proto_field_name=True,
                                 always_print_fields_with_no_presence=True)
            legs = group_payoff_legs(group.legs)
            if any(leg.strike is not None for leg in legs):
                data = payoff_data(legs, points=points)
                view["payoff"] = {"prices": data.prices, "at_expiry": data.at_expiry,
                                  "now": data.today}
            out.append(view)
        return out

    def strategy_logs(self, principal: Principal, account: str, name: str, tail: int = 200
                      ) -> list[dict[str, Any]]:
        """The last ``tail`` lines of a strategy's log, oldest first."""
        target = self._readable(principal, account)
        lines = self._need().strategies.logs(target, name, max(1, min(tail, 2000)))
        return [{"strategy": name, "time": line.time.timestamp(), "line": line.line[:2000],
                 "origin": line.origin} for line in lines]

    def strategy_plots(self, principal: Principal, account: str, symbol: str = ""
                       ) -> list[dict[str, Any]]:
        """What the account's strategies plotted lately (``ctx.plot``), kept in the host's
        memory since it started: one entry a series, ``{strategy, name, pane ("price" or
        "below"), color (None: the page picks), symbol, points: [[time, value], ...]}``,
        times in seconds since 1970, oldest first; only the series plotted on ``symbol``'s
        bars when it is given."""
        parts = self._need()
        target = self._readable(principal, account)
        out = []
        for record, _ in parts.strategies.list_all(target):
            for series in parts.strategies.plots(record.account, record.name):
                if not symbol or series["symbol"] == symbol:
                    out.append({"strategy": record.name, **series})
        return out

    def set_strategy_running(self, principal: Principal, account: str, name: str,
                             running: bool) -> dict[str, Any]:
        """Start or stop a strategy (``admin`` scope on its account, as over gRPC)."""
        parts = self._need()
        target = principal.require("admin", account or None)
        manager = parts.strategies
        record = manager.start(target, name) if running else manager.stop(target, name)
        return {"name": record.name, "account": record.account,
                "state": manager.state_of(record.id)}

    def routes(self, principal: Principal, account: str) -> list[dict[str, Any]]:
        """Where the account's signals may go, each with whether a person paused it
        (:mod:`sandtrade.signals.pauses`): ``{route, label, paused, since, by, can_pause}``.
        The account as a whole first, then its paper broker, its strategies and the live
        brokers routes may reach (those the operator's alone to pause)."""
        parts = self._need()
        target = self._readable(principal, account)
        listed = [(f"account:{target}", "every signal of the account"),
                  (f"paper:{target}", "the paper broker")]
        if parts.strategies is not None:
            listed += [(f"strategy:{target}/{record.name}", f"strategy {record.name}")
                       for record, _ in parts.strategies.list_all(target)]
        listed += [(f"live:{name}", f"live broker {name} (every account)")
                   for name in self.trading_mode()["brokers"]]
        paused = self._pipeline.pauses.all()
        can_trade = principal.has("trade")
        operator = principal.account == ALL_ACCOUNTS
        return [{"route": route, "label": label, "paused": route in paused,
                 "since": paused.get(route, {}).get("since", ""),
                 "by": paused.get(route, {}).get("by", ""),
                 "can_pause": can_trade and (operator or not route.startswith("live:"))}
                for route, label in listed]

    def set_route_paused(self, principal: Principal, route: str, paused: bool
                         ) -> dict[str, Any]:
        """Pause or resume a route (``trade`` scope on its account; a live broker's, which
        serves every account, the operator's alone). Signals it would carry are journaled
        as dropped, with the reason, while it is paused."""
        from sandtrade.signals.pauses import authorize

        route, who = authorize(principal, route)
        info = self._pipeline.pauses.set(route, paused, who)
        return {"route": route, "paused": info is not None,
                "since": (info or {}).get("since", ""), "by": (info or {}).get("by", "")}

    def symbols(self) -> list[str]:
        """The symbols the host has prices of."""
        hub = self._need().hub
        return hub.symbols() if hub is not None else []

    def bars(self, principal: Principal, symbol: str, interval: str = "",
             limit: int = 500) -> list[dict[str, Any]]:
        """The last bars of ``symbol`` (``read`` scope), resampled to ``interval`` ("5min",
        "1h", ...; empty: as the feed gives them); :class:`InvalidField` for an interval that
        does not fit."""
        from sandtrade.errors import DataError as _DataError
        from sandtrade.market.resample import resample

        principal.require_scope("read")
        hub = self._need().hub
        if hub is None:
            return []
        limit = max(1, min(limit, 5000))
        if not interval:
            raw = hub.bars(symbol, limit=limit)
        else:
            try:
                raw = list(resample(hub.bars(symbol, limit=limit * 64), interval))[-limit:]
            except (ValueError, _DataError) as e:
                raise InvalidField("interval", str(e)) from None
        return [{"time": b.time.timestamp(), "open": b.open, "high": b.high, "low": b.low,
                 "close": b.close, "volume": b.volume} for b in raw]

    def events_after(self, principal: Principal, last_id: int, account: str | None = None,
                     limit: int = 500) -> tuple[list[WatchEvent], int, bool]:
        """The host's changes after event ``last_id`` that ``principal`` may see (of
        ``account`` only, when given), the id to continue after, and whether events were
        forgotten since ``last_id`` (then read the state afresh)."""
        watch = self._need().watch
        if watch is None:
            return [], last_id, False
        events, gap = watch.after(last_id, limit)
        upto = events[-1].id if events else max(last_id, 0)
        everyone = principal.account == ALL_ACCOUNTS

        def visible(e: WatchEvent) -> bool:
            if e.account is None:
                return True
            if not everyone and e.account != principal.account:
                return False
            return account is None or e.account == account

        return [e for e in events if visible(e)], upto, gap

    def last_event_id(self) -> int:
        """The id of the newest event (0 before the first)."""
        watch = self._need().watch
        return watch.last_id if watch is not None else 0

    async def wait_events(self, last_id: int, timeout: float) -> None:
        """Return when an event after ``last_id`` exists, or after ``timeout`` seconds (on
        the HTTP server's event loop)."""
        watch = self._need().watch
        if watch is None:
            await asyncio.sleep(timeout)
            return
        await watch.wait(last_id, timeout)


@dataclass(frozen=True)
class HostParts:
    """What :class:`HostApi` reads for pages of the host (the runtime builds it)."""

    live: DurableBroker
    store: Store
    trading: TradingServicer
    strategies: StrategyManager
    hub: MarketHub | None = None
    watch: HostWatch | None = None
