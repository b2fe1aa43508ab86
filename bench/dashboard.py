"""Dashboard under load: fill-to-screen latency with browsers watching, and what the browsers
cost the webhook.

    python bench/dashboard.py [--rate 50] [--seconds 8] [--browsers 10] [--raw] [--control]
                              [--view orders] [--browser-cpus LIST]

Starts a real ``sandtrade serve`` (subprocess, loopback, the demo market at 20 bars/s, the
webhook's rate limit and the signal quota off), then runs the same open-loop webhook load
twice, each alert a market order of alice's with a unique id:

1. with no dashboard open: the webhook's ack latency p50/p99;
2. with ``--browsers`` headless Chromium pages (the system's /usr/bin/chromium) signed in as
   alice on the orders view: the ack latency again, and fill-to-screen latency p50/p99, from
   the moment the host committed a fill (the ``at`` stamp of its trade event) to the moment
   the page had the filled order in its table (the page records each, ``S.fillLag``).

The browsers stand for people looking from their own machines: here they share the host's
two cores, so by default they run under Linux's ``SCHED_IDLE`` policy (``chrt --idle 0``,
through a wrapper that starts the system's Chromium; every renderer inherits it) and take
only what the host leaves. A niceness would not hold: Chromium, run as root, sets its own
processes' niceness (its browser process to -8). ``--browsers-sched normal`` runs them as
the host runs, as the first measurement did. ``--browser-cpus 1`` keeps them on CPU 1 (the
closest this machine comes to browsers on machines of their own; ten pages then lack CPU).

With ``--control`` it first runs the load a third time with as many Chromium pages, scheduled
the same way, each drawing a busy table of its own and connected to nothing of the host's: the
ack latency there is what sharing the machine with that many browsers costs the webhook, apart
from anything the dashboard does (measured here: it is most of the difference).

With ``--raw`` the watchers are plain HTTP clients reading the event stream (no browser, no
drawing): what the host itself pays per watcher, apart from what ten Chromiums cost the
machine; the latency is then fill-to-client (the event read).

During the first load it scrapes ``/metrics`` every half second (prometheus_client's own
parser reads each), and after it checks that the counters agree with the store (signals by
status, fills).

It also prints the CPU seconds spent during each load: the host's (without watchers it also
answers the scrapes), and Chromium's by kind of process (renderers, GPU, browser, network), a
figure that holds on a busier machine where the latencies do not.

Targets (issue 20): fill-to-screen p99 < 500 ms; ack p99 with browsers within 10 % of without.
Everything shares this machine's cores: the host, the load generator and the browsers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from dashboard.serve import DashboardHost, sign_in

#: The acks of the control run (--control), with its failures.
CONTROL: dict[str, Any] = {}
#: The control's page: a table of 100 rows with five new ones on top five times a second, as
#: the dashboard's orders view draws under the load, but fed by nothing of the host's.
BUSY_PAGE = """<!doctype html><table id=t></table><script>
let n = 0;
function draw() {
  const t = document.getElementById("t");
  for (let i = 0; i < 5; i++) {
    const r = t.insertRow(0);
    for (let j = 0; j < 10; j++) r.insertCell().textContent = `cell ${n++} ${Math.random()}`;
  }
  while (t.rows.length > 100) t.deleteRow(-1);
  setTimeout(() => requestAnimationFrame(draw), 200);
}
draw();
</script>"""
#: CPU seconds spent during the loads: the host's with and without watchers, and Chromium's
#: by kind of process (filled in as the runs go).
CPU: dict[str, Any] = {}


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


async def _load(url: str, rate: float, seconds: float, tag: str) -> tuple[list[float], int]:
    """Open loop: one alert every 1/rate s; the ack latency of each (s) and the failures."""
    latencies: list[float] = []
    failures = 0
    limits = httpx.Limits(max_connections=32, max_keepalive_connections=32)
    async with httpx.AsyncClient(limits=limits, timeout=10) as client:
        async def one(n: int) -> None:
            nonlocal failures
            side = "buy" if n % 2 == 0 else "sell"
            body = json.dumps({"ticker": "DEMO", "action": side, "contracts": 1,
                               "id": f"{tag}-{n}"})
            sent = time.perf_counter()
            try:
                r = await client.post(url, content=body)
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - sent)
                else:
                    failures += 1
            except httpx.HTTPError:
                failures += 1

        start = time.perf_counter()
        tasks = []
        for n in range(int(rate * seconds)):
            delay = start + n / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return latencies, failures


def load(url: str, rate: float, seconds: float, tag: str) -> tuple[list[float], int]:
    """The load on a thread of its own (Playwright's sync API owns this one)."""
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.update(r=asyncio.run(
        _load(url, rate, seconds, tag))))
    thread.start()
    thread.join()
    return out["r"]


