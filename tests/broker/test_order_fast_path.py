"""The broker's fast path for new orders builds exactly what pydantic would, or stands aside.

``checks.validated_order`` (what ``PaperBroker.submit`` builds a new order with) skips pydantic
for the plain values a strategy's ``ctx`` sends.
Whatever the input, the order it returns must equal pydantic's ``Order(...)`` field for field
(and in what it records as set), and where pydantic refuses the input the broker must refuse
it too with the same error. Hypothesis mixes valid values with every kind of bad one: wrong
types, str and float subclasses, NaN, infinities, zero, negative, out-of-range fractions,
over-long strings, prices on order types that take none.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sandtrade.broker import PaperBroker, checks
from sandtrade.errors import OrderRejected
from sandtrade.models import Order, OrderSide, OrderType, TimeInForce


class _Str(str):
    pass


class _Float(float):
    pass


_PRICE = st.floats(0.01, 1e6)
#: Valid values of each argument (as a strategy's ctx sends them and as other callers may).
_VALID: dict[str, st.SearchStrategy[Any]] = {
    "symbol": st.sampled_from(["SYN", "BTC-USD", "x" * 40]),
    "side": st.sampled_from([*OrderSide, "buy", "sell"]),
    "tif": st.sampled_from([*TimeInForce, "gtc", "day", "ioc", "fok"]),
    "reduce_only": st.booleans(),
    "client_id": st.one_of(st.none(), st.text(max_size=128)),
    "tag": st.one_of(st.none(), st.text(max_size=256)),
}
#: Bad (or merely unusual) values of each argument.
_BAD: dict[str, st.SearchStrategy[Any]] = {
    "symbol": st.sampled_from(["", _Str("SYN"), 7, None]),
    "side": st.sampled_from(["BUY", _Str("buy"), 1, None]),
    "type": st.sampled_from(["market", "limit", "nope", 0]),
    "qty": st.sampled_from([0.0, -1.0, math.nan, math.inf, 1e300, 3, True, _Float(2.0), "3"]),
    "fraction": st.sampled_from([0.0, 1.0, -0.5, math.nan, 1.5, 1, _Float(0.5)]),
    "limit": st.sampled_from([0.0, -1.0, math.nan, math.inf, 5, _Float(2.0), "9"]),
    "stop": st.sampled_from([0.0, -1.0, math.nan, math.inf, 5, _Float(2.0), "9"]),
    "tif": st.sampled_from(["GTC", "never", "", _Str("gtc"), 1, None]),
    "reduce_only": st.sampled_from([1, 0, "yes", None]),
    "client_id": st.sampled_from(["x" * 129, _Str("c"), 3]),
    "tag": st.sampled_from(["x" * 257, _Str("t"), 3]),
}


@st.composite
def _submissions(draw: st.DrawFn) -> dict[str, Any]:
    """A well-formed submission (the type decides which prices it carries), then up to three
    arguments replaced by bad values, or by a price where the type takes none."""
    args = {name: draw(strategy) for name, strategy in _VALID.items()}
    typ = args["type"] = draw(st.sampled_from(list(OrderType)))
    if draw(st.booleans()):
        args["qty"], args["fraction"] = draw(_PRICE), None
    else:
        args["qty"], args["fraction"] = None, draw(st.floats(0.001, 0.9999))
    args["limit"] = draw(_PRICE) if typ in (OrderType.LIMIT, OrderType.STOP_LIMIT) else None
    args["stop"] = draw(_PRICE) if typ in (OrderType.STOP, OrderType.STOP_LIMIT) else None
    for name in draw(st.sets(st.sampled_from(sorted(_BAD)), max_size=3)):
        args[name] = draw(_BAD[name])
    if draw(st.integers(0, 9)) == 0:  # a price the type takes none of, or both sizes
        key = draw(st.sampled_from(["limit", "stop", "qty", "fraction"]))
        args[key] = 0.5 if key == "fraction" else draw(_PRICE)
    return args


@settings(max_examples=800, deadline=None)
@given(args=_submissions())
def test_the_fast_path_builds_what_pydantic_builds(args: dict[str, Any]) -> None:
    now = datetime(2024, 1, 2, 15, 30)
    positional = (args["symbol"], args["side"], args["type"], args["qty"], args["fraction"],
                  args["limit"], args["stop"], args["tif"], args["reduce_only"],
                  args["client_id"], args["tag"], now)
    try:
        expected: Order | None = Order(
            id="o1", account="acct", symbol=args["symbol"], side=args["side"],
            type=args["type"], qty=args["qty"], equity_fraction=args["fraction"],
            limit_price=args["limit"], stop_price=args["stop"], tif=args["tif"],
            reduce_only=args["reduce_only"], client_order_id=args["client_id"],
            tag=args["tag"], created_at=now, updated_at=now)
    except ValidationError:
        expected = None
    if expected is None:
        with pytest.raises(OrderRejected):
            checks.validated_order("o1", "acct", *positional)
        return
    got = checks.validated_order("o1", "acct", *positional)
    assert got == expected
    assert got.model_dump() == expected.model_dump()
    assert got.model_fields_set == expected.model_fields_set
    # The same types, not merely equal values: a str subclass must not survive as the symbol.
    assert {k: type(v) for k, v in got.__dict__.items()} == \
        {k: type(v) for k, v in expected.__dict__.items()}


def test_orders_from_a_strategy_take_the_fast_path_and_stay_independent(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The values ``ctx.buy()`` sends are built without pydantic, and two orders built that
    way share no mutable state (the set-fields record is a set per order)."""
    built: list[Order] = []
    original = checks.order_from
    monkeypatch.setattr(checks, "order_from", lambda values: built.append(original(values))
                        or built[-1])
    a = checks.validated_order("o1", "acct", "SYN", OrderSide.BUY, OrderType.MARKET, None,
                               0.9999, None, None, "gtc", False, None, None, None)
    b = checks.validated_order("o2", "acct", "SYN", OrderSide.SELL, OrderType.LIMIT, 3.0,
                               None, 10.0, None, TimeInForce.DAY, True, None, "t", None)
    assert built == [a, b]
    assert a.tif is TimeInForce.GTC and b.tif is TimeInForce.DAY
    assert a.model_fields_set is not b.model_fields_set
    a.model_fields_set.add("status")
    assert "status" not in b.model_fields_set
    assert a.__dict__ is not b.__dict__
    assert b.model_dump(mode="json")["type"] == "limit"
    # A str subclass (its __eq__ could say anything) takes pydantic's path, which makes it a
    # plain str.
    c = checks.validated_order("o3", "acct", _Str("SYN"), OrderSide.BUY, OrderType.MARKET,
                               1.0, None, None, None, "gtc", False, None, None, None)
    assert len(built) == 2 and type(c.symbol) is str
    # The broker's own submissions take this path too.
    broker = PaperBroker()
    broker.open_account("acct", 1_000.0)
    d = broker.submit("acct", "SYN", OrderSide.BUY, 1.0)
    assert len(built) == 3 and built[-1] is d


def test_an_order_type_given_as_text_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """A signal's command names its order type as text ("market", "limit"): the fast path
    takes it and stores the member, as pydantic would."""
    built: list[Order] = []
    original = checks.order_from
    monkeypatch.setattr(checks, "order_from", lambda values: built.append(original(values))
                        or built[-1])
    a = checks.validated_order("o1", "acct", "AAPL", OrderSide.BUY, "market", 1.0, None,
                               None, None, "gtc", False, "sig_1.0", "signal sig_1", None)
    b = checks.validated_order("o2", "acct", "AAPL", OrderSide.SELL, "limit", 2.0, None,
                               190.5, None, "day", False, None, None, None)
    assert built == [a, b]
    assert a.type is OrderType.MARKET and b.type is OrderType.LIMIT
    assert b == Order(id="o2", account="acct", symbol="AAPL", side="sell", type="limit",
                      qty=2.0, limit_price=190.5, tif="day")
