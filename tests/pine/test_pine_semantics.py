"""What the imported code does, bar by bar: Pine's series, ``var``, ``na``, loops, functions
and its order rules, each on a few hand-made bars (tests/pine/conftest.py)."""

from __future__ import annotations

import math

import pytest

from sandtrade.backtest.runner import run_backtest
from sandtrade.errors import StrategyError
from sandtrade.pine import import_pine
from sandtrade.strategy.loader import load_strategy_source, resolve_params

from .conftest import HEAD, alerts, bars, run

RISING = [float(c) for c in range(10, 30)]


def test_history_var_and_na() -> None:
    got = run(HEAD + """
var int count = 0
count := count + 1
n = 0
n := nz(n[1]) + 2
if bar_index == 3
    alert(str.tostring(count) + " " + str.tostring(close[1]) + " " + str.tostring(count[1])
      + " " + str.tostring(n) + " " + str.tostring(na(close[5])) + " "
      + str.tostring(nz(close[5], -1)))
""", bars(RISING))
    assert alerts(got) == ["4 12 3 8 true -1"]


def test_user_functions_keep_their_own_history_per_call_site() -> None:
    got = run(HEAD + """
avg2(src) =>
    ta.sma(src, 2)
lag(src, n) =>
    src[n]
a = avg2(close)
b = avg2(close * 2)
c = lag(close, 2)
if bar_index == 4
    alert(str.tostring(a) + " " + str.tostring(b) + " " + str.tostring(c)
      + " " + str.tostring(lag(close, 1)))
""", bars(RISING))
    # the last call runs on bar 4 only, so its own history is one bar long (as in Pine,
    # which warns of it): na
    assert alerts(got) == ["13.5 27 12 NaN"]


def test_for_loops_ternaries_and_math() -> None:
    got = run(HEAD + """
total = 0.0
for i = 0 to 2
    total += close[i]
down = 0
for i = 3 to 1
    down := down * 10 + i
x = total > 40 ? math.max(total, 1) : math.round(-2.5)
if bar_index == 2
    alert(str.tostring(total) + " " + str.tostring(down) + " " + str.tostring(x) + " "
      + str.tostring(math.abs(-3)) + " " + str.tostring(5 / 0))
""", bars(RISING))
    assert alerts(got) == ["33 321 -3 3 NaN"]


def test_ta_functions_take_computed_series_and_their_short_forms() -> None:
    got = run(HEAD + """
spread = high - low
e = ta.sma(spread, 3)
top = ta.highest(3)
[m, s, h] = ta.macd(close, 3, 5, 2)
if bar_index == 9
    alert(str.tostring(e) + " " + str.tostring(top) + " " + str.tostring(h))
""", bars(RISING))
    # spread is 2 on every bar after the first (1 body + 2 x 0.5); on a straight line the
    # MACD and its signal settle, so the histogram is 0
    msg = alerts(got)[0].split()
    assert msg[:2] == ["2", "19.5"]
    assert abs(float(msg[2])) < 1e-9


def test_a_market_entry_fills_at_the_next_open_and_reverses_as_pine() -> None:
    got = run(HEAD + """
if bar_index == 2
    strategy.entry("L", strategy.long)
if bar_index == 5
    strategy.entry("S", strategy.short)
""", bars(RISING))
    long, = got.trades
    assert (long.entry_bar, long.entry_price, long.size) == (3, 12.0, 1)
    assert (long.exit_bar, long.exit_price) == (6, 15.0)
    short, = got.open_trades
    assert (short.entry_bar, short.size) == (6, -1)


def test_process_orders_on_close_fills_at_this_bars_close() -> None:
    got = run('//@version=5\nstrategy("t", process_orders_on_close=true)\n'
              'if bar_index == 2\n    strategy.entry("L", strategy.long)\n', bars(RISING))
    (t,) = got.open_trades
    assert (t.entry_bar, t.entry_price) == (2, 12.0)


