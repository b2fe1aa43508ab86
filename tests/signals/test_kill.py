"""A host killed with SIGKILL while alerts stream in: every alert answered 200 is journaled and
executed exactly once after the restart; none is executed twice, resends included.

``sandtrade serve`` runs as a real process with its HTTP server on a real port and its SQLite
store in a temporary directory; alerts arrive over HTTP the way TradingView sends them.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from rpc.serve_process import ServeProcess, free_port
from sandtrade.market import gbm_bars, write_csv

#: Real `sandtrade serve` processes killed and started again: part of the slow set.
pytestmark = pytest.mark.slow


class Serve(ServeProcess):
    """``sandtrade serve`` in a subprocess, startable again on the same ports and data."""

    def __init__(self, data_dir: Path, csv: Path) -> None:
        self.grpc = f"127.0.0.1:{free_port()}"
        self.http = f"127.0.0.1:{free_port()}"
        config = data_dir.parent / "sandtrade.toml"
        config.write_text("[plugins.tradingview]\nrate_per_minute = 0  # a load test\n")
        super().__init__(data_dir, ["--config", str(config), "--grpc", self.grpc, "--http",
                                    self.http, "--data", f"SYN={csv}", "--speed", "200"])

    def token(self) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "sandtrade.cli", "tokens", "create", "--data-dir",
             str(self.data_dir), "--account", "paper", "--scope", "signal"],
            capture_output=True, text=True, timeout=60, check=True)
        return out.stdout.strip()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Serve]:
    csv = tmp_path / "SYN.csv"
    write_csv(gbm_bars(20_000, symbol="SYN", seed=5), csv)
    s = Serve(tmp_path / "data", csv)
    s.start()
    yield s
    s.stop()


def journal(data_dir: Path) -> dict[str, tuple[str, dict[str, object]]]:
    """Signal id -> (status, record) of every journaled signal."""
    db = sqlite3.connect(data_dir / "sandtrade.db")
    try:
        rows = db.execute("SELECT id, status, data FROM signals ORDER BY seq").fetchall()
    finally:
        db.close()
    return {sid: (status, json.loads(data)) for sid, status, data in rows}


def signal_orders(data_dir: Path) -> list[str]:
    db = sqlite3.connect(data_dir / "sandtrade.db")
    try:
        return [c for (c,) in db.execute(
            "SELECT client_order_id FROM orders WHERE client_order_id LIKE 'sig_%' ORDER BY seq")]
    finally:
        db.close()


def stored_orders(data_dir: Path) -> list[dict[str, object]]:
    """Every stored order, as the store keeps it (JSON)."""
    db = sqlite3.connect(data_dir / "sandtrade.db")
    try:
        return [json.loads(d) for (d,) in db.execute("SELECT data FROM orders ORDER BY seq")]
    finally:
        db.close()


def alert(i: int) -> str:
    side = "buy" if i % 3 else "sell"
    return json.dumps({"symbol": "SYN", "action": side, "qty": 1, "id": f"alert-{i:04d}"})


def test_alerts_streamed_across_a_sigkill_are_executed_exactly_once(serve: Serve) -> None:
    token = serve.token()
    url = f"http://{serve.http}/webhooks/tradingview/{token}"
    n = 400
    answers: dict[int, str] = {}  # alert number -> signal id, for every 200
    refused: list[int] = []
    started = threading.Event()

    def stream() -> None:
        with httpx.Client(timeout=3.0) as http:
            for i in range(n):
                try:
                    r = http.post(url, content=alert(i), headers={"Content-Type": "text/plain"})
                except httpx.HTTPError:
                    refused.append(i)  # TradingView gives up too; the sender may resend
                    continue
                assert r.status_code in (200, 503), r.text
                if r.status_code == 200:
                    answers[i] = r.json()["id"]
                if i == 60:
                    started.set()

    sender = threading.Thread(target=stream)
    sender.start()
    assert started.wait(60), "no alerts were answered"
    time.sleep(0.05)
    serve.kill()
    sender.join(120)
    assert len(answers) >= 60 and refused, (len(answers), len(refused))

    serve.start()
    # Every alert answered 200 is in the journal and is executed, once.
    # (and every one journaled whose answer was lost in the kill: nothing still executing,
    # so that the journal and the orders below are read in a settled state)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        records = journal(serve.data_dir)
        if all(records.get(sid, ("",))[0] in ("executed", "failed") for sid in answers.values()
               ) and all(s not in ("validated", "routed") for s, _ in records.values()):
            break
        time.sleep(0.2)
    records = journal(serve.data_dir)
    for i, sid in answers.items():
        status, record = records[sid]
        assert status == "executed", (i, sid, status, record["reason"])
        assert record["raw_body"] == alert(i)
    orders = signal_orders(serve.data_dir)
    assert len(orders) == len(set(orders)), "an order was placed twice"
    executed = {sid for sid, (status, _) in records.items() if status == "executed"}
    assert {o.split(".")[0] for o in orders} == executed

    # TradingView resends what it did not get an answer for (and a sender may resend all):
    # every alert again, and nothing executes twice.
    with httpx.Client(timeout=5.0) as http:
        for i in range(n):
            r = http.post(url, content=alert(i), headers={"Content-Type": "text/plain"})
            assert r.status_code == 200, r.text
            if i in answers:
                assert r.json()["duplicate"] is True, (i, r.json())
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(s not in ("validated", "routed") for s, _ in journal(serve.data_dir).values()):
            break
        time.sleep(0.2)
    orders = signal_orders(serve.data_dir)
    assert len(orders) == len(set(orders))
    ids_with_orders = {o.split(".")[0] for o in orders}
    # one executed signal per alert number, whichever delivery it was
    numbers = {}
    for sid, (status, record) in journal(serve.data_dir).items():
        if status == "executed":
            number = json.loads(str(record["raw_body"]))["id"]
            assert number not in numbers, f"{number} executed twice: {numbers[number]}, {sid}"
            numbers[number] = sid
    assert len(numbers) == n
    assert ids_with_orders == set(numbers.values())


@pytest.fixture
def slow_serve(tmp_path: Path) -> Iterator[Serve]:
    """A host replaying at 20 bars/s: a 3 % exit takes seconds to reach, not milliseconds."""
    csv = tmp_path / "SYN.csv"
    write_csv(gbm_bars(20_000, symbol="SYN", seed=5), csv)
    s = Serve(tmp_path / "data", csv)
    s.args[s.args.index("--speed") + 1] = "20"
    s.start()
    yield s
    s.stop()


def test_a_bracket_from_an_alert_keeps_its_exits_across_a_sigkill(slow_serve: Serve) -> None:
    """A TradersPost bracket alert: the entry fills, the host is SIGKILLed, started again;
    both exits are still working, exactly one of them fills and cancels the other, and
    nothing was placed twice."""
    serve = slow_serve
    url = f"http://{serve.http}/webhooks/tradingview/{serve.token()}"
    body = json.dumps({"ticker": "SYN", "action": "buy", "quantity": 10,
                       "takeProfit": {"percent": 3}, "stopLoss": {"type": "stop", "percent": 3},
                       "id": "bracket-1"})
    r = httpx.post(url, content=body, headers={"Content-Type": "application/json"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["orders"][-1]["class"] == "bracket", r.json()

    def exits(entry_id: str) -> dict[str, str]:
        """The entry's exits: order type -> status."""
        return {o["type"]: o["status"] for o in stored_orders(serve.data_dir)
                if o.get("parent_id") == entry_id}

    deadline = time.monotonic() + 60
    entry: dict[str, object] = {}
    while time.monotonic() < deadline:
        entry = next((o for o in stored_orders(serve.data_dir)
                      if str(o.get("client_order_id", "")).startswith("sig_")
                      and o["status"] == "filled"), {})
        if entry and len(exits(str(entry["id"]))) == 2:
            break
        time.sleep(0.05)
    assert entry, "the entry did not fill"
    entry_id = str(entry["id"])
    before = exits(entry_id)
    serve.kill()
    assert before == {"limit": "accepted", "stop": "accepted"}, before

    serve.start()
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        after = exits(entry_id)
        if "filled" in after.values():
            break
        time.sleep(0.2)
    after = exits(entry_id)
    assert sorted(after.values()) == ["canceled", "filled"], after
    placed = signal_orders(serve.data_dir)
    assert placed == [entry["client_order_id"]], placed
    db = sqlite3.connect(serve.data_dir / "sandtrade.db")
    try:
        fills = db.execute("SELECT COUNT(*) FROM fills WHERE order_id = ?",
                           (entry_id,)).fetchone()[0]
    finally:
        db.close()
    assert fills >= 1
    with httpx.Client(timeout=30) as http:  # a resend is a duplicate, nothing trades again
        again = http.post(url, content=body, headers={"Content-Type": "application/json"})
    assert again.status_code == 200 and again.json()["duplicate"] is True, again.text


