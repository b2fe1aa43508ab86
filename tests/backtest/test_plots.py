"""``ctx.plot`` in a back-test: the result carries the series, the report draws them, and a
strategy's names, counts and values stay within their bounds (in process and in a real
sandboxed worker, whose answer the host checks again)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pytest
from pydantic import ValidationError

from sandtrade.backtest.report import render_report
from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.result import Simulation
from sandtrade.backtest.runner import run_backtest
from sandtrade.errors import StrategyError
from sandtrade.market import gbm_bars
from sandtrade.models import Bar
from sandtrade.sandbox.runner import SandboxRunner
from sandtrade.strategy.loader import load_strategy_source
from sandtrade.strategy.plots import MAX_SERIES, PlotRecorder

PLOTTING = '''
def on_bar(ctx, bar):
    fast = ctx.ta.sma(5)
    ctx.plot("fast", fast[0], color="#ff9800")
    ctx.plot("close x2", bar.close)
    ctx.plot("close x2", bar.close * 2)          # the last value of a bar wins
    ctx.plot("rsi", ctx.ta.rsi(14)[0], pane="below", color="purple")
    if ctx.ta.crossover(fast, ctx.ta.sma(20)):
        ctx.buy()
    elif ctx.ta.crossunder(fast, ctx.ta.sma(20)):
        ctx.close_position()
'''


@pytest.fixture(scope="module")
def bars() -> list[Bar]:
    return gbm_bars(300, symbol="AAA", seed=5, interval="1d")


def run(source: str, bars: list[Bar]) -> Any:
    strategy = load_strategy_source(source, "plotter.py", restricted=True)
    return run_backtest(strategy, {"AAA": bars})


def sma(xs: list[float], n: int) -> list[float]:
    return [math.nan if i < n - 1 else sum(xs[i - n + 1:i + 1]) / n for i in range(len(xs))]


def test_the_result_carries_each_series_with_its_pane_colour_and_symbol(bars: list[Bar]
                                                                        ) -> None:
    result = run(PLOTTING, bars)
    by_name = {p.name: p for p in result.plots}
    assert list(by_name) == ["fast", "close x2", "rsi"]
    fast, doubled, rsi = by_name["fast"], by_name["close x2"], by_name["rsi"]
    assert (fast.pane, fast.color, fast.symbol) == ("price", "#ff9800", "AAA")
    assert (rsi.pane, rsi.color) == ("below", "purple")
    closes = [b.close for b in bars]
    # nan is Pine's na: the warm-up leaves no points
    assert fast.times == [b.time for b in bars[4:]]
    assert fast.values == pytest.approx([v for v in sma(closes, 5) if v == v], rel=1e-12)
    assert doubled.values == [2 * c for c in closes]
    assert len(rsi.values) == len(bars) - 14 and all(0 <= v <= 100 for v in rsi.values)


def test_the_report_draws_them_on_the_price_chart_and_in_a_pane_below(bars: list[Bar]
                                                                       ) -> None:
    page = render_report(run(PLOTTING, bars))
    m = re.search(r'<script type="application/json" id="report-figure">(.*?)</script>', page,
                  re.S)
    assert m
    figure = json.loads(m.group(1))
    traces = {t.get("name"): t for t in figure["data"]}
    price_axis = next(t["yaxis"] for t in figure["data"] if t.get("type") == "candlestick")
    assert traces["fast"]["yaxis"] == traces["close x2"]["yaxis"] == price_axis
    assert traces["rsi"]["yaxis"] not in (price_axis, traces["fast"]["yaxis"])
    assert traces["fast"]["line"]["color"] == "#ff9800"
    assert len(traces["close x2"]["y"]) == len(bars)


def test_names_are_escaped_in_the_report(bars: list[Bar]) -> None:
    source = 'def on_bar(ctx, bar):\n    ctx.plot("<img src=x onerror=alert(1)>", 1.0)\n'
    page = render_report(run(source, bars))
    assert "<img src=x" not in page


@pytest.mark.parametrize("call, message", [
    ('ctx.plot("x" * 41, 1.0)', "a plot's name must be 1 to 40 printable characters"),
    ('ctx.plot("a\\x1b[2J", 1.0)', "a plot's name must be 1 to 40 printable characters"),
    ('ctx.plot(["x"], 1.0)', "a plot's name must be a string, got list"),
    ('ctx.plot("x", float("inf"))', "a plotted value must be finite"),
    ('ctx.plot("x", "1")', "a plotted value must be a number, got str"),
    ('ctx.plot("x", 1.0, pane="left")', "pane must be 'price' or 'below'"),
    ('ctx.plot("x", 1.0, color="red;background:url(x)")', "color must be '#rgb'"),
    ('for k in range(17):\n        ctx.plot(str(k), 1.0)', "at most 16 series a strategy"),
])
def test_a_plot_out_of_bounds_is_refused_at_the_strategy_line(bars: list[Bar], call: str,
                                                               message: str) -> None:
    with pytest.raises(StrategyError, match=r"plotter\.py:\d+.*" + re.escape(message)):
        run(f"def on_bar(ctx, bar):\n    {call}\n", bars[:3])


def test_a_plot_before_the_first_bar_is_refused(bars: list[Bar]) -> None:
    with pytest.raises(StrategyError, match=r"ctx\.plot needs a bar"):
        run('def on_start(ctx):\n    ctx.plot("x", 1.0)\n', bars[:3])


def test_a_long_run_keeps_a_bounded_decimated_series_and_its_last_point() -> None:
    rec = PlotRecorder(max_points=100)
    bars = gbm_bars(1000, seed=1)
    for i, bar in enumerate(bars):
        rec.record("i", float(i), "price", None, "SYN", i, bar.time)
    (series,) = rec.result()
    assert 50 <= len(series["values"]) <= 101
    assert series["values"][-1] == 999.0 and series["times"][-1] == bars[-1].time
    gaps = {b - a for a, b in zip(series["values"], series["values"][1:-1], strict=False)}
    assert gaps == {16.0}  # every 16th bar, evenly


def test_the_host_refuses_a_workers_plots_out_of_bounds() -> None:
    """What a worker sends is checked again: a worker taken over by a strategy cannot hand
    the host (and the report) more series, longer names or non-finite values."""
    base: dict[str, Any] = {"strategy": "s", "symbols": ["AAA"], "bars": 0}
    point = {"times": ["2024-01-01T00:00:00"], "values": [1.0]}
    too_many = [{"name": str(k), **point} for k in range(MAX_SERIES + 1)]
    for plots, why in [
        (too_many, "at most 16 items"),
        ([{"name": "x" * 41, **point}], "printable characters"),
        ([{"name": "x", "times": point["times"], "values": [math.inf]}], "finite"),
        ([{"name": "x", "times": [], "values": [1.0]}], "0 times for 1 values"),
        ([{"name": "x", **point}, {"name": "x", **point}], "two plotted series of one name"),
        ([{"name": "x", "pane": "side", **point}], "pane must be"),
        ([{"name": "x", "color": "javascript:1", **point}], "color must be"),
    ]:
        with pytest.raises(ValidationError, match=re.escape(why)):
            Simulation.model_validate({**base, "plots": plots})


def test_a_sandboxed_back_test_brings_its_plots_to_the_host(bars: list[Bar]) -> None:
    request = BacktestRequest(strategy="plotter.py", data=[DataSpec(path="AAA")])
    sandboxed = SandboxRunner().run_source(PLOTTING, request, {"AAA": bars})
    local = run(PLOTTING, bars)
    assert [p.model_dump() for p in sandboxed.plots] == [p.model_dump() for p in local.plots]
    assert {p.name for p in sandboxed.plots} == {"fast", "close x2", "rsi"}
