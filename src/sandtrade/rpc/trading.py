"""TradingService: the paper broker over gRPC.

It is one file because it is TradingService's one servicer: each method is a few checks
around a broker operation, and the operations strategy runs' doors share (``submit_op``,
``positions_op``, ``account_op``) sit beside the methods they are also answered by.
"""

from __future__ import annotations

import contextlib
import math
import queue
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, Literal

import grpc
from pydantic import ValidationError

from sandtrade.auth import AuthError, Principal, TokenAuthority
from sandtrade.backtest.performance import Grouping, performance
from sandtrade.broker.durable import DurableBroker
from sandtrade.broker.paper import PaperBroker
from sandtrade.broker.quotas import QuotaBook
from sandtrade.broker.risk import RiskRules, RiskStanding
from sandtrade.errors import (
    Conflict,
    InvalidField,
    NotFound,
    OrderRejected,
    QuotaExceeded,
    StoreError,
)
from sandtrade.models import (
    Account,
    Bar,
    Fill,
    Order,
    OrderClass,
    OrderSource,
    Position,
    TimeInForce,
    TradeUpdate,
    copied,
    implied_order_type,
)
from sandtrade.options.sources import OptionQuotes
from sandtrade.rpc import convert, option_orders
from sandtrade.rpc.errors import relay, streaming, unary
from sandtrade.store.base import Store
from sandtrade.v1 import trading_pb2 as tpb
from sandtrade.v1 import trading_pb2_grpc

__all__ = ["CLIENT_METADATA", "TradingServicer", "grpc_order_source", "page_size"]

MAX_ID_LENGTH = 128
#: Most stream requests applied as one group (one commit).
STREAM_BATCH = 256
_END = object()


#: The metadata key a client names itself with: ``python/VERSION`` (the Python client) or
#: ``cli/VERSION`` (the command line). Only the gRPC door reads it, so a caller can say which
#: gRPC client it is, never that its order came from TradingView, a strategy or a replay.
CLIENT_METADATA = "x-sandtrade-client"
_CLIENT_RE = re.compile(r"(python|cli)/[A-Za-z0-9.+_-]{1,40}")


def grpc_order_source(principal: Principal, context: grpc.ServicerContext) -> OrderSource:
    """The source of an order submitted over gRPC: ``client`` or ``cli`` when the caller's
    :data:`CLIENT_METADATA` says so (its text as the label), else ``grpc``; ``ref`` is
    always the token's id."""
    for key, value in context.invocation_metadata() or ():
        if key == CLIENT_METADATA and isinstance(value, str) and _CLIENT_RE.fullmatch(value):
            kind: Literal["client", "cli"] = "client" if value.startswith("python/") else "cli"
            return OrderSource(kind=kind, ref=principal.token_id[:128], label=value)
    return OrderSource(kind="grpc", ref=principal.token_id[:128])


_GROUPINGS: dict[int, Grouping] = {
    tpb.PERFORMANCE_GROUPING_UNSPECIFIED: "account", tpb.PERFORMANCE_GROUPING_ACCOUNT: "account",
    tpb.PERFORMANCE_GROUPING_STRATEGY: "strategy", tpb.PERFORMANCE_GROUPING_SOURCE: "source"}


def page_size(value: int, field: str = "page_size") -> int:
    """A request's page size: 0 means 100; 1 to 1,000 allowed."""
    if value == 0:
        return 100
    if not 1 <= value <= 1000:
        raise InvalidField(field, f"must be between 1 and 1000 (got {value})")
    return value


def ensure_account(broker: PaperBroker, store: Store, account: str) -> None:
    """Make sure the broker holds ``account`` (see :meth:`PaperBroker.ensure_account`); an
    unknown one is NOT_FOUND."""
    if not broker.ensure_account(account):
        raise NotFound(f"account {account!r} does not exist")


