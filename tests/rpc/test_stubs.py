"""The committed stubs in src/sandtrade/v1 are exactly what the protos generate."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandtrade.rpc.codegen import ROOT, generate

pytest.importorskip("grpc_tools", reason="grpcio-tools (the test extra) regenerates the stubs")


def test_committed_stubs_match_the_protos(tmp_path: Path) -> None:
    written = generate(tmp_path)
    committed = ROOT / "src" / "sandtrade" / "v1"
    fresh = {p.name: p.read_bytes() for p in written}
    stored = {p.name: p.read_bytes() for p in committed.glob("*_pb2*.py*")}
    assert sorted(fresh) == sorted(stored), "run `python -m sandtrade.rpc.codegen`"
    stale = [name for name in fresh if fresh[name] != stored[name]]
    assert not stale, f"stubs differ from the protos: {stale}; regenerate them"


def test_every_enum_starts_with_unspecified_and_every_service_is_named_service() -> None:
    from sandtrade.v1 import common_pb2, market_pb2, signals_pb2, strategies_pb2, trading_pb2

    for module in (common_pb2, market_pb2, signals_pb2, strategies_pb2, trading_pb2):
        for enum in module.DESCRIPTOR.enum_types_by_name.values():
            assert enum.values[0].number == 0
            assert enum.values[0].name.endswith("_UNSPECIFIED"), enum.name
        for service in module.DESCRIPTOR.services_by_name.values():
            assert service.name.endswith("Service"), service.name
            for method in service.methods:
                assert method.input_type.name == f"{method.name}Request", method.name
                assert method.output_type.name == f"{method.name}Response", method.name
