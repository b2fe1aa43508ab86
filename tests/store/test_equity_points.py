"""An account's equity over time in the store: written, read in order (before a time),
replaced at the same time, thinned past an age to the last point of each stretch, per
account, and still there after the file is opened again."""

from __future__ import annotations

from pathlib import Path

from sandtrade.store import SQLiteStore


def test_points_are_read_in_time_order_per_account(store: SQLiteStore) -> None:
    store.append_equity_points([("alice", 30.0, 1010.0), ("alice", 10.0, 1000.0),
                                ("bob", 20.0, 500.0)])
    store.append_equity_points([("alice", 30.0, 1020.0)])  # the same time: replaced
    assert store.equity_points("alice") == [(10.0, 1000.0), (30.0, 1020.0)]
    assert store.equity_points("alice", until=30.0) == [(10.0, 1000.0)]
    assert store.equity_points("bob") == [(20.0, 500.0)]
    assert store.equity_points("carol") == []
    assert store.latest_equity_point("alice") == (30.0, 1020.0)
    assert store.latest_equity_point("carol") is None
    store.append_equity_points([])  # nothing to do, no transaction


def test_thinning_keeps_the_last_point_of_each_stretch_before_the_age(
        store: SQLiteStore) -> None:
    hour = 3600.0
    alice = [("alice", t, float(t)) for t in range(0, int(3 * hour), 600)]  # 18 points
    bob = [("bob", t, -float(t)) for t in range(0, int(hour), 900)]  # 4 points
    store.append_equity_points(alice + bob)
    gone = store.thin_equity_points(before=2 * hour, every=hour)
    # Alice: hours 0 and 1 keep their last (3000, 6600); the third hour is younger.
    assert [t for t, _ in store.equity_points("alice")] == [
        3000.0, 6600.0, *[float(t) for t in range(int(2 * hour), int(3 * hour), 600)]]
    assert store.equity_points("bob") == [(2700.0, -2700.0)]
    assert gone == (18 - 8) + 3
    assert store.thin_equity_points(before=2 * hour, every=hour) == 0


def test_points_outlive_the_store(db_path: Path) -> None:
    with SQLiteStore(db_path) as store:
        store.append_equity_points([("alice", 1.5, 99.25)])
    with SQLiteStore(db_path) as again:
        assert again.equity_points("alice") == [(1.5, 99.25)]
