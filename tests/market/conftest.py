"""Fixtures for the market-data tests: CSV files written on the fly, and backtesting.py's data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[..., Path]:
    """Write ``text`` to ``tmp_path/name`` exactly as given (no newline translation)."""

    def write(text: str, name: str = "TEST.csv", encoding: str = "utf-8") -> Path:
        path = tmp_path / name
        path.write_bytes(text.encode(encoding))
        return path

    return write


@pytest.fixture(scope="session")
def backtesting_data() -> Path:
    """The folder of backtesting.py's sample CSV files, read in place from site-packages."""
    backtesting = pytest.importorskip("backtesting")
    return Path(backtesting.__file__).parent / "test"
