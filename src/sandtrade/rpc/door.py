"""A live run's door to the broker: each broker call of its worker made as the trading API's.

While a strategy handles an event its worker may ask for broker calls (``call`` frames, see
:mod:`sandtrade.sandbox.worker.live_task`); the run hands each one to its
:class:`TradingDoor`, which makes it through the same methods the gRPC TradingService answers
with (:class:`~sandtrade.rpc.trading.TradingServicer`'s ``submit_order``, ``get_account``,
...), as a principal issued for this run and this strategy's account only. So a live strategy
trades with the same validation, the same scope checks, the same quotas and the same answers
as every other client (a refusal reads as the gRPC status would: ``... (PERMISSION_DENIED)``),
without a round trip through the host's own gRPC server (it cost about 0.4 ms of host CPU a
call), and the worker itself never holds the principal. The door shuts when the run ends.

The broker calls (submit, close, position, account) are applied on the caller's thread and
answered at once, from the broker's memory, as the gRPC method would answer them once
durable: only the worker sees the answer, and the event it belongs to ends only once every
such call of it is durable (:meth:`TradingDoor.settle`, waited for on the broker's commit
thread through :meth:`~sandtrade.broker.durable.DurableBroker.settle_later`, so that no
thread is parked meanwhile). Each call waiting for its own group commit made a strategy that
closes and buys wait two fsyncs a bar; now a call overlaps the commit of the one before, and
every call pending joins one group commit. If that commit fails, the run is killed and
restarts from what is stored (what its worker was told is no longer true). Answers are
built from the broker's own records, not from protobuf messages.

A worker posts its orders (``submit``, ``close``: :meth:`TradingDoor.post`): it goes on without
an answer, having counted the order's id itself from the prefix :meth:`TradingDoor.snapshot`
gave it, and a refusal becomes a line of the strategy's log, worded as a back-test writes a
rejected order's. The other calls are answered (:meth:`TradingDoor.handle`).

Everything a worker sends is untrusted: the arguments of a call are checked here before they
become a request, and the account is always the run's, never the worker's to choose.

``ctx.options`` calls (``option_chain``, ``option_order``, ``option_close``, ``option_greeks``,
``option_groups``) are answered from the host's chains (``HostRuntime.options``) with the
functions a back-test answers them with (:mod:`sandtrade.backtest.options_desk`); an options
order is a multi-leg ``SubmitOrder`` as the run's principal, and its answer carries the fills
it made at once, for the strategy's ``on_fill``.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import ValidationError

from sandtrade.auth import Principal
from sandtrade.backtest import options_desk
from sandtrade.errors import Conflict, NotFound, QuotaExceeded, SandtradeError
from sandtrade.models import (
    Account,
    Fill,
    Leg,
    Order,
    OrderClass,
    OrderSide,
    OrderSource,
    OrderType,
    Position,
    TimeInForce,
)
from sandtrade.options.sources import OptionQuotes
from sandtrade.options.templates import TemplateError
from sandtrade.rpc import convert
from sandtrade.rpc.errors import status_of
from sandtrade.rpc.trading import ensure_account
from sandtrade.strategy.context import MAX_SIGNAL_BYTES
from sandtrade.v1 import trading_pb2 as tpb

if TYPE_CHECKING:
    from sandtrade.broker.paper import PaperBroker
    from sandtrade.rpc.trading import TradingServicer
    from sandtrade.signal_model import SignalRecord

log = logging.getLogger(__name__)

__all__ = ["CallError", "TradingDoor"]


#: The parts of a take profit or stop loss a worker may send (``ExitSpec``'s fields).
_EXIT_PARTS = frozenset({"price", "percent", "amount", "limit_price"})
#: Bounds of an options call (the strategy API checks the same in the worker first).
MAX_OPTION_LEGS = 8
MAX_TEMPLATE_PARAMS = 16
MAX_NAME = 64
MAX_SPREADS = 10_000


class CallError(Exception):
    """A call from a worker that cannot be made as asked (answered with the message)."""


def _opt_number(args: dict[str, Any], key: str) -> float | None:
    v = args.get(key)
    if v is None:
        return None
    if type(v) not in (int, float):
        raise CallError(f"{key} must be a number")
    return float(v)


@dataclass
class _Applied:
    """A broker call applied and not yet durable: its answer is ``reply(value)`` (or the
    refusal of ``error``) once request ``seq`` has settled."""

    seq: int
    value: Any
    error: Exception | None
    reply: Callable[[Any], Any]


def _short_text(args: dict[str, Any], key: str, *, optional: bool = False) -> str | None:
    v = args.get(key)
    if v is None and optional:
        return None
    if type(v) is not str or not v or len(v) > MAX_NAME:
        raise CallError(f"{key} must be a string of 1 to {MAX_NAME} characters"
                        + (" (or null)" if optional else "") + f", got {_shown(v)}")
    return v


def _shown(v: object) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _said(v: object) -> str:
    """A value a worker sent, as a log line names it: a string as it is (cut), else shown."""
    return v[:MAX_NAME] if type(v) is str else _shown(v)


def _placed(done: tuple[Order, list[Fill]]) -> dict[str, Any]:
    order, fills = done
    return {"order": order.model_dump(mode="json"),
            "fills": [f.model_dump(mode="json") for f in fills]}


#: How a door sends a strategy's signal: ``(body, principal, source) -> the journaled record``
#: (the host's signal pipeline; blocking until the journal has it).
SendSignal = Callable[[str, Principal, str], "SignalRecord"]


class TradingDoor:
    """The trading API as one run sees it: calls for one account, as one principal.

    :param options: the host's option chains (None: ``ctx.options`` calls are refused)."""

    def __init__(self, trading: TradingServicer, principal: Principal, account: str,
                 run_id: str, *, flood_seconds: int = 10,
                 options: OptionQuotes | None = None, strategy: str | None = None,
                 signals: SendSignal | None = None) -> None:
        self.account = account
        self.options = options
        #: The source of every order of the run: the strategy (``strategy``, by default the
        #: name in the run id, ``NAME-HEX``), never the worker's to say.
        name = strategy if strategy is not None else run_id.rsplit("-", 1)[0]
        self.source = OrderSource(kind="strategy", ref=name[:128], label=name[:256])
        self.principal = principal
        self._trading = trading
        self._signals = signals
        self._open = True
        #: Set when the run's orders have been refused for a quota ``flood_seconds`` seconds
        #: in a row: why the run should be stopped ("order flood: ...").
        self.flood: str | None = None
        self._flood_seconds = flood_seconds
        self._refused = 0
        self._streak: tuple[int, int] | None = None  # (first second, last second) refused
        self._ids = itertools.count(1)
        self._run_id = run_id
        #: Posted orders' ids: the prefix the worker is given and their count (:meth:`post`).
        self._prefix = f"o_{run_id}-"
        self._posted = itertools.count(1)
        #: This event's broker requests answered before they were durable; :meth:`settle`
        #: waits for them when the event ends.
        self.unsettled: list[int] = []

    def close(self) -> None:
        """The run has ended: no call goes through any more."""
        self._open = False

    def handle(self, op: object, args: object, answer: Callable[[dict[str, Any]], None]
               ) -> None:
        """Answer a worker's call: ``answer`` gets its ``reply`` frame, exactly once, on
        this thread (a broker call: at once, from the broker's memory; see :meth:`settle`) or, for a
        call that waits (cancel, signal, options), on another."""
        try:
            if not self._open:
                raise CallError("the run has ended")
            if type(op) is not str or not isinstance(args, dict):
                raise CallError("malformed call")
            fn = self._OPS.get(op)
            if fn is None:
                raise CallError(f"unknown call {op!r}")
            result = fn(self, args)
        except Exception as e:
            answer(self._refusal(e))
            return
        if not isinstance(result, _Applied):
            answer({"type": "reply", "result": result})
            return
        # Answered from the broker's memory, before the group commit: only the worker sees
        # the reply, and the event it belongs to ends only once the request is durable
        # (:meth:`settle`), so nothing of it leaves the host earlier. The worker's next call
        # overlaps this one's commit instead of waiting an fsync for each call.
        self.unsettled.append(result.seq)
        try:
            if result.error is not None:
                raise result.error
            reply = {"type": "reply", "result": result.reply(result.value)}
        except Exception as e:
            reply = self._refusal(e)
        answer(reply)

    def settle(self, then: Callable[[str | None], None]) -> bool:
        """The calls answered in the event now ending: False when none waits for its group
        commit, else True and ``then`` gets, on the broker's commit thread once they are
        settled, why one of them was not stored (None: all durable). Called by the run's
        I/O loop when the worker has finished the event; the worker makes no call meanwhile."""
        seqs, self.unsettled = self.unsettled, []
        if not seqs:
            return False
        live = self._trading.live

        def settled(failure: str | None) -> None:
            then(failure or next(filter(None, map(live.lost, seqs)), None))

        live.settle_later(seqs[-1], settled)
        return True

    def snapshot(self) -> dict[str, Any]:
        """What a worker is told at its start so that it can send its orders without
        waiting for an answer (see :meth:`post`): the prefix of its orders' ids, the
        account's positions (``{symbol: qty}``) and ``fills_after``, the point in the broker's
        stream of fills they include (a fill delivered later with a greater id is news)."""
        account = self.account
        trading = self._trading

        def op(b: PaperBroker) -> tuple[dict[str, float], str, str]:
            # An account the broker does not hold yet holds nothing; it is not loaded here
            # (the first order loads it, as before): a start changes nothing in the broker.
            held = ({p.symbol: p.qty for p in b.positions(account) if p.qty}
                    if b.has_account(account) else {})
            return held, b.new_id("o"), b.new_id("f")

        held, stem, mark = trading.live.call(op)
        self._prefix = f"{stem}-"
        return {"order_prefix": self._prefix, "positions": held, "fills_after": mark}

    def post(self, op: str, args: object) -> str | None:
        """A posted order call (``submit`` or ``close``): made as :meth:`handle` makes it,
        the order's id the next of the run's (``PREFIX-N``, as its worker counts them too),
        and answered with nothing: the worker went on at once. What the worker could not be
        told comes back as a line for the strategy's log, worded as a back-test's
        (``order ID (buy AAPL) rejected: REASON``), or None. A refused order counts towards
        the order flood as an answered one does."""
        order_id = f"{self._prefix}{next(self._posted)}"
        try:
            if not self._open:
                raise CallError("the run has ended")
            if not isinstance(args, dict):
                raise CallError("malformed call")
            result = (self.submit(args, order_id) if op == "submit"
                      else self.close_position(args, order_id))
            self.unsettled.append(result.seq)
            if result.error is not None:
                raise result.error
        except Exception as e:
            if isinstance(args, dict):
                side = "close" if op == "close" else _said(args.get("side"))
                what = f"{side} {_said(args.get('symbol'))}"
            else:
                what = "close" if op == "close" else "order"
            return f"order {order_id} ({what}) rejected: {self._refusal(e)['error']}"
        order = result.value[0] if op == "submit" else result.value
        if order is not None and order.reject_reason:
            return (f"order {order.id} ({order.side.value} {order.symbol}) rejected: "
                    f"{order.reject_reason}")
        return None

    def _refusal(self, e: Exception) -> dict[str, Any]:
        if isinstance(e, CallError):
            return {"type": "reply", "error": str(e)}
        if not isinstance(e, SandtradeError):
            log.error("%s: a call failed", self._run_id, exc_info=e)
        code, message, _ = status_of(e)
        if isinstance(e, QuotaExceeded):
            self._count_refusal(message)
        return {"type": "reply", "error": f"{message} ({code.name})"}

    def _apply(self, op: Callable[[PaperBroker], Any],
               reply: Callable[[Any], Any]) -> _Applied:
        seq, value, error = self._trading.live.apply(op)
        return _Applied(seq, value, error, reply)

    def _count_refusal(self, details: str) -> None:
        """A call refused for a quota: a run refused every second for ``flood_seconds`` in a
        row is flooding (the manager stops it, naming the quota)."""
        self._refused += 1
        now = int(time.monotonic())
        first, last = self._streak or (now, now)
        if now > last + 1:
            first = now
        self._streak = (first, now)
        seconds = now - first + 1
        if seconds >= self._flood_seconds and self.flood is None:
            self.flood = (f"order flood: {self._refused:,} calls refused for a quota, every "
                          f"second for {seconds} s (the last: {details[:300]})")

    def submit(self, args: dict[str, Any], order_id: str | None = None) -> _Applied:
        symbol, tag = args.get("symbol"), args.get("tag")
        if type(symbol) is not str or (tag is not None and type(tag) is not str):
            raise CallError("symbol and tag must be strings")
        try:
            side = OrderSide(str(args.get("side")))
            typ = OrderType(str(args.get("type")))
            tif = TimeInForce(str(args.get("tif")))
        except ValueError as e:
            raise CallError(str(e)) from None
        req = tpb.SubmitOrderRequest(
            account=self.account, symbol=symbol, side=convert.side_to_pb(side),
            type=convert.type_to_pb(typ), tif=convert.tif_to_pb(tif),
            reduce_only=args.get("reduce_only") is True, tag=tag or "",
            client_order_id=f"{self._run_id}-{next(self._ids)}")
        for key in ("qty", "equity_fraction", "limit_price", "stop_price", "trail_price",
                    "trail_percent"):
            value = _opt_number(args, key)
            if value is not None:
                setattr(req, key, value)
        for key in ("take_profit", "stop_loss"):
            spec = args.get(key)
            if spec is None:
                continue
            if not isinstance(spec, dict) or not set(spec) <= _EXIT_PARTS:
                raise CallError(f"{key} must be an object of {', '.join(sorted(_EXIT_PARTS))}")
            out = getattr(req, key)
            out.SetInParent()  # present even when every part is absent: refused, not dropped
            for part in _EXIT_PARTS:
                value = _opt_number(spec, part)
                if value is not None:
                    setattr(out, part, value)
        # The id is the run's (random) and a counter: new by construction.
        return self._apply(self._trading.submit_op(self.principal, req, fresh_client_id=True,
                                                   source=self.source, order_id=order_id),
                           lambda done: done[0].model_dump(mode="json"))

    def signal(self, args: dict[str, Any]) -> list[str]:
        """``ctx.signal``: the body through the host's signal pipeline, as the run's
        principal, its source ``strategy:NAME``; the journal's id, status and reason."""
        body = args.get("body")
        if type(body) is not str:
            raise CallError("body must be a string")
        if len(body.encode("utf-8", "replace")) > MAX_SIGNAL_BYTES:
            raise CallError(f"the body is larger than {MAX_SIGNAL_BYTES:,} bytes")
        if self._signals is None:
            raise CallError("this host takes no signals from strategies")
        record = self._signals(body, self.principal, f"strategy:{self.source.ref}")
        return [record.id, record.status.value, record.reason]

    def close_position(self, args: dict[str, Any], order_id: str | None = None) -> _Applied:
        """``ctx.close_position()``: the position read and its reduce-only market order
        placed in one request, so nothing trades the account in between and the run makes
        one call instead of two."""
        symbol = args.get("symbol")
        if type(symbol) is not str:
            raise CallError("symbol must be a string")
        account = self.account
        sides = {True: convert.side_to_pb(OrderSide.SELL),
                 False: convert.side_to_pb(OrderSide.BUY)}

        def op(b: PaperBroker) -> Order | None:
            ensure_account(b, self._trading.store, account)
            qty = b.position_qty(account, symbol)
            if not qty:
                return None
            req = tpb.SubmitOrderRequest(
                account=account, symbol=symbol, side=sides[qty > 0], qty=abs(qty),
                type=convert.type_to_pb(OrderType.MARKET),
                tif=convert.tif_to_pb(TimeInForce.GTC), reduce_only=True,
                client_order_id=f"{self._run_id}-{next(self._ids)}")
            return self._trading.submit_op(self.principal, req, fresh_client_id=True,
                                           source=self.source, order_id=order_id)(b)[0]

        return self._apply(op, lambda order: None if order is None
                           else order.model_dump(mode="json"))

    def cancel(self, args: dict[str, Any]) -> bool:
        order_id = args.get("order_id")
        if type(order_id) is not str:
            raise CallError("order_id must be a string")
        try:
            self._trading.cancel_order(self.principal, tpb.CancelOrderRequest(order_id=order_id))
        except (NotFound, Conflict):
            return False  # unknown, someone else's, or no longer working
        return True

    def position(self, args: dict[str, Any]) -> _Applied:
        symbol = args.get("symbol")
        if type(symbol) is not str:
            raise CallError("symbol must be a string")

        def reply(positions: list[Position]) -> list[float]:
            for p in positions:
                if p.symbol == symbol:
                    price = p.avg_price if p.market_price is None else p.market_price
                    return [p.qty, p.avg_price, price, p.unrealized_pnl, p.realized_pnl]
            return [0.0, 0.0, 0.0, 0.0, 0.0]

        return self._apply(self._trading.positions_op(self.principal, self.account), reply)

    def account_view(self, args: dict[str, Any]) -> _Applied:
        def reply(a: Account) -> list[float]:
            # As GetAccount answers: equity and buying power are always set by the broker.
            return [a.cash, a.equity or 0.0, a.buying_power or 0.0, a.realized_pnl,
                    a.commissions]

        return self._apply(self._trading.account_op(self.principal, self.account), reply)

    def open_orders(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        resp = self._trading.list_orders(self.principal, tpb.ListOrdersRequest(
            account=self.account, open_only=True, page_size=1000))
        orders = [convert.order_from_pb(o) for o in resp.orders]
        orders.sort(key=lambda o: (o.created_at is None, o.created_at, o.id))
        return [o.model_dump(mode="json") for o in orders]

    # ------------------------------------------------------------------ ctx.options

    def _quotes(self) -> OptionQuotes:
        if self.options is None:
            raise CallError("options: this host serves no option chains")
        return self.options

    def option_chain(self, args: dict[str, Any]) -> list[list[Any]]:
        self.principal.require("read", self.account)
        symbol = _short_text(args, "symbol")
        expiry = _short_text(args, "expiry", optional=True)
        assert symbol is not None
        try:
            rows = options_desk.chain_rows(self._quotes(), symbol, expiry)
        except ValueError as e:
            raise CallError(f"expiry: {e}") from None
        return [list(r) for r in rows]

    def option_order(self, args: dict[str, Any]) -> _Applied:
        quotes = self._quotes()
        qty = _opt_number(args, "qty")
        if qty is None or not 0 < qty <= MAX_SPREADS:
            raise CallError(f"qty must be a number of spreads above 0, at most {MAX_SPREADS:,}"
                            f" (got {_shown(args.get('qty'))})")
        limit = _opt_number(args, "limit_price")
        tag = _short_text(args, "tag", optional=True)
        try:
            tif = TimeInForce(str(args.get("tif")))
        except ValueError as e:
            raise CallError(f"tif: {e}") from None
        template = _short_text(args, "template", optional=True)
        raw_legs = args.get("legs")
        params = args.get("params")
        if not isinstance(params, dict) or len(params) > MAX_TEMPLATE_PARAMS or not all(
                type(k) is str and (v is None or type(v) in (int, float, str, bool))
                for k, v in params.items()):
            raise CallError(f"params must be an object of at most {MAX_TEMPLATE_PARAMS} "
                            "numbers or strings")
        if not isinstance(raw_legs, list):
            raise CallError("legs must be a list")
        if template is not None:
            if raw_legs:
                raise CallError("give a template or legs, not both")
            symbol = _short_text(args, "symbol")
            assert symbol is not None
            try:
                legs = options_desk.template_legs(quotes, symbol, template, params)
            except TemplateError as e:
                raise CallError(str(e)) from None
        else:
            if params:
                raise CallError("params: explicit legs take no template parameters")
            if not 1 <= len(raw_legs) <= MAX_OPTION_LEGS:
                raise CallError(f"legs: 1 to {MAX_OPTION_LEGS} legs (got {len(raw_legs)})")
            legs = []
            for i, leg in enumerate(raw_legs):
                try:
                    legs.append(Leg.model_validate(leg))
                except ValidationError as e:
                    err = e.errors()[0]
                    where = ".".join(str(x) for x in err["loc"])
                    raise CallError(f"legs[{i}]{'.' + where if where else ''}: "
                                    f"{err['msg']}") from None
        req = tpb.SubmitOrderRequest(
            account=self.account, qty=qty, tif=convert.tif_to_pb(tif), tag=tag or "",
            order_class=convert.class_to_pb(OrderClass.MLEG),
            client_order_id=f"{self._run_id}-{next(self._ids)}")
        for leg in legs:
            convert.leg_to_pb(leg, req.legs.add())
        if limit is not None:
            req.limit_price = limit
        return self._placing(req)

    def option_close(self, args: dict[str, Any]) -> _Applied:
        group_id = _short_text(args, "group_id")
        limit = _opt_number(args, "limit_price")
        tag = _short_text(args, "tag", optional=True)
        req = tpb.SubmitOrderRequest(
            account=self.account, close_group=group_id, tag=tag or "",
            order_class=convert.class_to_pb(OrderClass.MLEG),
            client_order_id=f"{self._run_id}-{next(self._ids)}")
        if limit is not None:
            req.limit_price = limit
        return self._placing(req)

    def _placing(self, req: tpb.SubmitOrderRequest) -> _Applied:
        """A multi-leg SubmitOrder as the run's principal; its answer is the order and the
        fills it made at once."""
        submit = self._trading.submit_op(self.principal, req, fresh_client_id=True,
                                         source=self.source)
        account = self.account

        def op(b: PaperBroker) -> tuple[Order, list[Fill]]:
            b.ensure_account(account)  # (submit checks it too; the count needs it first)
            before = len(b.fills(account))
            order, _ = submit(b)
            return order, b.fills(account)[before:]

        return self._apply(op, _placed)

    def option_greeks(self, args: dict[str, Any]) -> _Applied:
        quotes = self._quotes()

        def reply(positions: list[Position]) -> list[float]:
            return list(options_desk.greeks_view(quotes, positions, quotes.last_price))

        return self._apply(self._trading.positions_op(self.principal, self.account), reply)

    def option_groups(self, args: dict[str, Any]) -> _Applied:
        quotes = self._quotes()
        self.principal.require("read", self.account)
        account = self.account

        def op(b: PaperBroker) -> list[tuple[str, dict[str, float], dict[str, float]]]:
            out = []
            for g in b.position_groups(account):
                mults = {}
                for sym in g.legs:
                    inst = b.option_instrument(sym)
                    mults[sym] = inst.multiplier if inst is not None else 1.0
                out.append((g.id, dict(g.legs), mults))
            return out

        def reply(groups: list[tuple[str, dict[str, float], dict[str, float]]]
                  ) -> list[list[Any]]:
            mults = {s: m for _, _, ms in groups for s, m in ms.items()}
            views = options_desk.group_views(quotes, ((g, legs) for g, legs, _ in groups),
                                             quotes.last_price, lambda s: mults.get(s, 1.0))
            return [[v.id, [list(x) for x in v.legs], v.value] for v in views]

        return self._apply(op, reply)

    _OPS: ClassVar[dict[str, Callable[[TradingDoor, dict[str, Any]], Any]]] = {
        "submit": submit, "cancel": cancel, "close": close_position, "position": position,
        "signal": signal,
        "account": account_view,
        "open_orders": open_orders, "option_chain": option_chain,
        "option_order": option_order, "option_close": option_close,
        "option_greeks": option_greeks, "option_groups": option_groups,
    }
