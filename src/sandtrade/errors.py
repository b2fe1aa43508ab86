"""Errors a person can act on.

Every error raised at a boundary (a file that does not load, a strategy that fails, an order the
broker refuses) is a :class:`SandtradeError` whose message says what was wrong, where, and what
would be right. The CLI prints the message alone, without a traceback.

They live on the floor because every room raises them; transport alone decides what each becomes
on the wire (``sandtrade.rpc.errors`` maps them to gRPC status codes).
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["CheckFailed", "Conflict", "DataError", "Diagnostic", "InvalidField", "NotFound",
           "OrderRejected", "QuotaExceeded", "SandtradeError", "StoreError", "StrategyError"]


class SandtradeError(Exception):
    """Base of every error meant to be shown to a user as it is."""


class DataError(SandtradeError):
    """Market data that cannot be used: names the file, the line and the column."""


class StrategyError(SandtradeError):
    """A strategy file that cannot be loaded or that failed while running: names file:line."""


class Diagnostic(NamedTuple):
    """One problem a strategy check found: file, 1-based line (0: the whole file), message."""

    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}" if self.line else \
            f"{self.file}: {self.message}"


class CheckFailed(StrategyError):
    """A strategy fails the sandbox check; ``diagnostics`` lists every problem found."""

    def __init__(self, what: str, diagnostics: list[Diagnostic]) -> None:
        super().__init__(f"{what} fails the check:\n" + "\n".join(map(str, diagnostics)))
        self.diagnostics = diagnostics


class OrderRejected(SandtradeError):
    """The broker refused an order; ``reason`` says why in plain words."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class StoreError(SandtradeError):
    """The store cannot be opened or migrated."""


class InvalidField(SandtradeError):
    """A request field holds something invalid; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class NotFound(SandtradeError):
    """The named thing does not exist."""


class Conflict(SandtradeError):
    """The request is valid but the thing it acts on is not in a state that allows it."""


class QuotaExceeded(SandtradeError):
    """A request over one of the host's quotas (orders per second, open orders, ...): refused
    before it did anything; ``quota`` names the setting, ``subject`` whose quota it is."""

    def __init__(self, message: str, *, quota: str, subject: str) -> None:
        super().__init__(message)
        self.quota = quota
        self.subject = subject
