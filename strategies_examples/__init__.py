"""Example strategies a user can copy; each one is run by a test.

They ship inside the wheel as the package ``strategies_examples``, so ``sandtrade demo``
finds them after any install. Strategy files are never imported: :func:`example_path` gives
their location and the strategy loader runs them like any user's file.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["EXAMPLES", "example_path"]

EXAMPLES = ("sma_cross", "rsi_mean_reversion", "breakout", "iron_condor", "numpy_sma_cross")


def example_path(name: str) -> Path:
    """Path of the example strategy ``name`` (e.g. ``"sma_cross"``)."""
    if name not in EXAMPLES:
        raise ValueError(f"unknown example {name!r} (examples: {', '.join(EXAMPLES)})")
    return Path(str(files(__name__) / f"{name}.py"))
