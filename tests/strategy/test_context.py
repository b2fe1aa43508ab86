"""``ctx`` as a strategy sees it, through real back-tests of small strategy files.

Each test writes a strategy, runs it with the engine on bars made by hand and checks what the
broker did (trades, orders) or what the strategy recorded: ``ctx.log`` lines, or objects it
appended to a module-level list, read back from the strategy's module.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sandtrade.broker import BrokerSettings
from sandtrade.errors import DataError, StrategyError
from sandtrade.models import Bar
from sandtrade.strategy import AccountView, OrderView, PositionView

# ---------------------------------------------------------------- order sizes


def test_buy_with_no_size_buys_whole_units_with_all_the_buying_power(backtest: Any) -> None:
    run = backtest("""
        def on_start(ctx):
            ctx.buy()
    """)
    [trade] = run.result.open_trades
    assert trade.size == 333  # 10,000 // 30
    assert trade.entry_price == 30.0


def test_buy_with_no_size_leaves_room_for_the_commission(backtest: Any) -> None:
    run = backtest("""
        def on_start(ctx):
            ctx.buy()
    """, settings=BrokerSettings(commission_pct=0.002))
    assert run.result.open_trades[0].size == 332  # 10,000 // (30 * 1.002)


def test_buy_with_a_fraction_spends_that_share_of_the_buying_power(backtest: Any) -> None:
    run = backtest("""
        def on_start(ctx):
            ctx.buy(0.5)
    """)
    assert run.result.open_trades[0].size == 166  # 5,000 // 30


def test_buy_with_a_number_of_one_or_more_buys_that_many_units(backtest: Any) -> None:
    run = backtest("""
        def on_start(ctx):
            ctx.buy(3)
            ctx.buy(1.0)
    """)
    assert [t.size for t in run.result.open_trades] == [3, 1]


def test_sell_sizes_as_buy_and_opens_a_short(backtest: Any) -> None:
    run = backtest("""
        def on_start(ctx):
            ctx.sell(0.5)
    """)
    assert run.result.open_trades[0].size == -166


def test_order_buys_an_exact_quantity_of_any_symbol(backtest: Any) -> None:
    run = backtest("""
        def on_start(ctx):
            ctx.order("T", "sell", 7)
    """)
    assert run.result.open_trades[0].size == -7


# ---------------------------------------------------------------- order types


def test_limit_and_stop_keywords_choose_the_order_type(backtest: Any) -> None:
    run = backtest("""
        SEEN = []

        def on_start(ctx):
            ctx.buy(1)
            ctx.buy(1, limit=29.0)
            ctx.buy(1, stop=31.0)
            ctx.buy(1, limit=32, stop=31)
            ctx.sell(1, stop=28.5, tif="day", tag="protect")
            SEEN.extend(ctx.orders())
    """)
    got = [(o.side, o.type, o.limit_price, o.stop_price, o.tag) for o in run.module["SEEN"]]
    assert got == [
        ("buy", "market", None, None, None),
        ("buy", "limit", 29.0, None, None),
        ("buy", "stop", None, 31.0, None),
        ("buy", "stop_limit", 32.0, 31.0, None),
        ("sell", "stop", None, 28.5, "protect"),
    ]


def test_a_limit_order_waits_for_its_price(backtest: Any, make_bars: Any) -> None:
    run = backtest("""
        def on_start(ctx):
            ctx.buy(2, limit=28.0)
    """, bars=make_bars([30.0, 30.0, 29.0, 27.0, 27.0], opens=[30.0, 30.0, 29.5, 29.0, 27.0]))
    [trade] = run.result.open_trades
    assert (trade.size, trade.entry_price, trade.entry_bar) == (2, 28.0, 3)


def test_cancel_answers_whether_the_order_was_still_working(backtest: Any) -> None:
    run = backtest("""
        def on_start(ctx):
            ctx.state["limit"] = ctx.buy(1, limit=20.0)
            ctx.state["market"] = ctx.buy(1)

        def on_bar(ctx, bar):
            if ctx.bar_index == 1:
                ctx.log(ctx.cancel(ctx.state["limit"]), ctx.cancel(ctx.state["limit"]),
                        ctx.cancel(ctx.state["market"]), ctx.cancel("o999"), len(ctx.orders()))
    """)
    assert run.messages == ["True False False False 0"]


# ---------------------------------------------------------------- close_position


def test_close_position_twice_does_not_flip_the_position(backtest: Any) -> None:
    run = backtest("""
        def on_bar(ctx, bar):
            if ctx.bar_index == 0:
                ctx.buy(10)
            if ctx.bar_index == 2:
                first, second = ctx.close_position(), ctx.close_position()
                ctx.log("closing", first is not None, second is not None)
            if ctx.bar_index >= 3:
                ctx.log(ctx.position().qty, len(ctx.orders()), ctx.close_position())
    """)
    assert run.messages[:3] == ["closing True True", "0.0 0 None", "0.0 0 None"]
    assert [t.size for t in run.result.trades] == [10]
    assert run.result.open_trades == []


def test_close_position_closes_a_short_too(backtest: Any) -> None:
    run = backtest("""
        def on_bar(ctx, bar):
            if ctx.bar_index == 0:
                ctx.sell(4)
            if ctx.bar_index == 2:
                ctx.close_position()
    """)
    assert [t.size for t in run.result.trades] == [-4]
    assert run.result.open_trades == []


# ---------------------------------------------------------------- views


PLAIN = (str, int, float, type(None), datetime)


def test_position_account_and_orders_are_named_tuples_of_plain_values(backtest: Any) -> None:
    run = backtest("""
        SEEN = []

        def on_bar(ctx, bar):
            if ctx.bar_index == 0:
                ctx.buy(10)
                ctx.buy(5, limit=20.0, tag="dip")
            if ctx.bar_index == 2:
                SEEN.extend([ctx.position(), ctx.account, ctx.orders()])

        def on_fill(ctx, fill):
            SEEN.append(fill)
    """)
    fill, position, account, orders = run.module["SEEN"]
    assert position == PositionView("T", 10.0, 30.0, 30.0, 0.0, 0.0)
    assert position.is_long and not position.is_short
    assert account == AccountView(cash=9_700.0, equity=10_000.0, buying_power=9_700.0,
                                  realized_pnl=0.0, commissions=0.0)
    assert orders == (OrderView("o2", "T", "buy", "limit", 5.0, 0.0, 20.0, None, "accepted",
                                "dip"),)
    assert (fill.order_id, fill.symbol, fill.side, fill.qty, fill.price) == (
        "o1", "T", "buy", 10.0, 30.0)
    for view in (position, account, orders[0], fill):
        assert isinstance(view, tuple) and hasattr(view, "_fields")
        assert all(type(v) in PLAIN for v in view), view
        with pytest.raises(AttributeError):
            setattr(view, view._fields[1], 1)  # read-only: a snapshot, not the broker's state


def test_a_flat_position_is_all_zeros(backtest: Any) -> None:
    run = backtest("""
        SEEN = []

        def on_start(ctx):
            SEEN.append(ctx.position())
    """)
    [flat] = run.module["SEEN"]
    assert (flat.symbol, flat.qty, flat.unrealized_pnl) == ("T", 0.0, 0.0)
    assert not flat.is_long and not flat.is_short


# ---------------------------------------------------------------- market data


def test_history_is_oldest_first_and_includes_the_current_bar(backtest: Any,
                                                              make_bars: Any) -> None:
    run = backtest("""
        SEEN = []

        def on_bar(ctx, bar):
            SEEN.append((ctx.history(3), ctx.history(2, "high"), ctx.bars(2)))
    """, bars=make_bars([10.0, 11.0, 12.0, 13.0], spread=0.5))
    seen = run.module["SEEN"]
    assert [s[0] for s in seen] == [(10.0,), (10.0, 11.0), (10.0, 11.0, 12.0),
                                    (11.0, 12.0, 13.0)]
    assert seen[3][1] == (12.5, 13.5)
    last_two = seen[3][2]
    assert all(type(b) is Bar for b in last_two)
    assert [b.close for b in last_two] == [12.0, 13.0]


def test_history_and_bars_of_a_symbol_with_no_bars_are_empty(backtest: Any) -> None:
    run = backtest("""
        def on_bar(ctx, bar):
            if ctx.bar_index == 0:
                ctx.log(ctx.history(5, symbol="NONE"), ctx.bars(5, symbol="NONE"))
    """)
    assert run.messages == ["() ()"]


@pytest.mark.parametrize("call, message", [
    ("ctx.history(0)", "n must be a whole number of bars, 1 or more, got 0"),
    ("ctx.history(2.0)", "n must be a whole number of bars, 1 or more, got 2.0"),
    ("ctx.history(3, 'adj_close')", "source must be one of open, high, low, close, volume"),
])
def test_history_names_a_bad_argument(backtest: Any, call: str, message: str) -> None:
    with pytest.raises(StrategyError, match=re.escape(message)):
        backtest(f"""
            def on_bar(ctx, bar):
                {call}
        """)


# ---------------------------------------------------------------- state, params, log


def test_state_persists_across_bars(backtest: Any) -> None:
    run = backtest("""
        def on_start(ctx):
            ctx.state["bars"] = 0

        def on_bar(ctx, bar):
            ctx.state["bars"] += 1
            ctx.state.setdefault("closes", []).append(bar.close)

        def on_stop(ctx):
            ctx.log(ctx.state["bars"], len(ctx.state["closes"]))
    """)
    assert run.messages == ["10 10"]


def test_params_are_the_run_params_and_read_only(backtest: Any) -> None:
    run = backtest("""
        PARAMS = {"n": 3}

        def on_start(ctx):
            ctx.log(dict(ctx.params))
            try:
                ctx.params["n"] = 4
            except TypeError:
                ctx.log("read-only")
    """, params={"n": 5})
    assert run.messages == ["{'n': 5}", "read-only"]


def test_log_lines_land_in_the_result_stamped_with_the_bar_time(backtest: Any) -> None:
    run = backtest("""
        def on_bar(ctx, bar):
            if ctx.bar_index in (0, 3):
                ctx.log("close", bar.close, "bar", ctx.bar_index)
    """)
    assert run.result.logs == ["2024-01-01T00:00:00 close 30.0 bar 0",
                               "2024-01-04T00:00:00 close 30.0 bar 3"]


# ---------------------------------------------------------------- hooks


def test_hooks_run_in_order_and_a_fill_is_reported_before_its_bar(backtest: Any,
                                                                 make_bars: Any) -> None:
    run = backtest("""
        SEEN = []

        def on_start(ctx):
            SEEN.append("start")

        def on_bar(ctx, bar):
            SEEN.append(("bar", bar.time.day, ctx.position().qty))
            if ctx.bar_index == 0:
                ctx.buy(2)

        def on_fill(ctx, fill):
            SEEN.append(("fill", fill.time.day, fill.price, ctx.position().qty))

        def on_stop(ctx):
            SEEN.append("stop")
    """, bars=make_bars([30.0, 31.0, 32.0], opens=[30.0, 30.5, 31.0]))
    assert run.module["SEEN"] == [
        "start",
        ("bar", 1, 0.0),
        ("fill", 2, 30.5, 2.0),  # the next bar's open, before that bar's on_bar
        ("bar", 2, 2.0),
        ("bar", 3, 2.0),
        "stop",
    ]


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("size, error, message", [
    ("True", "TypeError", "size must be a number, got bool"),
    ("'10'", "TypeError", "size must be a number, got str"),
    ("-1", "ValueError", "size must be a positive finite number, got -1"),
    ("0", "ValueError", "size must be a positive finite number, got 0"),
    ("float('nan')", "ValueError", "size must be a positive finite number, got nan"),
])
def test_a_bad_size_is_a_strategy_error_naming_file_and_line(
        backtest: Any, tmp_path: Path, size: str, error: str, message: str) -> None:
    with pytest.raises(StrategyError) as info:
        backtest(f"""
            def on_bar(ctx, bar):
                x = 1
                ctx.buy({size})
        """)
    assert str(info.value) == (f"{tmp_path / 'strategy.py'}:3: in on_bar at 2024-01-01 "
                               f"00:00:00: {error}: {message}")


@pytest.mark.parametrize("call, message", [
    ("ctx.buy(1, limit='30')", "TypeError: limit must be a number, got str"),
    ("ctx.sell(1, stop=-5.0)", "ValueError: stop must be a positive finite number, got -5.0"),
    ("ctx.order('T', 'short', 1)", "ValueError: side must be 'buy' or 'sell', got 'short'"),
    ("ctx.cancel(1)", "TypeError: order_id must be a string, got int"),
    ("ctx.position(symbol=1)", "TypeError: symbol must be a string, got int"),
])
def test_a_bad_order_argument_is_a_strategy_error_naming_file_and_line(
        backtest: Any, call: str, message: str) -> None:
    where = r"strategy\.py:2: in on_start at 2024-01-01 00:00:00: "
    with pytest.raises(StrategyError, match=where + re.escape(message) + "$"):
        backtest(f"""
            def on_start(ctx):
                {call}
        """)


def test_an_unknown_time_in_force_is_refused_at_the_call_naming_file_and_line(
        backtest: Any) -> None:
    # Checked by ctx itself, not by the broker: a live run's order is posted (it does not
    # wait for the host), so the same refusal happens at the same line in both.
    with pytest.raises(StrategyError,
                       match=r"strategy\.py:3: in on_bar at 2024-01-01 00:00:00: ValueError: "
                             r"tif must be one of day, fok, gtc, ioc, got 'forever'"):
        backtest("""
            def on_bar(ctx, bar):
                x = 1
                ctx.buy(1, tif="forever")
        """)


def test_an_order_the_broker_refuses_is_a_warning_not_an_error(backtest: Any) -> None:
    run = backtest("""
        def on_start(ctx):
            ctx.buy(1, symbol="NOPE")
            ctx.buy(1, limit=1.0)
    """)
    assert len(run.result.warnings) == 2
    assert "rejected: unknown symbol 'NOPE'" in run.result.warnings[0]
    assert "limit price 1 is 97% away from the last price 30" in run.result.warnings[1]


def test_an_exception_in_a_helper_names_the_helpers_line(backtest: Any) -> None:
    with pytest.raises(StrategyError,
                       match=r"strategy\.py:2: in on_stop: ZeroDivisionError: division by zero"):
        backtest("""
            def ratio(a, b):
                return a / b

            def on_stop(ctx):
                ratio(1, 0)
        """)


def test_a_data_error_during_the_run_stays_a_data_error(backtest: Any, make_bars: Any) -> None:
    def bars_then_a_bad_row() -> Any:
        yield from make_bars([30.0, 31.0])
        raise DataError("prices.csv:4:2: 'abc' is not a price")

    with pytest.raises(DataError, match=r"^prices\.csv:4:2: 'abc' is not a price$"):
        backtest("""
            def on_bar(ctx, bar):
                ctx.buy(1)
        """, bars=bars_then_a_bad_row())
