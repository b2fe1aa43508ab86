"""Local fakes of the outside world: an exchange speaking Binance's public REST API (as ccxt
calls it) and Alpaca's Market Data API v2, each a real HTTP server on 127.0.0.1 that a test
can take down, bring back on the same port, or make answer 5xx, 429, slowly or with nonsense.

The shapes are the documented ones: Binance's ``GET /api/v3/exchangeInfo`` and ``GET
/api/v3/klines`` (``[openTime, "open", "high", "low", "close", "volume", closeTime, ...]``
arrays, oldest first, ``startTime``/``limit`` honoured); Alpaca's ``GET /v2/stocks/bars``
(``{"bars": {"AAPL": [{"t", "o", "h", "l", "c", "v", "n", "vw"}]}, "next_page_token"}``) and
``GET /v2/stocks/bars/latest`` (``{"bars": {"AAPL": {...}}}``), with its key headers checked.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeAlpaca", "FakeBinance", "Fault", "minute_ago"]


def minute_ago(n: int) -> datetime:
    """The start of the minute ``n`` minutes before this one (UTC, naive)."""
    now = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    return now - timedelta(minutes=n)


@dataclass
class Fault:
    """What the next matching requests get instead of an answer."""

    status: int = 503
    body: Any = "<html>503 Service Unavailable</html>"
    headers: dict[str, str] = field(default_factory=dict)
    #: Seconds to wait before answering (a timeout when longer than the client's).
    delay: float = 0.0
    #: Answer this many requests so, then be well again (0: until cleared).
    times: int = 0


class FakeServer:
    """A real HTTP server that can stop and start again on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        #: (monotonic time, path with query, headers) of every request.
        self.requests: list[tuple[float, str, dict[str, str]]] = []
        self.fault: Fault | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.handle(self)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: the port refuses connections."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append((time.monotonic(), h.path, dict(h.headers)))
            fault = self.fault
            if fault is not None and fault.times:
                fault.times -= 1
                if fault.times == 0:
                    self.fault = None
        url = urlsplit(h.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if fault is not None and self.faulty(url.path):
            if fault.delay:
                time.sleep(fault.delay)
            self.send(h, fault.status, fault.body, fault.headers)
            return
        with self._lock:
            status, body = self.answer(url.path, query, dict(h.headers))
        self.send(h, status, body)

    def faulty(self, path: str) -> bool:
        """Whether a fault applies to ``path`` (default: every path)."""
        return True

    def answer(self, path: str, query: dict[str, str], headers: dict[str, str]
               ) -> tuple[int, Any]:
        raise NotImplementedError

    @staticmethod
    def send(h: BaseHTTPRequestHandler, status: int, body: Any,
             headers: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except OSError:  # the client gave up (a timeout test)
            pass

    def paths(self, prefix: str) -> list[tuple[float, str]]:
        """(time, path) of the requests whose path starts with ``prefix``."""
        with self._lock:
            return [(t, p) for t, p, _ in self.requests if p.startswith(prefix)]


class FakeBinance(FakeServer):
    """Binance's public spot API, as much of it as ccxt's ``fetch_ohlcv`` uses."""

    def __init__(self) -> None:
        super().__init__()
        #: Candles by Binance symbol id (BTCUSDT): [open time ms, o, h, l, c, v].
        self.candles: dict[str, list[list[float]]] = {"BTCUSDT": []}
        #: When set, the klines answer is this instead (a malformed answer).
        self.klines_body: Any = None

    def add(self, symbol: str, time: datetime, o: float, h: float, lo: float, c: float,
            v: float = 1.0) -> None:
        with self._lock:
            ms = int(time.replace(tzinfo=UTC).timestamp() * 1000)
            self.candles.setdefault(symbol, []).append([ms, o, h, lo, c, v])

    def faulty(self, path: str) -> bool:
        return path.endswith("/klines")

    def answer(self, path: str, query: dict[str, str], headers: dict[str, str]
               ) -> tuple[int, Any]:
        if path.endswith("/exchangeInfo"):
            symbols = ([{"symbol": s, "status": "TRADING", "baseAsset": s[:-4],
                         "quoteAsset": s[-4:], "isSpotTradingAllowed": True,
                         "permissions": ["SPOT"], "baseAssetPrecision": 8,
                         "quoteAssetPrecision": 8,
                         "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.01",
                                      "minPrice": "0.01", "maxPrice": "1000000"},
                                     {"filterType": "LOT_SIZE", "stepSize": "0.00001",
                                      "minQty": "0.00001", "maxQty": "9000"}]}
                        for s in self.candles] if path.startswith("/api/") else [])
            return 200, {"timezone": "UTC", "serverTime": int(time.time() * 1000),
                         "rateLimits": [], "symbols": symbols}
        if path == "/api/v3/klines":
            if self.klines_body is not None:
                return 200, self.klines_body
            rows = self.candles.get(query.get("symbol", ""), [])
            start = int(query.get("startTime", 0))
            limit = int(query.get("limit", 500))
            rows = [r for r in rows if r[0] >= start]
            rows = rows[:limit] if "startTime" in query else rows[-limit:]
            return 200, [[r[0], f"{r[1]}", f"{r[2]}", f"{r[3]}", f"{r[4]}", f"{r[5]}",
                          r[0] + 59_999, "0", 1, "0", "0", "0"] for r in rows]
        return 404, {"code": -1, "msg": f"no route {path}"}


class FakeAlpaca(FakeServer):
    """Alpaca's Market Data API v2 for stock bars, checking the key headers."""

    def __init__(self, key_id: str, secret: str, *, page_size: int = 10_000) -> None:
        super().__init__()
        self.key_id = key_id
        self.secret = secret
        self.page_size = page_size
        self.bars: dict[str, list[dict[str, Any]]] = {}
        self.bars_body: Any = None

    def add(self, symbol: str, time: datetime, o: float, h: float, lo: float, c: float,
            v: float = 100) -> None:
        with self._lock:
            self.bars.setdefault(symbol, []).append(
                {"t": f"{time:%Y-%m-%dT%H:%M:%S}Z", "o": o, "h": h, "l": lo, "c": c, "v": v,
                 "n": 10, "vw": (h + lo) / 2})

    def answer(self, path: str, query: dict[str, str], headers: dict[str, str]
               ) -> tuple[int, Any]:
        if (headers.get("APCA-API-KEY-ID") != self.key_id
                or headers.get("APCA-API-SECRET-KEY") != self.secret):
            return 401, {"message": "unauthorized."}
        symbols = query.get("symbols", "").split(",")
        if path == "/v2/stocks/bars/latest":
            return 200, {"bars": {s: self.bars[s][-1] for s in symbols if self.bars.get(s)}}
        if path == "/v2/stocks/bars":
            if self.bars_body is not None:
                return 200, self.bars_body
            start = query.get("start", "")
            rows = sorted(((b["t"], s, b) for s in symbols for b in self.bars.get(s, [])
                           if b["t"] >= start), key=lambda x: (x[1], x[0]))
            offset = int(query.get("page_token", 0))
            page = rows[offset:offset + self.page_size]
            out: dict[str, list[dict[str, Any]]] = {}
            for _, s, b in page:
                out.setdefault(s, []).append(b)
            more = offset + self.page_size < len(rows)
            return 200, {"bars": out,
                         "next_page_token": str(offset + self.page_size) if more else None}
        return 404, {"message": "Not Found"}
