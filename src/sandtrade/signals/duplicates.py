"""Which signals are repeats: the same idempotency key again, or a sender's resend.

A key is remembered per account for ``duplicate_window`` seconds. A sender that cannot give
keys (TradingView) is deduplicated on its body instead: the same body from the same token for
the same account within ``resend_window`` seconds is a resend. Programs give keys (the client
always does), and may well send "buy 1 AAPL" twice on purpose, so only the sources in
:data:`RESEND_SOURCES` are.

The index lives in memory and is rebuilt from the journal's recent keys when the host starts,
so a repeat is caught across a restart too.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sandtrade.signals.settings import SignalSettings

if TYPE_CHECKING:
    from sandtrade.store.base import Store

__all__ = ["RESEND_SOURCES", "DuplicateIndex", "resend_hash"]

#: Sources whose identical bodies within ``resend_window`` are resends (they send no keys).
RESEND_SOURCES = frozenset({"tradingview"})


def resend_hash(source: str, token_id: str | None, account: str, body: str) -> str | None:
    """What a body without a key is known by as a resend, or None for a source that is not
    in :data:`RESEND_SOURCES`."""
    if source not in RESEND_SOURCES:
        return None
    return hashlib.sha256(f"{token_id or ''}\0{account}\0{body.strip()}".encode()).hexdigest()


class DuplicateIndex:
    """Recent keys and resend hashes, each with the signal it belongs to, oldest first.

    Not locked: the pipeline calls it under its own lock.
    """

    def __init__(self, settings: SignalSettings) -> None:
        self.settings = settings
        # (account, key) -> (id, ts); hash -> (id, ts); oldest first
        self._keys: OrderedDict[tuple[str, str], tuple[str, float]] = OrderedDict()
        self._hashes: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def load(self, store: Store) -> None:
        """Remember the keys and hashes the journal holds from within the windows."""
        window = max(self.settings.duplicate_window, self.settings.resend_window)
        since = datetime.now(UTC) - timedelta(seconds=window)
        for account, key, body_hash, sid, ts in store.recent_signal_keys(since):
            if key is not None:
                self._keys[(account, key)] = (sid, ts)
            if body_hash is not None:
                self._hashes[body_hash] = (sid, ts)

    def find(self, account: str, key: str | None, body_hash: str | None,
             now: float) -> tuple[str | None, str]:
        """The id of the signal this one repeats and why, or ``(None, "")``."""
        self._prune(now)
        if key is not None:
            hit = self._keys.get((account, key))
            if hit is not None:
                return hit[0], f"the same id {key!r}"
        if body_hash is not None and key is None and self.settings.resend_window > 0:
            hit = self._hashes.get(body_hash)
            if hit is not None and now - hit[1] <= self.settings.resend_window:
                return hit[0], f"the same body from the same sender {now - hit[1]:.1f} s " \
                               "later: a resend"
        return None, ""

    def add(self, account: str, key: str | None, body_hash: str | None, signal_id: str,
            now: float) -> str | None:
        """Remember a signal that is not a repeat; returns the body hash to journal with it
        (None when it is not known by one)."""
        if key is not None:
            self._keys[(account, key)] = (signal_id, now)
        if body_hash is not None and self.settings.resend_window > 0:
            self._hashes[body_hash] = (signal_id, now)
            return body_hash
        return None

    def forget(self, ids: set[str]) -> None:
        """Forget the keys and hashes of these signals (the journal could not store them)."""
        for key in [k for k, (sid, _) in self._keys.items() if sid in ids]:
            self._keys.pop(key)
        for h in [k for k, (sid, _) in self._hashes.items() if sid in ids]:
            self._hashes.pop(h)

    def _prune(self, now: float) -> None:
        for index, window in ((self._keys, self.settings.duplicate_window),
                              (self._hashes, self.settings.resend_window)):
            while index:
                k, (_, ts) = next(iter(index.items()))
                if now - ts <= window:
                    break
                index.pop(k)  # type: ignore[call-overload]
