"""Who may call the API, one test per attack: no token, a forged or revoked one, a token used
for another account's data, a token used beyond its scopes; and what the store keeps of a
token (its secret's SHA-256, never the secret)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from sandtrade.host.runtime import STORE_FILE, HostRuntime
from sandtrade.v1 import common_pb2, trading_pb2, trading_pb2_grpc

from .conftest import WAIT, Caller, MakeAccount, MakeToken, Market, Metadata, bearer, market_order

Stub = trading_pb2_grpc.TradingServiceStub


def get_account(trading: Stub, metadata: Metadata | None, account: str = ""
                ) -> trading_pb2.GetAccountResponse:
    return trading.GetAccount(trading_pb2.GetAccountRequest(account=account),
                              metadata=metadata, timeout=WAIT)


def refused(call: Callable[[], Any]) -> grpc.RpcError:
    """The error ``call`` fails with (the test fails if it succeeds)."""
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value


def token_id(token: str) -> str:
    """The id part of ``st_<id>_<secret>``."""
    return token.split("_")[1]


# ------------------------------------------------------------------ authentication


def test_call_without_token_is_unauthenticated(trading: Stub, alice: Caller) -> None:
    err = refused(lambda: get_account(trading, None))

    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "Bearer" in (err.details() or "")


def test_authorization_without_bearer_scheme_is_unauthenticated(trading: Stub,
                                                                alice: Caller) -> None:
    err = refused(lambda: get_account(trading, (("authorization", f"Basic {alice.token}"),)))

    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_malformed_token_is_unauthenticated(trading: Stub, alice: Caller) -> None:
    err = refused(lambda: get_account(trading, bearer(alice.token + "x")))

    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "malformed" in (err.details() or "")


def test_token_with_wrong_secret_is_unauthenticated(trading: Stub, alice: Caller) -> None:
    prefix = f"st_{token_id(alice.token)}_"
    secret = alice.token[len(prefix):]
    forged = prefix + ("A" if secret[0] != "A" else "B") + secret[1:]

    err = refused(lambda: get_account(trading, bearer(forged)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_token_with_wrong_secret_is_unauthenticated_after_a_good_call(
        trading: Stub, alice: Caller) -> None:
    """The verification cache holds the real token; a forged secret must still fail."""
    get_account(trading, alice.metadata)
    prefix = f"st_{token_id(alice.token)}_"
    forged = prefix + "B" * (len(alice.token) - len(prefix))

    err = refused(lambda: get_account(trading, bearer(forged)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_revoked_token_is_unauthenticated(runtime: HostRuntime, trading: Stub,
                                          alice: Caller) -> None:
    get_account(trading, alice.metadata)  # verified, so now in the verification cache
    assert runtime.auth is not None
    assert runtime.auth.revoke(token_id(alice.token))

    err = refused(lambda: get_account(trading, alice.metadata))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "revoked" in (err.details() or "")


def test_ephemeral_token_works_until_revoked(runtime: HostRuntime, trading: Stub,
                                             alice: Caller) -> None:
    assert runtime.auth is not None
    principal, token = runtime.auth.issue_ephemeral("alice")

    assert get_account(trading, bearer(token)).account.id == "alice"
    assert runtime.auth.revoke(principal.token_id)
    err = refused(lambda: get_account(trading, bearer(token)))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_store_keeps_only_the_sha256_of_a_token_secret(runtime: HostRuntime,
                                                       make_token: MakeToken,
                                                       alice: Caller) -> None:
    token = make_token("alice")
    secret = token.split("_", 2)[2]
    database = runtime.data_dir / STORE_FILE

    with sqlite3.connect(database) as conn:
        dump = "\n".join(conn.iterdump())
    files = b"".join(p.read_bytes() for p in Path(runtime.data_dir).glob(f"{STORE_FILE}*"))
    assert hashlib.sha256(secret.encode()).hexdigest() in dump
    assert secret not in dump
    assert secret.encode() not in files


# ------------------------------------------------------------------ accounts

OTHER_ACCOUNT_CALLS: dict[str, Callable[[Stub, Metadata], Any]] = {
    "GetAccount": lambda t, md: t.GetAccount(
        trading_pb2.GetAccountRequest(account="bob"), metadata=md, timeout=WAIT),
    "ListOrders": lambda t, md: t.ListOrders(
        trading_pb2.ListOrdersRequest(account="bob"), metadata=md, timeout=WAIT),
    "ListPositions": lambda t, md: t.ListPositions(
        trading_pb2.ListPositionsRequest(account="bob"), metadata=md, timeout=WAIT),
    "SubmitOrder": lambda t, md: t.SubmitOrder(
        market_order("AAA", 1, account="bob"), metadata=md, timeout=WAIT),
    "GetOrderByClientOrderId": lambda t, md: t.GetOrder(
        trading_pb2.GetOrderRequest(account="bob", client_order_id="bobs"), metadata=md,
        timeout=WAIT),
    "StreamTradeUpdates": lambda t, md: next(t.StreamTradeUpdates(
        trading_pb2.StreamTradeUpdatesRequest(account="bob"), metadata=md, timeout=WAIT)),
}


@pytest.mark.parametrize("method", OTHER_ACCOUNT_CALLS)
def test_token_cannot_act_for_another_account(trading: Stub, market: Market, alice: Caller,
                                              bob: Caller, method: str) -> None:
    market.publish(100.0)
    trading.SubmitOrder(market_order("AAA", 1, client_order_id="bobs"), metadata=bob.metadata,
                        timeout=WAIT)

    err = refused(lambda: OTHER_ACCOUNT_CALLS[method](trading, alice.metadata))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    orders = trading.ListOrders(trading_pb2.ListOrdersRequest(), metadata=bob.metadata,
                                timeout=WAIT).orders
    assert len(orders) == 1


def test_token_cannot_get_another_accounts_order_by_id(trading: Stub, market: Market,
                                                       alice: Caller, bob: Caller) -> None:
    market.publish(100.0)
    bobs = trading.SubmitOrder(market_order("AAA", 1), metadata=bob.metadata,
                               timeout=WAIT).order.id

    err = refused(lambda: trading.GetOrder(trading_pb2.GetOrderRequest(order_id=bobs),
                                           metadata=alice.metadata, timeout=WAIT))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert bobs in (err.details() or "")  # the same answer as for an id that never existed


def test_token_cannot_cancel_another_accounts_order(trading: Stub, market: Market,
                                                    alice: Caller, bob: Caller) -> None:
    market.publish(100.0)
    bobs = trading.SubmitOrder(market_order("AAA", 1), metadata=bob.metadata,
                               timeout=WAIT).order

    err = refused(lambda: trading.CancelOrder(trading_pb2.CancelOrderRequest(order_id=bobs.id),
                                              metadata=alice.metadata, timeout=WAIT))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    still = trading.GetOrder(trading_pb2.GetOrderRequest(order_id=bobs.id),
                             metadata=bob.metadata, timeout=WAIT).order
    assert still.status == bobs.status


def test_operator_token_must_name_an_account(trading: Stub, operator: Metadata) -> None:
    err = refused(lambda: get_account(trading, operator))

    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert get_account(trading, operator, "paper").account.id == "paper"


# ------------------------------------------------------------------ scopes


def test_read_only_token_cannot_submit_orders(trading: Stub, market: Market,
                                              make_account: MakeAccount,
                                              make_token: MakeToken) -> None:
    market.publish(100.0)
    reader = Caller(make_account("carol"), make_token("carol", "read"))

    err = refused(lambda: trading.SubmitOrder(market_order("AAA", 1), metadata=reader.metadata,
                                              timeout=WAIT))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "'trade'" in (err.details() or "")
    assert get_account(trading, reader.metadata).account.id == "carol"


def test_read_only_token_cannot_cancel_orders(trading: Stub, market: Market,
                                              make_account: MakeAccount,
                                              make_token: MakeToken) -> None:
    market.publish(100.0)
    account = make_account("carol")
    trader = Caller(account, make_token(account, "read,trade"))
    reader = Caller(account, make_token(account, "read"))
    order = trading.SubmitOrder(market_order("AAA", 1), metadata=trader.metadata,
                                timeout=WAIT).order

    err = refused(lambda: trading.CancelOrder(trading_pb2.CancelOrderRequest(order_id=order.id),
                                              metadata=reader.metadata, timeout=WAIT))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    still = trading.GetOrder(trading_pb2.GetOrderRequest(order_id=order.id),
                             metadata=reader.metadata, timeout=WAIT).order
    assert still.status == common_pb2.ORDER_STATUS_ACCEPTED


def test_signal_only_token_cannot_read_the_account(trading: Stub, make_account: MakeAccount,
                                                   make_token: MakeToken) -> None:
    signaler = Caller(make_account("dave"), make_token("dave", "signal"))

    err = refused(lambda: get_account(trading, signaler.metadata))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
