"""The client: typed methods over the gRPC API, retries with backoff, the offline queue.

It is one file because :class:`Client` is one class whose methods mirror the four gRPC
services (trading, market data, strategies, signals), all through the one retry path
(``Client._call``) and the offline queue's flusher defined here; the errors and result types
around it are what those methods raise and return.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sandtrade import __version__
from sandtrade.broker.quotas import Quotas
from sandtrade.broker.risk import RiskRules, RiskStanding
from sandtrade.client.offline import FailedRequest, OfflineQueue
from sandtrade.market.hub import FeedStatus
from sandtrade.models import (
    Account,
    Bar,
    ExitSpec,
    Leg,
    Order,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    TimeInForce,
    TradeUpdate,
    implied_order_type,
)
from sandtrade.options.chain import OptionChain
from sandtrade.options.greeks import AccountGreeks, PositionGreeks
from sandtrade.options.payoff import PayoffLeg
from sandtrade.options.templates import StrategyPlan
from sandtrade.rpc import convert
from sandtrade.v1 import market_pb2 as mpb
from sandtrade.v1 import market_pb2_grpc, signals_pb2_grpc, strategies_pb2_grpc, trading_pb2_grpc
from sandtrade.v1 import signals_pb2 as sgpb
from sandtrade.v1 import strategies_pb2 as spb
from sandtrade.v1 import trading_pb2 as tpb

__all__ = [
    "AccountSettingsInfo", "ApiError", "BacktestProgress", "Client", "FailedPrecondition",
    "InvalidArgument", "LogEntry", "NotFound", "PermissionDenied", "PositionGroupInfo",
    "QueuedOrder", "QueuedSignal", "ResourceExhausted", "SignalInfo", "StrategyInfo",
    "StrategyOrder", "StrategyStatus", "Unauthenticated", "Unavailable",
]

log = logging.getLogger(__name__)
T = TypeVar("T")
#: A take profit or stop loss as the client takes it: a price, an ExitSpec, or its fields.
ExitLike = float | ExitSpec | Mapping[str, float]

#: Codes after which a request with an idempotency key is safely sent again.
TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.ABORTED})


class ApiError(Exception):
    """The host refused a call: ``code`` (a grpc.StatusCode), the message, and ``field`` when
    the host named the request field at fault."""

    def __init__(self, code: grpc.StatusCode, message: str, field: str | None = None,
                 diagnostics: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field
        #: ``file:line: message`` of each problem, when a strategy failed the check.
        self.diagnostics = diagnostics

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


class InvalidArgument(ApiError):
    """A request field is wrong (``field`` names it)."""


class NotFound(ApiError):
    """The account, order or symbol does not exist (or is not yours)."""


class PermissionDenied(ApiError):
    """The token lacks the scope, or acts for another account."""


class Unauthenticated(ApiError):
    """No token, or a malformed, unknown or revoked one."""


class FailedPrecondition(ApiError):
    """The request is valid but the thing it acts on is in the wrong state."""


class ResourceExhausted(ApiError):
    """A limit was hit (message size, a stream that fell behind)."""


class Unavailable(ApiError):
    """The host could not be reached (after every retry)."""


_ERRORS: dict[grpc.StatusCode, type[ApiError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
}


def api_error(e: grpc.RpcError) -> ApiError:
    """The typed error for a failed call, with the field from a BadRequest detail."""
    code = e.code()  # type: ignore[attr-defined]
    message = e.details() or code.name  # type: ignore[attr-defined]
    field = None
    diagnostics: list[str] = []
    try:
        status = rpc_status.from_call(e)  # type: ignore[arg-type]
    except Exception:
        status = None
    if status is not None:
        for detail in status.details:
            bad = error_details_pb2.BadRequest()
            failure = error_details_pb2.PreconditionFailure()
            if detail.Unpack(bad) and bad.field_violations:
                field = bad.field_violations[0].field
            elif detail.Unpack(failure):
                diagnostics.extend(
                    f"{v.subject}: {v.description}" if not v.subject.endswith(":0")
                    else f"{v.subject[:-2]}: {v.description}" for v in failure.violations)
    return _ERRORS.get(code, ApiError)(code, message, field, tuple(diagnostics))


@dataclass(frozen=True, slots=True)
class StrategyInfo:
    """A stored strategy and where it is (stopped, starting, running, failed).

    A strategy is named within its account; ``id`` is new when a name is used again after a
    delete."""

    name: str
    account: str
    symbols: tuple[str, ...]
    params: dict[str, Any]
    state: str
    source_sha256: str
    uploaded_at: datetime | None
    id: str = ""


@dataclass(frozen=True, slots=True)
class StrategyStatus:
    """A strategy's life: its worker's resource use, why it was last killed, its errors."""

    strategy: StrategyInfo
    cpu_seconds: float
    rss_bytes: int
    kill_reason: str
    last_errors: tuple[str, ...]
    restarts: int
    #: Bars waiting in its queue, and the age of the oldest (it is that far behind).
    lag_bars: int = 0
    lag_seconds: float = 0.0
    #: Bars merged or dropped because it fell behind by more than its backlog.
    bars_coalesced: int = 0
    bars_dropped: int = 0


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One line of a strategy's log and who wrote it: ``strategy`` (its own text, which may
    read like anything), ``host`` (the host's note) or ``error`` (a hook's error)."""

    time: datetime
    line: str
    origin: str


_LOG_ORIGINS = {spb.LOG_ORIGIN_STRATEGY: "strategy", spb.LOG_ORIGIN_HOST: "host",
                spb.LOG_ORIGIN_ERROR: "error"}


