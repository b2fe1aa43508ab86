import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SignalStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNAL_STATUS_UNSPECIFIED: _ClassVar[SignalStatus]
    SIGNAL_STATUS_RECEIVED: _ClassVar[SignalStatus]
    SIGNAL_STATUS_REJECTED: _ClassVar[SignalStatus]
    SIGNAL_STATUS_VALIDATED: _ClassVar[SignalStatus]
    SIGNAL_STATUS_ROUTED: _ClassVar[SignalStatus]
    SIGNAL_STATUS_EXECUTED: _ClassVar[SignalStatus]
    SIGNAL_STATUS_FAILED: _ClassVar[SignalStatus]
    SIGNAL_STATUS_DROPPED: _ClassVar[SignalStatus]
SIGNAL_STATUS_UNSPECIFIED: SignalStatus
SIGNAL_STATUS_RECEIVED: SignalStatus
SIGNAL_STATUS_REJECTED: SignalStatus
SIGNAL_STATUS_VALIDATED: SignalStatus
SIGNAL_STATUS_ROUTED: SignalStatus
SIGNAL_STATUS_EXECUTED: SignalStatus
SIGNAL_STATUS_FAILED: SignalStatus
SIGNAL_STATUS_DROPPED: SignalStatus

class SignalStep(_message.Message):
    __slots__ = ("status", "at", "reason")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    status: SignalStatus
    at: _timestamp_pb2.Timestamp
    reason: str
    def __init__(self, status: _Optional[_Union[SignalStatus, str]] = ..., at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class Signal(_message.Message):
    __slots__ = ("id", "source", "received_at", "raw_body", "format", "account", "status", "reason", "idempotency_key", "destination", "alert_id", "order_ids", "parsed_json", "history")
    ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    RAW_BODY_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_FIELD_NUMBER: _ClassVar[int]
    ALERT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_IDS_FIELD_NUMBER: _ClassVar[int]
    PARSED_JSON_FIELD_NUMBER: _ClassVar[int]
    HISTORY_FIELD_NUMBER: _ClassVar[int]
    id: str
    source: str
    received_at: _timestamp_pb2.Timestamp
    raw_body: str
    format: str
    account: str
    status: SignalStatus
    reason: str
    idempotency_key: str
    destination: str
    alert_id: str
    order_ids: _containers.RepeatedScalarFieldContainer[str]
    parsed_json: str
    history: _containers.RepeatedCompositeFieldContainer[SignalStep]
    def __init__(self, id: _Optional[str] = ..., source: _Optional[str] = ..., received_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., raw_body: _Optional[str] = ..., format: _Optional[str] = ..., account: _Optional[str] = ..., status: _Optional[_Union[SignalStatus, str]] = ..., reason: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., destination: _Optional[str] = ..., alert_id: _Optional[str] = ..., order_ids: _Optional[_Iterable[str]] = ..., parsed_json: _Optional[str] = ..., history: _Optional[_Iterable[_Union[SignalStep, _Mapping]]] = ...) -> None: ...

class SubmitSignalRequest(_message.Message):
    __slots__ = ("body", "format", "idempotency_key", "dry_run", "source")
    BODY_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DRY_RUN_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    body: str
    format: str
    idempotency_key: str
    dry_run: bool
    source: str
    def __init__(self, body: _Optional[str] = ..., format: _Optional[str] = ..., idempotency_key: _Optional[str] = ..., dry_run: _Optional[bool] = ..., source: _Optional[str] = ...) -> None: ...

class SubmitSignalResponse(_message.Message):
    __slots__ = ("signal", "duplicate", "explanation")
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    signal: Signal
    duplicate: bool
    explanation: str
    def __init__(self, signal: _Optional[_Union[Signal, _Mapping]] = ..., duplicate: _Optional[bool] = ..., explanation: _Optional[str] = ...) -> None: ...

class ListSignalsRequest(_message.Message):
    __slots__ = ("account", "page_size", "page_token")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account: str
    page_size: int
    page_token: str
    def __init__(self, account: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSignalsResponse(_message.Message):
    __slots__ = ("signals", "next_page_token")
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    signals: _containers.RepeatedCompositeFieldContainer[Signal]
    next_page_token: str
    def __init__(self, signals: _Optional[_Iterable[_Union[Signal, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetSignalRequest(_message.Message):
    __slots__ = ("signal_id",)
    SIGNAL_ID_FIELD_NUMBER: _ClassVar[int]
    signal_id: str
    def __init__(self, signal_id: _Optional[str] = ...) -> None: ...

class GetSignalResponse(_message.Message):
    __slots__ = ("signal",)
    SIGNAL_FIELD_NUMBER: _ClassVar[int]
    signal: Signal
    def __init__(self, signal: _Optional[_Union[Signal, _Mapping]] = ...) -> None: ...

class PausedRoute(_message.Message):
    __slots__ = ("route", "since", "by")
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    route: str
    since: str
    by: str
    def __init__(self, route: _Optional[str] = ..., since: _Optional[str] = ..., by: _Optional[str] = ...) -> None: ...

class SetRoutePausedRequest(_message.Message):
    __slots__ = ("route", "paused")
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    route: str
    paused: bool
    def __init__(self, route: _Optional[str] = ..., paused: _Optional[bool] = ...) -> None: ...

class SetRoutePausedResponse(_message.Message):
    __slots__ = ("paused", "route")
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    ROUTE_FIELD_NUMBER: _ClassVar[int]
    paused: bool
    route: PausedRoute
    def __init__(self, paused: _Optional[bool] = ..., route: _Optional[_Union[PausedRoute, _Mapping]] = ...) -> None: ...

class ListPausedRoutesRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    def __init__(self, account: _Optional[str] = ...) -> None: ...

class ListPausedRoutesResponse(_message.Message):
    __slots__ = ("routes",)
    ROUTES_FIELD_NUMBER: _ClassVar[int]
    routes: _containers.RepeatedCompositeFieldContainer[PausedRoute]
    def __init__(self, routes: _Optional[_Iterable[_Union[PausedRoute, _Mapping]]] = ...) -> None: ...
