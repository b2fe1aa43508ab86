"""A live run's door to the broker: each broker call of its worker made as a gRPC call.

While a strategy handles an event its worker may ask for broker calls (``call`` frames, see
:mod:`sandtrade.sandbox.worker.live_task`); the run hands each one to its
:class:`TradingDoor`, which makes it as a gRPC call to the host's own server, over its Unix
socket, with a token issued for this run and this strategy's account only. So a live strategy
trades through exactly the door every other client uses, with the same validation and the same
scope checks, and the worker itself never holds the token.

Everything a worker sends is untrusted: the arguments of a call are checked here before they
become a request, and the account is always the run's, never the worker's to choose.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any, ClassVar

import grpc

from sandtrade.models import OrderSide, OrderType, TimeInForce
from sandtrade.rpc import convert
from sandtrade.v1 import trading_pb2 as tpb
from sandtrade.v1 import trading_pb2_grpc

__all__ = ["CALL_TIMEOUT", "CallError", "TradingDoor"]

#: How long a call from a worker to the broker may take before it is answered with an error.
CALL_TIMEOUT = 10.0


class CallError(Exception):
    """A call from a worker that cannot be made as asked (answered with the message)."""


def _opt_number(args: dict[str, Any], key: str) -> float | None:
    v = args.get(key)
    if v is None:
        return None
    if type(v) not in (int, float):
        raise CallError(f"{key} must be a number")
    return float(v)


class TradingDoor:
    """The trading API as one run sees it: gRPC calls for one account with one token."""

    def __init__(self, target: str, token: str, account: str, run_id: str, *,
                 flood_seconds: int = 10) -> None:
        self.account = account
        #: Set when the run's orders have been refused for a quota ``flood_seconds`` seconds
        #: in a row: why the run should be stopped ("order flood: ...").
        self.flood: str | None = None
        self._flood_seconds = flood_seconds
        self._refused = 0
        self._streak: tuple[int, int] | None = None  # (first second, last second) refused
        self.channel = grpc.insecure_channel(target)
        self.stub = trading_pb2_grpc.TradingServiceStub(self.channel)
        self.metadata = (("authorization", f"Bearer {token}"),)
        self._ids = itertools.count(1)
        self._run_id = run_id

    def close(self) -> None:
        self.channel.close()

    def handle(self, op: object, args: object) -> dict[str, Any]:
        """The ``reply`` frame for a worker's call."""
        try:
            if type(op) is not str or not isinstance(args, dict):
                raise CallError("malformed call")
            fn = self._OPS.get(op)
            if fn is None:
                raise CallError(f"unknown call {op!r}")
            return {"type": "reply", "result": fn(self, args)}
        except CallError as e:
            return {"type": "reply", "error": str(e)}
        except grpc.RpcError as e:
            code = e.code() if hasattr(e, "code") else None
            details = e.details() if hasattr(e, "details") else str(e)
            name = code.name if code is not None else "UNKNOWN"
            if code is grpc.StatusCode.RESOURCE_EXHAUSTED:
                self._count_refusal(str(details))
            return {"type": "reply", "error": f"{details} ({name})"}

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

    def _call(self, method: Callable[..., Any], request: Any) -> Any:
        return method(request, metadata=self.metadata, timeout=CALL_TIMEOUT)

    def submit(self, args: dict[str, Any]) -> dict[str, Any]:
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
        for key in ("qty", "equity_fraction", "limit_price", "stop_price"):
            value = _opt_number(args, key)
            if value is not None:
                setattr(req, key, value)
        resp = self._call(self.stub.SubmitOrder, req)
        return convert.order_from_pb(resp.order).model_dump(mode="json")

    def cancel(self, args: dict[str, Any]) -> bool:
        order_id = args.get("order_id")
        if type(order_id) is not str:
            raise CallError("order_id must be a string")
        try:
            self._call(self.stub.CancelOrder, tpb.CancelOrderRequest(order_id=order_id))
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                return False  # unknown, someone else's, or no longer working
            raise
        return True

    def position(self, args: dict[str, Any]) -> list[float]:
        symbol = args.get("symbol")
        if type(symbol) is not str:
            raise CallError("symbol must be a string")
        resp = self._call(self.stub.ListPositions,
                          tpb.ListPositionsRequest(account=self.account))
        for p in resp.positions:
            if p.symbol == symbol:
                price = p.market_price if p.HasField("market_price") else p.avg_price
                unrealized = p.unrealized_pnl if p.HasField("unrealized_pnl") else 0.0
                return [p.qty, p.avg_price, price, unrealized, p.realized_pnl]
        return [0.0, 0.0, 0.0, 0.0, 0.0]

    def account_view(self, args: dict[str, Any]) -> list[float]:
        a = self._call(self.stub.GetAccount, tpb.GetAccountRequest(account=self.account)).account
        return [a.cash, a.equity, a.buying_power, a.realized_pnl, a.commissions]

    def open_orders(self, args: dict[str, Any]) -> list[dict[str, Any]]:
        resp = self._call(self.stub.ListOrders, tpb.ListOrdersRequest(
            account=self.account, open_only=True, page_size=1000))
        orders = [convert.order_from_pb(o) for o in resp.orders]
        orders.sort(key=lambda o: (o.created_at is None, o.created_at, o.id))
        return [o.model_dump(mode="json") for o in orders]

    _OPS: ClassVar[dict[str, Callable[[TradingDoor, dict[str, Any]], Any]]] = {
        "submit": submit, "cancel": cancel, "position": position, "account": account_view,
        "open_orders": open_orders,
    }