@dataclass(frozen=True, slots=True)
class BacktestProgress:
    """A step of a back-test run by the host: bars done of the total, then (in the last one)
    the statistics and the closed trades."""

    bars_done: int
    bars_total: int
    stats: dict[str, Any] | None = None
    trades: tuple[dict[str, Any], ...] = ()


def _strategy_info(m: spb.Strategy) -> StrategyInfo:
    state = spb.StrategyState.Name(m.state).removeprefix("STRATEGY_STATE_").lower()
    return StrategyInfo(
        name=m.name, account=m.account, symbols=tuple(m.symbols),
        params=json_format.MessageToDict(m.params), state=state,
        source_sha256=m.source_sha256,
        uploaded_at=convert.time_from_pb(m.uploaded_at) if m.HasField("uploaded_at") else None,
        id=m.id)


@dataclass(frozen=True, slots=True)
class QueuedOrder:
    """An order kept in the offline queue because the host was unreachable; it is sent, in
    order, when the host is back. Look it up later by ``client_order_id``."""

    client_order_id: str
    queued_at: float


@dataclass(frozen=True, slots=True)
class QueuedSignal:
    """A signal kept in the offline queue because the host was unreachable; it is sent, in
    order, when the host is back, and executed once (its idempotency key goes with it)."""

    idempotency_key: str
    queued_at: float


_SIGNAL_STATUS = {v: k.removeprefix("SIGNAL_STATUS_").lower()
                  for k, v in sgpb.SignalStatus.items()}


@dataclass(frozen=True, slots=True)
class SignalInfo:
    """A journaled signal as the host answered it."""

    id: str
    source: str
    status: str
    #: Why it was rejected, dropped or failed, or what it did once executed; empty while
    #: it is on its way (validated, routed).
    reason: str
    account: str
    #: Where it goes: paper:ACCOUNT, strategy:ACCOUNT/NAME, live:BROKER, drop.
    destination: str
    format: str
    raw_body: str
    received_at: datetime
    idempotency_key: str
    alert_id: str
    order_ids: tuple[str, ...]
    history: tuple[tuple[str, datetime, str], ...]
    #: True when the idempotency key matched an earlier signal (this is that signal).
    duplicate: bool = False
    #: With ``dry_run``: how the body was read and what it would do.
    explanation: str = ""
    #: What the format read (fields, commands, ``ignored_fields``), as the host journaled it.
    parsed: dict[str, Any] = field(default_factory=dict)


def _signal_info(m: sgpb.Signal, duplicate: bool = False, explanation: str = ""
                 ) -> SignalInfo:
    return SignalInfo(
        id=m.id, source=m.source, status=_SIGNAL_STATUS.get(m.status, "unspecified"),
        reason=m.reason, account=m.account, destination=m.destination, format=m.format,
        raw_body=m.raw_body, received_at=convert.time_from_pb(m.received_at),
        idempotency_key=m.idempotency_key, alert_id=m.alert_id,
        order_ids=tuple(m.order_ids),
        history=tuple((_SIGNAL_STATUS.get(h.status, "unspecified"),
                       convert.time_from_pb(h.at), h.reason) for h in m.history),
        duplicate=duplicate, explanation=explanation,
        parsed=json.loads(m.parsed_json) if m.parsed_json else {})


