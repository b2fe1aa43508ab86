"""Screenshots of every dashboard view, at 1400x900 and at a phone's width (390x844).

    python tests/dashboard/screenshots.py docs/dashboard

Starts a real ``sandtrade serve`` (demo market), sends it a few TradingView alerts (one a
bracket, one refused), starts a strategy over gRPC (it plots an EMA on the price and an RSI
below it), and photographs alice's pages in the
system's Chromium. README.md shows the results.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from sandtrade.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: as pytest sees them
from dashboard.serve import DashboardHost

VIEWS = ("account", "chart", "signals", "orders", "strategies", "options")
SIZES = {"desktop": (1400, 900), "phone": (390, 844)}
STRATEGY = '''
def on_bar(ctx, bar):
    ctx.plot("ema 10", ctx.ta.ema(10)[0], color="#ff9800")
    ctx.plot("rsi 14", ctx.ta.rsi(14)[0], pane="below", color="#b388ff")
    if ctx.bar_index % 25 == 0:
        ctx.log(f"{bar.symbol} close {bar.close:.2f}; position {ctx.position().qty:g}")
'''


def seed(host: DashboardHost) -> None:
    """Some life in alice's account: alerts, a bracket, a refusal, a strategy."""
    alerts = [
        '{"ticker": "DEMO", "action": "buy", "contracts": 40, "id": "breakout-long", '
        '"comment": "breakout"}',
        "sell 10 DEMO",
        '{"ticker": "DEMO", "action": "buy", "quantity": 20, "takeProfit": {"percent": 8}, '
        '"stopLoss": {"percent": 4}}',
        '{"ticker": "DEMO", "action": "buy", "contracts": "{{strategy.order.contracts}}"}',
    ]
    for body in alerts:
        host.alert("alice", body)
        time.sleep(0.6)  # a picture, not a test: let the market move between alerts
    with Client(host.grpc, host.tokens["operator"]) as client:
        client.upload_strategy("momentum", STRATEGY, symbols=["DEMO"], account="alice")
        client.start_strategy("momentum", account="alice")
    with Client(host.grpc, host.tokens["alice"]) as client:
        last = client.latest_quote("DEMO").bid
        client.submit_order("DEMO", "buy", 5, limit_price=round(last * 0.7, 2))
        # the farthest monthly: the replay runs days a second, and the pictures take a while
        client.submit_template("iron_condor", "DEMO", 2, expiry="90d", short_delta=0.16,
                               width=2)
    time.sleep(4)


def shoot(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data:
        host = DashboardHost(Path(data), speed=3).start()
        try:
            seed(host)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium")
                page = browser.new_page(viewport={"width": 1400, "height": 900})
                page.goto(host.url + "/")
                page.screenshot(path=str(out / "signin.png"))
                for size, (width, height) in SIZES.items():
                    page = browser.new_page(viewport={"width": width, "height": height})
                    page.goto(host.url + "/")
                    page.fill("#token", host.tokens["alice"])
                    page.click("button[type=submit]")
                    page.wait_for_selector("#banner")
                    for view in VIEWS:
                        page.evaluate(f"location.hash = '#{view}'")
                        page.wait_for_selector(f"#view-{view}:not([hidden])")
                        time.sleep(1.5)  # charts draw, the log follows
                        page.screenshot(path=str(out / f"{view}-{size}.png"),
                                        full_page=size == "phone")
                browser.close()
        finally:
            host.stop()


if __name__ == "__main__":
    shoot(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/dashboard"))
