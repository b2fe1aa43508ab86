"""The CLI's tables: ids are never cut, free text wraps at a readable width, and what users
sent is shown as data, never as markup or terminal control."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from rich.console import Console

from rpc.serve_process import ServeProcess, free_port
from sandtrade.cli.tables import Col, cell, print_table, safe, safe_lines

ORDER_COLS = (Col("id", whole=True), Col("time", drop=3), Col("symbol", whole=True),
              Col("side"), Col("type", drop=2), Col("qty", right=True),
              Col("price", right=True, drop=1), Col("status"), Col("reason", wrap=True))
REASON = ("no more prices for DEMO: the replay ended at 2024-08-01 00:00 and the order cannot "
          "fill")


def render(width: int, cols: tuple[Col, ...], rows: list[tuple[str, ...]]) -> str:
    buf = io.StringIO()
    print_table(Console(file=buf, width=width, color_system=None), cols, rows)
    return buf.getvalue()


def order_row(n: int) -> tuple[str, ...]:
    return (f"o_0192a7b3c9d1{n:02d}e4f50a1b", "2026-12-07 04:00", "BTCUSD", "buy", "limit", "0.5",
            "65000", "rejected", REASON)


@pytest.mark.parametrize("width", [40, 60, 80, 120, 200])
def test_ids_are_never_cut_at_any_width(width: int) -> None:
    rows = [order_row(n) for n in range(3)]
    text = render(width, ORDER_COLS, rows)
    for row in rows:
        assert row[0] in text, f"id {row[0]} cut at {width} columns:\n{text}"
    assert "…" not in text


def test_free_text_wraps_at_a_readable_width_not_a_word_a_line() -> None:
    text = render(80, ORDER_COLS, [order_row(1)])
    reason_lines = [line.strip() for line in text.splitlines()[1:] if line.strip()]
    assert all(len(line.split()) >= 3 for line in reason_lines[1:-1]), text


def test_columns_that_do_not_fit_are_left_out_and_named() -> None:
    text = render(80, ORDER_COLS, [order_row(1)])
    assert "not shown at this width: " in text and "--json has every field" in text
    wide = render(200, ORDER_COLS, [order_row(1)])
    assert "not shown" not in wide and "2026-12-07 04:00" in wide


def test_markup_and_control_characters_are_shown_as_data() -> None:
    hostile = "[bold red]pwned[/bold red] \x1b[2J\x1b[31mred\rover\x07"
    text = render(200, (Col("id", whole=True), Col("reason", wrap=True)), [("o_1", hostile)])
    assert "[bold red]pwned[/bold red]" in text
    assert "\\x1b[2J\\x1b[31mred\\rover\\x07" in text
    assert "\x1b" not in text and "\r" not in text and "\x07" not in text
    assert safe("newline\nbidi\u202eover") == "newline\\nbidi\\u202eover"
    assert cell("[b]x[/b]").plain == "[b]x[/b]"


def test_a_title_from_a_user_is_data_too() -> None:
    buf = io.StringIO()
    print_table(Console(file=buf, width=80, color_system=None), (Col("a"),), [("1" * 60,)],
                title="positions of [blink]eve\x1b[0m")
    assert "positions of [blink]eve\\x1b[0m" in buf.getvalue()


# ------------------------------------------------------------------ through the real CLI

def sandtrade(data_dir: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": str(columns)}
    return subprocess.run([sys.executable, "-m", "sandtrade.cli", *args, "--data-dir",
                           str(data_dir)], capture_output=True, text=True, timeout=120, env=env)


def test_token_ids_are_whole_in_an_80_column_table(tmp_path: Path) -> None:
    for label in ("a label long enough to need wrapping in a narrow terminal, surely", "ci"):
        proc = sandtrade(tmp_path, "tokens", "create", "--account", "alice-with-a-long-name",
                         "--scope", "read,trade,signal", "--label", label)
        assert proc.returncode == 0, proc.stderr
    listed = json.loads(sandtrade(tmp_path, "tokens", "list", "--json").stdout)
    table = sandtrade(tmp_path, "tokens", "list").stdout
    assert len(listed) == 2
    for token in listed:
        assert token["id"] in table, table
        assert token["account"] in table, table


@pytest.fixture
def host(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    grpc_addr = f"127.0.0.1:{free_port()}"
    serve = ServeProcess(tmp_path, ["--grpc", grpc_addr, "--http", f"127.0.0.1:{free_port()}"])
    serve.start()
    try:
        yield tmp_path, grpc_addr
    finally:
        serve.stop()


def test_order_ids_are_whole_in_an_80_column_table(host: tuple[Path, str]) -> None:
    data_dir, grpc_addr = host
    for args in (["buy", "DEMO", "1"], ["sell", "DEMO", "2", "--limit", "60"],
                 ["buy", "DEMO", "3", "--limit", "40"]):
        proc = sandtrade(data_dir, *args, "--grpc", grpc_addr)
        assert proc.returncode == 0, proc.stderr
    orders = json.loads(sandtrade(data_dir, "orders", "--json", "--grpc", grpc_addr).stdout)
    table = sandtrade(data_dir, "orders", "--grpc", grpc_addr).stdout
    assert len(orders) == 3
    for order in orders:
        assert order["id"] in table, table
    assert max(len(line) for line in table.splitlines()) <= 80, table


def test_text_that_is_lines_keeps_its_lines_and_each_is_data() -> None:
    """An alert's body is one command per line: shown as lines, each one literal."""
    body = "buy 10 DEMO\nsell 5 ACME\x1b[2J\r\n[bold]x"
    assert safe_lines(body).split("\n") == ["buy 10 DEMO", "sell 5 ACME\\x1b[2J\\r", "[bold]x"]


def test_check_shows_a_files_params_and_errors_as_data(tmp_path: Path) -> None:
    """PARAMS and the words of an error come from the strategy file: rich markup in them
    crashed `sandtrade check` (MarkupError), a newline forged an output line."""
    path = tmp_path / "s.py"
    path.write_text('PARAMS = {"[bold]k": "[/red]\\x1b[2J\\nforged: ok"}\n\n'
                    "def on_bar(ctx, bar):\n    pass\n")
    proc = subprocess.run([sys.executable, "-m", "sandtrade.cli", "check", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("\n") == 1, proc.stdout
    assert "[bold]k='[/red]\\x1b[2J\\nforged: ok'" in proc.stdout and "\x1b" not in proc.stdout
    bad = tmp_path / "bad.py"
    bad.write_text('import os  # \x1b[2J\n')
    proc = subprocess.run([sys.executable, "-m", "sandtrade.cli", "check", str(bad)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "import of 'os' is not allowed" in proc.stderr
    assert "\x1b" not in proc.stderr
