"""US equity prices from Alpaca's Market Data API v2, with the user's own key.

Why Alpaca: its market data is free with any Alpaca account (paper accounts included; the
``iex`` feed), the API is documented and stable, and TradingView-to-Alpaca bridges are what
many of the traders sending us alerts already use, so the key is one they have.

Why REST polling rather than its websocket stream: the broker fills on closed bars, and the
REST ``bars`` endpoint gives exactly those, with pagination and a ``start`` that picks up
every bar missed while the link was down; a stream would need its own resubscription and
gap-filling on every reconnect for no better fill. Two documented endpoints are used:

- ``GET /v2/stocks/bars/latest?symbols=AAPL,MSFT&feed=iex`` at the first poll, for a price
  at once: ``{"bars": {"AAPL": {"t": "2024-01-02T15:04:00Z", "o": …, "h": …, "l": …,
  "c": …, "v": …}}}``;
- ``GET /v2/stocks/bars?symbols=…&timeframe=1Min&start=…&feed=iex&sort=asc`` after it:
  ``{"bars": {"AAPL": [{…}, …]}, "next_page_token": null}``, followed page by page.

Both with the headers ``APCA-API-KEY-ID`` and ``APCA-API-SECRET-KEY``. The key comes from
``[sources.alpaca] key_id``/``secret_key`` or the environment (``APCA_API_KEY_ID``,
``APCA_API_SECRET_KEY``, the names Alpaca's own tools read); it is sent in those headers only,
never logged, and removed from any error text before ``/health`` shows it.

Settings (``sandtrade serve --source alpaca:iex`` sets the feed)::

    [market]
    source = "alpaca"
    [sources.alpaca]
    symbols = ["AAPL", "MSFT"]
    feed = "iex"            # iex (free), sip (all exchanges; a paid plan), delayed_sip
    timeframe = "1Min"      # 1Min, 5Min, 15Min, 1Hour, 1Day

A 429 is retried after its ``Retry-After`` (or ``X-RateLimit-Reset``) when longer than the
backoff; 401/403 say the key was refused (and are retried at the backoff's cap, so a key
fixed in Alpaca's dashboard is picked up without a restart).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import Field, SecretStr

from sandtrade.plugin_api import Bar, DataError, Instrument, MarketSettings, redact
from sandtrade_marketdata.polling import (
    ERROR_CHARS,
    PolledSource,
    PollError,
    PollOptions,
    parse_options,
    retry_after_seconds,
)

__all__ = ["AlpacaOptions", "AlpacaSource"]

DATA_URL = "https://data.alpaca.markets"
_TIMEFRAME = re.compile(r"^([1-9][0-9]*)(Min|T|Hour|H|Day|D)$")
_UNIT = {"Min": 60, "T": 60, "Hour": 3600, "H": 3600, "Day": 86400, "D": 86400}
_SYMBOL = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")
#: Bars asked for per page (the API's maximum is 10,000).
PAGE_LIMIT = 10_000


class AlpacaOptions(PollOptions):
    """``[sources.alpaca]``."""

    symbols: list[str] = Field(default_factory=lambda: ["AAPL"], min_length=1,
                               description="US equity symbols to follow.")
    feed: str = Field("iex", pattern=r"^[a-z_]+$",
                      description="Alpaca's data feed: iex, sip, delayed_sip, ...")
    timeframe: str = Field("1Min", description="Bar interval: 1Min, 5Min, 1Hour, 1Day.")
    key_id: SecretStr | None = Field(None, description="API key id (else APCA_API_KEY_ID).")
    secret_key: SecretStr | None = Field(None, description="API secret (else "
                                         "APCA_API_SECRET_KEY).")


class AlpacaSource(PolledSource):
    """Bars of US equities from Alpaca's market data, polled over REST."""

    name = "alpaca"
    #: ``--source alpaca:sip`` sets ``feed``.
    argument = "feed"

    def __init__(self, settings: MarketSettings) -> None:
        import requests  # with the source only: the plugin module stays light

        opts: AlpacaOptions = parse_options(self.name, AlpacaOptions, settings.source_options)
        m = _TIMEFRAME.match(opts.timeframe)
        if m is None:
            raise DataError(f"[sources.alpaca] timeframe: {opts.timeframe!r} is not one of "
                            "Alpaca's (1Min, 5Min, 15Min, 1Hour, 1Day)")
        symbols = [s.strip().upper() for s in opts.symbols]
        for i, symbol in enumerate(symbols):
            if not _SYMBOL.match(symbol):
                raise DataError(f"[sources.alpaca] symbols[{i}]: {opts.symbols[i]!r} is not a "
                                "US equity symbol (e.g. AAPL, BRK.B)")
        if len(set(symbols)) != len(symbols):
            raise DataError("[sources.alpaca] symbols: a symbol is given twice")
        key_id = (opts.key_id.get_secret_value() if opts.key_id
                  else os.environ.get("APCA_API_KEY_ID", ""))
        secret = (opts.secret_key.get_secret_value() if opts.secret_key
                  else os.environ.get("APCA_API_SECRET_KEY", ""))
        if not key_id or not secret:
            raise DataError("[sources.alpaca]: no API key: set APCA_API_KEY_ID and "
                            "APCA_API_SECRET_KEY in the environment (or key_id and secret_key "
                            "in [sources.alpaca]); a free Alpaca paper account has one")
        self.symbols = symbols
        self.feed = opts.feed
        self.timeframe = opts.timeframe
        self.base_url = (opts.base_url or DATA_URL).rstrip("/")
        self.timeout = opts.timeout_seconds
        self._key = (key_id, secret)
        self._requests = requests
        self._session = requests.Session()
        self._session.headers.update({"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret,
                                      "Accept": "application/json"})
        super().__init__(settings, opts,
                         interval=timedelta(seconds=int(m.group(1)) * _UNIT[m.group(2)]),
                         describe=f"alpaca {opts.feed}: {', '.join(symbols)} "
                                  f"{opts.timeframe} bars")

    def instruments(self) -> list[Instrument]:
        return [Instrument.equity(symbol) for symbol in self.symbols]

    def close(self) -> None:
        super().close()
        self._session.close()

    def describe_error(self, error: Exception) -> str:
        return redact(super().describe_error(error), self._key)

    # ------------------------------------------------------------ the polls

    def poll(self, last: Mapping[str, datetime]) -> dict[str, list[Bar]]:
        params: dict[str, Any] = {"symbols": ",".join(self.symbols), "feed": self.feed}
        if not last:
            data = self._get("/v2/stocks/bars/latest", params)
            bars = _field(data, "bars", dict, "")
            out: dict[str, list[Bar]] = {}
            for symbol, raw in bars.items():
                if symbol in self.symbols:
                    out[symbol] = [_bar(symbol, raw, f"bars.{symbol}")]
            return out
        # From the oldest symbol's last bar: each symbol's newer bars are kept by the caller.
        start = min(last.get(s, min(last.values())) for s in self.symbols)
        params.update(timeframe=self.timeframe, start=f"{start:%Y-%m-%dT%H:%M:%S}Z",
                      limit=PAGE_LIMIT, sort="asc")
        out = {}
        for _ in range(100):  # pages; a gap of more than a million bars is not caught up
            data = self._get("/v2/stocks/bars", params)
            for symbol, raws in _field(data, "bars", dict, "").items():
                if symbol not in self.symbols:
                    continue
                if not isinstance(raws, list):
                    raise PollError(f"alpaca: bars.{symbol}: {type(raws).__name__}, not a "
                                    "list of bars")
                out.setdefault(symbol, []).extend(
                    _bar(symbol, raw, f"bars.{symbol}[{i}]") for i, raw in enumerate(raws))
            token = data.get("next_page_token")
            if not token:
                break
            params["page_token"] = token
        return out

    def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        requests = self._requests
        try:
            r = self._session.get(self.base_url + path, params=params, timeout=self.timeout)
        except requests.Timeout:
            raise PollError(f"alpaca: GET {path}: no answer in {self.timeout:g} s") from None
        except requests.RequestException as e:
            reason = redact(f"{type(e).__name__}: {e}", self._key)
            raise PollError(f"alpaca: GET {path}: {reason[:ERROR_CHARS]}") from None
        if r.status_code != 200:
            raise self._status_error(path, r)
        try:
            data = r.json()
        except ValueError:
            raise PollError(f"alpaca: GET {path}: the answer is not JSON "
                            f"({r.text[:80]!r})") from None
        if not isinstance(data, dict):
            raise PollError(f"alpaca: GET {path}: the answer is a {type(data).__name__}, not "
                            "an object")
        return data

    def _status_error(self, path: str, r: Any) -> PollError:
        try:
            message = str(r.json().get("message", ""))
        except (ValueError, AttributeError):
            message = " ".join(r.text.split())
        message = redact(message, self._key)[:ERROR_CHARS]
        retry_after = None
        if r.status_code == 429:
            retry_after = retry_after_seconds(r.headers.get("Retry-After"))
            reset = r.headers.get("X-RateLimit-Reset")
            if retry_after is None and reset and reset.isdigit():
                retry_after = max(0.0, int(reset) - datetime.now(UTC).timestamp()) or None
        hint = {401: " (the API key was refused: check APCA_API_KEY_ID/APCA_API_SECRET_KEY)",
                403: " (the API key may not read this feed: the free plan reads iex)",
                429: " (rate limited" + (f"; Retry-After {retry_after:g} s)" if retry_after
                                         else ")")}.get(r.status_code, "")
        return PollError(f"alpaca: GET {path}: HTTP {r.status_code}"
                         f"{': ' + message if message else ''}{hint}", retry_after=retry_after)


