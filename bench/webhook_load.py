"""TradingView webhook load: durable alerts/s, ack latency and alert-to-fill latency, against a
bare endpoint on the same server stack, in one run.

    python bench/webhook_load.py [--rate 1000] [--seconds 10] [--connections 32]

Starts a real host in this process (SQLite store with synchronous=FULL in a temporary
directory, the live paper broker, a synthetic market publishing ``--bars-per-second`` bars,
uvicorn on a free loopback port with the TradingView plugin, its rate limit turned off) plus
one extra route contributed through the same plugin hook: ``POST /bench/bare``, which reads
the body and answers ``{}`` without doing anything. A load generator in a second process
(its own interpreter: the host keeps one core, the generator the other) speaks HTTP/1.1 over
keep-alive loopback connections and measures, for the webhook and for the bare endpoint:

* open loop at ``--rate`` alerts/s for ``--seconds``: the rate sustained and the ack latency
  p50/p99 (request sent to 200 received; every 200 means the alert is durably journaled);
* closed loop, ``--connections`` requests in flight, as fast as the server answers: the
  highest rate.

For the webhook, every alert is a market order (``buy 1 SYN`` / ``sell 1 SYN`` with a unique
id); the host reports each fill through the broker's trade updates, giving alert-to-fill
latency p50/p99 (a market order fills at the next bar's open, so this includes up to one bar
interval). At the end the journal is checked: every alert answered 200 is there once and
executed once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from sandtrade.hookspecs import hookimpl
from sandtrade.host.config import load_settings
from sandtrade.host.plugins import PluginHost
from sandtrade.host.runtime import HostRuntime, tune_gc_for_serving


class BarePlugin:
    """A route that does nothing, on the same FastAPI app and uvicorn server."""

    @hookimpl
    def sandtrade_http_routes(self, host: Any) -> list[Any]:
        router = APIRouter()

        @router.post("/bench/bare")
        async def bare(request: Request) -> JSONResponse:
            await request.body()
            return JSONResponse({})

        return [router]


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))] if values else float("nan")


# ---------------------------------------------------------------------------- generator


def _request(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: bytes) -> tuple[int, bytes]:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    return status, await reader.readexactly(length)


async def _run_load(port: int, path: str, bodies: list[bytes], rate: float, connections: int,
                    stamps: list[tuple[float, float, int, bytes]]) -> float:
    """Send every body; open loop at ``rate`` (0: closed loop). Returns the seconds taken."""
    pool: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    conns = []
    for _ in range(connections):
        conn = await asyncio.open_connection("127.0.0.1", port)
        conns.append(conn)
        pool.put_nowait(conn)

    async def one(body: bytes) -> None:
        conn = await pool.get()
        sent = time.monotonic()
        status, answer = await _exchange(*conn, _request(path, body))
        stamps.append((sent, time.monotonic(), status, answer))
        pool.put_nowait(conn)

    start = time.monotonic()
    tasks = []
    if rate > 0:
        for i, body in enumerate(bodies):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(body)))
        await asyncio.gather(*tasks)
    else:
        it = iter(bodies)

        async def worker() -> None:
            for body in it:
                await one(body)

        await asyncio.gather(*(worker() for _ in range(connections)))
    took = time.monotonic() - start
    for _, writer in conns:
        writer.close()
    return took


def generator(port: int, path: str, bodies: list[bytes], rate: float, connections: int,
              out: Any) -> None:
    """Child process: run one load, send back (seconds, stamps)."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    stamps: list[tuple[float, float, int, bytes]] = []
    took = asyncio.run(_run_load(port, path, bodies, rate, connections, stamps))
    out.send((took, stamps))


def load(port: int, path: str, bodies: list[bytes], rate: float, connections: int
         ) -> tuple[float, list[tuple[float, float, int, bytes]]]:
    parent, child = mp.Pipe()
    proc = mp.get_context("spawn").Process(target=generator, args=(
        port, path, bodies, rate, connections, child))
    proc.start()
    result = parent.recv()
    proc.join()
    return result  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------- host


