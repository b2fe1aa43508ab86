"""SignalService over gRPC and the Python client's signal methods, against a real host.

SubmitSignal needs the ``signal`` scope and answers only once the signal is journaled; a body
the host cannot read is INVALID_ARGUMENT naming the problem (and the id it was journaled
under); a dry run explains and journals nothing. ListSignals and GetSignal show a token its
own account's signals only. The client sends every signal with an idempotency key, and keeps
signals in its offline queue while the host is unreachable, sending each once later.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from rpc.conftest import bearer, field_violations
from sandtrade.client import Client
from sandtrade.client.client import InvalidArgument, PermissionDenied, QueuedSignal, SignalInfo
from sandtrade.models import Account
from sandtrade.signal_model import SignalStatus
from sandtrade.v1 import signals_pb2 as sg
from sandtrade.v1 import signals_pb2_grpc
from signals.conftest import Host

Stub = signals_pb2_grpc.SignalServiceStub
WAIT = 5.0


# ------------------------------------------------------------------ helpers


@pytest.fixture
def stub(host: Host) -> Iterator[Stub]:
    """A raw SignalService stub (its channel closed before the host stops)."""
    assert host.runtime.rpc is not None
    with grpc.insecure_channel(host.runtime.rpc.address) as channel:
        yield Stub(channel)


def token(host: Host, account: str, *scopes: str) -> str:
    assert host.runtime.auth is not None
    _, text = host.runtime.auth.create(account, scopes)
    return text


def operator(host: Host) -> str:
    return host.runtime.operator_token_path.read_text().strip()


def create_account(host: Host, account: str) -> None:
    assert host.runtime.store is not None
    host.runtime.store.create_account(Account(id=account, cash=10_000, initial_cash=10_000))


def submit(stub: Stub, tok: str, body: str, **fields: object) -> sg.SubmitSignalResponse:
    return stub.SubmitSignal(sg.SubmitSignalRequest(body=body, **fields),  # type: ignore[arg-type]
                             metadata=bearer(tok), timeout=WAIT)


def refused(call: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as err:
        call()  # type: ignore[operator]
    return err.value


def client(host: Host, tok: str | None = None, **kwargs: Any) -> Client:
    assert host.runtime.rpc is not None
    return Client(host.runtime.rpc.address, token=tok or host.token, **kwargs)


def dead_address() -> str:
    """An address where nothing listens (a port just released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


# ------------------------------------------------------------------ SubmitSignal


def test_submit_needs_the_signal_scope(host: Host, stub: Stub) -> None:
    for scopes in (("read",), ("read", "trade")):
        err = refused(lambda s=scopes: submit(stub, token(host, "paper", *s), "buy 1 AAA"))
        assert err.code() == grpc.StatusCode.PERMISSION_DENIED, err
        assert "'signal'" in (err.details() or "")
    err = refused(lambda: stub.SubmitSignal(sg.SubmitSignalRequest(body="buy 1 AAA"),
                                            timeout=WAIT))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED
    assert host.signals() == [], "nothing was journaled"
    assert submit(stub, token(host, "paper", "signal"), "buy 1 AAA").signal.id


def test_rejected_body_is_invalid_argument_naming_the_problem(host: Host, stub: Stub) -> None:
    err = refused(lambda: submit(stub, host.token, "buy 1 ZZZ"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    message = err.details() or ""
    assert 'no price for ZZZ: add "price": {{close}} to the alert' in message, message
    assert field_violations(err) == ["body"]
    [rec] = host.signals()
    assert rec.status is SignalStatus.REJECTED
    assert f"journaled as {rec.id}" in message, message
    assert "ZZZ" in rec.reason

    err = refused(lambda: submit(stub, host.token, '{"symbol": "AAA", "action": "buy", '
                                 '"qty": "1,000"}'))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "qty" in (err.details() or "") and "without separators" in (err.details() or "")
    assert len(host.signals()) == 2


def test_request_fields_are_checked_before_anything_is_journaled(host: Host,
                                                                  stub: Stub) -> None:
    for fields, field in (({"body": "  "}, "body"),
                          ({"body": "buy 1 AAA", "source": "tradingview"}, "source"),
                          ({"body": "x" * (64 * 1024 + 1)}, "body")):
        err = refused(lambda f=fields: stub.SubmitSignal(
            sg.SubmitSignalRequest(**f), metadata=bearer(host.token), timeout=WAIT))
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert field_violations(err) == [field]
    assert host.signals() == []


def test_a_signal_for_another_account_is_rejected(host: Host, stub: Stub) -> None:
    create_account(host, "other")
    err = refused(lambda: submit(stub, host.token, "buy 1 AAA account=other"))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "'paper'" in (err.details() or "") and "'other'" in (err.details() or "")
    host.wait_idle()
    assert host.orders("other") == [] and host.orders("paper") == []


def test_the_operators_token_sends_for_the_account_a_signal_names(host: Host) -> None:
    create_account(host, "other")
    host.market.publish(100.0)
    with client(host, operator(host)) as c:
        named = c.send_signal("buy 1 AAA account=other")
        default = c.send_signal({"symbol": "AAA", "action": "buy", "qty": 2})
    assert isinstance(named, SignalInfo) and isinstance(default, SignalInfo)
    assert (named.account, named.destination) == ("other", "paper:other")
    assert (default.account, default.destination) == ("paper", "paper:paper")
    host.wait_idle()
    assert [o.qty for o in host.orders("other")] == [1.0]
    assert [o.qty for o in host.orders("paper")] == [2.0]


def test_dry_run_explains_and_journals_nothing(host: Host, stub: Stub) -> None:
    host.market.publish(100.0)
    with client(host) as c:
        c.send_signal("long 5 AAA")
    host.wait_idle()
    host.market.publish(100.0)
    before = host.signals()

    resp = submit(stub, host.token, "short 3 AAA", dry_run=True)
    text = resp.explanation
    assert "format: text" in text and "destination: paper:paper" in text, text
    assert "now: sell 5 AAA market (close the long)" in text, text
    assert "now: sell 3 AAA market (open the short)" in text, text
    assert resp.signal.status == sg.SIGNAL_STATUS_VALIDATED and not resp.duplicate
    host.wait_idle()
    assert [r.id for r in host.signals()] == [r.id for r in before], "nothing journaled"
    assert len(host.orders()) == 1, "nothing executed"

    with client(host) as c:
        info = c.send_signal({"symbol": "AAA", "action": "flat"}, dry_run=True)
    assert isinstance(info, SignalInfo)
    assert "now: sell 5 AAA market" in info.explanation, info.explanation

    err = refused(lambda: submit(stub, host.token, "buy 1 ZZZ", dry_run=True))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "journaled" not in (err.details() or ""), err.details()
    assert len(host.signals()) == len(before)


# ------------------------------------------------------------------ reading the journal


def test_list_signals_pages_newest_first_and_only_the_tokens_account(host: Host,
                                                                     stub: Stub) -> None:
    create_account(host, "other")
    host.market.publish(100.0)
    mine, theirs = [], []
    with client(host) as c, client(host, token(host, "other", "signal")) as o:
        for k in range(5):
            mine.append(c.send_signal(f"buy {k + 1} AAA").id)  # type: ignore[union-attr]
            if k < 2:
                theirs.append(o.send_signal(f"sell {k + 1} AAA").id)  # type: ignore[union-attr]
    host.wait_idle()

    reader = bearer(token(host, "paper", "read"))
    pages: list[list[str]] = []
    page_token = ""
    while True:
        resp = stub.ListSignals(sg.ListSignalsRequest(page_size=2, page_token=page_token),
                                metadata=reader, timeout=WAIT)
        pages.append([s.id for s in resp.signals])
        page_token = resp.next_page_token
        if not page_token:
            break
    assert pages == [mine[4:2:-1], mine[2:0:-1], mine[:1]]

    other_reader = bearer(token(host, "other", "read"))
    resp = stub.ListSignals(sg.ListSignalsRequest(), metadata=other_reader, timeout=WAIT)
    assert [s.id for s in resp.signals] == theirs[::-1]
    assert {s.account for s in resp.signals} == {"other"}
    err = refused(lambda: stub.ListSignals(sg.ListSignalsRequest(account="paper"),
                                           metadata=other_reader, timeout=WAIT))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    for sid in (mine[0], "sig_does_not_exist"):
        err = refused(lambda s=sid: stub.GetSignal(sg.GetSignalRequest(signal_id=s),
                                                   metadata=other_reader, timeout=WAIT))
        assert err.code() == grpc.StatusCode.NOT_FOUND, sid
        assert err.details() == f"signal {sid!r} does not exist"
    got = stub.GetSignal(sg.GetSignalRequest(signal_id=theirs[0]), metadata=other_reader,
                         timeout=WAIT).signal
    assert got.account == "other"

    every = stub.ListSignals(sg.ListSignalsRequest(page_size=100),
                             metadata=bearer(operator(host)), timeout=WAIT)
    assert len(every.signals) == 7
    err = refused(lambda: stub.ListSignals(sg.ListSignalsRequest(page_token="abc"),
                                           metadata=reader, timeout=WAIT))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_signal_history_lists_every_step(host: Host, stub: Stub) -> None:
    host.market.publish(100.0)
    tok = token(host, "paper", "signal", "read")
    with client(host, tok) as c:
        sent = c.send_signal("buy 2 AAA comment=hello")
        assert isinstance(sent, SignalInfo) and sent.status == "validated"
        host.wait_idle()
        got = c.get_signal(sent.id)
    assert [h[0] for h in got.history] == ["received", "validated", "routed", "executed"]
    times = [h[1] for h in got.history]
    assert times == sorted(times)
    assert got.status == "executed" and got.destination == "paper:paper"
    assert got.format == "text" and got.source == "python" and got.raw_body == "buy 2 AAA " \
        "comment=hello"
    [order] = host.orders()
    assert got.order_ids == (order.id,)
    assert order.id in got.reason
    raw = stub.GetSignal(sg.GetSignalRequest(signal_id=sent.id), metadata=bearer(tok),
                         timeout=WAIT).signal
    parsed = json.loads(raw.parsed_json)
    assert parsed["comment"] == "hello" and parsed["commands"][0]["qty"] == 2


# ------------------------------------------------------------------ the client


def test_send_signal_with_a_dict_body(host: Host) -> None:
    host.market.publish(100.0)
    tok = token(host, "paper", "signal", "read")
    with client(host, tok) as c:
        sent = c.send_signal({"symbol": "AAA", "action": "buy", "qty": 2})
        assert isinstance(sent, SignalInfo)
        assert sent.format == "native" and sent.status == "validated"
        assert sent.idempotency_key and not sent.duplicate
        assert json.loads(sent.raw_body) == {"symbol": "AAA", "action": "buy", "qty": 2}
        host.wait_idle()
        assert c.get_signal(sent.id).status == "executed"
        assert [s.id for s in c.list_signals(limit=10)] == [sent.id]
        with pytest.raises(InvalidArgument) as err:
            c.send_signal({"symbol": "AAA", "action": "buy", "qty": 2, "qyt": 3})
        assert err.value.field == "body" and "qyt" in err.value.message
    with client(host) as c, pytest.raises(PermissionDenied):
        c.get_signal(sent.id)  # the signal-only token cannot read


def test_same_key_twice_is_a_duplicate_returning_the_first(host: Host) -> None:
    host.market.publish(100.0)
    with client(host) as c:
        first = c.send_signal("buy 1 AAA", idempotency_key="once")
        again = c.send_signal("buy 5 AAA", idempotency_key="once")
    assert isinstance(first, SignalInfo) and isinstance(again, SignalInfo)
    assert again.duplicate and not first.duplicate
    assert again.id == first.id and again.raw_body == "buy 1 AAA"
    host.wait_idle()
    assert [(o.qty, o.client_order_id) for o in host.orders()] == [(1.0, f"{first.id}.0")]


def test_the_same_key_from_two_accounts_is_two_signals(host: Host) -> None:
    create_account(host, "other")
    host.market.publish(100.0)
    with client(host) as c, client(host, token(host, "other", "signal")) as o:
        a = c.send_signal("buy 1 AAA", idempotency_key="shared")
        b = o.send_signal("buy 1 AAA", idempotency_key="shared")
    assert isinstance(a, SignalInfo) and isinstance(b, SignalInfo)
    assert not b.duplicate and a.id != b.id
    host.wait_idle()
    assert len(host.orders("paper")) == len(host.orders("other")) == 1


def test_offline_queue_sends_each_signal_once(host: Host, tmp_path: Path) -> None:
    host.market.publish(100.0)
    queue = tmp_path / "client-queue.db"
    with Client(dead_address(), token=host.token, queue_path=queue, retry_for=0.2,
                timeout=1.0, backoff=(0.05, 0.1)) as offline:
        queued = [offline.send_signal(f"target {k} AAA") for k in (3, 1, 4)]
        assert all(isinstance(q, QueuedSignal) for q in queued), queued
        assert offline.queue is not None and len(offline.queue) == 3
    assert host.signals() == [], "nothing reached the host"

    with client(host, queue_path=queue, retry_for=1.0) as online:
        assert online.flush(10.0)
        host.wait_idle()
        assert online.flush(1.0)
        assert online.queue is not None and len(online.queue) == 0
        assert online.failed_queued() == []
    journal = host.signals()
    keys = [q.idempotency_key for q in queued]  # type: ignore[union-attr]
    assert [r.idempotency_key for r in journal] == keys, "sent once each, in queued order"
    assert all(r.status is SignalStatus.EXECUTED for r in journal)
    assert [(o.side.value, o.qty) for o in host.orders()] == [
        ("buy", 3.0), ("sell", 2.0), ("buy", 3.0)]

    with client(host, queue_path=queue) as again:
        repeat = again.send_signal("target 4 AAA", idempotency_key=keys[0])
        assert again.flush(1.0)
    assert isinstance(repeat, SignalInfo) and repeat.duplicate
    host.wait_idle()
    assert len(host.orders()) == 3
