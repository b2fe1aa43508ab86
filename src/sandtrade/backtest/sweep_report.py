"""The HTML report of a sweep (``sandtrade optimize --report FILE.html``).

One self-contained page (plotly.js embedded, no network requests, the back-test report's CSP
and styles): the best parameters and their statistics, a heatmap of the objective for each
pair of swept parameters (as backtesting.py's ``plot_heatmaps``: each cell the best value over
the other parameters, maximum or minimum as the objective says; grey where no run has a
value), the best run's equity curve, the top runs as a table, and for a walk-forward the
stitched out-of-sample equity with each window's chosen parameters.

Everything that comes from the user or the strategy (names, parameter values, statistics) is
escaped (:func:`~sandtrade.backtest.page.esc`; inside the chart, :func:`esc_chart`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from sandtrade.backtest.optimize import Objective, ParamRange
from sandtrade.backtest.page import PAGE_CSP, PAGE_CSS, esc, esc_chart, format_value
from sandtrade.backtest.result import BacktestResult
from sandtrade.backtest.sweep import RunResult
from sandtrade.backtest.walkforward import WalkForwardResult

__all__ = ["heatmap_grid", "render_sweep_report", "write_sweep_report"]

#: At most this many heatmaps (pairs of parameters) are drawn.
MAX_HEATMAPS = 15


def heatmap_grid(results: Sequence[RunResult], x: ParamRange, y: ParamRange,
                 objective: Objective) -> list[list[float | None]]:
    """The objective's best value for each (y value, x value) over every other parameter:
    rows follow ``y``'s values, columns ``x``'s; None where no run has a value."""
    col = {v: k for k, v in enumerate(x.values)}
    row = {v: k for k, v in enumerate(y.values)}
    grid: list[list[float | None]] = [[None] * len(x.values) for _ in y.values]
    for r in results:
        value = objective.value(r.stats) if r.error is None else None
        if value is None or r.params.get(x.name) not in col or r.params.get(y.name) not in row:
            continue
        i, j = row[r.params[y.name]], col[r.params[x.name]]
        old = grid[i][j]
        if old is None or (value > old if objective.maximize else value < old):
            grid[i][j] = value
    return grid


def _figure(results: Sequence[RunResult], ranges: Sequence[ParamRange], objective: Objective,
            best: BacktestResult | None, walk: WalkForwardResult | None) -> Any:
    pairs = list(itertools.combinations([r for r in ranges if len(r.values) > 1], 2))
    pairs = pairs[:MAX_HEATMAPS]
    cols = min(3, max(1, len(pairs)))
    heat_rows = math.ceil(len(pairs) / cols) if pairs else 0
    curves = [c for c in ("best", "walk") if (c == "best" and best is not None
                                              and best.equity_curve)
              or (c == "walk" and walk is not None and walk.equity)]
    rows = heat_rows + len(curves)
    if rows == 0:
        return None
    where = " (last train window)" if walk is not None else ""
    titles = [esc_chart(f"{objective.stat} by {y.name} (rows) and {x.name} (columns){where}")
              for x, y in pairs] + [""] * (heat_rows * cols - len(pairs))
    specs: list[list[dict[str, Any] | None]] = [[{}] * cols for _ in range(heat_rows)]
    for c in curves:
        specs.append([{"colspan": cols}] + [None] * (cols - 1))
        titles.append("Equity of the best run (whole data)" if c == "best"
                      else "Walk-forward: stitched out-of-sample equity")
    fig = make_subplots(rows=rows, cols=cols, specs=specs, subplot_titles=titles,
                        vertical_spacing=0.25 / rows, horizontal_spacing=0.08)
    for k, (x, y) in enumerate(pairs):
        grid = heatmap_grid(results, x, y, objective)
        fig.add_trace(go.Heatmap(
            z=grid, x=[esc_chart(v) for v in x.values], y=[esc_chart(v) for v in y.values],
            colorscale="Viridis", reversescale=not objective.maximize,
            showscale=k == 0, hoverongaps=False,
            colorbar={"len": heat_rows / rows, "y": 1.0, "yanchor": "top",
                      "title": {"text": esc_chart(objective.stat), "side": "right"}},
            hovertemplate=(f"{esc_chart(x.name)}=%{{x}}<br>{esc_chart(y.name)}=%{{y}}<br>"
                           f"{esc_chart(objective.stat)}=%{{z:.4g}}<extra></extra>")),
            row=k // cols + 1, col=k % cols + 1)
        fig.update_xaxes(type="category", title_text=esc_chart(x.name),
                         row=k // cols + 1, col=k % cols + 1)
        fig.update_yaxes(type="category", title_text=esc_chart(y.name),
                         row=k // cols + 1, col=k % cols + 1)
    row = heat_rows
    for c in curves:
        row += 1
        if c == "best" and best is not None:
            fig.add_trace(go.Scatter(x=[p.time for p in best.equity_curve],
                                     y=[p.equity for p in best.equity_curve], mode="lines",
                                     name="best run", line={"color": "#1f5fbf"}),
                          row=row, col=1)
        elif walk is not None:
            fig.add_trace(go.Scatter(x=[t for t, _ in walk.equity],
                                     y=[v for _, v in walk.equity], mode="lines",
                                     name="out of sample", line={"color": "#1b873f"}),
                          row=row, col=1)
            for w in walk.windows:
                fig.add_vline(x=w.test[0], line={"color": "#bbb", "dash": "dot",
                                                 "width": 1}, row=row, col=1)
    fig.update_layout(template="plotly_white", height=380 * heat_rows + 320 * len(curves),
                      showlegend=False, margin={"t": 60, "l": 60, "r": 30, "b": 40})
    return fig


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    out = ["<table><thead><tr>", *(f"<th>{esc(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{esc(format_value(v))}</td>" for v in r) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def render_sweep_report(*, strategy: str, results: Sequence[RunResult],
                        ranges: Sequence[ParamRange], objective: Objective,
                        best: BacktestResult | None, top: int = 20,
                        walk: WalkForwardResult | None = None,
                        columns: Sequence[str] = ()) -> str:
    """The report as one HTML string (see the module's docstring)."""
    ok = [r for r in results if r.error is None and objective.value(r.stats) is not None]
    ok.sort(key=lambda r: objective.value(r.stats) or 0.0, reverse=objective.maximize)
    names = [r.name for r in ranges]
    stat_cols = list(dict.fromkeys([objective.stat, *columns]))
    failed = sum(1 for r in results if r.error is not None)
    direction = "maximised" if objective.maximize else "minimised"
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{PAGE_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>Sweep report: {esc(strategy)}</title>", f"<style>{PAGE_CSS}</style>",
        "</head>", "<body>", "<main>",
        f'<section class="card"><h1>Sweep of {esc(strategy)}</h1>'
        f"<p>{len(results):,} runs ({failed:,} failed); {esc(objective.stat)} {direction}."
        "</p>",
    ]
    if best is not None:
        chips = ", ".join(f"{esc(k)}={esc(v)}" for k, v in best.params.items() if k in names)
        parts.append(f"<p>Best: {chips}</p>")
    parts.append("</section>")
    fig = _figure(results, ranges, objective, best, walk)
    if fig is not None:
        figure_json = pio.to_json(fig, validate=False)  # escapes <, > and /
        parts += [
            '<section class="card chart">',
            f'<div id="sweep-chart" style="height:{fig.layout.height}px"></div>',
            f"<script>{get_plotlyjs()}</script>",
            f'<script type="application/json" id="sweep-figure">{figure_json}</script>',
            "<script>(function () {"
            'var spec = JSON.parse(document.getElementById("sweep-figure").textContent);'
            'Plotly.newPlot("sweep-chart", spec.data, spec.layout, '
            '{"displaylogo": false, "responsive": true});'
            "})();</script></section>"]
    if walk is not None:
        parts.append('<section class="card"><h2>Walk-forward windows</h2>')
        parts.append(_table(
            ["train", "test", *names, f"{objective.stat} (train)",
             f"{objective.stat} (test)", "Return [%] (test)"],
            [[f"{w.train[0]:%Y-%m-%d} – {w.train[1]:%Y-%m-%d}",
              f"{w.test[0]:%Y-%m-%d} – {w.test[1]:%Y-%m-%d}",
              *(w.params.get(n) for n in names), objective.value(w.in_sample),
              objective.value(w.out_of_sample), w.out_of_sample.get("Return [%]")]
             for w in walk.windows]))
        parts.append("<h2>Out of sample (stitched) beside in sample</h2>")
        parts.append(_table(["figure", "value"],
                            [[f"{label}: {k}", v] for label, figures in (
                                ("out of sample", walk.out_of_sample),
                                ("in sample", walk.in_sample)) for k, v in figures.items()]))
        parts.append("</section>")
    parts.append(f'<section class="card"><h2>Top {min(top, len(ok))} runs</h2>')
    parts.append(_table(["#", *names, *stat_cols],
                        [[k + 1, *(r.params.get(n) for n in names),
                          *(r.stats.get(c) for c in stat_cols)]
                         for k, r in enumerate(ok[:top])]))
    parts.append("</section>")
    if best is not None:
        parts.append('<section class="card"><h2>Statistics of the best run (whole data)</h2>')
        parts.append(_table(["statistic", "value"], list(best.stats.items())))
        parts.append("</section>")
    parts += ['<footer>Generated by sandtrade. This file is self-contained and makes no '
              "network requests.</footer>", "</main>", "</body>", "</html>"]
    return "\n".join(parts)


def write_sweep_report(path: str | Path, **kwargs: Any) -> Path:
    """Write :func:`render_sweep_report` to ``path``; returns it."""
    out = Path(path)
    out.write_text(render_sweep_report(**kwargs), encoding="utf-8")
    return out
