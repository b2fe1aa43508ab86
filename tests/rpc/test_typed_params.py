"""An upload checks its params against the strategy's typed parameters (``param(...)``)."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import struct_pb2

from sandtrade.v1 import strategies_pb2 as spb
from sandtrade.v1 import strategies_pb2_grpc

from .conftest import WAIT, Metadata, field_violations

SOURCE = 'PARAMS = {\n    "fast": param(10, min=2, max=50),\n}\n\n\ndef on_bar(ctx, bar):\n' \
    '    pass\n'


def _upload(channel: grpc.Channel, operator: Metadata, **params: object) -> spb.Strategy:
    values = struct_pb2.Struct()
    values.update(params)
    stub = strategies_pb2_grpc.StrategyServiceStub(channel)
    return stub.UploadStrategy(spb.UploadStrategyRequest(
        name="typed", source=SOURCE, symbols=["AAA"], params=values),
        metadata=operator, timeout=WAIT).strategy


def test_an_upload_with_a_param_out_of_bounds_is_refused_with_its_line(
        channel: grpc.Channel, operator: Metadata) -> None:
    with pytest.raises(grpc.RpcError) as err:
        _upload(channel, operator, fast=80)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["params"]
    assert "typed.py:2: fast: 80 is above its maximum 50" in (err.value.details() or "")
    assert _upload(channel, operator, fast=49).name == "typed"
