"""A signal timeline as a picture: what arrived, when, and what it filled.

``sandtrade signals replay --report FILE.html`` writes one self-contained page (plotly.js
embedded, no network requests, the same as the back-test report): per symbol, the price, a
marker for every signal at the bar where it executed (hover: its source, its body as received
and what it did), and every fill (buys up, sells down); then the position; then a table of the
signals.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots

from sandtrade.backtest.page import GREEN, PAGE_CSP, PAGE_CSS, RED, esc, esc_chart
from sandtrade.models import Bar
from sandtrade.signal_model import SignalRecord
from sandtrade.signals.replay import ReplayResult

__all__ = ["render_timeline", "write_timeline"]

_SIGNAL = "#1f5fbf"


def write_timeline(result: ReplayResult, records: Sequence[SignalRecord], path: str | Path,
                   title: str = "Signal timeline") -> Path:
    """Write the page to ``path`` and return it."""
    target = Path(path)
    target.write_text(render_timeline(result, records, title), encoding="utf-8")
    return target


def render_timeline(result: ReplayResult, records: Sequence[SignalRecord],
                    title: str = "Signal timeline") -> str:
    by_id = {r.id: r for r in records}
    symbols = sorted({b.symbol for b in result.bars_seen})
    fig = make_subplots(rows=2 * max(1, len(symbols)), cols=1, shared_xaxes=True,
                        vertical_spacing=0.04,
                        row_heights=[0.75, 0.25] * max(1, len(symbols)),
                        subplot_titles=[t for s in symbols for t in (s, f"{s} position")])
    for i, symbol in enumerate(symbols):
        row = 2 * i + 1
        bars = [b for b in result.bars_seen if b.symbol == symbol]
        fig.add_trace(go.Scatter(x=[b.time for b in bars], y=[b.close for b in bars],
                                 mode="lines", name=f"{symbol} close",
                                 line={"color": "#8a94a6", "width": 1.2}), row=row, col=1)
        _signals(fig, row, symbol, bars, result, by_id)
        fills = [f for f in result.fills if f.symbol == symbol]
        for side, color, marker in (("buy", GREEN, "triangle-up"),
                                    ("sell", RED, "triangle-down")):
            chosen = [f for f in fills if f.side.value == side]
            if chosen:
                fig.add_trace(go.Scatter(
                    x=[f.time for f in chosen], y=[f.price for f in chosen], mode="markers",
                    name=f"{symbol} {side} fills",
                    marker={"symbol": marker, "size": 11, "color": color},
                    hovertext=[esc_chart(f"{side} {f.qty:g} @ {f.price:,.4f} (order "
                                          f"{f.order_id})") for f in chosen],
                    hoverinfo="text+x"), row=row, col=1)
        pos = 0.0
        xs: list[object] = [bars[0].time] if bars else []
        ys: list[float] = [0.0] if bars else []
        for f in fills:
            pos += f.qty if f.side.value == "buy" else -f.qty
            xs.append(f.time)
            ys.append(pos)
        if xs and bars:
            xs.append(bars[-1].time)
            ys.append(pos)
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line={"shape": "hv",
                                 "color": _SIGNAL}, name=f"{symbol} position"),
                      row=row + 1, col=1)
    fig.update_layout(height=420 * max(1, len(symbols)), margin={"l": 50, "r": 20, "t": 40,
                      "b": 30}, template="plotly_white", hovermode="closest",
                      legend={"orientation": "h"})
    chart = pio.to_html(fig, include_plotlyjs=False, full_html=False,
                        config={"displaylogo": False})
    rows = []
    for s in result.signals:
        rec = by_id.get(s.id)
        body = rec.raw_body if rec else ""
        cls = "neg" if s.failed else ""
        rows.append(f"<tr><td>{esc(s.id)}</td><td>{esc(f'{s.received_at:%Y-%m-%d %H:%M:%S}')}"
                    f"</td><td>{esc(rec.source if rec else '')}</td><td><code>{esc(body)}"
                    f"</code></td><td class='{cls}'>{esc(s.outcome)}</td></tr>")
    skipped = "".join(f"<li>{esc(i)}: {esc(why)}</li>" for i, why in result.skipped)
    equity = f"{result.account.equity:,.2f}" if result.account else "-"
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{PAGE_CSP}">',
        f"<title>{esc(title)}</title>", f"<style>{PAGE_CSS}</style>",
        f"<script>{get_plotlyjs()}</script>", "</head>", "<body>", "<main>",
        f"<h1>{esc(title)}</h1>",
        f"<p class='meta'><b>{len(result.signals)}</b> signals replayed over "
        f"<b>{result.bars}</b> bars; <b>{len(result.fills)}</b> fills; equity at the end "
        f"<b>{equity}</b>; {len(result.skipped)} journaled signals left out.</p>",
        f"<div class='card chart'>{chart}</div>",
        "<h2>Signals</h2>", "<div class='scroll'><table class='trades'><tr><th>id</th>"
        "<th>received (UTC)</th><th>source</th><th>body, as received</th><th>what it did</th>"
        f"</tr>{''.join(rows)}</table></div>",
        f"<details><summary>left out</summary><ul>{skipped}</ul></details>" if skipped else "",
        "<footer>Generated by sandtrade. This file is self-contained and makes no network "
        "requests.</footer>", "</main>", "</body>", "</html>", ""])


def _signals(fig: go.Figure, row: int, symbol: str, bars: list[Bar], result: ReplayResult,
             by_id: dict[str, SignalRecord]) -> None:
    """A marker per signal that names ``symbol``, at the close of the bar it executed after."""
    xs, ys, texts = [], [], []
    for s in result.signals:
        rec = by_id.get(s.id)
        if rec is None or not rec.parsed:
            continue
        symbols = {c.get("symbol") for c in rec.parsed.get("commands", [])}
        if symbol not in symbols or not bars:
            continue
        bar = bars[min(len(bars) - 1, max(0, _index_at(result, symbol, s.market_position)))]
        xs.append(bar.time)
        ys.append(bar.close)
        texts.append(esc_chart(f"{s.id} from {rec.source}: {rec.raw_body.strip()[:200]} -> "
                                f"{s.outcome[:200]}"))
    if xs:
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=f"{symbol} signals",
                                 marker={"symbol": "diamond-open", "size": 13,
                                         "color": _SIGNAL, "line": {"width": 2}},
                                 hovertext=texts, hoverinfo="text+x"), row=row, col=1)


def _index_at(result: ReplayResult, symbol: str, position: int) -> int:
    """Index, among ``symbol``'s bars, of the last one at or before feed position
    ``position``."""
    return sum(1 for bar in result.bars_seen[:position] if bar.symbol == symbol) - 1
