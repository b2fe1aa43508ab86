"""The HTML back-test report: one self-contained file that opens offline.

It is one file because it is one page read top to bottom: header, warnings, chart, statistics,
trades and log are each a function of the same :class:`BacktestResult`, written with the same
time format (``_Times``) and the same notion of a signed statistic; what other pages share
with it (the shell, CSS, escaping and the way values are written) is in :mod:`.page`.

The page holds a header (strategy, symbols, period, parameters, settings and the headline
numbers), any warnings, one plotly figure (price with trade markers per symbol and the series the
strategy plotted on it, a pane of its ``pane="below"`` series under it, equity, drawdown on a
shared time axis), the full stats table and the trade list.

Everything the page needs is inside the file: plotly.js is copied from the installed plotly
package, the figure is a JSON document in the page, the CSS is inline and uses system fonts.
A Content-Security-Policy forbids every network request, so a report opened from an archive, an
e-mail or an air-gapped machine looks the same and cannot phone home.

Strategy names, symbols, parameters, tags, warnings and log lines are written by users; every
string taken from the result is HTML-escaped (:func:`~.page.esc`) before it reaches the page,
including those shown inside the chart (:func:`~.page.esc_chart`: plotly renders a subset of
HTML in hover text and legends).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from sandtrade.backtest.page import (
    AMBER,
    BLUE,
    FONT_STACK,
    GREEN,
    PAGE_CSP,
    PAGE_CSS,
    RED,
    esc,
    esc_chart,
    format_duration,
    format_float,
    format_price,
    format_setting,
    format_size,
    format_value,
    headline_text,
    sign_class,
)
from sandtrade.backtest.result import BacktestResult, EquityPoint, PlotSeries
from sandtrade.models import Bar, Trade
from sandtrade.options.contracts import OptionContract
from sandtrade.options.payoff import PayoffLeg
from sandtrade.options.picture import payoff_data, payoff_figure
from sandtrade.strategy.plots import MAX_SERIES

__all__ = ["render_report", "write_report"]

#: Price rows in the figure; further symbols are listed in a note instead of charted.
MAX_PRICE_ROWS = 4
#: Above this many bars a symbol is drawn as a close line: candles that thin are unreadable
#: and slow the page down.
MAX_CANDLES = 3000
#: Trades listed in the trade table; the rest is counted in a note (all stay in the chart).
MAX_TRADE_ROWS = 500
#: Colours of plotted series that name none, in turn.
PLOT_COLORS = ("#ff9800", "#7e57c2", "#00897b", "#e91e63", "#3f51b5", "#8d6e63", "#43a047",
               "#00acc1")
#: Log lines shown (the last ones).
MAX_LOG_LINES = 200

#: The numbers shown under the title, by backtesting.py's names, in this order.
HEADLINE_STATS = (
    "Return [%]",
    "Buy & Hold Return [%]",
    "Max. Drawdown [%]",
    "Sharpe Ratio",
    "# Trades",
    "Equity Final [$]",
)

#: Stats whose sign is good or bad news, coloured green or red (an exposure or a volatility
#: is neither).
_SIGNED_STATS = frozenset({
    "Return [%]", "Buy & Hold Return [%]", "Return (Ann.) [%]", "CAGR [%]", "Alpha [%]",
    "Max. Drawdown [%]", "Avg. Drawdown [%]", "Best Trade [%]", "Worst Trade [%]",
    "Avg. Trade [%]", "Expectancy [%]",
})


# --------------------------------------------------------------------------- public API


def write_report(result: BacktestResult, path: str | Path) -> Path:
    """Write the HTML report of ``result`` to ``path`` and return the path written.

    The file is self-contained (plotly.js embedded, about 5 MB) and opens offline.
    """
    target = Path(path)
    target.write_text(render_report(result), encoding="utf-8")
    return target


def render_report(result: BacktestResult) -> str:
    """The HTML report of ``result`` as one string (what :func:`write_report` writes)."""
    times = _Times.for_result(result)
    strategy = result.strategy or "(unnamed strategy)"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{PAGE_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Back-test report: {esc(strategy)}</title>",
        f"<style>{PAGE_CSS}</style>",
        "</head>",
        "<body>",
        "<main>",
        _header_html(result, times),
        _warnings_html(result.warnings),
        _chart_html(result, times),
        # the chart loads plotly.js when it has something to draw (as _build_figure decides)
        _spreads_html(result, times,
                      plotly_loaded=bool(_charted_symbols(result)[0] or result.equity_curve)),
        _stats_html(result.stats),
        _trades_html(result, times),
        _log_html(result.logs),
        '<footer>Generated by sandtrade. This file is self-contained and makes no network '
        "requests.</footer>",
        "</main>",
        "</body>",
        "</html>",
    ]
    return "\n".join(p for p in parts if p) + "\n"




class _Times:
    """How times are written on this page: dates alone for daily data, minutes for intraday.

    Times are shown as wall-clock times in whatever zone the data came in; the zone is dropped
    for the chart because plotly.js does not understand UTC offsets on a date axis.
    """

    def __init__(self, intraday: bool) -> None:
        self.intraday = intraday

    @classmethod
    def for_result(cls, result: BacktestResult) -> _Times:
        """Intraday when any bar, trade or equity point is not at midnight."""
        def stamps() -> Iterable[datetime]:
            for bars in result.prices.values():
                yield from (b.time for b in bars)
            for t in (*result.trades, *result.open_trades):
                yield t.entry_time
                if t.exit_time is not None:
                    yield t.exit_time
            yield from (p.time for p in result.equity_curve)

        midnight = clock_time(0, 0)
        return cls(any(s.time() != midnight for s in stamps()))

    def text(self, when: datetime | None) -> str:
        """A time for a table or hover text."""
        if when is None:
            return "—"
        return when.strftime("%Y-%m-%d %H:%M" if self.intraday else "%Y-%m-%d")

    @staticmethod
    def chart(when: datetime) -> datetime:
        """A time for the chart axis."""
        return when.replace(tzinfo=None)


# --------------------------------------------------------------------------- header


def _period(result: BacktestResult) -> tuple[datetime, datetime] | None:
    """First and last bar over all symbols, else first and last equity point."""
    firsts = [bars[0].time for bars in result.prices.values() if bars]
    lasts = [bars[-1].time for bars in result.prices.values() if bars]
    if firsts:
        return min(firsts, key=_Times.chart), max(lasts, key=_Times.chart)
    if result.equity_curve:
        return result.equity_curve[0].time, result.equity_curve[-1].time
    return None


def _chips(label: str, items: Mapping[str, Any]) -> str:
    if not items:
        chips = '<span class="chip">none</span>'
    else:
        chips = "".join(
            f'<span class="chip">{esc(k)} = {esc(format_setting(v))}</span>'
            for k, v in items.items()
        )
    return f'<div class="kv"><span class="label">{esc(label)}</span>{chips}</div>'


def _header_html(result: BacktestResult, times: _Times) -> str:
    symbols = ", ".join(result.symbols) or "—"
    period = _period(result)
    if period is not None:
        span = _Times.chart(period[1]) - _Times.chart(period[0])
        span_text = format_duration(span) if times.intraday else f"{span.days:,} days"
        period_text = f"{times.text(period[0])} … {times.text(period[1])} ({span_text})"
    else:
        period_text = "—"
    meta = [
        f"<b>Symbols</b> {esc(symbols)}",
        f"<b>Period</b> {esc(period_text)}",
        f"<b>Bars</b> {result.bars:,}",
    ]
    if result.elapsed_s:
        meta.append(f"<b>Run time</b> {result.elapsed_s:,.2f} s")
    cards = []
    for key in HEADLINE_STATS:
        value = result.stats.get(key)
        if key == "# Trades" and key not in result.stats:
            value = len(result.trades)
        elif key not in result.stats:
            continue
        css = sign_class(value) if key in _SIGNED_STATS else ""
        cards.append(
            f'<div><span class="name">{esc(key)}</span>'
            f'<span class="value {css}">{esc(headline_text(key, value))}</span></div>'
        )
    return (
        '<header class="card">'
        f"<h1>{esc(result.strategy or '(unnamed strategy)')}</h1>"
        f'<p class="meta">{" &nbsp;·&nbsp; ".join(meta)}</p>'
        f"{_chips('Params', result.params)}"
        f"{_chips('Settings', result.settings)}"
        f'<div class="headline">{"".join(cards)}</div>'
        "</header>"
    )


def _warnings_html(warnings: Sequence[str]) -> str:
    if not warnings:
        return ""
    items = "".join(f"<li>{esc(w)}</li>" for w in warnings)
    title = "Warning" if len(warnings) == 1 else f"{len(warnings)} warnings"
    return f'<section class="warnings" role="alert"><h2>⚠ {title}</h2><ul>{items}</ul></section>'


# --------------------------------------------------------------------------- chart


def _charted_symbols(result: BacktestResult) -> tuple[list[str], list[str]]:
    """Symbols that get a price row (at most :data:`MAX_PRICE_ROWS`) and those left out."""
    ordered = [s for s in result.symbols if result.prices.get(s)]
    ordered += [s for s, bars in result.prices.items() if bars and s not in ordered]
    return ordered[:MAX_PRICE_ROWS], ordered[MAX_PRICE_ROWS:]


def _drawdown_percent(points: Sequence[EquityPoint]) -> list[float | None]:
    """``drawdown_pct`` as negative percent, whatever unit and sign the engine used.

    backtesting.py keeps drawdown as a positive fraction (0.12) and reports it as a negative
    percentage (-12.0); the unit is taken to be the one that agrees best with the drawdown
    recomputed from the equity values themselves, so the chart is right either way.
    """
    raw = [abs(p.drawdown_pct) if math.isfinite(p.drawdown_pct) else None for p in points]
    derived: list[float] = []
    peak = -math.inf
    for p in points:
        if math.isfinite(p.equity):
            peak = max(peak, p.equity)
        derived.append((1 - p.equity / peak) * 100 if peak > 0 and math.isfinite(p.equity) else 0)
    pairs = [(r, d) for r, d in zip(raw, derived, strict=True) if r is not None]
    error_as_percent = sum(abs(r - d) for r, d in pairs)
    error_as_fraction = sum(abs(r * 100 - d) for r, d in pairs)
    scale = 100.0 if error_as_fraction < error_as_percent else 1.0
    return [None if r is None else -r * scale for r in raw]


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _trade_hover(trade: Trade, times: _Times, *, is_open: bool) -> str:
    side = "Long" if trade.size > 0 else "Short"
    lines = [
        f"<b>{'Open ' + side.lower() if is_open else side}</b> {esc_chart(trade.symbol)} "
        f"× {format_size(trade.size)}",
        f"Entry {times.text(trade.entry_time)} @ {format_price(trade.entry_price)}",
    ]
    if is_open:
        lines.append(f"Marked @ {format_price(trade.exit_price)}")
    else:
        lines.append(f"Exit {times.text(trade.exit_time)} @ {format_price(trade.exit_price)}")
    pnl_label = "Unrealised P&amp;L" if is_open else "P&amp;L"
    lines.append(
        f"{pnl_label} {esc_chart(headline_text('[$]', trade.pnl))} "
        f"({format_float(trade.return_pct * 100)} %)"
    )
    if trade.tag:
        lines.append(f"Tag: {esc_chart(trade.tag)}")
    return "<br>".join(lines)


def _trade_traces(
    symbol: str, bars: Sequence[Bar], result: BacktestResult, times: _Times, in_legend: set[str]
) -> list[Any]:
    """Entry and exit markers, entry-to-exit lines and open trades of one symbol.

    ``in_legend`` holds the legend entries already made by other rows; each kind of marker
    gets one entry, which toggles it on every row.
    """
    closed = [t for t in result.trades if t.symbol == symbol]
    still_open = [t for t in result.open_trades if t.symbol == symbol]
    traces: list[Any] = []

    def legend_entry(name: str) -> bool:
        first = name not in in_legend
        in_legend.add(name)
        return first

    def markers(name: str, trades: Sequence[Trade], at_exit: bool, symbol_name: str,
                color: str | list[str], size: int = 11, is_open: bool = False) -> None:
        if not trades:
            return
        xs = [times.chart(t.exit_time if at_exit and t.exit_time else t.entry_time)
              for t in trades]
        ys = [t.exit_price if at_exit else t.entry_price for t in trades]
        traces.append(go.Scatter(
            x=xs, y=ys, mode="markers", name=name, legendgroup=name,
            showlegend=legend_entry(name),
            marker={"symbol": symbol_name, "size": size, "color": color,
                    "line": {"width": 1, "color": "#1d2330"}},
            text=[_trade_hover(t, times, is_open=is_open) for t in trades],
            hovertemplate="%{text}<extra></extra>",
        ))

    def joins(name: str, trades: Sequence[Trade], color: str, dash: str = "solid",
              legend: bool = True) -> None:
        xs: list[datetime | None] = []
        ys: list[float | None] = []
        for t in trades:
            if t.exit_time is None or t.exit_price is None:
                continue
            xs += [times.chart(t.entry_time), times.chart(t.exit_time), None]
            ys += [t.entry_price, t.exit_price, None]
        if xs:
            traces.append(go.Scatter(
                x=xs, y=ys, mode="lines", name=name, legendgroup=name,
                showlegend=legend and legend_entry(name),
                line={"color": color, "width": 1.6, "dash": dash}, hoverinfo="skip",
                connectgaps=False,
            ))

    winners = [t for t in closed if t.pnl >= 0]
    losers = [t for t in closed if t.pnl < 0]
    joins("Winning trade", winners, GREEN)
    joins("Losing trade", losers, RED)
    markers("Long entry", [t for t in closed if t.size > 0], False, "triangle-up", GREEN)
    markers("Short entry", [t for t in closed if t.size < 0], False, "triangle-down", RED)
    exits = [t for t in closed if t.exit_time is not None and t.exit_price is not None]
    markers("Exit", exits, True, "x", [GREEN if t.pnl >= 0 else RED for t in exits], size=9)

    if still_open:
        last = bars[-1] if bars else None
        marked = [
            t.model_copy(update={
                "exit_time": t.exit_time or (last.time if last else None),
                "exit_price": t.exit_price if t.exit_price is not None
                else (last.close if last else None),
            })
            for t in still_open
        ]
        # The dotted line to the mark and the marker share the marker's legend entry.
        joins("Open trade", marked, AMBER, dash="dot", legend=False)
        markers("Open trade", marked, False, "diamond", AMBER, size=12, is_open=True)
    return traces


def _price_trace(symbol: str, bars: Sequence[Bar]) -> Any:
    x = [_Times.chart(b.time) for b in bars]
    if len(bars) > MAX_CANDLES:
        return go.Scatter(
            x=x, y=[b.close for b in bars], mode="lines", name=esc_chart(symbol), showlegend=False,
            line={"color": "#37474f", "width": 1.2},
            hovertemplate=f"{esc_chart(symbol)} close %{{y:,.2f}}<extra></extra>",
        )
    return go.Candlestick(
        x=x, open=[b.open for b in bars], high=[b.high for b in bars],
        low=[b.low for b in bars], close=[b.close for b in bars],
        name=esc_chart(symbol), showlegend=False,
        increasing={"line": {"color": "#26a69a", "width": 1}, "fillcolor": "#26a69a"},
        decreasing={"line": {"color": "#ef5350", "width": 1}, "fillcolor": "#ef5350"},
    )


def _range_buttons(first: datetime, last: datetime) -> list[dict[str, Any]]:
    """Zoom buttons shorter than the period shown (a "1y" button on a week of data is noise)."""
    span = _Times.chart(last) - _Times.chart(first)
    candidates = [
        (1, "day", "1d", 1), (7, "day", "1w", 7), (1, "month", "1m", 31),
        (3, "month", "3m", 92), (6, "month", "6m", 183), (1, "year", "1y", 366),
        (5, "year", "5y", 1827),
    ]
    buttons = [
        {"count": count, "step": step, "stepmode": "backward", "label": label}
        for count, step, label, days in candidates
        if timedelta(days=days) < span
    ][-5:]
    return [*buttons, {"step": "all", "label": "All"}] if buttons else []


def _build_figure(result: BacktestResult, times: _Times | None = None) -> Any | None:
    """The report's plotly figure, or None when there is nothing to chart.

    Rows, top to bottom: one price row per charted symbol (with the series the strategy
    plotted on it, and a row of its ``pane="below"`` series after it when there are any),
    equity, drawdown; all share the time axis.
    """
    times = times or _Times.for_result(result)
    symbols, _ = _charted_symbols(result)
    curve = result.equity_curve
    plotted = _plots_by_pane(result, symbols)
    rows: list[tuple[str, str, int]] = []
    for s in symbols:
        rows.append(("price", s, 420 if len(symbols) == 1 else 300))
        if plotted.get(("below", s)):
            rows.append(("below", s, 170))
    if curve:
        rows += [("equity", "", 230), ("drawdown", "", 150)]
    if not rows:
        return None

    plot_height = sum(h for _, _, h in rows)
    gap = 26
    total = plot_height + gap * (len(rows) - 1) + 110
    fig = make_subplots(
        rows=len(rows), cols=1, shared_xaxes=True, vertical_spacing=gap / (total - 110),
        row_heights=[h / plot_height for _, _, h in rows],
    )
    in_legend: set[str] = set()
    colors = iter(PLOT_COLORS * (MAX_SERIES // len(PLOT_COLORS) + 1))
    for row, (kind, symbol, _) in enumerate(rows, start=1):
        if kind == "equity":
            _add_equity(fig, row, curve, times)
        elif kind == "drawdown":
            _add_drawdown(fig, row, curve, times)
        elif kind == "below":
            for series in plotted[("below", symbol)]:
                fig.add_trace(_plot_trace(series, next(colors)), row=row, col=1)
            fig.update_yaxes(title_text="Plots", row=row, col=1)
        else:
            bars = result.prices[symbol]
            fig.add_trace(_price_trace(symbol, bars), row=row, col=1)
            for series in plotted.get(("price", symbol), ()):
                fig.add_trace(_plot_trace(series, next(colors)), row=row, col=1)
            for trace in _trade_traces(symbol, bars, result, times, in_legend):
                fig.add_trace(trace, row=row, col=1)
            fig.update_yaxes(title_text=esc_chart(symbol), row=row, col=1)

    fig.update_xaxes(rangeslider_visible=False, showspikes=True, spikemode="across",
                     spikethickness=1, spikedash="dot", spikecolor="#888", type="date")
    period = _period(result)
    if period is not None:
        buttons = _range_buttons(*period)
        if buttons:
            fig.update_xaxes(row=1, col=1, rangeselector={
                "buttons": buttons, "x": 0, "y": 1.0, "yanchor": "bottom",
                "bgcolor": "#eef1f5", "activecolor": "#c9d3e0", "font": {"size": 11},
            })
    fig.update_layout(
        template="plotly_white", height=total, hovermode="closest",
        margin={"l": 72, "r": 24, "t": 70, "b": 40},
        font={"family": FONT_STACK, "size": 12, "color": "#1d2330"},
        legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom",
                "font": {"size": 11}},
        hoverlabel={"font": {"family": FONT_STACK}},
        dragmode="zoom",
    )
    return fig


def _plots_by_pane(result: BacktestResult, symbols: Sequence[str]
                   ) -> dict[tuple[str, str], list[PlotSeries]]:
    """The strategy's plotted series by (pane, charted symbol): each on its symbol's chart,
    or the first one's when its symbol has no chart of its own."""
    out: dict[tuple[str, str], list[PlotSeries]] = {}
    if not symbols:
        return out
    for series in result.plots:
        symbol = series.symbol if series.symbol in symbols else symbols[0]
        if series.values:
            out.setdefault((series.pane, symbol), []).append(series)
    return out


