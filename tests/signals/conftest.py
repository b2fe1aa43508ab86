"""Fixtures of the signals room: a live host with its HTTP server, and senders.

The host is the real thing (:class:`HostRuntime` in ``tmp_path``: SQLite store, live broker,
gRPC on ``127.0.0.1:0``, uvicorn on ``127.0.0.1:0`` with the TradingView plugin loaded through
its entry point). Its market is the test-driven ``steps`` source of the gRPC room: bars move
only when a test publishes one (:class:`Market`), so a test decides when orders fill.

Accounts: ``paper`` (the default account, 10,000 in cash, AAA and BBB traded) and whatever a
test creates. ``signal_token`` sends signals for ``paper``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from rpc.conftest import CASH, SYMBOLS, Market, StepSource, StepsPlugin
from sandtrade.host.config import load_settings
from sandtrade.host.plugins import PluginHost
from sandtrade.host.runtime import HostRuntime

__all__ = ["CASH", "SYMBOLS", "Host", "Market", "post"]

HostFactory = Callable[..., "Host"]


@dataclass
class Host:
    """A started host and what tests need of it."""

    runtime: HostRuntime
    market: Market
    token: str  # signal scope, account "paper"

    @property
    def url(self) -> str:
        assert self.runtime.http is not None
        return self.runtime.http.url

    @property
    def webhook(self) -> str:
        return f"{self.url}/webhooks/tradingview/{self.token}"

    def wait_idle(self) -> None:
        assert self.runtime.signals is not None
        assert self.runtime.signals.wait_idle(10), "signals still executing after 10 s"

    def signals(self) -> list[Any]:
        """Every journaled signal, oldest first."""
        assert self.runtime.store is not None
        return [r for _, r in self.runtime.store.list_signals(limit=10_000,
                                                              oldest_first=True)]

    def orders(self, account: str = "paper") -> list[Any]:
        assert self.runtime.store is not None
        return self.runtime.store.list_orders(account, limit=10_000)

    def send(self, body: str | dict[str, Any], **params: Any) -> dict[str, Any]:
        """Post ``body`` to the webhook, expect a 200, wait until it has executed; the
        webhook's answer."""
        r = post(self.webhook, body, **params)
        assert r.status_code == 200, r.text
        self.wait_idle()
        answer: dict[str, Any] = r.json()
        return answer

    def record(self, signal_id: str) -> Any:
        """The journaled signal ``signal_id``."""
        assert self.runtime.store is not None
        record = self.runtime.store.get_signal(signal_id)
        assert record is not None
        return record


def start_host(tmp_path: Path, config: str = "", **overrides: Any) -> Host:
    """A host in ``tmp_path/data``; ``config`` is TOML text for its configuration file."""
    path = None
    if config:
        path = tmp_path / "sandtrade.toml"
        path.write_text(config)
    settings = load_settings(path, data_dir=tmp_path / "data", grpc="127.0.0.1:0",
                             http="127.0.0.1:0",
                             market={"source": "steps", "bars_per_second": 0}, **overrides)
    plugins = PluginHost.create(extra=[StepsPlugin()])
    runtime = HostRuntime(settings, plugins=plugins).start()
    assert runtime.auth is not None
    _, token = runtime.auth.create(settings.account, ("signal",))
    return Host(runtime, Market(runtime), token)


def stop_host(host: Host) -> None:
    if isinstance(host.runtime.source, StepSource):
        host.runtime.source.push(None)
    host.runtime.stop()


@pytest.fixture
def make_host(tmp_path: Path) -> Iterator[HostFactory]:
    """Start hosts (with a configuration) on demand; all are stopped at the end."""
    hosts: list[Host] = []

    def make(config: str = "", **overrides: Any) -> Host:
        host = start_host(tmp_path, config, **overrides)
        hosts.append(host)
        return host

    yield make
    for host in hosts:
        stop_host(host)


@pytest.fixture
def host(make_host: HostFactory) -> Host:
    """A host with the default configuration."""
    return make_host()


def post(url: str, body: str | bytes | dict[str, Any], *,
         content_type: str = "text/plain; charset=utf-8", **params: Any) -> httpx.Response:
    """POST a body the way TradingView does (text/plain unless told otherwise)."""
    if isinstance(body, dict):
        body = json.dumps(body)
        content_type = "application/json"
    data = body.encode() if isinstance(body, str) else body
    return httpx.post(url, content=data, headers={"Content-Type": content_type},
                      params=params or None, timeout=10)
