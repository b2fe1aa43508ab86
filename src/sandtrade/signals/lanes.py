"""Executing signals: one lane per destination, in journal order, one signal at a time.

::

    paper:   the signal's orders and its ``executed`` status commit in one transaction, so
             across a SIGKILL a signal is either executed with its orders or not at all, and
             a restarted host executes what was journaled but not executed: exactly once.
             While a destination's lane is free, the journal executes its signals in their
             own journal commit instead (:meth:`Lanes.claim_inline`): the signal is inserted
             executed, with its orders, in one transaction (docs/webhook_load.md).
    strategy: marked ``routed`` durably, then handed to the strategy's ``on_signal``; one in
             flight when the host dies is not delivered again (at most once) and is marked
             failed on restart, with that reason.
    live:    the same as strategy, through a live-broker plugin, with client order ids the
             broker can deduplicate on.

Nothing executes before :meth:`Lanes.recover` has put back, first in their lanes, the signals
journaled but not finished before a restart (or :meth:`Lanes.begin` was called, by a host
stopped before that).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sandtrade.errors import SandtradeError
from sandtrade.models import Order
from sandtrade.signal_model import SignalRecord, SignalStatus
from sandtrade.signals.commands import place_commands, signal_order_source
from sandtrade.signals.pricing import Pricing, trade_at_signal_prices
from sandtrade.signals.spreads import ChainLookup

if TYPE_CHECKING:
    from sandtrade.broker.durable import DurableBroker
    from sandtrade.broker.paper import PaperBroker
    from sandtrade.signals.destinations import LiveBrokerAdapter, StrategyInbox
    from sandtrade.store.base import Store

__all__ = ["STRATEGY_SIGNAL_TIMEOUT", "Lane", "Lanes"]

log = logging.getLogger(__name__)

#: How long a strategy may take over ``on_signal`` before the signal is marked failed.
STRATEGY_SIGNAL_TIMEOUT = 30.0
#: At most this many signals of a lane taken at once (a paper batch settles with one fsync).
_BATCH = 512


@dataclass
class Lane:
    """Signals for one destination, executed one at a time in journal order."""

    key: str
    items: deque[SignalRecord] = field(default_factory=deque)
    cond: threading.Condition = field(default_factory=threading.Condition)
    thread: threading.Thread | None = None
    busy: bool = False


class Lanes:
    """The execution lanes of one host, each with its thread, made when first needed.

    :param market_position: the bars the live feed has worked, noted on each paper signal
        (where a replay executes it).
    :param on_done: called with each batch a lane took, once it has been executed (or failed).
    :param chains: an underlying's option chain now, which spread templates are built from.
    """

    def __init__(self, *, live: DurableBroker, store: Store,
                 strategies: StrategyInbox | None,
                 live_brokers: dict[str, LiveBrokerAdapter],
                 market_position: Callable[[], int],
                 on_done: Callable[[list[SignalRecord]], None],
                 pricing: Pricing | None = None, chains: ChainLookup | None = None) -> None:
        self.live = live
        self.chains = chains
        #: How symbols no market source covers are registered and priced (None: they are
        #: not; every symbol is the feed's).
        self.pricing = pricing
        self.store = store
        self.strategies = strategies
        self.live_brokers = live_brokers
        self.market_position = market_position
        self._on_done = on_done
        self._lanes: dict[str, Lane] = {}
        self._lock = threading.Lock()
        self._recovered = threading.Event()
        self._recovered_ids: set[str] = set()
        self._inline: set[str] = set()  # destinations whose signals executed in the journal

    def recover(self, records: list[SignalRecord]) -> None:
        """Queue what was journaled before a restart ahead of anything received since, and
        let execution begin."""
        self._recovered_ids.update(r.id for r in records)
        self.enqueue(records, front=True)
        self._recovered.set()

    def begin(self) -> None:
        """Let execution begin with nothing recovered (a host stopped before its feed caught
        up: its lanes must still end)."""
        self._recovered.set()

    @property
    def recovered(self) -> bool:
        """Whether execution has begun."""
        return self._recovered.is_set()

    def waiting(self) -> dict[str, int]:
        """Signals queued or executing, per lane."""
        with self._lock:
            waiting = dict.fromkeys(self._inline, 0)  # executed in their journal commits
            waiting.update({k: len(lane.items) + int(lane.busy)
                            for k, lane in self._lanes.items()})
            return waiting

    def idle(self) -> bool:
        """Whether no lane has anything queued or executing."""
        with self._lock:
            lanes = list(self._lanes.values())
        return all(not lane.items and not lane.busy for lane in lanes)

    def close(self, timeout: float) -> None:
        """Let the lanes finish what is queued (up to ``timeout``), then end their threads."""
        deadline = time.monotonic() + timeout
        with self._lock:
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

    def enqueue(self, records: list[SignalRecord], front: bool = False) -> None:
        """Queue journaled signals on their destinations' lanes, in order (``front``: ahead
        of what is queued, still in their order); finished ones are skipped."""
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

    def claim_inline(self, records: list[SignalRecord]) -> list[bool]:
        """Which of a journal group's signals (in journal order) execute in the group's own
        commit (:meth:`execute_inline`) instead of on their lane: the paper signals of every
        destination whose lane has nothing queued or executing, once execution has begun. A
        destination's signals of the group all go one way, so its journal order stays its
        execution order (only the journal queues signals once recovery is done: a lane found
        free stays free until the group is handed on)."""
        if not self._recovered.is_set():
            return [False] * len(records)
        free: dict[str, bool] = {}
        claimed = []
        for record in records:
            dest = record.destination
            if record.status is not SignalStatus.VALIDATED or not dest.startswith("paper:"):
                claimed.append(False)
                continue
            ok = free.get(dest)
            if ok is None:
                with self._lock:
                    lane = self._lanes.get(dest)
                    self._inline.add(dest)
                if lane is None:
                    ok = True
                else:
                    with lane.cond:
                        ok = not lane.items and not lane.busy
                free[dest] = ok
            claimed.append(ok)
        return claimed

    def execute_inline(self, b: PaperBroker, record: SignalRecord) -> None:
        """Inside the broker's lock, in the journal's group: place a claimed paper signal's
        orders and step it to executed (or failed); the journal stores it in that state with
        the orders, in one transaction."""
        self._paper_step(b, record.destination.split(":", 1)[1], record, note=False)

    def _lane(self, key: str) -> Lane:
        with self._lock:
            lane = self._lanes.get(key)
            if lane is None:
                lane = self._lanes[key] = Lane(key)
                lane.thread = threading.Thread(target=self._run, args=(lane,),
                                               name=f"signals {key}", daemon=True)
                lane.thread.start()
            return lane

    def _run(self, lane: Lane) -> None:
        kind = lane.key.split(":", 1)[0]
        # Nothing executes before what was journaled before a restart is back in the queues.
        self._recovered.wait()
        while True:
            with lane.cond:
                while not lane.items:
                    lane.cond.wait()
                batch: list[SignalRecord] = []
                stop = False
                while lane.items and len(batch) < _BATCH:
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
                self._on_done(batch)
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

    def _paper_step(self, b: PaperBroker, account: str, record: SignalRecord,
                    note: bool = True) -> None:
        """Inside the broker's lock: place the signal's orders, note its new status (unless
        ``note`` is False: the journal inserts it as it is now)."""
        now = datetime.now(UTC)
        record.step(SignalStatus.ROUTED, now, f"paper account {account}")
        try:
            if not b.ensure_account(account):
                raise SandtradeError(f"account {account!r} does not exist")
            commands = record.commands
            price = (record.parsed or {}).get("price")

            def place() -> tuple[list[Order], list[str], str | None]:
                return place_commands(b, account, commands, record.id,
                                      first_time=record.id not in self._recovered_ids,
                                      price=price, chains=self.chains,
                                      source=signal_order_source(record))

            if self.pricing is None:
                placed, notes, failure = place()
            else:
                (placed, notes, failure), record.price_source, fills = trade_at_signal_prices(
                    b, account, commands, price, self.pricing, place, record.received_at)
                notes += [f"{f.order_id} filled {f.qty:g} at {f.price:g} ({f.price_source} "
                          "price)" for f in fills]
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
        if note:
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
                # strategy:ACCOUNT/NAME; one journaled before accounts named it is the
                # signal's account's.
                owner, slash, short = name.partition("/")
                if not slash:
                    owner, short = record.account, name
                event = self.strategies.signal(owner, short, {
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
