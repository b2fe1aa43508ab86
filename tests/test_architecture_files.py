"""The shape of the source files: a long file says why it is one file.

A module over :data:`MAX_LINES` lines is usually several things sharing a name. When it is not,
its module docstring says so, with a sentence containing "one file because" and the reason, so
a reader knows the length was chosen. The generated stubs (``src/sandtrade/v1``) are exempt.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: Where the project's own Python lives (tests included).
CHECKED = ("src", "plugins", "bench", "tests")
#: Generated code, never edited by hand.
GENERATED = (ROOT / "src" / "sandtrade" / "v1",)
MAX_LINES = 600
PHRASE = "one file because"

# Being split right now (issue 16, step 10: broker/paper.py into mixins, signals/pipeline.py
# into commands, journal, duplicates and lanes, on other branches). Remove each line once its
# split is merged; the test fails while a listed file no longer needs it.
BEING_SPLIT = {
}


def python_files() -> Iterator[Path]:
    for top in CHECKED:
        for path in sorted((ROOT / top).rglob("*.py")):
            if not any(path.is_relative_to(g) for g in GENERATED):
                yield path


def line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def says_why(path: Path) -> bool:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    return PHRASE in " ".join(doc.lower().split())


def test_long_files_say_why_they_are_one_file() -> None:
    long = {p.relative_to(ROOT).as_posix(): line_count(p) for p in python_files()
            if line_count(p) > MAX_LINES}
    unexplained = [f"{name} ({lines} lines)" for name, lines in sorted(long.items())
                   if name not in BEING_SPLIT and not says_why(ROOT / name)]
    assert not unexplained, (
        f"over {MAX_LINES} lines with no reason given: {', '.join(unexplained)}. Split the "
        f"module, or say in its module docstring why it is one file (\"It is {PHRASE} ...\").")
    stale = sorted(name for name in BEING_SPLIT
                   if name not in long or says_why(ROOT / name))
    assert not stale, f"no longer needs its exemption, remove it from BEING_SPLIT: {stale}"
