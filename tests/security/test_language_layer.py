"""The language layer: introspection, formatting, class machinery and syntax a strategy author
might use to climb out of RestrictedPython. Each test is one attack; see conftest.py."""

from __future__ import annotations

import pytest

from sandtrade.errors import StrategyError
from sandtrade.sandbox.runner import check_in_sandbox

from .conftest import LIMITS, Sandbox

# ---------------------------------------------------------------- introspection by attribute


def test_class_attribute_refused_at_check(sandbox: Sandbox) -> None:
    """``().__class__.__base__.__subclasses__()``: the classic first step, as syntax."""
    err = sandbox.refused("""
        def on_bar(ctx, bar):
            classes = ().__class__.__base__.__subclasses__()
            print(classes)
    """, '"__class__"', "starts with", line=2)
    sandbox.assert_host_unharmed(err)


def test_subclasses_via_getattr_with_computed_name(sandbox: Sandbox) -> None:
    """The same walk through ``getattr`` and names built at run time."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            u = "_" * 2
            cls = getattr((), u + "class" + u)
            print(getattr(getattr(cls, u + "base" + u), u + "subclasses" + u)())
    """, "AttributeError", "names starting with '_' are not allowed", line=3)
    sandbox.assert_host_unharmed(err)


def test_function_globals_refused_at_check(sandbox: Sandbox) -> None:
    """A hook's ``__globals__`` holds the guards and the real ``__builtins__``."""
    err = sandbox.refused("""
        def on_bar(ctx, bar):
            g = on_bar.__globals__
            print(g["__builtins__"]["open"]("CANARY_PATH").read())
    """, '"__globals__"', line=2)
    sandbox.assert_host_unharmed(err)


def test_function_globals_via_getattr(sandbox: Sandbox) -> None:
    """``getattr(fn, "__glob" + "als__")`` at run time."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            g = getattr(on_bar, "__glob" + "als__")
            print(g["__builtins__"]["open"]("CANARY_PATH").read())
    """, "names starting with '_' are not allowed", line=2)
    sandbox.assert_host_unharmed(err)


def test_builtins_name_refused_at_check(sandbox: Sandbox) -> None:
    """Reading ``__builtins__`` by name to reach ``open``/``__import__``."""
    err = sandbox.refused("""
        def on_start(ctx):
            print(__builtins__["open"]("CANARY_PATH").read())
    """, '"__builtins__"', line=2)
    sandbox.assert_host_unharmed(err)


def test_cve_2023_37271_generator_frame(sandbox: Sandbox) -> None:
    """CVE-2023-37271: ``gen.gi_frame.f_back.f_back.f_builtins`` climbs into the host's frame."""
    err = sandbox.refused("""
        def on_start(ctx):
            gen = (x for x in [1])
            frame = gen.gi_frame.f_back.f_back
            print(frame.f_builtins["__import__"]("os").system("cat CANARY_PATH"))
    """, '"gi_frame" is a restricted name', line=3)
    sandbox.assert_host_unharmed(err)


def test_generator_frame_via_getattr_with_computed_name(sandbox: Sandbox) -> None:
    """The gi_frame walk with ``getattr`` and a computed name (the RestrictedPython 7.3 fix)."""
    err = sandbox.fails("""
        def on_start(ctx):
            gen = (x for x in [1])
            frame = getattr(gen, "gi_" + "frame")
            print(getattr(frame, "f_" + "globals"))
    """, "'gi_frame' is not allowed in strategies", line=3)
    sandbox.assert_host_unharmed(err)


def test_coroutine_cr_frame_refused_at_check(sandbox: Sandbox) -> None:
    """A coroutine's ``cr_frame`` (async code is refused outright)."""
    err = sandbox.refused("""
        async def probe():
            return 1

        def on_start(ctx):
            coro = probe()
            print(coro.cr_frame.f_back.f_globals)
    """, "AsyncFunctionDef statements are not allowed", line=1)
    assert '"cr_frame" is a restricted name' in str(err)
    sandbox.assert_host_unharmed(err)


def test_async_generator_ag_frame_refused_at_check(sandbox: Sandbox) -> None:
    """An async generator's ``ag_frame``."""
    err = sandbox.refused("""
        async def agen():
            yield 1

        def on_start(ctx):
            print(agen().ag_frame.f_back)
    """, '"ag_frame" is a restricted name')
    sandbox.assert_host_unharmed(err)


