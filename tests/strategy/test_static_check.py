"""What ``check`` finds by reading a strategy: code that compiles and loads but would fail when
its line runs (a builtin the sandbox lacks, ``.format``, an attribute the strategy API does
not have), each as ``file:line: message`` with what to write instead, and nothing in a good
file, however it binds its names."""

from __future__ import annotations

import textwrap

import pytest
from strategies_examples import EXAMPLES, example_path

from sandtrade.errors import StrategyError
from sandtrade.models import Bar
from sandtrade.strategy import Context
from sandtrade.strategy.context import TA, FillView, SignalView
from sandtrade.strategy.loader import load_strategy_source
from sandtrade.strategy.policy import ALLOWED_MODULES
from sandtrade.strategy.static_check import run_time_problems


def fields(record: type) -> str:
    """A record's fields and properties as the messages list them."""
    return ", ".join(sorted(n for n in dir(record) if not n.startswith("_")
                            and n not in dir(tuple) and n not in ("checked", "of")))


#: What ctx.ta offers, as the checker lists it.
INDICATOR_NAMES = ", ".join(n for n in dir(TA) if not n.startswith("_"))


def problems(source: str) -> list[str]:
    """``line: message`` of every problem found in ``source`` (dedented), in file order."""
    found = run_time_problems(textwrap.dedent(source).lstrip("\n"), "s.py")
    return [message.removeprefix("s.py:") for _, message in found]


#: Every way a good strategy binds names: parameters, defaults, nested functions, closures,
#: globals assigned in functions, names defined after their use, class bodies, comprehensions,
#: walrus, with/except/for targets, imports whole and by name, and the whole strategy API.
GOOD = '''
import collections
import datetime as dt
import math
from statistics import mean

PARAMS = {"fast": 10, "slow": 20}
COUNTER = 0


class Tracker(object):
    limit = 3
    doubled = [limit * 2]

    def __init__(self, size=limit):
        self.size = size
        self.seen = collections.deque(maxlen=size)

    def add(self, value):
        self.seen.append(value)
        return Tracker.limit + len(self.seen) + later_constant

    def __eq__(self, other):
        return isinstance(other, Tracker) and self.size == other.size


def helper(ctx, n):
    def inner(k):
        return n + k + len(ctx.history(k))

    total = inner(1)
    squares = [i * i for i in range(n) if i % 2]
    pairs = {k: v for k, v in zip(squares, squares)}
    if (found := total) > 0:
        total += found
    for idx, (x, y) in enumerate(pairs.items()):
        total += idx + x + y
    lam = lambda a, b=n: a + b  # noqa: E731
    return total + sum(s for s in squares) + lam(1) + math.sqrt(4) + mean([1, 2])


def set_global(value):
    global COUNTER, assigned_in_a_function
    COUNTER = value
    assigned_in_a_function = value * 2


def on_start(ctx):
    ctx.state.setdefault("bars", 0)
    print("starting", dt.datetime(2020, 1, 1).year, dt.timedelta(days=1), printed)


def on_bar(ctx, bar):
    fast = ctx.ta.sma(ctx.params["fast"])
    slow = ctx.ta.sma(ctx.params["slow"])
    bands = ctx.ta.bb(20)
    T.add(bar.close)
    ctx.state["bars"] = ctx.state.get("bars", 0) + 1
    try:
        risky = 1 / (bar.close - bar.open)
    except (ZeroDivisionError, ValueError) as error:
        risky = str(error)
    with_target = [row for row in ctx.bars(3) if row.volume > 0]
    if ctx.ta.crossover(fast, slow) and bands.upper[0] > 0:
        ctx.close_position()
        ctx.buy(tag=bar.symbol)
    elif ctx.ta.crossunder(fast, slow):
        ctx.sell(symbol=bar.symbol, stop=bar.low)
    del risky
    set_global(helper(ctx, 3))
    ctx.log(f"{ctx.account.equity:.2f} {ctx.position().qty} {COUNTER} {assigned_in_a_function}")
    values = [ctx.ta.ema(n)[0] for n in (5, 10)]
    return values, with_target, sorted(ctx.orders(), key=lambda o: o.id)


def on_fill(ctx, fill):
    ctx.log(fill.side, fill.qty, fill.price, fill.order_id, fill.commission, fill.time)


def on_signal(ctx, signal):
    if signal.action == "buy":
        ctx.order(signal.symbol, "buy", signal.qty or 1)


def on_stop(ctx):
    print(f"{ctx.state['bars']} {T.size} {Tracker.doubled} {ctx.time} {ctx.symbol}")


T = Tracker()
later_constant = 1
'''