def _field(data: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = data.get(key)
    if not isinstance(value, kind):
        got = "missing" if value is None else f"a {type(value).__name__}"
        want = "an object" if kind is dict else f"a {kind.__name__}"
        raise PollError(f"alpaca: {where}{key}: {got}, not {want}")
    return value


def _bar(symbol: str, raw: Any, where: str) -> Bar:
    """One of Alpaca's bar objects (``t`` RFC 3339, ``o h l c v`` numbers) as a bar; a
    :class:`PollError` naming the field that is wrong."""
    if not isinstance(raw, dict):
        raise PollError(f"alpaca: {where}: {type(raw).__name__}, not a bar object")
    stamp = raw.get("t")
    try:
        time = datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError:
        raise PollError(f"alpaca: {where}.t: {stamp!r} is not an RFC 3339 time") from None
    if time.tzinfo is not None:
        time = time.astimezone(UTC).replace(tzinfo=None)
    values = []
    for key in ("o", "h", "l", "c", "v"):
        value = raw.get(key, 0 if key == "v" else None)
        if (not isinstance(value, (int, float)) or isinstance(value, bool)
                or not math.isfinite(value)):
            raise PollError(f"alpaca: {where}.{key}: {value!r} is not a number")
        values.append(float(value))
    try:
        return Bar.checked(symbol, time, *values)
    except ValueError as e:
        raise PollError(f"alpaca: {where}: {e}") from None