def test_frame_attributes_via_getattr_refused(sandbox: Sandbox) -> None:
    """``f_back``/``f_globals``/``tb_frame`` read by computed names on whatever is at hand."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            for name in ("f_" + "back", "f_" + "globals", "tb_" + "frame", "cr_" + "frame",
                         "ag_" + "frame"):
                try:
                    getattr(ctx, name)
                except AttributeError as e:
                    print(e)
            getattr(on_bar, "f_" + "back")
    """, "'f_back' is not allowed in strategies", line=8)
    sandbox.assert_host_unharmed(err)


def test_traceback_frame_refused_at_check(sandbox: Sandbox) -> None:
    """``e.__traceback__.tb_frame.f_back`` from a caught exception."""
    err = sandbox.refused("""
        def on_bar(ctx, bar):
            try:
                1 / 0
            except ZeroDivisionError as e:
                print(e.__traceback__.tb_frame.f_back.f_globals)
    """, '"__traceback__"', '"tb_frame" is a restricted name', line=5)
    sandbox.assert_host_unharmed(err)


def test_exception_traceback_via_getattr(sandbox: Sandbox) -> None:
    """The traceback through ``getattr`` instead, then ``with_traceback`` games."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            try:
                1 / 0
            except ZeroDivisionError as e:
                e.with_traceback(None)
                tb = getattr(e, "__trace" + "back__")
                print(tb)
    """, "'__traceback__': names starting with '_' are not allowed", line=6)
    sandbox.assert_host_unharmed(err)


def test_exception_context_chain_refused(sandbox: Sandbox) -> None:
    """``__context__``/``__cause__`` of a host-raised exception, to reach host objects."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            try:
                ctx.history(-1)
            except ValueError as e:
                print(getattr(e, "__con" + "text__"), getattr(e, "__cau" + "se__"))
    """, "'__context__': names starting with '_'", line=5)
    sandbox.assert_host_unharmed(err)


# ---------------------------------------------------------------- format strings


def test_cve_2023_41039_str_format(sandbox: Sandbox) -> None:
    """CVE-2023-41039: ``"{0.__class__...}".format(x)`` traverses attributes in C."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            print("{0.__class__.__mro__[1].__subclasses__}".format(ctx))
    """, "'format' is not allowed in strategies", line=2)
    sandbox.assert_host_unharmed(err)


def test_unbound_str_format_and_format_map(sandbox: Sandbox) -> None:
    """``str.format(template, x)`` and ``template.format_map(...)``, the unbound routes."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            try:
                print("{0.__class__}".format_map({"0": ctx}))
            except AttributeError as e:
                print(e)
            print(str.format("{0.__init__.__globals__}", ctx))
    """, "'format' is not allowed in strategies", line=6)
    sandbox.assert_host_unharmed(err)


def test_format_via_getattr_with_computed_name(sandbox: Sandbox) -> None:
    """``getattr("{0.__class__}", "for" + "mat")``."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            fmt = getattr("{0.__class__.__init__.__globals__}", "for" + "mat")
            print(fmt(ctx))
    """, "'format' is not allowed in strategies", line=2)
    sandbox.assert_host_unharmed(err)


def test_fstring_attribute_traversal_refused_at_check(sandbox: Sandbox) -> None:
    """An f-string expression is ordinary code: ``f"{ctx.__class__}"`` is refused."""
    err = sandbox.refused("""
        def on_bar(ctx, bar):
            print(f"{ctx.__class__.__init__.__globals__!r:>{10}}")
    """, '"__class__"', line=2)
    sandbox.assert_host_unharmed(err)


def test_fstring_format_spec_cannot_traverse(sandbox: Sandbox) -> None:
    """A computed format spec holding a field path (``f"{x:{spec}}"``) is only a spec."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            spec = "{0.__class__.__init__.__globals__}"
            print(f"{ctx.params!r:>{12}}|{bar.close:{spec}}")
    """, "ValueError", "Invalid format specifier", line=3)
    sandbox.assert_host_unharmed(err)


def test_fstrings_with_conversions_and_specs_work_when_harmless(sandbox: Sandbox) -> None:
    """Conversions, nested specs and %-formatting still work (the guards must not over-block):
    the attempt to find a hole here fails by everything doing only what it says."""
    result = sandbox.run("""
        def on_stop(ctx):
            x, w, name = 5, 8, "acme"
            print(f"{x!r:>{w}}|{x:04d}|{name!s:^8}|{name!a}|{3.14159:.2f}|{x:{'>'}{w}}")
            print("%s=%05.1f" % (name, 2.5), "{}")
    """)
    assert result.logs == ["       5|0005|  acme  |'acme'|3.14|       5", "acme=002.5 {}"]
    sandbox.assert_host_unharmed(result)


