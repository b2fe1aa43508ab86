"""How many strategies one host holds: N copies of the SMA crossover live at once.

    python bench/live_density.py [--n 1,10,50,100,200] [--window 15] [--speed 20]
                                 [--spinner] [--no-orders] [--mode free|lockstep|auto]

For each N it starts its own ``sandtrade serve`` (a temporary data directory, free loopback
ports, the built-in DEMO replay at ``--speed`` bars/s, looping), uploads N copies of
``strategies_examples/sma_cross.py`` in parallel with the bundled client (the operator's
token; each strategy trades its own account; with ``--no-orders`` the same crossover logs
where it would trade, which leaves the fan-out's cost without orders) and starts them, waits
until all are running, then watches ``--window`` seconds and prints one row:

* **start N**: seconds from the first upload to all N running;
* **feed**: bars the feed published per second in the window (the target is ``--speed``);
* **p50 / p99**: publish → last strategy done, per bar (the host's ``GetFanoutStats``); with
  ``--spinner``, the others' p99 (the worst of each strategy's own p99) beside a strategy
  whose ``on_bar`` never returns;
* **host µs/event**, **workers µs/event**: CPU (user + system) of the host process, and of
  all its workers, per strategy-event (bars published × N) in the window;
* **PSS**: proportional set size of the host and its workers together.

Then the issue's targets, each ticked or crossed. The host is stopped (and its process group
killed) after each row, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
from rich.console import Console
from rich.table import Table

from sandtrade.client import Client

ROOT = Path(__file__).resolve().parents[1]
SMA = (ROOT / "strategies_examples" / "sma_cross.py").read_text()
#: The same crossover, logging where the strategy trades: the fan-out's cost without orders.
WATCHER = SMA.split("\n\ndef on_bar")[0] + '''

def on_bar(ctx, bar):
    fast = ctx.ta.sma(ctx.params["fast"])
    slow = ctx.ta.sma(ctx.params["slow"])
    if ctx.ta.crossover(fast, slow):
        ctx.log("up")
    elif ctx.ta.crossunder(fast, slow):
        ctx.log("down")
'''
SPINNER = "def on_bar(ctx, bar):\n    while True:\n        pass\n"
console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Host:
    """``sandtrade serve`` in its own process group, in ``data_dir``."""

    def __init__(self, data_dir: Path, speed: float, mode: str = "auto",
                 cash: float | None = None) -> None:
        self.data_dir = data_dir
        self.grpc = f"127.0.0.1:{free_port()}"
        mode_flag = [] if mode == "auto" else [f"--{mode}"]
        env = {**os.environ, **({"SANDTRADE_CASH": str(cash)} if cash is not None else {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandtrade.cli", "serve", "--data-dir", str(data_dir),
             "--grpc", self.grpc, "--http", "", "--speed", str(speed), *mode_flag],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
            env=env)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            raise SystemExit(f"the host did not start: {line}{self.proc.stderr.read()[-2000:]}")
        for stream in (self.proc.stdout, self.proc.stderr):  # a full pipe would block it
            threading.Thread(target=lambda s=stream: [None for _ in s], daemon=True).start()

    def client(self) -> Client:
        token = (self.data_dir / "operator.token").read_text().strip()
        return Client(self.grpc, token, retry_for=10.0, timeout=60.0)

    def processes(self) -> tuple[psutil.Process, list[psutil.Process]]:
        host = psutil.Process(self.proc.pid)
        return host, host.children(recursive=True)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=60)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def cpu(p: psutil.Process) -> float:
    try:
        t = p.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return 0.0


def pss(p: psutil.Process) -> int:
    try:
        with open(f"/proc/{p.pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


@dataclass
class Row:
    n: int
    start_s: float
    feed: float
    p50: float
    p99: float
    others_p99: float | None
    host_us: float
    workers_us: float
    pss_mib: float


def measure(n: int, args: argparse.Namespace) -> Row:
    with tempfile.TemporaryDirectory(prefix="sandtrade-density-") as tmp:
        host = Host(Path(tmp) / "data", args.speed, args.mode)
        try:
            with host.client() as client:
                names = [f"sma{k:03d}" for k in range(n)]
                t0 = time.monotonic()
                done = 0

                strategy = WATCHER if args.no_orders else SMA

                def bring_up(name: str, source: str = strategy) -> None:
                    nonlocal done
                    client.upload_strategy(name, source, symbols=["DEMO"])
                    client.start_strategy(name)
                    done += 1

                with ThreadPoolExecutor(8) as pool, console.status("") as status:
                    futures = [pool.submit(bring_up, name) for name in names]
                    if args.spinner:
                        futures.append(pool.submit(bring_up, "spinner", SPINNER))
                    total = len(futures)
                    while not all(f.done() for f in futures):
                        status.update(f"N={n}: {done}/{total} uploaded and started")
                        time.sleep(0.2)
                    for f in futures:
                        f.result()
                    want = set(names) | ({"spinner"} if args.spinner else set())
                    while True:
                        running = {s.name for s in client.list_strategies()
                                   if s.state == "running"}
                        status.update(f"N={n}: {len(running & want)}/{total} running")
                        if want <= running:
                            break
                        time.sleep(0.2)
                start_s = time.monotonic() - t0
                with console.status(f"N={n}: settling 3 s, then watching {args.window:g} s"):
                    time.sleep(3)
                    proc, workers = host.processes()
                    pos0 = client.feed_status().position
                    host0, work0 = cpu(proc), {w.pid: cpu(w) for w in workers}
                    time.sleep(args.window)
                    pos1 = client.feed_status().position
                    proc, workers = host.processes()
                    host1, work1 = cpu(proc), {w.pid: cpu(w) for w in workers}
                    # Per worker (a worker restarted in the window counts from its start; the
                    # CPU of one that ended in it is lost, so this is a lower bound then).
                    worker_cpu = sum(t - work0.get(pid, 0.0) for pid, t in work1.items())
                    bars = max(1, pos1 - pos0)
                    stats = client.fanout_stats(latest=bars)
                    memory = pss(proc) + sum(pss(w) for w in workers)
                events = bars * n
                others = [lag["p99_ms"] for name, lag in stats["lags"].items()
                          if name.split("/")[-1] != "spinner"]
                return Row(n, start_s, bars / args.window, stats["p50_ms"], stats["p99_ms"],
                           max(others) if args.spinner and others else None,
                           (host1 - host0) / events * 1e6, worker_cpu / events * 1e6,
                           memory / 2**20)
        finally:
            host.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", default="1,10,50,100,200", help="strategy counts (1,10,50,100,200)")
    ap.add_argument("--window", type=float, default=15.0, help="seconds watched per N (15)")
    ap.add_argument("--speed", type=float, default=20.0, help="bars per second (20)")
    ap.add_argument("--spinner", action="store_true",
                    help="add one strategy whose on_bar never returns")
    ap.add_argument("--no-orders", action="store_true",
                    help="the crossover logs instead of trading: the fan-out without orders")
    ap.add_argument("--mode", default="auto", choices=("auto", "free", "lockstep"),
                    help="[strategies] mode of the host (auto: free when paced)")
    args = ap.parse_args()
    counts = [int(x) for x in args.n.split(",")]
    what = "sma_cross (logging, no orders)" if args.no_orders else "sma_cross"
    table = Table(title=f"live density: {what} x N, DEMO at {args.speed:g} bars/s, "
                  f"mode {args.mode}{', with a spinner' if args.spinner else ''}, "
                  f"{os.cpu_count()} cores")
    for col in ("N", "start N [s]", "feed [bars/s]", "p50 [ms]", "p99 [ms]",
                "others' p99 [ms]", "host [µs/event]", "workers [µs/event]", "PSS [MiB]"):
        table.add_column(col, justify="right")
    rows = []
    for n in counts:
        row = measure(n, args)
        rows.append(row)
        console.print(f"N={n}: started in {row.start_s:.1f} s, feed {row.feed:.1f} bars/s, "
                      f"p50 {row.p50:.1f} ms, p99 {row.p99:.1f} ms"
                      + (f", others' p99 {row.others_p99:.1f} ms"
                         if row.others_p99 is not None else "")
                      + f", host {row.host_us:.0f} µs/event, PSS {row.pss_mib:.0f} MiB")
        table.add_row(str(n), f"{row.start_s:.1f}", f"{row.feed:.1f}", f"{row.p50:.1f}",
                      f"{row.p99:.1f}",
                      "-" if row.others_p99 is None else f"{row.others_p99:.1f}",
                      f"{row.host_us:.0f}", f"{row.workers_us:.0f}", f"{row.pss_mib:.0f}")
    console.print(table)
    big = max(rows, key=lambda r: r.n)

    def tick(ok: bool) -> str:
        return "✓" if ok else "✗"

    console.print(f"targets at N={big.n}: feed on time {tick(big.feed >= 0.95 * args.speed)}, "
                  f"p99 < 50 ms {tick(big.p99 < 50)}, "
                  + (f"others' p99 < 100 ms with a spinner "
                     f"{tick((big.others_p99 or 0) < 100)}, " if args.spinner else "")
                  + f"host < 100 µs/event {tick(big.host_us < 100)}, "
                  f"start all in < 60 s {tick(big.start_s < 60)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