def test_a_good_strategy_has_no_problems() -> None:
    assert problems(GOOD) == []


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_shipped_examples_have_no_problems(name: str) -> None:
    assert run_time_problems(example_path(name).read_text(), name) == []


def test_the_examples_from_the_issue_are_found_with_what_to_write_instead() -> None:
    assert problems("""
        def on_bar(ctx, bar):
            data = open("/etc/passwd").read()
            ctx.log("close {}".format(bar.close))
            cloud = ctx.ta.ichimoku(9, 26)
    """) == [
        "2: 'open' is not available in strategies (no file access; keep data in ctx.state, "
        "which lasts across restarts)",
        "3: 'format' is not allowed in strategies (a format string can reach attributes the "
        'sandbox hides); use an f-string, e.g. f"{price:.2f}"',
        f"4: ctx.ta has no indicator 'ichimoku' (available: {INDICATOR_NAMES})",
    ]


# ---------------------------------------------------------------- names


@pytest.mark.parametrize("name, hint", [
    ("open", "no file access"),
    ("eval", "cannot run code made from strings"),
    ("compile", "cannot run code made from strings"),
    ("globals", "no introspection"),
    ("vars", "no introspection"),
    ("type", "use isinstance(x, SomeClass)"),
    ("setattr", "write obj.name = value"),
    ("input", "PARAMS"),
    ("format", "f-string"),
    ("NotImplemented", "a Python builtin the sandbox does not provide"),
])
def test_a_builtin_the_sandbox_lacks_is_named_with_the_alternative(name: str, hint: str) -> None:
    found = problems(f"""
        def on_bar(ctx, bar):
            x = {name}
    """)
    assert len(found) == 1 and found[0].startswith(f"2: {name!r} is not available in "
                                                   "strategies ("), found
    assert hint in found[0]


def test_exec_and_eval_calls_are_left_to_the_compiler() -> None:
    """RestrictedPython refuses ``exec(...)``/``eval(...)`` itself: not reported twice."""
    assert problems("""
        def on_bar(ctx, bar):
            exec("x = 1")
    """) == []


def test_a_misspelled_name_suggests_the_close_one() -> None:
    assert problems("""
        LIMIT = 3

        def on_bar(ctx, bar):
            return LIMT
    """) == ["4: name 'LIMT' is not defined; did you mean 'LIMIT'?"]


def test_a_local_of_another_function_is_not_defined_here() -> None:
    assert problems("""
        def on_bar(ctx, bar):
            fast = ctx.ta.sma(10)

        def on_fill(ctx, fill):
            if fill.price > fast[0]:
                ctx.close_position()
    """) == ["5: name 'fast' is not defined here: it is local to on_bar() (pass it as an "
             "argument, or keep it in ctx.state)"]


@pytest.mark.parametrize("source, line", [
    # decorated, in a class, in a comprehension over several lines, in a lambda default
    ("def deco(f):\n    return f\n\n\n@deco\ndef g():\n    return bar\n", 7),
    ("class K(object):\n    limit = 3\n\n    def f(self):\n        return limit\n", 5),
    ("def f(xs):\n    return [\n        x + bar\n        for x in xs\n    ]\n", 3),
    ("def f():\n    return lambda: bar\n", 2),
])
def test_scopes_are_the_compilers(source: str, line: int) -> None:
    """A name bound elsewhere (here ``bar`` of a hook, ``limit`` of a class body) is not
    visible in these scopes, whatever opens them."""
    found = problems("def on_bar(ctx, bar):\n    pass\n\n\n" + source)
    assert [f.split(":")[0] for f in found] == [str(line + 4)], found
    assert "is not defined here: it is local to" in found[0]