def _plot_trace(series: PlotSeries, fallback_color: str) -> Any:
    name = esc_chart(series.name)
    return go.Scatter(
        x=[_Times.chart(t) for t in series.times], y=series.values, mode="lines", name=name,
        legendgroup=f"plot {name}", line={"color": series.color or fallback_color, "width": 1.4},
        hovertemplate=f"{name} %{{y:,.4g}}<extra></extra>",
    )


def _add_equity(fig: Any, row: int, curve: Sequence[EquityPoint], times: _Times) -> None:
    x = [_Times.chart(p.time) for p in curve]
    y = [_finite_or_none(p.equity) for p in curve]
    fig.add_trace(go.Scatter(
        x=x, y=y, mode="lines", name="Equity", showlegend=False,
        line={"color": BLUE, "width": 1.6},
        hovertemplate="Equity $%{y:,.2f}<br>%{x}<extra></extra>",
    ), row=row, col=1)
    finite = [(i, v) for i, v in enumerate(y) if v is not None]
    if finite:
        i, peak = max(finite, key=lambda iv: iv[1])
        fig.add_trace(go.Scatter(
            x=[x[i]], y=[peak], mode="markers+text", name="Peak equity", showlegend=False,
            marker={"symbol": "star", "size": 13, "color": "#f2b705",
                    "line": {"width": 1, "color": "#6b5200"}},
            text=[f"Peak ${format_float(peak)}"], textposition="top center",
            textfont={"size": 11},
            hovertemplate=f"Peak equity ${format_float(peak)}<br>"
                          f"{times.text(curve[i].time)}<extra></extra>",
            cliponaxis=False,
        ), row=row, col=1)
    fig.update_yaxes(title_text="Equity [$]", tickformat=",.0f", row=row, col=1)


