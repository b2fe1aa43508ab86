"""A strategy's mailbox: bars in order up to its backlog, then its lag policy; control events
never lost; tickets finished exactly when every mailbox is done with a bar."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest

from sandtrade.models import Bar, Fill, OrderSide
from sandtrade.sandbox.mailbox import (
    BATCH,
    FanoutMeter,
    LatencyRing,
    Mailbox,
    Pending,
    StrategySettings,
    Ticket,
)

T0 = datetime(2024, 1, 2, 9, 30)


def bar(k: int, symbol: str = "AAA", *, base: float = 100.0) -> Bar:
    p = base + k
    return Bar(symbol, T0 + timedelta(minutes=k), p, p + 2, p - 3, p + 1, 10.0 * (k + 1))


def fill(k: int) -> Fill:
    return Fill(id=f"f{k}", order_id=f"o{k}", account="a", symbol="AAA", side=OrderSide.BUY,
                qty=1, price=100.0 + k, commission=0.0, time=T0 + timedelta(minutes=k))


def drain(box: Mailbox) -> list[Pending]:
    out: list[Pending] = []
    while True:
        item = box.take(timeout=0)
        if item is None:
            return out
        assert isinstance(item, list)
        out.extend(item)


def test_bars_keep_their_order_up_to_the_backlog() -> None:
    box = Mailbox(backlog=100)
    for k in range(100):
        assert box.put_bar(Pending(bar(k), []))
    got = drain(box)
    assert [p.bar.time for p in got if p.bar] == [bar(k).time for k in range(100)]
    assert box.coalesced == box.dropped == 0


def test_a_batch_holds_at_most_BATCH_bars_and_stops_at_a_control_event() -> None:
    box = Mailbox(backlog=1000)
    for k in range(BATCH + 10):
        box.put_bar(Pending(bar(k), []))
    box.put("signal")
    box.put_bar(Pending(bar(BATCH + 10), []))
    first = box.take(timeout=0)
    assert isinstance(first, list) and len(first) == BATCH
    second = box.take(timeout=0)
    assert isinstance(second, list) and len(second) == 10
    assert box.take(timeout=0) == "signal"
    last = box.take(timeout=0)
    assert isinstance(last, list) and last[0].bar == bar(BATCH + 10)


def test_coalesce_merges_the_oldest_bars_of_one_symbol() -> None:
    box = Mailbox(backlog=3, on_lag="coalesce")
    for k in range(3):
        box.put_bar(Pending(bar(k), [fill(k)]))
    box.put_bar(Pending(bar(3), [fill(3)]))  # past the backlog: bars 0 and 1 become one
    got = drain(box)
    assert len(got) == 3 and box.coalesced == 1
    merged = got[0]
    assert merged.bar == Bar("AAA", bar(1).time, bar(0).open, max(bar(0).high, bar(1).high),
                             min(bar(0).low, bar(1).low), bar(1).close,
                             bar(0).volume + bar(1).volume)
    assert merged.merged == 2
    assert [f.id for f in merged.fills] == ["f0", "f1"]  # fills kept, in order
    assert [p.bar for p in got[1:]] == [bar(2), bar(3)]


def test_coalesce_merges_within_a_symbol_when_symbols_interleave() -> None:
    box = Mailbox(backlog=4, on_lag="coalesce")
    for k in range(2):
        box.put_bar(Pending(bar(k, "AAA"), []))
        box.put_bar(Pending(bar(k, "BBB", base=50), []))
    box.put_bar(Pending(bar(2, "AAA"), []))
    got = drain(box)
    # AAA's bars 0 and 1 merged; BBB's untouched; per-symbol order kept
    assert [(p.bar.symbol, p.bar.time) for p in got] == [
        ("BBB", bar(0).time), ("AAA", bar(1).time), ("BBB", bar(1).time),
        ("AAA", bar(2).time)]
    assert got[1].bar.open == bar(0).open


def test_drop_oldest_counts_and_keeps_the_fills() -> None:
    box = Mailbox(backlog=2, on_lag="drop_oldest")
    for k in range(5):
        box.put_bar(Pending(bar(k), [fill(k)]))
    got = drain(box)
    assert [p.bar for p in got] == [bar(3), bar(4)]
    assert box.dropped == 3
    assert [f.id for f in got[0].fills] == ["f0", "f1", "f2", "f3"]


def test_fills_alone_ride_on_the_next_bar_when_full() -> None:
    box = Mailbox(backlog=2, on_lag="drop_oldest")
    box.put_bar(Pending(None, [fill(0)]))
    box.put_bar(Pending(bar(1), [fill(1)]))
    box.put_bar(Pending(bar(2), []))
    got = drain(box)
    assert [p.bar for p in got] == [bar(1), bar(2)]
    assert box.dropped == 0  # a fills-only item is not a bar
    assert [f.id for f in got[0].fills] == ["f0", "f1"]


def test_stop_policy_refuses_and_flags_the_overflow() -> None:
    meter = FanoutMeter()
    box = Mailbox(backlog=2, on_lag="stop")
    tickets = []
    for k in range(3):
        t = Ticket(meter)
        t.hold()
        tickets.append(t)
        accepted = box.put_bar(Pending(bar(k), [], [t]))
        t.seal()
        assert accepted is (k < 2)
    assert box.overflowed
    assert tickets[2].done.is_set()  # nobody waits on a refused bar
    assert not tickets[0].done.is_set()


def test_control_events_are_never_dropped_and_stop_skips_the_bars() -> None:
    box = Mailbox(backlog=2, on_lag="drop_oldest")
    box.put_bar(Pending(bar(0), []))
    box.put("signal-1")
    for k in range(1, 6):
        box.put_bar(Pending(bar(k), []))
    box.put("signal-2")
    box.put("stop", skip_bars=True)
    assert box.take(timeout=0) == "signal-1"
    assert box.take(timeout=0) == "signal-2"
    assert box.take(timeout=0) == "stop"
    assert box.take(timeout=0) is None


def test_lag_counts_bars_and_the_oldest_ones_age() -> None:
    box = Mailbox()
    assert box.lag() == (0, 0.0)
    t = Ticket(None, published=0.0)  # published at monotonic 0: long ago
    box.put_bar(Pending(bar(0), [], [t]))
    box.put_bar(Pending(bar(1), [], [Ticket(None)]))
    bars, seconds = box.lag()
    assert bars == 2 and seconds > 1.0


def test_a_ticket_is_done_when_every_mailbox_is_done_and_is_measured() -> None:
    meter = FanoutMeter()
    boxes = [Mailbox() for _ in range(3)]
    ticket = Ticket(meter)
    for box in boxes:
        ticket.hold()
        box.put_bar(Pending(bar(0), [], [ticket]))
    ticket.seal()
    for k, box in enumerate(boxes):
        assert not ticket.done.is_set(), k
        batch = box.take(timeout=0)
        assert isinstance(batch, list)
        for p in batch:
            for t in p.tickets:
                t.finish()
    assert ticket.done.is_set()
    figures = meter.figures()
    assert figures["bars"] == 1 and figures["p99_ms"] >= 0


def test_a_ticket_nobody_took_is_done_at_once() -> None:
    ticket = Ticket(FanoutMeter())
    ticket.seal()
    assert ticket.done.is_set()


def test_close_returns_what_was_pending_and_refuses_more() -> None:
    box = Mailbox()
    box.put_bar(Pending(bar(0), []))
    box.put("signal")
    bars, events = box.close()
    assert len(bars) == 1 and events == ["signal"]
    assert not box.put("late")
    assert not box.put_bar(Pending(bar(1), []))
    assert box.take(timeout=0) is None


def test_take_waits_for_the_feed() -> None:
    box = Mailbox()
    got: list[object] = []
    reader = threading.Thread(target=lambda: got.append(box.take(timeout=30)))
    reader.start()
    box.put_bar(Pending(bar(0), []))
    reader.join(30)
    assert isinstance(got[0], list) and got[0][0].bar == bar(0)


@pytest.mark.parametrize(("mode", "pace", "lockstep"), [
    ("auto", 0, True), ("auto", 20, False), ("free", 0, False), ("lockstep", 20, True)])
def test_the_mode_follows_the_setting_and_the_pace(mode: str, pace: float,
                                                   lockstep: bool) -> None:
    assert StrategySettings(mode=mode).lockstep(pace) is lockstep  # type: ignore[arg-type]


def test_latency_figures_can_cover_only_the_latest_bars() -> None:
    meter = FanoutMeter()
    ring = LatencyRing()
    for k in range(2000):  # the ring wraps: 512 kept
        meter.record(10.0 if k < 1990 else 0.001)
        ring.record(10.0 if k < 1990 else 0.001)
    assert meter.figures(latest=10)["p99_ms"] == pytest.approx(1.0)
    assert meter.figures()["p99_ms"] == pytest.approx(10_000.0)
    assert ring.p99_ms(latest=10) == pytest.approx(1.0)
    assert ring.p99_ms() == pytest.approx(10_000.0)
    assert ring.count == 2000
