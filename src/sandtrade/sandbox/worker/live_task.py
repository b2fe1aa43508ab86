"""The child side of a live run: the strategy trades through frames to its trusted host side.

A live strategy trades the host's paper broker, but the worker never holds a gRPC channel or a token
(gRPC starts threads, which seccomp and Landlock could not confine, and a token in the worker would
be one escape away from the strategy). Each ``ctx`` call that needs the broker is a ``call`` frame
on the worker's stdout; the host side of the run (:mod:`sandtrade.sandbox.strategy_run`) has its
door (:mod:`sandtrade.rpc.door`) make the call through the trading API's methods as the run's own
principal, valid for this strategy's account only, and answers with a ``reply`` frame.

The run is a strict alternation: the host sends one event (``history``, ``start``, ``bars``,
``signal``, ``stop``), the worker answers with any number of calls (each answered with a
``reply`` before the next, except the order calls it posts: ``submit`` and ``close``, see
:class:`RemoteTrading`) and then one ``done``
frame carrying the new log lines, the points the strategy plotted (``plots``, ``[name, time,
value]`` each, and ``plot_styles``: each named series' ``[pane, color, symbol]``), the
strategy's ``ctx.state`` when it changed (as checked JSON text, ``state_json``: see
:func:`~sandtrade.sandbox.wire.check_json`), and the error, if a hook raised one. The host
sends nothing else while an event is in flight.

A ``bars`` event carries one or more market items, each a bar of the strategy's symbols (or
none) and the account's fills before it: a run that fell behind gets what is pending at once.
Items of one timestamp are joined (their third element is 1 while the next item belongs to
the same timestamp) and handled as a back-test handles a timestamp: every bar taken in, then
every fill (``on_fill``), then each bar's ``on_bar``; so a strategy of several symbols meets
the same sequence of events live as in a back-test. Fills an order made at once (a multi-leg
order) reach ``on_fill`` right after the hook that placed it, as in a back-test. Each item's
hooks fail alone: ``done`` names the failed items (``failed``) and the first error.

A worker reads and answers an event on every bar, 200 of them at once on one host, so the
common case is kept short: a header equal to the last one (every plain bar's) is not parsed
again, one bar is unpacked without arrays, an empty ``ctx.state`` is not walked, and an event
with nothing to report is answered with the same ``done`` bytes each time. On the density
bench (200 strategies, 20 bars/s) that took a worker from 240 to 159 µs of CPU a bar.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import IO, Any

from sandtrade.errors import OrderRejected, SandtradeError, StrategyError
from sandtrade.models import Bar, ExitSpec, Fill, Order, OrderSide, OrderType
from sandtrade.sandbox.wire import (
    RepeatedHeaders,
    check_json,
    decode_bars,
    frame_bytes,
    read_frame,
    write_frame,
)
from sandtrade.strategy.context import (
    AccountView,
    Context,
    FillView,
    GreeksView,
    GroupView,
    OptionRowView,
    PositionView,
    SignalView,
    advance,
    take_fills,
)
from sandtrade.strategy.loader import LoadedStrategy, resolve_params, strategy_error
from sandtrade.strategy.plots import PlotOutbox
from sandtrade.strategy.policy import StrategyLog

__all__ = ["EVENT_LOG_WIRE_BYTES", "RemoteTrading", "run_live"]

#: What one event's log lines may take in its ``done`` frame, JSON-escaped; the rest of that
#: event's lines are counted. With the error (:data:`MAX_ERROR` characters) the frame stays
#: well under the host's 1 MiB frame cap.
EVENT_LOG_WIRE_BYTES = 256 << 10
MAX_ERROR = 16_000
#: The ``done`` of an event with nothing to report: no lines, plots, error or state change.
_QUIET_DONE = frame_bytes({"type": "done", "logs": []})


class RemoteTrading:
    """The :class:`~sandtrade.strategy.context.Trading` port of a live worker.

    Orders are posted: ``submit`` and ``close_position`` write their call and return at once,
    without waiting for the host (a worker that slept inside its hook for each answer woke
    cold twice more per trading event; at 200 strategies those wake-ups were the tail). So
    that nothing the strategy sees depends on the answer:

    * the order's id is known in advance: the host gave the run a prefix, and the n-th posted
      order of the run is ``PREFIX`` + n on both sides;
    * ``close_position`` says None when the position is flat in the strategy's own view of
      its positions: the host's at the start, then every fill its events bring (the fills
      the start already held, up to ``fills_after``, are not counted twice). The close is
      sent either way, and the host closes what it holds when it gets there;
    * what the host refuses (a quota, a risk rule, buying power, an unknown symbol) becomes
      a line of the strategy's log at the place of the call, as a back-test writes it for a
      rejected order (``order ID (buy AAPL) rejected: REASON``), never an exception later.
    """

    def __init__(self, stdin: IO[bytes], stdout: IO[bytes], *, log: Any = None,
                 order_prefix: str = "o_", positions: dict[str, float] | None = None,
                 fills_after: str = "") -> None:
        self._in = stdin
        self._out = stdout
        self._log = log
        self._prefix = order_prefix
        self._posted = 0
        #: The strategy's view of its positions: {symbol: qty}, flat ones left out.
        self.positions = dict(positions or {})
        self._fills_after = fills_after.partition("_")[2]

    def saw_fill(self, fill: FillView | Fill) -> None:
        """Count a fill of the account into the view of its positions (once: a fill the
        start's positions already held is skipped)."""
        if self._fills_after and fill.id.partition("_")[2] <= self._fills_after:
            return  # (no mark: ids that do not sort by time, and every fill is news)
        side = fill.side if isinstance(fill.side, str) else fill.side.value
        qty = self.positions.get(fill.symbol, 0.0) + (fill.qty if side == "buy" else -fill.qty)
        if abs(qty) < 1e-9:
            self.positions.pop(fill.symbol, None)
        else:
            self.positions[fill.symbol] = qty

    def _post(self, op: str, **args: Any) -> str:
        """Send an order call without waiting; the id its order gets."""
        self._posted += 1
        at = len(self._log.lines) if self._log is not None else 0
        write_frame(self._out, {"type": "call", "op": op, "args": args, "post": 1, "at": at})
        return f"{self._prefix}{self._posted}"

    def _call(self, op: str, **args: Any) -> Any:
        write_frame(self._out, {"type": "call", "op": op, "args": args})
        header, _ = read_frame(self._in)
        if header["type"] != "reply":
            raise SandtradeError(f"expected the answer to {op}, got a {header['type']!r} frame")
        error = header.get("error")
        if error is not None:
            raise OrderRejected(str(error), field=header.get("field"))
        return header.get("result")

    def submit(self, symbol: str, side: OrderSide, qty: float | None, *,
               equity_fraction: float | None, type: OrderType, limit_price: float | None,
               stop_price: float | None, tif: str, reduce_only: bool,
               tag: str | None, take_profit: ExitSpec | None = None,
               stop_loss: ExitSpec | None = None, trail_price: float | None = None,
               trail_percent: float | None = None) -> Order:
        """Submit an order for the strategy's account (the host names the account)."""
        legs: dict[str, Any] = {}
        if take_profit is not None:
            legs["take_profit"] = take_profit.model_dump(exclude_none=True)
        if stop_loss is not None:
            legs["stop_loss"] = stop_loss.model_dump(exclude_none=True)
        if trail_price is not None:
            legs["trail_price"] = trail_price
        if trail_percent is not None:
            legs["trail_percent"] = trail_percent
        order_id = self._post("submit", symbol=symbol, side=side.value, qty=qty,
                              equity_fraction=equity_fraction, type=type.value,
                              limit_price=limit_price, stop_price=stop_price, tif=tif,
                              reduce_only=reduce_only, tag=tag, **legs)
        return Order.model_construct(id=order_id, account="", symbol=symbol, side=side,
                                     reject_reason=None)

    def signal(self, body: str) -> tuple[str, str, str]:
        """Send a signal of the account through the host's signal pipeline."""
        r = self._call("signal", body=body)
        return str(r[0]), str(r[1]), str(r[2])

    def close_position(self, symbol: str) -> Order | None:
        """Close the position in ``symbol``: posted, read and placed by the host at once;
        None when the strategy's view holds nothing in ``symbol``."""
        held = self.positions.get(symbol, 0.0)
        order_id = self._post("close", symbol=symbol)
        if not held:
            return None
        return Order.model_construct(id=order_id, account="", symbol=symbol, reject_reason=None,
                                     side=OrderSide.SELL if held > 0 else OrderSide.BUY)

    def cancel(self, order_id: str) -> bool:
        """Cancel a working order of the strategy's account."""
        return bool(self._call("cancel", order_id=order_id))

    def position(self, symbol: str) -> PositionView:
        """The account's position in ``symbol``."""
        r = self._call("position", symbol=symbol)
        return PositionView(symbol, float(r[0]), float(r[1]), float(r[2]), float(r[3]),
                            float(r[4]))

    def account(self) -> AccountView:
        """Cash, equity and buying power of the account."""
        return AccountView(*(float(x) for x in self._call("account")))

    def open_orders(self) -> list[Order]:
        """The account's working orders."""
        return [Order.model_validate(o) for o in self._call("open_orders")]

    def option_chain(self, symbol: str, expiry: str | None) -> list[OptionRowView]:
        """The host's chain of ``symbol`` now."""
        return [OptionRowView(*row) for row in self._call("option_chain", symbol=symbol,
                                                          expiry=expiry)]

    def _placed(self, result: dict[str, Any]) -> tuple[Order, list[Fill]]:
        fills = [Fill.model_validate(f) for f in result["fills"]]
        for fill in fills:  # made at once: the events will not bring them
            self.saw_fill(fill)
        return Order.model_validate(result["order"]), fills

    def option_order(self, symbol: str, template: str | None, legs: list[dict[str, Any]],
                     qty: float, *, limit_price: float | None, tif: str, tag: str | None,
                     params: dict[str, Any]) -> tuple[Order, list[Fill]]:
        """A multi-leg order for the strategy's account (a template built by the host)."""
        return self._placed(self._call("option_order", symbol=symbol, template=template,
                                       legs=legs, qty=qty, limit_price=limit_price, tif=tif,
                                       tag=tag, params=params))

    def option_close(self, group_id: str, *, limit_price: float | None, tag: str | None
                     ) -> tuple[Order, list[Fill]]:
        """Close one of the account's position groups."""
        return self._placed(self._call("option_close", group_id=group_id,
                                        limit_price=limit_price, tag=tag))

    def option_greeks(self) -> GreeksView:
        """The account's greeks now."""
        return GreeksView(*(float(x) for x in self._call("option_greeks")))

    def option_groups(self) -> list[GroupView]:
        """The account's open position groups."""
        return [GroupView(str(g[0]), tuple((str(s), float(u)) for s, u in g[1]), float(g[2]))
                for g in self._call("option_groups")]


def _fill_view(d: dict[str, Any]) -> FillView:
    return FillView(str(d["id"]), str(d["order_id"]), str(d["symbol"]), str(d["side"]),
                    float(d["qty"]), float(d["price"]), float(d["commission"]),
                    datetime.fromisoformat(d["time"]), str(d.get("kind", "trade")))


def _signal_view(d: dict[str, Any]) -> SignalView:
    def num(v: Any) -> float | None:
        return None if v is None else float(v)

    t = d.get("time")
    return SignalView(str(d.get("id", "")), str(d.get("source", "")), str(d.get("symbol", "")),
                      str(d.get("action", "")), num(d.get("qty")), num(d.get("price")),
                      str(d.get("comment", "")), None if t is None else datetime.fromisoformat(t))


def run_live(task: dict[str, Any], strategy: LoadedStrategy, log: StrategyLog,
             stdin: IO[bytes], stdout: IO[bytes],
             beat: Callable[[], None] | None, user_error: Callable[[BaseException], str]
             ) -> None:
    """Serve events until ``stop`` (or the end of the channel)."""
    path = strategy.path
    params = resolve_params(strategy.params, task.get("params") or {}, where=path,
                            specs=strategy.specs, lines=strategy.lines)
    symbols = [str(s) for s in task["symbols"]]
    state = task.get("state")
    held = task.get("positions")
    trading = RemoteTrading(
        stdin, stdout, log=log, order_prefix=str(task.get("order_prefix", "o_")),
        positions={str(k): float(v) for k, v in held.items()} if isinstance(held, dict) else {},
        fills_after=str(task.get("fills_after", "")))

    def rejected(order: Order) -> None:
        log.write_line(f"order {order.id} ({order.side.value} {order.symbol}) rejected: "
                       f"{order.reject_reason}")

    plots = PlotOutbox()
    ctx = Context(trading, params, state=dict(state) if isinstance(state, dict) else {},
                  log=log.write_line, on_reject=rejected, plots=plots)
    ctx.symbol = symbols[0] if symbols else ""
    hooks = {name: strategy.caller(name)
             for name in ("on_start", "on_bar", "on_fill", "on_signal", "on_stop")}
    last_time: dict[str, datetime] = {}
    index = -1
    # The time of the last bar taken in: bars of one time share an index, as in a back-test.
    current: list[datetime | None] = [None]
    state_bytes = int(task["state_bytes"])
    saved = json.dumps(ctx.state, sort_keys=True, separators=(",", ":"))

    def call(name: str, *args: Any) -> None:
        fn = hooks[name]
        if fn is not None:
            if beat is not None:
                beat()
            fn(ctx, *args)
            if name != "on_stop" and name != "on_fill":
                made_fills()

    def made_fills() -> None:
        # Fills an order made at once in the hook just run, to on_fill now (the back-test
        # engine does the same).
        on_fill = hooks["on_fill"]
        while got := take_fills(ctx):
            if on_fill is None:
                continue
            for fill in got:
                ctx.symbol = fill.symbol
                if beat is not None:
                    beat()
                on_fill(ctx, fill)

    def take_in(bar: Bar) -> bool:
        """Advance the context by ``bar``; False for a bar it has already seen."""
        nonlocal index
        last = last_time.get(bar.symbol)
        if last is not None and bar.time <= last:  # overlaps the warm-up history
            return False
        last_time[bar.symbol] = bar.time
        if bar.time != current[0]:
            current[0] = bar.time
            index += 1
        advance(ctx, bar, index)
        return True

    def hook_error(e: Exception, hook: str) -> str:
        if isinstance(e, StrategyError):
            return str(e)
        when = f" at {ctx.time}" if ctx.time is not None else ""
        return str(strategy_error(path, e, f"in {hook}{when}")) if hook.startswith("on_") \
            else user_error(e)

    def market(bars: list[Bar], items: list[Any]) -> list[tuple[int, str]]:
        """One ``bars`` event, a timestamp (a run of joined items) at a time: its bars taken
        in, its fills (``on_fill``), then each bar's ``on_bar``; a hook that fails fails its
        item only. Returns the failures."""
        failures: list[tuple[int, str]] = []
        pending = iter(bars)
        k, n = 0, len(items)
        while k < n:
            end = k
            while end + 1 < n and len(items[end]) > 2 and items[end][2]:
                end += 1
            group: list[tuple[int, Bar | None, list[Any]]] = []
            for j in range(k, end + 1):
                bar = next(pending) if items[j][0] else None
                if bar is not None and not take_in(bar):
                    bar = None
                group.append((j, bar, items[j][1]))
            failed: set[int] = set()
            for j, _, fills in group:
                try:
                    for d in fills:
                        fill = _fill_view(d)
                        trading.saw_fill(fill)
                        ctx.symbol = fill.symbol
                        call("on_fill", fill)
                except MemoryError:
                    raise
                except Exception as e:
                    failures.append((j, hook_error(e, "on_fill")))
                    failed.add(j)
            try:
                made_fills()  # what the on_fill hooks placed that filled at once
            except MemoryError:
                raise
            except Exception as e:
                failures.append((k, hook_error(e, "on_fill")))
            for j, bar, _ in group:
                if bar is None or j in failed:
                    continue
                try:
                    ctx.symbol = bar.symbol
                    call("on_bar", bar)
                except MemoryError:
                    raise
                except Exception as e:
                    failures.append((j, hook_error(e, "on_bar")))
            k = end + 1
        return failures

    events = RepeatedHeaders(stdin)
    while True:
        try:
            header, payload = events.read()
        except EOFError:
            return
        kind = header["type"]
        error: str | None = None
        failed: list[int] = []
        hook = kind
        log.new_event()  # the caps apply per event in a live run
        try:
            if kind == "history":
                for bar in decode_bars(int(header.get("count", 0)), payload, symbols):
                    take_in(bar)
            elif kind == "bars":
                items = header.get("items")
                if not isinstance(items, list):
                    raise SandtradeError("a bars event without items")
                bars = decode_bars(int(header.get("count", 0)), payload, symbols)
                if sum(1 for x in items if x[0]) != len(bars):
                    raise SandtradeError("a bars event whose items do not match its bars")
                failures = market(bars, items)
                failed = [k for k, _ in failures]
                if failures:
                    error = failures[0][1]
            elif kind == "start":
                call("on_start")
            elif kind == "signal":
                call("on_signal", _signal_view(header.get("signal") or {}))
            elif kind == "stop":
                call("on_stop")
            else:
                raise SandtradeError(f"unknown event {kind!r}")
        except MemoryError:
            raise
        except Exception as e:
            error = hook_error(e, hook)
        if not log.lines and not log.dropped and not plots.pending and error is None \
                and not failed and type(ctx.state) is dict and not ctx.state and saved == "{}":
            # Most events of most strategies: nothing to say but done (the same bytes).
            stdout.write(_QUIET_DONE)
            stdout.flush()
            if kind == "stop":
                return
            continue
        done: dict[str, Any] = {"type": "done", "logs": log.lines}
        if log.dropped:
            done["dropped"] = log.dropped
        points, styles = plots.take()  # the newest that fit the frame's share for them
        if points:
            done["plots"] = points
            done["plot_styles"] = styles
        try:
            now = check_json(ctx.state, where="ctx.state", max_bytes=state_bytes)
        except ValueError as e:
            # Reported as this event's failure even when a hook failed too (the host counts
            # either); the hook's error comes first.
            problem = f"{path}: {e}; the last good state is kept"
            error = problem if error is None else f"{error}\n{problem}"
        else:
            if now != saved:
                saved = now
                done["state_json"] = now
        if error is not None:
            done["error"] = error[:MAX_ERROR]
        if failed:
            done["failed"] = failed
        write_frame(stdout, done)
        log.lines = []
        log.dropped = 0
        if kind == "stop":
            return
