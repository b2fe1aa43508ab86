"""``sandtrade serve`` past the end of its data, as a real process: with ``--then stop`` the end
is visible everywhere (stderr, gRPC, /health, ``sandtrade account``) and orders get the
reason; with ``loop`` and ``synthetic`` the market goes on with increasing times, and a host
killed with SIGKILL resumes that continued stream exactly where it was."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from itertools import islice, pairwise
from pathlib import Path
from typing import TypeVar

import pytest

from rpc.serve_process import ServeProcess, free_port
from sandtrade.client import Client
from sandtrade.market import gbm_bars, write_csv
from sandtrade.market.continuation import Then, continued
from sandtrade.market.hub import FeedStatus
from sandtrade.market.sources import MarketSettings, ReplaySource
from sandtrade.models import Bar

#: Real `sandtrade serve` processes killed and started again: part of the slow set.
pytestmark = pytest.mark.slow

WAIT = 30.0  # a loaded two-core machine starts Python processes slowly
ENDED = "replay of SYN ended at 2024-01-16 (bar 12 of 12); orders on SYN cannot fill"
T = TypeVar("T")


class Host(ServeProcess):
    """``sandtrade serve --data SYN=CSV --then THEN`` on known ports."""

    def __init__(self, data_dir: Path, csv: Path, then: Then, speed: float) -> None:
        self.target = f"127.0.0.1:{free_port()}"
        self.http = f"127.0.0.1:{free_port()}"
        super().__init__(data_dir, ["--grpc", self.target, "--http", self.http,
                                    "--data", f"SYN={csv}", "--then", then,
                                    "--speed", str(speed)])

    def client(self) -> Client:
        token = (self.data_dir / "operator.token").read_text().strip()
        return Client(self.target, token)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A client command of the CLI against this host, with the operator token."""
        return subprocess.run(
            [sys.executable, "-m", "sandtrade.cli", *args, "--data-dir", str(self.data_dir),
             "--grpc", self.target], capture_output=True, text=True, timeout=WAIT)

    def stderr(self) -> str:
        """What the host printed on stderr (after it stopped)."""
        assert self.proc is not None and self.proc.stderr is not None
        return self.proc.stderr.read()


def wait_for(what: str, get: Callable[[], T], ok: Callable[[T], bool]) -> T:
    deadline = time.monotonic() + WAIT
    while True:
        value = get()
        if ok(value):
            return value
        assert time.monotonic() < deadline, f"waited {WAIT} s for {what}; last: {value}"
        time.sleep(0.05)


@pytest.fixture
def csv(tmp_path: Path) -> Path:
    """12 weekday bars of SYN, 2024-01-01 .. 2024-01-16."""
    path = tmp_path / "SYN.csv"
    write_csv(gbm_bars(12, symbol="SYN", seed=3, start=datetime(2024, 1, 1), interval="1d",
                       skip_weekends=True), path)
    return path


@pytest.fixture
def hosts() -> Iterator[list[Host]]:
    """Hosts a test started; all are stopped at its end."""
    started: list[Host] = []
    yield started
    for host in started:
        host.stop()


def test_a_stopped_replay_is_visible_everywhere_and_orders_get_the_reason(
        tmp_path: Path, csv: Path, hosts: list[Host]) -> None:
    host = Host(tmp_path / "data", csv, "stop", speed=0)
    hosts.append(host)
    host.start()
    with host.client() as client:
        status = wait_for("the feed to end", client.feed_status, lambda s: s.state == "ended")
    assert status.position == 12
    assert [s.message for s in status.symbols] == [ENDED]

    with urllib.request.urlopen(f"http://{host.http}/health", timeout=WAIT) as resp:
        market = json.load(resp)["market"]
    assert (market["state"], market["then"]) == ("ended", "stop")
    assert market["symbols"]["SYN"]["message"] == ENDED

    account = host.cli("account")
    assert account.returncode == 0, account.stderr
    assert f"market: {ENDED}\n" in account.stdout
    as_json = host.cli("account", "--json")
    assert json.loads(as_json.stdout)["market"] == market, "the same as /health says"

    buy = host.cli("buy", "SYN", "1", "--json")
    assert buy.returncode == 1
    assert json.loads(buy.stdout)[0]["status"] == "rejected"
    assert ("rejected: no more prices for SYN: the replay ended at 2024-01-16 (bar 12 of 12)"
            in " ".join(buy.stderr.split()))

    host.stop()
    assert f"market: {ENDED}" in host.stderr()

    host.start()  # started again: the data has still ended; nothing is replayed twice
    with host.client() as client:
        status = wait_for("the feed to end", client.feed_status, lambda s: s.state == "ended")
        assert status.position == 12
        assert len(client.bars("SYN")) == 12


@pytest.mark.parametrize("then", ["loop", "synthetic"])
def test_the_market_goes_on_past_the_data_and_resumes_after_a_sigkill(
        tmp_path: Path, csv: Path, hosts: list[Host], then: Then) -> None:
    expected = [b for b in islice(continued(ReplaySource(MarketSettings(
        files=[f"SYN={csv}"])), then), 2000) if isinstance(b, Bar)]
    host = Host(tmp_path / "data", csv, then, speed=200)
    hosts.append(host)
    host.start()

    def past(n: int) -> Callable[[FeedStatus], bool]:
        return lambda s: s.position >= n

    with host.client() as client:
        status = wait_for("bars past the data", client.feed_status, past(40))
        (syn,) = status.symbols
        assert syn.state == {"loop": "looping", "synthetic": "synthetic"}[then]
        assert syn.source_bars == 12
        if then == "loop":  # in a pass, or (at a seam) starting one
            assert f"pass {syn.passes + 1}" in syn.message
            assert f"times moved forward {21 * syn.passes} days" in syn.message
        else:
            assert syn.message.startswith(ENDED.split(";")[0] + "; then synthetic bars")
        bars = client.bars("SYN")
    assert bars == expected[:len(bars)], "the continued stream, in order"
    assert all(a.time < b.time for a, b in pairwise(bars))

    host.kill()
    host.start()
    with host.client() as client:
        resumed_at = wait_for("the feed to catch up", client.feed_status,
                              lambda s: s.state == "running").position
        wait_for("new bars after the restart", client.feed_status, past(resumed_at + 30))
        # The feed's position counts a bar once worked; the store has it once its group
        # commit is durable, a moment later on a loaded machine.
        again = wait_for("the bars in the store", lambda: client.bars("SYN"),
                         lambda b: len(b) >= resumed_at + 30)
    assert len(again) >= resumed_at + 30
    assert again == expected[:len(again)], "resumed after the last bar worked: no bar twice, " \
                                           "none skipped, the same continued stream"