def test_two_scopes_alike_on_one_line_fall_back_to_names_bound_nowhere() -> None:
    """Two lambdas on one line cannot be told apart in the symbol table: a name bound
    somewhere else is then not reported (no guessing), one bound nowhere still is."""
    assert problems("""
        def on_bar(ctx, bar):
            pass

        def f():
            return (lambda: bar), (lambda: nowhere)
    """) == ["5: name 'nowhere' is not defined"]


def test_a_try_that_catches_the_error_keeps_the_line() -> None:
    assert problems("""
        def on_bar(ctx, bar):
            try:
                cloud = ctx.ta.ichimoku(12)
                data = open("x")
            except (AttributeError, NameError):
                cloud = None
            try:
                other = vwap
            except Exception:
                pass
            try:
                fails = ctx.ta.ichimoku(3)
            except ValueError:
                pass
    """) == [f"12: ctx.ta has no indicator 'ichimoku' (available: {INDICATOR_NAMES})"]


# ---------------------------------------------------------------- attributes


@pytest.mark.parametrize("code, message", [
    ('"{0}".format_map({"0": 1})', "'format_map' is not allowed in strategies"),
    ("Tracker.mro()", "'mro' is not allowed in strategies (no class introspection); use "
                      "isinstance()"),
    ('getattr(ctx, "_trading")', "getattr(..., '_trading'): names starting with '_' are not "
                                 "allowed in strategies"),
    ('getattr("x", "format")', "'format' is not allowed in strategies"),
    ("print(bar, file=bar)", "print(file=...) is not available in strategies: print writes to "
                             "the strategy's log"),
])
def test_what_the_guard_refuses_at_run_time_is_found(code: str, message: str) -> None:
    found = problems(f"""
        class Tracker(object):
            pass

        def on_bar(ctx, bar):
            x = {code}
    """)
    assert len(found) == 1 and found[0].startswith(f"5: {message}"), found


def test_every_public_name_of_the_api_is_accepted_and_no_other() -> None:
    """The lists come from the classes themselves: nothing to keep in step by hand."""
    names = [n for n in dir(Context) if not n.startswith("_")]
    indicators = [n for n in dir(TA) if not n.startswith("_")]
    lines = [f"    x = ctx.{n}" for n in names] + [f"    x = ctx.ta.{n}" for n in indicators]
    assert problems("def on_bar(ctx, bar):\n" + "\n".join(lines)) == []
    assert problems("def on_bar(ctx, bar):\n    x = ctx.postion()\n") == [
        f"2: ctx has no attribute 'postion'; did you mean ctx.position? (available: "
        f"{', '.join(names)})"]


def test_a_hooks_bar_fill_and_signal_are_checked_against_their_records() -> None:
    assert problems("""
        def on_bar(ctx, bar):
            return bar.price

        def on_fill(ctx, fill):
            return fill.size

        def on_signal(ctx, signal):
            return signal.side
    """) == [
        f"2: bar has no attribute 'price' (available: {fields(Bar)})",
        f"5: fill has no attribute 'size'; did you mean fill.side? (available: "
        f"{fields(FillView)})",
        f"8: signal has no attribute 'side'; did you mean signal.id? (available: "
        f"{fields(SignalView)})",
    ]


