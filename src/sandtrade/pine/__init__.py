"""Pine Script strategies imported as sandtrade strategies (``sandtrade pine import``).

:func:`import_pine` turns a Pine v5/v6 strategy into a strategy file that runs in the sandbox
like any other, with Pine's semantics from ``ctx.pine`` (:mod:`sandtrade.strategy.pine`);
see ``docs/pine.md`` for the subset it takes and what it refuses.
"""

from sandtrade.pine.transpile import PineImport, PineImportError, import_pine

__all__ = ["PineImport", "PineImportError", "import_pine", "is_pine"]


def is_pine(path: str) -> bool:
    """True for a file the importer reads (``.pine``)."""
    return path.lower().endswith(".pine")
