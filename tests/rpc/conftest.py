"""Fixtures of the gRPC room: a live host on port 0 whose market moves only when a test says so.

The host is a real :class:`HostRuntime` in ``tmp_path``: the sqlite store, the live broker,
the market hub and the gRPC server on ``127.0.0.1:0``. Its market source is :class:`StepSource`,
registered through the plugin API (``sandtrade_market_sources``) exactly as a third-party
source is, and selected with ``market.source = "steps"``. It yields only the bars a test
publishes with :meth:`Market.publish`, which returns once the broker has worked the bar, so a
test decides exactly when prices move and what the broker has seen.

Every host trades two equities, AAA and BBB. The ``alice`` and ``bob`` fixtures are accounts
with 100,000 in cash, each with its own ``read,trade`` token.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from sandtrade.hookspecs import hookimpl
from sandtrade.host.config import load_settings
from sandtrade.host.plugins import PluginHost
from sandtrade.host.runtime import HostRuntime
from sandtrade.market.sources import MarketSettings
from sandtrade.models import Account, Bar, Instrument
from sandtrade.v1 import common_pb2, market_pb2_grpc, trading_pb2, trading_pb2_grpc

SYMBOLS = ("AAA", "BBB")
START = datetime(2024, 1, 2, 9, 30)
CASH = 100_000.0
#: Seconds any single call or wait may take before the test fails (instead of hanging).
WAIT = 5.0

Metadata = tuple[tuple[str, str], ...]
T = TypeVar("T")


# ------------------------------------------------------------------ the market source plugin


class StepSource:
    """A market source driven by the test: ``bars()`` yields what :meth:`push` was given, in
    order, and ends at ``None``."""

    name = "steps"

    def __init__(self, settings: MarketSettings) -> None:
        self.settings = settings
        self._bars: queue.Queue[Bar | None] = queue.Queue()
        self._handled = 0
        self._cond = threading.Condition()

    def instruments(self) -> list[Instrument]:
        return [Instrument.equity(symbol) for symbol in SYMBOLS]

    def bars(self) -> Iterator[Bar]:
        yielded = 0
        while True:
            # The feed asks for the next bar only after the hub has handed the previous one to
            # every listener (the broker's queue included) and every stream subscriber.
            with self._cond:
                self._handled = yielded
                self._cond.notify_all()
            bar = self._bars.get()
            if bar is None:
                return
            yield bar
            yielded += 1

    def push(self, bar: Bar | None) -> None:
        """Hand the feed one bar (``None`` ends the source)."""
        self._bars.put(bar)

    def wait_handled(self, count: int, timeout: float = WAIT) -> None:
        """Block until the feed has published ``count`` bars in total."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._handled >= count, timeout):
                raise TimeoutError(f"the feed published {self._handled} of {count} bars "
                                   f"within {timeout} s")


class StepsPlugin:
    """Contributes :class:`StepSource` through the plugin API."""

    @hookimpl
    def sandtrade_market_sources(self) -> list[type[StepSource]]:
        return [StepSource]


# ------------------------------------------------------------------ the host


@contextmanager
def serving(tmp_path: Path, *, market: dict[str, Any] | None = None,
            entry_points: bool = False, **settings: Any) -> Iterator[HostRuntime]:
    """A started host in ``tmp_path``: gRPC and HTTP on free ports, fed by the ``steps``
    source as fast as the test publishes (``market`` adds to that), with ``settings`` (as
    the configuration file's keys: ``strategies={"mode": "free"}``, ``quotas=...``); with
    ``entry_points``, the installed plugins too (the TradingView webhook)."""
    config = load_settings(data_dir=tmp_path / "data", grpc="127.0.0.1:0",
                           http="127.0.0.1:0",
                           market={"source": "steps", "bars_per_second": 0, **(market or {})},
                           **settings)
    plugins = PluginHost.create(load_entry_points=entry_points, extra=[StepsPlugin()])
    host = HostRuntime(config, plugins=plugins).start()
    try:
        yield host
    finally:
        if isinstance(host.source, StepSource):
            host.source.push(None)  # the feed thread waits in bars() until the source ends
        host.stop()


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[HostRuntime]:
    """A started host in ``tmp_path``, gRPC on a free port, fed by the ``steps`` source."""
    with serving(tmp_path) as host:
        yield host


class Market:
    """Publishes bars through the host's feed, one minute apart from 2024-01-02 09:30."""

    def __init__(self, host: HostRuntime) -> None:
        assert isinstance(host.source, StepSource)
        self.host = host
        self.source = host.source
        self.time = START - timedelta(minutes=1)
        self.published: list[Bar] = []

    def publish(self, open: float, high: float | None = None, low: float | None = None,
                close: float | None = None, *, symbol: str = "AAA",
                volume: float = 1_000_000.0) -> Bar:
        """Publish one bar and return it once the broker has worked it.

        ``open`` alone makes a flat bar; ``high``/``low`` default to the range of open and
        close.
        """
        self.time += timedelta(minutes=1)
        close = open if close is None else close
        high = max(open, close) if high is None else high
        low = min(open, close) if low is None else low
        bar = Bar.checked(symbol, self.time, open, high, low, close, volume)
        self.source.push(bar)
        self.published.append(bar)
        self.source.wait_handled(len(self.published))
        self.flush_broker()
        return bar

    def flush_broker(self) -> None:
        """Wait until everything applied to the broker so far is committed."""
        assert self.host.live is not None
        self.host.live.call(lambda broker: None)