def test_ctx_is_read_only() -> None:
    assert problems("""
        def on_bar(ctx, bar):
            ctx.count = 1
            ctx.params["fast"] = 5
            del ctx.ta.sma
    """) == [
        "2: ctx.count cannot be assigned: ctx is read-only; keep your own values in ctx.state "
        '(ctx.state["count"] = ...)',
        "3: ctx.params is read-only (the run's parameters); keep values that change in "
        "ctx.state",
        '4: ctx.ta.sma cannot be deleted: ctx.ta is read-only; keep your own values in '
        'ctx.state (ctx.state["sma"] = ...)',
    ]


def test_ctx_passed_along_is_checked_and_ctx_reassigned_is_not() -> None:
    assert problems("""
        def size(ctx, risk):
            return ctx.acount.equity * risk

        def closure(ctx):
            return lambda: ctx.nope

        def other(ctx):
            ctx = {"a": 1}
            return ctx.items()

        def not_a_def():
            return lambda ctx: ctx.anything
    """) == [
        "2: ctx has no attribute 'acount'; did you mean ctx.account? (available: "
        + ", ".join(n for n in dir(Context) if not n.startswith("_")) + ")",
        "5: ctx has no attribute 'nope' (available: "
        + ", ".join(n for n in dir(Context) if not n.startswith("_")) + ")",
    ]


def test_an_attribute_the_file_tests_for_is_not_reported() -> None:
    assert problems("""
        def on_bar(ctx, bar):
            if hasattr(ctx.ta, "ichimoku"):
                return ctx.ta.ichimoku(12)
            return getattr(ctx, "futures", None)
    """) == []


def test_a_module_imported_whole_is_checked_against_what_its_proxy_exposes() -> None:
    found = problems("""
        import datetime
        import math as m

        def on_bar(ctx, bar):
            return datetime.now(), m.sqroot(2), m.sqrt(2), datetime.datetime.now()
    """)
    assert found == [
        "5: datetime.now is not available in strategies; did you mean datetime.datetime.now? "
        f"(available: {', '.join(sorted(ALLOWED_MODULES['datetime'][1]))})",
        "5: math.sqroot is not available in strategies; did you mean m.sqrt? "
        f"(available: {', '.join(sorted(ALLOWED_MODULES['math'][1]))})",
    ]


def test_a_module_name_bound_again_is_not_checked() -> None:
    assert problems("""
        import json

        def on_bar(ctx, bar):
            return json.anything

        json = {"anything": 1}
    """) == []


# ---------------------------------------------------------------- as part of the check


def test_the_check_reports_them_with_the_hook_mistakes_in_file_order() -> None:
    source = ("def on_bar(ctx, bar):\n    return open('x')\n\n\n"
              "def on_fil(ctx, fill):\n    pass\n\n\n"
              "def on_stop(ctx):\n    ctx.ta.ichimoku(1)\n")
    with pytest.raises(StrategyError) as info:
        load_strategy_source(source, "s.py", restricted=True, check=True)
    assert [line.split(":")[1] for line in str(info.value).splitlines()] == ["2", "5", "10"]
    assert "on_fil is not a strategy hook; did you mean on_fill?" in str(info.value)


def test_loading_for_a_run_does_not_refuse_them() -> None:
    """A back-test or a live run loads without the look: a strategy stored before the check
    learnt something new still starts, and only fails if the line runs."""
    source = "def on_bar(ctx, bar):\n    if bar.close < 0:\n        ctx.ta.ichimoku(1)\n"
    assert load_strategy_source(source, "s.py", restricted=True).hooks.keys() == {"on_bar"}


def test_an_unparsable_file_is_left_to_the_compiler() -> None:
    assert run_time_problems("def on_bar(ctx, bar)\n    pass\n", "s.py") == []
    assert run_time_problems("x = " + "-" * 100_000 + "1\n", "s.py") == []


def test_the_good_strategy_passes_the_whole_check() -> None:
    """The good strategy above is real code: it compiles under the policy and loads."""
    strategy = load_strategy_source(textwrap.dedent(GOOD), "good.py", restricted=True,
                                    check=True)
    assert sorted(strategy.hooks) == ["on_bar", "on_fill", "on_signal", "on_start", "on_stop"]