class Client:
    """A connection to a sandtrade host.

    :param target: ``HOST:PORT`` or ``unix:/path/to.sock``.
    :param token: API token; defaults to the ``SANDTRADE_TOKEN`` environment variable.
    :param queue_path: file of the offline queue; None disables it (calls then raise
        :class:`Unavailable` when the host stays unreachable).
    :param timeout: deadline of one attempt, in seconds.
    :param retry_for: how long transient failures are retried, with backoff, before giving up
        (or queuing an order).
    :param agent: how the client names itself to the host (``python/VERSION``; the command
        line says ``cli/VERSION``): its orders' source is then ``client`` (or ``cli``).
    """

    def __init__(self, target: str = "127.0.0.1:50051", token: str | None = None, *,
                 queue_path: str | Path | None = None, timeout: float = 10.0,
                 retry_for: float = 5.0, backoff: tuple[float, float] = (0.05, 2.0),
                 agent: str = f"python/{__version__}") -> None:
        self.target = target
        token = token or os.environ.get("SANDTRADE_TOKEN")
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token}"),) if token else ()) + (
            ("x-sandtrade-client", agent),)
        self.timeout = timeout
        self.retry_for = retry_for
        self.backoff = backoff
        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.enable_retries", 0),
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 2000),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ])
        self._trading = trading_pb2_grpc.TradingServiceStub(self._channel)
        self._market = market_pb2_grpc.MarketDataServiceStub(self._channel)
        self._strategies = strategies_pb2_grpc.StrategyServiceStub(self._channel)
        self._signals = signals_pb2_grpc.SignalServiceStub(self._channel)
        self.queue = OfflineQueue(queue_path) if queue_path is not None else None
        self._flush_lock = threading.Lock()
        self._flusher: threading.Thread | None = None
        self._closed = threading.Event()
        if self.queue is not None and len(self.queue):
            self._start_flusher()

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        self._closed.set()
        if self._flusher is not None:
            self._flusher.join(timeout=self.timeout)
        self._channel.close()
        if self.queue is not None:
            self.queue.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, fn: Callable[..., T], request: Any, *, retry: bool = True) -> T:
        """One RPC, retried on transient failures for ``retry_for`` seconds with jittered
        exponential backoff. Only calls that are safe to repeat pass ``retry=True``."""
        deadline = time.monotonic() + self.retry_for
        delay = self.backoff[0]
        while True:
            try:
                return fn(request, timeout=self.timeout, metadata=self._metadata)
            except grpc.RpcError as e:
                err = api_error(e)
                if not retry or err.code not in TRANSIENT or time.monotonic() >= deadline:
                    raise err from None
                log.debug("%s: %s; retrying in %.2f s", self.target, err, delay)
                time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
                delay = min(delay * 2, self.backoff[1]) * random.uniform(0.8, 1.2)

    # ------------------------------------------------------------------ trading

    def submit_order(self, symbol: str, side: OrderSide | str, qty: float | None = None, *,
                     equity_fraction: float | None = None,
                     type: OrderType | str | None = None,
                     limit_price: float | None = None, stop_price: float | None = None,
                     tif: TimeInForce | str = TimeInForce.GTC, reduce_only: bool = False,
                     client_order_id: str | None = None, tag: str | None = None,
                     account: str | None = None, take_profit: ExitLike | None = None,
                     stop_loss: ExitLike | None = None, trail_price: float | None = None,
                     trail_percent: float | None = None,
                     order_class: OrderClass | str | None = None) -> Order | QueuedOrder:
        """Send an order; executed at most once whatever happens to the connection.

        Without ``type`` the prices say which: ``limit_price`` alone makes a limit order,
        ``stop_price`` alone a stop order, both a stop-limit, neither a market order; a type
        that contradicts the prices is refused (:class:`InvalidArgument`).

        ``take_profit``/``stop_loss`` (a price, or an :class:`~sandtrade.models.ExitSpec` or
        a mapping of its fields: ``{"percent": 2}``) make a bracket (both) or an oto (one);
        ``trail_price``/``trail_percent`` a trailing stop (``type="trailing_stop"``) or an
        oto entry's trailing exit; ``order_class="oco"`` an exit-only pair on a held
        position. Once the entry fills, :meth:`legs` lists its exits.

        Returns the order as the host stored it (status ``rejected`` carries the reason), or,
        with an offline queue and the host unreachable, a :class:`QueuedOrder`.
        """
        request = _order_request(symbol, side, qty, equity_fraction=equity_fraction, type=type,
                                 limit_price=limit_price, stop_price=stop_price, tif=tif,
                                 reduce_only=reduce_only, client_order_id=client_order_id,
                                 tag=tag, account=account, take_profit=take_profit,
                                 stop_loss=stop_loss, trail_price=trail_price,
                                 trail_percent=trail_percent, order_class=order_class)
        if self.queue is not None and len(self.queue):
            # Orders behind queued ones wait their turn: while the background flusher is
            # still waiting for the host, join the queue at once.
            flushing = self._flusher is not None and self._flusher.is_alive()
            if flushing or not self.flush(self.retry_for):
                return self._enqueue(request)
        try:
            resp = self._call(self._trading.SubmitOrder, request)
        except Unavailable:
            if self.queue is None:
                raise
            return self._enqueue(request)
        return convert.order_from_pb(resp.order)

    def submit_multileg(self, legs: Iterable[Leg | Mapping[str, Any]], qty: float | None = None,
                        *, limit_price: float | None = None,
                        tif: TimeInForce | str = TimeInForce.DAY,
                        client_order_id: str | None = None, tag: str | None = None,
                        account: str | None = None, close_group: str | None = None) -> Order:
        """Send a multi-leg options order: ``legs`` (:class:`~sandtrade.models.Leg`, or
        mappings of its fields: ``{"symbol": "SPY251219C00450000", "side": "buy",
        "ratio": 1, "intent": "open"}``), ``qty`` spreads, at a net ``limit_price`` per spread
        (positive a debit, negative a credit) or at market. Its legs fill together or not at
        all; ``close_group`` (the id of the order that opened a position group, no legs)
        closes that group as one. Executed at most once (a client order id is made when none
        is given). Returns the order as the host stored it; ``order.legs`` are its legs."""
        request = tpb.SubmitOrderRequest(
            account=account or "", side=convert.side_to_pb(OrderSide.BUY),
            order_class=convert.class_to_pb(OrderClass.MLEG), tag=tag or "",
            client_order_id=client_order_id or _new_key(), close_group=close_group or "",
            tif=convert.tif_to_pb(TimeInForce(tif)))
        if qty is not None:
            request.qty = qty
        if limit_price is not None:
            request.limit_price = limit_price
        for leg in legs:
            checked = leg if isinstance(leg, Leg) else Leg.model_validate(leg)
            convert.leg_to_pb(checked, request.legs.add())
        resp = self._call(self._trading.SubmitOrder, request)
        return convert.order_from_pb(resp.order)

    def submit_orders(self, orders: Iterable[Mapping[str, Any]]
                      ) -> Iterator[Order | ApiError]:
        """Send many orders over one stream (much faster than one call each); yields, in
        order, each stored order or the :class:`ApiError` that refused it.

        Each mapping holds :meth:`submit_order`'s arguments (``symbol``, ``side``, ``qty``,
        ...). Every order carries a ``client_order_id`` (generated when absent), so after a
        broken stream the same orders can be sent again and none executes twice.
        """
        def requests() -> Iterator[tpb.SubmitOrderStreamRequest]:
            for spec in orders:
                yield tpb.SubmitOrderStreamRequest(order=_order_request(**spec))

        call = self._trading.SubmitOrderStream(requests(), metadata=self._metadata)
        try:
            for resp in call:
                if resp.HasField("error"):
                    code = next((c for c in grpc.StatusCode if c.value[0] == resp.error.code),
                                grpc.StatusCode.UNKNOWN)
                    yield _ERRORS.get(code, ApiError)(code, resp.error.message,
                                                      resp.error.field or None)
                else:
                    yield convert.order_from_pb(resp.result.order)
        except grpc.RpcError as e:
            raise api_error(e) from None
        finally:
            call.cancel()

    def _enqueue(self, request: tpb.SubmitOrderRequest) -> QueuedOrder:
        assert self.queue is not None
        item = self.queue.put("order", request.client_order_id, request.SerializeToString())
        log.warning("host %s unreachable: order %s queued in %s", self.target,
                    request.client_order_id, self.queue.path)
        self._start_flusher()
        return QueuedOrder(request.client_order_id, item.queued_at)

    def cancel_order(self, order_id: str) -> Order:
        """Cancel a working order (a repeat after a lost reply returns the canceled order)."""
        request = tpb.CancelOrderRequest(order_id=order_id)
        try:
            return convert.order_from_pb(self._call(self._trading.CancelOrder, request).order)
        except FailedPrecondition:
            order = self.get_order(order_id)
            if order.status is OrderStatus.CANCELED:
                return order
            raise

    def get_order(self, order_id: str | None = None, *, client_order_id: str | None = None,
                  account: str | None = None) -> Order:
        """An order by id, or by the client order id it was sent with."""
        request = tpb.GetOrderRequest(order_id=order_id or "",
                                      client_order_id=client_order_id or "",
                                      account=account or "")
        return convert.order_from_pb(self._call(self._trading.GetOrder, request).order)

    def list_orders(self, *, account: str | None = None, status: OrderStatus | str | None = None,
                    open_only: bool = False, page_size: int = 500) -> Iterator[Order]:
        """Every order of the account in creation order, fetched page by page."""
        token = ""
        while True:
            request = tpb.ListOrdersRequest(
                account=account or "", open_only=open_only, page_size=page_size,
                page_token=token)
            if status:
                request.status = convert.status_to_pb(OrderStatus(status))
            resp = self._call(self._trading.ListOrders, request)
            for m in resp.orders:
                yield convert.order_from_pb(m)
            token = resp.next_page_token
            if not token:
                return

    def legs(self, order_id: str, *, account: str | None = None) -> list[Order]:
        """The exits of a bracket or oto entry (or an oco's stop loss), in creation order:
        none before the entry fills."""
        return [o for o in self.list_orders(account=account) if o.parent_id == order_id]

    def positions(self, account: str | None = None) -> list[Position]:
        """Open positions, marked at the last known prices."""
        resp = self._call(self._trading.ListPositions,
                          tpb.ListPositionsRequest(account=account or ""))
        return [convert.position_from_pb(p) for p in resp.positions]

    def account(self, account: str | None = None) -> Account:
        """Cash, equity and buying power."""
        resp = self._call(self._trading.GetAccount, tpb.GetAccountRequest(account=account or ""))
        return convert.account_from_pb(resp.account)

    def performance(self, account: str | None = None, by: str = "account"
                    ) -> dict[str, dict[str, Any]]:
        """The account's live performance by the back-test's definitions, as a whole
        (``by="account"``) or per ``"strategy"`` or per ``"source"``: ``{key: {return_pct,
        max_drawdown_pct, sharpe, win_rate_pct, profit_factor, trades}}`` (None where a
        back-test shows NaN)."""
        grouping = {"account": tpb.PERFORMANCE_GROUPING_ACCOUNT,
                    "strategy": tpb.PERFORMANCE_GROUPING_STRATEGY,
                    "source": tpb.PERFORMANCE_GROUPING_SOURCE}.get(by)
        if grouping is None:
            raise ValueError(f"by must be account, strategy or source (got {by!r})")
        resp = self._call(self._trading.GetPerformance, tpb.GetPerformanceRequest(
            account=account or "", by=grouping))
        out: dict[str, dict[str, Any]] = {}
        for g in resp.groups:
            figures: dict[str, Any] = {
                name: (None if math.isnan(v := getattr(g, name)) else v)
                for name in ("return_pct", "max_drawdown_pct", "sharpe", "win_rate_pct",
                             "profit_factor")}
            out[g.key] = {**figures, "trades": int(g.trades)}
        return out

    def account_settings(self, account: str | None = None) -> AccountSettingsInfo:
        """The account's risk rules, its standing today against them, and its quotas."""
        resp = self._call(self._trading.GetAccountSettings,
                          tpb.GetAccountSettingsRequest(account=account or ""))
        return _settings_info(resp)

    def set_account_settings(self, risk: RiskRules | None, *, account: str | None = None,
                             request_id: str | None = None) -> AccountSettingsInfo:
        """Replace the account's risk rules (admin); None: back to the host's configured
        ones. Retried safely: the request carries an idempotency key."""
        request = tpb.SetAccountSettingsRequest(account=account or "",
                                                use_defaults=risk is None,
                                                request_id=request_id or _new_key())
        if risk is not None:
            convert.risk_rules_to_pb(risk, request.settings.risk)
        return _settings_info(self._call(self._trading.SetAccountSettings, request))

    def trade_updates(self, account: str | None = None) -> Iterator[TradeUpdate]:
        """Order and fill updates as they happen; reconnects (with backoff) when the stream
        drops. Updates that happen while disconnected are not replayed: list orders to catch
        up."""
        delay = self.backoff[0]
        while not self._closed.is_set():
            call = self._trading.StreamTradeUpdates(
                tpb.StreamTradeUpdatesRequest(account=account or ""), metadata=self._metadata)
            try:
                for m in call:
                    delay = self.backoff[0]
                    fill = convert.fill_from_pb(m.fill) if m.HasField("fill") else None
                    yield TradeUpdate(convert.order_from_pb(m.order), fill)
                return
            except grpc.RpcError as e:
                err = api_error(e)
                if err.code not in TRANSIENT:
                    raise err from None
                time.sleep(delay)
                delay = min(delay * 2, self.backoff[1])
            finally:
                call.cancel()

    # ------------------------------------------------------------------ market data

    def bars(self, symbol: str, start: datetime | None = None, end: datetime | None = None,
             limit: int = 0) -> list[Bar]:
        """History of ``symbol`` (published bars only), oldest first."""
        request = mpb.GetBarsRequest(symbol=symbol, limit=limit)
        if start is not None:
            convert.time_to_pb(start, request.start)
        if end is not None:
            convert.time_to_pb(end, request.end)

        def fetch(req: mpb.GetBarsRequest, **kw: Any) -> list[Bar]:
            return [convert.bar_from_pb(b) for chunk in self._market.GetBars(req, **kw)
                    for b in chunk.bars]

        return self._call(fetch, request)

    def latest_quote(self, symbol: str) -> Quote:
        resp = self._call(self._market.GetLatestQuote, mpb.GetLatestQuoteRequest(symbol=symbol))
        return convert.quote_from_pb(resp.quote)

    def symbols(self) -> list[str]:
        return list(self._call(self._market.ListSymbols, mpb.ListSymbolsRequest()).symbols)

    def feed_status(self) -> FeedStatus:
        """Where the host's market feed is: per symbol running, looping, synthetic or ended
        (no more prices: orders on it are refused), with a line for people in ``message``."""
        return convert.feed_status_from_pb(
            self._call(self._market.GetFeedStatus, mpb.GetFeedStatusRequest()))

    # ------------------------------------------------------------------ options

    def option_chain(self, underlying: str, expiry: str | None = None, *,
                     min_strike: float | None = None, max_strike: float | None = None,
                     strikes_around_spot: int = 0) -> OptionChain:
        """``underlying``'s option chain now, as the host prices it: one expiry (``"30d"``,
        ``"monthly"``, ``"2026-12-18"``) or all, strikes in a range or the
        ``strikes_around_spot`` nearest the spot on each side."""
        request = mpb.GetOptionChainRequest(underlying=underlying, expiry=expiry or "",
                                            strikes_around_spot=strikes_around_spot)
        if min_strike is not None:
            request.min_strike = min_strike
        if max_strike is not None:
            request.max_strike = max_strike
        return convert.chain_from_pb(self._call(self._market.GetOptionChain, request))

    def greeks(self, account: str | None = None) -> AccountGreeks:
        """The account's positions marked, with their P&L and greeks, and the sums
        (``.by_underlying()`` per underlying)."""
        resp = self._call(self._market.GetOptionGreeks,
                          mpb.GetOptionGreeksRequest(account=account or ""))
        return convert.account_greeks_from_pb(resp)

    def submit_template(self, name: str, underlying: str, qty: float | None = None, *,
                        expiry: str = "30d", limit_price: float | None = None,
                        tif: TimeInForce | str = TimeInForce.DAY,
                        client_order_id: str | None = None, tag: str | None = None,
                        account: str | None = None, validate_only: bool = False,
                        **params: Any) -> StrategyOrder:
        """Build strategy template ``name`` (``iron_condor``, ``bull_put_spread``, ...) on
        ``underlying``'s chain now, with its parameters (``short_delta=0.16, width=5``), and
        send its legs as one multi-leg order of ``qty`` spreads: at a net ``limit_price``
        per spread (on a credit strategy a positive price is the credit to receive) or at
        market. With ``validate_only`` nothing is sent: the answer is the plan alone.
        Executed at most once (a client order id is made when none is given); a refused
        parameter is :class:`InvalidArgument` naming it (``field`` ``parameters.width``)."""
        request = tpb.SubmitOptionStrategyRequest(
            account=account or "", strategy=name, underlying=underlying, expiry=expiry,
            tif=convert.tif_to_pb(TimeInForce(tif)), tag=tag or "",
            client_order_id="" if validate_only else client_order_id or _new_key(),
            validate_only=validate_only)
        if qty is not None:
            request.qty = qty
        if limit_price is not None:
            request.limit_price = limit_price
        convert.parameters_to_pb(params, request)
        resp = self._call(self._trading.SubmitOptionStrategy, request)
        return StrategyOrder(
            convert.plan_from_pb(resp.plan) if resp.HasField("plan") else None,
            convert.order_from_pb(resp.order) if resp.HasField("order") else None,
            resp.duplicate)

    def position_groups(self, account: str | None = None) -> list[PositionGroupInfo]:
        """The account's open multi-leg position groups, oldest first, each with its legs,
        greeks and bounds; close one with :meth:`close_group`."""
        out: list[PositionGroupInfo] = []
        token = ""
        while True:
            resp = self._call(self._trading.ListPositionGroups, tpb.ListPositionGroupsRequest(
                account=account or "", page_size=500, page_token=token))
            out.extend(_group_info(g) for g in resp.groups)
            token = resp.next_page_token
            if not token:
                return out

    def close_group(self, group_id: str, *, limit_price: float | None = None,
                    tif: TimeInForce | str = TimeInForce.DAY,
                    client_order_id: str | None = None, account: str | None = None) -> Order:
        """Close position group ``group_id`` (the id of the order that opened it) as one
        multi-leg order, at a net ``limit_price`` per spread or at market."""
        return self.submit_multileg([], limit_price=limit_price, tif=tif,
                                    client_order_id=client_order_id, account=account,
                                    close_group=group_id)

    # ------------------------------------------------------------------ strategies

    def upload_strategy(self, name: str, source: str, *, symbols: Iterable[str],
                        account: str | None = None,
                        params: Mapping[str, Any] | None = None) -> StrategyInfo:
        """Check and store a strategy (admin). A file that fails the check raises
        :class:`FailedPrecondition` whose ``diagnostics`` list every problem."""
        request = spb.UploadStrategyRequest(name=name, source=source, account=account or "",
                                            symbols=list(symbols))
        request.params.update(dict(params or {}))
        return _strategy_info(self._call(self._strategies.UploadStrategy, request).strategy)

    def start_strategy(self, name: str, *, account: str | None = None) -> StrategyInfo:
        """Start a stored strategy in its sandbox (admin); it keeps running across restarts
        of the host until stopped. ``account``: the strategy's (default: the token's own;
        the operator's token must name it when several accounts have that name)."""
        resp = self._call(self._strategies.StartStrategy,
                          spb.StartStrategyRequest(name=name, account=account or ""))
        return _strategy_info(resp.strategy)

    def stop_strategy(self, name: str, *, account: str | None = None) -> StrategyInfo:
        """Stop a strategy (its on_stop runs) (admin)."""
        resp = self._call(self._strategies.StopStrategy,
                          spb.StopStrategyRequest(name=name, account=account or ""))
        return _strategy_info(resp.strategy)

    def delete_strategy(self, name: str, *, account: str | None = None,
                        request_id: str | None = None) -> StrategyInfo:
        """Stop a strategy if it runs, then remove it with its ctx.state and log (admin); the
        name may then be used again for a new strategy. Retried safely (``request_id``, one
        made up when not given)."""
        resp = self._call(self._strategies.DeleteStrategy,
                          spb.DeleteStrategyRequest(name=name, account=account or "",
                                                    request_id=request_id or _new_key()))
        return _strategy_info(resp.strategy)

    def list_strategies(self, *, account: str | None = None) -> list[StrategyInfo]:
        """The strategies this token may see (only ``account``'s when given), by account
        and name."""
        out: list[StrategyInfo] = []
        token = ""
        while True:
            resp = self._call(self._strategies.ListStrategies,
                              spb.ListStrategiesRequest(page_size=1000, page_token=token,
                                                        account=account or ""))
            out.extend(_strategy_info(m) for m in resp.strategies)
            token = resp.next_page_token
            if not token:
                return out

    def strategy_status(self, name: str, *, account: str | None = None) -> StrategyStatus:
        """A strategy's state, its worker's resource use, why it was killed, its errors."""
        r = self._call(self._strategies.GetStrategyStatus,
                       spb.GetStrategyStatusRequest(name=name, account=account or ""))
        return StrategyStatus(_strategy_info(r.strategy), r.cpu_seconds, r.rss_bytes,
                              r.kill_reason, tuple(r.last_errors), r.restarts, r.lag_bars,
                              r.lag_seconds, r.bars_coalesced, r.bars_dropped)

    def fanout_stats(self, latest: int = 0) -> dict[str, Any]:
        """How fast the market reaches the running strategies (the operator's token): the
        mode, publish → last strategy done (``p50_ms``, ``p99_ms``, ``max_ms`` over the latest
        bars, ``bars`` in all) and each strategy's lag (``lags``: ``account/name`` →
        account, bars, seconds, and its own
        publish → done ``p99_ms`` over ``events`` bars); over the ``latest`` bars only when
        given."""
        r = self._call(self._strategies.GetFanoutStats,
                       spb.GetFanoutStatsRequest(latest=latest))
        return {"mode": r.mode, "strategies": r.strategies, "bars": r.bars,
                "p50_ms": r.p50_ms, "p99_ms": r.p99_ms, "max_ms": r.max_ms,
                "lags": {f"{lag.account}/{lag.name}": {
                    "account": lag.account, "bars": lag.bars, "seconds": lag.seconds,
                    "events": lag.events, "p99_ms": lag.p99_ms} for lag in r.lags}}

    def strategy_logs(self, name: str, *, tail: int = 100, follow: bool = False,
                      account: str | None = None) -> Iterator[LogEntry]:
        """A strategy's last ``tail`` log lines, then (``follow``) new ones as they come.

        A host that does not say who wrote a line (an older one) gives origin ``strategy``:
        its text is then never taken for the host's."""
        call = self._strategies.StreamStrategyLogs(
            spb.StreamStrategyLogsRequest(name=name, tail=tail, follow=follow,
                                          account=account or ""),
            metadata=self._metadata, timeout=None if follow else self.timeout)
        try:
            for m in call:
                yield LogEntry(convert.time_from_pb(m.time), m.line,
                               _LOG_ORIGINS.get(m.origin, "strategy"))
        except grpc.RpcError as e:
            raise api_error(e) from None
        finally:
            call.cancel()

    def run_backtest(self, name: str, *, symbols: Iterable[str] = (), cash: float = 0.0,
                     commission: float = 0.0, params: Mapping[str, Any] | None = None,
                     benchmark: str | None = None,
                     account: str | None = None) -> Iterator[BacktestProgress]:
        """Back-test a stored strategy on the host's history, in a sandbox: progress as it
        goes, the statistics and trades in the last item. ``benchmark``: the symbol Buy &
        Hold, Alpha and Beta are measured against (default: an equal-weight buy and hold)."""
        request = spb.RunBacktestRequest(name=name, symbols=list(symbols), cash=cash,
                                         commission=commission, benchmark=benchmark or "",
                                         account=account or "")
        request.params.update(dict(params or {}))
        call = self._strategies.RunBacktest(request, metadata=self._metadata)
        try:
            for m in call:
                if m.HasField("stats"):
                    stats = json_format.MessageToDict(m.stats)
                    ordered = {k: stats[k] for k in m.stat_names if k in stats}
                    yield BacktestProgress(
                        m.bars_done, m.bars_total, ordered | stats,
                        tuple(json_format.MessageToDict(t) for t in m.trades))
                else:
                    yield BacktestProgress(m.bars_done, m.bars_total)
        except grpc.RpcError as e:
            raise api_error(e) from None
        finally:
            call.cancel()

    # ------------------------------------------------------------------ signals

    def send_signal(self, body: str | Mapping[str, Any], *, format: str | None = None,
                    idempotency_key: str | None = None, dry_run: bool = False
                    ) -> SignalInfo | QueuedSignal:
        """Send a signal (a dict is sent as JSON); executed at most once whatever happens to
        the connection: it carries an idempotency key (generated when not given), so it is
        retried after a lost reply and the host recognises the repeat.

        Returns the journaled signal (``duplicate`` when the key was seen before; that
        signal is returned), or, with an offline queue and the host unreachable, a
        :class:`QueuedSignal`. A body the host cannot read raises :class:`InvalidArgument`
        naming the problem (the rejected signal is journaled all the same).
        """
        text = body if isinstance(body, str) else json.dumps(dict(body))
        request = sgpb.SubmitSignalRequest(body=text, format=format or "",
                                           idempotency_key=idempotency_key or _new_key(),
                                           dry_run=dry_run, source="python")
        if dry_run:
            resp = self._call(self._signals.SubmitSignal, request)
            return _signal_info(resp.signal, explanation=resp.explanation)
        if self.queue is not None and len(self.queue):
            flushing = self._flusher is not None and self._flusher.is_alive()
            if flushing or not self.flush(self.retry_for):
                return self._enqueue_signal(request)
        try:
            resp = self._call(self._signals.SubmitSignal, request)
        except Unavailable:
            if self.queue is None:
                raise
            return self._enqueue_signal(request)
        return _signal_info(resp.signal, resp.duplicate, resp.explanation)

    def _enqueue_signal(self, request: sgpb.SubmitSignalRequest) -> QueuedSignal:
        assert self.queue is not None
        item = self.queue.put("signal", request.idempotency_key, request.SerializeToString())
        log.warning("host %s unreachable: signal %s queued in %s", self.target,
                    request.idempotency_key, self.queue.path)
        self._start_flusher()
        return QueuedSignal(request.idempotency_key, item.queued_at)

    def get_signal(self, signal_id: str) -> SignalInfo:
        """One journaled signal, with every step of its life."""
        resp = self._call(self._signals.GetSignal, sgpb.GetSignalRequest(signal_id=signal_id))
        return _signal_info(resp.signal)

    def list_signals(self, *, account: str | None = None, limit: int = 100
                     ) -> list[SignalInfo]:
        """The newest ``limit`` journaled signals, newest first."""
        out: list[SignalInfo] = []
        token = ""
        while len(out) < limit:
            resp = self._call(self._signals.ListSignals, sgpb.ListSignalsRequest(
                account=account or "", page_size=min(1000, limit - len(out)),
                page_token=token))
            out += [_signal_info(m) for m in resp.signals]
            token = resp.next_page_token
            if not token:
                break
        return out

    def set_route_paused(self, route: str, paused: bool = True) -> dict[str, Any]:
        """Pause (or resume) a signal route: ``account:ACCOUNT``, ``paper:ACCOUNT``,
        ``strategy:ACCOUNT/NAME`` or ``live:BROKER``. While paused, a signal it would carry
        is journaled as dropped, with the reason, and never executed later. Returns
        ``{"route", "paused", "since", "by"}``."""
        resp = self._call(self._signals.SetRoutePaused,
                          sgpb.SetRoutePausedRequest(route=route, paused=paused))
        return {"route": resp.route.route, "paused": resp.paused, "since": resp.route.since,
                "by": resp.route.by}

    def paused_routes(self, *, account: str | None = None) -> list[dict[str, str]]:
        """The paused routes that concern ``account`` (the token's by default; every one for
        the operator): ``{"route", "since", "by"}`` each."""
        resp = self._call(self._signals.ListPausedRoutes,
                          sgpb.ListPausedRoutesRequest(account=account or ""))
        return [{"route": r.route, "since": r.since, "by": r.by} for r in resp.routes]

    # ------------------------------------------------------------------ offline queue

    def flush(self, timeout: float | None = None) -> bool:
        """Send queued requests, oldest first, until the queue is empty (True) or ``timeout``
        passes with the host still unreachable (False)."""
        if self.queue is None:
            return True
        end = None if timeout is None else time.monotonic() + timeout
        delay = self.backoff[0]
        with self._flush_lock:
            while True:
                item = self.queue.peek()
                if item is None:
                    return True
                try:
                    if item.kind == "signal":
                        self._signals.SubmitSignal(
                            sgpb.SubmitSignalRequest.FromString(item.payload),
                            timeout=self.timeout, metadata=self._metadata)
                    else:
                        self._trading.SubmitOrder(
                            tpb.SubmitOrderRequest.FromString(item.payload),
                            timeout=self.timeout, metadata=self._metadata)
                except grpc.RpcError as e:
                    err = api_error(e)
                    if err.code in TRANSIENT:
                        if (end is not None and time.monotonic() >= end) or \
                                self._closed.is_set():
                            return False
                        time.sleep(delay)
                        delay = min(delay * 2, self.backoff[1])
                        continue
                    log.error("queued %s %s refused by the host: %s", item.kind, item.key, err)
                    self.queue.fail(item, str(err))
                    continue
                self.queue.done(item.seq)
                delay = self.backoff[0]

    def failed_queued(self) -> list[FailedRequest]:
        """Queued requests the host refused when they were finally sent."""
        return [] if self.queue is None else self.queue.failed()

    def _start_flusher(self) -> None:
        if self._flusher is not None and self._flusher.is_alive():
            return

        def run() -> None:
            while not self._closed.is_set():
                if self.flush(timeout=1.0):
                    return

        self._flusher = threading.Thread(target=run, name="sandtrade-client-flush",
                                         daemon=True)
        self._flusher.start()


