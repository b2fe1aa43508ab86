"""Modules: importing what gives the OS, the interpreter or unguarded lookups, and reaching it
through the attributes of the modules strategies may import. Each test is one attack."""

from __future__ import annotations

import pytest

from .conftest import Sandbox

#: Each of these re-opens the sandbox (processes, files, FFI, introspection, unguarded lookups).
DANGEROUS_MODULES = {
    "os": "os.system('cat CANARY_PATH')",
    "sys": "sys.modules['os'].system('cat CANARY_PATH')",
    "subprocess": "subprocess.run(['cat', 'CANARY_PATH'])",
    "socket": "socket.create_connection(('127.0.0.1', 22))",
    "ctypes": "ctypes.CDLL(None).system(b'cat CANARY_PATH')",
    "importlib": "importlib.import_module('os').system('id')",
    "pickle": "pickle.loads(b'cos\\nsystem\\n(S\\'id\\'\\ntR.')",
    "marshal": "marshal.loads(b'')",
    "gc": "gc.get_referrers(ctx)",
    "inspect": "inspect.currentframe().f_back.f_globals",
    "builtins": "builtins.open('CANARY_PATH').read()",
    "threading": "threading.Thread(target=print).start()",
    "string": "string.Formatter().get_field('0.__globals__', [print], {})",
    "typing": "typing.get_type_hints(on_start, globalns={})",
    "operator": "operator.attrgetter('__globals__')(on_start)",
    "functools": "functools.reduce(print, [1, 2])",
}


@pytest.mark.parametrize("module", sorted(DANGEROUS_MODULES))
def test_import_of_dangerous_module_refused(sandbox: Sandbox, module: str) -> None:
    """``import <module>`` followed by its classic abuse."""
    err = sandbox.refused(f"""
        import {module}

        def on_start(ctx):
            print({DANGEROUS_MODULES[module]})
    """, f"'{module}' is not allowed", "allowed: bisect, collections", line=1)
    sandbox.assert_host_unharmed(err)


def test_from_import_of_dangerous_name_refused(sandbox: Sandbox) -> None:
    """``from os import system``: ``IMPORT_FROM`` looks the name up in C."""
    err = sandbox.refused("""
        from os import system

        def on_start(ctx):
            system("cat CANARY_PATH")
    """, "'os' is not allowed", line=1)
    sandbox.assert_host_unharmed(err)


def test_submodule_imports_refused(sandbox: Sandbox) -> None:
    """``import os.path`` / ``import json.decoder``: dotted names past the allow-list."""
    err = sandbox.refused("""
        import json.decoder
        import os.path
    """, "'json.decoder' is not allowed", "'os.path' is not allowed", line=1)
    sandbox.assert_host_unharmed(err)


def test_module_attribute_by_computed_name_refused(sandbox: Sandbox) -> None:
    """``getattr(json, "o" + "s")``: a name no static scan can see, refused by the proxy."""
    err = sandbox.fails("""
        import json

        def on_bar(ctx, bar):
            name = "o" + "s"
            getattr(json, name).system("cat CANARY_PATH")
    """, "json.os is not available in strategies", line=5)
    sandbox.assert_host_unharmed(err)


def test_relative_and_dunder_imports_refused(sandbox: Sandbox) -> None:
    """``from . import x`` and ``__import__("os")``."""
    err = sandbox.refused("""
        from . import secrets

        def on_start(ctx):
            __import__("os").system("id")
    """, "import from '' is not allowed", '"__import__" is an invalid variable name', line=1)
    sandbox.assert_host_unharmed(err)


def test_statistics_sys_unreachable(sandbox: Sandbox) -> None:
    """``statistics.sys.modules["os"]`` (a real route on 3.11-3.13)."""
    err = sandbox.fails("""
        import statistics

        def on_bar(ctx, bar):
            statistics.sys.modules["os"].system("cat CANARY_PATH")
    """, "statistics.sys is not available in strategies", line=4)
    sandbox.assert_host_unharmed(err)


def test_datetime_sys_unreachable(sandbox: Sandbox) -> None:
    """``datetime.sys`` (3.11's pure-Python datetime imports sys at module level)."""
    err = sandbox.fails("""
        import datetime

        def on_bar(ctx, bar):
            print(getattr(datetime, "sys").modules["os"])
    """, "datetime.sys is not available in strategies", line=4)
    sandbox.assert_host_unharmed(err)


