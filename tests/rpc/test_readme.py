"""The README's client snippet and grpcurl line work as written against a real host."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from sandtrade.host.runtime import HostRuntime
from sandtrade.models import Account

from .conftest import CASH, WAIT, Caller

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_client_snippet_trades_on_a_real_host(tmp_path: Path) -> None:
    from sandtrade.host.config import load_settings

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    snippet = next(b for b in blocks if "from sandtrade.client import Client" in b)
    settings = load_settings(data_dir=tmp_path / "data", grpc="127.0.0.1:0",
                             http="127.0.0.1:0",
                             market={"bars_per_second": 200})
    with HostRuntime(settings) as host:
        assert host.rpc is not None and host.auth is not None and host.store is not None
        host.store.create_account(Account(id="alice", cash=10_000, initial_cash=10_000))
        _, token = host.auth.create("alice", ("read", "trade"))
        snippet = snippet.replace("127.0.0.1:50051", host.rpc.address)
        snippet = snippet.replace('"orders.queue"', repr(str(tmp_path / "orders.queue")))
        printed: list[str] = []
        exec(compile(snippet, "README.md", "exec"),
             {"TOKEN": token, "print": lambda *a: printed.append(" ".join(map(str, a)))})
        assert printed[0].startswith("OrderStatus.ACCEPTED") or "accepted" in printed[0]
        order = host.store.find_client_order("alice", "my-order-1")
        assert order is not None and order.qty == 10
        assert float(printed[-1]) > 0


def _grpcurl_line() -> list[str]:
    """The README's grpcurl command, as the shell would split it."""
    text = README.read_text()
    match = re.search(r"^grpcurl .*?(?<!\\)$", text.replace("\\\n", " "), re.M)
    assert match, "README.md has no grpcurl line"
    return shlex.split(match.group(0))


def test_readme_grpcurl_call_works_through_reflection_alone(runtime: HostRuntime,
                                                            alice: Caller) -> None:
    """What grpcurl does with the README's line, done here (grpcurl is not installable on
    these machines): learn the method's types from the server's reflection service only, no
    compiled stubs, send the header the line sends, and decode the answer."""
    argv = _grpcurl_line()
    assert argv[:2] == ["grpcurl", "-plaintext"]
    header = argv[argv.index("-H") + 1]
    target, method_path = argv[-2], argv[-1]
    assert target == "127.0.0.1:50051"  # what the README tells people; the test's host is on
    assert runtime.rpc is not None      # a free port instead
    service_name, method_name = method_path.split("/")
    key, _, value = header.partition(": ")
    metadata = ((key, value.replace("$TOKEN", alice.token)),)

    with grpc.insecure_channel(runtime.rpc.address) as channel:
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        files: dict[str, descriptor_pb2.FileDescriptorProto] = {}

        def fetch(request: reflection_pb2.ServerReflectionRequest) -> None:
            for resp in reflection.ServerReflectionInfo(iter([request]), timeout=WAIT):
                assert not resp.HasField("error_response"), resp.error_response.error_message
                for raw in resp.file_descriptor_response.file_descriptor_proto:
                    fdp = descriptor_pb2.FileDescriptorProto.FromString(raw)
                    files.setdefault(fdp.name, fdp)

        fetch(reflection_pb2.ServerReflectionRequest(file_containing_symbol=service_name))
        pool = descriptor_pool.DescriptorPool()
        added: set[str] = set()

        def add(name: str) -> None:
            if name in added:
                return
            if name not in files:
                fetch(reflection_pb2.ServerReflectionRequest(file_by_filename=name))
            for dep in files[name].dependency:
                add(dep)
            pool.Add(files[name])
            added.add(name)

        for name in list(files):
            add(name)
        method = pool.FindServiceByName(service_name).FindMethodByName(method_name)
        request_cls = message_factory.GetMessageClass(method.input_type)
        response_cls = message_factory.GetMessageClass(method.output_type)
        call = channel.unary_unary(f"/{service_name}/{method_name}",
                                   request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=response_cls.FromString)
        answer = call(request_cls(), metadata=metadata, timeout=WAIT)  # grpcurl sends {}
    assert answer.account.id == "alice"
    assert answer.account.cash == CASH


def test_readme_send_signal_snippet_executes_on_a_real_host(tmp_path: Path) -> None:
    from sandtrade.client import Client
    from sandtrade.host.config import load_settings

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    snippet = next(b for b in blocks if "send_signal" in b)
    settings = load_settings(data_dir=tmp_path / "data", grpc="127.0.0.1:0",
                             http="127.0.0.1:0", market={"bars_per_second": 200})
    with HostRuntime(settings) as host:
        assert host.rpc is not None and host.auth is not None and host.signals is not None
        _, token = host.auth.create("paper", ("signal",))
        snippet = snippet.replace("127.0.0.1:50051", host.rpc.address)
        snippet = snippet.replace('"signals.queue"', repr(str(tmp_path / "signals.queue")))
        printed: list[str] = []
        exec(compile(snippet, "README.md", "exec"),
             {"TOKEN": token, "Client": Client,
              "print": lambda *a: printed.append(" ".join(map(str, a)))})
        signal_id, status, _ = printed[0].split(" ", 2)
        assert status == "validated"
        assert host.signals.wait_idle(10)
        assert host.store is not None
        record = host.store.get_signal(signal_id)
        assert record is not None and record.status.value == "executed", record
        order = host.store.find_client_order("paper", f"{signal_id}.0")
        assert order is not None and order.qty == 10 and order.side.value == "buy"
