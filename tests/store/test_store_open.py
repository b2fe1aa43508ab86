"""open_store: file paths and sqlite URLs open a store; other schemes are named and refused."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sandtrade.errors import StoreError
from sandtrade.models import Account
from sandtrade.store import SQLiteStore, Store, open_store


def _opens_at(url_or_path: str | Path, expected_file: Path) -> None:
    store = open_store(url_or_path)
    try:
        assert isinstance(store, SQLiteStore) and isinstance(store, Store)
        store.create_account(Account(id="acct", cash=1.0, initial_cash=1.0))
    finally:
        store.close()
    assert expected_file.is_file()


def test_a_file_path_opens_a_sqlite_store(tmp_path: Path) -> None:
    _opens_at(tmp_path / "st.db", tmp_path / "st.db")
    _opens_at(str(tmp_path / "st2.db"), tmp_path / "st2.db")


def test_missing_parent_directories_are_created(tmp_path: Path) -> None:
    _opens_at(tmp_path / "a" / "b" / "st.db", tmp_path / "a" / "b" / "st.db")


def test_a_sqlite_url_with_four_slashes_is_absolute(tmp_path: Path) -> None:
    _opens_at(f"sqlite:///{tmp_path}/data/st.db", tmp_path / "data" / "st.db")


def test_a_sqlite_url_with_three_slashes_is_relative(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _opens_at("sqlite:///data/st.db", tmp_path / "data" / "st.db")


@pytest.mark.parametrize("target", [":memory:", "sqlite://", "sqlite:///:memory:"])
def test_memory_forms_open_a_private_in_memory_store(target: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = open_store(target)
    try:
        store.create_account(Account(id="acct", cash=1.0, initial_cash=1.0))
        assert [a.id for a in store.list_accounts()] == ["acct"]
    finally:
        store.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("url", ["postgresql://user@db.example/sandtrade",
                                 "postgres://db/st", "mysql+pymysql://db/st"])
def test_other_schemes_are_refused_naming_the_scheme(url: str) -> None:
    scheme = re.escape(url.split("://")[0])
    with pytest.raises(StoreError, match=rf"the '{scheme}' scheme is not supported; only sqlite "
                                         r"is available now"):
        open_store(url)


def test_a_sqlite_url_with_a_host_is_refused() -> None:
    with pytest.raises(StoreError, match="a sqlite URL has no host"):
        open_store("sqlite://dbhost/st.db")


def test_a_directory_that_cannot_be_created_is_named(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError, match=r"could not create directory .*file"):
        open_store(tmp_path / "file" / "st.db")
