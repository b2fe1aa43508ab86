"""``/metrics``: the host's figures in Prometheus' text format, by the official client.

Counters of what the store holds (signals by source and status, orders by status, fills) are
read from the store at each scrape, so a scrape always agrees with the store, also across
restarts. The host's live state (strategies by state, each running worker's CPU and memory,
kills by kind, signals waiting to execute, bars the broker has yet to work) is read at the
scrape too. Two histograms are observed as things happen: the webhook's answer time (from the
HTTP server, per request) and an alert's time to its fill (from the broker's trade updates:
the wall-clock time from a signal's arrival to the commit of a fill of an order it placed).

Who may scrape is a setting (``[metrics]``): the operator's token as a bearer token (the
default), or any client whose address is in an allowlist, or nobody.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Literal

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from pydantic import BaseModel, Field, field_validator

from sandtrade.broker.durable import DurableBroker
from sandtrade.sandbox.manager import StrategyManager
from sandtrade.store.base import Store

__all__ = ["CONTENT_TYPE", "HostMetrics", "MetricsSettings"]

log = logging.getLogger(__name__)

#: The media type of the text format.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: Signal ids whose arrival time is remembered for the alert-to-fill histogram.
_RECEIVED_KEPT = 10_000


class MetricsSettings(BaseModel):
    """``[metrics]``: who may read ``/metrics``."""

    access: Literal["token", "allowlist", "off"] = Field(
        "token", description="token: the operator's token as 'Authorization: Bearer'; "
        "allowlist: clients whose address is in allow; off: nobody (404)")
    allow: list[str] = Field(default_factory=list,
                             description="Addresses or networks (CIDR) allowed to scrape "
                                         "when access = \"allowlist\".")

    @field_validator("allow")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for k, item in enumerate(value):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError as e:
                raise ValueError(f"allow[{k}]: {e}") from None
        return value

    def allows(self, address: str | None) -> bool:
        """Whether a client at ``address`` is on the allowlist."""
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in ipaddress.ip_network(n, strict=False) for n in self.allow)


class HostMetrics:
    """The host's metrics: a registry of its own (nothing of the process-wide default)."""

    def __init__(self, *, store: Store, live: DurableBroker, strategies: StrategyManager,
                 signals_waiting: Callable[[], int], feed_lag: Callable[[], int],
                 recent_arrival: Callable[[str], datetime | None] | None = None) -> None:
        self.store = store
        #: When a signal the host received lately arrived, without reading the store (None:
        #: not one of those; the store is read).
        self.recent_arrival = recent_arrival or (lambda signal_id: None)
        self.strategies = strategies
        #: Signals journaled and not yet executed, now.
        self.signals_waiting = signals_waiting
        #: Bars published and not yet worked by the broker, now.
        self.feed_lag = feed_lag
        self.registry = CollectorRegistry(auto_describe=True)
        self.webhook_ack = Histogram(
            "sandtrade_webhook_ack_seconds", "Time from a webhook request's arrival to its "
            "answer (the signal journaled), by the HTTP server.", registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.alert_to_fill = Histogram(
            "sandtrade_alert_to_fill_seconds", "Wall-clock time from a signal's arrival to "
            "the commit of a fill of an order it placed, by the signal's source.",
            ["source"], registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300))
        self.registry.register(_HostCollector(self))
        self._received: OrderedDict[str, datetime] = OrderedDict()
        self._updates = live.subscribe(None)
        self._thread = threading.Thread(target=self._watch_fills, name="sandtrade-metrics",
                                        daemon=True)
        self._thread.start()

    def render(self) -> bytes:
        """One scrape, in the text format."""
        return generate_latest(self.registry)

    def close(self) -> None:
        """Stop watching fills."""
        self._updates.close()

    def _watch_fills(self) -> None:
        while True:
            update = self._updates.get()
            if update is None:
                return
            source = update.order.source
            if update.fill is None or source is None or not source.ref.startswith("sig_"):
                continue
            try:
                received = self._received_at(source.ref)
            except Exception as e:  # a metric must never take anything down
                log.debug("alert-to-fill of %s not measured: %s", source.ref, e)
                continue
            if received is not None:
                seconds = (datetime.now(UTC) - received).total_seconds()
                self.alert_to_fill.labels(source.kind).observe(max(0.0, seconds))

    def _received_at(self, signal_id: str) -> datetime | None:
        when = self._received.get(signal_id)
        if when is None:
            when = self.recent_arrival(signal_id)
            if when is not None:
                return when
            record = self.store.get_signal(signal_id)
            if record is None:
                return None
            when = record.received_at
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            self._received[signal_id] = when
            while len(self._received) > _RECEIVED_KEPT:
                self._received.popitem(last=False)
        return when


