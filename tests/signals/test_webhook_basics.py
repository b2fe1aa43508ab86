"""The TradingView webhook end to end: an alert is journaled, answered, executed once."""

from __future__ import annotations

import httpx

from signals.conftest import Host, post


def test_an_alert_is_journaled_answered_and_its_order_filled_at_the_next_bar(host: Host
                                                                             ) -> None:
    host.market.publish(100.0)
    r = post(host.webhook, '{"ticker": "AAA", "action": "buy", "contracts": 3}\n')
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["status"] == "validated" and answer["duplicate"] is False
    host.wait_idle()
    [record] = host.signals()
    assert record.id == answer["id"]
    assert record.raw_body == '{"ticker": "AAA", "action": "buy", "contracts": 3}\n'
    assert record.status.value == "executed" and record.format == "tradingview"
    [order] = host.orders()
    assert order.id in record.orders and order.qty == 3 and order.side.value == "buy"
    host.market.publish(101.0)
    [order] = host.orders()
    assert order.status.value == "filled" and order.avg_fill_price == 101.0


def test_an_alert_with_a_query_string_is_answered_as_one_without(host: Host) -> None:
    """A plain POST is answered by the webhook's direct route, one with a query string by the
    documented FastAPI route: the same answers, statuses and error bodies either way."""
    host.market.publish(100.0)
    passphrase = f"{host.url}/webhooks/tradingview"
    cases = [
        (host.webhook, '{"ticker": "AAA", "action": "buy", "contracts": %d}'),
        (host.webhook, '{"ticker": "AAA", "action": "buy", "contracts": "1,000"}'),
        (host.webhook, "buy 1"),
        (f"{host.url}/webhooks/tradingview/st_nope", "buy %d AAA"),
        (passphrase, '{"passphrase": "TOKEN", "ticker": "AAA", "action": "sell", '
         '"contracts": %d}'.replace("TOKEN", host.token)),
        (passphrase, '{"ticker": "AAA", "action": "sell", "contracts": %d}'),
        (passphrase, '{"passphrase": "st_nope", "action": "sell", "contracts": %d}'),
    ]
    for i, (url, body) in enumerate(cases):
        # An accepted body differs between the two (or the second would be a duplicate).
        direct = post(url, body.replace("%d", str(2 * i + 1)))
        documented = post(url, body.replace("%d", str(2 * i + 2)), dry_run="false")
        assert direct.status_code == documented.status_code, (url, body, direct.text,
                                                              documented.text)
        a, b = direct.json(), documented.json()
        a.pop("id", None), b.pop("id", None)
        if "orders" in a:
            a["orders"][0].pop("qty"), b["orders"][0].pop("qty")
        assert a == b, (url, body)
    statuses = {r.status.value for r in host.signals()}
    assert statuses == {"executed", "rejected"}, "both routes journal and execute"


def test_other_methods_and_paths_under_the_webhook_are_answered_by_fastapi(host: Host) -> None:
    assert httpx.get(host.webhook, timeout=10).status_code == 405
    assert post(f"{host.webhook}/more", "buy 1 AAA").status_code == 404
    assert post(f"{host.url}/webhooks/tradingview/", "buy 1 AAA").status_code in (307, 404)
    assert host.signals() == []
