import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class OrderSide(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_SIDE_UNSPECIFIED: _ClassVar[OrderSide]
    ORDER_SIDE_BUY: _ClassVar[OrderSide]
    ORDER_SIDE_SELL: _ClassVar[OrderSide]

class OrderType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_TYPE_UNSPECIFIED: _ClassVar[OrderType]
    ORDER_TYPE_MARKET: _ClassVar[OrderType]
    ORDER_TYPE_LIMIT: _ClassVar[OrderType]
    ORDER_TYPE_STOP: _ClassVar[OrderType]
    ORDER_TYPE_STOP_LIMIT: _ClassVar[OrderType]
    ORDER_TYPE_TRAILING_STOP: _ClassVar[OrderType]

class OrderClass(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_CLASS_UNSPECIFIED: _ClassVar[OrderClass]
    ORDER_CLASS_SIMPLE: _ClassVar[OrderClass]
    ORDER_CLASS_BRACKET: _ClassVar[OrderClass]
    ORDER_CLASS_OCO: _ClassVar[OrderClass]
    ORDER_CLASS_OTO: _ClassVar[OrderClass]
    ORDER_CLASS_MLEG: _ClassVar[OrderClass]

class LegIntent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEG_INTENT_UNSPECIFIED: _ClassVar[LegIntent]
    LEG_INTENT_OPEN: _ClassVar[LegIntent]
    LEG_INTENT_CLOSE: _ClassVar[LegIntent]
    LEG_INTENT_AUTO: _ClassVar[LegIntent]

class FillKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FILL_KIND_UNSPECIFIED: _ClassVar[FillKind]
    FILL_KIND_TRADE: _ClassVar[FillKind]
    FILL_KIND_EXERCISE: _ClassVar[FillKind]
    FILL_KIND_ASSIGNMENT: _ClassVar[FillKind]
    FILL_KIND_EXPIRY: _ClassVar[FillKind]

class TimeInForce(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TIME_IN_FORCE_UNSPECIFIED: _ClassVar[TimeInForce]
    TIME_IN_FORCE_DAY: _ClassVar[TimeInForce]
    TIME_IN_FORCE_GTC: _ClassVar[TimeInForce]
    TIME_IN_FORCE_IOC: _ClassVar[TimeInForce]
    TIME_IN_FORCE_FOK: _ClassVar[TimeInForce]

class OrderStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_STATUS_UNSPECIFIED: _ClassVar[OrderStatus]
    ORDER_STATUS_NEW: _ClassVar[OrderStatus]
    ORDER_STATUS_ACCEPTED: _ClassVar[OrderStatus]
    ORDER_STATUS_PARTIALLY_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_FILLED: _ClassVar[OrderStatus]
    ORDER_STATUS_CANCELED: _ClassVar[OrderStatus]
    ORDER_STATUS_REJECTED: _ClassVar[OrderStatus]
    ORDER_STATUS_EXPIRED: _ClassVar[OrderStatus]

class OrderSourceKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ORDER_SOURCE_KIND_UNSPECIFIED: _ClassVar[OrderSourceKind]
    ORDER_SOURCE_KIND_TRADINGVIEW: _ClassVar[OrderSourceKind]
    ORDER_SOURCE_KIND_GRPC: _ClassVar[OrderSourceKind]
    ORDER_SOURCE_KIND_CLIENT: _ClassVar[OrderSourceKind]
    ORDER_SOURCE_KIND_STRATEGY: _ClassVar[OrderSourceKind]
    ORDER_SOURCE_KIND_REPLAY: _ClassVar[OrderSourceKind]
    ORDER_SOURCE_KIND_CLI: _ClassVar[OrderSourceKind]
ORDER_SIDE_UNSPECIFIED: OrderSide
ORDER_SIDE_BUY: OrderSide
ORDER_SIDE_SELL: OrderSide
ORDER_TYPE_UNSPECIFIED: OrderType
ORDER_TYPE_MARKET: OrderType
ORDER_TYPE_LIMIT: OrderType
ORDER_TYPE_STOP: OrderType
ORDER_TYPE_STOP_LIMIT: OrderType
ORDER_TYPE_TRAILING_STOP: OrderType
ORDER_CLASS_UNSPECIFIED: OrderClass
ORDER_CLASS_SIMPLE: OrderClass
ORDER_CLASS_BRACKET: OrderClass
ORDER_CLASS_OCO: OrderClass
ORDER_CLASS_OTO: OrderClass
ORDER_CLASS_MLEG: OrderClass
LEG_INTENT_UNSPECIFIED: LegIntent
LEG_INTENT_OPEN: LegIntent
LEG_INTENT_CLOSE: LegIntent
LEG_INTENT_AUTO: LegIntent
FILL_KIND_UNSPECIFIED: FillKind
FILL_KIND_TRADE: FillKind
FILL_KIND_EXERCISE: FillKind
FILL_KIND_ASSIGNMENT: FillKind
FILL_KIND_EXPIRY: FillKind
TIME_IN_FORCE_UNSPECIFIED: TimeInForce
TIME_IN_FORCE_DAY: TimeInForce
TIME_IN_FORCE_GTC: TimeInForce
TIME_IN_FORCE_IOC: TimeInForce
TIME_IN_FORCE_FOK: TimeInForce
ORDER_STATUS_UNSPECIFIED: OrderStatus
ORDER_STATUS_NEW: OrderStatus
ORDER_STATUS_ACCEPTED: OrderStatus
ORDER_STATUS_PARTIALLY_FILLED: OrderStatus
ORDER_STATUS_FILLED: OrderStatus
ORDER_STATUS_CANCELED: OrderStatus
ORDER_STATUS_REJECTED: OrderStatus
ORDER_STATUS_EXPIRED: OrderStatus
ORDER_SOURCE_KIND_UNSPECIFIED: OrderSourceKind
ORDER_SOURCE_KIND_TRADINGVIEW: OrderSourceKind
ORDER_SOURCE_KIND_GRPC: OrderSourceKind
ORDER_SOURCE_KIND_CLIENT: OrderSourceKind
ORDER_SOURCE_KIND_STRATEGY: OrderSourceKind
ORDER_SOURCE_KIND_REPLAY: OrderSourceKind
ORDER_SOURCE_KIND_CLI: OrderSourceKind

class Leg(_message.Message):
    __slots__ = ("symbol", "side", "ratio", "intent")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    side: OrderSide
    ratio: int
    intent: LegIntent
    def __init__(self, symbol: _Optional[str] = ..., side: _Optional[_Union[OrderSide, str]] = ..., ratio: _Optional[int] = ..., intent: _Optional[_Union[LegIntent, str]] = ...) -> None: ...

class OrderLeg(_message.Message):
    __slots__ = ("leg", "status", "filled_qty")
    LEG_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FILLED_QTY_FIELD_NUMBER: _ClassVar[int]
    leg: Leg
    status: OrderStatus
    filled_qty: float
    def __init__(self, leg: _Optional[_Union[Leg, _Mapping]] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., filled_qty: _Optional[float] = ...) -> None: ...

class ExitSpec(_message.Message):
    __slots__ = ("price", "percent", "amount", "limit_price")
    PRICE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    price: float
    percent: float
    amount: float
    limit_price: float
    def __init__(self, price: _Optional[float] = ..., percent: _Optional[float] = ..., amount: _Optional[float] = ..., limit_price: _Optional[float] = ...) -> None: ...

class Bar(_message.Message):
    __slots__ = ("symbol", "time", "open", "high", "low", "close", "volume")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    VOLUME_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    time: _timestamp_pb2.Timestamp
    open: float
    high: float
    low: float
    close: float
    volume: float
    def __init__(self, symbol: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., open: _Optional[float] = ..., high: _Optional[float] = ..., low: _Optional[float] = ..., close: _Optional[float] = ..., volume: _Optional[float] = ...) -> None: ...

class Quote(_message.Message):
    __slots__ = ("symbol", "time", "bid", "ask", "bid_size", "ask_size")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    BID_FIELD_NUMBER: _ClassVar[int]
    ASK_FIELD_NUMBER: _ClassVar[int]
    BID_SIZE_FIELD_NUMBER: _ClassVar[int]
    ASK_SIZE_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    time: _timestamp_pb2.Timestamp
    bid: float
    ask: float
    bid_size: float
    ask_size: float
    def __init__(self, symbol: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., bid: _Optional[float] = ..., ask: _Optional[float] = ..., bid_size: _Optional[float] = ..., ask_size: _Optional[float] = ...) -> None: ...

class Order(_message.Message):
    __slots__ = ("id", "account", "symbol", "side", "type", "qty", "equity_fraction", "limit_price", "stop_price", "tif", "reduce_only", "client_order_id", "tag", "status", "filled_qty", "avg_fill_price", "reject_reason", "created_at", "updated_at", "order_class", "take_profit", "stop_loss", "trail_price", "trail_percent", "parent_id", "hwm", "legs", "source")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    QTY_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FRACTION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_PRICE_FIELD_NUMBER: _ClassVar[int]
    TIF_FIELD_NUMBER: _ClassVar[int]
    REDUCE_ONLY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FILLED_QTY_FIELD_NUMBER: _ClassVar[int]
    AVG_FILL_PRICE_FIELD_NUMBER: _ClassVar[int]
    REJECT_REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    ORDER_CLASS_FIELD_NUMBER: _ClassVar[int]
    TAKE_PROFIT_FIELD_NUMBER: _ClassVar[int]
    STOP_LOSS_FIELD_NUMBER: _ClassVar[int]
    TRAIL_PRICE_FIELD_NUMBER: _ClassVar[int]
    TRAIL_PERCENT_FIELD_NUMBER: _ClassVar[int]
    PARENT_ID_FIELD_NUMBER: _ClassVar[int]
    HWM_FIELD_NUMBER: _ClassVar[int]
    LEGS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    id: str
    account: str
    symbol: str
    side: OrderSide
    type: OrderType
    qty: float
    equity_fraction: float
    limit_price: float
    stop_price: float
    tif: TimeInForce
    reduce_only: bool
    client_order_id: str
    tag: str
    status: OrderStatus
    filled_qty: float
    avg_fill_price: float
    reject_reason: str
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    order_class: OrderClass
    take_profit: ExitSpec
    stop_loss: ExitSpec
    trail_price: float
    trail_percent: float
    parent_id: str
    hwm: float
    legs: _containers.RepeatedCompositeFieldContainer[OrderLeg]
    source: OrderSource
    def __init__(self, id: _Optional[str] = ..., account: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[OrderSide, str]] = ..., type: _Optional[_Union[OrderType, str]] = ..., qty: _Optional[float] = ..., equity_fraction: _Optional[float] = ..., limit_price: _Optional[float] = ..., stop_price: _Optional[float] = ..., tif: _Optional[_Union[TimeInForce, str]] = ..., reduce_only: _Optional[bool] = ..., client_order_id: _Optional[str] = ..., tag: _Optional[str] = ..., status: _Optional[_Union[OrderStatus, str]] = ..., filled_qty: _Optional[float] = ..., avg_fill_price: _Optional[float] = ..., reject_reason: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., order_class: _Optional[_Union[OrderClass, str]] = ..., take_profit: _Optional[_Union[ExitSpec, _Mapping]] = ..., stop_loss: _Optional[_Union[ExitSpec, _Mapping]] = ..., trail_price: _Optional[float] = ..., trail_percent: _Optional[float] = ..., parent_id: _Optional[str] = ..., hwm: _Optional[float] = ..., legs: _Optional[_Iterable[_Union[OrderLeg, _Mapping]]] = ..., source: _Optional[_Union[OrderSource, _Mapping]] = ...) -> None: ...

class OrderSource(_message.Message):
    __slots__ = ("kind", "ref", "label")
    KIND_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    kind: OrderSourceKind
    ref: str
    label: str
    def __init__(self, kind: _Optional[_Union[OrderSourceKind, str]] = ..., ref: _Optional[str] = ..., label: _Optional[str] = ...) -> None: ...

class Fill(_message.Message):
    __slots__ = ("id", "order_id", "account", "symbol", "side", "qty", "price", "commission", "time", "kind")
    ID_FIELD_NUMBER: _ClassVar[int]
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QTY_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    id: str
    order_id: str
    account: str
    symbol: str
    side: OrderSide
    qty: float
    price: float
    commission: float
    time: _timestamp_pb2.Timestamp
    kind: FillKind
    def __init__(self, id: _Optional[str] = ..., order_id: _Optional[str] = ..., account: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[OrderSide, str]] = ..., qty: _Optional[float] = ..., price: _Optional[float] = ..., commission: _Optional[float] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., kind: _Optional[_Union[FillKind, str]] = ...) -> None: ...

class Position(_message.Message):
    __slots__ = ("account", "symbol", "qty", "avg_price", "realized_pnl", "market_price", "multiplier", "market_value", "unrealized_pnl")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    QTY_FIELD_NUMBER: _ClassVar[int]
    AVG_PRICE_FIELD_NUMBER: _ClassVar[int]
    REALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    MARKET_PRICE_FIELD_NUMBER: _ClassVar[int]
    MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    MARKET_VALUE_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    account: str
    symbol: str
    qty: float
    avg_price: float
    realized_pnl: float
    market_price: float
    multiplier: float
    market_value: float
    unrealized_pnl: float
    def __init__(self, account: _Optional[str] = ..., symbol: _Optional[str] = ..., qty: _Optional[float] = ..., avg_price: _Optional[float] = ..., realized_pnl: _Optional[float] = ..., market_price: _Optional[float] = ..., multiplier: _Optional[float] = ..., market_value: _Optional[float] = ..., unrealized_pnl: _Optional[float] = ...) -> None: ...

class Account(_message.Message):
    __slots__ = ("id", "currency", "cash", "initial_cash", "equity", "buying_power", "realized_pnl", "commissions", "long_market_value", "short_market_value")
    ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    CASH_FIELD_NUMBER: _ClassVar[int]
    INITIAL_CASH_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    BUYING_POWER_FIELD_NUMBER: _ClassVar[int]
    REALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    COMMISSIONS_FIELD_NUMBER: _ClassVar[int]
    LONG_MARKET_VALUE_FIELD_NUMBER: _ClassVar[int]
    SHORT_MARKET_VALUE_FIELD_NUMBER: _ClassVar[int]
    id: str
    currency: str
    cash: float
    initial_cash: float
    equity: float
    buying_power: float
    realized_pnl: float
    commissions: float
    long_market_value: float
    short_market_value: float
    def __init__(self, id: _Optional[str] = ..., currency: _Optional[str] = ..., cash: _Optional[float] = ..., initial_cash: _Optional[float] = ..., equity: _Optional[float] = ..., buying_power: _Optional[float] = ..., realized_pnl: _Optional[float] = ..., commissions: _Optional[float] = ..., long_market_value: _Optional[float] = ..., short_market_value: _Optional[float] = ...) -> None: ...

class Greeks(_message.Message):
    __slots__ = ("delta", "gamma", "theta", "vega")
    DELTA_FIELD_NUMBER: _ClassVar[int]
    GAMMA_FIELD_NUMBER: _ClassVar[int]
    THETA_FIELD_NUMBER: _ClassVar[int]
    VEGA_FIELD_NUMBER: _ClassVar[int]
    delta: float
    gamma: float
    theta: float
    vega: float
    def __init__(self, delta: _Optional[float] = ..., gamma: _Optional[float] = ..., theta: _Optional[float] = ..., vega: _Optional[float] = ...) -> None: ...

class PositionGreeks(_message.Message):
    __slots__ = ("symbol", "underlying", "qty", "multiplier", "mark", "market_value", "unrealized_pnl", "greeks", "priced", "avg_price", "iv")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    UNDERLYING_FIELD_NUMBER: _ClassVar[int]
    QTY_FIELD_NUMBER: _ClassVar[int]
    MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    MARK_FIELD_NUMBER: _ClassVar[int]
    MARKET_VALUE_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    GREEKS_FIELD_NUMBER: _ClassVar[int]
    PRICED_FIELD_NUMBER: _ClassVar[int]
    AVG_PRICE_FIELD_NUMBER: _ClassVar[int]
    IV_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    underlying: str
    qty: float
    multiplier: float
    mark: float
    market_value: float
    unrealized_pnl: float
    greeks: Greeks
    priced: bool
    avg_price: float
    iv: float
    def __init__(self, symbol: _Optional[str] = ..., underlying: _Optional[str] = ..., qty: _Optional[float] = ..., multiplier: _Optional[float] = ..., mark: _Optional[float] = ..., market_value: _Optional[float] = ..., unrealized_pnl: _Optional[float] = ..., greeks: _Optional[_Union[Greeks, _Mapping]] = ..., priced: _Optional[bool] = ..., avg_price: _Optional[float] = ..., iv: _Optional[float] = ...) -> None: ...
