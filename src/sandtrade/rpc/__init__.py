"""gRPC transport: the servicers, the server factory, pb <-> domain conversion, the run door.

Transport knows the rooms; no room imports transport (checked by ``lint-imports``). Only
:mod:`sandtrade.rpc.convert` turns protobuf messages into domain models and back.
"""
