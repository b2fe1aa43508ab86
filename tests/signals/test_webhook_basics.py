"""The TradingView webhook end to end: an alert is journaled, answered, executed once."""

from __future__ import annotations

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
