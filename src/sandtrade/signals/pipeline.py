"""The signal pipeline: parse, validate, deduplicate, journal, answer, then execute in order.

Receiving (any thread, or the HTTP server's event loop)::

    body -> format -> fields checked (account, symbols, quantities against lot sizes)
         -> route -> duplicate?
         -> journal (durable, group commit) -> answer the sender

Executing (one lane per destination, in journal order, one signal at a time)::

    paper:   the signal's orders and its ``executed`` status commit in one transaction, so
             across a SIGKILL a signal is either executed with its orders or not at all, and
             a restarted host executes what was journaled but not executed: exactly once.
    strategy: marked ``routed`` durably, then handed to the strategy's ``on_signal``; one in
             flight when the host dies is not delivered again (at most once) and is marked
             failed on restart, with that reason.
    live:    the same as strategy, through a live-broker plugin, with client order ids the
             broker can deduplicate on.

A signal's commands run in one step under the broker's lock: a reversal (close the long,
open the short) can never interleave with another signal.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import logging
import os
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sandtrade.auth import ALL_ACCOUNTS, AuthError, Principal
from sandtrade.errors import SandtradeError
from sandtrade.models import Instrument, Order, OrderSide, OrderStatus
from sandtrade.signal_model import Command, ParsedSignal, SignalError, SignalRecord, SignalStatus
from sandtrade.signals.formats import FormatRegistry
from sandtrade.signals.settings import SignalSettings

if TYPE_CHECKING:
    from sandtrade.broker.durable import DurableBroker
    from sandtrade.broker.paper import PaperBroker
    from sandtrade.signals.destinations import LiveBrokerAdapter, StrategyInbox
    from sandtrade.store.base import Store

__all__ = ["Overloaded", "PlannedOrder", "SignalPipeline", "Submitted", "place_commands",
           "plan_commands", "resolve_symbol"]

log = logging.getLogger(__name__)

#: How long a strategy may take over ``on_signal`` before the signal is marked failed.
STRATEGY_SIGNAL_TIMEOUT = 30.0
#: Sources whose identical bodies within ``resend_window`` are resends (they send no keys).
RESEND_SOURCES = frozenset({"tradingview"})
_JOURNAL_BATCH = 2048
_LANE_BATCH = 512


class Overloaded(SandtradeError):
    """The host cannot accept more signals now (nothing was journaled); retry later."""


@dataclass
class Submitted:
    """The answer to a sender."""

    record: SignalRecord
    duplicate: bool = False
    #: With a duplicate: the signal it repeats.
    original: SignalRecord | None = None
    #: How the body was read and what it would do (always filled for dry runs).
    explanation: str = ""
    dry_run: bool = False


@dataclass(frozen=True)
class PlannedOrder:
    """An order a command will place."""

    side: OrderSide
    qty: float
    command: Command
    note: str

    def describe(self) -> str:
        text = f"{self.side.value} {self.qty:g} {self.command.symbol}"
        if self.command.order_type != "market":
            prices = [f"{k} {v:g}" for k, v in (("stop", self.command.stop_price),
                                                 ("limit", self.command.limit_price))
                      if v is not None]
            text += f" {self.command.order_type.replace('_', '-')} ({', '.join(prices)})"
        else:
            text += " market"
        return f"{text}{' ' + self.note if self.note else ''}"


def _effective_position(broker: PaperBroker, account: str, symbol: str) -> float:
    """The position once the working market orders fill: what a target is measured from, so
    that two targets before the next bar do not both trade."""
    qty = broker.position_qty(account, symbol)
    for order in broker.working_orders(account, symbol):
        if order.type.value == "market" and order.qty is not None:
            left = order.qty - order.filled_qty
            qty += left if order.side is OrderSide.BUY else -left
    return qty


def plan_commands(broker: PaperBroker, account: str, commands: Sequence[Command]
                  ) -> list[tuple[Command, list[PlannedOrder] | str]]:
    """What each command does against the account as it is now: orders, or why none.

    The commands are planned in order, each seeing the orders the ones before it planned.
    """
    out: list[tuple[Command, list[PlannedOrder] | str]] = []
    shift: dict[str, float] = {}
    for cmd in commands:
        if cmd.action == "cancel":
            n = len(broker.working_orders(account, cmd.symbol))
            out.append((cmd, f"cancel {n} working order{'s' if n != 1 else ''}"))
            continue
        pos = _effective_position(broker, account, cmd.symbol) + shift.get(cmd.symbol, 0.0)
        if cmd.only_if == "long" and not pos > 0:
            out.append((cmd, f"nothing: the position is {pos:g}, not long"))
            continue
        if cmd.only_if == "short" and not pos < 0:
            out.append((cmd, f"nothing: the position is {pos:g}, not short"))
            continue
        orders: list[PlannedOrder] = []
        if cmd.action == "buy":
            orders.append(PlannedOrder(OrderSide.BUY, cmd.qty, cmd, ""))
        elif cmd.action == "sell":
            orders.append(PlannedOrder(OrderSide.SELL, cmd.qty, cmd, ""))
        else:
            target = cmd.qty
            if abs(target - pos) < 1e-12:
                out.append((cmd, f"nothing: the position is already {pos:g}"))
                continue
            if pos != 0 and (pos > 0) != (target > 0) and target != 0:
                # A reversal: close, then open, placed together in this one step.
                close_side = OrderSide.SELL if pos > 0 else OrderSide.BUY
                orders.append(PlannedOrder(close_side, abs(pos), cmd,
                                           f"(close the {'long' if pos > 0 else 'short'})"))
                orders.append(PlannedOrder(OrderSide.BUY if target > 0 else OrderSide.SELL,
                                           abs(target), cmd,
                                           f"(open the {'long' if target > 0 else 'short'})"))
            else:
                diff = target - pos
                note = f"(position {pos:g} -> {target:g})"
                orders.append(PlannedOrder(OrderSide.BUY if diff > 0 else OrderSide.SELL,
                                           abs(diff), cmd, note))
        for o in orders:
            shift[cmd.symbol] = shift.get(cmd.symbol, 0.0) + (o.qty if o.side is OrderSide.BUY
                                                                else -o.qty)
        out.append((cmd, orders))
    return out


def place_commands(b: PaperBroker, account: str, commands: Sequence[Command], signal_id: str,
                   *, first_time: bool = False) -> tuple[list[Order], list[str], str | None]:
    """Carry out a signal's commands on the paper broker, in order, in one step: the orders
    placed, what each command did, and why it stopped (a rejected order) or None.

    Order ``n`` of the signal gets the client order id ``<signal_id>.<n>``: executed again
    (after a restart, or a replay into the same account), it does not trade twice.
    ``first_time`` (a signal received since the host started, executed once only) spares
    looking for earlier orders with those ids in the store.
    """
    placed: list[Order] = []
    notes: list[str] = []
    n = 0
    for cmd, what in plan_commands(b, account, commands):
        if cmd.action == "cancel":
            for o in b.working_orders(account, cmd.symbol):
                b.cancel(o.id, f"canceled by signal {signal_id}")
            notes.append(str(what))
            continue
        if isinstance(what, str):
            notes.append(what)
            continue
        for planned in what:
            order = b.submit(
                account, cmd.symbol, planned.side, planned.qty, type=cmd.order_type,
                limit_price=cmd.limit_price, stop_price=cmd.stop_price,
                client_order_id=f"{signal_id}.{n}", tag=f"signal {signal_id}",
                new_client_id=first_time)
            n += 1
            placed.append(order)
            if order.status is OrderStatus.REJECTED:
                return placed, notes, (f"order {order.id} ({planned.describe()}) was "
                                       f"rejected: {order.reject_reason}")
            notes.append(f"{order.id}: {planned.describe()}")
    return placed, notes, None


def resolve_symbol(symbol: str, known: Sequence[str]) -> str | None:
    """``symbol`` as the host spells it: exact, or equal ignoring case and punctuation
    (TradingView's BTCUSD is the host's BTC-USD); None when unknown or ambiguous."""
    if symbol in known:
        return symbol

    def norm(s: str) -> str:
        return "".join(ch for ch in s.upper() if ch.isalnum())

    matches = [k for k in known if norm(k) == norm(symbol)]
    return matches[0] if len(matches) == 1 else None


# ---------------------------------------------------------------------------- the journal


class _Journal:
    """Appends signals durably in groups, through the live broker's group commit: one fsync
    for the signals that arrived meanwhile and the broker's pending changes together."""

    def __init__(self, live: DurableBroker, after: Callable[[list[SignalRecord]], None],
                 failed: Callable[[list[SignalRecord]], None]) -> None:
        self._live = live
        self._after = after
        self._failed = failed
        self._queue: queue.SimpleQueue[tuple[SignalRecord, str | None, Future[None]] | None] = \
            queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="signal-journal", daemon=True)
        self._thread.start()

    def _fail(self, items: list[tuple[SignalRecord, str | None, Future[None]]],
              error: Exception) -> None:
        self._failed([r for r, _, _ in items])
        for _, _, fut in items:
            fut.set_exception(error)

    def append(self, record: SignalRecord, dedup_hash: str | None) -> Future[None]:
        fut: Future[None] = Future()
        self._queue.put((record, dedup_hash, fut))
        return fut

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            stop = False
            while len(batch) < _JOURNAL_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            # A record the store could not write would fail the whole group (broker
            # changes included): each is checked alone first.
            storable = []
            for item in batch:
                try:
                    item[0].model_dump_json()
                except Exception as e:
                    self._fail([item], e)
                else:
                    storable.append(item)
            stored = []
            if storable:
                try:
                    self._live.settle(self._live.journal([(r, h) for r, h, _ in storable]))
                    stored = storable
                except Exception as e:
                    self._fail(storable, e)
            if stored:
                # Hand to the lanes before answering: the journal order is the execution order.
                try:
                    self._after([r for r, _, _ in stored])
                except Exception:  # a lane problem must not cost the answer
                    log.exception("signals journaled but not queued for execution")
                for _, _, fut in stored:
                    fut.set_result(None)
            if stop:
                return


