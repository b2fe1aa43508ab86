"""The ccxt source through a real host, against a local fake of Binance's public API: bars
arrive in the hub, paper orders fill at the exchange's prices, and a lost link is retried with
backoff and reported in ``/health`` and ``sandtrade doctor`` until it is live again."""

from __future__ import annotations

import json
from datetime import timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from sandtrade.cli.main import doctor_market_lines
from sandtrade.errors import SandtradeError
from sandtrade.host.runtime import HostRuntime

from .conftest import client, eventually, health, link, live_host
from .fakes import FakeBinance, Fault, minute_ago

SYMBOL = "BTCUSDT"


def ccxt_options(fake: FakeBinance, **more: object) -> dict[str, object]:
    return {"base_url": fake.url, "symbols": ["BTC/USDT"], **more}


def seed(fake: FakeBinance) -> None:
    """Three closed one-minute candles, the newest at 43,000."""
    for i, close in enumerate((42_800.0, 42_900.0, 43_000.0)):
        fake.add(SYMBOL, minute_ago(30 - i), close - 50, close + 100, close - 100, close)


def hub_closes(host: HostRuntime) -> list[float]:
    assert host.hub is not None
    return [b.close for b in host.hub.bars(SYMBOL)]


def test_the_newest_closed_candle_and_then_each_new_one_arrive_in_the_hub(
        tmp_path: Path, binance: FakeBinance) -> None:
    seed(binance)
    with live_host(tmp_path, "ccxt:binance", ccxt_options(binance)) as host:
        assert [i.symbol for i in host.source.instruments()] == [SYMBOL]  # type: ignore[union-attr]
        eventually(lambda: hub_closes(host) == [43_000.0], "the newest closed candle")
        binance.add(SYMBOL, minute_ago(27), 43_010, 43_200, 43_000, 43_150)
        binance.add(SYMBOL, minute_ago(26), 43_150, 43_300, 43_100, 43_250)
        eventually(lambda: hub_closes(host) == [43_000.0, 43_150.0, 43_250.0],
                   "both new candles, in order")
        assert host.hub is not None
        bar = host.hub.bars(SYMBOL)[-1]
        assert bar.time == minute_ago(26) and (bar.open, bar.high, bar.low) == (43_150, 43_300,
                                                                                 43_100)
        state = link(host)
        assert state["state"] == "live" and state["live"] is True
        assert state["source"] == "ccxt binance: BTC/USDT 1m bars"
        assert health(host)["market"]["source"] == "ccxt"


def test_the_candle_still_forming_is_not_emitted(tmp_path: Path, binance: FakeBinance) -> None:
    seed(binance)
    binance.add(SYMBOL, minute_ago(0), 43_000, 43_500, 42_900, 43_400)  # this minute's
    with live_host(tmp_path, "ccxt", ccxt_options(binance)) as host:
        eventually(lambda: hub_closes(host) == [43_000.0], "the newest closed candle")
        polls = len(binance.paths("/api/v3/klines"))
        eventually(lambda: len(binance.paths("/api/v3/klines")) > polls + 3, "more polls")
        assert hub_closes(host) == [43_000.0]


def test_a_paper_market_order_fills_at_the_exchange_price(tmp_path: Path,
                                                          binance: FakeBinance) -> None:
    seed(binance)
    with live_host(tmp_path, "ccxt:binance", ccxt_options(binance)) as host:
        eventually(lambda: hub_closes(host), "a first price")
        with client(host) as c:
            order = c.submit_order(SYMBOL, "buy", 0.125, client_order_id="btc-1",
                                   account="paper")
            binance.add(SYMBOL, minute_ago(25), 43_210.5, 43_400, 43_100, 43_300)
            filled = eventually(lambda: (o := c.get_order(order.id)).status.value == "filled"
                                and o, "the order filled")
            assert filled.avg_fill_price == pytest.approx(43_210.5)
            assert filled.filled_qty == pytest.approx(0.125)  # crypto: fractional quantities
            position = eventually(lambda: c.positions("paper"), "a position")[0]
            assert position.symbol == SYMBOL and position.market_price == pytest.approx(43_300)


def test_exchange_down_is_reconnecting_in_health_and_doctor_then_live_again(
        tmp_path: Path, binance: FakeBinance) -> None:
    seed(binance)
    with live_host(tmp_path, "ccxt:binance", ccxt_options(binance)) as host:
        eventually(lambda: link(host)["state"] == "live", "live")
        binance.stop()
        down = eventually(lambda: (s := link(host))["state"] == "reconnecting" and s,
                          "reconnecting")
        assert "BTC/USDT: NetworkError" in down["last_error"]
        assert down["failures"] >= 1 and down["retry_in"] is not None
        assert "reconnecting since" in down["message"]
        address = f"{host.http.host}:{host.http.port}"
        rows = {what: status for what, status, _ in doctor_market_lines(address)}
        assert rows["market source"].startswith("ccxt")
        assert "reconnecting since" in rows["market link"]
        assert "last error: BTC/USDT: NetworkError" in rows["market link"]
        binance.start()  # back on the same port
        binance.add(SYMBOL, minute_ago(27), 43_000, 43_100, 42_950, 43_050)
        back = eventually(lambda: (s := link(host))["state"] == "live" and s, "live again")
        assert back["failures"] == 0 and "recovered from: BTC/USDT: NetworkError" in \
            back["message"]
        eventually(lambda: hub_closes(host)[-1] == 43_050.0, "the bar made while it was down")
        rows = {what: status for what, status, _ in doctor_market_lines(address)}
        assert "live since" in rows["market link"]


