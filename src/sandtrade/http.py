"""The host's one HTTP server: FastAPI on uvicorn, with routes contributed by plugins.

Why FastAPI/uvicorn: an ASGI server with httptools and uvloop answers several thousand small
requests a second on this 2-core machine, and FastAPI writes the OpenAPI schema of every
plugin's routes for free (``/openapi.json``, ``/docs``). The host itself serves only
``/health``; webhooks and the like come from plugins through ``sandtrade_http_routes``.

The server runs its own event loop on one thread of the host; the socket is bound before the
thread starts, so port 0 works and the port is known at once.
"""

from __future__ import annotations

import logging
import socket
import threading
from typing import Any

from sandtrade import __version__
from sandtrade.errors import SandtradeError

__all__ = ["HttpServer", "create_app"]

log = logging.getLogger(__name__)


def create_app(routers: list[Any], health: Any = None) -> Any:
    """The ASGI app: ``/health`` and the plugins' routers."""
    from fastapi import FastAPI

    app = FastAPI(title="sandtrade host", version=__version__,
                  description="HTTP side of a sandtrade host: webhooks contributed by plugins "
                              "(TradingView alerts) and the host's health.")

    @app.get("/health", tags=["host"], summary="Whether the host is up and accepting signals")
    async def get_health() -> dict[str, Any]:
        return {"status": "ok", **(health() if health else {})}

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
