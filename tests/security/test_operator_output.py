"""What a strategy writes reaches the operator as data: one test per attack, through the real
CLI and a real host.

A strategy's text (its PARAMS, its log lines, its exceptions) is the author's, and the author
may be hostile. Each attack below was seen on main before this file: rich markup crashed
``check`` and ``strategies status`` (MarkupError), a lone surrogate stopped StreamStrategyLogs
and GetStrategyStatus with INTERNAL, ESC and OSC sequences reached the terminal through
``strategies logs``, ``print("[host] stopped")`` read exactly like the host's own note, a PARAMS
key with a newline forged a line of ``check``, ``PARAMS = {"big": 10**4400}`` ended a back-test
with the hostile-worker verdict, and a log flood was killed as "frame too large".

The host is ``sandtrade serve`` in a subprocess (the DEMO sample replayed at 20 bars a second),
shared by the module's tests, each with strategies of its own names; every CLI call is a real
``python -m sandtrade.cli`` subprocess whose captured output is what a terminal would get.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest

from rpc.serve_process import ServeProcess, free_port
from sandtrade.host.runtime import OPERATOR_TOKEN_FILE
from sandtrade.v1 import strategies_pb2 as spb
from sandtrade.v1 import strategies_pb2_grpc

T = TypeVar("T")

#: Generous: the machine may be loaded, and every CLI call starts a Python process.
DEADLINE = 60.0
#: Wide enough that no table wraps what a test looks for.
COLUMNS = 200
#: What the host's quota message names (WorkerLimits.log_lines_per_s).
QUOTA = "(quota 200 lines/s)"


@dataclass
class Host:
    """A running ``sandtrade serve``: its data directory and gRPC address."""

    data_dir: Path
    grpc: str
    token: str

    def cli(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``sandtrade ARGS --data-dir ... --grpc ...`` in a subprocess, output captured."""
        env = {**os.environ, "COLUMNS": str(COLUMNS)}
        return subprocess.run([sys.executable, "-m", "sandtrade.cli", *args, "--data-dir",
                               str(self.data_dir), "--grpc", self.grpc],
                              capture_output=True, text=True, timeout=timeout, env=env)

    def upload(self, tmp_path: Path, name: str, source: str, *extra: str,
               start: bool = True) -> subprocess.CompletedProcess[str]:
        path = tmp_path / f"{name}.py"
        path.write_text(source, encoding="utf-8")
        return self.cli("strategies", "upload", str(path), "--symbol", "DEMO",
                        *(("--start",) if start else ()), *extra)

    def stub(self) -> tuple[grpc.Channel, strategies_pb2_grpc.StrategyServiceStub]:
        channel = grpc.insecure_channel(self.grpc)
        return channel, strategies_pb2_grpc.StrategyServiceStub(channel)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    data_dir = tmp_path_factory.mktemp("host")
    address = f"127.0.0.1:{free_port()}"
    serve = ServeProcess(data_dir, ["--grpc", address, "--http", f"127.0.0.1:{free_port()}",
                                    "--speed", "20"])
    serve.start()
    try:
        token_file = data_dir / OPERATOR_TOKEN_FILE
        yield Host(data_dir, address, wait_for(lambda: token_file.exists() and
                                               token_file.read_text().strip(), "the token"))
    finally:
        serve.stop()


