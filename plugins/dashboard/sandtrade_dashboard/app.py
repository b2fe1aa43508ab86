"""The dashboard's routes on the host's one HTTP server (using only :mod:`sandtrade.plugin_api`).

Pages
    ``GET /`` and ``GET /dashboard``: the sign-in page (one field, the token) until a token
    signs in, then the dashboard itself: plain HTML and JavaScript from ``static/`` with
    TradingView's lightweight-charts 4.2.3 (Apache-2.0, its licence beside it), all served by
    the host. Every answer carries a Content-Security-Policy that lets a page load, connect
    and post to this host only.
Sign-in
    ``POST /dashboard/signin`` (a form: ``token``) checks the token and answers with a session
    cookie: HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it),
    Secure over HTTPS. The token stays in the host's memory with the session; it is never put
    in a URL or in the page. ``POST /dashboard/signout`` ends the session. A session lasts
    ``session_hours`` (12) and ends at once when its token is revoked.
Reads
    ``GET /dashboard/api/...``: what the session's token may read (its account's, or every
    account's for the operator, who picks one with ``?account=``), as JSON.
Actions
    ``POST /dashboard/api/...``: cancel an order, close a position, start or stop a strategy,
    pause or resume a signal route.
    Each needs the scope the gRPC API asks for (``trade``; ``admin`` for strategies) and the
    session's CSRF token in an ``X-CSRF-Token`` header (a synchronizer token, given to the
    page by ``/dashboard/api/me``); without it the answer is 403 and nothing is done.
Live updates
    ``GET /dashboard/events``: server-sent events from the host's one numbered log of changes
    (:meth:`HostApi.events_after`), each with its ``id``. A browser that reconnects sends
    ``Last-Event-ID`` and gets what it missed; one that fell further behind than the log
    keeps gets a ``reset`` event and reads the state afresh. Each stream reads the shared log
    at its own pace, so a slow browser never holds up the host, and writes at most every
    :data:`WRITE_EVERY` seconds (an event after a quiet spell at once).

Settings (``[plugins.dashboard]``)::

    session_hours = 12
    max_streams = 200      # event streams open at once, over all sessions
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from sandtrade.plugin_api import (
    ALL_ACCOUNTS,
    AuthError,
    Conflict,
    HostApi,
    InvalidField,
    NotFound,
    Principal,
    QuotaExceeded,
)

__all__ = ["COOKIE", "CSP", "make_router"]

COOKIE = "sandtrade_session"
#: Seconds between two writes of one event stream at least: a busy host's events go in
#: batches, a chunk for the browser to parse and a send for the host, not one per event.
WRITE_EVERY = 0.05
#: Everything from this host, nothing from anywhere else; no inline script or style.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; object-src 'none'")
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
            "Cache-Control": "no-store"}
#: The files under static/ and their media types (nothing else is served from there).
_STATIC = {"app.js": "text/javascript", "app.css": "text/css",
           "lightweight-charts.standalone.production.js": "text/javascript",
           "lightweight-charts.LICENSE.txt": "text/plain", "favicon.svg": "image/svg+xml"}


@dataclass
class Session:
    """A signed-in browser: its token (kept here only), the principal and the CSRF token."""

    token: str
    principal: Principal
    csrf: str
    expires: float
    streams: int = 0
    created: float = field(default_factory=time.time)


class Sessions:
    """Sessions by id, in memory (a restarted host asks everyone to sign in again)."""

    def __init__(self, host: HostApi, hours: float) -> None:
        self.host = host
        self.seconds = hours * 3600
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, token: str) -> tuple[str, Session]:
        principal = self.host.verify_token(token, "read")
        sid = secrets.token_urlsafe(32)
        session = Session(token, principal, secrets.token_urlsafe(32),
                          time.time() + self.seconds)
        with self._lock:
            now = time.time()
            for key in [k for k, s in self._by_id.items() if s.expires < now]:
                del self._by_id[key]
            self._by_id[sid] = session
        return sid, session

    def get(self, request: Request) -> Session | None:
        """The request's session, when it has a live one whose token is still valid."""
        sid = request.cookies.get(COOKIE)
        if not sid:
            return None
        with self._lock:
            session = self._by_id.get(sid)
        if session is None or session.expires < time.time():
            return None
        try:  # a revoked token ends its sessions (the authority caches for a second)
            self.host.verify_token(session.token, "read")
        except AuthError:
            self.close(sid)
            return None
        return session

    def close(self, sid: str) -> None:
        with self._lock:
            self._by_id.pop(sid, None)


def _static(name: str) -> bytes:
    return (files("sandtrade_dashboard") / "static" / name).read_bytes()


def _page(name: str) -> str:
    return (files("sandtrade_dashboard") / "static" / name).read_text(encoding="utf-8")


def _json(data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=_HEADERS)


def _error(status: int, message: str) -> JSONResponse:
    return _json({"error": message}, status)


