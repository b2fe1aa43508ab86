"""Crypto prices from an exchange's public market data, through ccxt (no key needed).

ccxt is the well-kept library that speaks a hundred exchanges' REST APIs in one shape: its
``fetch_ohlcv(symbol, timeframe, since, limit)`` gives ``[timestamp_ms, open, high, low, close,
volume]`` candles from any of them, and with ``enableRateLimit`` it spaces its own requests by
the exchange's documented ``rateLimit``. Writing one client per exchange ourselves would be
more code and less right.

Settings (``[sources.ccxt]``; ``sandtrade serve --source ccxt:binance`` sets the exchange)::

    [market]
    source = "ccxt"
    [sources.ccxt]
    exchange = "binance"              # any id of ccxt.exchanges
    symbols = ["BTC/USDT", "ETH/USDT"]  # BTC/USDT, BTC-USDT or BTCUSDT; traded as BTCUSDT
    timeframe = "1m"                  # the bar interval (ccxt's names: 1m, 5m, 1h, 1d)
    poll_seconds = 5

A pair is traded on the host as base and quote joined (``BTCUSDT``, as TradingView's
``BINANCE:BTCUSDT`` names it), a crypto instrument (fractional quantities). ``base_url``
points every API address of the exchange at another host, keeping the paths (what the tests
use for their local fake of the exchange).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field

from sandtrade.plugin_api import Bar, DataError, Instrument, MarketSettings, redact
from sandtrade_marketdata.polling import (
    ERROR_CHARS,
    PolledSource,
    PollError,
    PollOptions,
    parse_options,
    retry_after_seconds,
    utc_now,
)

__all__ = ["CcxtOptions", "CcxtSource", "host_symbol", "split_pair"]

log = logging.getLogger(__name__)

#: Quote currencies recognised at the end of a pair written without a separator (BTCUSDT).
QUOTES = ("USDT", "USDC", "FDUSD", "BUSD", "TUSD", "DAI", "USD", "EUR", "GBP", "JPY", "TRY",
          "BTC", "ETH", "BNB")
_PAIR = re.compile(r"^([A-Z0-9]{2,15})[/\-_:]([A-Z0-9]{2,10})$")


class CcxtOptions(PollOptions):
    """``[sources.ccxt]``."""

    exchange: str = Field("binance", description="The exchange: an id of ccxt.exchanges.")
    symbols: list[str] = Field(default_factory=lambda: ["BTC/USDT"], min_length=1,
                               description="Pairs to follow: BTC/USDT, BTC-USDT or BTCUSDT.")
    timeframe: str = Field("1m", description="Bar interval, in ccxt's names (1m, 5m, 1h).")
    ccxt_options: dict[str, Any] = Field(
        default_factory=dict, description="Passed to the ccxt exchange as its 'options'.")


def split_pair(text: str) -> tuple[str, str]:
    """``("BTC", "USDT")`` from ``BTC/USDT``, ``btc-usdt`` or ``BTCUSDT``; ValueError saying
    how to write it otherwise."""
    t = text.strip().upper()
    m = _PAIR.match(t)
    if m:
        return m.group(1), m.group(2)
    for quote in QUOTES:
        if t.endswith(quote) and len(t) > len(quote) + 1 and t.isalnum():
            return t[:-len(quote)], quote
    raise ValueError(f"{text!r} is not a pair: write BASE/QUOTE, e.g. BTC/USDT")


def host_symbol(base: str, quote: str) -> str:
    """What the host trades a pair as: ``BTCUSDT``."""
    return f"{base}{quote}"


def _rebase(urls: Any, base: str) -> Any:
    """Every URL in ccxt's ``urls['api']`` (a string or nested dicts) on ``base``, paths kept."""
    if isinstance(urls, dict):
        return {k: _rebase(v, base) for k, v in urls.items()}
    if isinstance(urls, str):
        return base.rstrip("/") + urlsplit(urls).path
    return urls


