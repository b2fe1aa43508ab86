"""The host side of a live run: one sandboxed worker, the thread that feeds it, its gRPC door.

A :class:`StrategyRun` starts a worker for a stored strategy and hands it events one at a time
(warm-up history, ``start``, then bars with the fills they caused, signals, ``stop``). While
an event is in flight the worker may ask for broker calls (``call`` frames, see
:mod:`sandtrade.sandbox.worker.live_task`); the run makes each one as a gRPC call to the host's own
server, over its Unix socket, with a token issued for this run and this strategy's account
only. So a live strategy trades through exactly the door every other client uses, with the
same validation and the same scope checks, and the worker itself never holds the token.

Everything a worker sends is untrusted: the arguments of a call are checked here before they
become a request, and the account is always the run's, never the worker's to choose.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import grpc

from sandtrade.models import Bar, Fill, OrderSide, OrderType, TimeInForce
from sandtrade.rpc import convert
from sandtrade.sandbox.supervisor import SandboxKilled, Supervisor, Worker, WorkerExit
from sandtrade.sandbox.wire import encode_bars
from sandtrade.store.base import StrategyRecord
from sandtrade.v1 import trading_pb2 as tpb
from sandtrade.v1 import trading_pb2_grpc

__all__ = ["Event", "StrategyRun", "TradingDoor"]

log = logging.getLogger(__name__)

#: How long a call from a worker to the broker may take before it is answered with an error.
CALL_TIMEOUT = 10.0


@dataclass
class Event:
    """One event for a worker; ``done`` is set when the worker has handled it (or is gone)."""

    header: dict[str, Any]
    payload: bytes = b""
    done: threading.Event = field(default_factory=threading.Event)
    error: str | None = None


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

    def __init__(self, target: str, token: str, account: str, run_id: str) -> None:
        self.account = account
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
            return {"type": "reply", "error": f"{details} ({name})"}

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


def fill_frame(fill: Fill) -> dict[str, Any]:
    """A fill as a worker receives it."""
    return {"id": fill.id, "order_id": fill.order_id, "symbol": fill.symbol,
            "side": fill.side.value, "qty": fill.qty, "price": fill.price,
            "commission": fill.commission, "time": fill.time.isoformat()}


class StrategyRun:
    """One live run of a stored strategy in its own sandboxed worker.

    :param history: bars to warm the strategy's indicators with before ``on_start`` (oldest
        first); taken when the run is registered, so no bar is both history and an event.
    :param on_done: called with each ``done`` frame (logs, state, error), on the run's thread.
    :param on_exit: called once when the worker is gone, with how it ended.
    """

    def __init__(self, record: StrategyRecord, *, supervisor: Supervisor, door: TradingDoor,
                 state: dict[str, Any], history: list[Bar],
                 on_done: Callable[[StrategyRun, dict[str, Any]], None],
                 on_exit: Callable[[StrategyRun], None]) -> None:
        self.record = record
        self.name = record.name
        self.account = record.account
        self.symbols = tuple(record.symbols)
        self.index = {s: k for k, s in enumerate(self.symbols)}
        self._supervisor = supervisor
        self.door = door
        self._state = state
        self._history = history
        self._on_done = on_done
        self._on_exit = on_exit
        self.inbox: queue.Queue[Event] = queue.Queue()
        self.worker: Worker | None = None
        self.exit: WorkerExit | None = None
        self.failure: str | None = None
        self.stopping = False
        #: The id of the run's token (the manager revokes it when the run ends).
        self.token_id: str | None = None
        self.created = time.monotonic()
        #: Set (by the manager) to end the run after the current event, with this reason.
        self.give_up: str | None = None
        self.alive = True
        self.started = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"strategy-{self.name}",
                                        daemon=True)

    def start(self) -> StrategyRun:
        self._thread.start()
        return self

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def submit(self, header: dict[str, Any], payload: bytes = b"") -> Event:
        """Queue an event; a run that has ended answers at once with an error."""
        event = Event(header, payload)
        if not self.alive:
            event.error = "the strategy is not running"
            event.done.set()
            return event
        self.inbox.put(event)
        if not self.alive:  # ended meanwhile: make sure nobody waits on it
            self._drain()
        return event

    def bar_event(self, bar: Bar, fills: Iterable[Fill]) -> dict[str, Any] | None:
        """The ``bar`` event for ``bar`` and this account's ``fills``, or None when the run
        has nothing to do with either."""
        mine = [fill_frame(f) for f in fills if f.account == self.account]
        wants = bar.symbol in self.index
        if not (wants or mine):
            return None
        return {"type": "bar", "count": 1 if wants else 0, "fills": mine}

    def send_bar(self, bar: Bar, fills: Iterable[Fill]) -> Event | None:
        header = self.bar_event(bar, fills)
        if header is None:
            return None
        payload = encode_bars([bar], self.index)[1] if header["count"] else b""
        return self.submit(header, payload)

    def stop(self) -> Event:
        """Ask the worker to run ``on_stop`` and end."""
        self.stopping = True
        return self.submit({"type": "stop"})

    def kill(self, reason: str, detail: str) -> None:
        """End the worker now, without ``on_stop``."""
        self.stopping = True
        if self.worker is not None:
            self.worker.kill(reason, detail)
        else:
            self.alive = False
            self._drain()

    # ------------------------------------------------------------------ the run's thread

    def _main(self) -> None:
        task = {"task": "live", "path": f"{self.name}.py", "source": self.record.source,
                "params": self.record.params, "symbols": list(self.symbols),
                "state": self._state}
        try:
            self.worker = self._supervisor.start(task, name=self.name, wall_limit=False)
            if self._history:
                count, payload = encode_bars(self._history, self.index)
                self._run_event(Event({"type": "history", "count": count}, payload))
            self._history = []
            self._run_event(Event({"type": "start"}))
            self.started.set()
            while True:
                event = self.inbox.get()
                self._run_event(event)
                if event.header["type"] == "stop":
                    break
                if self.give_up is not None:
                    self.worker.kill("errors", self.give_up)
                    break
        except SandboxKilled as e:
            self.failure = str(e)
        except Exception as e:  # a bug of ours: report it rather than lose the thread
            log.exception("strategy %s: run failed", self.name)
            self.failure = f"{self.name}: the host side of the run failed: {e}"
        finally:
            self.alive = False
            if self.worker is not None:
                self.exit = self.worker.wait_exit()
                self.worker.close()
            self._drain()
            self.started.set()
            self.door.close()
            self._on_exit(self)

    def _drain(self) -> None:
        while True:
            try:
                event = self.inbox.get_nowait()
            except queue.Empty:
                return
            event.error = event.error or "the strategy is not running"
            event.done.set()

    def _run_event(self, event: Event) -> None:
        worker = self.worker
        assert worker is not None
        try:
            worker.send(event.header, event.payload)
            worker.expect_progress = True
            while True:
                header, _ = worker.recv()
                kind = header.get("type")
                if kind == "call":
                    worker.send(self.door.handle(header.get("op"), header.get("args")))
                elif kind == "done":
                    worker.expect_progress = False
                    error = header.get("error")
                    event.error = None if error is None else str(error)[:16_000]
                    self._on_done(self, header)
                    return
                elif kind == "error":  # the worker could not go on (out of memory, ...)
                    message = str(header.get("message", "failed"))[:16_000]
                    reason = "memory" if header.get("reason") == "memory" else "error"
                    worker.kill(reason, message)
                    raise SandboxKilled(f"{self.name}: {message}", reason)
                else:
                    worker.kill("protocol", f"unexpected frame {kind!r} during an event")
        except BaseException as e:
            event.error = str(e)
            raise
        finally:
            worker.expect_progress = False
            event.done.set()

