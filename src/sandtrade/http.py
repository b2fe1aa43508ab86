"""The host's one HTTP server: FastAPI on uvicorn, with routes contributed by plugins.

Why FastAPI/uvicorn: an ASGI server with httptools and uvloop answers several thousand small
requests a second on this 2-core machine, and FastAPI writes the OpenAPI schema of every
plugin's routes for free (``/openapi.json``, ``/docs``). The host itself serves only
``/health`` and the docs pages; webhooks and the like come from plugins through
``sandtrade_http_routes``.

The docs pages (``/docs``, Swagger UI; ``/redoc``) load their scripts and styles from this
server, from the builds the ``fastapi-offline`` package ships (FastAPI's own pages load them
from a CDN, and offline they are blank): like the reports, nothing is fetched from elsewhere.

The server runs its own event loop on one thread of the host; the socket is bound before the
thread starts, so port 0 works and the port is known at once.
"""

from __future__ import annotations

import functools
import logging
import socket
import threading
import time
from collections.abc import Callable
from importlib.resources import files
from typing import Any

from sandtrade import __version__
from sandtrade.errors import SandtradeError

__all__ = ["DOCS_ASSETS", "HttpServer", "create_app"]

log = logging.getLogger(__name__)

#: Where the docs pages' own scripts, styles and icon are served.
DOCS_ASSETS = "/docs/assets"
#: The files served there (all from the fastapi-offline package), with their media types.
_ASSET_TYPES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
                "redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}


@functools.cache
def _asset(name: str) -> bytes:
    """One docs asset's bytes, read once (2.8 MB for all four, and only if a page is viewed)."""
    return (files("fastapi_offline") / "static" / name).read_bytes()


class _TimedWebhooks:
    """ASGI middleware: the time from a webhook request's arrival to the start of its answer,
    handed to ``observe`` (seconds)."""

    def __init__(self, app: Any, observe: Callable[[float], None]) -> None:
        self.app = app
        self.observe = observe

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).startswith("/webhooks/"):
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()

        async def timed_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.observe(time.perf_counter() - began)
            await send(message)

        await self.app(scope, receive, timed_send)


def create_app(routers: list[Any], health: Any = None,
               metrics: Callable[[str | None, str | None], tuple[int, bytes, str]] | None = None,
               observe_webhook: Callable[[float], None] | None = None) -> Any:
    """The ASGI app: ``/health``, the docs pages with their assets, and the plugins' routers;
    ``/metrics`` when ``metrics`` is given (called, off the event loop, with the request's
    Authorization header and client address: status, body and media type), and the webhooks'
    answer times handed to ``observe_webhook``."""
    from fastapi import FastAPI
    from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    app = FastAPI(title="sandtrade host", version=__version__,
                  description="HTTP side of a sandtrade host: webhooks contributed by plugins "
                              "(TradingView alerts) and the host's health.",
                  docs_url=None, redoc_url=None)  # FastAPI's own pages load from a CDN

    @app.get("/health", tags=["host"], summary="Whether the host is up and accepting signals")
    async def get_health() -> dict[str, Any]:
        return {"status": "ok", **(health() if health else {})}

    def local(request: Request, path: str) -> str:
        # Behind a proxy that mounts the host under a prefix, FastAPI's root_path has it.
        return str(request.scope.get("root_path", "")).rstrip("/") + path

    # Plain Starlette routes: they take the request as it is and stay out of the schema.
    async def docs(request: Request) -> Response:
        return get_swagger_ui_html(
            openapi_url=local(request, app.openapi_url or "/openapi.json"),
            title=f"{app.title} - Swagger UI",
            swagger_js_url=local(request, f"{DOCS_ASSETS}/swagger-ui-bundle.js"),
            swagger_css_url=local(request, f"{DOCS_ASSETS}/swagger-ui.css"),
            swagger_favicon_url=local(request, f"{DOCS_ASSETS}/favicon.png"),
            # Swagger UI would otherwise show a badge fetched from validator.swagger.io, which
            # is given the schema's URL.
            swagger_ui_parameters={"validatorUrl": None})

    async def redoc(request: Request) -> Response:
        return get_redoc_html(
            openapi_url=local(request, app.openapi_url or "/openapi.json"),
            title=f"{app.title} - ReDoc",
            redoc_js_url=local(request, f"{DOCS_ASSETS}/redoc.standalone.js"),
            redoc_favicon_url=local(request, f"{DOCS_ASSETS}/favicon.png"),
            with_google_fonts=False)

    async def docs_asset(request: Request) -> Response:
        name = str(request.path_params["name"])
        media_type = _ASSET_TYPES.get(name)
        if media_type is None:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return Response(_asset(name), media_type=media_type,
                        headers={"Cache-Control": "public, max-age=86400"})

    app.add_route("/docs", docs, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_route("/redoc", redoc, methods=["GET", "HEAD"], include_in_schema=False)
    app.add_route(DOCS_ASSETS + "/{name}", docs_asset, methods=["GET", "HEAD"],
                  include_in_schema=False)

    if metrics is not None:
        from starlette.concurrency import run_in_threadpool

        async def get_metrics(request: Request) -> Response:
            status, body, media = await run_in_threadpool(
                metrics, request.headers.get("authorization"),
                request.client.host if request.client else None)
            return Response(body, status, media_type=media)

        app.add_route("/metrics", get_metrics, methods=["GET"], include_in_schema=False)
    if observe_webhook is not None:
        app.add_middleware(_TimedWebhooks, observe=observe_webhook)
    for router in routers:
        app.include_router(router)
    return app


class HttpServer:
    """uvicorn serving ``app`` on ``address`` (HOST:PORT), on its own thread."""

    def __init__(self, app: Any, address: str, *, ssl_certfile: str | None = None,
                 ssl_keyfile: str | None = None) -> None:
        import uvicorn

        host, sep, port = address.rpartition(":")
        if not sep or not port.isdigit():
            raise SandtradeError(f"http: {address!r} is not HOST:PORT (e.g. 127.0.0.1:8000)")
        host = host.strip("[]") or "127.0.0.1"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, int(port)))
        except OSError as e:
            self._sock.close()
            raise SandtradeError(f"http: cannot listen on {address}: {e.strerror} (is another "
                                 "host running? choose another port with --http)") from None
        self._sock.listen(2048)
        self.host = host
        self.port = self._sock.getsockname()[1]
        self.scheme = "https" if ssl_certfile else "http"
        # proxy_headers=False: uvicorn would otherwise believe X-Forwarded-For from loopback
        # and rewrite the client address before a plugin sees it; plugins decide whom to
        # trust (the TradingView plugin's trusted_proxies).
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_keep_alive=30, ssl_certfile=ssl_certfile,
                                ssl_keyfile=ssl_keyfile, server_header=False,
                                proxy_headers=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def start(self, timeout: float = 10.0) -> HttpServer:
        self._thread.start()
        for _ in range(int(timeout / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            threading.Event().wait(0.01)
        if not self._server.started:
            raise SandtradeError(f"http: the server on {self.url} did not start")
        log.info("HTTP server on %s", self.url)
        return self

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])  # uvloop when installed
        except Exception:
            log.exception("the HTTP server stopped")

    def stop(self, timeout: float = 5.0) -> None:
        self._server.should_exit = True
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._server.force_exit = True
            self._thread.join(timeout)
        self._sock.close()