def chromium_cpu() -> dict[int, tuple[str, float]]:
    """CPU seconds so far of each Chromium process, by pid, with its kind (renderer, gpu,
    browser, network, ...)."""
    out: dict[int, tuple[str, float]] = {}
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if not cmd or "chromium" not in cmd[0]:
            continue
        kind = next((c[7:] for c in cmd if c.startswith("--type=")), "browser")
        if kind == "utility":
            kind = next((c.rsplit(".", 1)[-1] for c in cmd
                         if c.startswith("--utility-sub-type=")), kind)
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        out[proc.pid] = (kind, times.user + times.system)
    return out


def cpu_since(before: dict[int, tuple[str, float]]) -> dict[str, float]:
    """CPU seconds each kind of Chromium process spent since ``before``."""
    spent: dict[str, float] = {}
    for pid, (kind, now) in chromium_cpu().items():
        spent[kind] = spent.get(kind, 0.0) + now - before.get(pid, (kind, 0.0))[1]
    return {k: round(v, 2) for k, v in sorted(spent.items()) if v >= 0.005}


def others_cpu() -> float:
    """CPU seconds of this process (the load generator) and Playwright's driver so far."""
    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        try:
            cmd = proc.cmdline()
            times = proc.cpu_times()
        except psutil.Error:
            continue
        if proc is me or any("playwright" in c for c in cmd[:2]):
            total += times.user + times.system
    return total


def host_cpu(host: DashboardHost) -> float:
    """CPU seconds the host process has used so far."""
    times = psutil.Process(host.process.proc.pid).cpu_times()
    return times.user + times.system


def browsers(host: DashboardHost, url: str, args: argparse.Namespace
             ) -> tuple[list[float], int, list[float]]:
    """The load with Chromium pages on the orders view; their fill-to-screen lags."""
    chromium = "/usr/bin/chromium"
    with tempfile.TemporaryDirectory(prefix="sandtrade-nice-") as tmp, sync_playwright() as p:
        prefix = ("chrt --idle 0 " if args.browsers_sched == "idle" else "") + (
            f"taskset -c {args.browser_cpus} " if args.browser_cpus else "")
        if prefix:
            wrapper = Path(tmp) / "chromium"
            wrapper.write_text(f'#!/bin/sh\nexec {prefix}{chromium} "$@"\n')
            wrapper.chmod(0o755)
            chromium = str(wrapper)
        browser = p.chromium.launch(executable_path=chromium)
        if args.control:  # the same number of pages, busy with a table of their own
            busy = [browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
                    for _ in range(args.browsers)]
            for page in busy:
                page.set_content(BUSY_PAGE)
            CONTROL["acks"], CONTROL["failed"] = load(url, args.rate, args.seconds, "control")
            for page in busy:
                page.context.close()
        pages = []
        for _ in range(args.browsers):
            page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
            page.goto(host.url + "/")
            page.fill("#token", host.tokens["alice"])
            page.click("button[type=submit]")
            page.wait_for_selector("#live.on", timeout=30_000)
            page.evaluate(f"location.hash = '#{args.view}'")
            pages.append(page)
        before, host_before, own = chromium_cpu(), host_cpu(host), others_cpu()
        watched, failed = load(url, args.rate, args.seconds, "watched")
        CPU["chromium_s"] = cpu_since(before)
        CPU["host_s_with"] = round(host_cpu(host) - host_before, 2)
        CPU["bench_and_driver_s_with"] = round(others_cpu() - own, 2)
        deadline = time.monotonic() + 10
        lags: list[float] = []
        while time.monotonic() < deadline:  # the last fills reach the screens
            lags = [x for page in pages for x in page.evaluate("S.fillLag")]
            if len(lags) >= args.browsers * len(watched):
                break
            pages[0].wait_for_timeout(200)
        browser.close()
    return watched, failed, lags


