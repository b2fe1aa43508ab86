"""The crash test: a writer killed with SIGKILL at random moments never leaves half a change.

Each round starts the writer in a real subprocess on the same database, waits until it has
reported a number of commits, lets it run a random while longer and kills it. After every round
the database is reopened (which is when SQLite recovers from the write-ahead log) and checked:
every change the writer reported is there, and orders, fills, the position and the account
agree exactly, which they would not if any change had been written in part.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandtrade.models import OrderStatus
from sandtrade.store import SQLiteStore

WRITER = Path(__file__).with_name("crash_writer.py")
ROUNDS = 5
MIN_COMMITS_PER_ROUND = 20

# The writer's deterministic stream, duplicated here so that the check does not trust the
# code under test to describe itself.
ACCOUNT, SYMBOL, INITIAL_CASH, FILLS_PER_ORDER = "crash", "AAPL", 1_000_000.0, 3


def fill_qty(k: int) -> float:
    """Quantity of fill ``k``."""
    return float(1 + k % 5)


def fill_price(k: int) -> float:
    """Price of fill ``k``."""
    return 100.0 + (k % 7) * 0.25


def run_and_kill(db_path: Path, rng: random.Random) -> list[int]:
    """Start the writer, SIGKILL it at a random moment after enough commits; its reports."""
    proc = subprocess.Popen([sys.executable, str(WRITER), str(db_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reported: list[int] = []
    try:
        assert proc.stdout is not None
        wanted = MIN_COMMITS_PER_ROUND + rng.randrange(20)
        while len(reported) < wanted:
            line = proc.stdout.readline()
            if not line:
                proc.wait(timeout=10)
                err = proc.stderr.read() if proc.stderr else ""
                pytest.fail(f"writer exited with {proc.returncode} after {len(reported)} "
                            f"commits:\n{err}")
            reported.append(int(line))
        time.sleep(rng.uniform(0.0, 0.03))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL, "the writer ended before it was killed"
        # Commits it reported in the moment before the kill are still in the pipe.
        reported += [int(line) for line in proc.stdout.read().split()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    return reported


def check_invariants(db_path: Path) -> int:
    """Reopen the database and check that it holds whole changes only; their number."""
    with SQLiteStore(db_path) as store:
        assert store.pragma("integrity_check") == "ok"

        fills = []
        after: str | None = None
        while page := store.list_fills(ACCOUNT, after=after, limit=200):
            fills += page
            after = page[-1].id
        n = len(fills)
        assert [f.id for f in fills] == [f"f{k:07d}" for k in range(n)], "fills missing"
        assert [(f.qty, f.price) for f in fills] == [(fill_qty(k), fill_price(k))
                                                     for k in range(n)]

        orders = store.list_orders(ACCOUNT, limit=10_000)
        assert len(orders) == -(-n // FILLS_PER_ORDER)
        for order in orders:
            own = [f.qty for f in fills if f.order_id == order.id]
            assert order.filled_qty == sum(own), f"{order.id}: filled_qty disagrees with fills"
            full = len(own) == FILLS_PER_ORDER
            assert order.status == (OrderStatus.FILLED if full else OrderStatus.PARTIALLY_FILLED)
            assert (order.filled_qty == order.qty) == full

        positions = store.list_positions(ACCOUNT)
        if n:
            assert [p.symbol for p in positions] == [SYMBOL]
            assert positions[0].qty == sum(f.qty for f in fills)
            assert positions[0].market_price == fills[-1].price
        account = store.get_account(ACCOUNT)
        assert account is not None
        cash = INITIAL_CASH
        for f in fills:
            cash -= f.qty * f.price
        assert account.cash == cash
        return n


@pytest.mark.timeout(60)
def test_killed_writer_leaves_only_whole_committed_changes(db_path: Path) -> None:
    rng = random.Random(os.environ.get("SANDTRADE_CRASH_SEED", "sandtrade"))
    stored = 0
    for round_no in range(ROUNDS):
        reported = run_and_kill(db_path, rng)
        assert reported[0] == stored, f"round {round_no}: the writer did not resume at {stored}"
        assert reported == list(range(stored, stored + len(reported)))
        stored = check_invariants(db_path)
        assert stored >= reported[-1] + 1, (
            f"round {round_no}: the writer reported change {reported[-1]} committed, "
            f"but only {stored} changes are stored"
        )