class _HostCollector:
    """What is read at each scrape."""

    def __init__(self, metrics: HostMetrics) -> None:
        self.m = metrics

    def describe(self) -> list[Metric]:
        return []  # read at collect time only

    def collect(self) -> Iterator[Metric]:
        began = time.perf_counter()
        counts = self.m.store.activity_counts()
        signals = CounterMetricFamily(
            "sandtrade_signals", "Signals journaled, by source and status (received, "
            "validated, routed, executed, rejected, failed, dropped).",
            labels=["source", "status"])
        for source, status, n in counts["signals"]:
            signals.add_metric([source, status], n)
        yield signals
        orders = CounterMetricFamily("sandtrade_orders", "Orders, by their status now.",
                                     labels=["status"])
        for status, n in counts["orders"]:
            orders.add_metric([status], n)
        yield orders
        fills = CounterMetricFamily("sandtrade_fills", "Fills recorded.")
        fills.add_metric([], counts["fills"][0][0])
        yield fills
        yield from self._strategies()
        waiting = GaugeMetricFamily("sandtrade_signals_waiting", "Signals journaled and not "
                                    "yet executed (the journal's lag).")
        waiting.add_metric([], self.m.signals_waiting())
        yield waiting
        lag = GaugeMetricFamily("sandtrade_feed_lag_bars", "Bars the market feed published "
                                "that the broker has not worked yet.")
        lag.add_metric([], self.m.feed_lag())
        yield lag
        took = GaugeMetricFamily("sandtrade_metrics_collect_seconds",
                                 "How long this scrape's reads took.")
        took.add_metric([], time.perf_counter() - began)
        yield took

    def _strategies(self) -> Iterator[Metric]:
        manager = self.m.strategies
        states: dict[str, int] = dict.fromkeys(
            ("stopped", "starting", "running", "stopping", "failed"), 0)
        cpu = CounterMetricFamily("sandtrade_strategy_cpu_seconds", "CPU time of a running "
                                  "strategy's worker.", labels=["account", "name"])
        rss = GaugeMetricFamily("sandtrade_strategy_memory_bytes", "Resident memory of a "
                                "running strategy's worker.", labels=["account", "name"])
        for record, state in manager.list_all():
            states[state] = states.get(state, 0) + 1
            if state in ("running", "starting", "stopping"):
                try:
                    _, _, status = manager.status(record.account, record.name)
                except Exception:  # deleted meanwhile
                    continue
                cpu.add_metric([record.account, record.name], status.cpu_seconds)
                rss.add_metric([record.account, record.name], status.rss_bytes)
        by_state = GaugeMetricFamily("sandtrade_strategies", "Strategies, by state.",
                                     labels=["state"])
        for state, n in states.items():
            by_state.add_metric([state], n)
        yield by_state
        yield cpu
        yield rss
        kills = CounterMetricFamily("sandtrade_strategy_kills", "Strategy workers that "
                                    "ended unasked, by kind, since the host started.",
                                    labels=["reason"])
        for reason, n in sorted(manager.kills.items()):
            kills.add_metric([reason], n)
        yield kills