def test_pyramiding_caps_entries_in_one_direction() -> None:
    script = """
if bar_index >= 1 and bar_index <= 4
    strategy.entry("L", strategy.long)
"""
    one = run(HEAD + script, bars(RISING))
    two = run('//@version=5\nstrategy("t", pyramiding=2)\n' + script, bars(RISING))
    assert [t.size for t in one.open_trades] == [1]
    assert sorted(t.size for t in two.open_trades) == [1, 1]


def test_default_quantity_as_cash_and_as_percent_of_equity() -> None:
    cash = run('//@version=5\nstrategy("t", default_qty_type=strategy.cash, '
               'default_qty_value=100)\nif bar_index == 2\n'
               '    strategy.entry("L", strategy.long)\n', bars(RISING))
    pct = run('//@version=5\nstrategy("t", initial_capital=1000, '
              'default_qty_type=strategy.percent_of_equity, default_qty_value=50)\n'
              'if bar_index == 2\n    strategy.entry("L", strategy.long)\n', bars(RISING),
              cash=1000.0)
    assert cash.open_trades[0].size == math.floor(100 / 12)
    assert pct.open_trades[0].size == math.floor(1000 * 0.5 / 12)


def test_exit_with_profit_and_loss_in_ticks() -> None:
    got = run(HEAD + """
if bar_index == 2
    strategy.entry("L", strategy.long)
strategy.exit("X", "L", profit=250, loss=1000)
""", bars(RISING))
    (t,) = got.trades
    # entry at bar 3's open (12); the take profit at 12 + 250 ticks of 0.01 = 14.5, placed
    # once the entry filled, is reached by bar 4's high (14.5)
    assert (t.entry_price, t.exit_price, t.exit_bar) == (12.0, 14.5, 4)
    assert not got.open_trades


def test_exit_with_a_stop_price_for_a_short() -> None:
    got = run(HEAD + """
if bar_index == 2
    strategy.entry("S", strategy.short)
strategy.exit("X", "S", stop=15)
""", bars(RISING))
    (t,) = got.trades
    assert (t.size, t.exit_price) == (-1, 15.0)


def test_trailing_exit_starts_in_profit_and_trails() -> None:
    closes = [10, 11, 12, 13, 14, 15, 16, 17, 16, 15, 14, 13, 12, 11]
    got = run(HEAD + """
if bar_index == 1
    strategy.entry("L", strategy.long)
strategy.exit("T", "L", trail_points=200, trail_offset=300)
""", bars([float(c) for c in closes]))
    (t,) = got.trades
    # entry at 11; trailing starts once the high reaches 13 (bar 3) and trails 3.00 behind
    # the highest high (17.5 on bar 7), so it sells at 14.5 on the way down (bar 9)
    assert t.entry_price == 11.0
    assert (t.exit_price, t.exit_bar) == (pytest.approx(14.5), 9)


def test_close_closes_the_entry_and_close_all_the_position() -> None:
    got = run('//@version=5\nstrategy("t", pyramiding=2)\n' + """
if bar_index == 1
    strategy.entry("A", strategy.long, qty=2)
if bar_index == 2
    strategy.entry("B", strategy.long, qty=3)
if bar_index == 4
    strategy.close("A")
if bar_index == 6
    strategy.close_all()
""", bars(RISING))
    assert [(t.size, t.exit_bar) for t in got.trades] == [(2, 5), (3, 7)]
    assert not got.open_trades


def test_order_does_not_reverse_and_cancel_withdraws_a_working_order() -> None:
    got = run(HEAD + """
if bar_index == 1
    strategy.entry("L", strategy.long, qty=2)
if bar_index == 3
    strategy.order("O", strategy.short, qty=1)
if bar_index == 4
    strategy.entry("S", strategy.short, stop=1)
if bar_index == 5
    strategy.cancel("S")
""", bars(RISING))
    assert [t.size for t in got.open_trades] == [1]
    assert [t.size for t in got.trades] == [1]


