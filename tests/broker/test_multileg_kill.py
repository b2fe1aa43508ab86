"""A process killed with SIGKILL while it fills multi-leg orders leaves each of them whole:
all four legs' fills stored, or none (one transaction per fill of an order)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sandtrade.broker import PaperBroker
from sandtrade.store import SQLiteStore


def test_sigkill_mid_fill_leaves_every_multileg_order_all_or_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    writer = Path(__file__).with_name("multileg_writer.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}
    proc = subprocess.Popen([sys.executable, str(writer), str(db)], stdout=subprocess.PIPE,
                            text=True, env=env)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("READY")
        deadline = time.monotonic() + 60
        count = 0
        while count < 40 and time.monotonic() < deadline:  # enough orders to land mid-fill
            with sqlite3.connect(db) as conn:
                count = conn.execute("SELECT count(*) FROM fills").fetchone()[0]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert count >= 40
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT o.id, o.status, count(f.id) FROM orders o LEFT JOIN fills f "
            "ON f.order_id = o.id GROUP BY o.id").fetchall()
    assert rows
    for order_id, status, fills in rows:
        assert (status, fills) in (("filled", 4), ("accepted", 0)), (order_id, status, fills)
    # restarted, the account holds whole condors only: every leg the same size, one group
    broker = PaperBroker(store=SQLiteStore(str(db)))
    broker.restore()
    sizes = {abs(p.qty) for p in broker.positions("acct")}
    groups = broker.position_groups("acct")
    assert (sizes, len(groups)) in ((set(), 0), ({1.0}, 1))