class TradingServicer(trading_pb2_grpc.TradingServiceServicer):
    """Orders, positions, account and trade updates of the token's account."""

    def __init__(self, live: DurableBroker, store: Store, auth: TokenAuthority, *,
                 configured_rules: Callable[[str], RiskRules | None] = lambda _: None,
                 quotas: QuotaBook | None = None,
                 options: OptionQuotes | None = None) -> None:
        self.live = live
        #: The host's option chains: templates are built and groups measured from them.
        self.options = options
        #: How fast each account may place and cancel orders (none: no quotas).
        self.quotas = quotas
        self.store = store
        self.auth = auth
        #: An account's rules from the host's file ([accounts.NAME.risk]), None for none:
        #: what SetAccountSettings(use_defaults) goes back to.
        self.configured_rules = configured_rules
        self._settings_lock = threading.Lock()
        #: The bars of a symbol the host has (its market hub's), where live performance is
        #: marked; the host sets it.
        self.prices: Callable[[str], list[Bar]] = lambda symbol: []
        #: Answers of recent SetAccountSettings by (account, request_id) (AIP-155).
        self._settings_done: dict[tuple[str, str], tpb.SetAccountSettingsResponse] = {}

    def _account(self, principal: Principal, scope: str, account: str) -> str:
        target = principal.require(scope, account or None)
        return target

    def submit_op(self, principal: Principal, request: tpb.SubmitOrderRequest, *,
                   fresh_client_id: bool = False, source: OrderSource | None = None,
                   order_id: str | None = None
                   ) -> Callable[[PaperBroker], tuple[Order, bool]]:
        """Check a request and return the broker operation that submits it.

        A ``client_order_id`` already used returns its first order (a retry never trades
        twice); the broker then needs no second look (``new_client_id``). With
        ``fresh_client_id`` the caller made the id just now, unique by construction (a
        strategy run's door), so even the first look, a query of the store for orders
        from before a restart, is spared. ``source`` is the door's (a request never names
        its own); None: a gRPC call of ``principal``'s token. ``order_id``: the id the order
        gets (a strategy run's door names it; a request never does)."""
        account = self._account(principal, "trade", request.account)
        if source is None:
            source = OrderSource(kind="grpc", ref=principal.token_id[:128])
        if request.legs or request.close_group or request.order_class == \
                convert.class_to_pb(OrderClass.MLEG):
            return self._multileg_op(account, request, source)
        args = _order_arguments(request)
        coid = args["client_order_id"]
        symbol = request.symbol
        quotas = self.quotas
        if quotas is not None:
            quotas.take("order", account)

        def op(b: PaperBroker) -> tuple[Order, bool]:
            ensure_account(b, self.store, account)
            if coid is not None and not fresh_client_id:
                first = b.find_client_order(account, coid)
                if first is not None:
                    return first.model_copy(), True
            if quotas is not None:
                quotas.check_open_orders(account, b.working_total(),
                                         lambda: b.working_count(account))
            if b.instrument(symbol) is None:
                raise InvalidField("symbol", f"unknown symbol {symbol!r} (known: "
                                   f"{', '.join(b.symbols()[:20]) or 'none yet'})")
            order = b.submit(account, symbol, new_client_id=True, source=source,
                             order_id=order_id, **args)
            return copied(order), False

        return op

    def _multileg_op(self, account: str, r: tpb.SubmitOrderRequest, source: OrderSource
                     ) -> Callable[[PaperBroker], tuple[Order, bool]]:
        """The broker operation of a multi-leg SubmitOrder, its fields checked."""
        if r.order_class not in (0, convert.class_to_pb(OrderClass.MLEG)):
            raise InvalidField("order_class", "legs are given: the order is ORDER_CLASS_MLEG")
        for name in ("equity_fraction", "stop_price", "trail_price", "trail_percent"):
            if r.HasField(name):
                raise InvalidField(name, "a multi-leg order takes none")
        qty = r.qty if r.HasField("qty") else None
        if qty is None and not r.close_group:
            raise InvalidField("qty", "required: the number of spreads")
        limit = r.limit_price if r.HasField("limit_price") else None
        for name, value in (("qty", qty), ("limit_price", limit)):
            if value is not None and not math.isfinite(value):
                raise InvalidField(name, f"must be a finite number (got {value})")
        otype = None if r.type == 0 else convert.type_from_pb(r.type)
        tif = TimeInForce.DAY if r.tif == 0 else convert.tif_from_pb(r.tif)
        if tif is None:
            raise InvalidField("tif", f"unknown time in force {r.tif}")
        if len(r.legs) > 64:
            raise InvalidField("legs", f"at most 64 (got {len(r.legs)})")
        legs = [convert.leg_from_pb(x) for x in r.legs]
        coid = r.client_order_id or None
        tag = r.tag or None
        close_group = r.close_group or None
        quotas = self.quotas
        if quotas is not None:
            quotas.take("order", account)

        def op(b: PaperBroker) -> tuple[Order, bool]:
            ensure_account(b, self.store, account)
            if coid is not None:
                first = b.find_client_order(account, coid)
                if first is not None:
                    return first.model_copy(), True
            if quotas is not None:
                quotas.check_open_orders(account, b.working_total(),
                                         lambda: b.working_count(account))
            order = b.submit_multileg(account, legs, qty or 0.0, type=otype,
                                      limit_price=limit, tif=tif, client_order_id=coid,
                                      tag=tag, close_group=close_group, source=source)
            return copied(order), False

        return op

    @unary
    def SubmitOrder(self, request: tpb.SubmitOrderRequest, context: grpc.ServicerContext,
            principal: Principal) -> tpb.SubmitOrderResponse:
        return self.submit_order(principal, request, source=grpc_order_source(principal,
                                                                               context))

    def submit_order(self, principal: Principal, request: tpb.SubmitOrderRequest, *,
                     fresh_client_id: bool = False, source: OrderSource | None = None
                     ) -> tpb.SubmitOrderResponse:
        """SubmitOrder as ``principal`` makes it, without a transport (a strategy run's
        door calls this: the same checks, the same scopes; ``fresh_client_id`` and
        ``source``: see :meth:`submit_op`)."""
        order, duplicate = self.live.call(
            self.submit_op(principal, request, fresh_client_id=fresh_client_id,
                           source=source))
        return tpb.SubmitOrderResponse(order=convert.order_to_pb(order), duplicate=duplicate)

    @streaming
    def SubmitOrderStream(self, request_iterator: Iterator[tpb.SubmitOrderStreamRequest],
                          context: grpc.ServicerContext,
                          principal: Principal) -> Iterator[tpb.SubmitOrderStreamResponse]:
        # A reader thread takes requests off the wire while the broker works the ones already
        # here: whatever has arrived meanwhile is applied as one group and committed once.
        inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

        def read() -> None:
            try:
                for item in request_iterator:
                    inbox.put(item)
            except Exception as e:  # the client went away: end the stream
                inbox.put(e)
            inbox.put(_END)

        threading.Thread(target=read, name="sandtrade-order-stream", daemon=True).start()
        source = grpc_order_source(principal, context)
        ended = False
        while not ended:
            batch = [inbox.get()]
            while len(batch) < STREAM_BATCH:
                try:
                    batch.append(inbox.get_nowait())
                except queue.Empty:
                    break
            answers: list[tuple[int, tpb.SubmitOrderStreamResponse, Order | None]] = []
            last = 0
            for item in batch:
                if item is _END or isinstance(item, Exception):
                    ended = True
                    break
                resp = tpb.SubmitOrderStreamResponse(
                    client_order_id=item.order.client_order_id)
                result: tuple[Order, bool] | None = None
                try:
                    seq, result, error = self.live.apply(
                        self.submit_op(principal, item.order, source=source))
                except Exception as e:
                    seq, error = 0, e
                if error is not None or result is None:
                    _order_error(resp.error, error or RuntimeError("no result"))
                    answers.append((seq, resp, None))
                else:
                    order, duplicate = result
                    resp.result.duplicate = duplicate
                    answers.append((seq, resp, order))
                last = max(last, seq)
            if last:
                # A failed commit is reported per answer below (live.lost).
                with contextlib.suppress(StoreError):
                    self.live.settle(last)
            for seq, resp, stored in answers:
                lost = self.live.lost(seq) if seq else None
                if lost is not None:
                    resp.ClearField("result")
                    resp.error.code = grpc.StatusCode.UNAVAILABLE.value[0]
                    resp.error.message = lost
                elif stored is not None:
                    convert.order_to_pb(stored, resp.result.order)
                yield resp

    @unary
    def CancelOrder(self, request: tpb.CancelOrderRequest, context: grpc.ServicerContext,
            principal: Principal) -> tpb.CancelOrderResponse:
        return self.cancel_order(principal, request)

    def cancel_order(self, principal: Principal,
                     request: tpb.CancelOrderRequest) -> tpb.CancelOrderResponse:
        """CancelOrder as ``principal`` makes it, without a transport (a strategy run's
        door calls this: the same checks, the same scopes)."""
        if not request.order_id:
            raise InvalidField("order_id", "required")
        principal.require_scope("trade")
        order_id = request.order_id

        def op(b: PaperBroker) -> Order:
            try:
                order = b.get_order(order_id)
            except OrderRejected:
                order = None
            if order is None or not _may_see(principal, order.account):
                stored = self.store.get_order(order_id)
                if stored is not None and _may_see(principal, stored.account):
                    raise Conflict(f"order {order_id} is {stored.status.value}; only working "
                                   "orders can be canceled")
                raise NotFound(f"order {order_id!r} does not exist")
            principal.require("trade", order.account)
            # A filled entry whose exits still work: canceling it cancels them.
            if not order.is_open and not any(o.is_open for o in b.children(order_id)):
                raise Conflict(f"order {order_id} is {order.status.value}; only working "
                               "orders can be canceled")
            if self.quotas is not None:
                self.quotas.take("cancel", order.account)
            return b.cancel(order_id).model_copy()

        return tpb.CancelOrderResponse(order=convert.order_to_pb(self.live.call(op)))

    @unary
    def GetOrder(self, request: tpb.GetOrderRequest, context: grpc.ServicerContext,
                 principal: Principal) -> tpb.GetOrderResponse:
        if request.order_id:
            order = self.store.get_order(request.order_id)
            if order is None or not _may_see(principal, order.account):
                raise NotFound(f"order {request.order_id!r} does not exist")
            principal.require("read", order.account)
        elif request.client_order_id:
            account = self._account(principal, "read", request.account)
            order = self.store.find_client_order(account, request.client_order_id)
            if order is None:
                raise NotFound(f"no order with client_order_id {request.client_order_id!r} "
                               f"in account {account!r}")
        else:
            raise InvalidField("order_id", "give order_id or client_order_id")
        return tpb.GetOrderResponse(order=convert.order_to_pb(order))

    @unary
    def ListOrders(self, request: tpb.ListOrdersRequest, context: grpc.ServicerContext,
            principal: Principal) -> tpb.ListOrdersResponse:
        return self.list_orders(principal, request)

    def list_orders(self, principal: Principal,
                    request: tpb.ListOrdersRequest) -> tpb.ListOrdersResponse:
        """ListOrders as ``principal`` makes it, without a transport (a strategy run's
        door calls this: the same checks, the same scopes)."""
        account = self._account(principal, "read", request.account)
        size = page_size(request.page_size)
        status = None
        if request.status:
            status = convert.status_from_pb(request.status)
            if status is None:
                raise InvalidField("status", f"unknown order status {request.status}")
        if self.store.get_account(account) is None:
            raise NotFound(f"account {account!r} does not exist")
        try:
            orders = self.store.list_orders(account, status=status, open_only=request.open_only,
                                            limit=size + 1, after=request.page_token or None)
        except Exception as e:
            if request.page_token and "after=" in str(e):
                raise InvalidField("page_token", "not a page token of this listing") from None
            raise
        resp = tpb.ListOrdersResponse()
        for o in orders[:size]:
            convert.order_to_pb(o, resp.orders.add())
        if len(orders) > size:
            resp.next_page_token = orders[size - 1].id
        return resp

    @unary
    def ListPositions(self, request: tpb.ListPositionsRequest, context: grpc.ServicerContext,
            principal: Principal) -> tpb.ListPositionsResponse:
        return self.list_positions(principal, request)

    def list_positions(self, principal: Principal,
                       request: tpb.ListPositionsRequest) -> tpb.ListPositionsResponse:
        """ListPositions as ``principal`` makes it, without a transport (a strategy run's
        door calls this: the same checks, the same scopes)."""
        positions = self.live.call(self.positions_op(principal, request.account))
        return tpb.ListPositionsResponse(
            positions=[convert.position_to_pb(p) for p in positions])

    @unary
    def GetAccount(self, request: tpb.GetAccountRequest, context: grpc.ServicerContext,
            principal: Principal) -> tpb.GetAccountResponse:
        return self.get_account(principal, request)

    def get_account(self, principal: Principal,
                    request: tpb.GetAccountRequest) -> tpb.GetAccountResponse:
        """GetAccount as ``principal`` makes it, without a transport (a strategy run's
        door calls this: the same checks, the same scopes)."""
        return tpb.GetAccountResponse(account=convert.account_to_pb(
            self.live.call(self.account_op(principal, request.account))))

    @unary
    def GetPerformance(self, request: tpb.GetPerformanceRequest, context: grpc.ServicerContext,
                       principal: Principal) -> tpb.GetPerformanceResponse:
        by = _GROUPINGS.get(request.by)
        if by is None:
            raise InvalidField("by", f"unknown grouping {request.by}")
        out = tpb.GetPerformanceResponse()
        for key, figures in self.performance(principal, request.account, by).items():
            out.groups.add(key=key, **{k: (math.nan if v is None else v)
                                       for k, v in figures.items()})
        return out

    def performance(self, principal: Principal, account: str, by: Grouping = "account"
                    ) -> dict[str, dict[str, Any]]:
        """The account's live performance (``principal``'s own account unless it acts for
        every account), grouped ``by`` account, strategy or source: see
        :func:`sandtrade.backtest.performance.performance`, marked at the closes of
        :attr:`prices`."""
        return self.performances(principal, account, (by,))[by]

    def performances(self, principal: Principal, account: str,
                     groupings: tuple[Grouping, ...] = ("account", "source", "strategy")
                     ) -> dict[str, dict[str, dict[str, Any]]]:
        """:meth:`performance` by each of ``groupings``, from one read of the account's
        fills and marks (so that the groupings add up: read apart, a fill between two reads
        was in one and not the other)."""
        target = principal.require("read", account or None)
        stored = self.store.get_account(target)
        if stored is None:
            raise NotFound(f"account {target!r} does not exist")
        fills: list[Fill] = []
        after: str | None = None
        while page := self.store.list_fills(target, limit=1000, after=after):
            fills.extend(page)
            after = page[-1].id
        sources: dict[str, OrderSource | None] = {}
        after = None
        while orders := self.store.list_orders(target, limit=1000, after=after):
            sources.update((o.id, o.source) for o in orders)
            after = orders[-1].id
        symbols = sorted({f.symbol for f in fills})

        def multipliers(b: PaperBroker) -> dict[str, float]:
            return {s: (i.multiplier if (i := b.instrument(s)) is not None else 1.0)
                    for s in symbols}

        def held(b: PaperBroker) -> dict[str, float]:
            if not b.has_account(target):
                return {}
            return {p.symbol: p.market_price for p in b.positions(target)
                    if p.qty and p.market_price and math.isfinite(p.market_price)}

        mult = self.live.call(multipliers) if symbols else {}
        bars = [bar for s in symbols for bar in self.prices(s)]
        marks = self.live.call(held) if symbols else {}
        if marks:
            # What is held now is marked where the broker marks it (an option at its quote:
            # it has no bars, and its fill price would hide its P&L), at the newest time the
            # figures know, so they end at the account's own equity.
            end = max([b.time for b in bars] + [f.time for f in fills])
            bars += [Bar(symbol, end, mark, mark, mark, mark) for symbol, mark in marks.items()]
        return {by: performance(stored, fills, sources.get, bars, by=by,
                                multiplier=lambda s: mult.get(s, 1.0)) for by in groupings}

    def positions_op(self, principal: Principal, account: str
                     ) -> Callable[[PaperBroker], list[Position]]:
        """Check that ``principal`` may read ``account``'s positions and return the broker
        operation that lists them (ListPositions, and a strategy run's door, which applies
        it without holding a thread while it settles)."""
        target = self._account(principal, "read", account)

        def op(b: PaperBroker) -> list[Position]:
            ensure_account(b, self.store, target)
            return b.positions(target)

        return op

    def account_op(self, principal: Principal, account: str
                   ) -> Callable[[PaperBroker], Account]:
        """:meth:`positions_op` for the account itself (GetAccount)."""
        target = self._account(principal, "read", account)

        def op(b: PaperBroker) -> Account:
            ensure_account(b, self.store, target)
            return b.account(target)

        return op

    @unary
    def ListPositionGroups(self, request: tpb.ListPositionGroupsRequest,
                           context: grpc.ServicerContext,
                           principal: Principal) -> tpb.ListPositionGroupsResponse:
        return self.list_position_groups(principal, request)

    def list_position_groups(self, principal: Principal, request: tpb.ListPositionGroupsRequest
                             ) -> tpb.ListPositionGroupsResponse:
        """ListPositionGroups as ``principal`` makes it, without a transport."""
        account = self._account(principal, "read", request.account)
        size = page_size(request.page_size)
        groups = self.live.call(option_orders.groups_op(account))
        page, token = option_orders.groups_page(groups, size, request.page_token)
        resp = tpb.ListPositionGroupsResponse(next_page_token=token)
        for held in page:
            option_orders.group_to_pb(held, account, self.store, self.options,
                                      resp.groups.add())
        return resp

    @unary
    def SubmitOptionStrategy(self, request: tpb.SubmitOptionStrategyRequest,
                             context: grpc.ServicerContext,
                             principal: Principal) -> tpb.SubmitOptionStrategyResponse:
        return self.submit_option_strategy(principal, request,
                                           source=grpc_order_source(principal, context))

    def submit_option_strategy(self, principal: Principal,
                               request: tpb.SubmitOptionStrategyRequest, *,
                               source: OrderSource | None = None
                               ) -> tpb.SubmitOptionStrategyResponse:
        """SubmitOptionStrategy as ``principal`` makes it, without a transport: the template
        built from the chain now, then SubmitOrder's multi-leg path (:meth:`_multileg_op`);
        ``source`` as :meth:`submit_op`'s."""
        account = self._account(principal, "read" if request.validate_only else "trade",
                                request.account)
        if source is None:
            source = OrderSource(kind="grpc", ref=principal.token_id[:128])
        resp = tpb.SubmitOptionStrategyResponse()
        coid = request.client_order_id
        if coid and not request.validate_only:
            # A retry answers with the first order even if the chain has moved since.
            def find(b: PaperBroker) -> Order | None:
                ensure_account(b, self.store, account)
                return b.find_client_order(account, coid)

            first = self.live.call(find)
            if first is not None:
                convert.order_to_pb(first, resp.order)
                resp.duplicate = True
                return resp
        plan = option_orders.build_plan(self.options, request)
        convert.plan_to_pb(plan, resp.plan)
        order_request = option_orders.strategy_order(plan, request)
        if request.validate_only:
            return resp
        order, duplicate = self.live.call(self._multileg_op(account, order_request, source))
        convert.order_to_pb(order, resp.order)
        resp.duplicate = duplicate
        return resp

    @unary
    def GetAccountSettings(self, request: tpb.GetAccountSettingsRequest,
                           context: grpc.ServicerContext,
                           principal: Principal) -> tpb.GetAccountSettingsResponse:
        account = self._account(principal, "read", request.account)
        out = tpb.GetAccountSettingsResponse()
        self._settings_answer(account, out)
        return out

    @unary
    def SetAccountSettings(self, request: tpb.SetAccountSettingsRequest,
                           context: grpc.ServicerContext,
                           principal: Principal) -> tpb.SetAccountSettingsResponse:
        account = self._account(principal, "admin", request.account)
        if len(request.request_id) > MAX_ID_LENGTH:
            raise InvalidField("request_id", f"at most {MAX_ID_LENGTH} characters "
                               f"(got {len(request.request_id)})")
        key = (account, request.request_id)
        with self._settings_lock:
            if request.request_id and key in self._settings_done:
                out = tpb.SetAccountSettingsResponse()
                out.CopyFrom(self._settings_done[key])
                return out
            rules: RiskRules | None = None
            if not request.use_defaults:
                try:
                    rules = convert.risk_rules_from_pb(request.settings.risk)
                except ValidationError as e:
                    err = e.errors()[0]
                    field = "settings.risk." + ".".join(str(x) for x in err["loc"])
                    raise InvalidField(field, f"{err['msg']} (got {err.get('input')!r})"
                                       ) from None

            def exists(b: PaperBroker) -> None:
                ensure_account(b, self.store, account)

            self.live.call(exists)
            self.store.save_account_settings(
                account, None if rules is None else {"risk": rules.model_dump(mode="json")})
            if rules is None:
                rules = self.configured_rules(account)
            self.live.call(lambda b: b.set_rules(account, rules))
            out = tpb.SetAccountSettingsResponse()
            self._settings_answer(account, out)
            if request.request_id:
                self._settings_done[key] = out
                while len(self._settings_done) > 1000:
                    self._settings_done.pop(next(iter(self._settings_done)))
            return out

    def _settings_answer(self, account: str, out: Any) -> None:
        def op(b: PaperBroker) -> tuple[RiskRules, bool, RiskStanding]:
            ensure_account(b, self.store, account)
            return b.rules(account), b.has_own_rules(account), b.risk_standing(account)

        rules, own, standing = self.live.call(op)
        out.account = account
        convert.risk_rules_to_pb(rules, out.settings.risk)
        out.own = own
        convert.risk_standing_to_pb(standing, out.standing)
        if self.quotas is not None:
            out.quotas.CopyFrom(tpb.AccountQuotas(**self.quotas.quotas_of(account).model_dump()))

    @streaming
    def StreamTradeUpdates(self, request: tpb.StreamTradeUpdatesRequest,
                           context: grpc.ServicerContext,
                           principal: Principal) -> Iterator[tpb.StreamTradeUpdatesResponse]:
        account = self._account(principal, "read", request.account)
        if self.store.get_account(account) is None:
            raise NotFound(f"account {account!r} does not exist")

        def message(update: TradeUpdate) -> tpb.StreamTradeUpdatesResponse:
            resp = tpb.StreamTradeUpdatesResponse()
            convert.order_to_pb(update.order, resp.order)
            if update.fill is not None:
                convert.fill_to_pb(update.fill, resp.fill)
            return resp

        yield from relay(context, self.live.subscribe(account), message)


