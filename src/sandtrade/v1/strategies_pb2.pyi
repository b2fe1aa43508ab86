import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StrategyState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STRATEGY_STATE_UNSPECIFIED: _ClassVar[StrategyState]
    STRATEGY_STATE_STOPPED: _ClassVar[StrategyState]
    STRATEGY_STATE_STARTING: _ClassVar[StrategyState]
    STRATEGY_STATE_RUNNING: _ClassVar[StrategyState]
    STRATEGY_STATE_FAILED: _ClassVar[StrategyState]
    STRATEGY_STATE_STOPPING: _ClassVar[StrategyState]

class LogOrigin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_ORIGIN_UNSPECIFIED: _ClassVar[LogOrigin]
    LOG_ORIGIN_STRATEGY: _ClassVar[LogOrigin]
    LOG_ORIGIN_HOST: _ClassVar[LogOrigin]
    LOG_ORIGIN_ERROR: _ClassVar[LogOrigin]
STRATEGY_STATE_UNSPECIFIED: StrategyState
STRATEGY_STATE_STOPPED: StrategyState
STRATEGY_STATE_STARTING: StrategyState
STRATEGY_STATE_RUNNING: StrategyState
STRATEGY_STATE_FAILED: StrategyState
STRATEGY_STATE_STOPPING: StrategyState
LOG_ORIGIN_UNSPECIFIED: LogOrigin
LOG_ORIGIN_STRATEGY: LogOrigin
LOG_ORIGIN_HOST: LogOrigin
LOG_ORIGIN_ERROR: LogOrigin

