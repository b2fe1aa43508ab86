"""Options over gRPC: chains and greeks in MarketDataService, strategy templates and position
groups in TradingService, through the Python client against a real host.

The host prices AAA's options with its synthetic chain ([options] source) at the feed's last
price and bar time, as it does in production; the tests publish AAA at 100.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from sandtrade.client import Client, InvalidArgument, NotFound, PermissionDenied
from sandtrade.host.runtime import HostRuntime
from sandtrade.models import OrderClass, OrderStatus
from sandtrade.options import SyntheticChains
from sandtrade.v1 import trading_pb2, trading_pb2_grpc

from .conftest import Caller, MakeToken, Market, field_violations

SPOT = 100.0


@pytest.fixture
def client(runtime: HostRuntime, market: Market, alice: Caller) -> Iterator[Client]:
    """alice's client, AAA priced at 100."""
    market.publish(SPOT)
    assert runtime.rpc is not None
    with Client(runtime.rpc.address, token=alice.token) as c:
        yield c


def test_a_chain_over_grpc_is_the_chain_source_at_the_same_spot_and_time(
        runtime: HostRuntime, market: Market, client: Client) -> None:
    chain = client.option_chain("AAA", "30d")
    bar = market.published[-1]
    expected = SyntheticChains(runtime.settings.options).chain("AAA", bar.close, bar.time)
    assert expected is not None
    assert chain.as_of == bar.time and chain.spot == SPOT
    expiry = expected.select_expiry("30d")
    want = sorted(expected.rows_for(expiry), key=lambda r: (r.strike, r.right.value))
    got = sorted(chain.rows, key=lambda r: (r.strike, r.right.value))
    assert {r.expiry for r in got} == {expiry}
    assert len(got) == len(want) == 2 * (2 * runtime.settings.options.strikes_each_side + 1)
    for g, w in zip(got, want, strict=True):
        assert g == w, (g, w)
    # every listed expiry is there to choose from, whatever the filter
    assert chain.expiries() == [expiry]
    everything = client.option_chain("AAA")
    assert everything.expiries() == expected.expiries()
    assert len(everything.rows) == len(expected.rows)


def test_a_chain_can_be_cut_to_strikes_around_the_spot_or_a_range(client: Client) -> None:
    near = client.option_chain("AAA", "monthly", strikes_around_spot=2)
    assert sorted({r.strike for r in near.rows}) == [98.0, 99.0, 100.0, 101.0, 102.0]
    ranged = client.option_chain("AAA", "monthly", min_strike=95, max_strike=97)
    assert sorted({r.strike for r in ranged.rows}) == [95.0, 96.0, 97.0]
    with pytest.raises(InvalidArgument) as e:
        client.option_chain("AAA", "someday")
    assert e.value.field == "expiry" and "not an expiry selector" in e.value.message
    with pytest.raises(InvalidArgument) as e:
        client.option_chain("AAA", min_strike=97, max_strike=95)
    assert e.value.field == "max_strike"


def test_a_chain_of_an_underlying_without_a_price_is_not_found(client: Client) -> None:
    with pytest.raises(NotFound, match="no option chain for 'BBB': it has no price yet"):
        client.option_chain("BBB", "30d")


