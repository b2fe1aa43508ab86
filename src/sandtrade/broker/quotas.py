"""The host's quotas per account: how fast an account may place and cancel orders and send
signals, and how many orders it may keep working, whichever door it uses.

Quotas are about sharing one host fairly, not about risk (that is :mod:`sandtrade.broker.risk`):
they count in wall-clock seconds, so they hold in a live host only; a back-test has none. Each
rate is a token bucket: ``burst`` requests at once, then ``per_second`` on average. A request
over a quota is refused before it does anything (:class:`~sandtrade.errors.QuotaExceeded`:
gRPC ``RESOURCE_EXHAUSTED``, HTTP 429, a strategy's order rejected with the reason), naming
the quota, its limit and how many were refused this second. The defaults are far above
what a person or a normal strategy does; an operator sets them in ``[quotas]`` and
``[accounts.NAME.quotas]``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from sandtrade.errors import QuotaExceeded

__all__ = ["QuotaBook", "Quotas"]


class Quotas(BaseModel):
    """``[quotas]`` (every account) or ``[accounts.NAME.quotas]`` (one account)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    orders_per_second: float = Field(100.0, gt=0, description="Orders an account may place "
                                     "per second, on average.")
    order_burst: int = Field(1000, ge=1, description="Orders it may place at once (a batch).")
    cancels_per_second: float = Field(100.0, gt=0, description="Cancels per second.")
    cancel_burst: int = Field(1000, ge=1, description="Cancels at once.")
    open_orders: int = Field(1000, ge=1, description="Orders it may keep working at once.")
    signals_per_second: float = Field(100.0, gt=0, description="Signals (webhook, gRPC) an "
                                      "account may send per second, on average.")
    signal_burst: int = Field(1000, ge=1, description="Signals it may send at once.")
    strategies_running: int = Field(50, ge=0, description="Strategies an account may have "
                                    "running at once (a start past it is refused).")
    flood_seconds: int = Field(10, ge=1, description="A strategy whose orders are refused for "
                               "a quota this many seconds in a row is stopped, the reason "
                               "naming the quota.")
    # What each of the account's live strategies may do (its worker enforces the log rates
    # and the state size, the host the calls per event).
    strategy_ctx_calls: int = Field(1000, ge=1, le=100_000, description="Broker calls "
                                    "(ctx.buy, ctx.account, ...) one event of a strategy may "
                                    "make; the rest of that event's are refused.")
    strategy_log_lines_per_second: float = Field(200.0, gt=0, le=100_000, description="Log "
                                                 "lines a strategy may write per second, on "
                                                 "average; a flood is cut and counted.")
    strategy_log_bytes_per_second: int = Field(64 << 10, gt=0, le=64 << 20, description="Log "
                                               "bytes a strategy may write per second, on "
                                               "average.")
    strategy_log_burst_seconds: float = Field(5.0, gt=0, le=60, description="Seconds of log "
                                              "rate a strategy may write at once.")
    strategy_state_bytes: int = Field(256 << 10, ge=2, le=256 << 10, description="Largest "
                                      "ctx.state of a strategy, as JSON (bytes); a larger one "
                                      "is refused and not stored.")


class _Bucket:
    __slots__ = ("burst", "rate", "refused", "refused_at", "stamp", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.refused = 0
        self.refused_at = 0

    def take(self, now: float) -> bool:
        if now > self.stamp:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        second = int(now)
        if second != self.refused_at:
            self.refused_at, self.refused = second, 0
        self.refused += 1
        return False


_KINDS = {
    "order": ("orders_per_second", "order_burst", "orders"),
    "cancel": ("cancels_per_second", "cancel_burst", "cancels"),
    "signal": ("signals_per_second", "signal_burst", "signals"),
}


class QuotaBook:
    """The buckets of every account; ``quotas_of(account)`` gives an account's quotas (read
    each time, so a change applies at once)."""

    def __init__(self, quotas_of: Callable[[str], Quotas]) -> None:
        self.quotas_of = quotas_of
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def take(self, kind: str, account: str) -> None:
        """Count one ``kind`` (order, cancel, signal) for ``account``; raises
        :class:`QuotaExceeded` when its bucket is empty."""
        rate_key, burst_key, plural = _KINDS[kind]
        quotas = self.quotas_of(account)
        rate, burst = getattr(quotas, rate_key), getattr(quotas, burst_key)
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.get((kind, account))
            if bucket is None or (bucket.rate, bucket.burst) != (rate, burst):
                bucket = self._buckets[(kind, account)] = _Bucket(rate, burst)
            if bucket.take(now):
                return
            refused = bucket.refused
        raise QuotaExceeded(
            f"quota: {rate:,g} {plural}/s for account {account} ({rate_key}, burst "
            f"{burst:,}); {refused:,} refused this second, retry later",
            quota=rate_key, subject=f"account:{account}")

    def check_open_orders(self, account: str, at_most: int, working: Callable[[], int]
                          ) -> None:
        """Refuse a new order when ``account`` already has its quota of working orders:
        ``working()`` counts them, asked only when ``at_most`` (a bound of that count: every
        account's working orders) reaches the quota (counting walked every working order of
        every account, on each submit of a busy host's bar)."""
        limit = self.quotas_of(account).open_orders
        if at_most >= limit and working() >= limit:
            raise QuotaExceeded(
                f"quota: {limit:,} working orders for account {account} (open_orders); cancel "
                "some or wait for fills before placing more", quota="open_orders",
                subject=f"account:{account}")