def _signin_page(message: str = "", status: int = 200) -> HTMLResponse:
    """The sign-in page, with ``message`` (why the last try failed) when there is one."""
    html = _page("signin.html")
    # The message is ours (an AuthError's text names a token id at most), escaped anyway.
    from html import escape

    html = html.replace("<!--message-->", f'<p class="error" role="alert">{escape(message)}</p>'
                        if message else "")
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def make_router(host: HostApi) -> APIRouter:
    """The dashboard's routes."""
    settings = host.plugin_settings("dashboard")
    try:
        hours = float(settings.get("session_hours", 12))
        max_streams = int(settings.get("max_streams", 200))
    except (TypeError, ValueError) as e:
        raise ValueError(f"plugins.dashboard: {e}") from None
    if hours <= 0 or max_streams < 1:
        raise ValueError("plugins.dashboard: session_hours must be > 0 and max_streams >= 1")
    sessions = Sessions(host, hours)
    streams = {"open": 0}
    router = APIRouter(include_in_schema=False)

    async def index(request: Request) -> Response:
        if sessions.get(request) is None:
            return _signin_page()
        return HTMLResponse(_page("index.html"), headers=_HEADERS)

    router.add_api_route("/", index, methods=["GET"])
    router.add_api_route("/dashboard", index, methods=["GET"])

    @router.get("/dashboard/static/{name}")
    async def static(name: str) -> Response:
        media = _STATIC.get(name)
        if media is None:
            return _error(404, f"no file {name!r} here")
        return Response(_static(name), media_type=media,
                        headers={**_HEADERS, "Cache-Control": "public, max-age=3600"})

    @router.post("/dashboard/signin")
    async def signin(request: Request) -> Response:
        # A form of one field: read here (starlette's form parsing needs python-multipart).
        raw = await request.body()
        if len(raw) > 4096:
            return _signin_page("The form is too large.", 413)
        token = (parse_qs(raw.decode("utf-8", "replace")).get("token") or [""])[0].strip()
        if not token:
            return _signin_page("Paste a token (sandtrade tokens create ...).")
        try:
            sid, _ = await run_in_threadpool(sessions.open, token)
        except AuthError as e:
            # 200: the page is the answer (a 4xx would read as a broken page in a console).
            return _signin_page(f"Not signed in: {e}")
        answer = RedirectResponse("/dashboard", status_code=303, headers=_HEADERS)
        answer.set_cookie(COOKIE, sid, max_age=int(hours * 3600), path="/", httponly=True,
                          samesite="strict", secure=request.url.scheme == "https")
        return answer

    def checked(request: Request) -> Session | JSONResponse:
        """The session of a state-changing request, with its CSRF token checked."""
        session = sessions.get(request)
        if session is None:
            return _error(401, "not signed in")
        sent = request.headers.get("x-csrf-token", "")
        if not sent or not hmac.compare_digest(sent, session.csrf):
            return _error(403, "missing or wrong CSRF token (X-CSRF-Token): nothing was done")
        origin = request.headers.get("origin")
        if origin and origin != f"{request.url.scheme}://{request.url.netloc}":
            return _error(403, f"a request from {origin} is not taken: nothing was done")
        return session

    @router.post("/dashboard/signout")
    async def signout(request: Request) -> Response:
        session = checked(request)
        if isinstance(session, JSONResponse):
            return session
        sessions.close(request.cookies.get(COOKIE, ""))
        answer = _json({"signed_out": True})
        answer.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
        return answer

    async def call(request: Request, fn: Callable[[Session], Any], *,
                   action: bool = False) -> Response:
        """Run ``fn(session)`` on a worker thread; host errors become JSON answers."""
        session: Session | JSONResponse | None
        session = checked(request) if action else sessions.get(request)
        if session is None:
            return _error(401, "not signed in")
        if isinstance(session, JSONResponse):
            return session
        chosen = session
        try:
            return _json(await run_in_threadpool(fn, chosen))
        except AuthError as e:
            return _error(401 if e.code == "unauthenticated" else 403, str(e))
        except NotFound as e:
            return _error(404, str(e))
        except (Conflict, QuotaExceeded) as e:
            return _error(409, str(e))
        except InvalidField as e:
            return _error(400, str(e))
        except Exception as e:  # an order the broker refuses says why
            if type(e).__name__ in ("OrderRejected", "StrategyError", "CheckFailed"):
                return _error(409, str(e))
            raise

    def account_of(request: Request, session: Session) -> str:
        wanted = request.query_params.get("account", "")
        if session.principal.account != ALL_ACCOUNTS:
            return wanted or session.principal.account
        if wanted:
            return wanted
        accounts = host.accounts(session.principal)
        return accounts[0] if accounts else ""

    @router.get("/dashboard/api/me")
    async def me(request: Request) -> Response:
        def read(s: Session) -> dict[str, Any]:
            p = s.principal
            return {"token_id": p.token_id, "account": p.account,
                    "operator": p.account == ALL_ACCOUNTS, "scopes": sorted(p.scopes),
                    "can_trade": p.has("trade"), "can_admin": p.has("admin"),
                    "accounts": host.accounts(p), "csrf": s.csrf,
                    "mode": host.trading_mode(), "symbols": host.symbols(),
                    "last_event_id": host.last_event_id()}
        return await call(request, read)

    def reader(name: str) -> Callable[[Request], Any]:
        async def route(request: Request) -> Response:
            def read(s: Session) -> Any:
                account = account_of(request, s)
                if name == "account":
                    return host.account(s.principal, account)
                if name == "curve":
                    return host.equity_curve(s.principal, account)
                if name == "orders":
                    return host.orders(s.principal, account)
                if name == "fills":
                    return host.fills(s.principal, account)
                if name == "signals":
                    return host.signals(s.principal, account)
                if name == "strategies":
                    return host.strategies(s.principal, account)
                if name == "logs":
                    return host.strategy_logs(s.principal, account,
                                              request.query_params.get("name", ""))
                if name == "groups":
                    return host.position_groups(s.principal, account)
                if name == "routes":
                    return host.routes(s.principal, account)
                if name == "plots":
                    return host.strategy_plots(s.principal, account,
                                               request.query_params.get("symbol", ""))
                if name == "performance":  # the back-test's definitions, by the same code
                    return host.performances(s.principal, account)
                return host.bars(s.principal, request.query_params.get("symbol", ""),
                                 request.query_params.get("interval", ""))
            return await call(request, read)
        return route

    for name in ("account", "curve", "orders", "fills", "signals", "strategies", "logs",
                 "performance", "groups", "plots", "routes", "bars"):
        router.add_api_route(f"/dashboard/api/{name}", reader(name), methods=["GET"])

    @router.post("/dashboard/api/orders/{order_id}/cancel")
    async def cancel(order_id: str, request: Request) -> Response:
        return await call(request, lambda s: host.cancel_order(s.principal, order_id),
                          action=True)

    @router.post("/dashboard/api/positions/{symbol}/close")
    async def close(symbol: str, request: Request) -> Response:
        return await call(request, lambda s: host.close_position(
            s.principal, account_of(request, s), symbol), action=True)

    @router.post("/dashboard/api/strategies/{name}/{verb}")
    async def strategy(name: str, verb: str, request: Request) -> Response:
        if verb not in ("start", "stop"):
            return _error(404, f"no action {verb!r}: start or stop")
        return await call(request, lambda s: host.set_strategy_running(
            s.principal, account_of(request, s), name, verb == "start"), action=True)

    @router.post("/dashboard/api/routes/{verb}")
    async def route(verb: str, request: Request) -> Response:
        if verb not in ("pause", "resume"):
            return _error(404, f"no action {verb!r}: pause or resume")
        return await call(request, lambda s: host.set_route_paused(
            s.principal, request.query_params.get("route", ""), verb == "pause"), action=True)

    @router.get("/dashboard/events")
    async def events(request: Request) -> Response:
        session = sessions.get(request)
        if session is None:
            return _error(401, "not signed in")
        if streams["open"] >= max_streams:
            return _error(503, f"{max_streams} event streams are open already "
                               "(plugins.dashboard.max_streams)")
        wanted = request.query_params.get("account") or None
        principal = session.principal
        if wanted is not None:
            try:
                principal.require("read", wanted)
            except AuthError as e:
                return _error(403, str(e))
        last_header = request.headers.get("last-event-id") or \
            request.query_params.get("after", "")
        last = int(last_header) if last_header.isdigit() else host.last_event_id()
        return StreamingResponse(_stream(host, sessions, request, principal, wanted, last,
                                         streams),
                                 media_type="text/event-stream",
                                 headers={**_HEADERS, "X-Accel-Buffering": "no"})

    return router