def test_cve_2026_76825_string_formatter(sandbox: Sandbox) -> None:
    """CVE-2026-76825: ``string.Formatter().get_field("0.__globals__", ...)``."""
    err = sandbox.refused("""
        from string import Formatter

        def on_bar(ctx, bar):
            print(Formatter().get_field("0.__globals__", [on_bar], {}))
    """, "'string' is not allowed", line=1)
    sandbox.assert_host_unharmed(err)


# ---------------------------------------------------------------- type() and classes


def test_type_is_not_a_builtin(sandbox: Sandbox) -> None:
    """``type(ctx)`` to reach host classes and their unbound methods."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            Ctx = type(ctx)
            print(Ctx)
    """, "NameError", "'type' is not defined", line=2)
    sandbox.assert_host_unharmed(err)


def test_three_arg_type_via_unbound_library_method(sandbox: Sandbox) -> None:
    """``collections.Counter.copy(int)`` is ``int.__class__(int)``, the builtin ``type``; then
    3-argument ``type`` builds a ``str`` subclass whose ``__eq__`` is always True (a hole
    found by this suite, fixed in ``guarded_getattr``)."""
    err = sandbox.fails("""
        import collections

        def on_bar(ctx, bar):
            T = collections.Counter.copy(int)
            Liar = T("Liar", (str,), {"__eq__": lambda s, o: True, "__hash__": lambda s: 0})
            ctx.buy(1, symbol=Liar("ACME"))
    """, "'copy': unbound methods of library classes are not available", line=4)
    sandbox.assert_host_unharmed(err)


def test_unbound_method_of_library_class_as_decorator(sandbox: Sandbox) -> None:
    """The same gadget as a class decorator: ``@collections.Counter.copy`` turns the class
    into ``type``."""
    err = sandbox.fails("""
        import collections

        @collections.Counter.copy
        class Anything(object):
            pass

        def on_bar(ctx, bar):
            print(Anything("X", (object,), {}))
    """, "unbound methods of library classes are not available", line=3)
    sandbox.assert_host_unharmed(err)


def test_property_getter_of_library_class_refused(sandbox: Sandbox) -> None:
    """``NormalDist.mean.fget(obj)`` runs a library getter on any object (reads ``obj._mu``)."""
    err = sandbox.fails("""
        import statistics

        def on_bar(ctx, bar):
            getter = statistics.NormalDist.mean.fget
            print(getter(ctx))
    """, "'fget': unbound methods of library classes are not available", line=4)
    sandbox.assert_host_unharmed(err)


def test_metaclass_keyword_refused_at_check(sandbox: Sandbox) -> None:
    """A custom metaclass sees every class it builds and can hook attribute lookups."""
    err = sandbox.refused("""
        class Meta(object):
            pass

        class Evil(object, metaclass=Meta):
            pass
    """, 'The keyword argument "metaclass" is not allowed', line=4)
    sandbox.assert_host_unharmed(err)


def test_class_body_cannot_define_lookup_hooks(sandbox: Sandbox) -> None:
    """``__getattr__``/``__del__``/``__init_subclass__`` in a class body: hooks the host would
    call on its own frames."""
    err = sandbox.refused("""
        class Hook(object):
            def __getattr__(self, name):
                return name

            def __del__(self):
                print("finalizer")

            def __init_subclass__(cls):
                pass
    """, '"__getattr__" is an invalid variable name', '"__del__"', '"__init_subclass__"',
        line=2)
    sandbox.assert_host_unharmed(err)


def test_class_body_cannot_assign_dunder_names(sandbox: Sandbox) -> None:
    """``__class__ = ...`` / ``__slots__`` / ``__module__`` assignments in a class body (a fake
    ``__module__ = "strategy"`` would pass the base-class check)."""
    err = sandbox.refused("""
        class Fake(object):
            __module__ = "strategy"
            __slots__ = ("a",)
    """, '"__module__" is an invalid variable name', line=2)
    sandbox.assert_host_unharmed(err)


def test_subclassing_library_class_refused(sandbox: Sandbox) -> None:
    """Subclassing a library class (here ``collections.Counter``) to inherit its methods with a
    ``self`` of one's choosing."""
    err = sandbox.fails("""
        import collections

        class MyCounter(collections.Counter):
            pass
    """, "subclassing <class 'collections.Counter'> is not allowed")
    sandbox.assert_host_unharmed(err)


# ---------------------------------------------------------------- exceptions


