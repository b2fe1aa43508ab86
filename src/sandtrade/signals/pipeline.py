"""The signal pipeline: receiving a signal, from its body to the sender's answer.

Receiving (any thread, or the HTTP server's event loop)::

    body -> format -> fields checked (account, symbols, quantities against lot sizes)
         -> route -> duplicate?
         -> journal (durable, group commit) -> answer the sender

Then executing, one lane per destination in journal order (:mod:`sandtrade.signals.lanes`):
a paper signal exactly once, a strategy's or a live broker's at most once. The other parts
are modules of their own: what commands do (:mod:`~sandtrade.signals.commands`), the journal
(:mod:`~sandtrade.signals.journal`), the duplicate index (:mod:`~sandtrade.signals.duplicates`);
:class:`SignalPipeline` wires them and keeps the count of signals each account has waiting.

A signal's commands run in one step under the broker's lock: a reversal (close the long,
open the short) can never interleave with another signal.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sandtrade.auth import ALL_ACCOUNTS, AuthError, Principal
from sandtrade.errors import SandtradeError
from sandtrade.market.symbols import SymbolTable
from sandtrade.models import Instrument
from sandtrade.signal_model import (
    SPREAD_ACTIONS,
    Command,
    ParsedSignal,
    SignalError,
    SignalRecord,
    SignalStatus,
)
from sandtrade.signals.commands import (
    PlannedOrder,
    answer_orders,
    check_order_fields,
    plan_commands,
)
from sandtrade.signals.duplicates import DuplicateIndex, resend_hash
from sandtrade.signals.formats import FormatRegistry
from sandtrade.signals.journal import SignalJournal
from sandtrade.signals.lanes import Lanes
from sandtrade.signals.pauses import Pauses
from sandtrade.signals.pricing import (
    PriceSource,
    Pricing,
    price_sources,
    resolve_commands,
    signal_price_source,
)
from sandtrade.signals.settings import DefaultSize, SignalSettings, default_sizes
from sandtrade.signals.spreads import ChainLookup, check_spreads

if TYPE_CHECKING:
    from sandtrade.broker.durable import DurableBroker
    from sandtrade.broker.paper import PaperBroker
    from sandtrade.broker.quotas import QuotaBook
    from sandtrade.signals.destinations import LiveBrokerAdapter, StrategyInbox
    from sandtrade.store.base import Store

__all__ = ["Overloaded", "SignalPipeline", "Submitted"]

log = logging.getLogger(__name__)


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
    @property
    def price_source(self) -> str:
        """Where the prices of its orders come from: ``feed``, ``signal`` (the alert's own
        price) or ``last`` (the account's last signal price for the symbol)."""
        return self.record.price_source or "feed"

    @property
    def orders(self) -> list[dict[str, Any]]:
        """What will be done, one entry per command (none for a duplicate or a refusal)."""
        if self.duplicate or self.record.status is SignalStatus.REJECTED:
            return []
        return answer_orders(self.record.commands, (self.record.parsed or {}).get("spreads"))

    @property
    def ignored_fields(self) -> list[str]:
        """Fields of the body that were not read."""
        return list((self.record.parsed or {}).get("ignored_fields") or [])


class SignalPipeline:
    """Receives, journals and executes signals for one host."""

    def __init__(self, *, store: Store, live: DurableBroker, formats: FormatRegistry,
                 settings: SignalSettings, symbols: Callable[[], Sequence[str]],
                 default_account: str, market_position: Callable[[], int] = lambda: 0,
                 instrument: Callable[[str], Instrument | None] = lambda symbol: None,
                 strategies: StrategyInbox | None = None,
                 live_brokers: dict[str, LiveBrokerAdapter] | None = None,
                 quotas: QuotaBook | None = None, symbol_table: SymbolTable | None = None,
                 covered: Callable[[str], bool] | None = None,
                 chains: ChainLookup | None = None) -> None:
        self.store = store
        #: An underlying's option chain now, for spreads (the host's ``OptionQuotes.chain``).
        self.chains = chains
        #: How fast each account may send signals (none: no quota).
        self.quotas = quotas
        self.live = live
        self.formats = formats
        self.settings = settings
        self.symbols = symbols
        #: ``[symbols]``: aliases and pinned rules of symbols signals name.
        self.symbol_table = symbol_table or SymbolTable()
        #: The trading rules of a symbol (its lot size), to refuse at once what the broker
        #: would certainly refuse later: the feed's instrument, else the one it is inferred as.
        self.instrument = lambda symbol: instrument(symbol) or \
            self.symbol_table.instrument(symbol)
        #: Whether a market source covers a symbol (else signals price it; signals.pricing).
        self.covered = covered or (lambda symbol: symbol in self.symbols())
        self.default_account = default_account
        self.market_position = market_position
        self.strategies = strategies
        self.live_brokers = live_brokers or {}
        self._lock = threading.Lock()
        self._known: set[str] = set()
        self._closed = False
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(3).hex()
        self._records: OrderedDict[str, SignalRecord] = OrderedDict()  # recent, by id
        self._pending: dict[str, int] = {}  # per account: accepted, not yet executed
        self.check_destinations()
        self._duplicates = DuplicateIndex(settings)
        self._duplicates.load(store)
        #: Routes a person paused (signals to them are journaled as dropped).
        self.pauses = Pauses(store)
        self._lanes = Lanes(live=live, store=store, strategies=strategies,
                            live_brokers=self.live_brokers, market_position=market_position,
                            on_done=self._executed,
                            pricing=Pricing(covered=self.covered, instrument=self.instrument),
                            chains=chains)
        self._journal = SignalJournal(live, self._lanes.enqueue, self._not_journaled,
                                      lanes=self._lanes, executed=self._executed)

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
        # Before anything received since the start: the journal's order is kept.
        self._lanes.recover(retry)
        if retry:
            log.info("signals: %d journaled before the restart queued for execution",
                     len(retry))
        return len(retry)

    def close(self, timeout: float = 10.0) -> None:
        """Stop accepting, let the lanes finish what is queued (up to ``timeout``)."""
        with self._lock:
            self._closed = True
        self._lanes.begin()  # a host stopped before its feed caught up: let lanes end
        self._journal.close()
        self._lanes.close(timeout)

    def health(self) -> dict[str, Any]:
        """Signals waiting to execute, per destination lane."""
        lanes = self._lanes.waiting()
        return {"signals_waiting": sum(self._pending.values()), "lanes": lanes,
                "accepting": not self._closed, "recovered": self._lanes.recovered}

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until every accepted signal has been executed (tests, replays)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._lanes.recovered and not any(self._pending.values()) and \
                    self._lanes.idle():
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
        if self.quotas is not None:  # before anything is journaled: a refusal loses nothing
            self.quotas.take("signal", record.account)
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
            paused = None
            if record.status is SignalStatus.VALIDATED:
                original_id, why = self._duplicates.find(record.account, key, body_hash, now)
                if original_id is None:
                    paused = self.pauses.reason(record.account, record.destination)
            if paused is not None:
                # Not remembered as sent: the same alert after a resume is a new one.
                record.step(SignalStatus.DROPPED, record.received_at, paused)
                record.idempotency_key = None
            elif original_id is not None:
                record.step(SignalStatus.DROPPED, record.received_at,
                            f"duplicate of {original_id} ({why}); not executed again")
                record.idempotency_key = None
            else:
                if record.status is SignalStatus.VALIDATED:
                    dedup_hash = self._duplicates.add(record.account, key, body_hash,
                                                      record.id, now)
                    self._pending[record.account] = self._pending.get(record.account, 0) + 1
            self._remember(record)
            # As it is now: once appended, the journal may execute it before it answers.
            answered = record.snapshot()
            fut = self._journal.append(record, dedup_hash)
        original = self._records.get(original_id) if original_id else None
        if original_id and original is None:
            original = self.store.get_signal(original_id)
        answer = Submitted(answered, duplicate=original_id is not None, original=original)
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
            if self.settings.strict and parsed.ignored_fields:
                raise SignalError(f"unknown field: {parsed.format} does not read it, and "
                                  "[signals] strict = true refuses what is not read",
                                  field=parsed.ignored_fields[0])
            commands = self._resolve(parsed)
            record.destination, why, default = self._route(record, parsed)
            commands = default_sizes(commands, default)
            record.parsed["commands"] = [c.model_dump(exclude_defaults=True) for c in commands]
            record.keep_commands(commands)
            if record.destination.startswith("paper:"):
                self._check_quantities(commands)
                record.price_source = self._price_source(record.account, parsed, commands)
                if any(c.action in SPREAD_ACTIONS for c in commands):
                    record.parsed["spreads"] = self._check_spreads(parsed, commands)
            elif record.destination.startswith("live:") and \
                    any(c.action in SPREAD_ACTIONS for c in commands):
                raise SignalError("multi-leg orders go to paper accounts only (a live broker "
                                  "plugin takes single orders)", field="legs")
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
        # Without a key, a sender that sends none (TradingView) is known by its body.
        body_hash = None if key is not None else resend_hash(source, record.token_id,
                                                             record.account, body)
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
        return resolve_commands(parsed.commands, list(self.symbols()), table=self.symbol_table,
                                any_symbol=self.settings.symbols == "any")

    def _price_source(self, account: str, parsed: ParsedSignal, commands: list[Command]
                      ) -> PriceSource | None:
        """Where the signal's price will come from (signals.pricing); a signal nothing
        prices is refused now, saying what to send."""
        def last(symbol: str) -> float | None:
            # A read, not settled here (that would wait for a group commit on the event
            # loop): the signal is answered only once its journal commit, which comes after,
            # is durable, and that commit holds whatever this read saw.
            _, price, error = self.live.apply(lambda b: b.last_signal_price(account, symbol))
            if error is not None:
                raise error
            return price

        sources = price_sources(commands, parsed.price, self.covered, last)
        for cmd in commands:  # a value the broker would refuse at the signal's price
            kind, price = sources.get(cmd.symbol, ("feed", None))
            if kind == "feed" or price is None or cmd.action not in ("buy", "sell"):
                continue
            inst = self.instrument(cmd.symbol)
            value = cmd.qty * price * inst.multiplier
            if value < inst.min_notional:
                raise SignalError(f"order value {value:,.2f} ({cmd.qty:g} {cmd.symbol} at "
                                  f"{price:g}) is below {cmd.symbol}'s minimum notional "
                                  f"{inst.min_notional:,.2f}", field="qty")
        return signal_price_source(sources)

    def _check_spreads(self, parsed: ParsedSignal, commands: list[Command]
                       ) -> list[dict[str, Any] | None]:
        """Each spread built from the chain now: refused now if it cannot be (4xx)."""
        written = parsed.fields
        return check_spreads(
            commands, self.chains, max_legs=self.live.call(lambda b: b.settings.max_legs),
            symbol_field="ticker" if "ticker" in written else "symbol",
            expiry_field="expiration" if "expiration" in written else "expiry",
            limit_field="limitPrice" if "limitPrice" in written else "limit_price")

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
            check_order_fields(cmd)  # what the broker cannot do is refused now, not later
            if cmd.action in ("cancel", *SPREAD_ACTIONS) or cmd.only_if is not None or \
                    cmd.qty == 0 or cmd.size is not None:
                continue
            inst = self.instrument(cmd.symbol)
            problem = inst.quantity_problem(cmd.qty) if inst is not None else None
            if problem is not None:
                where = f" in {cmd.describe()!r}" if len(commands) > 1 else ""
                raise SignalError(f"{problem}{where}", field="qty")

    def _route(self, record: SignalRecord, parsed: ParsedSignal
               ) -> tuple[str, str, DefaultSize | None]:
        """The signal's destination, why, and its default size (the route's, else
        ``[signals] default_quantity``); a strategy's as ``strategy:ACCOUNT/NAME``.

        A strategy the body names, and a route's ``strategy:NAME``, is looked up in the
        signal's own account only: another account's strategy of that name is refused in the
        words used for one that does not exist, and is never read (so a name tells nothing
        about other tenants). A route's ``strategy:ACCOUNT/NAME`` is the operator's decision
        and may send to any account's strategy."""
        s = self.settings
        named_by_body = False
        default = s.default_quantity
        symbol = parsed.commands[0].symbol if parsed.commands else None
        for i, route in enumerate(s.routes):
            if route.matches(source=record.source, symbol=symbol, alert=parsed.alert_id,
                             strategy=parsed.strategy, account=record.account,
                             format=parsed.format):
                dest = route.to
                why = f"route {i + 1} ({route.to})"
                default = route.default_quantity or default
                break
        else:
            if parsed.strategy and not self._template_only(record.account, parsed):
                dest, why = f"strategy:{parsed.strategy}", "the signal names a strategy"
                named_by_body = True
            elif parsed.template_from_strategy and s.mode != "live":
                dest, why = "paper", f"strategy names the options template {parsed.strategy}"
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
            owner, slash, short = name.partition("/")
            if named_by_body or not slash:  # a body's name is a name, whatever it holds
                owner, short = record.account, name
            # Not remembered, unlike an account: a strategy may be deleted.
            if self.store.get_strategy(owner, short) is None:
                raise SignalError(f"strategy {short!r} does not exist on this host",
                                  field="strategy")
            dest = f"strategy:{owner}/{short}"
        if kind == "paper" and not self._exists(
                dest, lambda: self.store.get_account(name) is not None):
            raise SignalError(f"paper account {name!r} does not exist (create it with "
                              f"sandtrade tokens create --account {name})", field="account")
        return dest, why, default

    def _template_only(self, account: str, parsed: ParsedSignal) -> bool:
        """Whether ``strategy`` names an options template, not a strategy of the account's
        (one of that name wins: ``template`` is the unambiguous field)."""
        return parsed.template_from_strategy and parsed.strategy is not None and (
            self.strategies is None or self.store.get_strategy(account, parsed.strategy)
            is None)

    def _exists(self, dest: str, lookup: Callable[[], bool]) -> bool:
        """Whether a destination exists; known ones are remembered (accounts are never
        deleted), so the hot path reads nothing from the store."""
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
                # Counted as waiting once validated (it may have executed in the group since).
                if r.status not in (SignalStatus.REJECTED, SignalStatus.DROPPED):
                    self._pending[r.account] -= 1
            self._duplicates.forget(ids)
            for sid in ids:
                self._records.pop(sid, None)

    def _executed(self, batch: list[SignalRecord]) -> None:
        """A lane is done with these (executed or failed): they no longer count as waiting."""
        with self._lock:
            for r in batch:
                self._pending[r.account] = self._pending.get(r.account, 1) - 1

    def _new_id(self) -> str:
        return f"sig_{int(time.time() * 1000):x}{self._id_prefix}{next(self._ids):06x}"

    def _remember(self, record: SignalRecord) -> None:
        self._records[record.id] = record
        while len(self._records) > 10_000:
            self._records.popitem(last=False)

    def received_at(self, signal_id: str) -> datetime | None:
        """When one of the last 10,000 signals arrived (None for another: ask the store)."""
        record = self._records.get(signal_id)
        return record.received_at if record is not None else None

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
        if parsed.get("ignored_fields"):
            lines.append(f"  ignored (not read): {', '.join(parsed['ignored_fields'])}")
        lines.append(f"account: {record.account}")
        lines.append(f"destination: {record.destination} ({record.route_reason})")
        if record.price_source is not None:
            lines.append(f"price source: {record.price_source}")
        commands = record.commands
        lines.append("commands, in order:")
        planned: list[tuple[Command, list[PlannedOrder] | str]] | None = None
        problem = ""
        if record.destination.startswith("paper:"):
            account = record.destination.split(":", 1)[1]
            price = parsed.get("price")
            try:
                planned = self.live.call(lambda b: self._plan_for(b, account, commands, price))
            except SignalError as e:  # a size that cannot be computed now
                problem = f"  now: {e.detail}"
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
        if problem:
            lines.append(problem)
        return "\n".join(lines)

    def _plan_for(self, b: PaperBroker, account: str, commands: list[Command],
                  price: float | None) -> list[tuple[Command, list[PlannedOrder] | str]]:
        if not b.ensure_account(account):
            raise SandtradeError(f"account {account!r} does not exist")
        return plan_commands(b, account, commands, price, self.chains)