class CcxtSource(PolledSource):
    """Bars of crypto pairs from one exchange's public OHLCV, polled through ccxt."""

    name = "ccxt"
    #: ``--source ccxt:binance`` sets ``exchange``.
    argument = "exchange"

    def __init__(self, settings: MarketSettings) -> None:
        # ccxt is imported when the source is chosen: every CLI command loads the plugins, and
        # ccxt costs about 0.3 s to import.
        import ccxt

        opts: CcxtOptions = parse_options(self.name, CcxtOptions, settings.source_options)
        if opts.exchange not in ccxt.exchanges:
            raise DataError(f"[sources.ccxt] exchange: {opts.exchange!r} is not an exchange "
                            "ccxt knows (see ccxt.exchanges, e.g. binance, kraken, coinbase)")
        self._ccxt = ccxt
        self.exchange = getattr(ccxt, opts.exchange)({
            "enableRateLimit": True,  # ccxt spaces requests by the exchange's rateLimit
            "timeout": int(opts.timeout_seconds * 1000),
            "options": dict(opts.ccxt_options),
        })
        if opts.base_url:
            self.exchange.urls["api"] = _rebase(self.exchange.urls["api"], opts.base_url)
        timeframes = getattr(self.exchange, "timeframes", None) or {}
        if timeframes and opts.timeframe not in timeframes:
            raise DataError(f"[sources.ccxt] timeframe: {opts.timeframe!r} is not offered by "
                            f"{opts.exchange} (it has: {', '.join(timeframes)})")
        try:
            seconds = self.exchange.parse_timeframe(opts.timeframe)
        except Exception:
            raise DataError(f"[sources.ccxt] timeframe: {opts.timeframe!r} is not a "
                            "timeframe (e.g. 1m, 5m, 1h, 1d)") from None
        self.timeframe = opts.timeframe
        #: ccxt's unified symbol (BTC/USDT) by the host's (BTCUSDT).
        self.pairs: dict[str, str] = {}
        for i, text in enumerate(opts.symbols):
            try:
                base, quote = split_pair(text)
            except ValueError as e:
                raise DataError(f"[sources.ccxt] symbols[{i}]: {e}") from None
            symbol = host_symbol(base, quote)
            if symbol in self.pairs:
                raise DataError(f"[sources.ccxt] symbols[{i}]: {text!r} is given twice")
            self.pairs[symbol] = f"{base}/{quote}"
        super().__init__(settings, opts, interval=timedelta(seconds=seconds), describe=(
            f"ccxt {opts.exchange}: {', '.join(self.pairs.values())} {opts.timeframe} bars"))

    def instruments(self) -> list[Instrument]:
        return [Instrument.crypto(symbol) for symbol in self.pairs]

    def poll(self, last: Mapping[str, datetime]) -> dict[str, list[Bar]]:
        answer: dict[str, list[Bar]] = {}
        for symbol, pair in self.pairs.items():
            since = last.get(symbol)
            since_ms = (None if since is None
                        else int(since.replace(tzinfo=UTC).timestamp() * 1000))
            try:
                candles = self.exchange.fetch_ohlcv(pair, self.timeframe, since_ms,
                                                    5 if since is None else 500)
            except self._ccxt.BaseError as e:
                raise self._poll_error(pair, e) from None
            answer[symbol] = self._bars(symbol, pair, candles)
        return answer

    def _poll_error(self, pair: str, e: Exception) -> PollError:
        text = " ".join(str(e).split())
        if len(text) > ERROR_CHARS:
            text = text[:ERROR_CHARS] + "…"
        retry_after = None
        if isinstance(e, self._ccxt.DDoSProtection):  # 429 and 418: the exchange's brakes
            headers = self.exchange.last_response_headers or {}
            retry_after = retry_after_seconds(headers.get("Retry-After"))
        kind = type(e).__name__
        wait = f" (Retry-After {retry_after:g} s)" if retry_after else ""
        return PollError(redact(f"{pair}: {kind}: {text}{wait}", self._secrets()),
                         retry_after=retry_after)

    def _secrets(self) -> list[str | None]:
        return [getattr(self.exchange, "apiKey", None), getattr(self.exchange, "secret", None)]

    def describe_error(self, error: Exception) -> str:
        return redact(super().describe_error(error), self._secrets())

    def _bars(self, symbol: str, pair: str, candles: Any) -> list[Bar]:
        """ccxt's candles as bars; a :class:`PollError` naming the candle and the field when
        one is not ``[timestamp_ms, open, high, low, close, volume]`` with sane values."""
        if not isinstance(candles, list):
            raise PollError(f"{pair}: the OHLCV answer is a {type(candles).__name__}, not a "
                            "list of candles")
        bars = []
        now = utc_now()
        for i, candle in enumerate(candles):
            where = f"{pair}: candle {i} of {len(candles)}"
            if not isinstance(candle, (list, tuple)) or len(candle) < 6:
                raise PollError(f"{where}: {candle!r} is not [time, open, high, low, close, "
                                "volume]")
            stamp = candle[0]
            if not isinstance(stamp, (int, float)) or isinstance(stamp, bool) or stamp < 0:
                raise PollError(f"{where}: time: {stamp!r} is not a timestamp in ms")
            time = datetime.fromtimestamp(stamp / 1000, UTC).replace(tzinfo=None)
            if time > now + timedelta(days=1):
                raise PollError(f"{where}: time: {time:%Y-%m-%d %H:%M} is in the future")
            volume = 0.0 if candle[5] is None else candle[5]
            try:
                bars.append(Bar.checked(symbol, time, candle[1], candle[2], candle[3],
                                        candle[4], volume))
            except ValueError as e:
                raise PollError(f"{where}: {e}") from None
        return bars
