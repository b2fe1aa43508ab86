"""TradingView webhook alerts, as a sandtrade plugin (found through the ``sandtrade``
entry-point group, using only :mod:`sandtrade.plugin_api`).

Routes, on the host's one HTTP server:

``POST /webhooks/tradingview/{token}``
    The alert's message is the body. The token is one ``sandtrade tokens create --account NAME
    --scope signal`` printed: TradingView cannot send headers, so it goes in the URL.
``POST /webhooks/tradingview``
    The same, with the token in a ``"passphrase"`` field of a JSON body.

Query parameters: ``dry_run=true`` answers how the body was read and what it would do,
without journaling or executing it; ``format=NAME`` picks the format instead of detecting it.

What TradingView does, and how this fits it:

* It sends ``application/json`` only when the message is valid JSON, and ``text/plain``
  otherwise (a stray trailing newline is enough): the raw body is parsed whatever the
  Content-Type says.
* It cancels a request after 3 seconds and resends up to 3 times, 5 s apart, only after a 5xx.
  So the alert is journaled durably, answered, and executed afterwards; a payload problem is
  answered with a 4xx (never a 5xx, which would be resent); a resend that does arrive is
  recognised as a duplicate. A 5xx means nothing was journaled (the store failed, or the host
  is overloaded or stopping), which is exactly when a resend is wanted.
* It posts only to ports 80 and 443: run the host behind a reverse proxy (and list it in
  ``trusted_proxies``), or give uvicorn a certificate (``sandtrade serve --http 0.0.0.0:443
  --ssl-certfile ... --ssl-keyfile ...``).

Answers: 200 ``{"id", "status", "destination", "duplicate", "reason", "orders",
"ignored_fields", "price_source"}`` once the signal is durable (``destination`` as written in
routes, e.g. ``paper:ACCOUNT``; ``reason`` only says why a duplicate, or a signal whose route
a person paused, is not executed;
``orders`` what will be done, e.g. ``[{"symbol": "AAPL", "side": "buy", "qty": 10, "type":
"market", "class": "simple"}]``, so that TradingView's alert log says it; ``ignored_fields``
the body's fields no format reads); 401/403 for a missing, wrong or unauthorised token or
address; 413 for a body over ``max_body_bytes``; 422 with ``error`` naming the problem,
including a quantity the symbol's lot size rules out (the rejected signal is journaled, its
``id`` is in the answer); 429 with ``Retry-After`` when a token sends faster than its rate
limit or its account past its signal quota; 503 with ``Retry-After`` when nothing could be
journaled.

Settings (``[plugins.tradingview]``)::

    allowlist = ["tradingview"]        # CIDRs, or the preset "tradingview" (its 4 addresses)
    trusted_proxies = ["127.0.0.1/32"] # X-Forwarded-For is believed only from these
    rate_per_minute = 120              # per token; 0 turns the limit off
    burst = 60
    max_body_bytes = 16384
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.routing import Match, Mount
from starlette.types import Receive, Scope, Send

from sandtrade.plugin_api import (
    AuthError,
    HostApi,
    Overloaded,
    Principal,
    QuotaExceeded,
    SignalStatus,
)

__all__ = ["TRADINGVIEW_ADDRESSES", "WebhookSettings", "make_router"]

#: The addresses TradingView publishes as the senders of its webhooks
#: (https://www.tradingview.com/support/solutions/43000529348).
TRADINGVIEW_ADDRESSES = ("52.89.214.238", "34.212.75.30", "54.218.53.128", "52.32.178.7")
_TOKEN_IN_BODY = re.compile(r"st_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebhookSettings(BaseModel):
    """``[plugins.tradingview]``."""

    model_config = ConfigDict(extra="forbid")

    allowlist: list[str] = Field(default_factory=list, description=(
        "Addresses (CIDR) allowed to post; the preset 'tradingview' stands for TradingView's "
        "published senders. Empty: any address (the token is the lock)."))
    trusted_proxies: list[str] = Field(default_factory=list, description=(
        "Proxies (CIDR) whose X-Forwarded-For is believed; from anyone else it is ignored."))
    rate_per_minute: float = Field(120.0, ge=0, description="Alerts per minute per token.")
    burst: int = Field(60, ge=1, description="Alerts a token may send at once.")
    max_body_bytes: int = Field(16_384, ge=64, le=1_048_576)

    @field_validator("allowlist", "trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for item in value:
            if item == "tradingview":
                continue
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is neither an address, a CIDR range nor the "
                                 "preset 'tradingview'") from None
        return value

    def networks(self, items: list[str]) -> list[Network]:
        out: list[Network] = []
        for item in items:
            if item == "tradingview":
                out += [ipaddress.ip_network(a) for a in TRADINGVIEW_ADDRESSES]
            else:
                out.append(ipaddress.ip_network(item, strict=False))
        return out


class _Bucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    """A token bucket per API token (the event loop's thread only: no lock needed)."""

    def __init__(self, per_minute: float, burst: int) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        """0 when allowed now, else the seconds until the next alert is."""
        if self.rate <= 0:
            return 0.0
        now = time.monotonic()
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket(float(self.burst), now)
        b.tokens = min(float(self.burst), b.tokens + (now - b.stamp) * self.rate)
        b.stamp = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / self.rate


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(max(1, math.ceil(extra.pop("retry_after"))))
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


_BODY_DOC = {
    "requestBody": {
        "required": True,
        "description": "The alert's message, exactly as TradingView sends it: JSON or text "
                       "(`buy 10 AAPL`), whatever the Content-Type.",
        "content": {
            "application/json": {"schema": {"type": "object"}, "example": {
                "ticker": "AAPL", "action": "buy", "contracts": 10,
                "id": "AAPL-2024-01-02T15:30:00Z"}},
            "text/plain": {"schema": {"type": "string"}, "example": "buy 10 AAPL"},
        },
    },
}


class SignalAnswer(BaseModel):
    """The answer to an accepted (or dry-run) alert."""

    id: str = Field(description="The journaled signal's id (empty for a dry run).")
    status: str = Field(description="validated (it will execute), or dropped (a duplicate, or "
                        "its route is paused)")
    destination: str = Field(description=(
        "Where it goes, as written in routes: paper:ACCOUNT, strategy:NAME, live:BROKER or "
        "drop."))
    duplicate: bool = False
    duplicate_of: str | None = None
    reason: str = Field("", description="Why it will not be executed (a duplicate, or a "
                                        "paused route: who paused it and since when); empty "
                                        "when it will be.")
    orders: list[dict[str, Any]] = Field(default_factory=list, description=(
        "What will be done, one entry per command: symbol, side (buy, sell, close, long, "
        "short, cancel), qty (null: computed when it runs, see size, or the whole position), "
        "type, class (simple, bracket, oto), and its prices."))
    ignored_fields: list[str] = Field(default_factory=list, description=(
        "Fields of the body that were not read (a typo shows here)."))
    price_source: str = Field("feed", description="Where the orders' prices come from.")
    explanation: str | None = Field(None, description="With dry_run: how it was read.")


class ErrorAnswer(BaseModel):
    """Why an alert was refused."""

    error: str
    id: str | None = Field(None, description="The journaled (rejected) signal's id.")


class Webhook:
    """The webhook's state: settings, allowlist, rate limits."""

    def __init__(self, host: HostApi) -> None:
        raw = host.plugin_settings("tradingview")
        try:
            self.settings = WebhookSettings.model_validate(raw)
        except ValidationError as e:
            err = e.errors()[0]
            key = ".".join(str(x) for x in err["loc"])
            raise ValueError(f"plugins.tradingview.{key}: {err['msg']}") from None
        self.host = host
        self.allow = self.settings.networks(self.settings.allowlist)
        self.proxies = self.settings.networks(self.settings.trusted_proxies)
        self.limiter = RateLimiter(self.settings.rate_per_minute, self.settings.burst)

    def client_address(self, request: Request) -> str:
        """The sender's address: the peer, or the last address in X-Forwarded-For that is not
        a trusted proxy (only when the peer itself is one)."""
        peer = request.client.host if request.client else ""
        if not self.proxies or not self._in(peer, self.proxies):
            return peer
        forwarded = request.headers.get("x-forwarded-for", "")
        hops = [h.strip() for h in forwarded.split(",") if h.strip()]
        for hop in reversed(hops):
            if not self._in(hop, self.proxies):
                return hop
        return hops[0] if hops else peer

    @staticmethod
    def _in(address: str, networks: list[Network]) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in networks)

    async def read_body(self, request: Request) -> str | JSONResponse:
        limit = self.settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return _error(413, f"the body is {declared} bytes; at most {limit} are accepted")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                return _error(413, f"the body is over {limit} bytes")
            chunks.append(chunk)
        data = b"".join(chunks)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError as e:
            return _error(400, f"the body is not UTF-8 text (byte {e.start} is "
                               f"0x{data[e.start]:02x})")

    async def handle(self, request: Request, token: str | None, dry_run: bool,
                     fmt: str | None) -> JSONResponse:
        if self.allow:
            address = self.client_address(request)
            if not self._in(address, self.allow):
                return _error(403, f"address {address} is not in the allowlist "
                                   "(plugins.tradingview.allowlist)")
        body = await self.read_body(request)
        if isinstance(body, JSONResponse):
            return body
        if token is None:
            token = _passphrase(body)
            if token is None:
                return _error(401, "no token: post to /webhooks/tradingview/<token>, or send "
                                   'a JSON body with a "passphrase" field holding the token')
        try:
            principal: Principal = self.host.verify_token(token, "signal")
        except AuthError as e:
            return _error(401 if e.code == "unauthenticated" else 403, str(e))
        wait = self.limiter.take(principal.token_id)
        if wait > 0:
            return _error(429, f"token {principal.token_id} sent more than "
                               f"{self.settings.rate_per_minute:g} alerts a minute "
                               "(plugins.tradingview.rate_per_minute); nothing was journaled",
                          retry_after=wait)
        # The journal keeps the body as received, but never a token.
        body = _TOKEN_IN_BODY.sub("[token]", body)
        try:
            answer = await self.host.submit_signal(body, source="tradingview",
                                                   principal=principal, fmt=fmt,
                                                   dry_run=dry_run)
        except QuotaExceeded as e:  # the account's [quotas] signals_per_second
            return _error(429, str(e), retry_after=1)
        except Overloaded as e:
            return _error(503, str(e), retry_after=5)
        except Exception as e:  # the journal could not be written: nothing was accepted
            return _error(503, f"the signal was not journaled ({type(e).__name__}: {e}); "
                               "nothing was accepted, send it again", retry_after=5)
        record = answer.record
        if record.status is SignalStatus.REJECTED:
            return _error(422, record.reason, id=record.id or None,
                          **({"explanation": answer.explanation} if dry_run else {}))
        content: dict[str, Any] = {
            "id": record.id, "status": record.status.value, "destination": record.destination,
            "duplicate": answer.duplicate, "reason": record.reason, "orders": answer.orders,
            "ignored_fields": answer.ignored_fields, "price_source": answer.price_source}
        if answer.duplicate and answer.original is not None:
            content["duplicate_of"] = answer.original.id
        if dry_run:
            content["explanation"] = answer.explanation
        return JSONResponse(content)


