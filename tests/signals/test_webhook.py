"""The TradingView webhook's behaviours, over the real HTTP server of a started host.

Dry runs, resends and duplicates, the per-token rate limit, the body size limit, the address
allowlist behind (and not behind) a proxy, the host's own routes, what the journal keeps of a
passphrase, settings that must stop the host from starting, bodies the JSON decoder or the
journal cannot take (which must still be a 4xx: a 5xx makes TradingView resend, and must not
take the alerts journaled with them down too), and a quantity below one lot.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from rpc.conftest import StepsPlugin
from sandtrade.host.config import load_settings
from sandtrade.host.plugins import PluginHost
from sandtrade.host.runtime import HostRuntime
from signals.conftest import Host, post

HostFactory = Callable[..., Host]
NO_RATE_LIMIT = "[plugins.tradingview]\nrate_per_minute = 0\n"
TRADINGVIEW_SENDER = "52.89.214.238"


def _fill(host: Host, body: str) -> str:
    """Send ``body``, wait until it executed and fill it at the next bar; its signal id."""
    r = post(host.webhook, body)
    assert r.status_code == 200, r.text
    host.wait_idle()
    host.market.publish(100.0)
    return str(r.json()["id"])


def _position(host: Host, symbol: str = "AAA") -> float:
    assert host.runtime.live is not None
    return float(host.runtime.live.call(lambda b: b.position_qty("paper", symbol)))


# ------------------------------------------------------------------------------ dry runs


def test_a_dry_run_explains_what_the_commands_would_do_now_and_changes_nothing(host: Host
                                                                               ) -> None:
    host.market.publish(100.0)
    _fill(host, "buy 5 AAA")
    assert _position(host) == 5
    signals, orders = len(host.signals()), len(host.orders())

    r = post(host.webhook, "short 2 AAA", dry_run="true")

    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["id"] == "" and answer["status"] == "validated"
    explanation = answer["explanation"]
    assert "format: text" in explanation
    assert "bring AAA to a position of -2 (short)" in explanation
    assert "sell 5 AAA market (close the long)" in explanation
    assert "sell 2 AAA market (open the short)" in explanation
    host.wait_idle()
    assert len(host.signals()) == signals, "a dry run is not journaled"
    assert len(host.orders()) == orders, "a dry run orders nothing"
    assert _position(host) == 5


def test_a_dry_run_of_a_broken_body_is_a_422_with_the_explanation_and_journals_nothing(
        host: Host) -> None:
    r = post(host.webhook, '{"ticker": "AAA", "action": "buy", "contracts": "1,5"}',
             dry_run="true")

    assert r.status_code == 422, r.text
    answer = r.json()
    assert "a number written with a comma" in answer["error"]
    assert answer["id"] is None
    assert "rejected: contracts: \"1,5\" is a number written with a comma" in \
        answer["explanation"]
    assert host.signals() == []


def test_a_dry_run_does_not_make_the_real_alert_a_duplicate(host: Host) -> None:
    host.market.publish(100.0)
    body = '{"ticker": "AAA", "action": "buy", "contracts": 2}'
    assert post(host.webhook, body, dry_run="true").status_code == 200
    r = post(host.webhook, body)
    assert r.status_code == 200 and r.json()["duplicate"] is False, r.text
    host.wait_idle()
    [record] = host.signals()
    assert record.status.value == "executed" and len(record.orders) == 1


# ------------------------------------------------------------------------------ duplicates


def test_a_resend_after_a_5xx_is_answered_200_as_a_duplicate_and_not_executed_again(
        host: Host) -> None:
    host.market.publish(100.0)
    # TradingView resends the very same message (text/plain: it ends with a newline).
    body = '{"ticker": "AAA", "action": "buy", "contracts": 3}\n'
    first = post(host.webhook, body)
    assert first.status_code == 200 and first.json()["duplicate"] is False, first.text
    original = first.json()["id"]

    resends = [post(host.webhook, body) for _ in range(3)]

    for r in resends:
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["duplicate"] is True and answer["duplicate_of"] == original
        assert answer["status"] == "dropped" and answer["id"] != original
        assert "a resend" in answer["reason"]
    host.wait_idle()
    records = {r.id: r for r in host.signals()}
    assert records[original].status.value == "executed"
    assert [records[r.json()["id"]].status.value for r in resends] == ["dropped"] * 3
    [order] = host.orders()
    assert order.qty == 3 and order.id in records[original].orders
    host.market.publish(101.0)
    assert _position(host) == 3


def test_the_same_body_from_another_token_is_not_a_resend(host: Host) -> None:
    host.market.publish(100.0)
    assert host.runtime.auth is not None
    _, other = host.runtime.auth.create("paper", ("signal",))
    body = "buy 1 AAA"
    a = post(host.webhook, body)
    b = post(f"{host.url}/webhooks/tradingview/{other}", body)
    assert a.json()["duplicate"] is False and b.json()["duplicate"] is False
    host.wait_idle()
    assert [r.status.value for r in host.signals()] == ["executed", "executed"]
    assert len(host.orders()) == 2


def test_an_id_repeated_later_is_a_duplicate_even_in_another_body(host: Host) -> None:
    host.market.publish(100.0)
    first = _fill(host, '{"ticker": "AAA", "action": "buy", "contracts": 2, '
                        '"id": "AAA-2024-01-02T15:30:00Z"}')
    assert _position(host) == 2

    r = post(host.webhook, '{"ticker": "AAA", "action": "buy", "contracts": 2, '
                           '"close": 100.5, "id": "AAA-2024-01-02T15:30:00Z"}')

    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["duplicate"] is True and answer["duplicate_of"] == first
    assert answer["status"] == "dropped"
    assert "the same id 'AAA-2024-01-02T15:30:00Z'" in answer["reason"]
    host.wait_idle()
    host.market.publish(100.0)
    assert len(host.orders()) == 1 and _position(host) == 2


def test_without_a_resend_window_an_identical_body_executes_again_but_an_id_does_not(
        make_host: HostFactory) -> None:
    host = make_host("[signals]\nresend_window = 0\n")
    host.market.publish(100.0)
    for _ in range(2):
        assert post(host.webhook, "buy 1 AAA").json()["duplicate"] is False
    answers = [post(host.webhook, "buy 1 AAA id=once").json() for _ in range(2)]
    assert [a["duplicate"] for a in answers] == [False, True]
    host.wait_idle()
    assert [r.status.value for r in host.signals()] == ["executed", "executed", "executed",
                                                        "dropped"]
    assert len(host.orders()) == 3


# ------------------------------------------------------------------------------ limits


def test_a_token_over_its_rate_is_answered_429_with_retry_after_and_nothing_is_journaled(
        make_host: HostFactory) -> None:
    host = make_host("[plugins.tradingview]\nrate_per_minute = 6\nburst = 2\n")
    host.market.publish(100.0)
    ok = [post(host.webhook, f"buy 1 AAA id=burst-{i}") for i in range(2)]
    assert [r.status_code for r in ok] == [200, 200]

    r = post(host.webhook, "buy 1 AAA id=one-too-many")

    assert r.status_code == 429, r.text
    retry_after = r.headers["Retry-After"]
    assert retry_after.isdigit() and 1 <= int(retry_after) <= 10
    assert "plugins.tradingview.rate_per_minute" in r.json()["error"]
    assert "nothing was journaled" in r.json()["error"]
    # Per token: another token still gets through.
    assert host.runtime.auth is not None
    _, other = host.runtime.auth.create("paper", ("signal",))
    assert post(f"{host.url}/webhooks/tradingview/{other}", "buy 1 AAA").status_code == 200
    host.wait_idle()
    assert len(host.signals()) == 3
    assert all("one-too-many" not in s.raw_body for s in host.signals())


def test_a_body_over_max_body_bytes_is_a_413_and_nothing_is_journaled(
        make_host: HostFactory) -> None:
    host = make_host("[plugins.tradingview]\nmax_body_bytes = 64\n")
    host.market.publish(100.0)
    at_limit = "buy 1 AAA comment=" + "x" * (64 - len("buy 1 AAA comment="))
    assert len(at_limit.encode()) == 64
    assert post(host.webhook, at_limit).status_code == 200

    r = post(host.webhook, at_limit + "x")
    assert r.status_code == 413, r.text
    assert "at most 64" in r.json()["error"]

    # Without a Content-Length (chunked), the body is cut off as it arrives.
    chunks = (b"buy 1 AAA comment=" + b"y" * 40 for _ in range(3))
    r = httpx.post(host.webhook, content=chunks, headers={"Content-Type": "text/plain"},
                   timeout=10)
    assert r.status_code == 413, r.text
    assert "over 64 bytes" in r.json()["error"]
    host.wait_idle()
    assert len(host.signals()) == 1


# ------------------------------------------------------------------------------ allowlist


def test_an_address_outside_the_allowlist_gets_403_and_nothing_is_journaled(
        make_host: HostFactory) -> None:
    host = make_host('[plugins.tradingview]\nallowlist = ["10.0.0.0/8"]\n')
    r = post(host.webhook, "buy 1 AAA")
    assert r.status_code == 403, r.text
    assert "address 127.0.0.1 is not in the allowlist" in r.json()["error"]
    assert "plugins.tradingview.allowlist" in r.json()["error"]
    assert host.signals() == []


@pytest.mark.parametrize(("forwarded", "status"), [
    pytest.param(TRADINGVIEW_SENDER, 200, id="tradingview"),
    pytest.param("1.2.3.4", 403, id="another-address"),
    pytest.param(f"1.2.3.4, {TRADINGVIEW_SENDER}", 200, id="client-spoofed-then-tradingview"),
    pytest.param(f"{TRADINGVIEW_SENDER}, 1.2.3.4", 403, id="client-spoofs-tradingview"),
    pytest.param(None, 403, id="the-proxy-itself"),
])
def test_behind_a_trusted_proxy_the_forwarded_address_is_the_one_checked(
        make_host: HostFactory, forwarded: str | None, status: int) -> None:
    host = make_host('[plugins.tradingview]\nallowlist = ["tradingview"]\n'
                     'trusted_proxies = ["127.0.0.1/32"]\n')
    host.market.publish(100.0)
    headers = {"Content-Type": "text/plain"}
    if forwarded is not None:
        headers["X-Forwarded-For"] = forwarded
    r = httpx.post(host.webhook, content=b"buy 1 AAA", headers=headers, timeout=10)
    assert r.status_code == status, r.text
    host.wait_idle()
    assert len(host.signals()) == (1 if status == 200 else 0)


def test_without_trusted_proxies_x_forwarded_for_does_not_let_a_loopback_client_in(
        make_host: HostFactory) -> None:
    host = make_host('[plugins.tradingview]\nallowlist = ["tradingview"]\n')
    r = httpx.post(host.webhook, content=b"buy 1 AAA",
                   headers={"Content-Type": "text/plain",
                            "X-Forwarded-For": TRADINGVIEW_SENDER}, timeout=10)
    assert r.status_code == 403, (
        "X-Forwarded-For must be believed only from plugins.tradingview.trusted_proxies "
        f"(empty here); the peer is 127.0.0.1: {r.status_code} {r.text}")
    assert host.signals() == []


# ------------------------------------------------------------------------------ the host's routes


def test_health_answers_200_json_with_status_ok(host: Host) -> None:
    r = httpx.get(f"{host.url}/health", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["status"] == "ok"


def test_openapi_lists_both_webhook_paths(host: Host) -> None:
    r = httpx.get(f"{host.url}/openapi.json", timeout=10)
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "post" in paths["/webhooks/tradingview/{token}"]
    assert "post" in paths["/webhooks/tradingview"]
    assert "/health" in paths


@pytest.mark.parametrize("page, script", [("/docs", b"SwaggerUIBundle"),
                                          ("/redoc", b"Redoc")])
def test_docs_pages_load_everything_from_the_host_itself(host: Host, page: str,
                                                         script: bytes) -> None:
    """Nothing from a CDN (offline, FastAPI's own pages are blank): every URL the page loads
    is on this server, and answers with the script, style, icon or schema it names."""
    r = httpx.get(f"{host.url}{page}", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert re.findall(r"(?:https?:)?//", r.text) == [], "only same-origin URLs"
    urls = re.findall(r"""(?:src|href|spec-url)=["']([^"']+)|url: '([^']+)'""", r.text)
    loaded = {a or b for a, b in urls}
    assert any(u.endswith(".js") for u in loaded), loaded
    kinds = {".js": "text/javascript", ".css": "text/css", ".png": "image/png",
             ".json": "application/json"}
    for url in loaded:
        assert url.startswith("/"), url
        got = httpx.get(f"{host.url}{url}", timeout=10)
        assert got.status_code == 200, url
        assert got.headers["content-type"].startswith(kinds[url[url.rindex("."):]]), url
        if url.endswith(".js"):
            assert script in got.content and len(got.content) > 500_000, url
    assert "/openapi.json" in loaded
    assert httpx.get(f"{host.url}/docs/assets/nothing.js", timeout=10).status_code == 404


# ------------------------------------------------------------------------------ the journal


@pytest.mark.parametrize("body", [
    pytest.param('{"passphrase": "%s", "ticker": "AAA", "action": "buy", "contracts": 1}',
                 id="accepted"),
    pytest.param('{"passphrase": "%s", "ticker": "AAA", "action": "buy", "contracts": "1"}',
                 id="rejected"),
    pytest.param('{"passphrase": "%s", "ticker": "AAA", "action": "buy", "contracts": 1,}\n',
                 id="broken-json"),
])
def test_the_token_never_reaches_the_journal_from_the_passphrase_path(host: Host,
                                                                      body: str) -> None:
    host.market.publish(100.0)
    r = post(f"{host.url}/webhooks/tradingview", body % host.token)
    assert r.status_code in (200, 422), r.text
    host.wait_idle()
    [record] = host.signals()
    assert host.token not in record.raw_body
    assert record.raw_body == body % "[token]"
    assert host.token not in record.model_dump_json()


# ------------------------------------------------------------------------------ settings


def _start(tmp_path: Path, config: str) -> HostRuntime:
    path = tmp_path / "sandtrade.toml"
    path.write_text(config)
    settings = load_settings(path, data_dir=tmp_path / "data", grpc="127.0.0.1:0",
                             http="127.0.0.1:0",
                             market={"source": "steps", "bars_per_second": 0})
    runtime = HostRuntime(settings, plugins=PluginHost.create(extra=[StepsPlugin()]))
    try:
        runtime.start()
    except BaseException:
        runtime.stop()
        raise
    runtime.stop()
    return runtime


@pytest.mark.parametrize(("setting", "key"), [
    pytest.param('allowlist = ["nonsense"]', "plugins.tradingview.allowlist", id="allowlist"),
    pytest.param('trusted_proxies = ["10.0.0.0/33"]', "plugins.tradingview.trusted_proxies",
                 id="trusted_proxies"),
    pytest.param("burst = 0", "plugins.tradingview.burst", id="burst"),
    pytest.param("max_body_bytes = 10", "plugins.tradingview.max_body_bytes",
                 id="max_body_bytes"),
    pytest.param("rate_per_minut = 60", "plugins.tradingview.rate_per_minut", id="typo"),
])
def test_a_bad_plugin_setting_stops_the_host_from_starting_naming_it(
        tmp_path: Path, setting: str, key: str) -> None:
    with pytest.raises(Exception, match=key.replace(".", r"\.")) as caught:
        _start(tmp_path, f"[plugins.tradingview]\n{setting}\n")
    if "nonsense" in setting:
        assert "'nonsense' is neither an address, a CIDR range nor the preset" in \
            str(caught.value)


# ------------------------------------------------------------------------------ no 5xx


DEEP = "[" * 1500 + "]" * 1500


@pytest.mark.parametrize(("route", "body"), [
    pytest.param("token", "[" * 2000, id="token-deeply-nested-list"),
    pytest.param("token", '{"ticker": "AAA", "action": "buy", "contracts": 1, "extra": '
                 f"{DEEP}}}", id="token-deeply-nested-field"),
    pytest.param("passphrase", '{"passphrase": "%s", "ticker": "AAA", "action": "buy", '
                 f'"contracts": 1, "extra": {DEEP}}}', id="passphrase-deeply-nested-field"),
])
def test_json_nested_too_deep_is_a_422_not_a_5xx(make_host: HostFactory, route: str,
                                                  body: str) -> None:
    host = make_host(NO_RATE_LIMIT)
    if route == "token":
        r = post(host.webhook, body)
    else:
        r = post(f"{host.url}/webhooks/tradingview", body.replace("%s", host.token))
    assert len(body) < 16_384, "within max_body_bytes"
    assert r.status_code < 500, f"a 5xx makes TradingView resend: {r.status_code} {r.text}"
    assert r.status_code == 422, r.text
    assert "JSON" in r.json()["error"]


@pytest.mark.parametrize("dry_run", [False, True], ids=["sent", "dry-run"])
@pytest.mark.parametrize("body", [
    pytest.param('{"ticker": "AAA", "action": "buy", "contracts": 1, "comment": "\\ud83d"}',
                 id="in-a-value"),
    pytest.param('{"ticker": "AAA", "action": "buy", "contracts": 1, "\\udc00": 1}',
                 id="in-a-key"),
])
def test_a_json_escape_of_a_lone_surrogate_is_not_a_5xx(make_host: HostFactory, body: str,
                                                        dry_run: bool) -> None:
    """``"\\ud83d"`` is valid JSON (half an emoji) that decodes to text UTF-8 cannot hold."""
    host = make_host(NO_RATE_LIMIT)
    host.market.publish(100.0)
    r = post(host.webhook, body, dry_run=str(dry_run).lower())
    assert r.status_code < 500, f"a 5xx makes TradingView resend: {r.status_code} {r.text}"
    assert r.status_code in (200, 422), r.text
    assert r.json().get("error") or r.json().get("id") is not None
    host.wait_idle()
    assert len(host.signals()) == (0 if dry_run else 1), "journaled once, unless a dry run"


@pytest.mark.slow
def test_an_alert_the_journal_cannot_store_does_not_fail_the_alerts_sent_with_it(
        make_host: HostFactory) -> None:
    """The journal commits whatever arrived together in one go: one bad alert among them must
    not turn the others into 503s (each of which TradingView would send again)."""
    host = make_host(NO_RATE_LIMIT)
    host.market.publish(100.0)
    bad = '{"ticker": "AAA", "action": "buy", "contracts": 1, "comment": "\\ud83d"}'
    failed: list[str] = []
    good = 0
    with ThreadPoolExecutor(max_workers=30) as pool:
        for round_ in range(5):  # whether they share a commit is timing: try a few bursts
            bodies = [f"buy 1 AAA id=good-{round_}-{i}" for i in range(60)]
            for i in (45, 30, 15):
                bodies.insert(i, bad.replace("}", f', "id": "bad-{round_}-{i}"}}'))
            answers = list(pool.map(lambda body: post(host.webhook, body), bodies))
            for body, r in zip(bodies, answers, strict=True):
                if "good-" in body:
                    good += 1
                    if r.status_code != 200:
                        failed.append(r.text)
            if failed:
                break
    assert failed == [], f"{len(failed)} of {good} good alerts failed: {failed[0]}"


def test_a_quantity_below_one_lot_orders_nothing(host: Host) -> None:
    """AAA trades in whole shares: 1e-10 of a share is refused at once (tests/signals/
    test_answers.py has the other quantities a lot size rules out)."""
    host.market.publish(100.0)
    r = post(host.webhook, '{"ticker": "AAA", "action": "buy", "contracts": 0.0000000001}')
    assert r.status_code == 422, r.text
    assert "lot size 1" in r.json()["error"]
    host.wait_idle()
    assert host.orders() == []
    [record] = host.signals()
    assert record.status.value == "rejected" and "lot size" in record.reason
