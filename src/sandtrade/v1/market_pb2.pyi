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

class OptionRight(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OPTION_RIGHT_UNSPECIFIED: _ClassVar[OptionRight]
    OPTION_RIGHT_CALL: _ClassVar[OptionRight]
    OPTION_RIGHT_PUT: _ClassVar[OptionRight]
FEED_STATE_UNSPECIFIED: FeedState
FEED_STATE_STARTING: FeedState
FEED_STATE_RUNNING: FeedState
FEED_STATE_LOOPING: FeedState
FEED_STATE_SYNTHETIC: FeedState
FEED_STATE_ENDED: FeedState
FEED_STATE_FAILED: FeedState
FEED_STATE_STOPPED: FeedState
OPTION_RIGHT_UNSPECIFIED: OptionRight
OPTION_RIGHT_CALL: OptionRight
OPTION_RIGHT_PUT: OptionRight

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

class GetOptionChainRequest(_message.Message):
    __slots__ = ("underlying", "expiry", "min_strike", "max_strike", "strikes_around_spot")
    UNDERLYING_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    MIN_STRIKE_FIELD_NUMBER: _ClassVar[int]
    MAX_STRIKE_FIELD_NUMBER: _ClassVar[int]
    STRIKES_AROUND_SPOT_FIELD_NUMBER: _ClassVar[int]
    underlying: str
    expiry: str
    min_strike: float
    max_strike: float
    strikes_around_spot: int
    def __init__(self, underlying: _Optional[str] = ..., expiry: _Optional[str] = ..., min_strike: _Optional[float] = ..., max_strike: _Optional[float] = ..., strikes_around_spot: _Optional[int] = ...) -> None: ...

class OptionChainRow(_message.Message):
    __slots__ = ("symbol", "expiry", "right", "strike", "bid", "ask", "mark", "last", "volume", "open_interest", "iv", "delta", "gamma", "theta", "vega", "theo")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    STRIKE_FIELD_NUMBER: _ClassVar[int]
    BID_FIELD_NUMBER: _ClassVar[int]
    ASK_FIELD_NUMBER: _ClassVar[int]
    MARK_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    OPEN_INTEREST_FIELD_NUMBER: _ClassVar[int]
    IV_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    GAMMA_FIELD_NUMBER: _ClassVar[int]
    THETA_FIELD_NUMBER: _ClassVar[int]
    VEGA_FIELD_NUMBER: _ClassVar[int]
    THEO_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    expiry: str
    right: OptionRight
    strike: float
    bid: float
    ask: float
    mark: float
    last: float
    volume: float
    open_interest: float
    iv: float
    delta: float
    gamma: float
    theta: float
    vega: float
    theo: float
    def __init__(self, symbol: _Optional[str] = ..., expiry: _Optional[str] = ..., right: _Optional[_Union[OptionRight, str]] = ..., strike: _Optional[float] = ..., bid: _Optional[float] = ..., ask: _Optional[float] = ..., mark: _Optional[float] = ..., last: _Optional[float] = ..., volume: _Optional[float] = ..., open_interest: _Optional[float] = ..., iv: _Optional[float] = ..., delta: _Optional[float] = ..., gamma: _Optional[float] = ..., theta: _Optional[float] = ..., vega: _Optional[float] = ..., theo: _Optional[float] = ...) -> None: ...

class GetOptionChainResponse(_message.Message):
    __slots__ = ("underlying", "as_of", "spot", "expiries", "rows", "source")
    UNDERLYING_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    SPOT_FIELD_NUMBER: _ClassVar[int]
    EXPIRIES_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    underlying: str
    as_of: _timestamp_pb2.Timestamp
    spot: float
    expiries: _containers.RepeatedScalarFieldContainer[str]
    rows: _containers.RepeatedCompositeFieldContainer[OptionChainRow]
    source: str
    def __init__(self, underlying: _Optional[str] = ..., as_of: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., spot: _Optional[float] = ..., expiries: _Optional[_Iterable[str]] = ..., rows: _Optional[_Iterable[_Union[OptionChainRow, _Mapping]]] = ..., source: _Optional[str] = ...) -> None: ...

class GetOptionGreeksRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    def __init__(self, account: _Optional[str] = ...) -> None: ...

class UnderlyingGreeks(_message.Message):
    __slots__ = ("underlying", "greeks")
    UNDERLYING_FIELD_NUMBER: _ClassVar[int]
    GREEKS_FIELD_NUMBER: _ClassVar[int]
    underlying: str
    greeks: _common_pb2.Greeks
    def __init__(self, underlying: _Optional[str] = ..., greeks: _Optional[_Union[_common_pb2.Greeks, _Mapping]] = ...) -> None: ...

class GetOptionGreeksResponse(_message.Message):
    __slots__ = ("account", "positions", "underlyings", "total", "market_value", "unrealized_pnl")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    UNDERLYINGS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    MARKET_VALUE_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    account: str
    positions: _containers.RepeatedCompositeFieldContainer[_common_pb2.PositionGreeks]
    underlyings: _containers.RepeatedCompositeFieldContainer[UnderlyingGreeks]
    total: _common_pb2.Greeks
    market_value: float
    unrealized_pnl: float
    def __init__(self, account: _Optional[str] = ..., positions: _Optional[_Iterable[_Union[_common_pb2.PositionGreeks, _Mapping]]] = ..., underlyings: _Optional[_Iterable[_Union[UnderlyingGreeks, _Mapping]]] = ..., total: _Optional[_Union[_common_pb2.Greeks, _Mapping]] = ..., market_value: _Optional[float] = ..., unrealized_pnl: _Optional[float] = ...) -> None: ...
