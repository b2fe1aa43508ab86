"""A real ``sandtrade serve`` with HTTP, for the dashboard's browser tests and benchmark.

Loopback only, free ports, a temporary data directory; the accounts ``alice`` and ``bob``
with tokens of their own, and the operator's token the host writes on its first start.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from rpc.serve_process import ServeProcess, free_port

__all__ = ["DashboardHost", "sign_in"]

_TOKEN = re.compile(r"st_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")


def _create_token(data_dir: Path, account: str, scopes: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "sandtrade.cli", "tokens", "create", "--data-dir",
         str(data_dir), "--account", account, "--scope", scopes],
        capture_output=True, text=True, timeout=60, env={**os.environ,
                                                         "SANDTRADE_CASH": "1000000"})
    found = _TOKEN.search(out.stdout + out.stderr)
    assert found, f"no token printed: {out.stdout} {out.stderr}"
    return found.group(0)


class DashboardHost:
    """``sandtrade serve`` on loopback with the demo market at ``speed`` bars a second."""

    def __init__(self, data_dir: Path, speed: float = 20.0, args: tuple[str, ...] = ()
                 ) -> None:
        self.data_dir = data_dir
        self.http_port = free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.http_port}"
        self.grpc = f"127.0.0.1:{self.grpc_port}"
        self.tokens = {name: _create_token(data_dir, name, "read,trade,signal")
                       for name in ("alice", "bob")}
        self.process = ServeProcess(data_dir, [
            "--grpc", self.grpc, "--http", f"127.0.0.1:{self.http_port}", "--speed",
            str(speed), "--then", "loop", *args])

    def start(self) -> DashboardHost:
        self.process.start()
        self.tokens["operator"] = (self.data_dir / "operator.token").read_text().strip()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the HTTP server answers, the feed has bars
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self.process.stop()

    def alert(self, account: str, body: str) -> httpx.Response:
        """Post a TradingView alert with ``account``'s token in the path."""
        return httpx.post(f"{self.url}/webhooks/tradingview/{self.tokens[account]}",
                          content=body, headers={"Content-Type": "text/plain"}, timeout=10)


def sign_in(url: str, token: str) -> httpx.Client:
    """An HTTP client holding a dashboard session of ``token``."""
    client = httpx.Client(base_url=url, timeout=10)
    r = client.post("/dashboard/signin", data={"token": token})
    assert r.status_code == 303, r.text
    return client
