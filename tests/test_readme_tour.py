"""Every shell command of README.md, run as written, in order, in a fresh directory.

A newcomer copies the README's commands into a terminal one after the other; so does this test.
Each ```bash block of README.md runs, in file order, in one bash session (variables such as
``TOKEN`` carry over, ``sandtrade serve &`` keeps running until the end) with ``set -e``: the
first command that exits non-zero fails the test, and the failure names its README line.

What the test changes, and why:
- it runs in an empty temporary directory holding only a link to ``strategies_examples/``, as a
  fresh clone would have it, so the host's data directory is new;
- the default ports (127.0.0.1:8000 and :50051) become free ones, so a host left running on
  this machine cannot answer in the tour's place;
- a block right after a ``<!-- tour: skip: REASON -->`` line does not run: the set-up commands
  (CI runs them, see ``.ci/run``) and commands that need what a test machine has not (a
  certificate, ``grpcurl``); the reason is printed in the skip list below.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from rpc.serve_process import free_port

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
SKIP = re.compile(r"<!--\s*tour:\s*skip:\s*(?P<why>.+?)\s*-->")

pytestmark = pytest.mark.slow


@dataclass
class Block:
    """One ```bash block: the README line of its first command and its text."""

    line: int
    text: str
    skip: str | None


def bash_blocks(markdown: str) -> list[Block]:
    """The ```bash blocks of ``markdown``, each with its skip reason, if any."""
    blocks: list[Block] = []
    lines = markdown.splitlines()
    k = 0
    while k < len(lines):
        if lines[k].strip() == "```bash":
            previous = next((ln for ln in reversed(lines[:k]) if ln.strip()), "")
            skip = SKIP.search(previous)
            end = lines.index("```", k + 1)
            blocks.append(Block(k + 2, "\n".join(lines[k + 1:end]),
                                skip.group("why") if skip else None))
            k = end
        k += 1
    return blocks


def commands(block: Block) -> list[tuple[int, str]]:
    """The block's commands with their README line (continuation lines joined)."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = block.line
    for k, line in enumerate(block.text.splitlines()):
        if not pending:
            start = block.line + k
        pending.append(line)
        if line.rstrip().endswith("\\"):
            continue
        command = "\n".join(pending)
        pending = []
        if command.strip() and not command.lstrip().startswith("#"):
            out.append((start, command))
    return out


def tour_script(blocks: list[Block], ports: dict[str, str]) -> str:
    """One bash script running every command, announcing each with its README line."""
    parts = ["set -euo pipefail",
             "cleanup() { kill $(jobs -p) 2>/dev/null || true; wait || true; }",
             "trap cleanup EXIT"]
    for block in blocks:
        if block.skip:
            continue
        for line, command in commands(block):
            for default, free in ports.items():
                command = command.replace(default, free)
            parts.append(f"echo {quote(f'>>> README.md:{line}: {command}')} >&2")
            parts.append(command)
    return "\n".join(parts) + "\n"


def quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def test_the_readme_has_a_tour_to_run() -> None:
    blocks = bash_blocks(README.read_text())
    run = [b for b in blocks if not b.skip]
    assert len(run) >= 4 and sum(len(commands(b)) for b in run) >= 20, (
        "the tour's commands are found (not a vacuous test)")
    for block in blocks:
        if block.skip:
            print(f"README.md:{block.line}: not run: {block.skip}")


def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "strategies_examples").symlink_to(ROOT / "strategies_examples")
    http, grpc = free_port(), free_port()
    ports = {"127.0.0.1:8000": f"127.0.0.1:{http}", "127.0.0.1:50051": f"127.0.0.1:{grpc}"}
    script = tour_script(bash_blocks(README.read_text()), ports)
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
           "SANDTRADE_HTTP": f"127.0.0.1:{http}", "SANDTRADE_GRPC": f"127.0.0.1:{grpc}",
           "COLUMNS": "100"}
    env.pop("SANDTRADE_DATA_DIR", None)
    assert shutil.which("sandtrade", path=env["PATH"]), "the console script is installed"
    proc = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    announced = [ln for ln in proc.stderr.splitlines() if ln.startswith(">>> README.md:")]
    assert proc.returncode == 0, (
        f"{announced[-1] if announced else 'before the first command'} exited "
        f"{proc.returncode}\n--- stdout (end)\n{proc.stdout[-3000:]}\n--- stderr (end)\n"
        f"{proc.stderr[-3000:]}")
    expected = sum(len(commands(b)) for b in bash_blocks(README.read_text()) if not b.skip)
    assert len(announced) == expected, "every command ran"
