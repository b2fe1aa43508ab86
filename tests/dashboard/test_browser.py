"""The dashboard in a real headless Chromium (the system's /usr/bin/chromium, driven by
Playwright) against a real ``sandtrade serve``: sign-in, live timeline and chart, a rejected
alert's reason, a strategy's log following, scope between accounts, CSRF, and a page that
asks nothing of any other host and logs no error."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from dashboard.serve import DashboardHost, sign_in
from sandtrade.client import Client

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():  # .ci/run installs it; a developer's machine may lack it
    pytest.skip("needs the system's Chromium at /usr/bin/chromium (apt-get install chromium)",
                allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (test extras)")

VIEWS = ("account", "chart", "signals", "orders", "strategies", "options")
LOGGER = '''
def on_bar(ctx, bar):
    ctx.log(f"seen {bar.symbol} close {bar.close}")
'''


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardHost]:
    h = DashboardHost(tmp_path_factory.mktemp("dash"), speed=20).start()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield b
        finally:
            b.close()


def wait_until(check: Any, timeout: float = 30.0) -> None:
    """Poll ``check()`` until it is true (the page's CSP forbids Playwright's string
    predicates, which it evaluates with eval)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not true after {timeout} s: {check}"
        time.sleep(0.02)


class Watched:
    """A page with its console errors and every request it made recorded."""

    def __init__(self, browser: Any, host: DashboardHost, width: int = 1400,
                 height: int = 900) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": height})
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        # With its stack: a library's minified "Value is null" says nothing on its own.
        self.page.on("pageerror", lambda e: self.errors.append(f"{e}\n{e.stack}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.host = host

    def sign_in(self, token: str) -> Any:
        page = self.page
        page.goto(self.host.url + "/")
        page.fill("#token", token)
        page.click("button[type=submit]")
        page.wait_for_selector("#banner")
        wait_until(lambda: page.locator("#whoami").inner_text() != "")
        return page

    def view(self, name: str) -> None:
        self.page.evaluate(f"location.hash = '#{name}'")
        self.page.wait_for_selector(f"#view-{name}:not([hidden])")

    def check_clean(self) -> None:
        assert not self.errors, self.errors
        outside = [u for u in self.requests if not u.startswith(self.host.url + "/")]
        assert not outside, outside

    def close(self) -> None:
        self.context.close()


def test_sign_in_keeps_the_token_out_of_urls_and_storage(browser: Any,
                                                          host: DashboardHost) -> None:
    w = Watched(browser, host)
    page = w.page
    page.goto(host.url + "/")
    assert page.locator("#token").is_visible()
    assert page.locator("#banner").count() == 0  # nothing of the host before signing in
    page.fill("#token", "st_0000000000000000_" + "x" * 43)
    page.click("button[type=submit]")
    assert "not a valid token" in page.locator(".error").inner_text()
    page = w.sign_in(host.tokens["alice"])
    token = host.tokens["alice"]
    (cookie,) = [c for c in w.context.cookies() if c["name"] == "sandtrade_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert token not in cookie["value"]
    stored = page.evaluate("JSON.stringify([document.cookie, {...localStorage}, "
                           "{...sessionStorage}, document.documentElement.outerHTML])")
    assert token not in stored and "sandtrade_session" not in stored
    assert all(token not in u for u in w.requests)
    assert page.locator("#whoami").inner_text().startswith("alice")
    # Sign-out ends the session: the page is the sign-in page again.
    page.click("#signout")
    page.wait_for_selector("#token")
    assert httpx.get(host.url + "/dashboard/api/me", cookies={
        "sandtrade_session": cookie["value"]}).status_code == 401
    w.check_clean()
    w.close()


def test_an_alert_reaches_the_timeline_and_the_chart_live(browser: Any,
                                                          host: DashboardHost) -> None:
    w = Watched(browser, host)
    page = w.sign_in(host.tokens["alice"])
    for name in VIEWS:  # the PAPER banner on every page
        w.view(name)
        banner = page.locator("#banner")
        assert banner.is_visible() and banner.inner_text().startswith("PAPER"), name
    w.view("signals")
    body = json.dumps({"ticker": "DEMO", "action": "buy", "contracts": 3,
                       "id": "dash-alert-1", "passphrase": host.tokens["alice"]})
    r = host.alert("alice", body)
    assert r.status_code == 200, r.text
    sid = r.json()["id"]
    card = f"[data-signal='{sid}']"
    # Live, without a reload (how fast is bench/dashboard.py's to measure: a timed bound
    # here would fail on a loaded machine, not on a slow dashboard).
    page.wait_for_selector(f"{card} [data-status=executed]", timeout=20_000)
    assert page.locator(f"{card} .badge[data-kind=tradingview]").inner_text() == \
        "TradingView · dash-alert-1"
    shown = page.locator(f"{card} pre").inner_text()
    assert host.tokens["alice"] not in shown and '"passphrase": "[redacted]"' in shown
    steps = page.locator(f"{card} .steps li").all_inner_texts()
    assert [s.split(" ")[0] for s in steps][-1] == "executed" and len(steps) >= 3
    assert "buy 3 DEMO market" in page.locator(f"{card} .sig-read").inner_text()
    # The chart: the fill, with the TradingView badge.
    w.view("chart")
    fill = page.locator("#markers li[data-marker=fill][data-side=buy]").first
    fill.wait_for(timeout=5000)
    assert fill.locator(".badge[data-kind=tradingview]").count() == 1
    assert "buy 3 DEMO @" in fill.inner_text()
    # Orders: the order, filled, with its source.
    w.view("orders")
    page.wait_for_selector("#orders tbody tr [data-status=filled]")  # drawn once in sight
    row = page.locator("#orders tbody tr").first
    assert row.locator("[data-status=filled]").count() == 1
    assert row.locator(".badge[data-kind=tradingview]").count() == 1
    # Account: the position is there.
    w.view("account")
    page.wait_for_selector("#positions tbody tr")
    assert "DEMO" in page.locator("#positions tbody").inner_text()
    w.check_clean()
    w.close()


def test_a_rejected_alert_shows_its_reason(browser: Any, host: DashboardHost) -> None:
    w = Watched(browser, host)
    page = w.sign_in(host.tokens["alice"])
    w.view("signals")
    r = host.alert("alice", '{"ticker": "DEMO", "action": "buy", '
                            '"contracts": "{{strategy.order.contracts}}"}')
    assert r.status_code == 422, r.text
    sid, error = r.json()["id"], r.json()["error"]
    card = f"[data-signal='{sid}']"
    page.wait_for_selector(f"{card} [data-status=rejected]", timeout=5000)
    assert error in page.locator(f"{card} .reason").inner_text()
    # The filters: by status and by source.
    page.select_option("#f-status", "rejected")
    wait_until(lambda: page.locator(".sig:not(.rejected)").count() == 0)
    assert page.locator(".sig").count() >= 1
    w.check_clean()
    w.close()


def test_a_strategy_started_over_grpc_appears_with_its_log_following(
        browser: Any, host: DashboardHost) -> None:
    w = Watched(browser, host)
    page = w.sign_in(host.tokens["alice"])
    w.view("strategies")
    with Client(host.grpc, host.tokens["operator"]) as client:
        client.upload_strategy("ticker", LOGGER, symbols=["DEMO"], account="alice")
        client.start_strategy("ticker", account="alice")
        card = "[data-strategy=ticker]"
        page.wait_for_selector(f"{card} [data-state=running]", timeout=20_000)
        log = page.locator(f"{card} pre.log")
        lines = log.locator("div")
        wait_until(lambda: lines.count() >= 3, 20)
        before = lines.count()
        wait_until(lambda: lines.count() > before, 10)  # following, without a reload
        assert "seen DEMO close" in log.inner_text()
        client.stop_strategy("ticker", account="alice")
    page.wait_for_selector(f"{card} [data-state=stopped]", timeout=20_000)
    w.check_clean()
    w.close()


PLOTTER = '''
def on_bar(ctx, bar):
    ctx.plot("mid", (bar.high + bar.low) / 2, color="#ff9800")
    ctx.plot("range", bar.high - bar.low, pane="below")
'''


def test_a_strategys_plotted_series_appear_on_the_chart_live(browser: Any,
                                                             host: DashboardHost) -> None:
    w = Watched(browser, host)
    page = w.sign_in(host.tokens["alice"])
    w.view("chart")
    assert page.locator("#symbol").input_value() == "DEMO"
    with Client(host.grpc, host.tokens["operator"]) as client:
        client.upload_strategy("drawer", PLOTTER, symbols=["DEMO"], account="alice")
        client.start_strategy("drawer", account="alice")
        try:
            mid = page.locator("#plots li[data-plot='drawer/mid']")
            below = page.locator("#plots li[data-plot='drawer/range']")
            mid.wait_for(timeout=20_000)  # from the stream: the page was open before
            below.wait_for(timeout=5_000)
            assert mid.get_attribute("data-pane") == "price"
            assert below.get_attribute("data-pane") == "below"
            assert "drawer · mid" in mid.inner_text()
            drawn = lambda: int(mid.get_attribute("data-points") or 0)  # noqa: E731
            wait_until(lambda: drawn() >= 2, 20)
            before = drawn()
            wait_until(lambda: drawn() > before, 20)  # growing live, without a reload
            # A fresh page draws the window the host keeps.
            page.reload()
            page.wait_for_selector("#banner")
            w.view("chart")
            page.locator("#plots li[data-plot='drawer/mid']").wait_for(timeout=10_000)
            assert int(page.locator("#plots li[data-plot='drawer/mid']")
                       .get_attribute("data-points") or 0) >= before
        finally:
            client.stop_strategy("drawer", account="alice")
    w.check_clean()
    w.close()


def test_bob_sees_nothing_of_alices(browser: Any, host: DashboardHost) -> None:
    r = host.alert("alice", "buy 1 DEMO")
    assert r.status_code == 200, r.text
    alice_signal = r.json()["id"]
    # The event stream of bob's session, read while alice trades.
    bob = sign_in(host.url, host.tokens["bob"])
    received: list[str] = []

    def read() -> None:
        until = time.monotonic() + 4
        with bob.stream("GET", "/dashboard/events", params={"after": "0"},
                        timeout=httpx.Timeout(10, read=5)) as stream:
            for chunk in stream.iter_text():  # bars come every second: never silent long
                received.append(chunk)
                if time.monotonic() > until:
                    break

    reader = threading.Thread(target=read)
    reader.start()
    assert host.alert("alice", "sell 1 DEMO").status_code == 200
    reader.join(20)
    stream_text = "".join(received)
    assert "event: bars" in stream_text  # it was reading
    assert "alice" not in stream_text and alice_signal not in stream_text
    # bob's reads, and bob asking for alice's account by name.
    for name in ("orders", "signals", "fills", "strategies"):
        assert bob.get(f"/dashboard/api/{name}").json() == [], name
        assert bob.get(f"/dashboard/api/{name}", params={"account": "alice"}).status_code \
            == 403
    assert bob.get("/dashboard/events", params={"account": "alice"}).status_code == 403
    # bob's pages.
    w = Watched(browser, host)
    page = w.sign_in(host.tokens["bob"])
    for name in VIEWS:
        w.view(name)
        assert page.locator("#banner").inner_text().startswith("PAPER")
    w.view("signals")
    page.wait_for_selector("#timeline-empty:not([hidden])")
    text = page.locator("body").inner_text()
    assert "alice" not in text and alice_signal not in text
    assert page.locator("#orders tbody tr").count() == 0
    assert page.locator("#account-switch").is_hidden()
    w.check_clean()
    w.close()


def test_a_cancel_needs_the_csrf_token(browser: Any, host: DashboardHost) -> None:
    with Client(host.grpc, host.tokens["alice"]) as client:
        far = round(client.latest_quote("DEMO").bid * 0.6, 2)  # within the ±50 % band
        order = client.submit_order("DEMO", "buy", 1, limit_price=far)
        assert order.status.value == "accepted", order.reject_reason
        w = Watched(browser, host)
        page = w.sign_in(host.tokens["alice"])
        w.view("orders")
        row = page.locator(f"[data-order='{order.id}']")
        row.wait_for()
        refused = page.evaluate(f"""fetch('/dashboard/api/orders/{order.id}/cancel',
            {{method: 'POST'}}).then(r => r.status)""")
        assert refused == 403
        wrong = page.evaluate(f"""fetch('/dashboard/api/orders/{order.id}/cancel',
            {{method: 'POST', headers: {{'X-CSRF-Token': 'guess'}}}}).then(r => r.status)""")
        assert wrong == 403
        # Chromium logs each refused request as an error: those two are this test's own.
        assert len(w.errors) == 2 and all("403" in e for e in w.errors), w.errors
        w.errors.clear()
        assert client.get_order(order.id).status.value == "accepted"
        row.locator("button", has_text="Cancel").click()
        page.wait_for_selector(f"[data-order='{order.id}'] [data-status=canceled]",
                               timeout=5000)
        assert client.get_order(order.id).status.value == "canceled"
    w.check_clean()
    w.close()


def test_the_operator_sees_every_account_and_switches(browser: Any,
                                                       host: DashboardHost) -> None:
    assert host.alert("bob", "buy 2 DEMO").status_code == 200
    w = Watched(browser, host)
    page = w.sign_in(host.tokens["operator"])
    switch = page.locator("#account-switch")
    switch.wait_for(state="visible", timeout=20_000)  # once the page knows who signed in
    wait_until(lambda: {"alice", "bob"} <= set(switch.locator("option").all_inner_texts()))
    switch.select_option("bob")
    w.view("signals")
    timeline = page.locator("#timeline")
    wait_until(lambda: "buy 2 DEMO" in timeline.inner_text())
    assert "dash-alert-1" not in timeline.inner_text()  # alice's, not shown as bob's
    switch.select_option("alice")
    wait_until(lambda: "buy 2 DEMO" not in page.locator("#timeline").inner_text())
    w.check_clean()
    w.close()


@pytest.fixture(scope="module")
def slow_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardHost]:
    """A host replaying a day a second: an option position lives for seconds of its month
    (the shared host replays twenty days a second)."""
    h = DashboardHost(tmp_path_factory.mktemp("dash-options"), speed=1).start()
    try:
        yield h
    finally:
        h.stop()


def test_an_open_iron_condor_is_shown_with_its_legs_bounds_and_payoff(
        browser: Any, slow_host: DashboardHost) -> None:
    """A condor opened by template over gRPC appears on the Options view: its four legs, its
    max profit and loss, and a payoff drawn at expiry and today."""
    host = slow_host
    with Client(host.grpc, token=host.tokens["alice"], retry_for=10.0) as client:
        deadline = time.monotonic() + 30
        while True:  # until the host has a price for DEMO, and so a chain
            try:
                placed = client.submit_template("iron_condor", "DEMO", 1, expiry="30d",
                                                short_delta=0.16, width=2)
                break
            except Exception:
                assert time.monotonic() < deadline, "no chain for DEMO"
                time.sleep(0.2)
    assert placed.order is not None and placed.order.status.value == "filled", placed
    w = Watched(browser, host)
    page = w.sign_in(host.tokens["alice"])
    w.view("options")
    card = page.locator(f"[data-group='{placed.order.id}']")
    card.wait_for(timeout=20_000)
    assert card.locator("h2").inner_text() == "iron_condor on DEMO"
    assert card.locator("tbody tr").count() == 4
    assert card.locator("svg polyline").count() == 3  # zero, at expiry, today
    assert "unlimited" not in card.inner_text()  # a condor's loss is bounded
    w.check_clean()
    w.close()


def test_a_paused_route_drops_alerts_with_the_reason_until_resumed(
        browser: Any, host: DashboardHost) -> None:
    w = Watched(browser, host)
    page = w.sign_in(host.tokens["bob"])
    w.view("signals")
    route = page.locator("#routes li[data-route='paper:bob']")
    route.wait_for(timeout=20_000)
    assert route.get_attribute("data-paused") == "false"
    route.locator("button", has_text="Pause").click()
    page.wait_for_selector("#routes li[data-route='paper:bob'][data-paused=true]",
                           timeout=20_000)  # from the host's event, not the click
    try:
        assert "since" in route.inner_text() and "token" in route.inner_text()
        r = host.alert("bob", "sell 1 DEMO")
        assert r.status_code == 200 and r.json()["status"] == "dropped", r.text
        card = f"[data-signal='{r.json()['id']}']"
        page.wait_for_selector(f"{card} [data-status=dropped]", timeout=20_000)
        assert "the route to paper:bob is paused" in page.locator(f"{card} .reason").inner_text()
    finally:
        route.locator("button", has_text="Resume").click()
        page.wait_for_selector("#routes li[data-route='paper:bob'][data-paused=false]",
                               timeout=20_000)
    r = host.alert("bob", "sell 1 DEMO")
    page.wait_for_selector(f"[data-signal='{r.json()['id']}'] [data-status=executed]",
                           timeout=20_000)
    w.check_clean()
    w.close()


def test_the_timeline_keeps_the_newest_signals_first_and_follows_their_orders(
        browser: Any, host: DashboardHost) -> None:
    """Live, the timeline redraws only the signals that changed: new ones on top in the order
    they came, the newest 100 shown, each card following its order to filled; a filter set
    while signals arrive shows only the ones it lets through."""
    w = Watched(browser, host)
    page = w.sign_in(host.tokens["alice"])
    w.view("signals")
    with Client(host.grpc, host.tokens["alice"]) as client:
        sent = [client.send_signal(f"buy {n + 1} DEMO").id for n in range(105)]
        newest = f"[data-signal='{sent[-1]}']"
        page.wait_for_selector(f"{newest} [data-status=executed]", timeout=30_000)
        wait_until(lambda: "(filled @" in page.locator(f"{newest} .small").inner_text())
        shown = page.locator("#timeline > li").evaluate_all(
            "items => items.map(i => i.dataset.signal)")
        assert shown == sent[::-1][:100]  # newest first, the oldest five gone
        assert "sandtrade signals list" in page.locator("#timeline-more").inner_text()
        # A filter: only rejected signals, and those that come stay filtered.
        page.select_option("#f-status", "rejected")
        wait_until(lambda: page.locator("#timeline > li:not(.rejected)").count() == 0)
        good = client.send_signal("buy 1 DEMO").id  # executed: filtered out
    r = host.alert("alice", '{"ticker": "DEMO", "action": "buy", "contracts": "x"}')
    assert r.status_code == 422, r.text
    rejected = r.json()["id"]
    page.wait_for_selector(f"[data-signal='{rejected}']", timeout=20_000)
    assert page.locator("#timeline > li").first.get_attribute("data-signal") == rejected
    assert page.locator(f"[data-signal='{good}']").count() == 0
    w.check_clean()
    w.close()
