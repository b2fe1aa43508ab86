"""The HTML back-test report: self-contained, complete, escaped, and robust to empty results."""

from __future__ import annotations

import html
import json
import math
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from plotly.offline import get_plotlyjs

from sandtrade.backtest.report import MAX_PRICE_ROWS, MAX_TRADE_ROWS, render_report, write_report
from sandtrade.backtest.result import BacktestResult, EquityPoint
from sandtrade.models import Bar, Trade

DAY = timedelta(days=1)
T0 = datetime(2024, 1, 2)

INJECTION = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


def make_bars(symbol: str, closes: list[float], start: datetime = T0) -> list[Bar]:
    """Daily bars whose open is the previous close."""
    bars, prev = [], closes[0]
    for i, close in enumerate(closes):
        bars.append(Bar(symbol, start + i * DAY, prev, max(prev, close) + 1,
                        min(prev, close) - 1, close, 1000.0))
        prev = close
    return bars


def make_trade(symbol: str, size: float, entry: int, exit_: int | None, entry_price: float,
               exit_price: float | None, pnl: float, tag: str | None = None) -> Trade:
    """A trade entered and left at bar offsets from ``T0``."""
    return Trade(
        account="bt", symbol=symbol, size=size, entry_time=T0 + entry * DAY,
        entry_price=entry_price, entry_bar=entry,
        exit_time=None if exit_ is None else T0 + exit_ * DAY, exit_price=exit_price,
        exit_bar=exit_, pnl=pnl,
        return_pct=0.0 if exit_price is None else (exit_price / entry_price - 1) * math.copysign(
            1, size),
        tag=tag,
    )


STATS: dict[str, Any] = {
    "Start": "2024-01-02 00:00:00",
    "End": "2024-01-07 00:00:00",
    "Duration": "5 days 00:00:00",
    "Equity Final [$]": 10523.1,
    "Return [%]": 5.231,
    "Buy & Hold Return [%]": 4.0,
    "Max. Drawdown [%]": -1.25,
    "Sharpe Ratio": float("nan"),
    "Max. Drawdown Duration": "2 days 00:00:00",
    "# Trades": 2,
    "Profit Factor": None,
    "SQN": 1.5,
}


@pytest.fixture
def result() -> BacktestResult:
    """A small, complete result: six bars, one winning long, one losing short, one open trade."""
    bars = make_bars("ACME", [100, 102, 105, 104, 101, 103])
    equity = [10000, 10200, 10500, 10400, 10370, 10523.1]
    peak, curve = 0.0, []
    for bar, value in zip(bars, equity, strict=True):
        peak = max(peak, value)
        curve.append(EquityPoint(time=bar.time, equity=value, drawdown_pct=1 - value / peak))
    return BacktestResult(
        strategy="sma_cross",
        symbols=["ACME"],
        params={"fast": 10, "slow": 30},
        settings={"cash": 10000, "commission": 0.001},
        bars=len(bars),
        stats=dict(STATS),
        trades=[
            make_trade("ACME", 100, 1, 2, 100.0, 102.0, 200.0, tag="breakout"),
            make_trade("ACME", -50, 3, 4, 104.0, 105.0, -50.0),
        ],
        open_trades=[make_trade("ACME", 10, 4, None, 101.0, 103.0, 20.0)],
        equity_curve=curve,
        prices={"ACME": bars},
    )


def figure_of(page: str) -> dict[str, Any]:
    """The plotly figure embedded in a report page."""
    m = re.search(r'<script type="application/json" id="report-figure">(.*?)</script>', page,
                  re.S)
    assert m, "the page has no embedded figure"
    return json.loads(m.group(1))