def test_cve_2024_47532_attribute_error_obj(sandbox: Sandbox) -> None:
    """CVE-2024-47532: an ``AttributeError`` raised by a module wrapper carried the real module in
    ``.obj``; here from a proxy, from a host object and through ``from X import Y``."""
    err = sandbox.fails("""
        import statistics

        def on_bar(ctx, bar):
            leaked = []
            for probe in (lambda: statistics.sys, lambda: ctx.nothing):
                try:
                    probe()
                except AttributeError as e:
                    leaked.append(e.obj)
            print(leaked)
            leaked[0].modules["os"].system("cat CANARY_PATH")
    """, "NoneType object has no attribute 'modules'", line=11)
    sandbox.assert_host_unharmed(err)


def test_stop_iteration_value_carries_no_frame(sandbox: Sandbox) -> None:
    """A generator returns itself; ``StopIteration.value`` hands it back, but its frame stays
    out of reach."""
    err = sandbox.fails("""
        holder = []

        def gen():
            yield 1
            return holder[0]

        def on_bar(ctx, bar):
            g = gen()
            holder.append(g)
            next(g)
            try:
                next(g)
            except StopIteration as e:
                print(getattr(e.value, "gi_" + "frame"))
    """, "'gi_frame' is not allowed in strategies", line=14)
    sandbox.assert_host_unharmed(err)


def test_cve_2025_22153_except_star(sandbox: Sandbox) -> None:
    """CVE-2025-22153: ``try/except*`` with a lying ``ExceptionGroup.split`` corrupts memory in
    CPython 3.11 (gh-128049, not backported to 3.11)."""
    err = sandbox.refused("""
        def on_start(ctx):
            try:
                raise ValueError("x")
            except* ValueError:
                pass
    """, "TryStar statements are not allowed", line=2)
    sandbox.assert_host_unharmed(err)


def test_exception_group_is_not_available(sandbox: Sandbox) -> None:
    """Building the ``ExceptionGroup`` subclass of the except* exploit."""
    err = sandbox.fails("""
        def on_start(ctx):
            class Lying(ExceptionGroup):
                def split(self, matcher):
                    return 1
    """, "NameError", "'ExceptionGroup' is not defined", line=2)
    sandbox.assert_host_unharmed(err)


# ---------------------------------------------------------------- syntax


def test_decorator_cannot_reach_function_internals(sandbox: Sandbox) -> None:
    """A decorator receives the function object: its code, closure and globals stay shut."""
    err = sandbox.fails("""
        def steal(fn):
            for name in ("__code__", "__closure__", "__globals__", "__builtins__"):
                try:
                    print(getattr(fn, name))
                except AttributeError as e:
                    print(e)
            return getattr(fn, "__" + "globals__")

        @steal
        def on_bar(ctx, bar):
            pass
    """, "'__globals__': names starting with '_' are not allowed", line=7)
    sandbox.assert_host_unharmed(err)


def test_match_statement_refused_at_check(sandbox: Sandbox) -> None:
    """Class patterns read attributes in C (``case object(__class__=c)``), past ``_getattr_``."""
    err = sandbox.refused("""
        def on_bar(ctx, bar):
            match ctx:
                case object(_trading=t):
                    print(t)
    """, "Match statements are not allowed", line=2)
    sandbox.assert_host_unharmed(err)


def test_walrus_cannot_bind_a_guard_name(sandbox: Sandbox) -> None:
    """``(_getattr_ := getattr)`` would replace the attribute guard in the hook's scope."""
    err = sandbox.refused("""
        def on_bar(ctx, bar):
            if (_getattr_ := print):
                print(ctx._trading)
    """, '"_getattr_" is an invalid variable name', line=2)
    sandbox.assert_host_unharmed(err)


def test_lambda_default_cannot_shadow_a_guard(sandbox: Sandbox) -> None:
    """``lambda _write_=...:`` shadows the write guard inside the lambda."""
    err = sandbox.refused("""
        import math

        poke = lambda obj, _write_=lambda o: o: setattr(obj, "pi", 3)

        def on_start(ctx):
            poke(math)
    """, '"_write_" is an invalid variable name', line=3)
    sandbox.assert_host_unharmed(err)


def test_lambda_default_cannot_capture_private_attribute(sandbox: Sandbox) -> None:
    """A lambda default evaluated at definition time is still guarded."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            peek = lambda t=getattr(ctx, "_trad" + "ing"): t
            print(peek())
    """, "'_trading': names starting with '_' are not allowed", line=2)
    sandbox.assert_host_unharmed(err)


def test_star_unpacking_cannot_smuggle_private_names(sandbox: Sandbox) -> None:
    """``getattr(*args)`` and ``**kwargs`` calls go through ``_apply_`` to the same guard."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            args = [ctx, "_" + "trading"]
            first, *rest = args
            print(dict(**{"_getattr_": 1, "f": 2}))
            print(getattr(*[first] + rest))
    """, "'_trading': names starting with '_' are not allowed", line=5)
    sandbox.assert_host_unharmed(err)


