"""Soak the default host: ``sandtrade serve`` left running, an order from the CLI and one from
a TradingView-style alert every 30 s, and no order left ``accepted`` without a word.

    python bench/soak_serve.py [--duration 600] [--every 30] [--settle 15]

Starts ``sandtrade serve`` with its default market (the built-in DEMO replay at 20 bars/s,
which loops when the data ends) in a temporary data directory on free loopback ports. Every
``--every`` seconds for ``--duration`` seconds it places ``sandtrade buy DEMO 1`` (then
``sell``, alternately) with the CLI in a subprocess (the operator token of the data
directory), and posts the same command as an alert to the HTTP webhook with a token of scope
``signal``; each round prints what happened and where the market is. Then it waits up to
``--settle`` seconds for the last orders, and checks that

* every order (the CLI's and the signals') reached a final state (filled, canceled, rejected,
  expired) or carries a visible reason; none stays ``accepted`` without one;
* every signal reached a final status (executed, failed, rejected, dropped) with a reason;
* the market never ran dry: the feed is still running, its position kept growing;
* the host is still up.

It prints a summary table and exits 1 when a check fails (2 when the host did not start).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sandtrade.client import Client
from sandtrade.models import TERMINAL_STATUSES, Order

FINAL_SIGNALS = frozenset({"executed", "failed", "rejected", "dropped"})
# Wide enough for the summary table when the output goes to a file or a pipe.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Placed:
    """One order placed by the soak, and what became of it."""

    round: int
    at: float
    via: str  # "cli" or "webhook"
    side: str
    order_id: str = ""
    signal_id: str = ""
    signal_status: str = ""
    signal_reason: str = ""
    order: Order | None = None
    problem: str = ""

    @property
    def settled(self) -> bool:
        """Nothing more to wait for: a final order (or a refusal), a final signal."""
        if self.problem:
            return True
        if self.via == "webhook" and self.signal_status not in FINAL_SIGNALS:
            return False
        return self.order is None or self.order.status in TERMINAL_STATUSES


class Host:
    """``sandtrade serve`` with its defaults in ``data_dir`` on free ports; stderr is kept."""

    def __init__(self, data_dir: Path, speed: float | None = None) -> None:
        self.data_dir = data_dir
        self.grpc = f"127.0.0.1:{free_port()}"
        self.http = f"127.0.0.1:{free_port()}"
        self.stderr: list[str] = []
        pace = ["--speed", str(speed)] if speed is not None else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandtrade.cli", "serve", "--data-dir", str(data_dir),
             "--grpc", self.grpc, "--http", self.http, *pace],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "COLUMNS": "200"})
        assert self.proc.stdout is not None
        self.ready = self.proc.stdout.readline().startswith("READY")
        # Drained all along: a full pipe would block the host.
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            line = line.rstrip()
            self.stderr.append(line)
            if line.startswith("market:"):
                console.print(Text(f"          host says: {line}", style="yellow"), soft_wrap=True)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A CLI command against this host (the operator token of its data directory)."""
        return subprocess.run(
            [sys.executable, "-m", "sandtrade.cli", *args, "--data-dir", str(self.data_dir)],
            capture_output=True, text=True, timeout=60,
            env={**os.environ, "COLUMNS": "200"})

    def client(self) -> Client:
        token = (self.data_dir / "operator.token").read_text().strip()
        return Client(self.grpc, token, retry_for=5.0)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def place_by_cli(host: Host, placed: Placed) -> None:
    r = host.cli(placed.side, "DEMO", "1", "--json", "--grpc", host.grpc)
    # exit 1 with the order in the JSON is a rejection (with its reason); anything else is not
    try:
        (order,) = json.loads(r.stdout)
        placed.order_id = order["id"]
    except (ValueError, TypeError, KeyError):
        placed.problem = f"the CLI failed (exit {r.returncode}): {r.stderr.strip()[-300:]}"