def traces_named(figure: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [t for t in figure["data"] if t.get("name") == name]


# --------------------------------------------------------------------------- the file


def test_write_report_writes_the_file_and_returns_its_path(
    result: BacktestResult, tmp_path: Path
) -> None:
    out = write_report(result, str(tmp_path / "report.html"))
    assert out == tmp_path / "report.html"
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert text.rstrip().endswith("</html>")


def test_report_embeds_the_installed_plotly_js_once(result: BacktestResult) -> None:
    page = render_report(result)
    assert page.count(get_plotlyjs()) == 1
    assert "Plotly.newPlot(" in page


def test_report_references_nothing_on_the_network(result: BacktestResult) -> None:
    page = render_report(result)
    # plotly.min.js itself mentions URLs in strings; what matters is that no element or
    # stylesheet of the page loads one.
    tags = re.findall(r"<(?:script|link|img|iframe|source|embed|object)\b[^>]*>", page, re.I)
    assert tags, "expected the inline script tags"
    for tag in tags:
        assert not re.search(r"\b(?:src|href|data)\s*=", tag, re.I), tag
    outside_js = page.replace(get_plotlyjs(), "")
    assert not re.search(r"https?://|//cdn|@import|url\(", outside_js, re.I)
    assert "mathjax" not in outside_js.lower()
    assert "default-src 'none'" in page  # the browser refuses any fetch we missed


# --------------------------------------------------------------------------- contents


def test_every_stat_appears_in_order(result: BacktestResult) -> None:
    page = render_report(result)
    stats_part = page[page.index("<h2>Statistics</h2>"):]
    positions = [stats_part.find(f"<td>{html.escape(key)}</td>") for key in STATS]
    assert -1 not in positions, [k for k, p in zip(STATS, positions, strict=True) if p == -1]
    assert positions == sorted(positions)


def test_stat_values_are_formatted(result: BacktestResult) -> None:
    page = render_report(result)
    assert "10,523.10" in page  # money: two decimals, thousands separator
    assert "$10,523.10" in page  # headline Equity Final
    assert "5.23 %" in page  # headline Return
    assert "5 days 00:00:00" in page  # duration strings as they are
    assert ">n/a</td>" in page  # NaN Sharpe, None profit factor
    stats_part = page[page.index("<h2>Statistics</h2>"):page.index("<h2>Trades")]
    assert "nan" not in stats_part.lower()


def test_header_shows_strategy_symbols_period_params_and_settings(
    result: BacktestResult,
) -> None:
    page = render_report(result)
    header = page[page.index("<header"):page.index("</header>")]
    assert "sma_cross" in header
    assert "ACME" in header
    assert "2024-01-02 … 2024-01-07" in header
    assert "fast = 10" in header and "slow = 30" in header
    assert "commission = 0.001" in header  # a small setting keeps its precision


def test_trade_count_and_trade_rows_are_shown(result: BacktestResult) -> None:
    page = render_report(result)
    assert "<h2>Trades (2)</h2>" in page
    assert 'class="name"># Trades</span><span class="value ">2</span>' in page
    assert "Open at the end (1)" in page
    assert "breakout" in page
    assert ">200.00</td>" in page and ">-50.00</td>" in page  # P&L
    assert ">2.00</td>" in page  # return of the long: 100 -> 102 is 2 %


def test_trade_count_falls_back_to_the_trades_without_the_stat(result: BacktestResult) -> None:
    del result.stats["# Trades"]
    page = render_report(result)
    assert 'class="name"># Trades</span><span class="value ">2</span>' in page


def test_warnings_are_shown_prominently(result: BacktestResult) -> None:
    result.warnings = ["3 orders rejected: insufficient buying power", "data has gaps"]
    page = render_report(result)
    warnings = page[page.index('class="warnings"'):]
    assert "2 warnings" in warnings
    assert "3 orders rejected: insufficient buying power" in warnings
    assert page.index('class="warnings"') < page.index('id="report-chart"')


def test_trade_table_is_capped_with_a_note(result: BacktestResult) -> None:
    trade = result.trades[0]
    result.trades = [trade] * (MAX_TRADE_ROWS + 7)
    page = render_report(result)
    assert f"Showing the first {MAX_TRADE_ROWS:,} of {MAX_TRADE_ROWS + 7:,} trades" in page
    closed_table = page[page.index("<h2>Trades"):page.index("Open at the end")]
    assert closed_table.count("<tr>") == MAX_TRADE_ROWS + 1  # plus the header row
    entries = traces_named(figure_of(page), "Long entry")[0]
    assert len(entries["x"]) == MAX_TRADE_ROWS + 7  # the chart shows them all


# --------------------------------------------------------------------------- escaping


def test_html_in_user_strings_is_escaped(result: BacktestResult) -> None:
    result.strategy = INJECTION
    result.trades[0].tag = INJECTION
    result.params = {INJECTION: INJECTION}
    result.stats[INJECTION] = INJECTION
    result.warnings = [INJECTION]
    result.logs = [INJECTION]
    page = render_report(result)
    assert "<img" not in page
    assert 'alert("pwned")</script>' not in page
    assert html.escape(INJECTION) in page
    # The tag is escaped inside the chart's hover text too (plotly renders some HTML there).
    hover = traces_named(figure_of(page), "Long entry")[0]["text"][0]
    assert "&lt;img src=x" in hover and "<img" not in hover
    assert "&quot;" not in hover  # plotly would show it literally; a bare quote is harmless


# --------------------------------------------------------------------------- the chart


def test_chart_has_price_equity_and_drawdown_rows_sharing_the_time_axis(
    result: BacktestResult,
) -> None:
    figure = figure_of(render_report(result))
    kinds = [(t["type"], t.get("yaxis", "y")) for t in figure["data"]]
    assert ("candlestick", "y") in kinds
    assert ("scatter", "y2") in kinds  # equity
    assert ("scatter", "y3") in kinds  # drawdown
    layout = figure["layout"]
    assert layout["xaxis"]["rangeslider"]["visible"] is False
    assert layout["xaxis"].get("matches") or layout["xaxis2"].get("matches")


def test_trades_are_marked_at_their_entry_and_exit(result: BacktestResult) -> None:
    figure = figure_of(render_report(result))
    longs = traces_named(figure, "Long entry")[0]
    assert longs["marker"]["symbol"] == "triangle-up"
    assert (longs["x"], longs["y"]) == (["2024-01-03T00:00:00"], [100.0])
    shorts = traces_named(figure, "Short entry")[0]
    assert shorts["marker"]["symbol"] == "triangle-down"
    assert (shorts["x"], shorts["y"]) == (["2024-01-05T00:00:00"], [104.0])
    exits = traces_named(figure, "Exit")[0]
    assert exits["y"] == [102.0, 105.0]
    assert "P&amp;L $200.00 (2.00 %)" in longs["text"][0]
    wins = traces_named(figure, "Winning trade")[0]
    assert wins["y"] == [100.0, 102.0, None]
    opened = next(t for t in traces_named(figure, "Open trade") if t["mode"] == "markers")
    assert opened["marker"]["symbol"] == "diamond"
    assert opened["y"] == [101.0]


def test_equity_peak_is_marked(result: BacktestResult) -> None:
    figure = figure_of(render_report(result))
    peak = traces_named(figure, "Peak equity")[0]
    assert peak["y"] == [10523.1]


@pytest.mark.parametrize("scale", [1.0, 100.0], ids=["fraction", "percent"])
def test_drawdown_is_negative_percent_whatever_the_unit(
    result: BacktestResult, scale: float
) -> None:
    result.equity_curve = [
        EquityPoint(time=p.time, equity=p.equity, drawdown_pct=p.drawdown_pct * scale)
        for p in result.equity_curve
    ]
    drawdown = traces_named(figure_of(render_report(result)), "Drawdown")[0]
    # Equity 10,500 -> 10,370 is a drawdown of 1.238 %.
    assert min(drawdown["y"]) == pytest.approx(-(1 - 10370 / 10500) * 100)
    assert max(drawdown["y"]) == 0


def test_multi_symbol_result_has_one_price_row_per_symbol() -> None:
    symbols = ["AAA", "BBB", "CCC"]
    result = BacktestResult(
        strategy="pairs", symbols=symbols,
        prices={s: make_bars(s, [10 + i, 11 + i, 12 + i]) for i, s in enumerate(symbols)},
        trades=[make_trade("BBB", 5, 0, 2, 11.0, 13.0, 10.0)],
    )
    figure = figure_of(render_report(result))
    candles = [t for t in figure["data"] if t["type"] == "candlestick"]
    assert [c["name"] for c in candles] == symbols
    assert len({c.get("yaxis", "y") for c in candles}) == len(symbols)
    titles = [figure["layout"][f"yaxis{'' if i == 1 else i}"]["title"]["text"]
              for i in range(1, len(symbols) + 1)]
    assert titles == symbols
    # BBB's trade sits on BBB's row, and has a legend entry though the first row has none.
    entries = traces_named(figure, "Long entry")
    assert [e["yaxis"] for e in entries] == [candles[1]["yaxis"]]
    assert entries[0]["showlegend"] is True


def test_price_rows_are_capped_and_the_rest_named(result: BacktestResult) -> None:
    symbols = [f"S{i}" for i in range(MAX_PRICE_ROWS + 2)]
    result.symbols = symbols
    result.prices = {s: make_bars(s, [10, 11, 12]) for s in symbols}
    page = render_report(result)
    candles = [t for t in figure_of(page)["data"] if t["type"] == "candlestick"]
    assert len(candles) == MAX_PRICE_ROWS
    assert f"not charted: S{MAX_PRICE_ROWS}, S{MAX_PRICE_ROWS + 1}" in page


def test_long_price_series_are_drawn_as_a_line(result: BacktestResult) -> None:
    closes = [100 + math.sin(i / 50) * 10 for i in range(3500)]
    result.prices = {"ACME": make_bars("ACME", closes)}
    figure = figure_of(render_report(result))
    assert not [t for t in figure["data"] if t["type"] == "candlestick"]
    assert len(traces_named(figure, "ACME")[0]["y"]) == 3500


# --------------------------------------------------------------------------- empty results


def test_result_without_trades_or_curves_still_renders(tmp_path: Path) -> None:
    empty = BacktestResult(strategy="idle", symbols=["ACME"])
    page = write_report(empty, tmp_path / "empty.html").read_text(encoding="utf-8")
    assert "<h2>Trades (0)</h2>" in page
    assert "No price or equity data to chart." in page
    assert "No statistics." in page


def test_result_with_prices_but_no_trades_still_charts(result: BacktestResult) -> None:
    result.trades, result.open_trades, result.equity_curve = [], [], []
    result.stats = {"# Trades": 0, "Return [%]": 0.0, "Sharpe Ratio": float("nan")}
    page = render_report(result)
    figure = figure_of(page)
    assert [t["type"] for t in figure["data"]] == ["candlestick"]
    assert "No closed trades." in page


def test_option_positions_get_a_payoff_diagram_each() -> None:
    """A back-test that opened an iron condor (four option leg trades of one order: the same
    entry time and tag) shows it as one payoff diagram whose break-evens and bounds come
    from the legs' entry prices; a hostile tag stays text; stock trades are no spread."""
    legs = [("DEMO240216P00090000", 1, 0.50), ("DEMO240216P00095000", -1, 1.40),
            ("DEMO240216C00105000", -1, 1.30), ("DEMO240216C00110000", 1, 0.40)]
    trades = [make_trade(sym, size, 0, 10, price, 0.0, 0.0, tag=INJECTION)
              for sym, size, price in legs]
    trades.append(make_trade("DEMO", 5, 1, 3, 100.0, 101.0, 5.0))
    result = BacktestResult(strategy="condor.py", symbols=["DEMO"], trades=trades,
                            prices={"DEMO": make_bars("DEMO", [100.0, 101.0, 99.0, 100.0])})

    page = render_report(result)

    assert "<h2>Option positions</h2>" in page
    figures = re.findall(r'<script type="application/json" id="spread-figure-(\d+)">(.*?)'
                         r"</script>", page, re.S)
    assert [k for k, _ in figures] == ["0"]  # one order, one diagram; the stock trade none
    spec = json.loads(figures[0][1])
    title = spec["layout"]["title"]["text"]
    # credit 1.40 + 1.30 - 0.50 - 0.40 = 1.80: max profit $180, max loss $320,
    # break-evens 95 - 1.80 and 105 + 1.80
    assert "max profit $180.00" in title and "max loss $320.00" in title, title
    breakevens = sorted(a["x"] for a in spec["layout"]["annotations"]
                        if str(a.get("text", "")).startswith("break-even"))
    assert breakevens == pytest.approx([93.2, 106.8])
    assert INJECTION not in page and "DEMO: 4 legs opened" in title


def test_a_report_without_options_has_no_option_section() -> None:
    result = BacktestResult(strategy="s.py", symbols=["DEMO"],
                            trades=[make_trade("DEMO", 5, 1, 3, 100.0, 101.0, 5.0)],
                            prices={"DEMO": make_bars("DEMO", [100.0, 101.0, 99.0, 100.0])})
    assert "Option positions" not in render_report(result)
