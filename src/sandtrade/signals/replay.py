"""Replay a stretch of the signal journal into a fresh paper account.

Each signal's raw body is read again by today's formats (a fixed format changes the replay,
which is the point of keeping bodies verbatim), and its commands are carried out against a new
in-memory paper broker at the same place in the market it met live: after the bar the live
feed had worked when the signal executed (``market_position``). The bars come from the host's
market source, so the replay is deterministic: the same journal gives the same fills every
time, with ids ``o1, o2 ...``.

``pace="original"`` waits between signals as long as they were apart when received (each wait
capped by ``max_gap``); ``"fast"`` does not wait.

A symbol the replay's market does not cover is traded as live (:mod:`sandtrade.signals.pricing`):
at the price its signal carried, else the last one its signals carried, registered with the
kind it is inferred as (``[symbols]`` applied); a market that publishes bars of it takes over.

Spreads (:mod:`sandtrade.signals.spreads`) are built and priced as live: from the chain source
(the host's ``[options]`` one; synthetic by default) at the replay broker's last price of the
underlying and the time of the last bar worked.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sandtrade.broker.fills import FillProfile
from sandtrade.broker.ids import sequential_ids
from sandtrade.broker.paper import PaperBroker
from sandtrade.broker.settings import BrokerSettings
from sandtrade.market.symbols import SymbolTable
from sandtrade.models import Account, Bar, Fill, Instrument, Order, Position
from sandtrade.options.settings import OptionsSettings
from sandtrade.options.sources import ChainSource, OptionQuotes, SyntheticChains
from sandtrade.signal_model import SignalError, SignalRecord, SignalStatus
from sandtrade.signals.commands import place_commands, signal_order_source
from sandtrade.signals.formats import FormatRegistry
from sandtrade.signals.pricing import Pricing, resolve_commands, trade_at_signal_prices
from sandtrade.signals.spreads import ChainLookup

__all__ = ["ReplayResult", "ReplayedSignal", "replay", "replayable"]

REPLAY_ACCOUNT = "replay"


@dataclass(frozen=True)
class ReplayedSignal:
    """One journaled signal as the replay carried it out."""

    id: str
    received_at: datetime
    market_position: int
    orders: tuple[str, ...]
    outcome: str
    failed: bool


@dataclass
class ReplayResult:
    """What a replay did: signals, orders, fills, and the account at the end."""

    signals: list[ReplayedSignal] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (id, why)
    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    account: Account | None = None
    bars: int = 0
    #: The bars the replay worked, in order (for the timeline picture).
    bars_seen: list[Bar] = field(default_factory=list)

    def fill_rows(self) -> list[tuple[str, str, str, float, float, str, str]]:
        """(time, symbol, side, qty, price, signal id, price source) of every fill, in order:
        what two replays of the same journal agree on."""
        tag = {o.id: (o.tag or "").removeprefix("signal ") for o in self.orders}
        return [(f.time.isoformat() if f.time else "", f.symbol, f.side.value, f.qty, f.price,
                 tag.get(f.order_id, ""), f.price_source) for f in self.fills]


def replayable(records: Iterable[SignalRecord]) -> tuple[list[SignalRecord],
                                                         list[tuple[str, str]]]:
    """The signals a replay carries out (executed or failed at a paper account), and the
    others with the reason they are left out."""
    keep, skipped = [], []
    for r in records:
        if r.status not in (SignalStatus.EXECUTED, SignalStatus.FAILED):
            skipped.append((r.id, f"{r.status.value}, never executed"))
        elif not r.destination.startswith("paper:"):
            skipped.append((r.id, f"went to {r.destination}, not a paper account"))
        elif r.market_position is None:
            skipped.append((r.id, "no market position recorded"))
        else:
            keep.append(r)
    return keep, skipped


def replay(records: Sequence[SignalRecord], bars: Iterable[Bar], *,
           instruments: Iterable[Instrument], formats: FormatRegistry, cash: float,
           broker: BrokerSettings | None = None, profiles: Iterable[type[FillProfile]] = (),
           pace: Literal["fast", "original"] = "fast", max_gap: float = 60.0,
           progress: Callable[[int, int], None] | None = None,
           sleep: Callable[[float], None] = time.sleep, symbols: SymbolTable | None = None,
           any_symbol: bool = True, chain_source: ChainSource | None = None) -> ReplayResult:
    """Carry ``records`` (oldest first) out again against ``bars`` in a fresh account.

    :param bars: the market, in the order the live feed published it (its source's bars).
    :param progress: called with (signals done, signals in all) after each signal.
    :param symbols: the ``[symbols]`` table the host reads symbols with.
    :param any_symbol: ``[signals] symbols = "any"``: signals may name symbols the market
        does not cover (else they fail, as they were refused live).
    :param chain_source: where spreads' chains come from (default: synthetic chains with
        the default ``[options]``).
    """
    todo, skipped = replayable(records)
    todo.sort(key=lambda r: (r.market_position or 0, r.received_at))
    result = ReplayResult(skipped=skipped)
    instruments = list(instruments)
    known = [i.symbol for i in instruments]
    table = symbols or SymbolTable()
    fed = set(known)
    pricing = Pricing(covered=fed.__contains__, instrument=table.instrument) \
        if any_symbol else None
    b = PaperBroker(broker, instruments=instruments, ids=sequential_ids(), profiles=profiles)
    b.open_account(REPLAY_ACCOUNT, cash)
    clock: list[datetime] = []
    options = OptionQuotes(chain_source or SyntheticChains(OptionsSettings()), b.last_price,
                           lambda: clock[-1] if clock else datetime.now().astimezone())
    b.set_quote_provider(options.quote)
    last = max((r.market_position or 0 for r in todo), default=0)
    i = 0
    previous: datetime | None = None

    def run_due(position: int) -> None:
        nonlocal i, previous
        while i < len(todo) and (todo[i].market_position or 0) <= position:
            record = todo[i]
            if pace == "original" and previous is not None:
                gap = (record.received_at - previous).total_seconds()
                if gap > 0:
                    sleep(min(gap, max_gap))
            previous = record.received_at
            result.signals.append(_carry_out(b, record, formats, known, table, pricing,
                                             result.fills, options.chain))
            i += 1
            if progress is not None:
                progress(i, len(todo))

    run_due(0)
    for position, bar in enumerate(bars, 1):
        if position > last + 1:  # the last signal's bar and the one after: its orders filled
            break
        fed.add(bar.symbol)
        clock[:] = [bar.time]
        result.fills += b.on_bar(bar)  # as the live host works it
        result.bars = position
        result.bars_seen.append(bar)
        run_due(position)
    result.orders = b.orders(REPLAY_ACCOUNT)
    result.positions = b.positions(REPLAY_ACCOUNT)
    result.account = b.account(REPLAY_ACCOUNT)
    return result


def _carry_out(b: PaperBroker, record: SignalRecord, formats: FormatRegistry,
               known: list[str], table: SymbolTable, pricing: Pricing | None,
               fills: list[Fill], chains: ChainLookup) -> ReplayedSignal:
    position = record.market_position or 0
    try:
        parsed = formats.parse(record.raw_body, record.format or None)
        try:
            commands = resolve_commands(parsed.commands, known, table=table,
                                        any_symbol=pricing is not None)
        except SignalError as e:
            raise SignalError(f"{parsed.commands[0].symbol!r} is not traded by the replay's "
                              "market", field="symbol") from e
        journaled = record.commands
        if len(journaled) == len(commands):
            # The size the host gave an alert that named none (its default then) is kept.
            commands = [c.model_copy(update={"qty": j.qty, "size": j.size})
                        if c.size is not None and c.size.type == "default" else c
                        for c, j in zip(commands, journaled, strict=True)]
    except SignalError as e:
        return ReplayedSignal(record.id, record.received_at, position, (),
                              f"not readable today: {e}", True)

    def place() -> tuple[list[Order], list[str], str | None]:
        return place_commands(b, REPLAY_ACCOUNT, commands, record.id, price=parsed.price,
                              chains=chains,
                              source=signal_order_source(record, replay=True))

    if pricing is None:
        placed, notes, failure = place()
    else:
        try:
            (placed, notes, failure), _, priced = trade_at_signal_prices(
                b, REPLAY_ACCOUNT, commands, parsed.price, pricing, place,
                record.received_at)
            fills += priced
        except SignalError as e:  # nothing prices a symbol: as live, it is not traded
            return ReplayedSignal(record.id, record.received_at, position, (), str(e), True)
    outcome = failure or ("; ".join(notes) or "nothing to do")
    return ReplayedSignal(record.id, record.received_at, position,
                          tuple(o.id for o in placed), outcome, failure is not None)
