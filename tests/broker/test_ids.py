"""Live ids: unique, time-ordered, of one shape; two hosts' factories never collide."""

from __future__ import annotations

import re

from sandtrade.broker.ids import sequential_ids, unique_ids


def test_live_ids_are_unique_sorted_and_of_one_shape() -> None:
    make = unique_ids()
    ids = [make("o") for _ in range(50_000)]
    assert all(re.fullmatch(r"o_[0-9a-f]{20}", i) for i in ids[:100] + ids[-100:])
    assert len(set(ids)) == len(ids)
    assert [i[:14] for i in ids] == sorted(i[:14] for i in ids), "ordered by creation time"


def test_two_factories_started_together_differ_in_their_random_part() -> None:
    a, b = unique_ids(), unique_ids()
    tails_a = {a("f")[14:] for _ in range(1000)}
    tails_b = {b("f")[14:] for _ in range(1000)}
    assert len(tails_a) > 990 and not tails_a & tails_b


def test_back_test_ids_count_per_kind() -> None:
    make = sequential_ids()
    assert [make("o"), make("f"), make("o")] == ["o1", "f1", "o2"]
