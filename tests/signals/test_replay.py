"""Replaying the journal: the same fills every time, equal to the fills the live host made.

Signals are sent to a real host between bars the test publishes; then
:func:`sandtrade.signals.replay.replay` carries the journal out again in a fresh account
against the same bars, and ``sandtrade signals replay`` does the same from the command line
against a stopped host's store.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sandtrade.market import gbm_bars, write_csv
from sandtrade.signals.replay import replay
from signals.conftest import Host, post


def _live(host: Host) -> list[tuple[str, str, float, float]]:
    assert host.runtime.store is not None
    return [(f.symbol, f.side.value, f.qty, f.price)
            for f in host.runtime.store.list_fills("paper", limit=10_000)]


def _trade_through(host: Host) -> list[str]:
    """Alerts between bars: buys, a reversal, a two-command alert, a limit order, a close."""
    bodies = ["buy 3 AAA", "long 5 AAA", '{"ticker": "AAA", "market_position": "short", '
              '"position_size": -2}', "buy 4 BBB limit 99.5", "close AAA; short 1 BBB",
              "flat BBB", "sell 2 AAA", "buy 2 AAA"]
    ids = []
    host.market.publish(100.0, symbol="AAA")
    host.market.publish(100.0, symbol="BBB")
    for i, body in enumerate(bodies):
        r = post(host.webhook, body)
        assert r.status_code == 200, r.text
        ids.append(r.json()["id"])
        host.wait_idle()
        price = 100.0 + (i % 3) - 1.0
        host.market.publish(price, price + 1, price - 1, price + 0.5, symbol="AAA")
        host.market.publish(price, price + 1, price - 1, price - 0.5, symbol="BBB")
    return ids


def test_a_replay_gives_the_live_fills_and_the_same_fills_every_time(host: Host) -> None:
    ids = _trade_through(host)
    live = _live(host)
    assert len(live) >= 8
    runtime = host.runtime
    assert runtime.source is not None and runtime.store is not None
    records = [r for _, r in runtime.store.list_signals(limit=100, oldest_first=True)]
    assert [r.id for r in records] == ids

    def run() -> list[tuple[str, str, str, float, float, str, str]]:
        result = replay(records, list(host.market.published),
                        instruments=runtime.source.instruments(),
                        formats=runtime.plugins.signal_formats(), cash=runtime.settings.cash)
        assert not result.skipped and all(not s.failed for s in result.signals), result
        return result.fill_rows()

    first, second = run(), run()
    assert first == second
    assert [(symbol, side, qty, price) for _, symbol, side, qty, price, _, _ in first] == live
    # each fill is attributed to the signal that caused it, priced by the feed
    assert {row[5] for row in first} <= set(ids)
    assert {row[6] for row in first} == {"feed"}


def test_original_pace_waits_as_the_signals_were_apart(host: Host) -> None:
    _trade_through(host)
    runtime = host.runtime
    assert runtime.source is not None and runtime.store is not None
    records = [r for _, r in runtime.store.list_signals(limit=100, oldest_first=True)]
    waits: list[float] = []
    replay(records, list(host.market.published), instruments=runtime.source.instruments(),
           formats=runtime.plugins.signal_formats(), cash=runtime.settings.cash,
           pace="original", sleep=waits.append)
    gaps = [(b.received_at - a.received_at).total_seconds()
            for a, b in itertools.pairwise(records)]
    assert waits == [g for g in gaps if g > 0]


def test_rejected_and_duplicate_signals_are_left_out(host: Host) -> None:
    host.market.publish(100.0)
    assert post(host.webhook, "buy 1 AAA").status_code == 200
    assert post(host.webhook, "buy 1 AAA").json()["duplicate"] is True
    assert post(host.webhook, "buy 1,5 AAA").status_code == 422
    host.wait_idle()
    host.market.publish(101.0)
    runtime = host.runtime
    assert runtime.source is not None and runtime.store is not None
    records = [r for _, r in runtime.store.list_signals(limit=100, oldest_first=True)]
    result = replay(records, list(host.market.published),
                    instruments=runtime.source.instruments(),
                    formats=runtime.plugins.signal_formats(), cash=runtime.settings.cash)
    assert len(result.signals) == 1
    assert sorted(why.split(",")[0] for _, why in result.skipped) == ["dropped", "rejected"]
    assert [row[1:5] for row in result.fill_rows()] == [("AAA", "buy", 1.0, 101.0)]


def test_the_replay_command_reads_a_stopped_hosts_store(tmp_path: Path) -> None:
    """``sandtrade serve`` with a CSV market, alerts over HTTP, stop; then the CLI replays
    the journal twice, with identical JSON output and the live account's fills."""
    from signals.test_kill import Serve

    csv = tmp_path / "SYN.csv"
    # 20 s of market at the host's 200 bars/s: the alerts execute long before the data ends
    # (with 400 bars, a host slowed by a loaded machine met them after the end, and looped).
    write_csv(gbm_bars(4000, symbol="SYN", seed=11), csv)
    serve = Serve(tmp_path / "data", csv)
    serve.start()
    try:
        token = serve.token()
        for body in ("buy 5 SYN", "short 3 SYN", "close SYN"):
            r = post(f"http://{serve.http}/webhooks/tradingview/{token}", body)
            assert r.status_code == 200, r.text
            time.sleep(0.05)
        deadline = time.monotonic() + 30
        while len(_stored_fills(serve.data_dir)) < 4:
            assert time.monotonic() < deadline, \
                f"4 fills expected within 30 s, got {_stored_fills(serve.data_dir)}"
            time.sleep(0.05)
    finally:
        serve.stop()
    cmd = [sys.executable, "-m", "sandtrade.cli", "signals", "replay", "--data-dir",
           str(serve.data_dir), "--data", f"SYN={csv}", "--json"]
    runs = [subprocess.run(cmd, capture_output=True, text=True, timeout=120) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
    assert runs[0].stdout == runs[1].stdout
    out = json.loads(runs[0].stdout)
    assert len(out["signals"]) == 3
    # the timeline picture: a self-contained page with every signal and its body
    report = tmp_path / "timeline.html"
    drawn = subprocess.run([*cmd[:-1], "--report", str(report)], capture_output=True,
                           text=True, timeout=120)
    assert drawn.returncode == 0, drawn.stderr
    page = report.read_text()
    assert "Plotly" in page and "<script src" not in page
    assert all(s["id"] in page for s in out["signals"]) and "short 3 SYN" in page
    live_fills = _stored_fills(serve.data_dir)
    assert len(live_fills) == 4
    assert [(f["side"], f["qty"], f["price"]) for f in out["fills"]] == [
        (f["side"], f["qty"], f["price"]) for f in live_fills]


def _stored_fills(data_dir: Path) -> list[dict[str, object]]:
    db = sqlite3.connect(data_dir / "sandtrade.db")
    try:
        rows = db.execute("SELECT data FROM fills WHERE account = 'paper' ORDER BY seq")
        return [json.loads(d) for (d,) in rows.fetchall()]
    finally:
        db.close()