def _add_drawdown(fig: Any, row: int, curve: Sequence[EquityPoint], times: _Times) -> None:
    x = [_Times.chart(p.time) for p in curve]
    dd = _drawdown_percent(curve)
    fig.add_trace(go.Scatter(
        x=x, y=dd, mode="lines", name="Drawdown", showlegend=False, fill="tozeroy",
        line={"color": RED, "width": 1}, fillcolor="rgba(198, 40, 40, 0.25)",
        hovertemplate="Drawdown %{y:.2f} %<br>%{x}<extra></extra>",
    ), row=row, col=1)
    finite = [(i, v) for i, v in enumerate(dd) if v is not None]
    if finite:
        i, worst = min(finite, key=lambda iv: iv[1])
        if worst < 0:
            fig.add_trace(go.Scatter(
                x=[x[i]], y=[worst], mode="markers+text", name="Max. drawdown",
                showlegend=False, marker={"size": 8, "color": RED},
                text=[f"{format_float(worst)} %"], textposition="middle right",
                textfont={"size": 11, "color": RED},
                hovertemplate=f"Max. drawdown {format_float(worst)} %<br>"
                              f"{times.text(curve[i].time)}<extra></extra>",
                cliponaxis=False,
            ), row=row, col=1)
            # Room below the deepest point for its label.
            fig.update_yaxes(range=[worst * 1.2, -worst * 0.05], row=row, col=1)
    fig.update_yaxes(title_text="Drawdown [%]", ticksuffix=" %", rangemode="tozero",
                     row=row, col=1)


