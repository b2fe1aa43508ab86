"""How orders and fills are named: time-ordered unique ids for a live host, counters for a
back-test.

An id factory is a function ``kind -> id`` (``"o"`` for orders, ``"f"`` for fills) handed to
:class:`~sandtrade.broker.paper.PaperBroker`.
"""

from __future__ import annotations

import itertools
import random
import secrets
import time
from collections.abc import Callable

__all__ = ["sequential_ids", "unique_ids"]


def unique_ids() -> Callable[[str], str]:
    """Ids unique across restarts and hosts that sort by creation time: ``o_`` + the
    microseconds since the epoch in hex (13 digits until 2112) + 8 random hex digits. For live
    brokers, whose store keys orders and fills by id alone.

    The time part alone never repeats within one factory; the random part keeps two hosts (or
    a restart within the same microsecond) apart. It comes from a generator seeded once from
    the system's entropy: an id is a name, not a secret (every request is checked against the
    caller's account), and a system call per order and fill cost a live host 2 % of its CPU."""
    last = 0
    rand = random.Random(secrets.randbits(128)).getrandbits

    def make(kind: str) -> str:
        nonlocal last
        now = max(time.time_ns() // 1000, last + 1)
        last = now
        return f"{kind}_{now:012x}{rand(32):08x}"

    return make


def sequential_ids() -> Callable[[str], str]:
    """Deterministic ids: ``o1, o2, …`` for orders, ``f1, …`` for fills. For back-tests."""
    counters: dict[str, itertools.count[int]] = {}

    def make(kind: str) -> str:
        counter = counters.get(kind)
        if counter is None:  # not setdefault: that would build a counter on every call
            counter = counters[kind] = itertools.count(1)
        return f"{kind}{next(counter)}"

    return make