def place_by_webhook(host: Host, token: str, placed: Placed) -> None:
    request = urllib.request.Request(
        f"http://{host.http}/webhooks/tradingview/{token}",
        data=f"{placed.side} 1 DEMO".encode(), method="POST",
        headers={"Content-Type": "text/plain"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            answer = json.load(resp)
    except urllib.error.HTTPError as e:
        placed.problem = f"webhook answered {e.code}: {e.read()[:300]!r}"
        return
    except OSError as e:
        placed.problem = f"webhook unreachable: {e}"
        return
    placed.signal_id = answer["id"]
    placed.signal_status = answer["status"]


def refresh(client: Client, placed: Placed) -> None:
    """Read the signal's and the order's state from the host."""
    if placed.problem:
        return
    if placed.via == "webhook":
        signal = client.get_signal(placed.signal_id)
        placed.signal_status, placed.signal_reason = signal.status, signal.reason
        if signal.order_ids and not placed.order_id:
            placed.order_id = signal.order_ids[0]
    if placed.order_id:
        placed.order = client.get_order(placed.order_id)


def describe(placed: Placed) -> str:
    if placed.problem:
        return placed.problem
    parts = []
    if placed.via == "webhook":
        parts.append(f"signal {placed.signal_id} {placed.signal_status}")
    o = placed.order
    if o is not None:
        price = f" @ {o.avg_fill_price:,.2f}" if o.avg_fill_price else ""
        reason = f" ({o.reject_reason})" if o.reject_reason else ""
        parts.append(f"{o.id} {o.status.value}{price}{reason}")
    elif placed.order_id:
        parts.append(placed.order_id)
    return "; ".join(parts)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of orders (600)")
    ap.add_argument("--every", type=float, default=30.0, help="seconds between rounds (30)")
    ap.add_argument("--settle", type=float, default=15.0,
                    help="seconds the last orders may take to reach a final state (15)")
    ap.add_argument("--speed", type=float, default=None, metavar="BARS_PER_S",
                    help="the host's market pace (default: serve's own, 20 bars/s; 100 "
                    "reaches the end of the DEMO data within 30 s)")
    args = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="sandtrade-soak-")
    host = Host(Path(tmp.name) / "data", args.speed)
    if not host.ready:
        host.stop()
        console.print("[red]the host did not start:[/red]", "\n".join(host.stderr[-20:]),
                      markup=False)
        return 2
    failures: list[str] = []
    placed: list[Placed] = []
    positions: list[int] = []
    started = time.monotonic()
    wake = threading.Event()
    try:
        token = host.cli("tokens", "create", "--account", "paper", "--scope", "signal"
                         ).stdout.strip()
        console.print(f"host: gRPC {host.grpc}, HTTP {host.http}, data in {host.data_dir}; "
                      f"{args.duration:g} s, a round every {args.every:g} s")
        with host.client() as client:
            rounds = max(1, int(-(-args.duration // args.every)))
            for i in range(rounds):
                due = started + i * args.every
                if wake.wait(max(0.0, due - time.monotonic())):
                    break
                if host.proc.poll() is not None:
                    failures.append(f"the host exited with {host.proc.returncode}")
                    break
                side = "buy" if i % 2 == 0 else "sell"
                at = time.monotonic() - started
                by_cli = Placed(i, at, "cli", side)
                by_hook = Placed(i, at, "webhook", side)
                place_by_cli(host, by_cli)
                place_by_webhook(host, token, by_hook)
                placed += [by_cli, by_hook]
                feed = client.feed_status()
                positions.append(feed.position)
                demo = feed.symbol("DEMO")
                market = demo.message if demo else f"no DEMO in the feed ({feed.state})"
                if feed.state != "running" or (demo and demo.state == "ended"):
                    failures.append(f"round {i}: the market is {feed.state}: {market}")
                for p in (by_cli, by_hook):
                    refresh(client, p)
                console.print(f"[{at:6.1f}s] round {i + 1}/{rounds}: {side} 1 DEMO")
                for p in (by_cli, by_hook):
                    console.print(Text(f"          {p.via:7} {describe(p)}"), soft_wrap=True)
                console.print(Text(f"          market: {market}"), soft_wrap=True)

            # The whole duration: the market must keep going after the last round too.
            if not wake.wait(max(0.0, started + args.duration - time.monotonic())):
                feed = client.feed_status()
                demo = feed.symbol("DEMO")
                console.print(Text(f"[{time.monotonic() - started:6.1f}s] end of the run; "
                                   f"market: {demo.message if demo else feed.state}"),
                              soft_wrap=True)
                if feed.state != "running" or (demo and demo.state == "ended"):
                    failures.append(f"at the end: the market is {feed.state}")
            deadline = time.monotonic() + args.settle
            while True:
                for p in placed:
                    if not p.settled:
                        refresh(client, p)
                if all(p.settled for p in placed) or time.monotonic() > deadline:
                    break
                wake.wait(0.2)
            final = client.feed_status()
            positions.append(final.position)
    finally:
        host.stop()
        tmp_name = tmp.name
        tmp.cleanup()

    for p in placed:
        o = p.order
        if p.problem:
            failures.append(f"round {p.round} {p.via}: {p.problem}")
        elif p.via == "webhook" and p.signal_status not in FINAL_SIGNALS:
            failures.append(f"round {p.round} webhook: signal {p.signal_id} is still "
                            f"{p.signal_status}")
        elif o is not None and o.status not in TERMINAL_STATUSES and not o.reject_reason:
            failures.append(f"round {p.round} {p.via}: order {o.id} is still {o.status.value} "
                            "with no reason")
        elif o is None and p.via == "cli":
            failures.append(f"round {p.round} cli: no order")
    if len(positions) > 1 and positions[-1] <= positions[0]:
        failures.append(f"the feed did not move: position {positions[0]} -> {positions[-1]}")
    if host.proc.returncode not in (0, -15):
        failures.append(f"the host exited with {host.proc.returncode}")

    table = Table(title="orders placed", title_justify="left", box=None)
    for col in ("round", "at", "via", "side", "order", "status", "fill", "signal", "reason"):
        table.add_column(col, justify="right" if col in ("round", "at", "fill") else "left")
    counts: dict[str, int] = {}
    for p in placed:
        o = p.order
        status = "error" if p.problem else o.status.value if o else "-"
        counts[status] = counts.get(status, 0) + 1
        reason = p.problem or (o.reject_reason if o else None) or (
            p.signal_reason if p.via == "webhook" and p.signal_status != "executed" else "")
        table.add_row(str(p.round + 1), f"{p.at:.0f}s", p.via, p.side, o.id if o else "-",
                      status, f"{o.avg_fill_price:,.2f}" if o and o.avg_fill_price else "",
                      p.signal_status, Text(reason or ""))
    console.print(table)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    first, last = (positions[0], positions[-1]) if positions else (0, 0)
    console.print(f"{len(placed)} orders ({summary}); feed position {first} -> {last} bars; "
                  f"data dir was {tmp_name} (removed)")
    if failures:
        console.print(f"[red]FAIL[/red]: {len(failures)} problem(s)")
        for f in failures:
            console.print(Text(f"  - {f}"), soft_wrap=True)
        tail = [line for line in host.stderr if line.strip()][-15:]
        if tail:
            console.print("host stderr (last lines):")
            for line in tail:
                console.print(Text(f"  {line}"), soft_wrap=True)
        return 1
    console.print("[green]OK[/green]: every order reached a final state or carries its reason; "
                  "the market never ran dry")
    return 0


if __name__ == "__main__":
    sys.exit(main())
