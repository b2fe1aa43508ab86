"""Tables for the command line: ids whole, free text wrapped, user data shown as data.

Every table the CLI prints about orders, tokens, signals and strategies goes through
:func:`print_table`, which keeps three promises:

- **An id is never cut.** The ids that ``cancel``, ``revoke`` and ``show`` take are copied from
  these tables; a column marked ``whole`` keeps its full width. When the terminal is too
  narrow, the columns with the highest ``drop`` rank are left out first (a line under the table
  says which, and that ``--json`` has everything); free text (``wrap``) wraps at a readable
  width instead of one word per line; if even that cannot fit, the table is printed wider than
  the terminal rather than cut.
- **Cells are data, never markup.** A strategy's name, an order's reason, a token's label or a
  signal's source come from users: :func:`cell` shows ``[bold]`` as those six characters and
  a control character (an ANSI escape, a carriage return) as its escape sequence, so nothing a
  user sent can restyle, hide or overwrite what the operator reads.
- Numbers right, words left, as everywhere else in the CLI.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table
from rich.text import Text

from sandtrade.cli.terminal import printable

__all__ = ["Col", "cell", "print_table", "safe", "safe_lines"]

#: Free text (a reason) never wraps narrower than this, unless its longest line is shorter.
WRAP_MIN = 24


def safe(value: object) -> str:
    """``value`` as a string whose non-printable characters (controls, bidirectional
    overrides, surrogates: see :func:`sandtrade.cli.terminal.printable`) are spelled out."""
    return printable("" if value is None else str(value))


def safe_lines(value: object) -> str:
    """Like :func:`safe`, keeping line breaks: for text that is lines (an alert's body, an
    explanation), whose every line is then shown as data."""
    return "\n".join(safe(line) for line in ("" if value is None else str(value)).split("\n"))


def cell(value: object, style: str = "") -> Text:
    """A table cell showing ``value`` literally: no markup, no control characters."""
    return Text(safe(value), style=style)


@dataclass(frozen=True)
class Col:
    """A column: its header, and how it behaves when the terminal is narrow.

    :param whole: never cut nor wrapped (ids, the values other commands take).
    :param wrap: free text that wraps (at :data:`WRAP_MIN` characters at least).
    :param drop: left out when the table does not fit, highest first; 0 never.
    :param right: right-justified (numbers).
    """

    name: str
    whole: bool = False
    wrap: bool = False
    drop: int = 0
    right: bool = False


def _widths(cols: Sequence[Col], rows: Sequence[Sequence[Text]]) -> list[int]:
    """Each column's narrowest acceptable width: all of it, or :data:`WRAP_MIN` for text."""
    out = []
    for k, col in enumerate(cols):
        natural = max([len(col.name), *(r[k].cell_len for r in rows)])
        out.append(min(natural, WRAP_MIN) if col.wrap else natural)
    return out


def _build(cols: Sequence[Col], rows: Sequence[Sequence[Text]], widths: Sequence[int],
           keep: Sequence[int], title: str | None) -> Table:
    table = Table(box=None, title=None if title is None else cell(title), title_justify="left")
    for k in keep:
        col = cols[k]
        if col.wrap:
            table.add_column(col.name, min_width=widths[k], ratio=1, overflow="fold")
        else:
            table.add_column(col.name, min_width=widths[k], no_wrap=True,
                             justify="right" if col.right else "left")
    for r in rows:
        table.add_row(*(r[k] for k in keep))
    return table


def print_table(out: Console, cols: Sequence[Col], rows: Iterable[Sequence[Text | str]], *,
                title: str | None = None) -> None:
    """Print ``rows`` under ``cols`` on ``out``, keeping the promises of this module.

    Plain strings in ``rows`` are shown literally, as :func:`cell` shows them.
    """
    texts = [[c if isinstance(c, Text) else cell(c) for c in r] for r in rows]
    widths = _widths(cols, texts)
    keep = list(range(len(cols)))

    def needed() -> int:  # box=None pads every column by one space on each side
        return sum(widths[k] + 2 for k in keep)

    while needed() > out.width and any(cols[k].drop for k in keep):
        keep.remove(max((k for k in keep if cols[k].drop), key=lambda k: cols[k].drop))
    table = _build(cols, texts, widths, keep, title)
    if needed() <= out.width:
        out.print(table)
    else:  # wider than the terminal (which wraps the lines) rather than an id cut
        width = out.width
        out.width = needed()
        try:
            out.print(table)
        finally:
            out.width = width
    hidden = [c.name for k, c in enumerate(cols) if k not in keep]
    if hidden:
        out.print(f"(not shown at this width: {', '.join(hidden)}; --json has every field)",
                  style="dim", markup=False, highlight=False)
