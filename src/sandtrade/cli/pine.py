"""``sandtrade pine import``: a Pine Script strategy as a sandtrade strategy file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from sandtrade.cli.tables import safe
from sandtrade.errors import StrategyError

if TYPE_CHECKING:
    from sandtrade.pine import PineImport

__all__ = ["add_pine_command", "pine_message", "read_pine", "run_pine"]


def add_pine_command(sub: Any) -> None:
    """Add ``pine`` and its actions to the CLI's subparsers."""
    pp = sub.add_parser("pine", help="import TradingView Pine Script strategies",
                        description="Turn Pine Script v5/v6 strategies into sandtrade strategy "
                        "files (see docs/pine.md for what is supported).")
    psub = pp.add_subparsers(dest="pine_command", required=True, metavar="ACTION")
    im = psub.add_parser("import", help="write a Pine strategy as a strategy .py file",
                         description="Translate STRATEGY.pine; each Pine line becomes a comment "
                         "beside what it became. Anything outside the supported subset is "
                         "refused with file:line:col.")
    im.add_argument("pine", metavar="STRATEGY.pine")
    im.add_argument("-o", "--output", metavar="FILE.py",
                    help="where to write it (default: beside the .pine file, as .py; - for "
                    "standard output)")
    im.add_argument("--force", action="store_true", help="overwrite FILE.py if it exists")


def read_pine(path: str) -> PineImport:
    """Read and translate the Pine strategy at ``path`` (StrategyError when it cannot)."""
    from sandtrade.pine import import_pine  # the parser loads on first use

    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise StrategyError(f"{path}: no such Pine file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise StrategyError(f"{path}: cannot read the Pine file: {e}") from None
    return import_pine(text, path)


def run_pine(args: argparse.Namespace, out: Console, err: Console) -> int:
    """Run ``sandtrade pine ACTION``."""
    imported = read_pine(args.pine)
    target = args.output or str(Path(args.pine).with_suffix(".py"))
    for line in imported.dropped:
        err.print(safe(f"note: {line}(…) only draws on TradingView's chart: left out"),
                  markup=False, highlight=False, soft_wrap=True)
    if target == "-":
        print(imported.source, end="")
        return 0
    dest = Path(target)
    if dest.exists() and not args.force:
        raise StrategyError(f"{target}: exists; give --force to overwrite it")
    dest.write_text(imported.source, encoding="utf-8")
    out.print(safe(f"wrote {target} ({imported.title}); back-test it with: sandtrade backtest "
                   f"{target} --data CSV {imported.backtest_flags()}"),
              markup=False, highlight=False, soft_wrap=True)
    return 0


def pine_message(path: str, message: str) -> str:
    """An error about the strategy imported from ``path``, its lines the Pine file's."""
    try:
        return read_pine(path).pine_message(message, path)
    except StrategyError:  # the file changed or went: the message as it was
        return message
