"""Pine Script strategies imported as sandtrade strategies (``sandtrade pine import``).

:func:`import_pine` turns a Pine v5/v6 strategy into a strategy file that runs in the sandbox
like any other, with Pine's semantics from ``ctx.pine`` (:mod:`sandtrade.strategy.pine`);
see ``docs/pine.md`` for the subset it takes and what it refuses.

The parser (lark, and its tables) is built on first use: the CLI and the host import this
package to recognise a ``.pine`` path, and most of their runs never read one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sandtrade.pine.transpile import PineImport, PineImportError, import_pine

__all__ = ["PineImport", "PineImportError", "import_pine", "is_pine"]


def is_pine(path: str) -> bool:
    """True for a file the importer reads (``.pine``)."""
    return str(path).lower().endswith(".pine")


def __getattr__(name: str) -> Any:
    if name in ("PineImport", "PineImportError", "import_pine"):
        from sandtrade.pine import transpile
        return getattr(transpile, name)
    raise AttributeError(f"module 'sandtrade.pine' has no attribute {name!r}")