def _passphrase(body: str) -> str | None:
    text = body.lstrip("\ufeff").strip()
    if not text.startswith("{"):
        return None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        # A broken JSON body may still carry its passphrase: find it to name the real problem.
        m = re.search(r'"passphrase"\s*:\s*"([^"]*)"', text)
        return m.group(1) if m else None
    value = data.get("passphrase") if isinstance(data, dict) else None
    return value if isinstance(value, str) else None


class _DirectRoute(Mount):
    """The webhook's plain alerts, answered by :meth:`Webhook.handle` as a plain ASGI app:
    FastAPI's parameter solving and request wrapping cost about a tenth of an alert's host
    time under load (docs/webhook_load.md).

    It takes only what needs no parameter parsing: a POST to one of the two webhook paths with
    no query string. Anything else (``?dry_run=...``, ``?format=...``, another method, a path
    with more segments) is not matched, and falls through to the documented FastAPI routes
    after it, which answer it (and list both paths in the OpenAPI schema) as before. A mount,
    so that FastAPI keeps this class, its matching with it, where a router is included.
    """

    def __init__(self, hook: Webhook) -> None:
        super().__init__(_PREFIX, app=self._serve)
        self.hook = hook

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["query_string"]:
            return Match.NONE, {}
        path: str = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if path == _PREFIX:
            return Match.FULL, {"path_params": {}}
        if path.startswith(_PREFIX + "/"):
            token = path[len(_PREFIX) + 1:]
            if token and "/" not in token:
                return Match.FULL, {"path_params": {"token": token}}
        return Match.NONE, {}

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        response = await self.hook.handle(request, scope["path_params"].get("token"), False,
                                          None)
        await response(scope, receive, send)