async def _stream(host: HostApi, sessions: Sessions, request: Request, principal: Principal,
                  account: str | None, last: int, streams: dict[str, int]
                  ) -> AsyncIterator[str]:
    """One browser's events: what it missed since ``last``, then each as it comes."""
    streams["open"] += 1
    loop = asyncio.get_running_loop()
    written = 0.0
    try:
        yield "retry: 1000\n\n"
        while True:
            # At most one write every WRITE_EVERY seconds: what came meanwhile goes in the next
            # one. An event after a quiet spell goes at once; a busy host's go in batches, each
            # a single chunk to parse for the browser and a single send for the host.
            pause = written + WRITE_EVERY - loop.time()
            if pause > 0:
                await asyncio.sleep(pause)
            if sessions.get(request) is None:
                yield "event: signedout\ndata: {}\n\n"
                return
            events, upto, gap = host.events_after(principal, last, account)
            if gap:
                yield f"id: {upto}\nevent: reset\ndata: {{}}\n\n"
            if events:  # one write for all of them: ten browsers cost ten writes, not more
                written = loop.time()
                yield "".join(f"id: {e.id}\nevent: {e.kind}\ndata: {e.text}\n\n"
                              for e in events)
            elif upto != last:
                yield f"id: {upto}\n: nothing of yours\n\n"
            last = upto
            if not events and not gap:
                before = host.last_event_id()
                await host.wait_events(last, 15.0)
                if host.last_event_id() == before:
                    yield ": keep-alive\n\n"
    except asyncio.CancelledError:
        raise
    finally:
        streams["open"] -= 1
