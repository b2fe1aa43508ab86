"""A live source's link: backoff with jitter and a cap, Retry-After, and the states /health
shows."""

from __future__ import annotations

import pytest

from sandtrade.market.live import Backoff, Connection, redact


def test_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() -> None:
    high = Backoff(base=1.0, cap=8.0, rng=lambda: 1.0)
    assert [high.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    low = Backoff(base=1.0, cap=8.0, rng=lambda: 0.0)
    assert [low.next_delay() for _ in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]


def test_backoff_starts_again_after_a_success_and_a_longer_retry_after_wins() -> None:
    b = Backoff(base=1.0, cap=8.0, rng=lambda: 1.0)
    b.next_delay(), b.next_delay()
    b.reset()
    assert b.next_delay() == 1.0
    assert b.next_delay(retry_after=30.0) == 30.0  # the server's wish, beyond the cap
    assert b.next_delay(retry_after=0.5) == 4.0    # a shorter one does not cut the backoff


def test_backoff_refuses_a_cap_below_its_base() -> None:
    with pytest.raises(ValueError, match="need 0 < base <= cap"):
        Backoff(base=2.0, cap=1.0)


def test_connection_goes_connecting_reconnecting_live_and_keeps_the_last_error() -> None:
    c = Connection("fake: X 1m bars", backoff=Backoff(base=1.0, cap=2.0, rng=lambda: 1.0))
    assert c.health().state == "connecting"
    assert c.failed("refused") == 1.0
    assert c.failed("refused again") == 2.0
    h = c.health()
    assert (h.state, h.failures, h.last_error) == ("reconnecting", 2, "refused again")
    assert h.message.startswith("fake: X 1m bars: reconnecting since ")
    assert "(2 failures; next try in" in h.message and h.message.endswith(
        "last error: refused again")
    c.succeeded()
    h = c.health()
    assert (h.state, h.live, h.failures, h.retry_in) == ("live", True, 0, None)
    assert h.message.endswith("(recovered from: refused again)")
    assert h.to_json()["last_error"] == "refused again"
    c.closed()
    assert c.health().state == "closed"


def test_redact_removes_every_secret() -> None:
    assert redact("key K1 secret S2 K1", ["K1", "S2", None, ""]) == "key *** secret *** ***"
