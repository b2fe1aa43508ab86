"""API tokens: creation, hashed storage, verification and scopes.

A token reads ``st_<id>_<secret>``. The store keeps the id, the account, the scopes and the
SHA-256 of the secret, never the secret: a copy of the database gives no one a usable token.
The secret has 256 bits of entropy, so a plain (unsalted) hash is enough, and verification
compares hashes in constant time.

Scopes: ``read`` (market data, orders, positions, account), ``trade`` (submit and cancel
orders), ``signal`` (send signals, e.g. as a TradingView webhook token), ``admin`` (all of
them, plus uploading, starting and stopping strategies). A token acts for its one account;
an ``admin`` token created for the account ``*`` acts for every account (the operator's).

Each sandbox run gets an *ephemeral* token that lives only in the host's memory, for its
strategy's account and the ``read``/``trade`` scopes, revoked when the run ends.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from sandtrade.errors import SandtradeError
from sandtrade.store.base import ApiToken, Store

__all__ = ["ALL_ACCOUNTS", "SCOPES", "AuthError", "Principal", "TokenAuthority",
           "parse_scopes"]

SCOPES = ("read", "trade", "signal", "admin")
ALL_ACCOUNTS = "*"
#: How long a verified token is trusted without asking the store again: a revocation made by
#: another process (``sandtrade tokens revoke``) takes effect within this many seconds.
CACHE_SECONDS = 1.0
_TOKEN_RE = re.compile(r"st_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
ACCOUNT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class AuthError(SandtradeError):
    """A token is missing, malformed, unknown, revoked, or lacks a scope or an account.

    ``code`` is ``"unauthenticated"`` (who are you?) or ``"permission_denied"`` (not allowed).
    """

    def __init__(self, message: str, code: str = "unauthenticated") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a verified token speaks for."""

    token_id: str
    account: str
    scopes: frozenset[str]
    ephemeral: bool = False

    def has(self, scope: str) -> bool:
        return scope in self.scopes or "admin" in self.scopes

    def require_scope(self, scope: str) -> None:
        """Check the scope alone (for what belongs to no account, such as market data)."""
        if not self.has(scope):
            raise AuthError(
                f"token {self.token_id} lacks the {scope!r} scope (it has: "
                f"{', '.join(sorted(self.scopes))})", "permission_denied")

    def require(self, scope: str, account: str | None = None) -> str:
        """Check the scope and the account (the token's own when None); returns the account
        acted for."""
        self.require_scope(scope)
        target = account or self.account
        if target == ALL_ACCOUNTS:
            raise AuthError("name an account: this token acts for every account",
                            "permission_denied")
        if self.account != ALL_ACCOUNTS and target != self.account:
            raise AuthError(f"token {self.token_id} acts for account {self.account!r}, "
                            f"not {target!r}", "permission_denied")
        return target


def parse_scopes(text: str) -> tuple[str, ...]:
    """``"read,trade"`` -> ``("read", "trade")``; unknown or empty scopes are an error."""
    scopes = tuple(dict.fromkeys(s.strip() for s in text.split(",") if s.strip()))
    if not scopes:
        raise AuthError(f"no scope given (choose from: {', '.join(SCOPES)})",
                        "invalid_argument")
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise AuthError(f"unknown scope {unknown[0]!r} (choose from: {', '.join(SCOPES)})",
                        "invalid_argument")
    return scopes


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenAuthority:
    """Creates, verifies and revokes tokens against a store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Principal, str]] = {}
        self._ephemeral: dict[str, tuple[Principal, str]] = {}

    def create(self, account: str, scopes: tuple[str, ...] | str,
               label: str | None = None) -> tuple[ApiToken, str]:
        """A new stored token; returns its record and the token text (shown once)."""
        if isinstance(scopes, str):
            scopes = parse_scopes(scopes)
        if account == ALL_ACCOUNTS:
            if "admin" not in scopes:
                raise AuthError("a token for every account ('*') needs the admin scope",
                                "invalid_argument")
        elif not ACCOUNT_RE.fullmatch(account):
            raise AuthError(
                f"account name {account!r} is not allowed: use 1-64 letters, digits, '_', '.' "
                "or '-', starting with a letter or digit", "invalid_argument")
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        record = ApiToken(id=token_id, account=account, scopes=tuple(scopes),
                          secret_hash=_hash(secret), created_at=datetime.now(UTC), label=label)
        self._store.save_token(record)
        return record, f"st_{token_id}_{secret}"

    def issue_ephemeral(self, account: str, scopes: tuple[str, ...] = ("read", "trade")
                        ) -> tuple[Principal, str]:
        """A token kept in memory only (a sandbox run's); revoke it with :meth:`revoke`."""
        token_id = secrets.token_hex(8)
        secret = secrets.token_urlsafe(32)
        principal = Principal(token_id, account, frozenset(scopes), ephemeral=True)
        with self._lock:
            self._ephemeral[token_id] = (principal, _hash(secret))
        return principal, f"st_{token_id}_{secret}"

    def revoke(self, token_id: str) -> bool:
        """Revoke a stored or ephemeral token; False when it was unknown or revoked already."""
        with self._lock:
            self._cache.pop(token_id, None)
            if self._ephemeral.pop(token_id, None) is not None:
                return True
        return self._store.revoke_token(token_id, datetime.now(UTC))

    def verify(self, token: str) -> Principal:
        """The principal a token speaks for; :class:`AuthError` when it speaks for no one."""
        m = _TOKEN_RE.fullmatch(token)
        if m is None:
            raise AuthError("malformed token: expected 'st_<16 hex digits>_<43 characters>'")
        token_id, secret = m.groups()
        digest = _hash(secret)
        now = time.monotonic()
        with self._lock:
            eph = self._ephemeral.get(token_id)
            if eph is not None:
                if hmac.compare_digest(eph[1], digest):
                    return eph[0]
                raise AuthError(f"token {token_id}: wrong secret")
            cached = self._cache.get(token_id)
        if cached is not None and now - cached[0] < CACHE_SECONDS:
            if hmac.compare_digest(cached[2], digest):
                return cached[1]
            raise AuthError(f"token {token_id}: wrong secret")
        record = self._store.get_token(token_id)
        if record is None or not hmac.compare_digest(record.secret_hash, digest):
            raise AuthError(f"token {token_id} is not a valid token")
        if record.revoked_at is not None:
            raise AuthError(f"token {token_id} was revoked at {record.revoked_at:%Y-%m-%d %H:%M}"
                            " UTC")
        principal = Principal(record.id, record.account, frozenset(record.scopes))
        with self._lock:
            self._cache[token_id] = (now, principal, record.secret_hash)
        return principal