def test_an_iron_condor_by_template_fills_its_four_legs_is_a_group_with_greeks_and_closes_as_one(
        client: Client) -> None:
    preview = client.submit_template("iron_condor", "AAA", 1, expiry="30d", short_delta=0.16,
                                     width=5, validate_only=True)
    plan = preview.plan
    assert preview.order is None and plan is not None and plan.net_price < 0
    credit = -plan.net_price
    assert plan.max_profit == pytest.approx(credit * 100, abs=1e-6)
    assert plan.max_loss == pytest.approx(500 - credit * 100, abs=1e-6)
    assert len(plan.breakevens) == 2

    # a positive limit on a credit strategy is the credit to receive, as traders write it
    result = client.submit_template("iron_condor", "AAA", 2, expiry="30d", short_delta=0.16,
                                    width=5, limit_price=round(credit / 2, 2))
    order = result.order
    assert order is not None and result.plan is not None
    assert order.order_class is OrderClass.MLEG and order.status is OrderStatus.FILLED, order
    assert order.limit_price == -round(credit / 2, 2)
    assert [leg.symbol for leg in order.legs or ()] == [leg.symbol for leg in plan.legs]
    assert order.tag == "template:iron_condor"  # what an alert's exit by name finds
    positions = {p.symbol: p.qty for p in client.positions()}
    assert positions == {leg.symbol: leg.side.sign * 2.0 for leg in plan.legs}

    groups = client.position_groups()
    assert [g.id for g in groups] == [order.id]
    group = groups[0]
    assert group.underlying == "AAA" and len(group.legs) == 4
    assert all(leg.priced for leg in group.legs)
    assert {leg.symbol: leg.qty for leg in group.legs} == positions
    # a condor near the money is about delta-neutral, short gamma and vega, long theta
    assert abs(group.delta) < 20 and group.gamma < 0 and group.vega < 0 and group.theta > 0
    filled_credit = -(order.avg_fill_price or 0.0)
    assert group.max_profit == pytest.approx(filled_credit * 200, abs=1e-6)
    assert group.max_loss == pytest.approx((5 - filled_credit) * 200, abs=1e-6)

    greeks = client.greeks()
    assert sorted(p.symbol for p in greeks.positions) == sorted(positions)
    assert greeks.delta == pytest.approx(group.delta)
    assert greeks.vega == pytest.approx(group.vega)
    assert greeks.by_underlying()["AAA"][0] == pytest.approx(group.delta)

    closing = client.close_group(group.id)
    assert closing.status is OrderStatus.FILLED, closing.reject_reason
    assert closing.parent_id == group.id
    assert client.position_groups() == []
    assert client.positions() == []


def test_a_template_retried_with_its_client_order_id_trades_once(client: Client) -> None:
    first = client.submit_template("bull_put_spread", "AAA", 1, short_offset=3, width=2,
                                   client_order_id="condor-1")
    again = client.submit_template("bull_put_spread", "AAA", 1, short_offset=3, width=2,
                                   client_order_id="condor-1")
    assert first.order is not None and again.order is not None
    assert again.duplicate and again.order.id == first.order.id
    assert len(client.position_groups()) == 1


