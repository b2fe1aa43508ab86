"""What both sources share: polling a REST API for bars, and emitting each bar once it closes.

**Bars, not ticks.** The paper broker fills on bars (a market order at the next bar's open, a
limit when a bar's range crosses it), so a polled source gives the host bars of a fixed
interval (``timeframe``, one minute by default) and nothing between them. Each poll asks for
the recent bars of every symbol; a bar is emitted once it has *closed*: when a later bar of
the same symbol is in the answer, or when its interval has passed on this machine's clock
(UTC). The bar still forming is never emitted, so a bar is final when the broker works it and
no price is ever taken back. At the first answer only the newest closed bar of each symbol is
emitted (a current price at once; older history is not replayed as if it were new); after
that, every closed bar after the last one emitted, so bars missed while the link was down
arrive, in time order, when it is back.

**When the link fails** (refused, timed out, 5xx, 429, an answer that makes no sense), the
source does not end: it records the failure in its :class:`~sandtrade.plugin_api.Connection`
(``/health`` and ``sandtrade doctor`` say ``reconnecting since …`` with the last error), waits
with exponential backoff and jitter, capped (a 429's ``Retry-After`` is honoured when longer),
and tries again; the first good answer makes it ``live`` again.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sandtrade.plugin_api import (
    Backoff,
    Bar,
    Connection,
    DataError,
    Instrument,
    MarketSettings,
    SourceHealth,
)

__all__ = ["ERROR_CHARS", "PollError", "PollOptions", "PolledSource", "parse_options",
           "retry_after_seconds", "utc_now"]

log = logging.getLogger(__name__)


class PollError(Exception):
    """One poll failed; ``str()`` says why (never with a secret), ``retry_after`` is the
    server's wish in seconds (429), if it said one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PollOptions(BaseModel):
    """Settings every polled source has (``[sources.NAME]``)."""

    model_config = ConfigDict(extra="forbid")

    poll_seconds: float = Field(5.0, gt=0, description="Time between polls while live.")
    timeout_seconds: float = Field(10.0, gt=0, description="How long one request may take.")
    backoff_seconds: float = Field(1.0, gt=0, description="First delay after a failure; it "
                                   "doubles with each failure in a row, with jitter.")
    backoff_cap_seconds: float = Field(60.0, gt=0, description="The longest delay between "
                                       "tries (a 429's Retry-After may ask for more).")
    base_url: str | None = Field(None, description="Another address of the same API (a proxy, "
                                 "a test server), e.g. http://127.0.0.1:8080.")


#: Longest error text kept for /health (an exchange may answer with a whole HTML page).
ERROR_CHARS = 300


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A ``Retry-After`` header's seconds (a number or an HTTP date); None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return seconds if math.isfinite(seconds) and seconds > 0 else None


def utc_now() -> datetime:
    """Now, as the host's bar times are: UTC without a time zone."""
    return datetime.now(UTC).replace(tzinfo=None)


def parse_options(name: str, model: type[BaseModel], values: Mapping[str, Any]) -> Any:
    """``values`` validated by ``model``; a :class:`DataError` naming ``[sources.NAME] key``."""
    try:
        return model.model_validate(dict(values))
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(x) for x in err["loc"]) or "(table)"
        got = f" (got {err['input']!r})" if err["type"] != "missing" else ""
        msg = err["msg"].removeprefix("Value error, ")
        raise DataError(f"[sources.{name}] {key}: {msg}{got}") from None


class PolledSource:
    """A live source that polls: subclasses say what to ask (:meth:`poll`) and how bars are
    named; this class keeps time, order, the link's health and the backoff."""

    name: ClassVar[str]
    #: Its bars are new prices, not a replay (a restarted host skips none).
    live: ClassVar[bool] = True

    def __init__(self, settings: MarketSettings, options: PollOptions, *, describe: str,
                 interval: timedelta) -> None:
        self.settings = settings
        self.poll_seconds = options.poll_seconds
        self.interval = interval
        self.connection = Connection(describe, backoff=Backoff(
            base=options.backoff_seconds,
            cap=max(options.backoff_cap_seconds, options.backoff_seconds)))
        self._closed = threading.Event()

    # ------------------------------------------------------------ what subclasses give

    def instruments(self) -> list[Instrument]:
        """The instruments whose bars :meth:`bars` yields."""
        raise NotImplementedError

    def poll(self, last: Mapping[str, datetime]) -> dict[str, list[Bar]]:
        """The recent bars of every symbol (``last``: the newest emitted so far, by symbol;
        empty at the first poll); :class:`PollError` when the answer is not usable."""
        raise NotImplementedError

    def describe_error(self, error: Exception) -> str:
        """An unexpected exception of :meth:`poll`, for ``/health`` (subclasses remove their
        secrets from it)."""
        return f"{type(error).__name__}: {error}"

    # ------------------------------------------------------------ the source protocol

    def health(self) -> SourceHealth:
        """Whether the source is getting prices (``/health``, ``sandtrade doctor``)."""
        return self.connection.health()

    def close(self) -> None:
        """Stop: :meth:`bars` ends at its next wait (called from the host's thread)."""
        self._closed.set()

    def bars(self) -> Iterator[Bar]:
        """Closed bars of every symbol in time order, as they come, until :meth:`close`."""
        emitted: dict[str, datetime] = {}
        try:
            while not self._closed.is_set():
                try:
                    answer = self.poll(dict(emitted))
                except PollError as e:
                    self._failed(str(e), e.retry_after)
                    continue
                except Exception as e:  # a bug's exception must not end the prices either
                    log.exception("%s: poll failed", self.connection.source)
                    self._failed(self.describe_error(e), None)
                    continue
                if self.connection.health().state == "reconnecting":
                    log.info("%s: live again", self.connection.source)
                self.connection.succeeded()
                for bar in self._fresh(answer, emitted):
                    if self._closed.is_set():
                        return
                    yield bar
                self._closed.wait(self.poll_seconds)
        finally:
            self.connection.closed()

    def _failed(self, reason: str, retry_after: float | None) -> None:
        first = self.connection.health().state != "reconnecting"
        delay = self.connection.failed(reason, retry_after=retry_after)
        # Told once when the link is lost; each retry after that is a debug line.
        (log.warning if first else log.debug)("%s: %s; trying again in %.2f s",
                                              self.connection.source, reason, delay)
        self._closed.wait(delay)

    def _fresh(self, answer: Mapping[str, list[Bar]], emitted: dict[str, datetime]
               ) -> list[Bar]:
        """The closed bars of ``answer`` not emitted yet (only the newest at the first
        answer), in time order; ``emitted`` is brought up to date."""
        now = utc_now()
        fresh: list[Bar] = []
        for symbol, bars in answer.items():
            ordered = sorted(bars, key=lambda b: b.time)
            closed = [b for i, b in enumerate(ordered)
                      if i < len(ordered) - 1 or b.time + self.interval <= now]
            last = emitted.get(symbol)
            new = closed[-1:] if last is None else [b for b in closed if b.time > last]
            if new:
                emitted[symbol] = new[-1].time
                fresh.extend(new)
        fresh.sort(key=lambda b: (b.time, b.symbol))
        return fresh
