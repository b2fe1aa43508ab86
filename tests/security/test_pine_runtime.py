"""``ctx.pine``, the Pine runtime every strategy can reach: its private state (the context, the
broker port, the order door) stays out of a strategy's hands. Each test is one attack; see
conftest.py."""

from __future__ import annotations

from .conftest import Sandbox


def test_pine_runtime_private_state_refused_at_check(sandbox: Sandbox) -> None:
    """``ctx.pine._trading``: the broker port behind the runtime, as syntax."""
    err = sandbox.refused("""
        def on_bar(ctx, bar):
            ctx.pine._trading.submit("X", "buy", 1)
    """, '"_trading"', "starts with", line=2)
    sandbox.assert_host_unharmed(err)


def test_pine_runtime_private_state_via_getattr(sandbox: Sandbox) -> None:
    """The same through ``getattr`` and a name built at run time."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            send = getattr(ctx.pine, "_" + "send")
            print(send)
    """, "names starting with '_' are not allowed", line=2)
    sandbox.assert_host_unharmed(err)


def test_pine_runtime_bound_method_self_refused(sandbox: Sandbox) -> None:
    """A bound method's ``__self__``/``__func__`` to climb to the class and its module."""
    err = sandbox.fails("""
        def on_bar(ctx, bar):
            f = getattr(ctx.pine.begin, "__" + "func__")
            print(getattr(f, "__" + "globals__"))
    """, "names starting with '_' are not allowed", line=2)
    sandbox.assert_host_unharmed(err)
