"""The host watched live: one numbered, bounded log of what changes, for pages that follow it.

A :class:`HostWatch` turns what the host already publishes into :class:`WatchEvent` values
with increasing ids, kept in one ring of ``capacity`` events shared by every reader:

* ``trade``: the broker's trade updates (an order after a change, and its fill), as they are
  committed (:meth:`DurableBroker.subscribe`);
* ``signal``: a journaled signal whose status moved (read from the journal every
  ``poll`` seconds: new rows, then the unfinished ones it knows), while someone watches:
  a host nobody has read for :data:`IDLE_AFTER` seconds does not read its journal for
  them. When a reader comes, the signals journaled meanwhile get their events late (up to
  :data:`CATCH_UP` of them); past that, the log says ``reset`` (read the state afresh);
* ``strategy`` and ``log``: a strategy's state and resource use when they change, and the
  lines of its log as they are written (the strategy manager's status and log streams);
* ``account``: an account's equity, cash and buying power when they change (once a second);
* ``bars``: a symbol has new bars (at most once per ``poll``; a reader asks the hub for them);
* ``plot``: points a live strategy plotted (``ctx.plot``), gathered per strategy and sent at
  most once a second each (the newest :data:`PLOT_EVENT_POINTS` of a series at most; a reader
  that wants more asks for the strategy's window).

A reader keeps the id of the last event it saw and asks for those after it
(:meth:`HostWatch.after`): a reader that was away reads what it missed, and one that fell
more than ``capacity`` events behind is told so (``gap``) and reads the state afresh. The
ring is the only memory readers cost: a slow reader never holds up the host, it only falls
behind. Events carry the account they belong to (``None`` for market data), so a reader
filters them by what its principal may see.

The pump runs on one thread of its own; nothing here is called by the broker's or the
feed's threads except the non-blocking offers of their streams.

It is one file because the pump owns every piece of its state on its one thread, and the
data of each event kind (``order_json``, ``signal_json``, ...) is built next to the round
that emits it: what a page receives is read in one place.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sandtrade.models import Account, Fill, Order, TradeUpdate
from sandtrade.signal_model import SignalRecord
from sandtrade.streams import EventStream

if TYPE_CHECKING:  # types only: importing this module stays light
    from sandtrade.broker.durable import DurableBroker
    from sandtrade.broker.paper import PaperBroker
    from sandtrade.market.hub import MarketHub
    from sandtrade.sandbox.manager import LogLine, StrategyManager
    from sandtrade.sandbox.plotbook import PlotBatch
    from sandtrade.store.base import Store

__all__ = ["HostWatch", "WatchEvent", "fill_json", "order_json", "signal_json"]

log = logging.getLogger(__name__)

#: A strategy run's order: ``client_order_id`` is ``NAME-RUNHEX-N`` (sandbox.manager, door).
_RUN_ORDER = re.compile(r"^(?P<name>.+)-[0-9a-f]{16}-\d+$")
#: A signal's order: ``client_order_id`` is ``SIGNAL_ID.N`` (signals.commands).
_SIGNAL_ORDER = re.compile(r"^(?P<signal>sig_[0-9a-f]+)\.\d+$")
#: Points of the equity curve kept per account in memory (one a second at most: over two
#: hours).
CURVE_POINTS = 8_000
#: Seconds between two points of an account's equity the store keeps (its curve since it
#: opened), the age past which they are thinned, to one every THIN_EVERY seconds, and the
#: points a reader gets at most (the last of each equal stretch of time).
STORED_EVERY = 60.0
THIN_AFTER = 30 * 86_400.0
THIN_EVERY = 3_600.0
CURVE_READ_POINTS = 5_000
#: Seconds between two ``bars`` events of one symbol, and two ``plot`` events of a strategy.
BARS_EVERY = 1.0
#: Points of one series a ``plot`` event carries at most (the newest).
PLOT_EVENT_POINTS = 500
#: Seconds without a reader (no :meth:`HostWatch.after`, nobody waiting) after which the
#: watch stops reading the journal for signal events: decoding every journaled signal
#: cost a host taking alerts flat out about a tenth of its time, with nobody to show them.
IDLE_AFTER = 2.0
#: Signals journaled while nobody watched that get their events when a reader comes; past
#: this many, readers read the state afresh instead.
CATCH_UP = 500


class WatchEvent:
    """One change: its id (increasing), kind, the account it belongs to (None: anyone who
    may read market data), its JSON-ready data, and that data as JSON text.

    The text is encoded when a reader first asks for it (and the data built then, when the
    event was given a way to make it), once however many readers send it: a host nobody
    watches does not pay for it. Two readers asking at once may both encode it; either
    result is the same, and the last one is kept."""

    __slots__ = ("_data", "_make", "_text", "account", "id", "kind")

    def __init__(self, id: int, kind: str, account: str | None,
                 data: dict[str, Any] | None = None, text: str | None = None, *,
                 make: Callable[[], dict[str, Any]] | None = None) -> None:
        if data is None and make is None:
            raise ValueError("WatchEvent: give its data or a way to make it")
        self.id = id
        self.kind = kind
        self.account = account
        self._data = data
        self._text = text
        self._make = make

    @property
    def data(self) -> dict[str, Any]:
        data = self._data
        if data is None:
            assert self._make is not None
            data = self._data = self._make()
        return data

    @property
    def text(self) -> str:
        text = self._text
        if text is None:
            data = self.data
            try:
                text = json.dumps(data, separators=(",", ":"), default=str, allow_nan=False)
            except ValueError:  # a NaN or infinity somewhere: JSON has none, a page shows null
                data = self._data = _finite(data)
                text = json.dumps(data, separators=(",", ":"), default=str)
            self._text = text
        return text

    def __repr__(self) -> str:
        return f"WatchEvent({self.id}, {self.kind!r}, {self.account!r})"


def _finite(value: Any) -> Any:
    """``value`` with every NaN or infinite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _time(t: datetime | None) -> float | None:
    return None if t is None else t.timestamp()


