"""The shell of a self-contained page: its CSS, colours, Content-Security-Policy, escaping and
the way values are written.

Every HTML page sandtrade writes (the back-test report, the signal timeline) opens offline and
makes no network request: the CSS is inline and uses system fonts, and :data:`PAGE_CSP` forbids
every fetch. Text that users wrote (strategy names, symbols, tags, log lines) goes through
:func:`esc` before it reaches the page, or :func:`esc_chart` inside a plotly figure.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

__all__ = [
    "AMBER",
    "BLUE",
    "FONT_STACK",
    "GREEN",
    "PAGE_CSP",
    "PAGE_CSS",
    "RED",
    "esc",
    "esc_chart",
    "format_duration",
    "format_float",
    "format_price",
    "format_setting",
    "format_size",
    "format_value",
    "headline_text",
    "sign_class",
]

#: The colours of good and bad news, a warning, and a neutral line, and the page's fonts.
GREEN = "#1b873f"
RED = "#c62828"
AMBER = "#e08a00"
BLUE = "#1f5fbf"
FONT_STACK = (
    'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
    '"Noto Sans", "Liberation Sans", sans-serif'
)

# No fetches of any kind: scripts and styles only inline, images only data:/blob: (plotly's
# "download as PNG" button). plotly.js needs eval for some of its code paths.
PAGE_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data: blob:; font-src data:; connect-src 'none'; "
    "base-uri 'none'; form-action 'none'"
)

#: The stylesheet of every page, inline (the CSP allows no other).
PAGE_CSS = (
    f":root {{ color-scheme: light; --green: {GREEN}; --red: {RED}; --amber: {AMBER}; "
    f"--font: {FONT_STACK}; }}"
) + """
* { box-sizing: border-box; }
body { margin: 0; background: #f5f6f8; color: #1d2330; font: 14px/1.45 var(--font); }
main { max-width: 1360px; margin: 0 auto; padding: 20px 24px 40px; }
h1 { font-size: 24px; margin: 0 0 4px; word-break: break-word; }
h2 { font-size: 17px; margin: 28px 0 10px; }
.card { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 14px 18px; }
.meta { color: #4a5568; margin: 0 0 10px; }
.meta b { color: #1d2330; font-weight: 600; }
.kv { display: flex; flex-wrap: wrap; gap: 4px 6px; margin: 4px 0; align-items: baseline; }
.kv .label { color: #4a5568; min-width: 72px; font-weight: 600; }
.chip { background: #eef1f5; border-radius: 4px; padding: 1px 7px; font-size: 13px;
        font-variant-numeric: tabular-nums; word-break: break-all; }
.headline { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 14px; }
.headline div { background: #f7f8fa; border: 1px solid #e3e6eb; border-radius: 6px;
                padding: 6px 12px; min-width: 130px; }
.headline .name { display: block; color: #4a5568; font-size: 12px; }
.headline .value { font-size: 19px; font-weight: 600; font-variant-numeric: tabular-nums; }
.pos { color: var(--green); }
.neg { color: var(--red); }
.warnings { background: #fff4e5; border: 1px solid #f0b45a; border-left: 6px solid var(--amber);
            border-radius: 6px; padding: 10px 16px; margin-top: 16px; }
.warnings h2 { margin: 0 0 6px; font-size: 16px; color: #8a4b00; }
.warnings ul { margin: 0; padding-left: 20px; }
.note { color: #4a5568; font-size: 13px; margin: 6px 0; }
.chart { margin-top: 16px; padding: 6px; }
.chart .note { margin: 6px 12px; }
.empty { color: #4a5568; padding: 24px; text-align: center; }
table { border-collapse: collapse; background: #fff; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e6e9ee; text-align: left;
         vertical-align: top; }
th { background: #eef1f5; font-weight: 600; position: sticky; top: 0; }
td.num, th.num { text-align: right; white-space: nowrap; }
.stats-grid { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
.stats { min-width: 420px; flex: 1 1 420px; border: 1px solid #dde1e7; }
.stats td:first-child { color: #4a5568; }
.trades { width: 100%; font-size: 13px; }
.trades td { white-space: nowrap; }
.trades td.tag { white-space: normal; word-break: break-word; max-width: 260px; }
.scroll { overflow-x: auto; border: 1px solid #dde1e7; border-radius: 6px; }
details { margin-top: 24px; }
pre { background: #fff; border: 1px solid #dde1e7; border-radius: 6px; padding: 10px;
      overflow-x: auto; font-size: 12px; }
footer { color: #6b7280; font-size: 12px; margin-top: 28px; }
"""


def esc(value: object) -> str:
    """HTML-escape the text of ``value`` (quotes too, so it is safe in attributes)."""
    return html.escape(str(value), quote=True)


def esc_chart(value: object) -> str:
    """Escape text that plotly renders (hover text, axis titles, legends).

    plotly understands a few tags there, so ``<`` and ``&`` must be escaped; it decodes
    ``&lt;``, ``&gt;`` and ``&amp;`` but would show ``&quot;`` literally, and a quote cannot
    start anything once ``<`` is escaped.
    """
    return html.escape(str(value), quote=False)


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, numbers.Real) and math.isnan(float(value)))


def format_float(value: float, decimals: int = 2) -> str:
    """``1234.5`` as ``1,234.50``; infinities as ``∞``; never ``-0.00``."""
    if math.isinf(value):
        return "∞" if value > 0 else "-∞"
    text = f"{value:,.{decimals}f}"
    if text.lstrip("-").strip("0.,") == "":
        text = text.lstrip("-")
    return text


def format_value(value: Any) -> str:
    """Plain text for a stat, parameter or setting of any JSON-ish type (not yet escaped).

    Floats get two decimals and thousands separators, ints thousands separators, missing values
    (None, NaN) ``n/a``; strings such as pandas durations are shown as they are.
    """
    if _is_missing(value):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return format_float(float(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        text = "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    elif isinstance(value, Iterable):
        text = "[" + ", ".join(format_value(v) for v in value) + "]"
    else:
        text = str(value)
    return text if len(text) <= 200 else text[:199] + "…"


def format_setting(value: Any) -> str:
    """A parameter or setting: like :func:`format_value`, but floats keep their precision.

    A commission of 0.001 must not read as 0.00.
    """
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:,.10g}"
    return format_value(value)


def format_price(value: float | None) -> str:
    """A price with two decimals, or enough significant digits when it is below one."""
    if value is None or not math.isfinite(value):
        return "n/a"
    if value == 0 or abs(value) >= 1:
        return format_float(value)
    decimals = min(10, 3 - math.floor(math.log10(abs(value))))
    return format_float(value, decimals)


def format_size(value: float) -> str:
    """A quantity: whole numbers without decimals, fractions with up to 8 (crypto lots)."""
    size = abs(value)
    if size == round(size):
        return f"{round(size):,}"
    return f"{size:,.8f}".rstrip("0").rstrip(".")


def format_duration(delta: timedelta) -> str:
    """``3 days 04:30``, ``5 days`` or ``00:15``."""
    seconds = int(delta.total_seconds())
    sign, seconds = ("-", -seconds) if seconds < 0 else ("", seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days and not (hours or minutes):
        return f"{sign}{days} day{'s' if days != 1 else ''}"
    clock = f"{hours:02d}:{minutes:02d}"
    return f"{sign}{days} day{'s' if days != 1 else ''} {clock}" if days else f"{sign}{clock}"


def headline_text(key: str, value: Any) -> str:
    """A headline number with its unit: ``12.34 %``, ``$10,523.10``, ``0.87``."""
    text = format_value(value)
    if text == "n/a":
        return text
    if key.endswith("[%]"):
        return f"{text} %"
    if key.endswith("[$]"):
        return f"-${text[1:]}" if text.startswith("-") else f"${text}"
    return text


def sign_class(value: Any) -> str:
    """The CSS class of a number's sign: ``pos``, ``neg``, or none for zero and non-numbers."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool) and not _is_missing(value):
        number = float(value)
        if number > 0:
            return "pos"
        if number < 0:
            return "neg"
    return ""