def _chart_html(result: BacktestResult, times: _Times) -> str:
    fig = _build_figure(result, times)
    if fig is None:
        return ('<section class="card chart"><p class="empty">No price or equity data to '
                "chart.</p></section>")
    _, left_out = _charted_symbols(result)
    note = ""
    if left_out:
        note = (f'<p class="note">The chart shows the first {MAX_PRICE_ROWS} symbols; not '
                f"charted: {esc(', '.join(left_out))}.</p>")
    if any(len(bars) > MAX_CANDLES for bars in result.prices.values()):
        note += (f'<p class="note">Symbols with more than {MAX_CANDLES:,} price points are drawn '
                 "as a close line instead of candles.</p>")
    config = {
        "displaylogo": False, "responsive": True, "scrollZoom": False,
        "modeBarButtonsToRemove": ["select2d", "lasso2d"],
        "toImageButtonOptions": {"filename": "backtest"},
    }
    # to_json escapes "<", ">" and "/", so nothing in the figure can close the script element.
    figure_json = pio.to_json(fig, validate=False)
    config_json = pio.json.to_json_plotly(config)
    return (
        f'<section class="card chart">{note}'
        f'<div id="report-chart" style="height:{fig.layout.height}px"></div>'
        f"<script>{get_plotlyjs()}</script>\n"
        f'<script type="application/json" id="report-figure">{figure_json}</script>\n'
        "<script>(function () {"
        'var spec = JSON.parse(document.getElementById("report-figure").textContent);'
        f'Plotly.newPlot("report-chart", spec.data, spec.layout, {config_json});'
        "})();</script></section>"
    )