def order_source(order: Order, signals: dict[str, dict[str, Any]] | None = None
                 ) -> dict[str, Any]:
    """Where an order came from: its own ``source`` when the broker records one, else what
    its client order id says (a signal's or a strategy run's), else ``unknown``."""
    own = getattr(order, "source", None)
    if own is not None:
        dump = own.model_dump() if hasattr(own, "model_dump") else dict(own)
        return {"kind": str(dump.get("kind") or "unknown"), "ref": str(dump.get("ref") or ""),
                "label": str(dump.get("label") or "")}
    coid = order.client_order_id or ""
    m = _SIGNAL_ORDER.match(coid)
    if m:
        known = (signals or {}).get(m["signal"])
        if known is not None:
            return dict(known)
        return {"kind": "signal", "ref": m["signal"], "label": ""}
    m = _RUN_ORDER.match(coid)
    if m:
        return {"kind": "strategy", "ref": m["name"], "label": m["name"]}
    return {"kind": "unknown", "ref": "", "label": ""}


def order_json(order: Order, signals: dict[str, dict[str, Any]] | None = None
               ) -> dict[str, Any]:
    """An order as the pages show it."""
    return {
        "id": order.id, "account": order.account, "symbol": order.symbol,
        "side": order.side.value, "type": order.type.value, "qty": order.qty,
        "filled_qty": order.filled_qty, "avg_fill_price": order.avg_fill_price,
        "limit_price": order.limit_price, "stop_price": order.stop_price,
        "status": order.status.value, "reject_reason": order.reject_reason or "",
        "order_class": order.order_class.value, "parent_id": order.parent_id,
        "tag": order.tag or "", "client_order_id": order.client_order_id or "",
        "take_profit": order.take_profit.price if order.take_profit else None,
        "stop_loss": order.stop_loss.price if order.stop_loss else None,
        "created_at": _time(order.created_at), "updated_at": _time(order.updated_at),
        "open": order.is_open, "source": order_source(order, signals)}


def fill_json(fill: Fill) -> dict[str, Any]:
    """A fill as the pages show it."""
    return {"id": fill.id, "order_id": fill.order_id, "account": fill.account,
            "symbol": fill.symbol, "side": fill.side.value, "qty": fill.qty,
            "price": fill.price, "commission": fill.commission, "time": _time(fill.time),
            "price_source": fill.price_source}