def test_a_5xx_answer_is_retried_with_backoff(tmp_path: Path, binance: FakeBinance) -> None:
    seed(binance)
    with live_host(tmp_path, "ccxt", ccxt_options(binance)) as host:
        eventually(lambda: link(host)["state"] == "live", "live")
        binance.fault = Fault(503)
        down = eventually(lambda: (s := link(host))["failures"] >= 4 and s, "four failures")
        assert "ExchangeNotAvailable" in down["last_error"] and "503" in down["last_error"]
        start = len(binance.paths("/api/v3/klines"))
        eventually(lambda: len(binance.paths("/api/v3/klines")) >= start + 3, "more tries")
        times = [t for t, _ in binance.paths("/api/v3/klines")[start - 1:]]
        gaps = [b - a for a, b in pairwise(times)]
        # At the cap (0.3 s) by now, with equal jitter: each wait is 0.15-0.3 s, never 0.
        assert all(gap >= 0.14 for gap in gaps), gaps
        binance.fault = None
        eventually(lambda: link(host)["state"] == "live", "live again")


def test_a_429_is_retried_after_its_retry_after(tmp_path: Path, binance: FakeBinance) -> None:
    seed(binance)
    with live_host(tmp_path, "ccxt", ccxt_options(binance)) as host:
        eventually(lambda: link(host)["state"] == "live", "live")
        binance.fault = Fault(429, {"code": -1003, "msg": "Too many requests"},
                              {"Retry-After": "2"}, times=1)
        limited = eventually(lambda: (s := link(host))["state"] == "reconnecting" and s,
                             "rate limited")
        assert "DDoSProtection" in limited["last_error"]
        assert "Retry-After 2 s" in limited["last_error"]
        assert limited["retry_in"] > 1.0  # not the 0.05 s backoff
        eventually(lambda: link(host)["state"] == "live", "live after the wait", timeout=30)
        times = [t for t, _ in binance.paths("/api/v3/klines")]
        gaps = [b - a for a, b in pairwise(times)]
        assert max(gaps) >= 1.95, gaps  # the request after the 429 waited the 2 s asked


def test_a_timeout_is_a_reconnect(tmp_path: Path, binance: FakeBinance) -> None:
    seed(binance)
    with live_host(tmp_path, "ccxt", ccxt_options(binance, timeout_seconds=0.3)) as host:
        eventually(lambda: link(host)["state"] == "live", "live")
        binance.fault = Fault(200, [], delay=1.0)
        down = eventually(lambda: (s := link(host))["state"] == "reconnecting" and s,
                          "reconnecting")
        assert "RequestTimeout" in down["last_error"]
        binance.fault = None
        eventually(lambda: link(host)["state"] == "live", "live again")


def test_a_malformed_candle_is_an_error_naming_the_field_not_a_crash(
        tmp_path: Path, binance: FakeBinance) -> None:
    seed(binance)
    with live_host(tmp_path, "ccxt", ccxt_options(binance)) as host:
        eventually(lambda: link(host)["state"] == "live", "live")
        stamp = binance.candles[SYMBOL][-1][0] + 60_000
        binance.klines_body = [[stamp, "not-a-price", "1", "1", "1", "1", stamp + 59_999]]
        down = eventually(lambda: (s := link(host))["state"] == "reconnecting" and s,
                          "reconnecting")
        assert "BTC/USDT: candle 0 of 1" in down["last_error"]
        assert "open must be a number, got None" in down["last_error"]
        binance.klines_body = [[stamp, "5", "1", "2", "3", "1", stamp + 59_999]]
        eventually(lambda: "high/low do not contain open/close" in (link(host)["last_error"]
                                                                     or ""), "a second error")
        binance.klines_body = None
        eventually(lambda: link(host)["state"] == "live", "live again")
        assert health(host)["market"]["state"] == "running"  # the feed never failed


def test_bad_settings_are_refused_naming_the_key(tmp_path: Path) -> None:
    cases: list[tuple[str, dict[str, object], str]] = [
        ("ccxt:nosuchexchange", {}, "[sources.ccxt] exchange: 'nosuchexchange' is not an "
                                    "exchange ccxt knows"),
        ("ccxt", {"symbols": ["BTC"]}, "[sources.ccxt] symbols[0]: 'BTC' is not a pair"),
        ("ccxt", {"timeframe": "7s"}, "[sources.ccxt] timeframe: '7s' is not offered by "
                                      "binance"),
        ("ccxt", {"poll": 1}, "[sources.ccxt] poll: Extra inputs are not permitted"),
        ("replay:x", {}, "the replay source takes no argument"),
    ]
    for source, options, message in cases:
        with pytest.raises(SandtradeError) as e, live_host(tmp_path, source, options):
            pass
        assert message in str(e.value), (source, str(e.value))


def test_the_health_json_is_plain_json(tmp_path: Path, binance: FakeBinance) -> None:
    seed(binance)
    with live_host(tmp_path, "ccxt", ccxt_options(binance)) as host:
        eventually(lambda: link(host)["state"] == "live", "live")
        status = host.feed_status()
        assert status is not None and status.connection is not None
        assert json.loads(json.dumps(status.to_json()))["connection"]["live"] is True
        assert status.connection.since <= status.connection.last_ok_at + timedelta(seconds=1)  # type: ignore[operator]
