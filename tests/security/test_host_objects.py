"""Host objects: abusing ``ctx``, ``bar`` and the values the strategy API hands in or takes
back (look-alike strings and numbers, NaN, absurd sizes, private attributes, the broker behind
the context, mutation of what should be read-only). Each test is one attack."""

from __future__ import annotations

from sandtrade.errors import StrategyError
from sandtrade.sandbox.supervisor import SandboxKilled

from .conftest import LIMITS, Sandbox, run_file

# ---------------------------------------------------------------- private state and the broker


def test_ctx_private_trading_refused_at_check(sandbox: Sandbox) -> None:
    """``ctx._trading._broker``: the broker, with every account in it."""
    err = sandbox.refused("""
        def on_bar(ctx, bar):
            broker = ctx._trading._broker
            broker.open_account("mine", 10 ** 12)
    """, '"_trading" is an invalid attribute name', line=2)
    sandbox.assert_host_unharmed(err)


def test_ctx_private_data_via_getattr(sandbox: Sandbox) -> None:
    """``getattr(ctx, "_da" + "ta")`` at run time (``ctx`` takes the fast attribute path)."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            data = getattr(ctx, "_da" + "ta")
            data["ACME"].bars.clear()
    """, "'_data': names starting with '_' are not allowed", line=2)
    sandbox.assert_host_unharmed(err)


def test_broker_through_bound_method_refused_at_check(sandbox: Sandbox) -> None:
    """From a bound method to its object and function: ``ctx.buy.__self__``/``__func__``."""
    err = sandbox.refused("""
        def on_bar(ctx, bar):
            owner = ctx.buy.__self__
            fn = ctx.buy.__func__
            print(owner, fn.__globals__)
    """, '"__self__" is an invalid attribute name', '"__func__"', line=2)
    sandbox.assert_host_unharmed(err)


def test_context_through_indicator_back_reference(sandbox: Sandbox) -> None:
    """``ctx.ta._ctx._trading``: the indicator object points back at the context."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            back = getattr(ctx.ta, "_c" + "tx")
            print(back)
    """, "'_ctx': names starting with '_' are not allowed", line=2)
    sandbox.assert_host_unharmed(err)


def test_trading_another_account(sandbox: Sandbox) -> None:
    """Orders carry no account: ``ctx.buy(..., account="house")`` is not a thing."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            ctx.buy(1, account="house")
    """, "TypeError", "unexpected keyword argument 'account'", line=2)
    sandbox.assert_host_unharmed(err)


def test_cancel_of_an_order_that_is_not_ours_does_nothing(sandbox: Sandbox) -> None:
    """Guessing other order ids (another account's, in live trading) cancels nothing."""
    result = sandbox.run("""
        def on_bar(ctx, bar):
            if ctx.bar_index == 0:
                print([ctx.cancel("o" + str(k)) for k in range(1, 6)], ctx.orders())
    """)
    assert result.logs == ["[False, False, False, False, False] ()"]
    sandbox.assert_host_unharmed(result)


# ---------------------------------------------------------------- look-alike values


def test_str_subclass_symbol_refused(sandbox: Sandbox) -> None:
    """A ``str`` whose ``__eq__`` is always True would pass ``symbol in allowed`` checks."""
    err = sandbox.fails("""
        class Liar(str):
            def __eq__(self, other):
                return True

        def on_bar(ctx, bar):
            ctx.buy(1, symbol=Liar("ANY"))
    """, "class Liar: subclassing <class 'str'> is not allowed")
    sandbox.assert_host_unharmed(err)


def test_always_equal_object_as_symbol_refused(sandbox: Sandbox) -> None:
    """A plain object with an always-True ``__eq__`` (allowed in class bodies) as the symbol."""
    err = sandbox.fails("""
        class Anything(object):
            def __eq__(self, other):
                return True

        def on_bar(ctx, bar):
            ctx.buy(1, symbol=Anything())
    """, "TypeError", "symbol must be a string, got Anything", line=6)
    sandbox.assert_host_unharmed(err)