#: Option spreads drawn as payoff diagrams in a report: the open ones, then the latest.
MAX_SPREADS = 6


def spreads_of(result: BacktestResult) -> list[tuple[bool, list[Trade]]]:
    """The option positions a back-test opened, one per order that opened them: option leg
    trades grouped by entry time and tag (the legs of one multi-leg order share both), the
    open ones first, then the latest; ``(open, legs)``."""
    groups: dict[tuple[datetime, str], tuple[bool, list[Trade]]] = {}
    for is_open, trades in ((True, result.open_trades), (False, result.trades)):
        for t in trades:
            try:
                OptionContract.parse(t.symbol)
            except ValueError:
                continue
            key = (t.entry_time, t.tag or "")
            was_open, legs = groups.get(key, (False, []))
            groups[key] = (was_open or is_open, [*legs, t])
    ordered = sorted(groups.items(), key=lambda kv: (not kv[1][0], -kv[0][0].timestamp()))
    return [g for _, g in ordered][:MAX_SPREADS]


def _spreads_html(result: BacktestResult, times: _Times, *, plotly_loaded: bool) -> str:
    """A payoff diagram (at expiry, and at the time it was opened) for each option
    position the strategy opened (:func:`spreads_of`), for the whole position held."""
    spreads = spreads_of(result)
    if not spreads:
        return ""
    parts = ['<section class="card chart"><h2>Option positions</h2>',
             f'<p class="note">The open ones, then the latest, at most {MAX_SPREADS}: P&amp;L '
             "of the whole position at the first expiry (solid) and when it was opened "
             "(dashed), from the legs' entry prices.</p>"]
    if not plotly_loaded:
        parts.append(f"<script>{get_plotlyjs()}</script>")
    config_json = pio.json.to_json_plotly({"displaylogo": False, "responsive": True})
    for k, (is_open, legs) in enumerate(spreads):
        opened = legs[0].entry_time
        payoff_legs = []
        for t in legs:
            c = OptionContract.parse(t.symbol)
            payoff_legs.append(PayoffLeg(c.symbol, c.right, c.strike, c.expiry, t.size, 100.0,
                                         t.entry_price))
        underlying = OptionContract.parse(legs[0].symbol).underlying
        title = (f"{underlying}: {len(legs)} legs opened {times.text(opened)}"
                 f"{' (open)' if is_open else ''}" + (f", {legs[0].tag}" if legs[0].tag else ""))
        fig = payoff_figure(payoff_data(payoff_legs, now=opened, title=title))
        fig.update_layout(height=420)
        fig.update_traces(selector={"name": "Today"}, name="When opened")
        # to_json escapes "<", ">" and "/", so nothing in the figure can close the script.
        parts.append(
            f'<div id="spread-{k}" style="height:420px"></div>'
            f'<script type="application/json" id="spread-figure-{k}">'
            f"{pio.to_json(fig, validate=False)}</script>\n"
            "<script>(function () {"
            f'var spec = JSON.parse(document.getElementById("spread-figure-{k}").textContent);'
            f'Plotly.newPlot("spread-{k}", spec.data, spec.layout, {config_json});'
            "})();</script>")
    parts.append("</section>")
    return "\n".join(parts)


