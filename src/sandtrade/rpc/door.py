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

The broker calls (submit, position, account) are applied on the caller's thread and their
durability is waited for on the broker's commit thread
(:meth:`~sandtrade.broker.durable.DurableBroker.settle_later`): the answer is handed on when
it is durable, as the gRPC method would give it, but no door thread is parked meanwhile. With
a handful of door threads each waiting in its own settle, two hundred strategies trading on
the same bar queued behind each other for seconds; now every call pending joins one group
commit. Answers are built from the broker's own records, not from protobuf messages.

Everything a worker sends is untrusted: the arguments of a call are checked here before they
become a request, and the account is always the run's, never the worker's to choose.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from sandtrade.auth import Principal
from sandtrade.errors import Conflict, NotFound, QuotaExceeded, SandtradeError, StoreError
from sandtrade.models import Account, OrderSide, OrderSource, OrderType, Position, TimeInForce
from sandtrade.rpc import convert
from sandtrade.rpc.errors import status_of
from sandtrade.v1 import trading_pb2 as tpb

if TYPE_CHECKING:
    from sandtrade.broker.paper import PaperBroker
    from sandtrade.rpc.trading import TradingServicer

log = logging.getLogger(__name__)

__all__ = ["CallError", "TradingDoor"]


#: The parts of a take profit or stop loss a worker may send (``ExitSpec``'s fields).
_EXIT_PARTS = frozenset({"price", "percent", "amount", "limit_price"})


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


class TradingDoor:
    """The trading API as one run sees it: calls for one account, as one principal."""

    def __init__(self, trading: TradingServicer, principal: Principal, account: str,
                 run_id: str, *, flood_seconds: int = 10, strategy: str | None = None) -> None:
        self.account = account
        #: The source of every order of the run: the strategy (``strategy``, by default the
        #: name in the run id, ``NAME-HEX``), never the worker's to say.
        name = strategy if strategy is not None else run_id.rsplit("-", 1)[0]
        self.source = OrderSource(kind="strategy", ref=name[:128], label=name[:256])
        self.principal = principal
        self._trading = trading
        self._open = True
        #: Set when the run's orders have been refused for a quota ``flood_seconds`` seconds
        #: in a row: why the run should be stopped ("order flood: ...").
        self.flood: str | None = None
        self._flood_seconds = flood_seconds
        self._refused = 0
        self._streak: tuple[int, int] | None = None  # (first second, last second) refused
        self._ids = itertools.count(1)
        self._run_id = run_id

    def close(self) -> None:
        """The run has ended: no call goes through any more."""
        self._open = False

    def handle(self, op: object, args: object, answer: Callable[[dict[str, Any]], None]
               ) -> None:
        """Answer a worker's call: ``answer`` gets its ``reply`` frame, exactly once, on
        this thread or (a broker call, once durable) on the broker's commit thread."""
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

        def settled(lost: str | None) -> None:
            try:
                if lost is not None:
                    raise StoreError(lost)
                if result.error is not None:
                    raise result.error
                reply = {"type": "reply", "result": result.reply(result.value)}
            except Exception as e:
                reply = self._refusal(e)
            answer(reply)

        self._trading.live.settle_later(result.seq, settled)

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

    def submit(self, args: dict[str, Any]) -> _Applied:
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
                                                   source=self.source),
                           lambda done: done[0].model_dump(mode="json"))

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

    _OPS: ClassVar[dict[str, Callable[[TradingDoor, dict[str, Any]], Any]]] = {
        "submit": submit, "cancel": cancel, "position": position, "account": account_view,
        "open_orders": open_orders,
    }
