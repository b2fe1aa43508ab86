"""Symbols no market source covers: priced by what signals carry, account by account.

A signal may name a symbol the host has no feed for (``AAPL`` on a host fed with a CSV of
``DEMO``). The symbol is registered when it is first traded (:meth:`SignalPrices.register_new`,
stored, so a restarted host knows it before replaying its fills), and its price is the one the
signal carried: noted for the account before the signal's orders are checked (so that lot,
minimum-value and buying-power checks see it), then the account's working orders in the
symbol are worked at it under the ``signal_price`` fill profile
(:class:`~sandtrade.broker.fills.SignalPriceProfile`), their fills recorded with
``price_source`` ``signal`` (or ``last``: a signal without a price, filled at the last price a
signal of the account carried).

Prices from signals are the account's own: a tenant's alert neither fills nor values another
account's orders and positions (it could carry any price). The account's positions in such
symbols are valued at its last signal price; a market source that later publishes bars of the
symbol takes over (its prices win for valuation, and new orders wait for its bars). The last
prices are stored with the changes that note them, so they survive a restart.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sandtrade.broker.fills import SignalPriceProfile
from sandtrade.broker.restore import Ledger
from sandtrade.broker.settings import BrokerSettings
from sandtrade.models import (
    Bar,
    BrokerChange,
    Fill,
    Instrument,
    Order,
    OrderStatus,
    TimeInForce,
)

__all__ = ["SignalPrices", "instrument_key", "prices_key"]

_ONE_BAR = (TimeInForce.IOC, TimeInForce.FOK)


def instrument_key(symbol: str) -> str:
    """The host state key of an instrument first registered by a signal."""
    return f"instrument:{symbol}"


def prices_key(account: str) -> str:
    """The host state key of an account's last signal prices (symbol -> price)."""
    return f"prices:{account}"


class SignalPrices:
    """Instruments registered as signals name them, and prices signals carry (a mixin of
    :class:`~sandtrade.broker.paper.PaperBroker`)."""

    if TYPE_CHECKING:  # PaperBroker's state and methods this reads
        settings: BrokerSettings
        _store: Ledger | None
        _instruments: dict[str, Instrument]
        _working: dict[str, list[Order]]
        _mark: dict[str, float]
        _now: datetime | None
        _bar_index: int | None
        _price_source: str
        #: account -> symbol -> the last price a signal of the account carried
        _own_marks: dict[str, dict[str, float]]

        def _fill(self, order: Order, price: float, volume_left: float | None,
                  fills: list[Fill]) -> float | None: ...
        def _finish(self, order: Order, status: OrderStatus, reason: str | None) -> None: ...
        def _persist(self, change: BrokerChange) -> None: ...
        def _persist_trigger(self, order: Order) -> None: ...

    def register_new(self, instrument: Instrument) -> bool:
        """Make a symbol first named by a signal tradable, and store it (with the request's
        changes) so that a restarted host has it; False when the symbol was known already."""
        if instrument.symbol in self._instruments:
            return False
        self._instruments[instrument.symbol] = instrument
        self._persist(BrokerChange(state={
            instrument_key(instrument.symbol): instrument.model_dump(mode="json")}))
        return True

    def last_signal_price(self, account: str, symbol: str) -> float | None:
        """The last price a signal of ``account`` carried for ``symbol``, or None."""
        own = self._own_marks.get(account)
        return own.get(symbol) if own is not None else None

    def note_signal_price(self, account: str, symbol: str, price: float) -> None:
        """Remember ``price`` as ``account``'s price of ``symbol`` (stored with the request's
        changes): its orders are checked and its position valued at it from now on."""
        own = self._own_marks.setdefault(account, {})
        if own.get(symbol) == price:
            return
        own[symbol] = price
        self._persist(BrokerChange(state={prices_key(account): dict(own)}))

    def work_at_price(self, account: str, symbol: str, price: float, source: str,
                      when: datetime | None = None) -> list[Fill]:
        """Work ``account``'s orders in ``symbol`` at ``price`` (``signal_price`` profile),
        their fills stamped ``when`` and recorded with ``price_source`` ``source``."""
        self.note_signal_price(account, symbol, price)
        working = [o for o in self._working.get(symbol, ()) if o.account == account]
        fills: list[Fill] = []
        if not working:
            return fills
        saved = self._now, self._bar_index
        now = when or self._now or datetime.min
        bar = Bar(symbol, now, price, price, price, price, 0.0)
        profile = SignalPriceProfile(slippage_pct=self.settings.slippage_pct,
                                     spread_pct=self.settings.spread_pct)
        self._now, self._bar_index = now, None
        self._price_source = source
        try:
            for order in working:
                if not order.is_open:
                    continue
                triggered = order.stop_triggered
                px = profile.bar_price(order, bar)
                if px is not None:
                    self._fill(order, px, None, fills)
                if order.stop_triggered is not triggered:
                    self._persist_trigger(order)
                if order.is_open and order.tif in _ONE_BAR:
                    self._finish(order, OrderStatus.CANCELED,
                                 f"{order.tif.value}: unfilled quantity canceled")
                    self._persist(BrokerChange(orders=[order]))
        finally:
            self._price_source = "feed"
            self._now, self._bar_index = saved
        return fills

    def _marks_for(self, account: str) -> dict[str, float]:
        """The prices ``account`` is valued at: the feed's, else its own signal prices."""
        own = self._own_marks.get(account)
        return self._mark if not own else {**own, **self._mark}

    def _restore_instrument(self, store: Ledger, symbol: str, tried: set[str]) -> None:
        """Register the instrument a signal registered for ``symbol``, read from ``store``
        (before the fills that name it are replayed: its multiplier values them)."""
        if symbol in self._instruments or symbol in tried:
            return
        tried.add(symbol)
        stored = store.get_state(instrument_key(symbol))
        if isinstance(stored, dict):
            self._instruments[symbol] = Instrument.model_validate(stored)

    def _restore_signal_prices(self, store: Ledger, account: str) -> None:
        """Read back an account's last signal prices."""
        own = store.get_state(prices_key(account))
        if isinstance(own, dict) and own:
            self._own_marks[account] = {str(k): float(v) for k, v in own.items()}
