"""gRPC latency and durable order throughput, from one run against one server.

    python bench/grpc_latency.py [--calls 2000] [--orders 5000] [--clients 4]

Starts ``sandtrade serve`` (a real host in its own process, SQLite store with synchronous=FULL,
every order committed before it is acknowledged) on a free loopback port in a temporary data
directory, then prints:

* round-trip p50/p99 of an empty unary call (the standard health Check) and of SubmitOrder
  through ``sandtrade.client.Client``, each from one synchronous client, one call at a time;
* sustained orders/s from ``--clients`` client processes sending market orders at once, each
  order durably stored before its answer: first one unary SubmitOrder at a time per client,
  then over SubmitOrderStream; then checks in the store that every acknowledged order is
  there exactly once.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from sandtrade.client import Client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


def start_host(data_dir: Path, port: int) -> subprocess.Popen[str]:
    # No quotas in the way of a throughput measurement.
    env = {**os.environ, "SANDTRADE_CASH": "1e12", "SANDTRADE_QUOTAS__ORDERS_PER_SECOND": "1e9",
           "SANDTRADE_QUOTAS__ORDER_BURST": "1000000000",
           "SANDTRADE_QUOTAS__OPEN_ORDERS": "1000000000"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandtrade.cli", "serve", "--http", "127.0.0.1:0",
         "--data-dir", str(data_dir),
         "--grpc", f"127.0.0.1:{port}", "--speed", "0.5"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("READY"):
        proc.kill()
        raise SystemExit(f"host did not start: {line!r}")
    return proc


def client_worker(target: str, token: str, n: int, prefix: str, start_at: float,
                  streaming: bool, out: mp.Queue) -> None:  # type: ignore[type-arg]
    with Client(target, token) as c:
        c.account()  # connect before the clock starts
        while time.time() < start_at:
            time.sleep(0.001)
        t0 = time.perf_counter()
        if streaming:
            specs = ({"symbol": "DEMO", "side": "buy" if i % 2 else "sell", "qty": 1,
                      "client_order_id": f"{prefix}-{i}"} for i in range(n))
            done = 0
            for result in c.submit_orders(specs):
                if not hasattr(result, "status"):
                    raise SystemExit(f"order refused: {result}")
                done += 1
            assert done == n
        else:
            for i in range(n):
                c.submit_order("DEMO", "buy" if i % 2 else "sell", 1,
                               client_order_id=f"{prefix}-{i}")
        out.put((n, time.perf_counter() - t0))


def throughput(target: str, tokens: list[str], n: int, prefix: str, streaming: bool
               ) -> tuple[int, float]:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    start_at = time.time() + 2.0
    procs = [ctx.Process(target=client_worker,
                         args=(target, tok, n, f"{prefix}{k}", start_at, streaming, out))
             for k, tok in enumerate(tokens)]
    for p in procs:
        p.start()
    results = [out.get(timeout=600) for _ in procs]
    for p in procs:
        p.join()
    return sum(k for k, _ in results), max(t for _, t in results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=2000, help="calls per latency series")
    ap.add_argument("--orders", type=int, default=5000, help="orders per client, throughput")
    ap.add_argument("--clients", type=int, default=4)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        port = free_port()
        target = f"127.0.0.1:{port}"
        host = start_host(data_dir, port)
        try:
            token = (data_dir / "operator.token").read_text().strip()
            print(f"host: sandtrade serve on {target} (pid {host.pid}), store "
                  f"{data_dir / 'sandtrade.db'}", flush=True)
            with grpc.insecure_channel(target) as ch:
                check = health_pb2_grpc.HealthStub(ch).Check
                for _ in range(200):
                    check(health_pb2.HealthCheckRequest())
                lat = []
                for _ in range(args.calls):
                    t = time.perf_counter()
                    check(health_pb2.HealthCheckRequest())
                    lat.append(time.perf_counter() - t)
            empty_p50, empty_p99 = pct(lat, .5) * 1e3, pct(lat, .99) * 1e3
            print(f"empty unary call (health Check): p50 {empty_p50:.3f} ms, "
                  f"p99 {empty_p99:.3f} ms  ({args.calls} calls)", flush=True)

            os.environ["SANDTRADE_TOKEN"] = token
            with Client(target, token) as c:
                for i in range(200):
                    c.submit_order("DEMO", "buy" if i % 2 else "sell", 1, account="paper")
                lat = []
                for i in range(args.calls):
                    t = time.perf_counter()
                    c.submit_order("DEMO", "buy" if i % 2 else "sell", 1, account="paper")
                    lat.append(time.perf_counter() - t)
            sub_p50, sub_p99 = pct(lat, .5) * 1e3, pct(lat, .99) * 1e3
            print(f"SubmitOrder (Client.submit_order): p50 {sub_p50:.3f} ms, p99 "
                  f"{sub_p99:.3f} ms  ({args.calls} orders; p50 = {sub_p50 / empty_p50:.2f}x "
                  "the empty call; target <= 1.5x)", flush=True)

            # Throughput: N client processes, one account each (tokens scoped to it).
            tokens = []
            for k in range(args.clients):
                r = subprocess.run(
                    [sys.executable, "-m", "sandtrade.cli", "tokens", "create", "--account",
                     f"bench{k}", "--scope", "trade,read", "--data-dir", str(data_dir)],
                    capture_output=True, text=True, env={**os.environ, "SANDTRADE_CASH": "1e12"},
                    check=True)
                tokens.append(r.stdout.strip())
            total, wall = throughput(target, tokens, args.orders, "u", streaming=False)
            print(f"sustained, unary SubmitOrder: {total / wall:,.0f} orders/s from "
                  f"{args.clients} client processes ({total} orders in {wall:.2f} s, each "
                  "durably stored before its answer)", flush=True)
            total, wall = throughput(target, tokens, args.orders, "s", streaming=True)
            print(f"sustained, SubmitOrderStream: {total / wall:,.0f} orders/s from "
                  f"{args.clients} client processes ({total} orders in {wall:.2f} s, each "
                  "durably stored before its answer; target >= 2,000/s)", flush=True)
        finally:
            host.terminate()
            host.wait(timeout=30)
        db = sqlite3.connect(data_dir / "sandtrade.db")
        for k in range(args.clients):
            (n, distinct) = db.execute(
                "SELECT COUNT(*), COUNT(DISTINCT client_order_id) FROM orders WHERE account = ?",
                (f"bench{k}",)).fetchone()
            assert n == distinct == 2 * args.orders, (k, n, distinct)
        print(f"store check: every acknowledged order stored exactly once "
              f"({args.clients} clients x {args.orders} orders x 2 runs)")


if __name__ == "__main__":
    main()