_SECRET = re.compile(r"st_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")
_PASSPHRASE = re.compile(r'("passphrase"\s*:\s*")[^"]*(")')


def redact(body: str) -> str:
    """A signal's body with anything that looks like a token or a passphrase blanked."""
    return _PASSPHRASE.sub(r"\1[redacted]\2", _SECRET.sub("[token]", body))


def signal_source(record: SignalRecord) -> dict[str, Any]:
    """A signal's badge: its source, its id, and the alert's id or comment when it had one."""
    parsed = record.parsed or {}
    label = record.alert_id or str(parsed.get("comment") or "")
    for command in parsed.get("commands", []) or []:
        if not label and isinstance(command, dict) and command.get("comment"):
            label = str(command["comment"])
    return {"kind": record.source, "ref": record.id, "label": label[:120]}


def signal_json(record: SignalRecord) -> dict[str, Any]:
    """A journaled signal as the pages show it (tokens redacted from the body)."""
    parsed = record.parsed or {}
    commands = [c for c in parsed.get("commands", []) or [] if isinstance(c, dict)]
    symbols = sorted({str(c.get("symbol")) for c in commands if c.get("symbol")})
    return {
        "id": record.id, "source": signal_source(record), "account": record.account,
        "received_at": _time(record.received_at), "raw_body": redact(record.raw_body)[:4000],
        "format": record.format, "destination": record.destination,
        "status": record.status.value, "reason": record.reason, "alert_id": record.alert_id,
        "symbols": symbols, "commands": commands[:20], "orders": list(record.orders),
        "ignored_fields": list(parsed.get("ignored_fields") or []),
        "history": [{"status": s.status.value, "at": _time(s.at), "reason": s.reason}
                    for s in record.history]}


def account_json(account: Account) -> dict[str, Any]:
    """An account's numbers as the pages show them."""
    equity = account.equity if account.equity is not None else account.cash
    exposure = account.long_market_value + abs(account.short_market_value)
    return {"id": account.id, "cash": account.cash, "equity": equity,
            "buying_power": account.buying_power, "initial_cash": account.initial_cash,
            "realized_pnl": account.realized_pnl, "total_pnl": equity - account.initial_cash,
            "long_market_value": account.long_market_value,
            "short_market_value": account.short_market_value,
            "exposure": exposure, "exposure_pct": 100 * exposure / equity if equity else 0.0,
            "currency": account.currency}