# --------------------------------------------------------------------------- tables


def _stats_table(items: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(
        f'<tr><td>{esc(k)}</td>'
        f'<td class="num {sign_class(v) if k in _SIGNED_STATS else ""}">'
        f"{esc(format_value(v))}</td></tr>"
        for k, v in items
    )
    return (f'<table class="stats"><thead><tr><th>Statistic</th><th class="num">Value</th>'
            f"</tr></thead><tbody>{rows}</tbody></table>")


def _stats_html(stats: Mapping[str, Any]) -> str:
    if not stats:
        return '<h2>Statistics</h2><p class="note">No statistics.</p>'
    items = list(stats.items())
    # A long list reads better in two columns, still top to bottom, left to right.
    half = (len(items) + 1) // 2 if len(items) > 12 else len(items)
    tables = [_stats_table(items[:half])]
    if items[half:]:
        tables.append(_stats_table(items[half:]))
    return f'<h2>Statistics</h2><div class="stats-grid">{"".join(tables)}</div>'


_TRADE_HEADERS = (
    ("#", "num"), ("Symbol", ""), ("Side", ""), ("Size", "num"), ("Entry time", ""),
    ("Entry price", "num"), ("Exit time", ""), ("Exit price", "num"), ("P&L [$]", "num"),
    ("Return [%]", "num"), ("Duration", "num"), ("Tag", ""),
)


def _trade_row(number: int, trade: Trade, times: _Times, *, is_open: bool) -> str:
    side = "Long" if trade.size > 0 else "Short"
    end = trade.exit_time
    duration = format_duration(_Times.chart(end) - _Times.chart(trade.entry_time)) if end else ""
    pnl_css = sign_class(trade.pnl)
    cells = [
        (str(number), "num"),
        (esc(trade.symbol), ""),
        (side, "pos" if side == "Long" else "neg"),
        (format_size(trade.size), "num"),
        (times.text(trade.entry_time), ""),
        (format_price(trade.entry_price), "num"),
        ("open" if is_open else times.text(trade.exit_time), ""),
        (format_price(trade.exit_price), "num"),
        (format_float(trade.pnl), f"num {pnl_css}"),
        (format_float(trade.return_pct * 100), f"num {pnl_css}"),
        (duration, "num"),
        (esc(trade.tag) if trade.tag else "", "tag"),
    ]
    return "<tr>" + "".join(f'<td class="{c}">{v}</td>' for v, c in cells) + "</tr>"


def _trade_table(trades: Sequence[Trade], times: _Times, *, is_open: bool) -> str:
    head = "".join(f'<th class="{c}">{esc(h)}</th>' for h, c in _TRADE_HEADERS)
    body = "".join(
        _trade_row(i, t, times, is_open=is_open) for i, t in enumerate(trades, start=1)
    )
    return (f'<div class="scroll"><table class="trades"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _trades_html(result: BacktestResult, times: _Times) -> str:
    trades = result.trades
    parts = [f"<h2>Trades ({len(trades):,})</h2>"]
    if not trades:
        parts.append('<p class="note">No closed trades.</p>')
    else:
        shown = trades[:MAX_TRADE_ROWS]
        if len(trades) > len(shown):
            parts.append(f'<p class="note">Showing the first {len(shown):,} of {len(trades):,} '
                         "trades; the chart shows all of them.</p>")
        parts.append(_trade_table(shown, times, is_open=False))
    if result.open_trades:
        parts.append(f"<h2>Open at the end ({len(result.open_trades):,})</h2>"
                     '<p class="note">Still open after the last bar, marked to the last '
                     "close.</p>")
        parts.append(_trade_table(result.open_trades[:MAX_TRADE_ROWS], times, is_open=True))
    return "".join(parts)


def _log_html(logs: Sequence[str]) -> str:
    if not logs:
        return ""
    shown = logs[-MAX_LOG_LINES:]
    note = f" (last {len(shown):,} of {len(logs):,} lines)" if len(shown) < len(logs) else ""
    text = "\n".join(esc(line) for line in shown)
    return f"<details><summary>Strategy log{note}</summary><pre>{text}</pre></details>"
