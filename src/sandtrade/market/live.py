"""What a live market source tells the host about its link to the outside world.

A replay never loses its data; a source that polls an exchange or a vendor does, for seconds or
hours. Such a source keeps a :class:`Connection`: it records each attempt's outcome, gives the
delay before the next try after a failure (exponential backoff with jitter and a cap, or the
server's ``Retry-After`` when it is longer), and answers :meth:`Connection.health` with a
:class:`SourceHealth`, which the host shows in ``/health`` (``market.connection``) and
``sandtrade doctor``. Plugins reach both through :mod:`sandtrade.plugin_api`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["Backoff", "Connection", "ConnectionState", "SourceHealth", "redact"]

#: ``connecting`` (no answer yet), ``live`` (the last attempt succeeded), ``reconnecting``
#: (the last attempt failed; trying again after a delay) or ``closed`` (the host stopped it).
ConnectionState = Literal["connecting", "live", "reconnecting", "closed"]

#: The longest ``Retry-After`` honoured: a server asking for more is asked again after this.
RETRY_AFTER_CAP = 900.0


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """Whether a live source is getting prices, since when, and its last error."""

    #: What the source is, for people: ``ccxt binance: BTC/USDT 1m bars``.
    source: str
    state: ConnectionState
    #: When the current state began (UTC).
    since: datetime
    #: Failed attempts in a row (0 when live).
    failures: int
    #: The last failure's reason (kept after a recovery, until the next one).
    last_error: str | None
    #: When the last failure happened (UTC).
    last_error_at: datetime | None
    #: When the last attempt succeeded (UTC).
    last_ok_at: datetime | None
    #: Seconds until the next try (``reconnecting`` only).
    retry_in: float | None

    @property
    def live(self) -> bool:
        """True when the last attempt succeeded."""
        return self.state == "live"

    @property
    def message(self) -> str:
        """One line a person reads: ``ccxt binance: reconnecting since 12:00:03 (3 failures;
        next try in 4.1 s): last error: ...``."""
        since = f"{self.since:%Y-%m-%d %H:%M:%S} UTC"
        if self.state == "live":
            text = f"{self.source}: live since {since}"
            if self.last_error:
                text += f" (recovered from: {self.last_error})"
            return text
        if self.state == "reconnecting":
            retry = "" if self.retry_in is None else f"; next try in {self.retry_in:.1f} s"
            return (f"{self.source}: reconnecting since {since} ({self.failures} failure"
                    f"{'s' * (self.failures != 1)}{retry}): last error: {self.last_error}")
        return f"{self.source}: {self.state} since {since}"

    def to_json(self) -> dict[str, Any]:
        """The health as JSON-ready values (what ``/health`` shows)."""
        return {"source": self.source, "state": self.state, "live": self.live,
                "since": self.since.isoformat(), "failures": self.failures,
                "last_error": self.last_error,
                "last_error_at": _iso(self.last_error_at),
                "last_ok_at": _iso(self.last_ok_at), "retry_in": self.retry_in,
                "message": self.message}


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


class Backoff:
    """Delays between failed attempts: ``base * 2**n`` capped at ``cap``, with equal jitter
    (a random value in the upper half), so that many clients cut off together do not all come
    back in the same instant, and no retry follows at once."""

    def __init__(self, *, base: float = 1.0, cap: float = 60.0,
                 rng: Callable[[], float] = random.random) -> None:
        if base <= 0 or cap < base:
            raise ValueError(f"backoff: need 0 < base <= cap (got base={base}, cap={cap})")
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng

    def next_delay(self, retry_after: float | None = None) -> float:
        """The delay before the next try; a server's ``Retry-After`` wins when longer."""
        ceiling = min(self.cap, self.base * 2.0 ** min(self.attempt, 62))
        self.attempt += 1
        delay = ceiling / 2 + self._rng() * ceiling / 2
        if retry_after is not None and retry_after > 0:
            delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
        return delay

    def reset(self) -> None:
        """After a success: the next failure starts again from ``base``."""
        self.attempt = 0


def _now() -> datetime:
    return datetime.now(UTC)


class Connection:
    """The state of a live source's link, safe to read from any thread (``/health``) while
    the feed's thread records attempts."""

    def __init__(self, source: str, *, backoff: Backoff | None = None) -> None:
        self.source = source
        self.backoff = backoff or Backoff()
        self._lock = threading.Lock()
        self._state: ConnectionState = "connecting"
        self._since = _now()
        self._failures = 0
        self._last_error: str | None = None
        self._last_error_at: datetime | None = None
        self._last_ok_at: datetime | None = None
        self._retry_at: float | None = None

    def succeeded(self) -> None:
        """The last attempt got an answer that made sense."""
        with self._lock:
            now = _now()
            if self._state != "live":
                self._state, self._since = "live", now
            self._failures = 0
            self._last_ok_at = now
            self._retry_at = None
        self.backoff.reset()

    def failed(self, error: str, *, retry_after: float | None = None) -> float:
        """The last attempt failed with ``error`` (a reason without secrets); returns the
        seconds to wait before the next."""
        delay = self.backoff.next_delay(retry_after)
        with self._lock:
            now = _now()
            if self._state != "reconnecting":
                self._state, self._since = "reconnecting", now
            self._failures += 1
            self._last_error, self._last_error_at = error, now
            self._retry_at = now.timestamp() + delay
        return delay

    def closed(self) -> None:
        """The host stopped the source."""
        with self._lock:
            self._state, self._since, self._retry_at = "closed", _now(), None

    def health(self) -> SourceHealth:
        """The link's state now."""
        with self._lock:
            retry_in = (None if self._retry_at is None
                        else max(0.0, round(self._retry_at - _now().timestamp(), 1)))
            return SourceHealth(self.source, self._state, self._since, self._failures,
                                self._last_error, self._last_error_at, self._last_ok_at,
                                retry_in)


def redact(text: str, secrets: Iterable[str | None]) -> str:
    """``text`` with every non-empty secret replaced by ``***`` (an error message that might
    quote a request must never carry the user's key into a log or ``/health``)."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
