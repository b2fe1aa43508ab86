"""``sandtrade serve`` as a real subprocess, for the tests that kill it and start it again."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """``sandtrade serve --data-dir DATA_DIR ARGS...`` in a subprocess (1,000,000 of cash),
    startable again with the same arguments: the same ports and data."""

    def __init__(self, data_dir: Path, args: list[str]) -> None:
        self.data_dir = data_dir
        self.args = args
        self.proc: subprocess.Popen[str] | None = None

    def start(self) -> None:
        """Start it and wait for its READY line."""
        env = {**os.environ, "SANDTRADE_CASH": "1000000"}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sandtrade.cli", "serve", "--data-dir", str(self.data_dir),
             *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("READY"):
            _, err = self.proc.communicate(timeout=10)
            raise AssertionError(f"host did not start: {line!r} {err}")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
