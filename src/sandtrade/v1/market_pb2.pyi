import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from sandtrade.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FeedState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FEED_STATE_UNSPECIFIED: _ClassVar[FeedState]
    FEED_STATE_STARTING: _ClassVar[FeedState]
    FEED_STATE_RUNNING: _ClassVar[FeedState]
    FEED_STATE_LOOPING: _ClassVar[FeedState]
    FEED_STATE_SYNTHETIC: _ClassVar[FeedState]
    FEED_STATE_ENDED: _ClassVar[FeedState]
    FEED_STATE_FAILED: _ClassVar[FeedState]
    FEED_STATE_STOPPED: _ClassVar[FeedState]
FEED_STATE_UNSPECIFIED: FeedState
FEED_STATE_STARTING: FeedState
FEED_STATE_RUNNING: FeedState
FEED_STATE_LOOPING: FeedState
FEED_STATE_SYNTHETIC: FeedState
FEED_STATE_ENDED: FeedState
FEED_STATE_FAILED: FeedState
FEED_STATE_STOPPED: FeedState

class GetBarsRequest(_message.Message):
    __slots__ = ("symbol", "start", "end", "limit", "chunk_size")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    CHUNK_SIZE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    limit: int
    chunk_size: int
    def __init__(self, symbol: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ..., chunk_size: _Optional[int] = ...) -> None: ...

class GetBarsResponse(_message.Message):
    __slots__ = ("bars",)
    BARS_FIELD_NUMBER: _ClassVar[int]
    bars: _containers.RepeatedCompositeFieldContainer[_common_pb2.Bar]
    def __init__(self, bars: _Optional[_Iterable[_Union[_common_pb2.Bar, _Mapping]]] = ...) -> None: ...

class StreamBarsRequest(_message.Message):
    __slots__ = ("symbols",)
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class StreamBarsResponse(_message.Message):
    __slots__ = ("bar",)
    BAR_FIELD_NUMBER: _ClassVar[int]
    bar: _common_pb2.Bar
    def __init__(self, bar: _Optional[_Union[_common_pb2.Bar, _Mapping]] = ...) -> None: ...

class GetLatestQuoteRequest(_message.Message):
    __slots__ = ("symbol",)
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    def __init__(self, symbol: _Optional[str] = ...) -> None: ...

class GetLatestQuoteResponse(_message.Message):
    __slots__ = ("quote",)
    QUOTE_FIELD_NUMBER: _ClassVar[int]
    quote: _common_pb2.Quote
    def __init__(self, quote: _Optional[_Union[_common_pb2.Quote, _Mapping]] = ...) -> None: ...

class ListSymbolsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSymbolsResponse(_message.Message):
    __slots__ = ("symbols",)
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ...) -> None: ...

class GetFeedStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetFeedStatusResponse(_message.Message):
    __slots__ = ("source", "then", "state", "position", "error", "symbols")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    THEN_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    source: str
    then: str
    state: FeedState
    position: int
    error: str
    symbols: _containers.RepeatedCompositeFieldContainer[SymbolFeedStatus]
    def __init__(self, source: _Optional[str] = ..., then: _Optional[str] = ..., state: _Optional[_Union[FeedState, str]] = ..., position: _Optional[int] = ..., error: _Optional[str] = ..., symbols: _Optional[_Iterable[_Union[SymbolFeedStatus, _Mapping]]] = ...) -> None: ...

class SymbolFeedStatus(_message.Message):
    __slots__ = ("symbol", "state", "bars", "source_bars", "passes", "last_bar_time", "ended_at", "shift_seconds", "message")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    BARS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_BARS_FIELD_NUMBER: _ClassVar[int]
    PASSES_FIELD_NUMBER: _ClassVar[int]
    LAST_BAR_TIME_FIELD_NUMBER: _ClassVar[int]
    ENDED_AT_FIELD_NUMBER: _ClassVar[int]
    SHIFT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    state: FeedState
    bars: int
    source_bars: int
    passes: int
    last_bar_time: _timestamp_pb2.Timestamp
    ended_at: _timestamp_pb2.Timestamp
    shift_seconds: int
    message: str
    def __init__(self, symbol: _Optional[str] = ..., state: _Optional[_Union[FeedState, str]] = ..., bars: _Optional[int] = ..., source_bars: _Optional[int] = ..., passes: _Optional[int] = ..., last_bar_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., ended_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., shift_seconds: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...
