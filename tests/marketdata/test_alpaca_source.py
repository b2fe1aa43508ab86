"""The Alpaca source through a real host, against a local fake of Alpaca's Market Data API v2:
the key goes in its headers and nowhere else, bars arrive (the latest first, then every closed
one, page by page), orders fill at its prices, and errors are retried and named."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sandtrade.errors import SandtradeError

from .conftest import KEY_ID, SECRET, client, eventually, health, link, live_host
from .fakes import FakeAlpaca, Fault, minute_ago


def alpaca_options(fake: FakeAlpaca, **more: object) -> dict[str, object]:
    return {"base_url": fake.url, "symbols": ["AAPL", "MSFT"], "key_id": KEY_ID,
            "secret_key": SECRET, **more}


def seed(fake: FakeAlpaca) -> None:
    fake.add("AAPL", minute_ago(20), 189.0, 189.5, 188.8, 189.2)
    fake.add("MSFT", minute_ago(20), 410.0, 411.0, 409.5, 410.5)


def closes(host: object, symbol: str) -> list[float]:
    return [b.close for b in host.hub.bars(symbol)]  # type: ignore[attr-defined]


def test_bars_arrive_and_an_order_fills_at_the_vendor_price(tmp_path: Path,
                                                             alpaca: FakeAlpaca) -> None:
    alpaca.page_size = 2  # three pages for the next poll's bars
    seed(alpaca)
    with live_host(tmp_path, "alpaca:iex", alpaca_options(alpaca)) as host:
        eventually(lambda: closes(host, "AAPL") == [189.2] and closes(host, "MSFT") == [410.5],
                   "the latest bar of each")
        with client(host) as c:
            order = c.submit_order("AAPL", "buy", 10, account="paper")
            for i, (o, cl) in enumerate(((189.25, 189.4), (189.4, 189.9), (189.9, 190.1))):
                alpaca.add("AAPL", minute_ago(19 - i), o, max(o, cl) + 0.1, min(o, cl) - 0.1,
                           cl)
            alpaca.add("MSFT", minute_ago(19), 410.5, 411.5, 410.0, 411.0)
            eventually(lambda: closes(host, "AAPL") == [189.2, 189.4, 189.9, 190.1],
                       "every page's bars")
            filled = eventually(lambda: (x := c.get_order(order.id)).status.value == "filled"
                                and x, "the order filled")
            assert filled.avg_fill_price == pytest.approx(189.25)
        assert closes(host, "MSFT") == [410.5, 411.0]
        assert any("page_token=" in p for _, p in alpaca.paths("/v2/stocks/bars?"))
        assert all("feed=iex" in p for _, p in alpaca.paths("/v2/stocks/bars"))
        assert link(host)["source"] == "alpaca iex: AAPL, MSFT 1Min bars"


def test_the_key_is_sent_in_its_headers_and_never_shown(
        tmp_path: Path, alpaca: FakeAlpaca, caplog: pytest.LogCaptureFixture) -> None:
    seed(alpaca)
    caplog.set_level(logging.DEBUG)
    with live_host(tmp_path, "alpaca", alpaca_options(alpaca)) as host:
        eventually(lambda: link(host)["state"] == "live", "live")
        headers = alpaca.requests[-1][2]
        assert headers["APCA-API-KEY-ID"] == KEY_ID and headers["APCA-API-SECRET-KEY"] == SECRET
        # A hostile answer that quotes the key back: redacted before it is shown anywhere.
        alpaca.fault = Fault(403, {"message": f"key {KEY_ID} with secret {SECRET} refused"})
        down = eventually(lambda: (s := link(host))["state"] == "reconnecting" and s,
                          "reconnecting")
        assert "HTTP 403: key *** with secret *** refused" in down["last_error"]
        text = json.dumps(health(host))
        assert KEY_ID not in text and SECRET not in text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP 403" in logged
    assert KEY_ID not in logged and SECRET not in logged


def test_a_wrong_key_is_a_named_error(tmp_path: Path, alpaca: FakeAlpaca) -> None:
    seed(alpaca)
    with live_host(tmp_path, "alpaca", alpaca_options(alpaca, secret_key="wrong")) as host:
        down = eventually(lambda: (s := link(host))["state"] == "reconnecting" and s,
                          "reconnecting")
        assert "HTTP 401: unauthorized. (the API key was refused" in down["last_error"]


def test_the_key_comes_from_the_environment(tmp_path: Path, alpaca: FakeAlpaca,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    seed(alpaca)
    monkeypatch.setenv("APCA_API_KEY_ID", KEY_ID)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    with live_host(tmp_path, "alpaca", {"base_url": alpaca.url, "symbols": ["AAPL"]}) as host:
        eventually(lambda: link(host)["state"] == "live", "live")
    monkeypatch.delenv("APCA_API_KEY_ID")
    with pytest.raises(SandtradeError, match="no API key: set APCA_API_KEY_ID"), \
            live_host(tmp_path, "alpaca", {"base_url": alpaca.url}):
        pass


def test_a_429_honours_retry_after_and_a_malformed_bar_names_its_field(
        tmp_path: Path, alpaca: FakeAlpaca) -> None:
    seed(alpaca)
    with live_host(tmp_path, "alpaca", alpaca_options(alpaca)) as host:
        eventually(lambda: link(host)["state"] == "live", "live")
        alpaca.fault = Fault(429, {"message": "too many requests."}, {"Retry-After": "2"},
                             times=1)
        limited = eventually(lambda: (s := link(host))["state"] == "reconnecting" and s,
                             "rate limited")
        assert "HTTP 429: too many requests. (rate limited; Retry-After 2 s)" in \
            limited["last_error"]
        assert limited["retry_in"] > 1.0
        eventually(lambda: link(host)["state"] == "live", "live after the wait", timeout=30)
        alpaca.bars_body = {"bars": {"AAPL": [{"t": f"{minute_ago(18):%Y-%m-%dT%H:%M:%S}Z",
                                               "o": 1, "h": 2, "l": 0.5, "c": "x", "v": 1}]}}
        bad = eventually(lambda: (s := link(host))["state"] == "reconnecting" and s,
                         "reconnecting")
        assert bad["last_error"] == "alpaca: bars.AAPL[0].c: 'x' is not a number"
        alpaca.bars_body = {"bars": []}
        eventually(lambda: link(host)["last_error"] == "alpaca: bars: a list, not an object",
                   "the next error")
        alpaca.bars_body = None
        eventually(lambda: link(host)["state"] == "live", "live again")
        assert health(host)["market"]["state"] == "running"
