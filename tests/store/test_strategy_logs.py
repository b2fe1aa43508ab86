"""The store's strategy logs: lines in order, each ring trimmed to its bound in lines and
bytes in the transaction that adds to it, and gone with the strategy."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sandtrade.store.base import LogBound, StoredLogLine, StrategyRecord
from sandtrade.store.sqlite import SQLiteStore

T0 = datetime(2024, 1, 2, tzinfo=UTC)


def _line(seq: int, text: str, ring: str = "own", sid: str = "stg_a") -> StoredLogLine:
    return StoredLogLine(seq, sid, ring, "host" if ring == "host" else "strategy", T0, text)


def test_lines_come_back_in_order_and_a_tail_is_the_newest(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        store.append_strategy_logs([_line(1, "a"), _line(2, "n", "host"), _line(3, "b"),
                                    _line(4, "other", sid="stg_b")])
        assert [x.line for x in store.list_strategy_logs("stg_a")] == ["a", "n", "b"]
        assert [x.line for x in store.list_strategy_logs("stg_a", tail=2)] == ["n", "b"]
        assert store.list_strategy_logs("stg_a")[1].origin == "host"
        assert store.list_strategy_logs("stg_a")[0].time == T0
        assert store.last_log_seq() == 4


def test_a_ring_is_trimmed_by_lines_or_bytes_oldest_first_and_alone(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        lines = [_line(k, f"{k:03d}") for k in range(1, 21)] + [_line(21, "note", "host")]
        sizes = store.append_strategy_logs(lines, [LogBound("stg_a", "own", 5, 10_000)])
        assert sizes == {("stg_a", "own"): (5, 15)}
        assert [x.line for x in store.list_strategy_logs("stg_a")] == [
            "016", "017", "018", "019", "020", "note"]
        sizes = store.append_strategy_logs([_line(22, "x" * 10)],
                                           [LogBound("stg_a", "own", 100, 12)])
        assert sizes == {("stg_a", "own"): (1, 10)}, "bytes bound: only the newest fits"
        assert store.strategy_log_size("stg_a") == {"own": (1, 10), "host": (1, 4)}


def test_deleting_a_strategy_deletes_its_log(tmp_path: Path) -> None:
    with SQLiteStore(tmp_path / "s.db") as store:
        record = StrategyRecord(id="stg_a", name="a", account="acc", source="x",
                                source_sha256="0", params={}, symbols=("AAA",),
                                desired="stopped", uploaded_at=T0)
        store.save_strategy(record)
        store.append_strategy_logs([_line(1, "a")])
        assert store.delete_strategy("stg_a")
        assert store.list_strategy_logs("stg_a") == []
