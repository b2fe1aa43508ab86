"""Every risk rule at every door: an order over a rule is refused with the rule's words
whether it comes over gRPC, as a webhook alert or from a strategy, because the rule is checked
in the broker, which every door reaches.

One real host; each rule is the only rule of its own account (``[accounts.NAME.risk]``), and
each door trades its own copy of that account, so that no door's order counts for another's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from rpc.conftest import WAIT, bearer, market_order
from rpc.test_strategies import Stub, eventually, upload
from sandtrade.models import Account
from sandtrade.rpc import convert
from sandtrade.v1 import strategies_pb2 as spb
from sandtrade.v1 import trading_pb2_grpc
from signals.conftest import Host, post, start_host, stop_host

#: rule: its setting, the orders that go over it at a price of 100 (the last is refused), the
#: words of the refusal
RULES = {
    "qty": ("max_position_qty = 10", [20], "risk: max position size:"),
    "notional": ("max_position_notional = 1000", [20], "risk: max position notional:"),
    "gross": ("max_gross_exposure = 1500", [20], "risk: max gross exposure:"),
    "order": ("max_order_notional = 500", [20], "risk: max order notional:"),
    "perday": ("max_orders_per_day = 1", [1, 2], "risk: orders per day:"),
}
DOORS = ("grpc", "webhook", "strategy")


def account(rule: str, door: str) -> str:
    return f"{rule}-{door}"


CONFIG = "\n".join(f"[accounts.{account(rule, door)}.risk]\n{setting}\n"
                   for rule, (setting, _, _) in RULES.items() for door in DOORS)


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    h = start_host(tmp_path_factory.mktemp("risk-matrix"), CONFIG)
    try:
        assert h.runtime.store is not None
        for rule in RULES:
            for door in DOORS:
                h.runtime.store.create_account(Account(
                    id=account(rule, door), cash=100_000.0, initial_cash=100_000.0))
        h.market.publish(100.0)
        yield h
    finally:
        stop_host(h)


def operator(host: Host) -> Any:
    return bearer(host.runtime.operator_token_path.read_text().strip())


def buy_over_grpc(host: Host, acct: str, sizes: list[float]) -> str:
    assert host.runtime.rpc is not None
    with grpc.insecure_channel(host.runtime.rpc.address) as ch:
        stub = trading_pb2_grpc.TradingServiceStub(ch)
        for qty in sizes:
            resp = stub.SubmitOrder(market_order("AAA", qty, account=acct),
                                    metadata=operator(host), timeout=WAIT)
    return convert.order_from_pb(resp.order).reject_reason or ""


def buy_by_alert(host: Host, acct: str, sizes: list[float]) -> str:
    assert host.runtime.auth is not None
    _, token = host.runtime.auth.create(acct, ("signal",))
    for qty in sizes:
        r = post(f"{host.url}/webhooks/tradingview/{token}",
                 {"ticker": "AAA", "action": "buy", "contracts": qty})
        assert r.status_code == 200, r.text
        host.wait_idle()
    orders = host.orders(acct)
    assert len(orders) == len(sizes)
    refused = [o.reject_reason for o in orders if o.reject_reason]
    assert len(refused) <= 1, refused  # only the last one goes over the rule
    return refused[0] if refused else ""


def buy_from_a_strategy(host: Host, acct: str, sizes: list[float]) -> str:
    """A strategy of the account buys on the next bar; its log says the refusal."""
    assert host.runtime.rpc is not None
    source = ("def on_bar(ctx, bar):\n"
              "    if not ctx.state.get('done'):\n"
              "        ctx.state['done'] = True\n"
              + "".join(f"        ctx.buy({qty})\n" for qty in sizes))
    with grpc.insecure_channel(host.runtime.rpc.address) as ch:
        stub = Stub(ch)
        upload(stub, operator(host), "buyer", source, account=acct)
        stub.StartStrategy(spb.StartStrategyRequest(name="buyer", account=acct),
                           metadata=operator(host), timeout=WAIT)
        eventually(lambda: stub.GetStrategyStatus(
            spb.GetStrategyStatusRequest(name="buyer", account=acct),
            metadata=operator(host), timeout=WAIT).strategy.state,
            lambda state: state == spb.STRATEGY_STATE_RUNNING, "the buyer running")
        host.market.publish(100.0)

        def said() -> list[str]:
            call = stub.StreamStrategyLogs(
                spb.StreamStrategyLogsRequest(name="buyer", account=acct, tail=1000),
                metadata=operator(host), timeout=WAIT)
            return [m.line for m in call if "rejected: " in m.line]

        [line] = eventually(said, lambda lines: len(lines) == 1, "the refusal in its log")
        stub.StopStrategy(spb.StopStrategyRequest(name="buyer", account=acct),
                          metadata=operator(host), timeout=3 * WAIT)
    return line.partition("rejected: ")[2]


PLACE = {"grpc": buy_over_grpc, "webhook": buy_by_alert, "strategy": buy_from_a_strategy}


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("rule", RULES)
def test_a_rule_refuses_the_same_order_at_every_door(host: Host, rule: str, door: str) -> None:
    _, sizes, words = RULES[rule]
    reason = PLACE[door](host, account(rule, door), sizes)
    assert reason.startswith(words), (rule, door, reason)
