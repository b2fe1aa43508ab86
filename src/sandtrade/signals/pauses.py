"""Paused routes: where signals go, switched off by a person until switched on again.

A trader whose TradingView alerts misbehave, or an operator whose live broker is down, pauses
the route instead of editing the configuration and restarting the host. A pause names one of:

- ``account:ACCOUNT``: every signal of the account, wherever it would go;
- ``paper:ACCOUNT``: signals to the account's paper broker;
- ``strategy:ACCOUNT/NAME``: signals handed to one of the account's strategies;
- ``live:BROKER``: signals to a live-broker plugin (the operator's alone: it serves every
  account).

A signal received while its route is paused is journaled as ``dropped`` with the reason (who
paused what, and when), so the timeline shows what arrived, and it is never executed later:
an alert is a decision about the market of its moment, and executing it an hour late, when
the route is resumed, would be a different trade. Signals accepted before the pause are
executed as usual. Pauses are kept in the store (host state ``signals.paused``), so they
survive a restart.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sandtrade.auth import ALL_ACCOUNTS, AuthError, Principal
from sandtrade.errors import InvalidField

if TYPE_CHECKING:
    from sandtrade.store.base import Store

__all__ = ["STATE_KEY", "Pauses", "authorize", "check_route", "visible"]

#: The host state key the pauses are kept under.
STATE_KEY = "signals.paused"

_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}"
_ROUTE = re.compile(rf"(account|paper):({_NAME})|strategy:({_NAME})/({_NAME})|live:({_NAME})")


def check_route(route: str) -> tuple[str, str | None]:
    """``(route, account)`` for a route a pause may name; the account is None for a live
    broker. Raises :class:`InvalidField` naming the forms otherwise."""
    m = _ROUTE.fullmatch(route)
    if m is None:
        raise InvalidField("route", f"{route[:80]!r} is not one a pause can name "
                           "(account:ACCOUNT, paper:ACCOUNT, strategy:ACCOUNT/NAME or "
                           "live:BROKER)")
    if m.group(5):
        return route, None
    return route, m.group(2) or m.group(3)


def authorize(principal: Principal, route: str) -> tuple[str, str]:
    """Check that ``principal`` may pause or resume ``route``: the ``trade`` scope on its
    account; a live broker's, which serves every account, the operator's alone. Returns the
    route and who pauses it, as the reason of a dropped signal names them (every door
    checks here: the dashboard's, gRPC's)."""
    route, account = check_route(route)
    if account is None:
        principal.require_scope("trade")
        if principal.account != ALL_ACCOUNTS:
            raise AuthError(f"{route} serves every account: only the operator may pause it",
                            "permission_denied")
    else:
        principal.require("trade", account)
    who = "the operator" if principal.account == ALL_ACCOUNTS else \
        f"token {principal.token_id}"
    return route, who


def visible(route: str, account: str | None) -> bool:
    """Whether a pause of ``route`` concerns ``account`` (None: every account): its own
    routes, and the live brokers, which carry every account's signals."""
    _, owner = check_route(route)
    return account is None or owner is None or owner == account


class Pauses:
    """The paused routes of a host, read once from the store and written through."""

    def __init__(self, store: Store) -> None:
        self._store = store
        #: Told of each change (``{"route", "paused", "since", "by"}`` and the route's
        #: account, None for a live broker), whichever door made it: the host's watch, so
        #: that open dashboards show it.
        self.on_change: Callable[[dict[str, Any], str | None], None] | None = None
        self._lock = threading.Lock()
        self._paused: dict[str, dict[str, Any]] = {}
        stored = store.get_state(STATE_KEY)
        if isinstance(stored, dict):
            for route, info in stored.items():
                if isinstance(route, str) and _ROUTE.fullmatch(route) and isinstance(info, dict):
                    self._paused[route] = {"since": str(info.get("since", "")),
                                           "by": str(info.get("by", ""))}

    def all(self) -> dict[str, dict[str, Any]]:
        """Every paused route: ``{route: {"since": ISO time, "by": who}}``."""
        with self._lock:
            return {k: dict(v) for k, v in self._paused.items()}

    def set(self, route: str, paused: bool, by: str) -> dict[str, Any] | None:
        """Pause or resume ``route`` (checked by :func:`check_route`); durable before it
        returns. Returns the pause, or None once resumed."""
        _, account = check_route(route)
        with self._lock:
            after = dict(self._paused)
            if paused:
                after.setdefault(route, {"since": datetime.now(UTC).isoformat(
                    timespec="seconds"), "by": by})
            else:
                after.pop(route, None)
            self._store.commit_many([], state={STATE_KEY: after})
            self._paused = after
            info = dict(after[route]) if route in after else None
        if self.on_change is not None:
            self.on_change({"route": route, "paused": info is not None,
                            "since": (info or {}).get("since", ""),
                            "by": (info or {}).get("by", "")}, account)
        return info

    def reason(self, account: str, destination: str) -> str | None:
        """Why a signal of ``account`` to ``destination`` is not executed, or None when its
        route is open."""
        if not self._paused:  # the common case, without the lock
            return None
        with self._lock:
            for route in (f"account:{account}", destination):
                info = self._paused.get(route)
                if info is not None:
                    what = ("every signal of the account" if route.startswith("account:")
                            else f"the route to {route}")
                    return (f"{what} is paused (since {info['since']}, by {info['by']}): "
                            "journaled, not executed; resume the route to execute the "
                            "signals that come after")
        return None
