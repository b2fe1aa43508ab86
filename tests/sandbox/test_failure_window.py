"""The window a strategy's failed events are weighed in: its count is the failures among the
last N events, also once older events leave it."""

from __future__ import annotations

import random

from sandtrade.sandbox.manager import FailureWindow


def test_the_count_is_the_failures_among_the_last_events() -> None:
    rng = random.Random(7)
    window = FailureWindow(100)
    seen: list[bool] = []
    for _ in range(1_000):
        failed = rng.random() < 0.3
        window.add(failed)
        seen.append(failed)
        assert len(window) == min(len(seen), 100)
        assert window.failures == sum(seen[-100:])
    window.clear()
    assert len(window) == 0 and window.failures == 0
    window.add(True)
    assert window.failures == 1
