"""``/metrics`` over the real HTTP server: a scrape after alerts sent to the webhook parses as
Prometheus' text format (by prometheus_client's own parser) and its counters agree with the
store; only the operator's token may scrape by default, or an allowlisted address."""

from __future__ import annotations

import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from signals.conftest import Host, HostFactory, post


def _scrape(host: Host, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{host.url}/metrics", headers=headers, timeout=10)


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _operator(host: Host) -> str:
    return host.runtime.operator_token_path.read_text().strip()


def test_a_scrape_after_webhook_alerts_agrees_with_the_store(host: Host) -> None:
    host.market.publish(100.0)
    for body in ("buy 2 AAA", "sell 1 AAA", "this is not a signal"):
        post(host.webhook, body)
    host.wait_idle()
    host.market.publish(101.0)
    assert host.runtime.store is not None
    store_fills = host.runtime.store.list_fills("paper")
    assert len(store_fills) == 2

    deadline = time.monotonic() + 10
    while True:  # the alert-to-fill histogram is observed from the trade updates
        r = _scrape(host, _operator(host))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        samples = _samples(r.text)
        if samples.get(("sandtrade_alert_to_fill_seconds_count",
                        (("source", "tradingview"),))) == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)

    by_status: dict[str, int] = {}
    for record in host.signals():
        by_status[record.status.value] = by_status.get(record.status.value, 0) + 1
    for status, n in by_status.items():
        assert samples[("sandtrade_signals_total",
                        (("source", "tradingview"), ("status", status)))] == n, status
    assert by_status == {"executed": 2, "rejected": 1}
    assert samples[("sandtrade_fills_total", ())] == len(store_fills)
    assert samples[("sandtrade_orders_total", (("status", "filled"),))] == 2
    assert samples[("sandtrade_webhook_ack_seconds_count", ())] == 3
    assert samples[("sandtrade_alert_to_fill_seconds_count", (("source", "tradingview"),))] == 2
    assert samples[("sandtrade_strategies", (("state", "running"),))] == 0
    assert samples[("sandtrade_signals_waiting", ())] == 0
    assert ("sandtrade_feed_lag_bars", ()) in samples


def test_a_scrape_without_the_operators_token_is_refused(host: Host) -> None:
    assert host.runtime.auth is not None
    _, reader = host.runtime.auth.create("paper", ("read", "trade", "admin"))
    for token in (None, "nonsense", host.token, reader):
        r = _scrape(host, token)
        assert r.status_code == 401, (token, r.status_code)
        assert "sandtrade_" not in r.text


def test_an_allowlist_lets_its_addresses_scrape_without_a_token(make_host: HostFactory
                                                                ) -> None:
    allowed: Any = make_host('[metrics]\naccess = "allowlist"\nallow = ["127.0.0.0/8"]\n')
    assert _scrape(allowed, None).status_code == 200


def test_an_address_off_the_allowlist_is_refused(make_host: HostFactory) -> None:
    other = make_host('[metrics]\naccess = "allowlist"\nallow = ["10.0.0.0/8"]\n')
    r = _scrape(other, _operator(other))
    assert r.status_code == 403 and "sandtrade_" not in r.text