@pytest.mark.parametrize(("name", "params", "field", "words"), [
    ("iron_condr", {"short_delta": 0.16}, "strategy", "unknown strategy 'iron_condr'"),
    ("iron_condor", {"call_short": 95, "put_short": 105, "width": 5},
     "parameters.call_short", "call_short 95 must be above put_short 105"),
    ("iron_condor", {"short_delta": 1.5, "width": 5}, "parameters.short_delta",
     "short_delta 1.5 must be between 0 and 1"),
    ("iron_condor", {"short_delta": 0.16, "width": -5}, "parameters.width",
     "width -5 must be above 0"),
    ("iron_condor", {"short_delta": 0.16, "width": 5, "wings": 3}, "parameters.wings",
     "unknown parameter(s) wings"),
    ("iron_condor", {"short_delta": 0.16, "width": "five"}, "parameters.width",
     "width must be a number (got 'five')"),
    ("iron_condor", {"short_delta": 0.16, "offset": 3, "width": 5}, "parameters.offset",
     "give one of put_short, offset, short_delta"),
    ("bull_call_spread", {"long_strike": 100.5, "width": 5}, "parameters.long_strike",
     "long_strike 100.5 is not a listed call strike"),
    ("straddle", {"side": "sideways"}, "parameters.side", "side 'sideways' must be"),
    ("straddle", {"side": 1}, "parameters.side", "side must be text"),
    ("calendar", {"strike": 100}, "parameters.far_expiry", "give far_expiry"),
    ("butterfly", {"strike": 100}, "parameters.width", "give the wings' distance as width"),
])
def test_each_template_refusal_is_invalid_argument_naming_the_parameter(
        client: Client, name: str, params: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as e:
        client.submit_template(name, "AAA", 1, **params)
    assert e.value.field == field, e.value
    assert words in e.value.message, e.value.message
    assert client.positions() == [] and not list(client.list_orders())


def test_a_bad_expiry_quantity_or_underlying_is_named(client: Client) -> None:
    with pytest.raises(InvalidArgument) as e:
        client.submit_template("straddle", "AAA", 1, expiry="someday")
    assert e.value.field == "expiry" and "straddle: expiry 'someday'" in e.value.message
    with pytest.raises(InvalidArgument) as e:
        client.submit_template("straddle", "AAA", None)
    assert e.value.field == "qty"
    with pytest.raises(InvalidArgument) as e:
        client.submit_template("straddle", "AAA", -1)
    assert e.value.field == "qty"
    with pytest.raises(InvalidArgument) as e:
        client.submit_template("straddle", "", 1)
    assert e.value.field == "underlying"


def test_the_raw_answer_carries_a_bad_request_naming_the_field(
        runtime: HostRuntime, client: Client, alice: Caller) -> None:
    """What a client in any language sees: INVALID_ARGUMENT with a BadRequest detail."""
    assert runtime.rpc is not None
    with grpc.insecure_channel(runtime.rpc.address) as ch:
        stub = trading_pb2_grpc.TradingServiceStub(ch)
        request = trading_pb2.SubmitOptionStrategyRequest(strategy="iron_condor",
                                                          underlying="AAA", qty=1)
        request.parameters["width"].number_value = -5
        request.parameters["short_delta"].number_value = 0.16
        with pytest.raises(grpc.RpcError) as e:
            stub.SubmitOptionStrategy(request, metadata=alice.metadata)
    assert e.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(e.value) == ["parameters.width"]


def test_a_preview_needs_read_and_an_order_needs_trade(
        runtime: HostRuntime, client: Client, alice: Caller, make_token: MakeToken) -> None:
    assert runtime.rpc is not None
    with Client(runtime.rpc.address, token=make_token("alice", "read")) as reader:
        plan = reader.submit_template("straddle", "AAA", 1, validate_only=True).plan
        assert plan is not None and plan.net_price > 0
        with pytest.raises(PermissionDenied):
            reader.submit_template("straddle", "AAA", 1)
        assert reader.position_groups() == []
        assert reader.greeks().positions == []


def test_the_readme_options_snippet_runs_as_written(client: Client) -> None:
    """README's "Multi-leg options orders" Python lines, on AAA instead of SPY."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    snippet = next(b for b in re.findall(r"```python\n(.*?)```", readme, re.S)
                   if "submit_template" in b)
    printed: list[str] = []
    exec(compile(snippet.replace('"SPY"', '"AAA"'), "README.md", "exec"),
         {"client": client, "print": lambda *a: printed.append(" ".join(map(str, a)))})
    assert len(printed) == 2, printed
    assert client.position_groups() == []  # each group the snippet found was closed


def test_an_option_positions_pnl_is_in_the_accounts_live_performance(
        runtime: HostRuntime, market: Market, client: Client) -> None:
    """An option has no bars: the figures mark what is held at the broker's marks (its
    quote), so the account's return is its own equity's, not the fills' prices'."""
    placed = client.submit_template("bull_call_spread", "AAA", 2, expiry="30d", width=5)
    assert placed.order is not None and placed.order.status is OrderStatus.FILLED
    market.publish(SPOT + 6)  # the spread gains; its legs are marked at the new quotes
    account = client.account()
    figures = client.performance()["alice"]
    pnl = account.equity - account.initial_cash
    assert abs(pnl) > 1, "the comparison is not vacuous"
    assert figures["return_pct"] == pytest.approx(100 * pnl / account.initial_cash, rel=1e-6)
