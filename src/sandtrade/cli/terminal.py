"""Text from outside (a strategy's log, a worker's message) shown on a terminal as data.

rich reads ``[...]`` as markup unless told otherwise (print a :class:`rich.text.Text`, or
escape it), and a terminal acts on control characters: an ANSI escape sequence can recolour,
move the cursor, rewrite the title or clear the screen; a carriage return or a newline can
forge an output line; a bidirectional override can reorder what is read. :func:`printable`
leaves ordinary text alone and shows each such character as its Python escape instead.
"""

from __future__ import annotations

__all__ = ["printable"]


def printable(text: str) -> str:
    """``text`` with every character Python calls non-printable (controls, ANSI escapes'
    ESC, format characters such as bidirectional overrides, line and paragraph separators,
    surrogates, unassigned code points; not the space) written as its escape: ``\\x1b``,
    ``\\n``, ``\\u202e``."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in text)
