"""Persistence: the :class:`Store` interface, its SQLite implementation and :func:`open_store`.

Everything outside this package talks to storage through :class:`Store` and gets one from
:func:`open_store`, so that another backend can be added behind the same face.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from sandtrade.errors import StoreError
from sandtrade.store.base import JournalEntry, JsonText, RunRecord, Store, SweepRecord
from sandtrade.store.sqlite import MEMORY, SQLiteStore

__all__ = ["JournalEntry", "JsonText", "RunRecord", "SQLiteStore", "Store", "SweepRecord",
           "open_store"]

_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?P<rest>.*)$", re.DOTALL)


def open_store(url_or_path: str | os.PathLike[str]) -> Store:
    """Open (creating if needed) the store at a file path or a ``sqlite:///path`` URL.

    As in SQLAlchemy, ``sqlite:///data/st.db`` is relative to the working directory,
    ``sqlite:////srv/st.db`` is absolute, and ``sqlite://`` or ``":memory:"`` is a private
    in-memory store. Missing parent directories of the file are created.
    """
    target = os.fspath(url_or_path)
    match = _SCHEME.match(target)
    if match:
        scheme, rest = match["scheme"].lower(), match["rest"]
        if scheme != "sqlite":
            raise StoreError(
                f"cannot open store {target!r}: the {scheme!r} scheme is not supported; only "
                "sqlite is available now (use a file path or sqlite:///path/to/file.db)"
            )
        if rest and not rest.startswith("/"):
            raise StoreError(
                f"cannot open store {target!r}: a sqlite URL has no host; write "
                "sqlite:///relative/path.db or sqlite:////absolute/path.db"
            )
        if "?" in rest:
            raise StoreError(
                f"cannot open store {target!r}: sqlite URL query parameters are not supported"
            )
        target = rest[1:] or MEMORY
    if not target:
        raise StoreError("cannot open store '': give a file path or a sqlite:/// URL")
    if target == MEMORY:
        return SQLiteStore(MEMORY)
    path = Path(target).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StoreError(
            f"cannot open store {target!r}: could not create directory {path.parent}: {e}"
        ) from e
    return SQLiteStore(path)
