"""``sandtrade new TEMPLATE FILE.py``: a documented starting strategy, with typed parameters.

The templates are files in ``sandtrade/cli/templates``: each passes ``sandtrade check`` and a
test back-tests it. ``NAME`` in a template's text becomes the new file's name.
"""

from __future__ import annotations

import argparse
from importlib.resources import files
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from sandtrade.errors import SandtradeError

__all__ = ["TEMPLATES", "add_new_command", "run_new", "template_text"]

#: Each template's name and what it is.
TEMPLATES = {
    "ma_cross": "moving-average cross (SMA or EMA), long and short",
    "rsi_reversion": "RSI mean reversion with a stop loss, long only",
    "breakout": "Donchian channel breakout sized by ATR risk, long only",
    "bracket_trend": "trend follower buying pullbacks with bracket orders (take profit, stop)",
    "tradingview_signal": "trades TradingView alerts (on_signal), with optional exits",
}


def template_text(name: str) -> str:
    """The text of the template ``name`` (``SandtradeError`` naming the templates if none)."""
    if name not in TEMPLATES:
        raise SandtradeError(f"no template {name!r}; the templates are: "
                             f"{', '.join(TEMPLATES)}")
    return (files("sandtrade.cli") / "templates" / f"{name}.py").read_text(encoding="utf-8")


def add_new_command(sub: Any) -> None:
    """Register ``sandtrade new``."""
    listing = "; ".join(f"{k}: {v}" for k, v in TEMPLATES.items())
    p = sub.add_parser("new", help="write a new strategy file from a template",
                       description=f"Write FILE.py from TEMPLATE. Templates: {listing}.")
    p.add_argument("template", metavar="TEMPLATE", choices=list(TEMPLATES),
                   help=", ".join(TEMPLATES))
    p.add_argument("path", metavar="FILE.py", help="the file to write (not overwritten)")
    p.add_argument("--force", action="store_true", help="overwrite FILE.py if it exists")


def run_new(args: argparse.Namespace, out: Console) -> int:
    """Write the file; returns the exit status."""
    path = Path(args.path)
    if path.suffix != ".py":
        raise SandtradeError(f"{path}: a strategy file ends in .py")
    if path.exists() and not args.force:
        raise SandtradeError(f"{path}: exists already (--force overwrites it)")
    text = template_text(args.template).replace("NAME", path.stem)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise SandtradeError(f"{path}: cannot write: {e.strerror}") from None
    out.print(Text(f"wrote {path} ({args.template}); try: sandtrade backtest {path} "
                   "--data DEMO"))
    return 0
