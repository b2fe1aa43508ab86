"""The dashboard's event stream: an id on every event, catch-up after a reconnect
(Last-Event-ID) with nothing lost or repeated, and a reader that fell behind the bounded log
told to read afresh; the session cookie and CSRF rules over plain HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from dashboard.serve import DashboardHost, sign_in
from sandtrade.client import Client
from sandtrade.watch import HostWatch, redact


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardHost]:
    h = DashboardHost(tmp_path_factory.mktemp("events"), speed=20).start()
    try:
        yield h
    finally:
        h.stop()


def read_events(client: httpx.Client, seconds: float, until: str | None = None,
                **headers: str) -> list[tuple[int, str, dict[str, object]]]:
    """(id, kind, data) of the events the stream sends within ``seconds`` (or until one
    whose data contains ``until``)."""
    out: list[tuple[int, str, dict[str, object]]] = []
    deadline = time.monotonic() + seconds
    buffer = ""
    with client.stream("GET", "/dashboard/events", headers=headers,
                       timeout=httpx.Timeout(10, read=5)) as stream:
        for chunk in stream.iter_text():
            buffer += chunk
            while "\n\n" in buffer:
                block, buffer = buffer.split("\n\n", 1)
                fields = dict(line.split(": ", 1) for line in block.splitlines()
                              if ": " in line and not line.startswith(":"))
                if "event" in fields:
                    out.append((int(fields["id"]), fields["event"],
                                json.loads(fields["data"])))
                    if until and until in fields["data"]:
                        return out
            if time.monotonic() > deadline:
                break
    return out


def test_a_reconnect_with_last_event_id_gets_what_it_missed_once(host: DashboardHost) -> None:
    alice = sign_in(host.url, host.tokens["alice"])
    first = host.alert("alice", "buy 1 DEMO").json()["id"]
    seen = read_events(alice, 10, until=f'"{first}","source"', **{"Last-Event-ID": "0"})
    ids = [i for i, _, _ in seen]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    last = ids[-1]
    # Away: two signals arrive and execute while no stream is open.
    missed = [host.alert("alice", f"buy {n} DEMO").json()["id"] for n in (2, 3)]
    again = read_events(alice, 10, until=f'"{missed[1]}","source"',
                        **{"Last-Event-ID": str(last)})
    assert again and all(i > last for i, _, _ in again)  # nothing repeated
    signals = {d["id"] for _, k, d in again if k == "signal"}
    assert missed[0] in signals and missed[1] in signals  # nothing lost
    kinds = {k for _, k, _ in again}
    assert "trade" in kinds or "signal" in kinds


def test_actions_need_a_session_and_the_csrf_token(host: DashboardHost) -> None:
    anonymous = httpx.Client(base_url=host.url, timeout=10)
    assert anonymous.get("/dashboard/api/orders").status_code == 401
    assert anonymous.post("/dashboard/api/orders/x/cancel").status_code == 401
    alice = sign_in(host.url, host.tokens["alice"])
    me = alice.get("/dashboard/api/me").json()
    assert me["account"] == "alice" and not me["operator"] and me["csrf"]
    r = alice.post("/dashboard/api/orders/nope/cancel")
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = alice.post("/dashboard/api/orders/nope/cancel", headers={"X-CSRF-Token": me["csrf"],
                                                                 "Origin": "http://evil.test"})
    assert r.status_code == 403 and "evil.test" in r.json()["error"]
    r = alice.post("/dashboard/api/orders/nope/cancel", headers={"X-CSRF-Token": me["csrf"]})
    assert r.status_code == 404 and "does not exist" in r.json()["error"]
    # A read-only token signs in and reads, but may not act.
    page = alice.get("/dashboard")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert alice.post("/dashboard/signout", headers={"X-CSRF-Token": me["csrf"]}).status_code \
        == 200
    assert alice.get("/dashboard/api/orders").status_code == 401


def test_a_reader_behind_the_bounded_log_is_told_to_read_afresh() -> None:
    watch = HostWatch(live=None, store=None, capacity=3)  # type: ignore[arg-type]
    for n in range(5):
        watch.emit("trade", "alice", {"n": n})
    events, gap = watch.after(0)
    assert gap and [e.id for e in events] == [3, 4, 5]
    events, gap = watch.after(3)
    assert not gap and [e.data["n"] for e in events] == [3, 4]
    assert watch.after(5) == ([], False)


def test_bodies_are_shown_without_tokens() -> None:
    body = '{"passphrase": "hunter2", "token": "st_0123456789abcdef_' + "a" * 43 + '"}'
    shown = redact(body)
    assert "hunter2" not in shown and "st_0123" not in shown


def test_live_performance_is_the_accounts_own_by_source(host: DashboardHost) -> None:
    """The account view's performance card reads the back-test's statistics of the
    account's fills, as a whole and per source: alice's TradingView alerts count under
    TradingView; bob's session reads his account only (the same numbers the host gives)."""
    host.alert("alice", "buy 3 DEMO")
    host.alert("alice", "sell 3 DEMO")
    alice = sign_in(host.url, host.tokens["alice"])
    deadline = time.monotonic() + 30
    while True:
        perf = alice.get("/dashboard/api/performance").json()
        if (perf["source"].get("tradingview") or {}).get("trades"):
            break
        assert time.monotonic() < deadline, perf
        time.sleep(0.2)
    assert set(perf) == {"account", "source", "strategy"}
    [(account, whole)] = perf["account"].items()
    assert account == "alice" and whole["trades"] >= 1
    assert sum(f["trades"] for f in perf["source"].values()) == whole["trades"]
    bob = sign_in(host.url, host.tokens["bob"])
    r = bob.get("/dashboard/api/performance", params={"account": "alice"})
    assert r.status_code == 403, r.text