def test_re_enum_builtins_unreachable(sandbox: Sandbox) -> None:
    """``re.enum.bltns``: the real builtins module behind ``re``'s flag enum."""
    err = sandbox.fails("""
        import re

        def on_bar(ctx, bar):
            print(re.enum.bltns.open("CANARY_PATH").read())
    """, "re.enum is not available in strategies", line=4)
    sandbox.assert_host_unharmed(err)


def test_re_flag_members_lead_nowhere(sandbox: Sandbox) -> None:
    """From an exposed flag (an ``enum`` member) to its module through public attributes."""
    err = sandbox.fails("""
        import re

        def on_bar(ctx, bar):
            flag = re.IGNORECASE
            print(flag.name, flag.value)
            print(getattr(flag, "__mod" + "ule__"))
    """, "'__module__': names starting with '_'", line=6)
    sandbox.assert_host_unharmed(err)


def test_json_codecs_open_unreachable(sandbox: Sandbox) -> None:
    """``json.codecs.open(path, "w")`` writes files."""
    err = sandbox.fails("""
        import json

        def on_bar(ctx, bar):
            json.codecs.open("CANARY_PATH", "w").write("owned")
    """, "json.codecs is not available in strategies", line=4)
    sandbox.assert_host_unharmed(err)


def test_collections_userstring_format_unreachable(sandbox: Sandbox) -> None:
    """``collections.UserString(...).format`` is not a ``str``, so RestrictedPython's own
    ``format`` check misses it; the name is not exposed, and ``format`` is denied on anything."""
    err = sandbox.fails("""
        import collections

        def on_bar(ctx, bar):
            try:
                print(collections.UserString("{0.__globals__}").format(on_bar))
            except AttributeError as e:
                print(e)
            print(getattr(collections.deque(["{0.__globals__}"]), "format"))
    """, "'format' is not allowed in strategies", line=8)
    sandbox.assert_host_unharmed(err)


def test_from_datetime_import_sys_refused(sandbox: Sandbox) -> None:
    """``from datetime import sys`` bypasses ``_getattr_`` (C-level ``IMPORT_FROM``)."""
    err = sandbox.refused("""
        from datetime import sys

        def on_start(ctx):
            sys.modules["os"].system("id")
    """, "datetime.sys is not available in strategies", line=1)
    sandbox.assert_host_unharmed(err)


def test_from_import_does_not_fall_back_to_sys_modules(sandbox: Sandbox) -> None:
    """When ``from M import x`` misses, CPython looks up ``sys.modules["M.x"]`` by the module's
    ``__name__``: ``from json import decoder`` must not find the real submodule that way."""
    err = sandbox.refused("""
        from json import decoder

        def on_start(ctx):
            print(decoder.scanstring)
    """, "json.decoder is not available in strategies", line=1)
    sandbox.assert_host_unharmed(err)


def test_module_proxy_hides_its_name(sandbox: Sandbox) -> None:
    """The proxy's ``__name__``/``__dict__``/``__spec__`` (what the fallback and loaders use)."""
    err = sandbox.fails("""
        import json

        def on_bar(ctx, bar):
            print(getattr(json, "__di" + "ct__"))
    """, "'__dict__': names starting with '_'", line=4)
    sandbox.assert_host_unharmed(err)


def test_decimal_context_internals_unreachable(sandbox: Sandbox) -> None:
    """``decimal.getcontext``/``setcontext``/``localcontext`` change state the host shares."""
    err = sandbox.fails("""
        import decimal

        def on_bar(ctx, bar):
            print(decimal.Decimal("1.25").quantize(decimal.Decimal("0.1")))
            decimal.getcontext().prec = 1
    """, "decimal.getcontext is not available in strategies", line=5)
    sandbox.assert_host_unharmed(err)


def test_decimal_import_of_internals_refused(sandbox: Sandbox) -> None:
    """``from decimal import setcontext, Context``."""
    err = sandbox.refused("""
        from decimal import Context, setcontext

        def on_start(ctx):
            setcontext(Context(prec=1))
    """, "decimal.Context is not available", "decimal.setcontext is not available", line=1)
    sandbox.assert_host_unharmed(err)


def test_module_proxy_is_read_only(sandbox: Sandbox) -> None:
    """``math.pi = 3`` would poison every later user of the shared module."""
    err = sandbox.fails("""
        import math

        def on_start(ctx):
            math.pi = 3
    """, "TypeError", line=4)
    sandbox.assert_host_unharmed(err)