@dataclass(frozen=True, slots=True)
class StrategyOrder:
    """What :meth:`Client.submit_template` answers: the plan built (None for a duplicate)
    and the order it became (None with ``validate_only``)."""

    plan: StrategyPlan | None
    order: Order | None
    duplicate: bool = False


@dataclass(frozen=True, slots=True)
class PositionGroupInfo:
    """An open position group: the legs one multi-leg order opened and the account still
    holds, measured at the host's chain now. ``max_profit``/``max_loss`` are dollars for the
    units held at the first expiry, from the entry prices (None: unlimited)."""

    id: str
    account: str
    underlying: str
    order: Order | None
    legs: list[PositionGreeks]
    #: The legs as held, at their entry prices (for :mod:`sandtrade.options.picture`).
    payoff_legs: list[PayoffLeg]
    delta: float
    gamma: float
    theta: float
    vega: float
    market_value: float
    unrealized_pnl: float
    max_profit: float | None
    max_loss: float | None
    breakevens: list[float]

    @property
    def template(self) -> str | None:
        """The template that opened the group (its order's tag says ``template:NAME``, as
        every door tags one: SubmitOptionStrategy, alerts, ``ctx.options``), or None."""
        for word in ((self.order.tag or "") if self.order else "").split():
            if word.startswith("template:"):
                return word.removeprefix("template:") or None
        return None

    def to_json(self) -> dict[str, Any]:
        """As plain JSON values."""
        return {"id": self.id, "account": self.account, "underlying": self.underlying,
                "strategy": self.template or "",
                "legs": [leg._asdict() | {"avg_price": p.price, "iv": p.iv}
                         for leg, p in zip(self.legs, self.payoff_legs, strict=True)],
                "delta": self.delta, "gamma": self.gamma, "theta": self.theta,
                "vega": self.vega, "market_value": self.market_value,
                "unrealized_pnl": self.unrealized_pnl, "max_profit": self.max_profit,
                "max_loss": self.max_loss, "breakevens": self.breakevens}