_PREFIX = "/webhooks/tradingview"


def make_router(host: HostApi) -> APIRouter:
    """The webhook routes."""
    hook = Webhook(host)
    router = APIRouter(tags=["tradingview"])
    router.routes.append(_DirectRoute(hook))  # first: what it takes, it answers
    responses: dict[int | str, dict[str, Any]] = {
        code: {"model": ErrorAnswer, "description": text} for code, text in (
            (400, "The body is not UTF-8 text."), (401, "No token, or not a valid one."),
            (403, "The token lacks the signal scope, or the address is not allowed."),
            (413, "The body is too large."),
            (422, "The body was read and refused: `error` says why (journaled as rejected)."),
            (429, "Too many alerts from this token: see Retry-After."),
            (503, "Nothing was journaled (overload, shutdown, store failure): send again."))}

    @router.post("/webhooks/tradingview/{token}", response_model=SignalAnswer,
                 responses=responses, openapi_extra=_BODY_DOC,
                 summary="A TradingView alert, the token in the path")
    async def with_token(token: str, request: Request, dry_run: bool = False,
                         format: str | None = None) -> JSONResponse:
        return await hook.handle(request, token, dry_run, format)

    @router.post("/webhooks/tradingview", response_model=SignalAnswer, responses=responses,
                 openapi_extra=_BODY_DOC,
                 summary='A TradingView alert, the token in a JSON "passphrase" field')
    async def with_passphrase(request: Request, dry_run: bool = False,
                              format: str | None = None) -> JSONResponse:
        return await hook.handle(request, None, dry_run, format)

    return router