def test_always_equal_object_as_indicator_source_refused(sandbox: Sandbox) -> None:
    """The same object as an indicator's source field, to index the host's bar tuples."""
    err = sandbox.fails("""
        class Anything(object):
            def __eq__(self, other):
                return True

        def on_bar(ctx, bar):
            print(ctx.history(5, Anything()))
    """, "TypeError", "unhashable type: 'Anything'", line=6)
    sandbox.assert_host_unharmed(err)


def test_float_subclass_size_refused(sandbox: Sandbox) -> None:
    """A ``float`` that compares below every limit while being huge."""
    err = sandbox.fails("""
        class Small(float):
            def __le__(self, other):
                return True

        def on_bar(ctx, bar):
            ctx.buy(Small(1e12))
    """, "class Small: subclassing <class 'float'> is not allowed")
    sandbox.assert_host_unharmed(err)


def test_number_like_object_as_size_refused(sandbox: Sandbox) -> None:
    """An object whose comparisons lie, passed as a size."""
    err = sandbox.fails("""
        class Tiny(object):
            def __lt__(self, other):
                return True

            def __le__(self, other):
                return True

        def on_bar(ctx, bar):
            ctx.buy(Tiny())
    """, "TypeError", "size must be a number, got Tiny", line=9)
    sandbox.assert_host_unharmed(err)


def test_bool_size_refused(sandbox: Sandbox) -> None:
    """``True`` is an ``int`` to ``isinstance``; the API wants a real number."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            ctx.sell(True)
    """, "TypeError", "size must be a number, got bool", line=2)
    sandbox.assert_host_unharmed(err)


def test_nan_size_refused(sandbox: Sandbox) -> None:
    """NaN passes every ``not (x > limit)`` check."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            ctx.buy(float("nan"))
    """, "ValueError", "size must be a positive finite number, got nan", line=2)
    sandbox.assert_host_unharmed(err)


def test_infinite_limit_price_refused(sandbox: Sandbox) -> None:
    """An infinite limit price (and a negative size) on the explicit order call."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            try:
                ctx.order("ACME", "sell", -5.0)
            except ValueError as e:
                print(e)
            ctx.order("ACME", "buy", 1, limit=float("inf"))
    """, "ValueError", "limit must be a positive finite number, got inf", line=6)
    sandbox.assert_host_unharmed(err)


def test_huge_size_cannot_harm_the_host(sandbox: Sandbox) -> None:
    """``ctx.buy(1e308)``: finite, so it passes the number checks; whatever the broker does with
    it stays inside the worker's run (see the next test for what it should do)."""
    outcome: object
    try:
        outcome = sandbox.run("""
            def on_bar(ctx, bar):
                ctx.buy(1e308)
                ctx.sell(1e300, limit=bar.close)
        """)
    except (StrategyError, SandboxKilled) as e:
        assert not isinstance(e, SandboxKilled) or e.reason == "protocol", e
        outcome = e
    sandbox.assert_host_unharmed(outcome)


def test_huge_size_order_is_rejected(sandbox: Sandbox) -> None:
    """``ctx.buy(1e308)`` is rejected (it once overflowed to NaN equity), the result comes back."""
    sandbox.host_checked = True  # the host is checked by test_huge_size_cannot_harm_the_host
    result = sandbox.run("""
        def on_bar(ctx, bar):
            ctx.buy(1e308)
    """)
    assert not result.trades and not result.open_trades
    assert "beyond any account" in result.warnings[0]


def test_history_of_a_billion_bars_is_bounded(sandbox: Sandbox) -> None:
    """``ctx.history(10**9)``: asks the context to keep a billion bars; it keeps what exists."""
    from sandtrade.backtest.request import BacktestRequest, DataSpec
    from sandtrade.sandbox.runner import SandboxRunner

    path = sandbox.write("""
        def on_bar(ctx, bar):
            closes = ctx.history(10 ** 9)
            if ctx.bar_index % 50 == 49:
                print(len(closes), len(ctx.bars(10 ** 9)))
    """)
    runner = SandboxRunner(LIMITS)
    result = runner.run(BacktestRequest(strategy=str(path), data=[DataSpec(path=str(sandbox.csv))]))
    assert result.logs == ["50 50", "100 100", "150 150", "200 200"]
    assert runner.last_worker is not None and runner.last_worker.peak_rss < 256 << 20
    sandbox.assert_host_unharmed(result)