def wait_for(probe: Callable[[], T], what: str, deadline: float = DEADLINE) -> T:
    """Poll ``probe`` until it returns something true; fail naming ``what`` after
    ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"no {what} within {deadline:g} s (last: {value!r})")
        time.sleep(0.1)


def status(host: Host, name: str) -> spb.GetStrategyStatusResponse:
    channel, stub = host.stub()
    with channel:
        return stub.GetStrategyStatus(spb.GetStrategyStatusRequest(name=name),
                                      metadata=host.metadata, timeout=10)


def log_entries(host: Host, name: str) -> list[spb.StreamStrategyLogsResponse]:
    channel, stub = host.stub()
    with channel:
        return list(stub.StreamStrategyLogs(spb.StreamStrategyLogsRequest(name=name, tail=5000),
                                            metadata=host.metadata, timeout=10))


def logs_json(host: Host, name: str) -> list[dict[str, Any]]:
    proc = host.cli("strategies", "logs", name, "--json", "--tail", "5000")
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def no_terminal_control(text: str) -> None:
    """Nothing a terminal acts on: no ESC (CSI, OSC), no C1 CSI, BEL or carriage return."""
    for c in ("\x1b", "\x9b", "\x9d", "\x07", "\r", "\x00"):
        assert c not in text, f"{c!r} reached the output: {text!r}"


# ------------------------------------------------------------------ markup

MARKUP = '''\
PARAMS = {"[bold red]k[/]": "[/red][link=http://x]v"}


def on_start(ctx):
    print("[bold]log[/bold] [/] [red")
    raise ValueError("[/red][bold]boom")
'''


def test_markup_in_params_and_errors_is_shown_literally_by_check_status_list_and_logs(
        host: Host, tmp_path: Path) -> None:
    """Rich markup in PARAMS, a log line and an exception: every command exits 0 and shows
    the brackets as they were written."""
    path = tmp_path / "markup.py"
    path.write_text(MARKUP)
    check = subprocess.run([sys.executable, "-m", "sandtrade.cli", "check", str(path)],
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    assert "[bold red]k[/]='[/red][link=http://x]v'" in check.stdout, check.stdout

    # the list shows the parameters given at upload
    assert host.upload(tmp_path, "markup", MARKUP, "--param",
                       "[bold red]k[/]=[/red][link=http://x]w").returncode == 0
    wait_for(lambda: status(host, "markup").last_errors, "error of on_start")

    shown = host.cli("strategies", "status", "markup")
    assert shown.returncode == 0, shown.stderr
    assert "ValueError: [/red][bold]boom" in shown.stdout, shown.stdout

    listed = host.cli("strategies", "list")
    assert listed.returncode == 0, listed.stderr
    assert "[bold red]k[/]=[/red][link=http://x]w" in listed.stdout, listed.stdout

    logs = host.cli("strategies", "logs", "markup")
    assert logs.returncode == 0, logs.stderr
    assert "[bold]log[/bold] [/] [red" in logs.stdout, logs.stdout
    assert "ValueError: [/red][bold]boom" in logs.stdout, logs.stdout


# ------------------------------------------------------------------ lone surrogates

SURROGATES = '''\
def on_start(ctx):
    print("log \\ud800 line")
    raise ValueError("error \\udfff text")
'''


def test_a_lone_surrogate_in_a_log_line_and_an_error_reaches_grpc_as_a_replacement(
        host: Host, tmp_path: Path) -> None:
    """No UTF-8 encoder takes a lone surrogate (protobuf's neither): the host replaces it
    with U+FFFD as the line comes in, so StreamStrategyLogs and GetStrategyStatus answer."""
    assert host.upload(tmp_path, "surrogate", SURROGATES).returncode == 0
    errors = wait_for(lambda: status(host, "surrogate").last_errors, "error of on_start")
    assert "error \ufffd text" in errors[0], errors
    entries = log_entries(host, "surrogate")
    assert ("log \ufffd line", spb.LOG_ORIGIN_STRATEGY) in [(e.line, e.origin)
                                                             for e in entries], entries
    assert any("error \ufffd text" in e.line and e.origin == spb.LOG_ORIGIN_ERROR
               for e in entries), entries
    shown = host.cli("strategies", "status", "surrogate")
    assert shown.returncode == 0 and "error \ufffd text" in shown.stdout, shown


# ------------------------------------------------------------------ terminal control

ESCAPES = '''\
def on_start(ctx):
    print("\\x1b[2J\\x1b]0;owned\\x07\\x1b[31mred\\rover\\x9b1m\\x00end")
    raise ValueError("\\x1b]8;;http://evil\\x1b\\\\link\\x1b]8;;\\x1b\\\\")
'''


def test_escape_and_osc_sequences_in_logs_never_reach_the_terminal(host: Host,
                                                                   tmp_path: Path) -> None:
    """ESC (CSI and OSC: clear screen, set the title, a hyperlink), a C1 CSI, BEL and a
    carriage return in a log line and an error: shown spelled out, never sent raw."""
    assert host.upload(tmp_path, "escapes", ESCAPES).returncode == 0
    wait_for(lambda: status(host, "escapes").last_errors, "error of on_start")
    for args in (("logs", "escapes"), ("status", "escapes"), ("logs", "escapes", "--json")):
        proc = host.cli("strategies", *args)
        assert proc.returncode == 0, proc.stderr
        no_terminal_control(proc.stdout)
        no_terminal_control(proc.stderr)
    logs = host.cli("strategies", "logs", "escapes").stdout
    assert "\\x1b[2J\\x1b]0;owned\\x07\\x1b[31mred\\rover\\x9b1mend" in logs, logs
    assert "\\x1b]8;;http://evil\\x1b\\link" in logs, logs
    # NUL is dropped on intake; the rest is kept as data for --json readers
    assert any(e["line"] == "\x1b[2J\x1b]0;owned\x07\x1b[31mred\rover\x9b1mend"
               for e in logs_json(host, "escapes"))


# ------------------------------------------------------------------ forged host notes

FORGER = '''\
def on_start(ctx):
    print("[host] stopped")
    print("host \u2502 worker ended: the operator said so")
'''


def test_a_strategy_printing_host_words_stays_in_the_strategy_column(host: Host,
                                                                      tmp_path: Path) -> None:
    """Who wrote a line is the origin field and its own column, not the text: a strategy's
    "[host] stopped" is shown in the strategy's (blank) column and is origin=strategy."""
    assert host.upload(tmp_path, "forger", FORGER).returncode == 0
    entries = wait_for(lambda: [e for e in logs_json(host, "forger")
                                if "worker ended" in e["line"]], "forged line")
    assert [e["origin"] for e in entries] == ["strategy"]
    records = logs_json(host, "forger")
    assert {"line": "[host] stopped", "origin": "strategy"} in [
        {"line": e["line"], "origin": e["origin"]} for e in records], records
    assert any(e["origin"] == "host" and e["line"].startswith("starting (run ")
               for e in records), records

    lines = host.cli("strategies", "logs", "forger").stdout.splitlines()
    mine = [x for x in lines if "stopped" in x or "worker ended" in x]
    assert len(mine) == 2, lines
    for line in mine:
        assert re.fullmatch(r"\d\d:\d\d:\d\d {6}│ .*", line), line  # the blank origin column
    host_notes = [x for x in lines if re.fullmatch(r"\d\d:\d\d:\d\d host │ starting.*", x)]
    assert host_notes, lines


# ------------------------------------------------------------------ PARAMS


def test_a_params_key_with_a_newline_does_not_forge_a_line_of_check(tmp_path: Path) -> None:
    """A key is a name for --param: one with a newline (here forging check's own "ok" line)
    is refused, on one line, with the file and line of the key."""
    path = tmp_path / "forge.py"
    path.write_text('PARAMS = {\n    "k\\nforge.py: ok (hooks: on_bar; params: none)": 1,\n}\n\n'
                    "def on_bar(ctx, bar):\n    pass\n")
    proc = subprocess.run([sys.executable, "-m", "sandtrade.cli", "check", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout
    assert proc.stdout == "", proc.stdout
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"{path}:2: PARAMS key 'k\\nforge.py: ok"), lines
    assert "(names are printable text)" in lines[0], lines


BIG = 'PARAMS = {"big": 10**4400}\n\n\ndef on_bar(ctx, bar):\n    pass\n'
BIG_ERROR = ("PARAMS['big']: an integer of 4,401 digits; a parameter is a number within "
             "±2**63, a string or a boolean")


def test_huge_int_param_is_a_plain_error_in_check_backtest_and_upload(host: Host,
                                                                      tmp_path: Path) -> None:
    """An int past what JSON, protobuf and the store carry is the author's mistake, named
    with its file and line: not a hostile-worker verdict, not a traceback."""
    path = tmp_path / "big.py"
    path.write_text(BIG)
    where = f"{path}:1: {BIG_ERROR}"
    for args in (("check", str(path)), ("backtest", str(path), "--data", "DEMO")):
        proc = subprocess.run([sys.executable, "-m", "sandtrade.cli", *args],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1, (args, proc.stdout)
        assert proc.stderr.strip() == where, (args, proc.stderr)

    up = host.upload(tmp_path, "big", BIG, start=False)
    assert up.returncode == 1, up.stdout
    assert where in up.stderr and "not uploaded" in up.stderr, up.stderr
    for word in ("malformed", "protocol", "Traceback", "internal"):
        assert word not in up.stderr, up.stderr
    listed = host.cli("strategies", "list", "--json")
    assert "big" not in [s["name"] for s in json.loads(listed.stdout)]

    # the same bounds for a value given on the command line
    small = tmp_path / "small.py"
    small.write_text('PARAMS = {"n": 1, "x": 0.5}\n\n\ndef on_bar(ctx, bar):\n    pass\n')
    for param, error in (("n=123456789012345678901234567890", "parameter 'n': "
                          "123,456,789,012,345,678,901,234,567,890; a parameter is"),
                         ("x=1e999", "parameter 'x': inf, not a finite number")):
        proc = subprocess.run([sys.executable, "-m", "sandtrade.cli", "backtest", str(small),
                               "--data", "DEMO", "--param", param],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1 and error in proc.stderr, (param, proc.stderr)


# ------------------------------------------------------------------ log flood

FLOOD = '''\
def on_bar(ctx, bar):
    print("bar", bar.time)
    for i in range(5000):
        print("\\x1b" * 50, i)
'''


def test_log_flood_is_cut_and_counted_never_a_protocol_kill(host: Host, tmp_path: Path) -> None:
    """5,000 lines a bar, each 50 escapes (300 bytes once JSON-escaped): the worker keeps
    what the rate and the event's cap allow and counts the rest; the host notes the count at
    most every 10 s and the strategy keeps running (before: "the sandbox worker broke the
    protocol: frame too large")."""
    assert host.upload(tmp_path, "flood", FLOOD).returncode == 0
    started = time.monotonic()
    notes = wait_for(lambda: [e for e in log_entries(host, "flood")
                              if e.origin == spb.LOG_ORIGIN_HOST
                              and e.line.startswith("log flood: ")], "log flood note")
    assert re.fullmatch(r"log flood: [\d,]+ lines dropped \(quota 200 lines/s\)",
                        notes[0].line), notes[0].line
    # let it flood a while longer: one note in 10 s, however many events dropped lines
    wait_for(lambda: sum(e.line.startswith("bar ") for e in log_entries(host, "flood")) >= 4,
             "more flooded bars")
    elapsed = time.monotonic() - started
    st = status(host, "flood")
    assert st.strategy.state == spb.STRATEGY_STATE_RUNNING, st
    assert st.restarts == 0 and not st.kill_reason and not st.last_errors, st
    entries = log_entries(host, "flood")
    flood_notes = [e for e in entries if e.line.startswith("log flood: ")]
    if elapsed < 10:
        assert len(flood_notes) == 1, flood_notes
    kept = [e for e in entries if e.origin == spb.LOG_ORIGIN_STRATEGY]
    # a burst of 5 s (1,000 lines), then 200 a second
    assert len(kept) <= 1000 + 200 * (elapsed + 1), len(kept)

    stop = host.cli("strategies", "stop", "flood")
    assert stop.returncode == 0, stop.stderr
    entries = log_entries(host, "flood")
    dropped = sum(int(m[1].replace(",", "")) for e in entries
                  if (m := re.match(r"log flood: ([\d,]+) lines dropped", e.line)))
    kept = [e for e in entries if e.origin == spb.LOG_ORIGIN_STRATEGY]
    bars = sum(e.line.startswith("bar ") for e in kept)  # at most the bars it had
    assert dropped + len(kept) >= 5001 * bars, (dropped, len(kept), bars)
    assert "frame too large" not in " ".join(e.line for e in entries)
    assert status(host, "flood").strategy.state == spb.STRATEGY_STATE_STOPPED