def test_commission_and_capital_become_the_back_tests_settings() -> None:
    got = import_pine('//@version=5\nstrategy("t", initial_capital=5000, '
                      'commission_type=strategy.commission.percent, commission_value=0.1, '
                      'process_orders_on_close=true)\n', "t.pine")
    assert got.settings == {"cash": 5000.0, "commission_pct": 0.001, "fill_profile": "close"}
    assert got.backtest_flags() == "--cash 5000 --commission 0.001 --fill-profile close"
    per = import_pine('//@version=5\nstrategy("t", commission_type='
                      'strategy.commission.cash_per_contract, commission_value=0.5)\n', "t.pine")
    assert per.settings["commission_per_unit"] == 0.5


def test_alertcondition_and_alert_are_log_lines() -> None:
    got = run(HEAD + """
alertcondition(close > 20, "up", "above 20")
if bar_index == 0
    alert("start")
""", bars(RISING))
    assert alerts(got) == ["start", *["above 20"] * 9]


def test_inputs_become_params_with_their_bounds_and_overrides_apply() -> None:
    got = import_pine(HEAD + """
n = input.int(3, "Length", minval=1, maxval=50, step=1)
src = input.source(close, "Source")
mode = input.string("EMA", options=["SMA", "EMA"])
on = input.bool(true)
k = input.float(2, "K")
avg = ta.sma(src, n)
if bar_index == 5
    alert(str.tostring(avg))
""", "t.pine")
    strategy = load_strategy_source(got.source, "t.py", restricted=True)
    assert strategy.params == {"n": 3, "src": "close", "mode": "EMA", "on": True, "k": 2.0}
    n, src, mode = strategy.specs["n"], strategy.specs["src"], strategy.specs["mode"]
    assert (n.type, n.min, n.max, n.step, n.title) == ("int", 1, 50, 1, "Length")
    assert "hl2" in src.choices and mode.choices == ("SMA", "EMA")
    assert "    'n': param(3, min=1, max=50, step=1, title='Length'),  # n = input.int(3, " \
           "\"Length\", minval=1, maxval=50, step=1)" in got.source
    with pytest.raises(StrategyError, match="n: 80 is above its maximum 50"):
        resolve_params(strategy.params, {"n": 80}, where="t.py", specs=strategy.specs,
                       lines=strategy.lines)
    result = run_backtest(strategy, bars(RISING), params={**strategy.params, "n": 2,
                                                          "src": "open"})
    assert alerts(result) == ["13.5"]  # the sma of bar 4's and bar 5's opens, 13 and 14


def test_hostile_text_in_the_pine_source_stays_data() -> None:
    pine = ('//@version=5\nstrategy("t\\"\\"\\" + __import__(\'os\') # \x1b[31m")\n'
            '__class__ = 1\n_x = "\'); import os #"\n'
            'if bar_index == 1\n    alert(_x + str.tostring(__class__))\n')
    got = import_pine(pine, "t.pine")
    assert "\x1b" not in got.source
    compile(got.source, "t.py", "exec")
    result = run(pine, bars(RISING))
    assert alerts(result) == ["'); import os #1"]


def test_plot_and_plotshape_are_ctx_plot_series() -> None:
    got = run('//@version=5\nstrategy("t", overlay=true)\n' + """
ma = ta.sma(close, 3)
plot(ma, "MA", color=color.new(color.orange, 20))
plotshape(close > 20, title="up")
""", bars(RISING))
    series = {p.name: p for p in got.plots}
    assert series["MA"].pane == "price" and series["MA"].color == "orange"
    assert [v for v in series["MA"].values if v == v][:2] == [11.0, 12.0]
    assert sum(1 for v in series["up"].values if v == 1.0) == 9


def test_time_is_milliseconds_since_1970_utc_and_bar_index_counts_bars() -> None:
    got = run(HEAD + """
if bar_index == 1
    alert(str.tostring(time) + " " + str.tostring(time[1]) + " " + str.tostring(bar_index))
""", bars(RISING))
    # the first bar is 2024-01-01 00:00 UTC, the second a day later
    assert alerts(got) == ["1704153600000 1704067200000 1"]