def test_history_size_past_the_machine_is_an_error(sandbox: Sandbox) -> None:
    """``ctx.history(10**30)``: no int-to-size overflow crash, an error with file:line."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            ctx.history(10 ** 30)
    """, "OverflowError", line=2)
    sandbox.assert_host_unharmed(err)


# ---------------------------------------------------------------- mutation


def test_ctx_params_are_read_only(sandbox: Sandbox) -> None:
    """``ctx.params["fast"] = 1`` from a hook."""
    err = sandbox.fails("""
        PARAMS = {"fast": 5}

        def on_bar(ctx, bar):
            ctx.params["fast"] = 1
    """, "TypeError", line=4)
    sandbox.assert_host_unharmed(err)


def test_params_proxy_equality_trick_reaches_only_a_private_copy(sandbox: Sandbox) -> None:
    """``ctx.params == X()`` hands ``X.__eq__`` the dict behind the read-only proxy (a CPython
    3.11 mappingproxy leak); it is the run's private copy, so the recorded params stay."""
    result = sandbox.run("""
        PARAMS = {"fast": 5}

        class Grab(object):
            def __eq__(self, other):
                other["fast"] = 999
                return True

        def on_start(ctx):
            ctx.params == Grab()
            PARAMS["fast"] = 998
            print(ctx.params["fast"])
    """)
    assert result.logs == ["999"]
    assert result.params == {"fast": 5}
    sandbox.assert_host_unharmed(result)


def test_bar_and_views_are_read_only(sandbox: Sandbox) -> None:
    """Rewriting the bar or the position view the broker will trust."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            pos = ctx.position()
            try:
                pos.qty = 10 ** 9
            except TypeError as e:
                print(e)
            bar.close = 0.0
    """, "TypeError", line=7)
    sandbox.assert_host_unharmed(err)


def test_indicator_series_is_read_only(sandbox: Sandbox) -> None:
    """Rewriting an indicator's state (``first_valid_bar`` feeds the warm-up statistic)."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            s = ctx.ta.sma(3)
            s.first_valid_bar = -1
    """, "TypeError", line=3)
    sandbox.assert_host_unharmed(err)


def test_ctx_attributes_and_methods_cannot_be_replaced(sandbox: Sandbox) -> None:
    """``ctx.symbol = ...`` and ``ctx.buy = ...`` (to redirect the engine's own calls)."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            try:
                ctx.symbol = "OTHER"
            except TypeError as e:
                print(e)
            ctx.buy = print
    """, "TypeError", line=6)
    sandbox.assert_host_unharmed(err)


def test_print_to_a_host_object_refused(sandbox: Sandbox) -> None:
    """``print(x, file=obj)`` calls ``obj.write``: any host object with a ``write``."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            print("owned", file=ctx.state)
    """, "print(file=...) is not available in strategies", line=2)
    sandbox.assert_host_unharmed(err)


def test_indicator_cache_refused_at_check(sandbox: Sandbox) -> None:
    """``ctx.ta._cache``: the cached series, shared by every indicator call."""
    err = sandbox.refused("""
        def on_bar(ctx, bar):
            ctx.ta._cache.clear()
    """, '"_cache" is an invalid attribute name', line=2)
    sandbox.assert_host_unharmed(err)


def test_mutating_params_in_a_hook_changes_no_recorded_params(sandbox: Sandbox) -> None:
    """``PARAMS`` is the strategy's own dict: changing it in a hook (even adding dunder keys)
    changes neither what the run uses nor what the result records."""
    path = sandbox.write("""
        PARAMS = {"fast": 5}

        def on_start(ctx):
            PARAMS["fast"] = "owned"
            PARAMS["__class__"] = PARAMS
            print(ctx.params["fast"])
    """)
    result = run_file(path, sandbox.csv, params={"fast": "7"})
    assert result.logs == ["7"] and result.params == {"fast": 7}
    sandbox.assert_host_unharmed(result)