def alerts(prefix: str, n: int) -> list[bytes]:
    return [json.dumps({"symbol": "SYN", "action": "buy" if i % 2 == 0 else "sell", "qty": 1,
                        "id": f"{prefix}-{i}"}).encode() for i in range(n)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rate", type=float, default=1000.0, help="open-loop alerts/s (1000)")
    ap.add_argument("--seconds", type=float, default=10.0, help="open-loop duration (10)")
    ap.add_argument("--connections", type=int, default=32, help="connections (32)")
    ap.add_argument("--bars-per-second", type=float, default=200.0,
                    help="synthetic market pace; fills wait for the next bar (200)")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="sandtrade-bench-")
    data = Path(tmp.name)
    (data / "sandtrade.toml").write_text(
        "[plugins.tradingview]\nrate_per_minute = 0\n"
        "[quotas]\nsignals_per_second = 1e9\nsignal_burst = 1000000000\n")
    settings = load_settings(data / "sandtrade.toml", data_dir=data / "data",
                             grpc="127.0.0.1:0", http="127.0.0.1:0", cash=1e12,
                             market={"source": "synthetic", "symbols": ["SYN"],
                                     "interval": "1min",
                                     "bars_per_second": args.bars_per_second})
    plugins = PluginHost.create(extra=[BarePlugin()])
    host = HostRuntime(settings, plugins=plugins).start()
    tune_gc_for_serving()  # as `sandtrade serve` does
    assert host.auth is not None and host.http is not None and host.live is not None
    _, token = host.auth.create(settings.account, ("signal",))
    port = host.http.port
    hook = f"/webhooks/tradingview/{token}"

    # fill times by signal id, from the broker's trade updates (committed, in order)
    filled: dict[str, float] = {}
    sub = host.live.subscribe(settings.account)
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            update = sub.get(timeout=0.2)
            if update is None or update.fill is None:
                continue
            tag = update.order.tag or ""
            if tag.startswith("signal "):
                filled.setdefault(tag[7:], time.monotonic())

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    print(f"host: uvicorn on 127.0.0.1:{port}, SQLite synchronous=FULL in {data}, market "
          f"{args.bars_per_second:g} bars/s; load from a second process, "
          f"{args.connections} keep-alive connections", flush=True)
    n_open = int(args.rate * args.seconds)
    rows = []
    acked: dict[str, str] = {}  # signal id -> body
    try:
        for name, path in (("bare endpoint", "/bench/bare"), ("webhook, durable", hook)):
            tag = "b" if path == "/bench/bare" else "w"
            load(port, path, alerts(f"warm{tag}", 200), 0, args.connections)  # warm-up
            print(f"{name}: open loop {args.rate:g}/s for {args.seconds:g} s ...", flush=True)
            took, stamps = load(port, path, alerts(f"open{tag}", n_open), args.rate,
                                args.connections)
            lat = [(b - a) * 1000 for a, b, _, _ in stamps]
            ok = [s for s in stamps if s[2] == 200]
            print(f"{name}: closed loop ...", flush=True)
            took2, stamps2 = load(port, path, alerts(f"closed{tag}", n_open),
                                  0, args.connections)
            lat2 = [(b - a) * 1000 for a, b, _, _ in stamps2]
            fill_lat: list[float] = []
            if tag == "w":
                for _, _, status, answer in stamps + stamps2:
                    if status == 200:
                        sid = json.loads(answer)["id"]
                        acked[sid] = ""
                host.signals.wait_idle(120)  # type: ignore[union-attr]
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not all(s in filled for s in acked):
                    time.sleep(0.1)
                for sent, _, status, answer in stamps:
                    if status == 200:
                        t = filled.get(json.loads(answer)["id"])
                        if t is not None:
                            fill_lat.append((t - sent) * 1000)
            rows.append((name, len(ok), len(stamps), len(ok) / took, pct(lat, 0.5),
                         pct(lat, 0.99), len(stamps2) / took2, pct(lat2, 0.5), pct(lat2, 0.99),
                         fill_lat))
    finally:
        stop.set()
        watcher.join(2)
        sub.close()
        host.stop()

    print()
    print(f"{'':18} {'ok/sent':>13} {'open-loop/s':>12} {'ack p50':>9} {'ack p99':>9}  "
          f"{'max/s':>7} {'p50':>7} {'p99':>7}  {'fill p50':>9} {'fill p99':>9}")
    for name, ok, sent, rate, p50, p99, maxrate, c50, c99, fill_lat in rows:
        fills = (f"{pct(fill_lat, 0.5):7.1f}ms {pct(fill_lat, 0.99):7.1f}ms" if fill_lat
                 else f"{'-':>9} {'-':>9}")
        print(f"{name:18} {ok:>6}/{sent:<6} {rate:12.0f} {p50:7.2f}ms {p99:7.2f}ms  "
              f"{maxrate:7.0f} {c50:5.1f}ms {c99:5.1f}ms  {fills}")
    bare, hook_row = rows
    print(f"\nwebhook vs bare endpoint: closed-loop rate {hook_row[6] / bare[6]:.2f}x, "
          f"open-loop ack p99 {hook_row[5]:.2f} ms vs {bare[5]:.2f} ms")
    print(f"targets: >= 1,000 alerts/s sustained ({'met' if hook_row[3] >= 0.98 * args.rate and hook_row[6] >= 1000 else 'NOT met'}), "  # noqa: E501
          f"ack p99 < 20 ms ({'met' if hook_row[5] < 20 else 'NOT met'})")
    if hook_row[9]:
        print(f"alert-to-fill: {len(hook_row[9])} fills, mean "
              f"{statistics.fmean(hook_row[9]):.1f} ms (a bar every "
              f"{1000 / args.bars_per_second:.1f} ms)")

    # every acked alert is journaled once and executed once
    from sandtrade.host.runtime import open_host_store

    store = open_host_store(data / "data")
    try:
        records = {r.id: r for _, r in store.list_signals(limit=1_000_000)}
    finally:
        store.close()
    missing = [s for s in acked if s not in records]
    not_exec = [s for s in acked if s in records and records[s].status.value != "executed"]
    print(f"journal check: {len(acked)} alerts answered 200, {len(missing)} missing, "
          f"{len(not_exec)} not executed")
    tmp.cleanup()
    return 1 if missing or not_exec else 0


if __name__ == "__main__":
    sys.exit(main())
