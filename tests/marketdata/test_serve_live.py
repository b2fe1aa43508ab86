"""``sandtrade serve --source ccxt:binance`` as the README gives it, a real process with a
``[sources.ccxt]`` table pointing at the local fake exchange; ``sandtrade doctor`` asks it."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from rpc.serve_process import ServeProcess, free_port

from .conftest import eventually
from .fakes import FakeBinance, minute_ago

pytestmark = pytest.mark.slow  # real processes

WAIT = 30.0


def test_serve_source_ccxt_binance_trades_at_the_exchange_prices(
        tmp_path: Path, binance: FakeBinance) -> None:
    binance.add("BTCUSDT", minute_ago(10), 43_000, 43_100, 42_900, 43_050)
    config = tmp_path / "sandtrade.toml"
    config.write_text(f'[sources.ccxt]\nbase_url = "{binance.url}"\npoll_seconds = 0.1\n'
                      'symbols = ["BTC/USDT"]\n')
    grpc, http = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    host = ServeProcess(tmp_path / "data", ["--config", str(config), "--grpc", grpc,
                                            "--http", http, "--source", "ccxt:binance"])
    host.start()
    try:
        def market() -> dict[str, Any]:
            with urllib.request.urlopen(f"http://{http}/health", timeout=5) as r:
                return dict(json.loads(r.read())["market"])

        eventually(lambda: market()["symbols"].get("BTCUSDT", {}).get("bars") == 1,
                   "the first bar", timeout=WAIT)
        assert market()["connection"]["state"] == "live"
        cli = [sys.executable, "-m", "sandtrade.cli"]
        buy = subprocess.run([*cli, "buy", "BTCUSDT", "0.01", "--data-dir",
                              str(tmp_path / "data"), "--grpc", grpc, "--json"],
                             capture_output=True, text=True, timeout=WAIT)
        assert buy.returncode == 0, buy.stderr
        order_id = json.loads(buy.stdout)[0]["id"]
        binance.add("BTCUSDT", minute_ago(9), 43_077.25, 43_200, 43_000, 43_150)

        def filled() -> dict[str, Any] | None:
            out = subprocess.run([*cli, "orders", "--data-dir", str(tmp_path / "data"),
                                  "--grpc", grpc, "--json"], capture_output=True, text=True,
                                 timeout=WAIT)
            order = next(o for o in json.loads(out.stdout) if o["id"] == order_id)
            return order if order["status"] == "filled" else None

        order = eventually(filled, "the order filled", timeout=WAIT)
        assert order["avg_fill_price"] == pytest.approx(43_077.25)
        doctor = subprocess.run([*cli, "doctor", "--http", http], capture_output=True,
                                text=True, timeout=WAIT)
        assert doctor.returncode == 0, doctor.stderr
        assert "market source: ccxt (feed running)" in doctor.stdout
        assert "market link: ccxt binance: BTC/USDT 1m bars: live since" in doctor.stdout
    finally:
        host.stop()