def test_module_proxy_attribute_delete_refused(sandbox: Sandbox) -> None:
    """``del json.loads``, to break the next user."""
    err = sandbox.fails("""
        import json

        def on_start(ctx):
            del json.loads
    """, "TypeError", line=4)
    sandbox.assert_host_unharmed(err)


def test_open_and_file_writes_unavailable(sandbox: Sandbox) -> None:
    """``open(path, "w")`` on the host's file, and ``open`` fetched through a builtin's
    ``__self__`` (the builtins module)."""
    err = sandbox.fails("""
        def on_start(ctx):
            try:
                getattr(len, "__se" + "lf__").open("CANARY_PATH", "w")
            except AttributeError as e:
                print(e)
            open("CANARY_PATH", "w").write("owned")
    """, "NameError", "'open' is not defined", line=6)
    sandbox.assert_host_unharmed(err)


def test_module_values_never_handed_out(sandbox: Sandbox) -> None:
    """Module objects hiding behind allowed names (``statistics.random``, ``re.sre_compile``,
    ``collections.abc``), asked for by computed name."""
    err = sandbox.fails("""
        import collections
        import re
        import statistics

        def on_bar(ctx, bar):
            for mod, name in ((statistics, "ran" + "dom"), (re, "sre_" + "compile")):
                try:
                    print(getattr(mod, name))
                except AttributeError as e:
                    print(e)
            print(getattr(collections, "a" + "bc"))
    """, "collections.abc is not available in strategies", line=11)
    sandbox.assert_host_unharmed(err)


def test_time_is_not_importable(sandbox: Sandbox) -> None:
    """``time.sleep`` blocks without CPU (RLIMIT_CPU never fires) and is a timing channel."""
    err = sandbox.refused("""
        import time

        def on_bar(ctx, bar):
            time.sleep(10 ** 6)
    """, "'time' is not allowed", line=1)
    sandbox.assert_host_unharmed(err)


def test_regex_cache_cannot_be_rewritten_through_groupindex(sandbox: Sandbox) -> None:
    """``re`` caches compiled patterns process-wide (the worker's own code uses them too);
    ``pattern.groupindex == X()`` handed ``X.__eq__`` the pattern's real name-to-group dict (a
    CPython 3.11 mappingproxy leak, fixed by handing out a copy)."""
    result = sandbox.run("""
        import re

        SOURCE = "(?P<root>[A-Z0-9.]{1,6}) *(?P<date>[0-9]{6})"

        class Grab(object):
            def __eq__(self, other):
                other["root"] = 2
                return True

        def on_start(ctx):
            re.compile(SOURCE).groupindex == Grab()
            print(re.compile(SOURCE).groupindex["root"], re.match(SOURCE, "SPY 240119")[1])
    """)
    assert result.logs == ["1 SPY"]
    sandbox.assert_host_unharmed(result)


def test_datetime_formatting_works_without_opening_time(sandbox: Sandbox) -> None:
    """CPython's datetime imports ``time`` (strftime, timetuple) and ``_strptime`` (strptime)
    through the strategy's ``__import__`` while a hook runs: they must work (a first-hour
    trap: ``f"{bar.time:%Y-%m-%d}"`` failed with "import of 'time' is not allowed"), and what
    they get is a proxy of the one function they call, not the module."""
    result = sandbox.run("""
        import datetime

        def on_start(ctx):
            t = datetime.datetime(2024, 5, 1, 13, 30)
            print(t.strftime("%Y-%m-%d"), f"{t:%H:%M}", t.timetuple().tm_yday,
                  datetime.datetime.strptime("2024-01-02", "%Y-%m-%d").day)
    """)
    assert result.logs == ["2024-05-01 13:30 122 2"]
    sandbox.assert_host_unharmed(result)


def test_the_modules_datetime_imports_are_no_way_to_time_sleep(sandbox: Sandbox) -> None:
    """The proxies handed to datetime's C code expose only what it calls: no ``sleep`` (a
    CPU-free stall), no ``time()`` (a timing channel), nothing of ``_strptime``'s module."""
    from sandtrade.strategy.policy import guarded_import

    time_proxy = guarded_import("time")
    assert dir(time_proxy) == ["strftime", "struct_time"]
    with pytest.raises(AttributeError, match=r"time\.sleep is not available"):
        time_proxy.sleep  # noqa: B018
    assert dir(guarded_import("_strptime")) == ["_strptime_datetime"]
    err = sandbox.refused("""
        def on_start(ctx):
            __import__("time").sleep(10 ** 6)
    """, '"__import__" is an invalid variable name', line=2)
    sandbox.assert_host_unharmed(err)
