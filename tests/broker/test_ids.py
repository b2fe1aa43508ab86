"""Live ids: unique, time-ordered, of one shape; two hosts' factories never collide."""

from __future__ import annotations

import re

from sandtrade.broker.ids import sequential_ids, unique_ids


def test_live_ids_are_unique_sorted_and_of_one_shape() -> None:
    make = unique_ids()
    ids = [make("o") for _ in range(50_000)]
    # o_, the microseconds since the epoch (13 hex digits until 2112), 8 random hex digits
    assert all(re.fullmatch(r"o_[0-9a-f]{13}[0-9a-f]{8}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert ids == sorted(ids, key=lambda i: int(i[2:-8], 16)), "ordered by creation time"


def test_two_factories_started_together_differ_in_their_random_part() -> None:
    a, b = unique_ids(), unique_ids()
    tails_a = {a("f")[-8:] for _ in range(1000)}
    tails_b = {b("f")[-8:] for _ in range(1000)}
    assert len(tails_a) > 990 and not tails_a & tails_b


def test_back_test_ids_count_per_kind() -> None:
    make = sequential_ids()
    assert [make("o"), make("f"), make("o")] == ["o1", "f1", "o2"]