class Diagnostic(_message.Message):
    __slots__ = ("file", "line", "message")
    FILE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    file: str
    line: int
    message: str
    def __init__(self, file: _Optional[str] = ..., line: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class Strategy(_message.Message):
    __slots__ = ("name", "account", "params", "symbols", "state", "source_sha256", "uploaded_at", "id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    UPLOADED_AT_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    account: str
    params: _struct_pb2.Struct
    symbols: _containers.RepeatedScalarFieldContainer[str]
    state: StrategyState
    source_sha256: str
    uploaded_at: _timestamp_pb2.Timestamp
    id: str
    def __init__(self, name: _Optional[str] = ..., account: _Optional[str] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., symbols: _Optional[_Iterable[str]] = ..., state: _Optional[_Union[StrategyState, str]] = ..., source_sha256: _Optional[str] = ..., uploaded_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., id: _Optional[str] = ...) -> None: ...

class UploadStrategyRequest(_message.Message):
    __slots__ = ("name", "source", "account", "symbols", "params")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    name: str
    source: str
    account: str
    symbols: _containers.RepeatedScalarFieldContainer[str]
    params: _struct_pb2.Struct
    def __init__(self, name: _Optional[str] = ..., source: _Optional[str] = ..., account: _Optional[str] = ..., symbols: _Optional[_Iterable[str]] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class UploadStrategyResponse(_message.Message):
    __slots__ = ("strategy", "diagnostics")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    DIAGNOSTICS_FIELD_NUMBER: _ClassVar[int]
    strategy: Strategy
    diagnostics: _containers.RepeatedCompositeFieldContainer[Diagnostic]
    def __init__(self, strategy: _Optional[_Union[Strategy, _Mapping]] = ..., diagnostics: _Optional[_Iterable[_Union[Diagnostic, _Mapping]]] = ...) -> None: ...

class StartStrategyRequest(_message.Message):
    __slots__ = ("name", "account")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    account: str
    def __init__(self, name: _Optional[str] = ..., account: _Optional[str] = ...) -> None: ...

class StartStrategyResponse(_message.Message):
    __slots__ = ("strategy",)
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    strategy: Strategy
    def __init__(self, strategy: _Optional[_Union[Strategy, _Mapping]] = ...) -> None: ...

class StopStrategyRequest(_message.Message):
    __slots__ = ("name", "account")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    account: str
    def __init__(self, name: _Optional[str] = ..., account: _Optional[str] = ...) -> None: ...

class StopStrategyResponse(_message.Message):
    __slots__ = ("strategy",)
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    strategy: Strategy
    def __init__(self, strategy: _Optional[_Union[Strategy, _Mapping]] = ...) -> None: ...

class ListStrategiesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "account")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    account: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., account: _Optional[str] = ...) -> None: ...

class ListStrategiesResponse(_message.Message):
    __slots__ = ("strategies", "next_page_token")
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    strategies: _containers.RepeatedCompositeFieldContainer[Strategy]
    next_page_token: str
    def __init__(self, strategies: _Optional[_Iterable[_Union[Strategy, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetStrategyStatusRequest(_message.Message):
    __slots__ = ("name", "account")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    account: str
    def __init__(self, name: _Optional[str] = ..., account: _Optional[str] = ...) -> None: ...

class GetStrategyStatusResponse(_message.Message):
    __slots__ = ("strategy", "cpu_seconds", "rss_bytes", "kill_reason", "last_errors", "restarts", "lag_bars", "lag_seconds", "bars_coalesced", "bars_dropped")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    CPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    KILL_REASON_FIELD_NUMBER: _ClassVar[int]
    LAST_ERRORS_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    LAG_BARS_FIELD_NUMBER: _ClassVar[int]
    LAG_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BARS_COALESCED_FIELD_NUMBER: _ClassVar[int]
    BARS_DROPPED_FIELD_NUMBER: _ClassVar[int]
    strategy: Strategy
    cpu_seconds: float
    rss_bytes: int
    kill_reason: str
    last_errors: _containers.RepeatedScalarFieldContainer[str]
    restarts: int
    lag_bars: int
    lag_seconds: float
    bars_coalesced: int
    bars_dropped: int
    def __init__(self, strategy: _Optional[_Union[Strategy, _Mapping]] = ..., cpu_seconds: _Optional[float] = ..., rss_bytes: _Optional[int] = ..., kill_reason: _Optional[str] = ..., last_errors: _Optional[_Iterable[str]] = ..., restarts: _Optional[int] = ..., lag_bars: _Optional[int] = ..., lag_seconds: _Optional[float] = ..., bars_coalesced: _Optional[int] = ..., bars_dropped: _Optional[int] = ...) -> None: ...

class StreamStrategyLogsRequest(_message.Message):
    __slots__ = ("name", "tail", "follow", "account")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    tail: int
    follow: bool
    account: str
    def __init__(self, name: _Optional[str] = ..., tail: _Optional[int] = ..., follow: _Optional[bool] = ..., account: _Optional[str] = ...) -> None: ...

class StreamStrategyLogsResponse(_message.Message):
    __slots__ = ("time", "line", "origin")
    TIME_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    line: str
    origin: LogOrigin
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., line: _Optional[str] = ..., origin: _Optional[_Union[LogOrigin, str]] = ...) -> None: ...

class DeleteStrategyRequest(_message.Message):
    __slots__ = ("name", "account", "request_id")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    name: str
    account: str
    request_id: str
    def __init__(self, name: _Optional[str] = ..., account: _Optional[str] = ..., request_id: _Optional[str] = ...) -> None: ...

class DeleteStrategyResponse(_message.Message):
    __slots__ = ("strategy",)
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    strategy: Strategy
    def __init__(self, strategy: _Optional[_Union[Strategy, _Mapping]] = ...) -> None: ...

class RunBacktestRequest(_message.Message):
    __slots__ = ("name", "symbols", "cash", "commission", "params", "benchmark", "account")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    CASH_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    BENCHMARK_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    symbols: _containers.RepeatedScalarFieldContainer[str]
    cash: float
    commission: float
    params: _struct_pb2.Struct
    benchmark: str
    account: str
    def __init__(self, name: _Optional[str] = ..., symbols: _Optional[_Iterable[str]] = ..., cash: _Optional[float] = ..., commission: _Optional[float] = ..., params: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., benchmark: _Optional[str] = ..., account: _Optional[str] = ...) -> None: ...

class RunBacktestResponse(_message.Message):
    __slots__ = ("bars_done", "bars_total", "stats", "trades", "stat_names")
    BARS_DONE_FIELD_NUMBER: _ClassVar[int]
    BARS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    STAT_NAMES_FIELD_NUMBER: _ClassVar[int]
    bars_done: int
    bars_total: int
    stats: _struct_pb2.Struct
    trades: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Struct]
    stat_names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, bars_done: _Optional[int] = ..., bars_total: _Optional[int] = ..., stats: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., trades: _Optional[_Iterable[_Union[_struct_pb2.Struct, _Mapping]]] = ..., stat_names: _Optional[_Iterable[str]] = ...) -> None: ...

class GetFanoutStatsRequest(_message.Message):
    __slots__ = ("latest",)
    LATEST_FIELD_NUMBER: _ClassVar[int]
    latest: int
    def __init__(self, latest: _Optional[int] = ...) -> None: ...

class StrategyLag(_message.Message):
    __slots__ = ("name", "account", "bars", "seconds", "events", "p99_ms")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    BARS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    name: str
    account: str
    bars: int
    seconds: float
    events: int
    p99_ms: float
    def __init__(self, name: _Optional[str] = ..., account: _Optional[str] = ..., bars: _Optional[int] = ..., seconds: _Optional[float] = ..., events: _Optional[int] = ..., p99_ms: _Optional[float] = ...) -> None: ...

class GetFanoutStatsResponse(_message.Message):
    __slots__ = ("mode", "strategies", "bars", "p50_ms", "p99_ms", "max_ms", "lags")
    MODE_FIELD_NUMBER: _ClassVar[int]
    STRATEGIES_FIELD_NUMBER: _ClassVar[int]
    BARS_FIELD_NUMBER: _ClassVar[int]
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_MS_FIELD_NUMBER: _ClassVar[int]
    LAGS_FIELD_NUMBER: _ClassVar[int]
    mode: str
    strategies: int
    bars: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    lags: _containers.RepeatedCompositeFieldContainer[StrategyLag]
    def __init__(self, mode: _Optional[str] = ..., strategies: _Optional[int] = ..., bars: _Optional[int] = ..., p50_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ..., max_ms: _Optional[float] = ..., lags: _Optional[_Iterable[_Union[StrategyLag, _Mapping]]] = ...) -> None: ...
