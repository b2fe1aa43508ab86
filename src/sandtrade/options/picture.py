"""Payoff pictures: P&L at expiry and today against the underlying's price, with break-evens.

:func:`payoff_data` gives the numbers (for a dashboard or the back-test report to draw in its
own way), :func:`payoff_figure` a plotly figure, :func:`payoff_html` / :func:`write_payoff_html`
a self-contained page: plotly.js is copied from the installed plotly wheel into the file, as
the back-test report does, so it opens offline and fetches nothing.

The only module of the room that imports plotly (an import-linter contract keeps it so), so
the pricer, chains and templates stay importable where plotly is not allowed.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from sandtrade.options.payoff import PayoffLeg, horizon, pnl_at, summarise
from sandtrade.options.templates import StrategyPlan

__all__ = ["PayoffData", "payoff_data", "payoff_figure", "payoff_html", "write_payoff_html"]

_PROFIT, _LOSS, _TODAY = "#1a7f37", "#cf222e", "#0969da"


class PayoffData(NamedTuple):
    """The curves (dollars per ``quantity`` spreads) and the marks of a payoff picture."""

    title: str
    prices: list[float]
    at_expiry: list[float]
    today: list[float]
    breakevens: list[float]
    max_profit: float | None
    max_loss: float | None
    spot: float | None


def payoff_data(position: StrategyPlan | Sequence[PayoffLeg], *, spot: float | None = None,
                now: datetime | None = None, rate: float = 0.04, dividend_yield: float = 0.0,
                vol: float = 0.25, points: int = 401, title: str | None = None) -> PayoffData:
    """The payoff of a template or of legs (:class:`PayoffLeg`, quantities included): at
    the first expiry and at ``now`` (default: the wall clock), from 15 % under the lowest
    strike (or spot) to 15 % over the highest."""
    if isinstance(position, StrategyPlan):
        legs: Sequence[PayoffLeg] = position.payoff_legs
        spot = position.spot if spot is None else spot
        title = title or (f"{position.name.replace('_', ' ')} on {position.underlying}, "
                          f"expiry {position.expiry}, net {position.net_price:+.2f}")
    else:
        legs = position
    if not legs:
        raise ValueError("a payoff needs at least one leg")
    first = horizon(legs)
    title = title or (f"{len(legs)} legs" + (f", first expiry {first}" if first else ""))
    marks = [leg.strike for leg in legs if leg.strike is not None]
    marks += [spot] if spot else [leg.price for leg in legs if leg.right is None]
    low, high = min(marks) * 0.85, max(marks) * 1.15
    prices = [low + (high - low) * i / (points - 1) for i in range(points)]
    kw = {"rate": rate, "dividend_yield": dividend_yield, "vol": vol}
    when = now or datetime.now(UTC)
    summary = summarise(legs, **kw)  # type: ignore[arg-type]
    return PayoffData(
        title, prices, [pnl_at(legs, p, None, **kw) for p in prices],  # type: ignore[arg-type]
        [pnl_at(legs, p, when, **kw) for p in prices],  # type: ignore[arg-type]
        summary.breakevens, summary.max_profit, summary.max_loss, spot)


def _money(value: float | None) -> str:
    return "unlimited" if value is None else f"${value:,.2f}"


def payoff_figure(data: PayoffData) -> go.Figure:
    """The payoff as a plotly figure: profit shaded green, loss red, today dashed."""
    fig = go.Figure()
    gains = [max(0.0, y) for y in data.at_expiry]
    losses = [min(0.0, y) for y in data.at_expiry]
    fig.add_trace(go.Scatter(x=data.prices, y=gains, fill="tozeroy", mode="none",
                             fillcolor="rgba(26,127,55,0.15)", hoverinfo="skip",
                             showlegend=False))
    fig.add_trace(go.Scatter(x=data.prices, y=losses, fill="tozeroy", mode="none",
                             fillcolor="rgba(207,34,46,0.15)", hoverinfo="skip",
                             showlegend=False))
    fig.add_trace(go.Scatter(x=data.prices, y=data.at_expiry, name="At expiry",
                             line={"color": "#24292f", "width": 2.5},
                             hovertemplate="%{x:.2f}: %{y:$,.2f}<extra>at expiry</extra>"))
    fig.add_trace(go.Scatter(x=data.prices, y=data.today, name="Today",
                             line={"color": _TODAY, "width": 2, "dash": "dash"},
                             hovertemplate="%{x:.2f}: %{y:$,.2f}<extra>today</extra>"))
    fig.add_hline(y=0, line={"color": "#8c959f", "width": 1})
    for be in data.breakevens:
        # labelled above the plot, level: a label inside it would sit on the curves
        fig.add_vline(x=be, line={"color": "#9a6700", "width": 1, "dash": "dot"})
        fig.add_annotation(x=be, y=1.0, yref="paper", yanchor="bottom", showarrow=False,
                           text=f"break-even {be:.2f}", font={"size": 11, "color": "#9a6700"})
    if data.spot:
        fig.add_vline(x=data.spot, line={"color": _TODAY, "width": 1},
                      annotation={"text": f"spot {data.spot:.2f}", "font": {"size": 11,
                                  "color": _TODAY}}, annotation_position="bottom right")
    fig.update_layout(
        title={"text": html.escape(data.title) + "<br><sup>max profit "
               f"{_money(data.max_profit)} · max loss {_money(data.max_loss)} (per spread)"
               "</sup>"},
        template="plotly_white", height=520, hovermode="x unified",
        xaxis_title="underlying price", yaxis_title="P&L ($)", yaxis_tickformat="$,.0f",
        legend={"orientation": "h", "y": -0.18}, margin={"t": 110, "r": 30, "l": 70, "b": 60})
    return fig


def payoff_html(data: PayoffData) -> str:
    """A self-contained HTML page of the payoff (plotly.js embedded; opens offline)."""
    fig = payoff_figure(data)
    # to_json escapes "<", ">" and "/", so nothing in the figure can close the script element.
    figure_json = pio.to_json(fig, validate=False)
    config_json = pio.json.to_json_plotly({"displaylogo": False, "responsive": True})
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(data.title)}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#24292f}</style>"
        "</head><body>"
        '<div id="payoff" style="height:520px"></div>'
        f"<script>{get_plotlyjs()}</script>\n"
        f'<script type="application/json" id="payoff-figure">{figure_json}</script>\n'
        "<script>(function () {"
        'var spec = JSON.parse(document.getElementById("payoff-figure").textContent);'
        f'Plotly.newPlot("payoff", spec.data, spec.layout, {config_json});'
        "})();</script></body></html>\n")


def write_payoff_html(data: PayoffData, path: str | Path) -> Path:
    """Write :func:`payoff_html` to ``path``."""
    p = Path(path)
    p.write_text(payoff_html(data), encoding="utf-8")
    return p