def raw_watchers(host: DashboardHost, url: str, args: argparse.Namespace
                 ) -> tuple[list[float], int, list[float]]:
    """The load with plain readers of the event stream; their fill-to-client lags."""
    lags: list[float] = []
    stop = threading.Event()
    ready = threading.Barrier(args.browsers + 1)

    def reader() -> None:
        client = sign_in(host.url, host.tokens["alice"])
        with client.stream("GET", "/dashboard/events",
                           timeout=httpx.Timeout(10, read=30)) as stream:
            ready.wait()
            for line in stream.iter_lines():
                if line.startswith("data: {\"order\"") and '"fill":{' in line:
                    lags.append(time.time() - json.loads(line[6:])["at"])
                if stop.is_set():
                    break

    threads = [threading.Thread(target=reader, daemon=True) for _ in range(args.browsers)]
    for t in threads:
        t.start()
    ready.wait()
    host_before = host_cpu(host)
    watched, failed = load(url, args.rate, args.seconds, "watched")
    CPU["host_s_with"] = round(host_cpu(host) - host_before, 2)
    time.sleep(3)  # the last fills reach the readers (bars keep every stream talking)
    stop.set()
    for t in threads:
        t.join(10)
    return watched, failed, list(lags)


def scrape(host: DashboardHost) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` with the operator's token, parsed by prometheus_client's own parser."""
    from prometheus_client.parser import text_string_to_metric_families

    r = httpx.get(f"{host.url}/metrics", timeout=10,
                  headers={"Authorization": f"Bearer {host.tokens['operator']}"})
    r.raise_for_status()
    return {(smp.name, tuple(sorted(smp.labels.items()))): smp.value
            for fam in text_string_to_metric_families(r.text) for smp in fam.samples}


def scrape_agrees(host: DashboardHost, data_dir: Path) -> dict[str, Any]:
    """Scrape ``/metrics`` (the operator's token) while the load runs and after it, parse it
    with prometheus_client's own parser, and compare its counters with the store once the
    host is idle: signals by status, and fills."""
    import sqlite3


    def store() -> tuple[dict[str, int], int]:
        db = sqlite3.connect(f"file:{data_dir / 'sandtrade.db'}?mode=ro", uri=True)
        try:
            statuses = dict(db.execute("SELECT status, COUNT(*) FROM signals GROUP BY status"))
            fills = db.execute("SELECT COUNT(*) FROM fills").fetchone()[0]
        finally:
            db.close()
        return statuses, fills

    deadline = time.monotonic() + 30
    while True:  # the last signals execute; a scrape reads the store, so they must agree
        samples = scrape(host)
        statuses, fills = store()
        counted = {labels[1][1]: int(v) for (name, labels), v in samples.items()
                   if name == "sandtrade_signals_total"}
        agree = counted == statuses and samples.get(("sandtrade_fills_total", ())) == fills
        if agree or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    return {"parsed": True, "signals_by_status": counted, "store_signals": statuses,
            "fills_total": samples.get(("sandtrade_fills_total", ())), "store_fills": fills,
            "ack_count": samples.get(("sandtrade_webhook_ack_seconds_count", ())),
            "agree": agree}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rate", type=float, default=50.0, help="alerts per second")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--browsers", type=int, default=10)
    ap.add_argument("--browsers-sched", choices=("idle", "normal"), default="idle",
                    help="idle (default): the browsers run only when the host leaves a core "
                    "idle, as browsers on other machines take none of its CPU; normal: as "
                    "the host")
    ap.add_argument("--browser-cpus", default="", metavar="LIST",
                    help="the CPUs the browsers may run on (taskset's list, e.g. 1): the "
                    "closest this machine comes to browsers on other machines (default: all)")
    ap.add_argument("--view", default="orders",
                    choices=("orders", "signals", "account", "chart", "strategies", "options"),
                    help="the view the pages show (fill-to-screen is measured on orders and "
                    "chart only)")
    ap.add_argument("--control", action="store_true",
                    help="also measure the ack with the same number of Chromium pages busy "
                    "drawing a table of their own, connected to nothing of the host's: what "
                    "sharing the machine with the browsers costs, apart from the dashboard")
    ap.add_argument("--raw", action="store_true", help="plain event-stream readers instead "
                                                        "of browsers")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sandtrade-dash-bench-") as tmp:
        data = Path(tmp)
        config = data / "bench.toml"
        config.write_text("[plugins.tradingview]\nrate_per_minute = 0\n"
                          "[quotas]\nsignals_per_second = 1e9\nsignal_burst = 1000000000\n"
                          "orders_per_second = 1e9\norder_burst = 1000000000\n")
        (data / "data").mkdir()
        host = DashboardHost(data / "data", speed=20, args=("--config", str(config)))
        host.start()
        url = f"{host.url}/webhooks/tradingview/{host.tokens['alice']}"
        try:
            load(url, args.rate, 2, "warm")  # the first requests open connections, JIT
            scrapes: list[int] = []
            done = threading.Event()

            def scraping() -> None:  # Prometheus' way: every so often, during the load
                while not done.wait(0.5):
                    scrapes.append(len(scrape(host)))

            scraper = threading.Thread(target=scraping, daemon=True)
            scraper.start()
            host_before, own = host_cpu(host), others_cpu()
            bare, bare_failed = load(url, args.rate, args.seconds, "bare")
            CPU["host_s_without"] = round(host_cpu(host) - host_before, 2)
            CPU["bench_s_without"] = round(others_cpu() - own, 2)
            done.set()
            scraper.join(10)
            metrics = {"scrapes_during_load": len(scrapes), **scrape_agrees(host, data / "data")}
            if args.raw:
                watched, watched_failed, lags = raw_watchers(host, url, args)
            else:
                watched, watched_failed, lags = browsers(host, url, args)
        finally:
            host.stop()
    result = {
        "rate": args.rate, "seconds": args.seconds, "browsers": args.browsers,
        "watchers": "event-stream readers" if args.raw else
        f"chromium pages, scheduled {args.browsers_sched}",
        "ack_ms_without": {"p50": 1e3 * statistics.median(bare), "p99": 1e3 * pct(bare, .99),
                           "failed": bare_failed},
        "ack_ms_with": {"p50": 1e3 * statistics.median(watched),
                        "p99": 1e3 * pct(watched, .99), "failed": watched_failed},
        **({"ack_ms_with_unrelated_pages": {
            "p50": 1e3 * statistics.median(CONTROL["acks"]),
            "p99": 1e3 * pct(CONTROL["acks"], .99), "failed": CONTROL["failed"]}}
           if CONTROL else {}),
        "metrics_after_bare_load": metrics,
        "cpu_seconds_during_load": CPU,
        "fill_to_screen_ms": {"p50": 1e3 * statistics.median(lags) if lags else None,
                              "p99": 1e3 * pct(lags, .99) if lags else None,
                              "seen": len(lags)},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