PLOTTER = '''
def on_bar(ctx, bar):
    ctx.plot("close", bar.close, color="#ff9800")
    ctx.plot("bars", ctx.bar_index, pane="below")
'''


def test_a_live_strategys_plots_reach_the_host_api_and_the_event_stream(
        host: DashboardHost) -> None:
    """A strategy that plots, started over gRPC: its series appear in what the HostApi
    gives the dashboard (its account's only) and in ``plot`` events as it runs."""
    alice = sign_in(host.url, host.tokens["alice"])
    after = alice.get("/dashboard/api/me").json()["last_event_id"]
    with Client(host.grpc, host.tokens["operator"]) as client:
        client.upload_strategy("plotter", PLOTTER, symbols=["DEMO"], account="alice")
        client.start_strategy("plotter", account="alice")
        try:
            deadline = time.monotonic() + 30
            while True:
                plots = alice.get("/dashboard/api/plots", params={"symbol": "DEMO"}).json()
                if len(plots) == 2 and all(len(p["points"]) >= 3 for p in plots):
                    break
                assert time.monotonic() < deadline, plots
                time.sleep(0.1)
            close, bars = plots
            assert (close["strategy"], close["name"], close["pane"], close["color"],
                    close["symbol"]) == ("plotter", "close", "price", "#ff9800", "DEMO")
            assert (bars["name"], bars["pane"], bars["color"]) == ("bars", "below", None)
            times = [t for t, _ in close["points"]]
            assert times == sorted(set(times)) and all(v > 0 for _, v in close["points"])
            values = [v for _, v in bars["points"]]
            assert values == sorted(values)  # bar_index grows bar by bar
            events = read_events(alice, 20, until='"plotter","series"',
                                 **{"Last-Event-ID": str(after)})
            plotted = [d for _, k, d in events if k == "plot"]
            assert plotted and plotted[-1]["strategy"] == "plotter"
            assert {s["name"] for s in plotted[-1]["series"]} <= {"close", "bars"}
            assert alice.get("/dashboard/api/plots", params={"symbol": "ACME"}).json() == []
            bob = sign_in(host.url, host.tokens["bob"])
            assert bob.get("/dashboard/api/plots").json() == []
            assert bob.get("/dashboard/api/plots", params={"account": "alice"}
                           ).status_code == 403
        finally:
            client.stop_strategy("plotter", account="alice")


def test_position_groups_carry_their_payoff(tmp_path: Path) -> None:
    """The Options view's data: each open group with its legs and a payoff whose worst point
    at expiry is the group's max loss (as the host computes it over gRPC). (A host of its own
    replaying a day a second: a position lives for seconds of its month.)"""
    host = DashboardHost(tmp_path, speed=1).start()
    try:
        check_groups(host)
    finally:
        host.stop()


def check_groups(host: DashboardHost) -> None:
    with Client(host.grpc, token=host.tokens["bob"], retry_for=10.0) as client:
        deadline = time.monotonic() + 30
        while True:
            try:
                placed = client.submit_template("bull_call_spread", "DEMO", 2, expiry="30d",
                                                width=2)
                break
            except Exception:
                assert time.monotonic() < deadline, "no chain for DEMO"
                time.sleep(0.2)
    assert placed.order is not None and placed.order.status.value == "filled", placed
    bob = sign_in(host.url, host.tokens["bob"])
    [group] = bob.get("/dashboard/api/groups").json()
    assert group["id"] == placed.order.id and len(group["legs"]) == 2
    payoff = group["payoff"]
    assert len(payoff["prices"]) == len(payoff["at_expiry"]) == len(payoff["now"]) == 121
    assert min(payoff["at_expiry"]) == pytest.approx(-group["max_loss"], rel=1e-6)
    assert max(payoff["at_expiry"]) == pytest.approx(group["max_profit"], rel=1e-6)
    alice = sign_in(host.url, host.tokens["alice"])
    assert alice.get("/dashboard/api/groups", params={"account": "bob"}).status_code == 403
