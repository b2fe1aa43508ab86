"""``sandtrade options chain|order|positions|payoff|close`` against a real ``sandtrade serve``.

One host for the module, replaying the DEMO sample slowly (a daily bar every 4 s) so that a
60-day expiry is still weeks away when the tests end; its chain is priced at the feed's last
price and time, as in production.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest

from rpc.serve_process import ServeProcess, free_port

OCC = re.compile(r"\bDEMO\d{6}[CP]\d{8}\b")
CONDOR = ("iron_condor", "DEMO", "--expiry", "60d", "--short-delta", "0.16", "--width", "2")


class Host:
    """A data directory and the gRPC address of the host serving it."""

    def __init__(self, data_dir: Path, grpc: str) -> None:
        self.data_dir, self.grpc = data_dir, grpc

    def run(self, *args: str, columns: int = 100) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "COLUMNS": str(columns)}
        env.pop("SANDTRADE_TOKEN", None)
        return subprocess.run([sys.executable, "-m", "sandtrade.cli", *args, "--data-dir",
                               str(self.data_dir), "--grpc", self.grpc],
                              capture_output=True, text=True, timeout=120, env=env)

    def ok(self, *args: str) -> str:
        proc = self.run(*args)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc.stdout


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    data_dir = tmp_path_factory.mktemp("options-cli")
    grpc = f"127.0.0.1:{free_port()}"
    serve = ServeProcess(data_dir, ["--grpc", grpc, "--http", "", "--speed", "0.25"])
    serve.start()
    try:
        h = Host(data_dir, grpc)
        deadline = time.monotonic() + 60
        while True:  # the chain exists once DEMO has its first price
            proc = h.run("options", "chain", "DEMO", "--json")
            if proc.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert proc.returncode == 0, proc.stderr
        yield h
    finally:
        serve.stop()


def test_the_chain_is_calls_and_puts_side_by_side_around_the_spot(host: Host) -> None:
    table = host.ok("options", "chain", "DEMO", "--expiry", "30d", "--strikes", "3")
    lines = table.splitlines()
    assert re.match(r"DEMO options expiring \d{4}-\d\d-\d\d \(\d+ days\): spot [\d.]+, "
                    r"priced at ", lines[0]), table
    header = lines[1].split()
    assert header[:4] == ["call", "Δ", "call", "IV"] and "strike" in header, table
    assert header.index("strike") < header.index("put"), table
    strikes = [float(line.split()[4]) for line in lines[2:] if line.strip()]
    assert len(strikes) == 7 and strikes == sorted(strikes), table

    chain = json.loads(host.ok("options", "chain", "DEMO", "--expiry", "30d", "--strikes", "3",
                               "--json"))
    assert chain["underlying"] == "DEMO" and chain["spot"] > 0
    assert len(chain["rows"]) == 14
    assert {r["right"] for r in chain["rows"]} == {"call", "put"}
    assert len({r["expiry"] for r in chain["rows"]}) == 1
    for row in chain["rows"]:
        assert 0 <= row["bid"] < row["ask"] and row["mark"] == pytest.approx(
            (row["bid"] + row["ask"]) / 2 if row["bid"] > 0 else row["ask"])
        assert row["iv"] > 0 and row["delta"] is not None and OCC.fullmatch(row["symbol"])


def test_an_order_by_template_is_shown_sent_listed_drawn_and_closed_as_one(
        host: Host, tmp_path: Path) -> None:
    dry = host.ok("options", "order", *CONDOR, "--dry-run")
    assert len(OCC.findall(dry)) == 4, dry
    assert re.search(r"net credit [\d.]+ per spread", dry), dry
    assert re.search(r"max profit \$[\d,.]+, max loss \$[\d,.]+ per spread", dry), dry
    assert re.search(r"break-even [\d.]+, [\d.]+", dry), dry
    assert "dry run: nothing sent" in dry
    assert json.loads(host.ok("orders", "--json")) == []

    sent = json.loads(host.ok("options", "order", *CONDOR, "--qty", "1", "--json"))
    order, plan = sent["order"], sent["plan"]
    assert order["status"] == "filled" and order["order_class"] == "mleg", order
    assert [leg["symbol"] for leg in order["legs"]] == [leg["symbol"] for leg in plan["legs"]]
    assert plan["net_price"] < 0 and len(plan["breakevens"]) == 2

    listed = json.loads(host.ok("options", "positions", "--json"))
    [group] = listed["groups"]
    assert group["id"] == order["id"] and group["strategy"] == "iron_condor"
    assert sorted(leg["symbol"] for leg in group["legs"]) == sorted(
        leg["symbol"] for leg in order["legs"])
    assert group["max_profit"] > 0 and group["max_loss"] > 0
    assert listed["account"]["delta"] == pytest.approx(group["delta"])
    table = host.ok("options", "positions")
    assert f"group {order['id']}: iron_condor on DEMO" in table, table
    assert all(leg["symbol"] in table for leg in group["legs"]), table
    assert "max profit $" in table and "account: delta" in table

    page = tmp_path / "group.html"
    drawn = json.loads(host.ok("options", "payoff", "--group", order["id"], "--out", str(page),
                               "--json"))
    assert drawn["path"] == str(page) and len(drawn["breakevens"]) == 2
    assert_self_contained(page)
    assert order["id"] in page.read_text()

    closing = json.loads(host.ok("options", "close", order["id"], "--json"))
    assert closing["status"] == "filled" and closing["parent_id"] == order["id"], closing
    assert json.loads(host.ok("options", "positions", "--json"))["groups"] == []
    assert json.loads(host.ok("positions", "--json")) == []


def test_a_template_payoff_page_is_self_contained(host: Host, tmp_path: Path) -> None:
    page = tmp_path / "condor.html"
    out = host.ok("options", "payoff", *CONDOR, "--out", str(page))
    assert re.search(r"iron condor on DEMO, expiry \S+, net -[\d.]+: max profit \$[\d.]+, "
                     r"max loss \$[\d.]+, break-even [\d.]+, [\d.]+", out), out
    assert_self_contained(page)


@pytest.mark.parametrize(("args", "words"), [
    ((*CONDOR[:-1], "-2"), "parameters.width: iron_condor: width -2 must be above 0"),
    ((*CONDOR[:-1], "five"), "parameters.width: iron_condor: width must be a number"),
    (("iron_condr", "DEMO"), "strategy: unknown strategy 'iron_condr'"),
    (("iron_condor", "DEMO", "--expiry", "someday", "--short-delta", "0.16", "--width", "2"),
     "expiry 'someday' is not an expiry selector"),
    (("straddle", "DEMO", "--side", "sideways"), "parameters.side: straddle: side 'sideways'"),
    (("straddle", "DEMO", "--param", "wings=3"), "unknown parameter(s) wings"),
])
def test_a_wrong_parameter_is_one_line_naming_it(host: Host, args: tuple[str, ...],
                                                  words: str) -> None:
    proc = host.run("options", "order", *args)
    assert proc.returncode == 1, proc.stdout
    assert words in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1, proc.stderr


def test_a_payoff_needs_a_template_or_an_open_group(host: Host, tmp_path: Path) -> None:
    proc = host.run("options", "payoff", "--out", str(tmp_path / "x.html"))
    assert proc.returncode == 1 and "give TEMPLATE SYMBOL" in proc.stderr, proc.stderr
    proc = host.run("options", "payoff", "--group", "o_nope", "--out", str(tmp_path / "x.html"))
    assert proc.returncode == 1 and "--group 'o_nope': no open position group" in proc.stderr
    assert not (tmp_path / "x.html").exists()


class _Links(HTMLParser):
    """Every src and href attribute of a page's tags (script text is not tags)."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href"):
                self.links.append((tag, name, value or ""))


def assert_self_contained(page: Path) -> None:
    """The page loads nothing: no tag has a src or href, and plotly.js is in it."""
    text = page.read_text(encoding="utf-8")
    parser = _Links()
    parser.feed(text)
    assert parser.links == [], parser.links
    assert "Plotly.newPlot" in text and len(text) > 1_000_000  # plotly.js embedded