# ---------------------------------------------------------------------------- lanes


@dataclass
class _Lane:
    """Signals for one destination, executed one at a time in journal order."""

    key: str
    items: deque[SignalRecord] = field(default_factory=deque)
    cond: threading.Condition = field(default_factory=threading.Condition)
    thread: threading.Thread | None = None
    busy: bool = False


class SignalPipeline:
    """Receives, journals and executes signals for one host."""

    def __init__(self, *, store: Store, live: DurableBroker, formats: FormatRegistry,
                 settings: SignalSettings, symbols: Callable[[], Sequence[str]],
                 default_account: str, market_position: Callable[[], int] = lambda: 0,
                 instrument: Callable[[str], Instrument | None] = lambda symbol: None,
                 strategies: StrategyInbox | None = None,
                 live_brokers: dict[str, LiveBrokerAdapter] | None = None) -> None:
        self.store = store
        self.live = live
        self.formats = formats
        self.settings = settings
        self.symbols = symbols
        #: The trading rules of a symbol (its lot size), to refuse at once what the broker
        #: would certainly refuse later.
        self.instrument = instrument
        self.default_account = default_account
        self.market_position = market_position
        self.strategies = strategies
        self.live_brokers = live_brokers or {}
        self._lock = threading.Lock()
        self._lanes: dict[str, _Lane] = {}
        self._known: set[str] = set()
        self._recovered = threading.Event()
        self._recovered_ids: set[str] = set()
        self._lanes_lock = threading.Lock()
        self._closed = False
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(3).hex()
        # duplicate index: (account, key) -> (id, ts); hash -> (id, ts); oldest first
        self._keys: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._hashes: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self._records: OrderedDict[str, SignalRecord] = OrderedDict()  # recent, by id
        self._pending: dict[str, int] = {}  # per account: accepted, not yet executed
        self.check_destinations()
        self._load_dedup_index()
        self._journal = _Journal(live, self._enqueue, self._not_journaled)

    # ------------------------------------------------------------------ life

    def check_destinations(self) -> None:
        """Refuse a configuration that could route to a live broker without consent."""
        s = self.settings
        lives = [r.to for r in s.routes if r.to.startswith("live:")]
        if s.mode == "live":
            if not s.live_broker:
                raise SandtradeError("signals.live_broker: mode = \"live\" needs the name of a "
                                     "live-broker plugin")
            lives.append(f"live:{s.live_broker}")
        if lives and not s.allow_live:
            raise SandtradeError(f"signals.allow_live: {lives[0]} sends signals to a live "
                                 "broker; set allow_live = true to allow it (paper is the "
                                 "default for a reason)")
        for dest in lives:
            name = dest.split(":", 1)[1]
            if name not in self.live_brokers:
                raise SandtradeError(
                    f"signals: {dest} names a live broker that no installed plugin provides "
                    f"(installed: {', '.join(sorted(self.live_brokers)) or 'none'})")

    def recover(self) -> int:
        """Queue what was journaled but not finished before a restart, ahead of anything
        received since, and let execution begin (nothing executes before this is called,
        once the market has caught up); returns how many were queued."""
        pending = self.store.unfinished_signals()
        retry: list[SignalRecord] = []
        abandoned: list[SignalRecord] = []
        now = datetime.now(UTC)
        for rec in pending:
            if rec.status is SignalStatus.ROUTED and not rec.destination.startswith("paper"):
                rec.step(SignalStatus.FAILED, now, "the host stopped while "
                         f"{rec.destination} handled this signal; it is not delivered again "
                         "(at most once)")
                abandoned.append(rec)
            else:
                retry.append(rec)
        if abandoned:
            self.store.update_signals(abandoned)
        with self._lock:
            for r in retry:
                self._pending[r.account] = self._pending.get(r.account, 0) + 1
        self._recovered_ids.update(r.id for r in retry)
        # Before anything received since the start: the journal's order is kept.
        self._enqueue(retry, front=True)
        self._recovered.set()
        if retry:
            log.info("signals: %d journaled before the restart queued for execution",
                     len(retry))
        return len(retry)

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, let the lanes finish what is queued (up to ``timeout``)."""
        with self._lock:
            self._closed = True
        self._recovered.set()  # a host stopped before its feed caught up: let lanes end
        self._journal.close()
        deadline = time.monotonic() + timeout
        with self._lanes_lock:
            lanes = list(self._lanes.values())
        for lane in lanes:
            with lane.cond:
                while (lane.items or lane.busy) and time.monotonic() < deadline:
                    lane.cond.wait(0.05)
                lane.items.append(None)  # type: ignore[arg-type]
                lane.cond.notify_all()
        for lane in lanes:
            if lane.thread is not None:
                lane.thread.join(max(0.1, deadline - time.monotonic()))

    def health(self) -> dict[str, Any]:
        """Signals waiting to execute, per destination lane."""
        with self._lanes_lock:
            lanes = {k: len(lane.items) + int(lane.busy) for k, lane in self._lanes.items()}
        return {"signals_waiting": sum(self._pending.values()), "lanes": lanes,
                "accepting": not self._closed, "recovered": self._recovered.is_set()}

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every accepted signal has been executed (tests, replays)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lanes_lock:
                lanes = list(self._lanes.values())
            if self._recovered.is_set() and not any(self._pending.values()) and \
                    all(not lane.items and not lane.busy for lane in lanes):
                return True
            time.sleep(0.005)
        return False

    # ------------------------------------------------------------------ receiving

    def check(self, body: str, *, source: str = "check", principal: Principal | None = None,
              fmt: str | None = None) -> Submitted:
        """How ``body`` is read and what it would do, without journaling or executing."""
        record, _, _ = self._prepare(body, source=source, principal=principal, fmt=fmt,
                                     idempotency_key=None)
        return Submitted(record, explanation=self.explain(record), dry_run=True)

    def submit(self, body: str, *, source: str, principal: Principal, fmt: str | None = None,
               idempotency_key: str | None = None, dry_run: bool = False,
               timeout: float = 30.0) -> Submitted:
        """Journal a signal durably (blocking) and queue it; the answer for the sender."""
        if dry_run:
            return self.check(body, source=source, principal=principal, fmt=fmt)
        answer, fut = self._begin(body, source, principal, fmt, idempotency_key)
        fut.result(timeout)
        return answer

    async def submit_async(self, body: str, *, source: str, principal: Principal,
                           fmt: str | None = None, idempotency_key: str | None = None,
                           dry_run: bool = False) -> Submitted:
        """:meth:`submit` for an event loop: the loop is free while the journal commits."""
        if dry_run:
            return self.check(body, source=source, principal=principal, fmt=fmt)
        answer, fut = self._begin(body, source, principal, fmt, idempotency_key)
        await asyncio.wrap_future(fut)
        return answer

    def _begin(self, body: str, source: str, principal: Principal, fmt: str | None,
               idempotency_key: str | None) -> tuple[Submitted, Future[None]]:
        record, key, body_hash = self._prepare(body, source=source, principal=principal,
                                               fmt=fmt, idempotency_key=idempotency_key)
        now = time.time()
        with self._lock:
            if self._closed:
                raise Overloaded("the host is shutting down; nothing was journaled")
            waiting = self._pending.get(record.account, 0)
            if waiting >= self.settings.queue_limit:
                raise Overloaded(f"{waiting} signals of account {record.account} are waiting "
                                 "to execute (the limit is signals.queue_limit); nothing was "
                                 "journaled, retry later")
            record.id = self._new_id()
            original_id = None
            dedup_hash = None
            if record.status is SignalStatus.VALIDATED:
                original_id, why = self._find_duplicate(record.account, key, body_hash, now)
            if original_id is not None:
                record.step(SignalStatus.DROPPED, record.received_at,
                            f"duplicate of {original_id} ({why}); not executed again")
                record.idempotency_key = None
            else:
                if record.status is SignalStatus.VALIDATED:
                    if key is not None:
                        self._keys[(record.account, key)] = (record.id, now)
                    if body_hash is not None and self.settings.resend_window > 0:
                        self._hashes[body_hash] = (record.id, now)
                        dedup_hash = body_hash
                    self._pending[record.account] = self._pending.get(record.account, 0) + 1
            self._remember(record)
            fut = self._journal.append(record, dedup_hash)
        original = self._records.get(original_id) if original_id else None
        if original_id and original is None:
            original = self.store.get_signal(original_id)
        answer = Submitted(record.snapshot(), duplicate=original_id is not None,
                           original=original)
        return answer, fut

    def _prepare(self, body: str, *, source: str, principal: Principal | None,
                 fmt: str | None, idempotency_key: str | None
                 ) -> tuple[SignalRecord, str | None, str | None]:
        now = datetime.now(UTC)
        account = principal.account if principal else self.default_account
        if account == ALL_ACCOUNTS:
            account = self.default_account
        record = SignalRecord(id="", source=source, received_at=now, raw_body=body,
                              account=account,
                              token_id=principal.token_id if principal else None)
        record.step(SignalStatus.RECEIVED, now)
        try:
            parsed = self.formats.parse(body, fmt)
            record.format = parsed.format
            record.parsed = parsed.model_dump(exclude={"passphrase"})
            record.alert_id = parsed.alert_id
            record.account = self._account(parsed, principal)
            commands = self._resolve(parsed)
            record.parsed["commands"] = [c.model_dump() for c in commands]
            record.destination, why = self._route(record, parsed)
            if record.destination.startswith("paper:"):
                self._check_quantities(commands)
            key = idempotency_key or parsed.idempotency_key
            if key is not None and len(key) > 200:
                raise SignalError("is longer than 200 characters", field="idempotency_key")
            record.idempotency_key = key
        except (SignalError, AuthError) as e:
            record.step(SignalStatus.REJECTED, now, str(e))
            return record, None, None
        except Exception as e:  # a bug must not turn a payload into a 5xx and a resend
            log.exception("reading a signal body failed")
            record.step(SignalStatus.REJECTED, now, f"the body could not be read "
                        f"({type(e).__name__}: {e})")
            record.parsed = None
            return record, None, None
        record.step(SignalStatus.VALIDATED, now, why)
        # A sender that cannot give an idempotency key (TradingView) is deduplicated on its
        # body: the same body from the same token within resend_window is a resend. Programs
        # give keys (the client always does), and may well send "buy 1 AAPL" twice on purpose.
        body_hash = None
        if key is None and source in RESEND_SOURCES:
            body_hash = hashlib.sha256(f"{record.token_id or ''}\0{record.account}\0"
                                       f"{body.strip()}".encode()).hexdigest()
        return record, key, body_hash

    def _account(self, parsed: ParsedSignal, principal: Principal | None) -> str:
        if principal is None:
            return parsed.account or self.default_account
        if not principal.has("signal"):
            raise AuthError(f"token {principal.token_id} lacks the 'signal' scope")
        target = parsed.account
        if principal.account == ALL_ACCOUNTS:
            return target or self.default_account
        if target is not None and target != principal.account:
            raise SignalError(f"this token sends signals for account {principal.account!r}, "
                              f"not {target!r}", field="account")
        return principal.account

    def _resolve(self, parsed: ParsedSignal) -> list[Command]:
        known = list(self.symbols())
        out = []
        for cmd in parsed.commands:
            symbol = resolve_symbol(cmd.symbol, known)
            if symbol is None:
                shown = ", ".join(known[:20]) + (" ..." if len(known) > 20 else "")
                raise SignalError(f"{cmd.symbol!r} is not traded on this host (known: "
                                  f"{shown or 'none'})", field="symbol")
            out.append(cmd if symbol == cmd.symbol else cmd.model_copy(update={"symbol": symbol}))
        return out

    def _check_quantities(self, commands: list[Command]) -> None:
        """Refuse now a quantity the paper broker would refuse whatever the position: better
        a 422 naming it than a 200 and a signal that fails later, seen only in ``signals
        list``. (A strategy reads a signal's quantity as it likes, a live broker has lot sizes
        of its own: only signals for a paper account are checked.)

        A buy or sell trades its quantity; a target's difference to a position (always whole
        lots) is whole lots only when the target is. A conditional command (``only_if``) may
        do nothing, so it is left to the broker.
        """
        for cmd in commands:
            if cmd.action == "cancel" or cmd.only_if is not None or cmd.qty == 0:
                continue
            inst = self.instrument(cmd.symbol)
            problem = inst.quantity_problem(cmd.qty) if inst is not None else None
            if problem is not None:
                where = f" in {cmd.describe()!r}" if len(commands) > 1 else ""
                raise SignalError(f"{problem}{where}", field="qty")

    def _route(self, record: SignalRecord, parsed: ParsedSignal) -> tuple[str, str]:
        s = self.settings
        symbol = parsed.commands[0].symbol if parsed.commands else None
        for i, route in enumerate(s.routes):
            if route.matches(source=record.source, symbol=symbol, alert=parsed.alert_id,
                             strategy=parsed.strategy, account=record.account,
                             format=parsed.format):
                dest = route.to
                why = f"route {i + 1} ({route.to})"
                break
        else:
            if parsed.strategy:
                dest, why = f"strategy:{parsed.strategy}", "the signal names a strategy"
            elif s.mode == "live":
                dest, why = f"live:{s.live_broker}", "no route matched; mode is live"
            else:
                dest, why = "paper", "no route matched: the account's paper broker"
        if dest == "paper":
            dest = f"paper:{record.account}"
        kind, _, name = dest.partition(":")
        if kind == "strategy":
            if self.strategies is None:
                raise SignalError("strategies do not run on this host", field="strategy")
            if not self._exists(dest, lambda: self.store.get_strategy(name) is not None):
                raise SignalError(f"strategy {name!r} does not exist on this host",
                                  field="strategy")
        if kind == "paper" and not self._exists(
                dest, lambda: self.store.get_account(name) is not None):
            raise SignalError(f"paper account {name!r} does not exist (create it with "
                              f"sandtrade tokens create --account {name})", field="account")
        return dest, why

    def _exists(self, dest: str, lookup: Callable[[], bool]) -> bool:
        """Whether a destination exists; known ones are remembered (neither accounts nor
        strategies are ever deleted), so the hot path reads nothing from the store."""
        if dest in self._known:
            return True
        if lookup():
            self._known.add(dest)
            return True
        return False

    def _not_journaled(self, records: list[SignalRecord]) -> None:
        """The journal could not store these: forget them, as if never received."""
        ids = {r.id for r in records}
        with self._lock:
            for r in records:
                if r.status is SignalStatus.VALIDATED:
                    self._pending[r.account] -= 1
            for key in [k for k, (sid, _) in self._keys.items() if sid in ids]:
                self._keys.pop(key)
            for h in [k for k, (sid, _) in self._hashes.items() if sid in ids]:
                self._hashes.pop(h)
            for sid in ids:
                self._records.pop(sid, None)

    def _find_duplicate(self, account: str, key: str | None, body_hash: str | None,
                        now: float) -> tuple[str | None, str]:
        self._prune(now)
        if key is not None:
            hit = self._keys.get((account, key))
            if hit is not None:
                return hit[0], f"the same id {key!r}"
        if body_hash is not None and key is None and self.settings.resend_window > 0:
            hit = self._hashes.get(body_hash)
            if hit is not None and now - hit[1] <= self.settings.resend_window:
                return hit[0], f"the same body from the same sender {now - hit[1]:.1f} s " \
                               "later: a resend"
        return None, ""

    def _prune(self, now: float) -> None:
        for index, window in ((self._keys, self.settings.duplicate_window),
                              (self._hashes, self.settings.resend_window)):
            while index:
                k, (_, ts) = next(iter(index.items()))
                if now - ts <= window:
                    break
                index.pop(k)  # type: ignore[call-overload]

    def _load_dedup_index(self) -> None:
        window = max(self.settings.duplicate_window, self.settings.resend_window)
        since = datetime.now(UTC) - timedelta(seconds=window)
        for account, key, body_hash, sid, ts in self.store.recent_signal_keys(since):
            if key is not None:
                self._keys[(account, key)] = (sid, ts)
            if body_hash is not None:
                self._hashes[body_hash] = (sid, ts)

    def _new_id(self) -> str:
        return f"sig_{int(time.time() * 1000):x}{self._id_prefix}{next(self._ids):06x}"

    def _remember(self, record: SignalRecord) -> None:
        self._records[record.id] = record
        while len(self._records) > 10_000:
            self._records.popitem(last=False)

    def get(self, signal_id: str) -> SignalRecord | None:
        """A signal as it is now (from the store, where its status is durable)."""
        return self.store.get_signal(signal_id)

    # ------------------------------------------------------------------ explaining

    def explain(self, record: SignalRecord) -> str:
        """How a body was read and what it would do, for a person."""
        lines = []
        if record.status is SignalStatus.REJECTED:
            lines.append(f"rejected: {record.reason}")
            if record.format:
                lines.insert(0, f"format: {record.format}")
            return "\n".join(lines)
        parsed = record.parsed or {}
        lines.append(f"format: {record.format}")
        for name in ("symbol", "action", "qty", "price", "account", "strategy", "alert_id",
                     "idempotency_key", "comment"):
            if parsed.get(name) is not None:
                lines.append(f"  {name}: {parsed[name]}")
        lines.append(f"account: {record.account}")
        lines.append(f"destination: {record.destination} ({record.route_reason})")
        commands = record.commands
        lines.append("commands, in order:")
        planned: list[tuple[Command, list[PlannedOrder] | str]] | None = None
        if record.destination.startswith("paper:"):
            account = record.destination.split(":", 1)[1]
            try:
                planned = self.live.call(lambda b: self._plan_for(b, account, commands))
            except Exception as e:  # the account is not in the broker yet, say
                log.debug("cannot plan %s: %s", record.id, e)
        for i, cmd in enumerate(commands, 1):
            lines.append(f"  {i}. {cmd.describe()}")
            if planned is not None:
                what = planned[i - 1][1]
                if isinstance(what, str):
                    lines.append(f"     now: {what}")
                else:
                    for o in what:
                        lines.append(f"     now: {o.describe()}")
        return "\n".join(lines)

    def _plan_for(self, b: PaperBroker, account: str, commands: list[Command]
                  ) -> list[tuple[Command, list[PlannedOrder] | str]]:
        if not b.ensure_account(account):
            raise SandtradeError(f"account {account!r} does not exist")
        return plan_commands(b, account, commands)

    # ------------------------------------------------------------------ executing

    def _enqueue(self, records: list[SignalRecord], front: bool = False) -> None:
        for record in reversed(records) if front else records:
            if record.status not in (SignalStatus.VALIDATED, SignalStatus.ROUTED,
                                     SignalStatus.RECEIVED):
                continue
            lane = self._lane(record.destination)
            with lane.cond:
                if front:
                    lane.items.appendleft(record)
                else:
                    lane.items.append(record)
                lane.cond.notify()

    def _lane(self, key: str) -> _Lane:
        with self._lanes_lock:
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = _Lane(key)
                lane.thread = threading.Thread(target=self._run_lane, args=(lane,),
                                               name=f"signals {key}", daemon=True)
                lane.thread.start()
            return lane

    def _run_lane(self, lane: _Lane) -> None:
        kind = lane.key.split(":", 1)[0]
        # Nothing executes before what was journaled before a restart is back in the queues.
        self._recovered.wait()
        while True:
            with lane.cond:
                while not lane.items:
                    lane.cond.wait()
                batch: list[SignalRecord] = []
                stop = False
                while lane.items and len(batch) < _LANE_BATCH:
                    item = lane.items.popleft()
                    if item is None:
                        stop = True
                        break
                    batch.append(item)
                lane.busy = bool(batch)
            try:
                if batch:
                    if kind == "paper":
                        self._execute_paper(lane.key.split(":", 1)[1], batch)
                    else:
                        for record in batch:
                            self._execute_elsewhere(record)
            except Exception:
                log.exception("signal lane %s failed on %d signals", lane.key, len(batch))
            finally:
                with self._lock:
                    for r in batch:
                        self._pending[r.account] = self._pending.get(r.account, 1) - 1
                with lane.cond:
                    lane.busy = False
                    lane.cond.notify_all()
            if stop:
                return

    def _execute_paper(self, account: str, batch: list[SignalRecord]) -> None:
        """Each signal in one broker request (orders + status in one commit); the batch
        settles together (one fsync)."""
        live = self.live
        seqs: list[tuple[SignalRecord, int]] = []
        for record in batch:
            seq, _, _ = live.apply(functools.partial(self._paper_step, account=account,
                                                     record=record))
            seqs.append((record, seq))
        try:
            live.settle(seqs[-1][1])
        except Exception as e:
            log.error("signals to %s not committed: %s", account, e)
        lost = []
        for record, seq in seqs:
            why = live.lost(seq)
            if why is not None:
                record.step(SignalStatus.FAILED, datetime.now(UTC), why)
                lost.append(record)
        if lost:
            try:
                self.store.update_signals(lost)
            except Exception as e:  # left validated in the store: retried after a restart
                log.error("could not mark %d signals failed: %s", len(lost), e)

    def _paper_step(self, b: PaperBroker, account: str, record: SignalRecord) -> None:
        """Inside the broker's lock: place the signal's orders, note its new status."""
        now = datetime.now(UTC)
        record.step(SignalStatus.ROUTED, now, f"paper account {account}")
        try:
            if not b.ensure_account(account):
                raise SandtradeError(f"account {account!r} does not exist")
            placed, notes, failure = place_commands(
                b, account, record.commands, record.id,
                first_time=record.id not in self._recovered_ids)
        except Exception as e:  # whatever happens, the signal's status says it
            placed, notes = [], []
            failure = str(e) if isinstance(e, SandtradeError) else f"{type(e).__name__}: {e}"
        record.orders = [o.id for o in placed]
        record.market_position = self.market_position()
        if failure:
            done = f"; placed before: {', '.join(notes)}" if notes else ""
            record.step(SignalStatus.FAILED, now, failure + done)
        else:
            record.step(SignalStatus.EXECUTED, now, "; ".join(notes) or "nothing to do")
        self.live.note_signal(record)

    def _execute_elsewhere(self, record: SignalRecord) -> None:
        kind, _, name = record.destination.partition(":")
        now = datetime.now(UTC)
        if record.status is SignalStatus.ROUTED:  # recovered: already handed over once
            return
        if kind == "drop":
            record.step(SignalStatus.DROPPED, now, f"dropped by {record.route_reason}")
            self.store.update_signals([record])
            return
        record.step(SignalStatus.ROUTED, now, record.destination)
        self.store.update_signals([record])  # durable before delivery: at most once
        try:
            if kind == "strategy":
                assert self.strategies is not None
                parsed = record.parsed or {}
                event = self.strategies.signal(name, {
                    "id": record.id, "source": record.source, "symbol": parsed.get("symbol"),
                    "action": parsed.get("action"), "qty": parsed.get("qty"),
                    "price": parsed.get("price"), "comment": parsed.get("comment") or "",
                    "time": record.received_at.isoformat()})
                if not event.done.wait(STRATEGY_SIGNAL_TIMEOUT):
                    raise SandtradeError(f"strategy {name} did not finish on_signal within "
                                         f"{STRATEGY_SIGNAL_TIMEOUT:g} s")
                if event.error:
                    raise SandtradeError(f"strategy {name}: {event.error}")
                record.step(SignalStatus.EXECUTED, datetime.now(UTC),
                            f"handed to strategy {name}'s on_signal")
            elif kind == "live":
                adapter = self.live_brokers[name]
                result = adapter.execute(record, record.commands,
                                         [f"{record.id}.{i}" for i in range(len(record.commands))])
                record.step(SignalStatus.EXECUTED, datetime.now(UTC), result)
            else:
                raise SandtradeError(f"unknown destination {record.destination}")
        except Exception as e:
            record.step(SignalStatus.FAILED, datetime.now(UTC), str(e))
        self.store.update_signals([record])
