"""The one gRPC server factory: servicers, health checking, reflection, limits, sockets.

The server is grpc's synchronous server on a thread pool. ``bench/grpc_server_kind.py`` puts
the same trivial handler behind both kinds on this 2-core box: over three runs the sync server
answered 2,500-3,400 calls/s to one client and 4,300-6,800/s to four, the asyncio server
2,900-3,200/s and 4,700-5,100/s: no clear winner on the transport. Our handlers block (the
broker lock, the fsync of a durable order), which a thread pool does naturally; asyncio would
have to push each to an executor, one more thread hop per call, so: sync.
"""

from __future__ import annotations

import contextlib
import os
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sandtrade.v1 import (
    market_pb2,
    market_pb2_grpc,
    signals_pb2,
    signals_pb2_grpc,
    strategies_pb2,
    strategies_pb2_grpc,
    trading_pb2,
    trading_pb2_grpc,
)

__all__ = ["MAX_MESSAGE_BYTES", "RpcServer", "create_server"]

#: Largest request accepted (a strategy upload is at most 1 MiB of source); larger ones get
#: RESOURCE_EXHAUSTED from grpc before any handler runs.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass
class RpcServer:
    """A started server: where it listens, and how to stop it."""

    server: grpc.Server
    health: health.HealthServicer
    port: int
    address: str
    unix_path: str | None

    def stop(self, grace: float = 2.0) -> None:
        """Refuse new calls, let running ones finish for ``grace`` seconds, then close."""
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        if self.unix_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.unix_path)


def create_server(*, trading: trading_pb2_grpc.TradingServiceServicer,
                  market: market_pb2_grpc.MarketDataServiceServicer,
                  strategies: strategies_pb2_grpc.StrategyServiceServicer | None = None,
                  signals: signals_pb2_grpc.SignalServiceServicer | None = None,
                  address: str = "127.0.0.1:50051", unix_path: str | Path | None = None,
                  max_workers: int = 32) -> RpcServer:
    """Build, bind and start the server.

    :param address: HOST:PORT for clients (port 0 picks a free port, as tests do).
    :param unix_path: a Unix-domain socket for local clients too (created mode 0600).
    """
    options = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers,
                                                    thread_name_prefix="sandtrade-rpc"),
                         options=options, maximum_concurrent_rpcs=4 * max_workers)
    trading_pb2_grpc.add_TradingServiceServicer_to_server(trading, server)
    market_pb2_grpc.add_MarketDataServiceServicer_to_server(market, server)
    if strategies is not None:
        strategies_pb2_grpc.add_StrategyServiceServicer_to_server(strategies, server)
    if signals is not None:
        signals_pb2_grpc.add_SignalServiceServicer_to_server(signals, server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = (
        trading_pb2.DESCRIPTOR.services_by_name["TradingService"].full_name,
        market_pb2.DESCRIPTOR.services_by_name["MarketDataService"].full_name,
        health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
        strategies_pb2.DESCRIPTOR.services_by_name["StrategyService"].full_name,
        signals_pb2.DESCRIPTOR.services_by_name["SignalService"].full_name,
        reflection.SERVICE_NAME,
    )
    reflection.enable_server_reflection(names, server)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError as e:
        raise OSError(f"cannot listen on {address} for gRPC: {e} (is another host running?)")\
            from None
    host = address.rsplit(":", 1)[0]
    uds = None
    if unix_path is not None:
        uds = str(unix_path)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(uds)
        old = os.umask(0o177)
        try:
            server.add_insecure_port(f"unix:{uds}")
        finally:
            os.umask(old)
    server.start()
    for name in names[:2]:
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    return RpcServer(server, health_servicer, port, f"{host}:{port}", uds)