@pytest.fixture
def market(runtime: HostRuntime) -> Market:
    """The host's market, moved by the test."""
    return Market(runtime)


# ------------------------------------------------------------------ clients


@pytest.fixture
def channel(runtime: HostRuntime) -> Iterator[grpc.Channel]:
    """A plain-text channel to the host (closed before the host stops)."""
    assert runtime.rpc is not None
    with grpc.insecure_channel(runtime.rpc.address) as ch:
        yield ch


@pytest.fixture
def trading(channel: grpc.Channel) -> trading_pb2_grpc.TradingServiceStub:
    """A TradingService client."""
    return trading_pb2_grpc.TradingServiceStub(channel)


@pytest.fixture
def market_data(channel: grpc.Channel) -> market_pb2_grpc.MarketDataServiceStub:
    """A MarketDataService client."""
    return market_pb2_grpc.MarketDataServiceStub(channel)


def bearer(token: str) -> Metadata:
    """Call metadata that presents ``token``."""
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture
def operator(runtime: HostRuntime) -> Metadata:
    """Metadata with the operator's token (admin, every account), read from its file."""
    return bearer(runtime.operator_token_path.read_text().strip())


MakeAccount = Callable[..., str]
MakeToken = Callable[..., str]


@pytest.fixture
def make_account(runtime: HostRuntime) -> MakeAccount:
    """Create an account in the host's store; returns its id."""

    def make(account_id: str, cash: float = CASH) -> str:
        assert runtime.store is not None
        runtime.store.create_account(Account(id=account_id, cash=cash, initial_cash=cash))
        return account_id

    return make


@pytest.fixture
def make_token(runtime: HostRuntime) -> MakeToken:
    """Create a stored token for ``account`` with ``scopes``; returns the token text."""

    def make(account: str, scopes: str | tuple[str, ...] = ("read", "trade")) -> str:
        assert runtime.auth is not None
        _, token = runtime.auth.create(account, scopes)
        return token

    return make


@dataclass(frozen=True)
class Caller:
    """An account and the token that acts for it."""

    account: str
    token: str

    @property
    def metadata(self) -> Metadata:
        return bearer(self.token)


@pytest.fixture
def alice(make_account: MakeAccount, make_token: MakeToken) -> Caller:
    """Account ``alice`` with 100,000 and a ``read,trade`` token."""
    return Caller(make_account("alice"), make_token("alice"))


@pytest.fixture
def bob(make_account: MakeAccount, make_token: MakeToken) -> Caller:
    """Account ``bob`` with 100,000 and a ``read,trade`` token."""
    return Caller(make_account("bob"), make_token("bob"))


# ------------------------------------------------------------------ requests and answers


def market_order(symbol: str = "AAA", qty: float = 10.0, *,
                 side: int = common_pb2.ORDER_SIDE_BUY,
                 **fields: Any) -> trading_pb2.SubmitOrderRequest:
    """A SubmitOrderRequest for a market order (``fields`` set any other field)."""
    return trading_pb2.SubmitOrderRequest(symbol=symbol, side=side, qty=qty, **fields)


def field_violations(err: grpc.RpcError) -> list[str]:
    """The fields named by the ``google.rpc.BadRequest`` in an error's details."""
    status = rpc_status.from_call(err)
    assert status is not None, f"no google.rpc.Status in the error details: {err}"
    fields = []
    for detail in status.details:
        violation = error_details_pb2.BadRequest()
        if detail.Unpack(violation):
            fields.extend(v.field for v in violation.field_violations)
    return fields


class StreamReader(Generic[T]):
    """Reads a server stream on a thread, so a test can wait for a message with a timeout."""

    def __init__(self, call: Any) -> None:
        self.call = call
        self._messages: queue.Queue[T | BaseException] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for message in self.call:
                self._messages.put(message)
        except grpc.RpcError as e:
            self._messages.put(e)

    def get(self, timeout: float = WAIT) -> T:
        """The next message; raises the stream's error, or ``queue.Empty`` on timeout."""
        item = self._messages.get(timeout=timeout)
        if isinstance(item, BaseException):
            raise item
        return item

    def get_nowait(self, timeout: float = 0.1) -> T | None:
        """The next message if one comes within ``timeout``, else None."""
        try:
            return self.get(timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        self.call.cancel()
        self._thread.join(WAIT)
