"""Fixtures of the store room: a fresh SQLite store in a real file per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandtrade.store import SQLiteStore


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's database file lives (not created yet)."""
    return tmp_path / "sandtrade.db"


@pytest.fixture
def store(db_path: Path) -> Iterator[SQLiteStore]:
    """A new store in a real file, closed after the test."""
    with SQLiteStore(db_path) as s:
        yield s