def test_an_options_alert_acknowledged_just_before_a_sigkill_is_executed_exactly_once(
        serve: Serve) -> None:
    """An iron condor alert answered 200, then SIGKILL at once: after the restart its
    multi-leg order exists once (the signal's client order id ``<id>.0``), with its four
    legs, and a resend is a duplicate."""
    token = serve.token()
    url = f"http://{serve.http}/webhooks/tradingview/{token}"
    body = json.dumps({"ticker": "SYN", "template": "iron_condor", "expiry": "30d",
                       "short_delta": 0.16, "width": 2, "contracts": 1, "id": "condor-kill"})
    r = httpx.post(url, content=body, headers={"Content-Type": "text/plain"}, timeout=30)
    assert r.status_code == 200, r.text
    sid = r.json()["id"]
    assert [len(o["legs"]) for o in r.json()["orders"]] == [4], r.json()
    serve.kill()

    serve.start()
    deadline = time.monotonic() + 60
    while journal(serve.data_dir)[sid][0] not in ("executed", "failed"):
        assert time.monotonic() < deadline, journal(serve.data_dir)[sid]
        time.sleep(0.1)
    status, record = journal(serve.data_dir)[sid]
    assert status == "executed", record["reason"]

    def spreads() -> list[tuple[str, int]]:
        db = sqlite3.connect(serve.data_dir / "sandtrade.db")
        try:
            rows = db.execute("SELECT client_order_id, data FROM orders WHERE "
                              "client_order_id LIKE 'sig_%' ORDER BY seq").fetchall()
        finally:
            db.close()
        return [(c, len(json.loads(d).get("legs") or ())) for c, d in rows]

    assert spreads() == [(f"{sid}.0", 4)]
    again = httpx.post(url, content=body, headers={"Content-Type": "text/plain"}, timeout=30)
    assert again.status_code == 200 and again.json()["duplicate"] is True, again.text
    assert spreads() == [(f"{sid}.0", 4)]
