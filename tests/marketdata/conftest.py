"""Fixtures of the market-data plugin: the fakes of the outside world, and a real host fed by
the plugin's sources (found as the installed entry point ``marketdata``, like any plugin)."""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sandtrade.client import Client
from sandtrade.host.config import load_settings
from sandtrade.host.plugins import PluginHost
from sandtrade.host.runtime import HostRuntime

from .fakes import FakeAlpaca, FakeBinance

#: Seconds a condition may take on a loaded two-core machine before the test fails.
WAIT = 20.0
KEY_ID = "PKTESTKEYID0123456789"
SECRET = "s3cr3t-VALUE-never-shown-0123456789abcdef"
T = TypeVar("T")

#: Fast polls and short backoffs: a test sees a reconnect in a fraction of a second.
FAST = {"poll_seconds": 0.05, "backoff_seconds": 0.05, "backoff_cap_seconds": 0.3,
        "timeout_seconds": 2.0}


def eventually(fn: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    """``fn()``'s first truthy value, asked until ``timeout``; fails naming ``what``."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout} s: {what} (last: {last!r})")


@pytest.fixture
def binance() -> Iterator[FakeBinance]:
    fake = FakeBinance().start()
    yield fake
    fake.stop()


@pytest.fixture
def alpaca() -> Iterator[FakeAlpaca]:
    fake = FakeAlpaca(KEY_ID, SECRET).start()
    yield fake
    fake.stop()


@contextmanager
def live_host(tmp_path: Path, source: str, options: dict[str, Any]) -> Iterator[HostRuntime]:
    """A started host whose ``[market] source`` is ``source`` with ``[sources.NAME]``
    ``options``; the installed plugins loaded as ``sandtrade serve`` loads them."""
    name = source.partition(":")[0]
    config = load_settings(data_dir=tmp_path / "data", grpc="127.0.0.1:0", http="127.0.0.1:0",
                           market={"source": source, "bars_per_second": 0},
                           sources={name: {**FAST, **options}})
    host = HostRuntime(config, plugins=PluginHost.create()).start()
    try:
        yield host
    finally:
        host.stop()


def health(host: HostRuntime) -> dict[str, Any]:
    """The host's ``/health``, read over HTTP."""
    with urllib.request.urlopen(f"{host.http.url}/health", timeout=5) as r:
        return dict(json.loads(r.read()))


def link(host: HostRuntime) -> dict[str, Any]:
    """``/health``'s ``market.connection``."""
    return dict(health(host)["market"]["connection"])


def client(host: HostRuntime) -> Client:
    """A client of the host with the operator token."""
    assert host.rpc is not None
    return Client(host.rpc.address, host.operator_token_path.read_text().strip())
