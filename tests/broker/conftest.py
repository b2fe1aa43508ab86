"""Fixtures of the broker room: a paper broker with one funded account, and a bar tape.

Every broker here knows three instruments, each with a last price so that orders can be
checked against it: ACME (equity, 100.00), XYZ (equity, 50.00) and BTC-USD (crypto, 30,000).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from sandtrade.broker import BrokerSettings, PaperBroker
from sandtrade.models import Bar, Fill, Instrument
from sandtrade.store.base import Store

ACCOUNT = "acct"
START = datetime(2024, 1, 2, 9, 30)
LAST_PRICES = {"ACME": 100.0, "XYZ": 50.0, "BTC-USD": 30_000.0}


def instruments() -> list[Instrument]:
    """The instruments every test broker trades."""
    return [Instrument.equity("ACME"), Instrument.equity("XYZ"), Instrument.crypto("BTC-USD")]


MakeBroker = Callable[..., PaperBroker]


@pytest.fixture
def make_broker() -> MakeBroker:
    """Build a broker with ``settings`` and account ``acct`` funded with ``cash``."""

    def make(*, cash: float = 100_000.0, store: Store | None = None,
             **settings: object) -> PaperBroker:
        broker = PaperBroker(BrokerSettings.model_validate(settings),
                             instruments=instruments(), store=store)
        broker.set_time(START - timedelta(minutes=1))
        broker.open_account(ACCOUNT, cash, time=START - timedelta(minutes=1))
        for symbol, price in LAST_PRICES.items():
            broker.mark(symbol, price)
        return broker

    return make


@pytest.fixture
def broker(make_broker: MakeBroker) -> PaperBroker:
    """A broker with default settings and 100,000 in account ``acct``."""
    return make_broker()


class Tape:
    """Plays bars into a broker, one minute apart, starting 2024-01-02 09:30.

    ``open`` alone makes a flat bar; ``high``/``low`` default to the range of open and close.
    ``new_session=True`` moves the bar to 09:30 of the next day.
    """

    def __init__(self, broker: PaperBroker) -> None:
        self.broker = broker
        self.time = START - timedelta(minutes=1)
        self.index = -1
        self._last: Bar | None = None

    @property
    def last(self) -> Bar:
        """The bar played last."""
        assert self._last is not None, "no bar played yet"
        return self._last

    def bar(self, open: float, high: float | None = None, low: float | None = None,
            close: float | None = None, *, volume: float = 1_000_000.0, symbol: str = "ACME",
            new_session: bool = False) -> list[Fill]:
        """Play one bar and return the fills it produced."""
        if new_session:
            self.time = datetime.combine(self.time.date() + timedelta(days=1), START.time())
        else:
            self.time += timedelta(minutes=1)
        self.index += 1
        close = open if close is None else close
        high = max(open, close) if high is None else high
        low = min(open, close) if low is None else low
        self._last = Bar.checked(symbol, self.time, open, high, low, close, volume)
        return self.broker.on_bar(self._last, self.index)


@pytest.fixture
def tape(broker: PaperBroker) -> Tape:
    """A tape that plays bars into ``broker``."""
    return Tape(broker)
