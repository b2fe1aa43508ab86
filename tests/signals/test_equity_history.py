"""The equity curve since the account opened: the host's watch keeps points in the store, so
a restarted host draws the curve from the opening cash on, not from its own start; a long
curve is read thinned, keeping its shape.

A real host in process (signals.conftest: SQLite, live broker, gRPC, HTTP), its market moved
by the test."""

from __future__ import annotations

import time

import pytest

from sandtrade import watch
from sandtrade.auth import Principal
from signals.conftest import Host
from signals.test_pipeline import HostFactory, restart, send, stop_host


def operator(host: Host) -> Principal:
    assert host.runtime.auth is not None
    return host.runtime.auth.verify(host.runtime.operator_token_path.read_text().strip())


def stored(host: Host) -> list[tuple[float, float]]:
    assert host.runtime.store is not None
    return host.runtime.store.equity_points("paper")


def test_the_curve_starts_at_the_opening_cash_and_outlives_a_restart(
        make_host: HostFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watch, "STORED_EVERY", 0.0)  # every change kept: no minute to wait
    host = make_host()
    assert host.runtime.store is not None
    account = host.runtime.store.get_account("paper")
    assert account is not None
    cash = account.initial_cash
    host.market.publish(100.0)
    send(host, "buy 10 AAA")
    host.market.publish(100.0)
    host.market.publish(110.0)  # +100 on the position
    deadline = time.monotonic() + 30
    while not stored(host) or stored(host)[-1][1] != cash + 100:
        assert time.monotonic() < deadline, f"not stored: {stored(host)}"
        time.sleep(0.05)
    first = stored(host)[0]
    assert first[1] == cash  # (at the account's creation; the host's first look if unknown)
    if account.created_at is not None:
        assert first[0] == pytest.approx(account.created_at.timestamp(), abs=1.0)
    stop_host(host)

    again = restart(make_host, host)
    curve = again.runtime.host_api.equity_curve(operator(again), "paper")
    assert curve[0] == first, "from the opening, not from the restart"
    assert (cash + 100) in [e for _, e in curve]
    times = [t for t, _ in curve]
    assert times == sorted(times) and len(set(times)) == len(times)
    kept = stored(again)
    assert kept[0] == first and kept[1][0] > first[0], "the opening is stored once"


def test_a_long_curve_is_read_thinned_to_the_last_point_of_each_stretch() -> None:
    points = [(float(t), float(t % 7)) for t in range(20_000)]
    thinned = watch.thinned(points, 5_000)
    assert len(thinned) <= 5_000
    assert thinned[0] == points[0] and thinned[-1] == points[-1]
    assert [t for t, _ in thinned] == sorted({t for t, _ in thinned})
    assert set(thinned) <= set(points)
    assert watch.thinned(points[:10], 5_000) == points[:10]