def test_cve_2026_55830_positional_only_guard_shadowing(sandbox: Sandbox) -> None:
    """CVE-2026-55830: ``def f(_write_=..., /)`` skipped the name check and replaced the write
    guard inside ``f``, to poison shared modules."""
    err = sandbox.refused("""
        import math

        def poison(obj, _write_=lambda o: o, /):
            obj.pi = 3

        def on_start(ctx):
            poison(math)
    """, '"_write_" is an invalid variable name', line=3)
    sandbox.assert_host_unharmed(err)


def test_keyword_only_and_star_parameters_cannot_shadow_guards(sandbox: Sandbox) -> None:
    """The other parameter kinds: keyword-only, ``*args`` and ``**kwargs`` named like guards."""
    err = sandbox.refused("""
        def a(*, _getattr_=None):
            pass

        def b(*_getitem_):
            pass

        def c(**_getiter_):
            pass
    """, '"_getattr_" is an invalid variable name', '"_getitem_"', '"_getiter_"', line=1)
    sandbox.assert_host_unharmed(err)


def test_fullwidth_underscores_normalise_to_refused_names(sandbox: Sandbox) -> None:
    """NFKC: ``__ｃｌａｓｓ__`` and ``ｇｉ_ｆｒａｍｅ`` are ``__class__`` and ``gi_frame`` to
    Python, and so to the policy (a fullwidth ``＿`` is no identifier character at all)."""
    err = sandbox.refused("""
        def on_bar(ctx, bar):
            print(ctx.__\uff43\uff4c\uff41\uff53\uff53__)
            print((x for x in []).\uff47\uff49_\uff46\uff52\uff41\uff4d\uff45)
    """, '"__class__"', '"gi_frame" is a restricted name', line=2)
    sandbox.assert_host_unharmed(err)


def test_utf7_coding_cookie_hides_no_code(sandbox: Sandbox) -> None:
    """A ``coding: utf-7`` cookie would turn ``+AAo-`` into a newline; the host reads strategy
    files as UTF-8, so the hidden line stays a comment and never runs."""
    result = sandbox.run("""
        # -*- coding: utf-7 -*-
        def on_stop(ctx):
            print("visible") #+AAo-    print(ctx.+AF8AXw-class+AF8AXw-)
    """)
    assert result.logs == ["visible"]
    sandbox.assert_host_unharmed(result)


def test_null_byte_in_source_is_a_diagnostic(sandbox: Sandbox) -> None:
    """A NUL byte makes the compiler raise instead of report; it must be a diagnostic."""
    path = sandbox.write("x = 1\n")
    path.write_bytes(b"def on_bar(ctx, bar):\n    x = '\x00'\n")
    with pytest.raises(StrategyError) as info:
        check_in_sandbox(str(path), LIMITS)
    assert str(path) in str(info.value)
    assert "null bytes" in str(info.value)
    sandbox.assert_host_unharmed(info.value)


def test_exec_and_eval_refused_at_check(sandbox: Sandbox) -> None:
    """``exec``/``eval`` of a string would compile unrestricted code."""
    err = sandbox.refused("""
        def on_start(ctx):
            exec("import os")
            eval("__import__('os')")
    """, "Exec calls are not allowed", "Eval calls are not allowed", line=2)
    sandbox.assert_host_unharmed(err)


def test_introspection_builtins_are_missing(sandbox: Sandbox) -> None:
    """``globals``/``vars``/``locals``/``dir``/``compile``/``open``/``setattr`` as builtins."""
    err = sandbox.fails("""
        def on_start(ctx):
            missing = []
            for probe in (lambda: globals, lambda: vars, lambda: locals, lambda: dir,
                          lambda: compile, lambda: open, lambda: setattr, lambda: delattr,
                          lambda: input, lambda: memoryview, lambda: type):
                try:
                    probe()
                except NameError as e:
                    missing.append(str(e))
            print(len(missing))
            globals()["__builtins__"]
    """, "NameError", "'globals' is not defined", line=11)
    sandbox.assert_host_unharmed(err)


def test_printed_collector_exposes_nothing(sandbox: Sandbox) -> None:
    """``printed`` hands back the print collector; its log and the log's lines are private."""
    err = sandbox.fails("""
        def on_start(ctx):
            collector = printed
            print(getattr(collector, "_" + "log"))
    """, "'_log': names starting with '_' are not allowed", line=3)
    sandbox.assert_host_unharmed(err)