def _group_info(m: tpb.PositionGroup) -> PositionGroupInfo:
    return PositionGroupInfo(
        m.id, m.account, m.underlying,
        convert.order_from_pb(m.order) if m.HasField("order") else None,
        [convert.position_greeks_from_pb(x) for x in m.legs],
        convert.group_payoff_legs(m.legs), *convert.greeks_from_pb(m.greeks), m.market_value,
        m.unrealized_pnl, m.max_profit if m.HasField("max_profit") else None,
        m.max_loss if m.HasField("max_loss") else None, list(m.breakevens))


@dataclass(frozen=True, slots=True)
class AccountSettingsInfo:
    """An account's risk rules, whether they are its own, and its day against them."""

    account: str
    risk: RiskRules
    own: bool
    standing: RiskStanding
    #: The quotas it trades under (None from a host that does not say).
    quotas: Quotas | None = None


def _settings_info(resp: Any) -> AccountSettingsInfo:
    quotas = None
    if resp.HasField("quotas"):
        quotas = Quotas(**{name: getattr(resp.quotas, name) for name in Quotas.model_fields})
    return AccountSettingsInfo(account=resp.account,
                               risk=convert.risk_rules_from_pb(resp.settings.risk),
                               own=resp.own,
                               standing=convert.risk_standing_from_pb(resp.standing),
                               quotas=quotas)


