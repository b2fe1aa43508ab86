"""Sync (thread pool) or asyncio gRPC server? The measurement behind rpc/server.py's choice.

    python bench/grpc_server_kind.py [--calls 4000]

Starts each kind of server in its own process on a free loopback port, with the same trivial
unary handler, and prints calls/s and p50/p99 from 1 and 4 synchronous client threads.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc


def _ident(x: bytes) -> bytes:
    return x


def _sync_handler(request: bytes, context: object) -> bytes:
    return b"ok"


async def _aio_handler(request: bytes, context: object) -> bytes:
    return b"ok"


def serve(kind: str) -> None:
    if kind == "sync":
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=32))
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("b.S", {
            "E": grpc.unary_unary_rpc_method_handler(_sync_handler, _ident, _ident)}),))
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        print(port, flush=True)
        server.wait_for_termination()
        return

    async def main() -> None:
        aserver = grpc.aio.server()
        aserver.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("b.S", {
            "E": grpc.unary_unary_rpc_method_handler(_aio_handler, _ident, _ident)}),))
        port = aserver.add_insecure_port("127.0.0.1:0")
        await aserver.start()
        print(port, flush=True)
        await aserver.wait_for_termination()

    asyncio.run(main())


def load(port: int, clients: int, calls: int) -> tuple[float, float, float]:
    lat: list[float] = []
    lock = threading.Lock()

    def run() -> None:
        with grpc.insecure_channel(f"127.0.0.1:{port}",
                                   options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            call = ch.unary_unary("/b.S/E", request_serializer=_ident,
                                  response_deserializer=_ident)
            for _ in range(100):
                call(b"x")
            mine = []
            for _ in range(calls // clients):
                t = time.perf_counter()
                call(b"x")
                mine.append(time.perf_counter() - t)
            with lock:
                lat.extend(mine)

    threads = [threading.Thread(target=run) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat.sort()
    return len(lat) / wall, lat[len(lat) // 2] * 1e3, lat[int(len(lat) * 0.99)] * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=4000)
    ap.add_argument("--serve", choices=["sync", "aio"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve(args.serve)
        return
    for kind in ("sync", "aio"):
        proc = subprocess.Popen([sys.executable, __file__, "--serve", kind],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            port = int(proc.stdout.readline())
            for clients in (1, 4):
                rate, p50, p99 = load(port, clients, args.calls)
                print(f"{kind:4} server, {clients} client thread(s): {rate:,.0f} calls/s, "
                      f"p50 {p50:.3f} ms, p99 {p99:.3f} ms", flush=True)
        finally:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    main()