def _order_error(out: tpb.OrderError, e: Exception) -> None:
    """Fill a stream's per-order error as SubmitOrder's status would read."""
    field = ""
    if isinstance(e, InvalidField):
        code, field = grpc.StatusCode.INVALID_ARGUMENT, e.field
    elif isinstance(e, OrderRejected):
        code, field = grpc.StatusCode.INVALID_ARGUMENT, e.field or "order"
    elif isinstance(e, NotFound):
        code = grpc.StatusCode.NOT_FOUND
    elif isinstance(e, QuotaExceeded):
        code = grpc.StatusCode.RESOURCE_EXHAUSTED
    elif isinstance(e, AuthError):
        code = grpc.StatusCode.PERMISSION_DENIED
    elif isinstance(e, StoreError):
        code = grpc.StatusCode.UNAVAILABLE
    else:
        code = grpc.StatusCode.INTERNAL
    out.code = code.value[0]
    out.message = str(e) if code is not grpc.StatusCode.INTERNAL else type(e).__name__
    out.field = field


def _may_see(principal: Principal, account: str) -> bool:
    return principal.account in ("*", account)


def _order_arguments(r: tpb.SubmitOrderRequest) -> dict[str, Any]:
    """Keyword arguments of ``PaperBroker.submit`` from a request, each field checked."""
    if not r.symbol:
        raise InvalidField("symbol", "required")
    side = convert.side_from_pb(r.side)
    if side is None:
        raise InvalidField("side", "required: ORDER_SIDE_BUY or ORDER_SIDE_SELL")
    tif = TimeInForce.GTC if r.tif == 0 else convert.tif_from_pb(r.tif)
    if tif is None:
        raise InvalidField("tif", f"unknown time in force {r.tif}")
    values: dict[str, Any] = {"side": side, "tif": tif, "reduce_only": r.reduce_only}
    for name in ("qty", "equity_fraction", "limit_price", "stop_price"):
        value = getattr(r, name) if r.HasField(name) else None
        if value is not None and not math.isfinite(value):
            raise InvalidField(name, f"must be a finite number (got {value})")
        values[name] = value
    # No type: the prices say which (a limit price alone is a limit order); a type that
    # contradicts them is refused by the broker, naming both.
    otype = implied_order_type(values["limit_price"], values["stop_price"]) if r.type == 0 \
        else convert.type_from_pb(r.type)
    if otype is None:
        raise InvalidField("type", f"unknown order type {r.type}")
    values["type"] = otype
    if values["qty"] is None and values["equity_fraction"] is None:
        raise InvalidField("qty", "give qty or equity_fraction")
    if r.order_class:
        order_class = convert.class_from_pb(r.order_class)
        if order_class is None:
            raise InvalidField("order_class", f"unknown order class {r.order_class}")
        values["order_class"] = order_class
    for name in ("take_profit", "stop_loss"):
        if r.HasField(name):
            spec = getattr(r, name)
            for part in ("price", "percent", "amount", "limit_price"):
                if spec.HasField(part) and not math.isfinite(getattr(spec, part)):
                    raise InvalidField(f"{name}.{part}", "must be a finite number "
                                       f"(got {getattr(spec, part)})")
            try:
                values[name] = convert.exit_from_pb(spec)
            except ValueError as e:
                err = e.errors()[0] if isinstance(e, ValidationError) else None
                where = ".".join([name, *map(str, err["loc"])]) if err else name
                msg = err["msg"].removeprefix("Value error, ") if err else str(e)
                raise InvalidField(where, msg) from None
    for name in ("trail_price", "trail_percent"):
        if r.HasField(name):
            value = getattr(r, name)
            if not math.isfinite(value):
                raise InvalidField(name, f"must be a finite number (got {value})")
            values[name] = value
    for name in ("client_order_id", "tag"):
        text = getattr(r, name)
        if len(text) > MAX_ID_LENGTH:
            raise InvalidField(name, f"at most {MAX_ID_LENGTH} characters (got {len(text)})")
        values[name] = text or None
    return values