def _new_key() -> str:
    return uuid.uuid4().hex


def _order_request(symbol: str, side: OrderSide | str, qty: float | None = None, *,
                   equity_fraction: float | None = None,
                   type: OrderType | str | None = None, limit_price: float | None = None,
                   stop_price: float | None = None, tif: TimeInForce | str = TimeInForce.GTC,
                   reduce_only: bool = False, client_order_id: str | None = None,
                   tag: str | None = None, account: str | None = None,
                   take_profit: ExitLike | None = None, stop_loss: ExitLike | None = None,
                   trail_price: float | None = None, trail_percent: float | None = None,
                   order_class: OrderClass | str | None = None
                   ) -> tpb.SubmitOrderRequest:
    request = tpb.SubmitOrderRequest(
        account=account or "", symbol=symbol, side=convert.side_to_pb(OrderSide(side)),
        type=convert.type_to_pb(implied_order_type(limit_price, stop_price) if type is None
                                else OrderType(type)),
        tif=convert.tif_to_pb(TimeInForce(tif)),
        reduce_only=reduce_only, client_order_id=client_order_id or _new_key(), tag=tag or "")
    for name, value in (("qty", qty), ("equity_fraction", equity_fraction),
                        ("limit_price", limit_price), ("stop_price", stop_price),
                        ("trail_price", trail_price), ("trail_percent", trail_percent)):
        if value is not None:
            setattr(request, name, float(value))
    if order_class is not None:
        request.order_class = convert.class_to_pb(OrderClass(order_class))
    for name, spec in (("take_profit", take_profit), ("stop_loss", stop_loss)):
        if spec is None:
            continue
        if isinstance(spec, (int, float)):
            spec = ExitSpec(price=float(spec))
        elif not isinstance(spec, ExitSpec):
            spec = ExitSpec.model_validate(dict(spec))
        convert.exit_to_pb(spec, getattr(request, name))
    return request