class HostWatch:
    """The host's changes as one bounded, numbered log (see the module's docstring)."""

    def __init__(self, *, live: DurableBroker, store: Store, hub: MarketHub | None = None,
                 strategies: StrategyManager | None = None, capacity: int = 5_000,
                 poll: float = 0.1, idle_after: float = IDLE_AFTER,
                 catch_up: int = CATCH_UP) -> None:
        self.live = live
        self.store = store
        self.hub = hub
        self.strategies = strategies
        self.capacity = capacity
        self.poll = poll
        self.idle_after = idle_after
        self.catch_up = catch_up
        #: When a reader last asked for events (monotonic seconds), and whether the pump
        #: has stopped reading signals for want of readers (the pump's own flag).
        self._read_at = -math.inf
        self._idle = True
        self._events: deque[WatchEvent] = deque(maxlen=capacity)
        self._next = 1
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Signal id -> its badge, for orders that name their signal.
        self._signal_sources: dict[str, dict[str, Any]] = {}
        self._seen_signals: dict[str, tuple[str, int]] = {}  # id -> (status, steps)
        self._open_signals: set[str] = set()
        self._last_seq = 0
        self._strategy_views: dict[str, dict[str, Any]] = {}
        self._followers: dict[str, EventStream[LogLine]] = {}
        self._accounts: dict[str, dict[str, Any]] = {}
        self._curves: dict[str, deque[tuple[float, float]]] = {}
        #: Per account: the last point the store was given (time, equity).
        self._stored: dict[str, tuple[float, float]] = {}
        self._thinned_at = 0.0
        self._bars_pending: dict[str, Any] = {}
        self._bars_sent: dict[str, float] = {}
        #: (account, strategy) -> series name -> (style, points) not sent yet; and when each
        #: strategy's last plot event went.
        self._plots_pending: dict[tuple[str, str], dict[str, tuple[dict[str, Any],
                                                                   list[list[float]]]]] = {}
        self._plots_sent: dict[tuple[str, str], float] = {}

    # ------------------------------------------------------------------ life

    def start(self) -> HostWatch:
        with self._lock:
            # Signals journaled before now are history: readers list them themselves.
            newest = self.store.list_signals(limit=1)
            self._last_seq = newest[0][0] if newest else 0
        self._thread = threading.Thread(target=self._run, name="watch", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for stream in list(self._followers.values()):
            stream.close()

    # ------------------------------------------------------------------ readers

    @property
    def last_id(self) -> int:
        with self._lock:
            return self._next - 1

    @property
    def idle(self) -> bool:
        """Whether the pump has stopped making signal events for want of readers (it
        resumes on its next round after a reader comes)."""
        return self._idle

    def after(self, last_id: int, limit: int = 500) -> tuple[list[WatchEvent], bool]:
        """Events after ``last_id`` (at most ``limit``), and whether some between were
        forgotten already (the reader must read the state afresh)."""
        self._read_at = time.monotonic()
        with self._lock:
            if not self._events:
                return [], False
            first = self._events[0].id
            gap = last_id + 1 < first and last_id < self._next - 1
            start = max(0, last_id + 1 - first)
            out = [self._events[i] for i in range(start, min(len(self._events),
                                                              start + limit))]
        return out, gap

    async def wait(self, last_id: int, timeout: float) -> None:
        """Return when there is an event after ``last_id``, or after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        event = asyncio.Event()
        key = (loop, event)
        with self._lock:
            if self._next - 1 > last_id:
                return
            self._waiters.add(key)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout)
        finally:
            with self._lock:
                self._waiters.discard(key)

    def equity_curve(self, account: str) -> list[tuple[float, float]]:
        """(time, equity) of ``account`` since it opened (at its opening cash), oldest
        first: what the store keeps (a point a minute; an hour past thirty days), then the
        last two hours at up to a point a second; at most :data:`CURVE_READ_POINTS`, the
        last of each equal stretch of time when there are more."""
        with self._lock:
            recent = list(self._curves.get(account, ()))
        stored = self.store.equity_points(account, until=recent[0][0] if recent else None)
        return thinned(stored + recent, CURVE_READ_POINTS)

    def sources(self) -> dict[str, dict[str, Any]]:
        """Signal id -> badge of the signals seen so far."""
        with self._lock:
            return dict(self._signal_sources)

    # ------------------------------------------------------------------ the pump

    def emit(self, kind: str, account: str | None, data: dict[str, Any] | None = None, *,
             make: Callable[[], dict[str, Any]] | None = None) -> None:
        """Add an event to the log and wake the readers waiting for one: its ``data``, or
        ``make``, which builds it when a reader first asks (from values that no longer
        change)."""
        with self._lock:
            self._events.append(WatchEvent(self._next, kind, account, data, make=make))
            self._next += 1
            waiters = list(self._waiters)
        for loop, event in waiters:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(event.set)

    def _run(self) -> None:
        trades = self.live.subscribe(None)
        bars = self.hub.subscribe() if self.hub is not None else None
        strategies = self.strategies
        plots = strategies.follow_plots() if strategies is not None else None
        next_poll = next_slow = 0.0
        while not self._stop.is_set():
            try:
                update = trades.get(timeout=self.poll / 2)
                while update is not None:
                    self._trade(update)
                    update = trades.get(timeout=0)
                if trades.closed:
                    if self._stop.is_set():
                        break
                    trades = self.live.subscribe(None)
                    self.emit("reset", None, {"why": "trade updates were cut off"})
                now = time.monotonic()
                if now >= next_poll:
                    next_poll = now + self.poll
                    if self._waiters or now - self._read_at <= self.idle_after:
                        if self._idle:
                            self._wake()
                        self._signals()
                    else:
                        self._idle = True
                    self._bars(bars)
                    self._logs()
                    if plots is not None and strategies is not None:
                        if plots.closed:  # it overflowed: what it dropped is in the window
                            plots = strategies.follow_plots()
                        self._plots(plots)
                if now >= next_slow:
                    next_slow = now + 1.0
                    self._strategy_states()
                    self._account_states()
            except Exception:  # a bad row must not end the watch
                log.exception("watch: one round failed")
                self._stop.wait(self.poll)
        trades.close()
        if bars is not None:
            bars.close()
        if plots is not None:
            plots.close()

    def _trade(self, update: TradeUpdate) -> None:
        # Read in place, not copied: only this thread (the watch's) changes the badges, and
        # a copy of up to 20,000 of them per trade update was most of a busy host's time.
        sources = self._signal_sources
        # Built now (the order object goes on changing), encoded when first read. "at": when
        # the update was committed (the pump wakes on it), for fill-to-screen.
        data: dict[str, Any] = {"order": order_json(update.order, sources),
                                "fill": fill_json(update.fill) if update.fill else None,
                                "at": time.time()}
        self.emit("trade", update.order.account, data)

    def _wake(self) -> None:
        """A reader came after an idle spell. The signals journaled meanwhile get their
        events from the next rounds, late, when there are at most ``catch_up`` of them;
        else the watch goes on from the newest, watching those still unfinished, and the
        log says ``reset``. Not idle once that is settled."""
        newest = self.store.list_signals(limit=1)
        seq = newest[0][0] if newest else 0
        if seq - self._last_seq > self.catch_up:
            self._last_seq = seq
            self._open_signals.update(r.id for r in self.store.unfinished_signals())
            self.emit("reset", None, {"why": "more signals came while nobody watched than "
                                             "are caught up on"})
        self._idle = False

    def _signals(self) -> None:
        # Those journaled since the last round only (oldest first, after the cursor): reading
        # the day's oldest 500 each round cost a loaded host a third of its time decoding the
        # same rows, and missed every signal past the 500th.
        rows = self.store.list_signals(limit=500, oldest_first=True, before_seq=self._last_seq)
        fresh = [r for seq, r in rows if seq > self._last_seq]
        if rows:
            self._last_seq = max(self._last_seq, rows[-1][0])
        again = [self.store.get_signal(sid) for sid in list(self._open_signals)]
        for record in [*fresh, *(r for r in again if r is not None)]:
            key = (record.status.value, len(record.history))
            if self._seen_signals.get(record.id) == key:
                continue
            self._seen_signals[record.id] = key
            if record.status.final:
                self._open_signals.discard(record.id)
            else:
                self._open_signals.add(record.id)
            with self._lock:
                self._signal_sources[record.id] = signal_source(record)
            # A record read from the store is a snapshot of its own: built when first read.
            self.emit("signal", record.account, make=functools.partial(signal_json, record))
        while len(self._seen_signals) > 20_000:
            self._seen_signals.pop(next(iter(self._seen_signals)))
        with self._lock:
            while len(self._signal_sources) > 20_000:
                self._signal_sources.pop(next(iter(self._signal_sources)))

    def _bars(self, bars: EventStream[Any] | None) -> None:
        """A symbol's newest bar, at most once a second per symbol (a fast feed would
        otherwise fill the log with bars and push out what readers need)."""
        if bars is None:
            return
        bar = bars.get(timeout=0)
        while bar is not None:
            self._bars_pending[bar.symbol] = bar
            bar = bars.get(timeout=0)
        now = time.monotonic()
        for symbol, b in list(self._bars_pending.items()):
            if now - self._bars_sent.get(symbol, -1e9) < BARS_EVERY:
                continue
            self._bars_sent[symbol] = now
            del self._bars_pending[symbol]
            self.emit("bars", None, {"symbol": symbol, "time": _time(b.time), "open": b.open,
                                     "high": b.high, "low": b.low, "close": b.close})

    def _plots(self, plots: EventStream[PlotBatch]) -> None:
        """Points strategies plotted, one ``plot`` event per strategy at most once a
        second."""
        batch = plots.get(timeout=0)
        while batch is not None:
            series = self._plots_pending.setdefault((batch.account, batch.strategy), {})
            style = {"pane": batch.pane, "color": batch.color, "symbol": batch.symbol}
            got = series.get(batch.name)
            points = got[1] if got is not None else []
            points.extend([t, v] for t, v in batch.points)
            del points[:-PLOT_EVENT_POINTS]
            series[batch.name] = (style, points)
            batch = plots.get(timeout=0)
        now = time.monotonic()
        for key, series in list(self._plots_pending.items()):
            if now - self._plots_sent.get(key, -1e9) < BARS_EVERY:
                continue
            self._plots_sent[key] = now
            del self._plots_pending[key]
            self.emit("plot", key[0], {"strategy": key[1], "series": [
                {"name": name, **style, "points": points}
                for name, (style, points) in series.items()]})

    def _strategy_states(self) -> None:
        if self.strategies is None:
            return
        for record, _ in self.strategies.list_all():
            try:
                _, state, status = self.strategies.status(record.account, record.name)
            except Exception:  # deleted meanwhile
                continue
            view = {"name": record.name, "account": record.account, "state": state,
                    "restarts": status.restarts, "kill_reason": status.kill_reason,
                    "last_errors": list(status.last_errors)[-5:],
                    "cpu_seconds": round(status.cpu_seconds, 1),
                    "rss_mb": round(status.rss_bytes / 2**20, 1),
                    "symbols": list(record.symbols), "desired": record.desired}
            key = f"{record.account}/{record.name}"
            if self._strategy_views.get(key) != view:
                self._strategy_views[key] = view
                self.emit("strategy", record.account, view)
            if key not in self._followers:
                self._followers[key] = self.strategies.follow_logs(record.account,
                                                                   record.name)

    def _logs(self) -> None:
        for key, stream in list(self._followers.items()):
            account, _, name = key.partition("/")
            line = stream.get(timeout=0)
            while line is not None:
                self.emit("log", account, {"strategy": name, "time": _time(line.time),
                                           "line": line.line[:2000], "origin": line.origin})
                line = stream.get(timeout=0)
            if stream.closed:
                del self._followers[key]

    def _account_states(self) -> None:
        accounts = [a.id for a in self.store.list_accounts()]

        def read(b: PaperBroker) -> list[Account]:
            return [b.account(a) for a in accounts if b.has_account(a)]

        now = time.time()
        keep: list[tuple[str, float, float]] = []
        for account in self.live.call(read):
            view = account_json(account)
            with self._lock:
                curve = self._curves.get(account.id)
                if curve is None:
                    curve = self._curves[account.id] = deque(maxlen=CURVE_POINTS)
                    stored = self.store.latest_equity_point(account.id)
                    if stored is not None:  # a restart: the curve goes on from there
                        self._stored[account.id] = stored
                    else:
                        opened = (account.id, min(_time(account.created_at) or now - 1,
                                                  now - 1), account.initial_cash)
                        keep.append(opened)
                        self._stored[account.id] = opened[1:]
                    curve.append(self._stored[account.id])
                if curve[-1][1] != view["equity"]:
                    curve.append((now, view["equity"]))
                last = self._stored[account.id]
                if now - last[0] >= STORED_EVERY and last[1] != view["equity"]:
                    keep.append((account.id, now, view["equity"]))
                    self._stored[account.id] = (now, view["equity"])
            if self._accounts.get(account.id) != view:
                self._accounts[account.id] = view
                self.emit("account", account.id, {**view, "time": now})
        self.store.append_equity_points(keep)
        if now - self._thinned_at >= THIN_EVERY:
            self._thinned_at = now
            self.store.thin_equity_points(now - THIN_AFTER, THIN_EVERY)


def thinned(points: list[tuple[float, float]], most: int) -> list[tuple[float, float]]:
    """``points`` (oldest first) if there are at most ``most``; else the first, and the last
    of each of ``most - 1`` equal stretches of the time after it (a step curve keeps its
    shape: each kept point is the value that held until the next)."""
    if len(points) <= most:
        return points
    start, end = points[0][0], points[-1][0]
    width = (end - start) / (most - 1) or 1.0
    out = [points[0]]
    for i in range(1, len(points)):
        here = min(int((points[i][0] - start) / width), most - 2)
        if i + 1 == len(points) or min(int((points[i + 1][0] - start) / width),
                                       most - 2) != here:
            out.append(points[i])
    return out
