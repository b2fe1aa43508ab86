from google.protobuf import struct_pb2 as _struct_pb2
from sandtrade.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PerformanceGrouping(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERFORMANCE_GROUPING_UNSPECIFIED: _ClassVar[PerformanceGrouping]
    PERFORMANCE_GROUPING_ACCOUNT: _ClassVar[PerformanceGrouping]
    PERFORMANCE_GROUPING_STRATEGY: _ClassVar[PerformanceGrouping]
    PERFORMANCE_GROUPING_SOURCE: _ClassVar[PerformanceGrouping]
PERFORMANCE_GROUPING_UNSPECIFIED: PerformanceGrouping
PERFORMANCE_GROUPING_ACCOUNT: PerformanceGrouping
PERFORMANCE_GROUPING_STRATEGY: PerformanceGrouping
PERFORMANCE_GROUPING_SOURCE: PerformanceGrouping

class SubmitOrderRequest(_message.Message):
    __slots__ = ("account", "symbol", "side", "qty", "equity_fraction", "type", "limit_price", "stop_price", "tif", "reduce_only", "client_order_id", "tag", "order_class", "take_profit", "stop_loss", "trail_price", "trail_percent", "legs", "close_group")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SIDE_FIELD_NUMBER: _ClassVar[int]
    QTY_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FRACTION_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    STOP_PRICE_FIELD_NUMBER: _ClassVar[int]
    TIF_FIELD_NUMBER: _ClassVar[int]
    REDUCE_ONLY_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    ORDER_CLASS_FIELD_NUMBER: _ClassVar[int]
    TAKE_PROFIT_FIELD_NUMBER: _ClassVar[int]
    STOP_LOSS_FIELD_NUMBER: _ClassVar[int]
    TRAIL_PRICE_FIELD_NUMBER: _ClassVar[int]
    TRAIL_PERCENT_FIELD_NUMBER: _ClassVar[int]
    LEGS_FIELD_NUMBER: _ClassVar[int]
    CLOSE_GROUP_FIELD_NUMBER: _ClassVar[int]
    account: str
    symbol: str
    side: _common_pb2.OrderSide
    qty: float
    equity_fraction: float
    type: _common_pb2.OrderType
    limit_price: float
    stop_price: float
    tif: _common_pb2.TimeInForce
    reduce_only: bool
    client_order_id: str
    tag: str
    order_class: _common_pb2.OrderClass
    take_profit: _common_pb2.ExitSpec
    stop_loss: _common_pb2.ExitSpec
    trail_price: float
    trail_percent: float
    legs: _containers.RepeatedCompositeFieldContainer[_common_pb2.Leg]
    close_group: str
    def __init__(self, account: _Optional[str] = ..., symbol: _Optional[str] = ..., side: _Optional[_Union[_common_pb2.OrderSide, str]] = ..., qty: _Optional[float] = ..., equity_fraction: _Optional[float] = ..., type: _Optional[_Union[_common_pb2.OrderType, str]] = ..., limit_price: _Optional[float] = ..., stop_price: _Optional[float] = ..., tif: _Optional[_Union[_common_pb2.TimeInForce, str]] = ..., reduce_only: _Optional[bool] = ..., client_order_id: _Optional[str] = ..., tag: _Optional[str] = ..., order_class: _Optional[_Union[_common_pb2.OrderClass, str]] = ..., take_profit: _Optional[_Union[_common_pb2.ExitSpec, _Mapping]] = ..., stop_loss: _Optional[_Union[_common_pb2.ExitSpec, _Mapping]] = ..., trail_price: _Optional[float] = ..., trail_percent: _Optional[float] = ..., legs: _Optional[_Iterable[_Union[_common_pb2.Leg, _Mapping]]] = ..., close_group: _Optional[str] = ...) -> None: ...

class SubmitOrderResponse(_message.Message):
    __slots__ = ("order", "duplicate")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    order: _common_pb2.Order
    duplicate: bool
    def __init__(self, order: _Optional[_Union[_common_pb2.Order, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class SubmitOrderStreamRequest(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: SubmitOrderRequest
    def __init__(self, order: _Optional[_Union[SubmitOrderRequest, _Mapping]] = ...) -> None: ...

class OrderError(_message.Message):
    __slots__ = ("code", "message", "field")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    FIELD_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    field: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ..., field: _Optional[str] = ...) -> None: ...

class SubmitOrderStreamResponse(_message.Message):
    __slots__ = ("client_order_id", "result", "error")
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    client_order_id: str
    result: SubmitOrderResponse
    error: OrderError
    def __init__(self, client_order_id: _Optional[str] = ..., result: _Optional[_Union[SubmitOrderResponse, _Mapping]] = ..., error: _Optional[_Union[OrderError, _Mapping]] = ...) -> None: ...

class CancelOrderRequest(_message.Message):
    __slots__ = ("order_id",)
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    def __init__(self, order_id: _Optional[str] = ...) -> None: ...

class CancelOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _common_pb2.Order
    def __init__(self, order: _Optional[_Union[_common_pb2.Order, _Mapping]] = ...) -> None: ...

class GetOrderRequest(_message.Message):
    __slots__ = ("order_id", "client_order_id", "account")
    ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    order_id: str
    client_order_id: str
    account: str
    def __init__(self, order_id: _Optional[str] = ..., client_order_id: _Optional[str] = ..., account: _Optional[str] = ...) -> None: ...

class GetOrderResponse(_message.Message):
    __slots__ = ("order",)
    ORDER_FIELD_NUMBER: _ClassVar[int]
    order: _common_pb2.Order
    def __init__(self, order: _Optional[_Union[_common_pb2.Order, _Mapping]] = ...) -> None: ...

class ListOrdersRequest(_message.Message):
    __slots__ = ("account", "status", "open_only", "page_size", "page_token")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    OPEN_ONLY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account: str
    status: _common_pb2.OrderStatus
    open_only: bool
    page_size: int
    page_token: str
    def __init__(self, account: _Optional[str] = ..., status: _Optional[_Union[_common_pb2.OrderStatus, str]] = ..., open_only: _Optional[bool] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListOrdersResponse(_message.Message):
    __slots__ = ("orders", "next_page_token")
    ORDERS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    orders: _containers.RepeatedCompositeFieldContainer[_common_pb2.Order]
    next_page_token: str
    def __init__(self, orders: _Optional[_Iterable[_Union[_common_pb2.Order, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListPositionsRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    def __init__(self, account: _Optional[str] = ...) -> None: ...

class ListPositionsResponse(_message.Message):
    __slots__ = ("positions",)
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    positions: _containers.RepeatedCompositeFieldContainer[_common_pb2.Position]
    def __init__(self, positions: _Optional[_Iterable[_Union[_common_pb2.Position, _Mapping]]] = ...) -> None: ...

class GetAccountRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    def __init__(self, account: _Optional[str] = ...) -> None: ...

class GetAccountResponse(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: _common_pb2.Account
    def __init__(self, account: _Optional[_Union[_common_pb2.Account, _Mapping]] = ...) -> None: ...

class GetPerformanceRequest(_message.Message):
    __slots__ = ("account", "by")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    BY_FIELD_NUMBER: _ClassVar[int]
    account: str
    by: PerformanceGrouping
    def __init__(self, account: _Optional[str] = ..., by: _Optional[_Union[PerformanceGrouping, str]] = ...) -> None: ...

class PerformanceFigures(_message.Message):
    __slots__ = ("key", "return_pct", "max_drawdown_pct", "sharpe", "win_rate_pct", "profit_factor", "trades")
    KEY_FIELD_NUMBER: _ClassVar[int]
    RETURN_PCT_FIELD_NUMBER: _ClassVar[int]
    MAX_DRAWDOWN_PCT_FIELD_NUMBER: _ClassVar[int]
    SHARPE_FIELD_NUMBER: _ClassVar[int]
    WIN_RATE_PCT_FIELD_NUMBER: _ClassVar[int]
    PROFIT_FACTOR_FIELD_NUMBER: _ClassVar[int]
    TRADES_FIELD_NUMBER: _ClassVar[int]
    key: str
    return_pct: float
    max_drawdown_pct: float
    sharpe: float
    win_rate_pct: float
    profit_factor: float
    trades: int
    def __init__(self, key: _Optional[str] = ..., return_pct: _Optional[float] = ..., max_drawdown_pct: _Optional[float] = ..., sharpe: _Optional[float] = ..., win_rate_pct: _Optional[float] = ..., profit_factor: _Optional[float] = ..., trades: _Optional[int] = ...) -> None: ...

class GetPerformanceResponse(_message.Message):
    __slots__ = ("groups",)
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[PerformanceFigures]
    def __init__(self, groups: _Optional[_Iterable[_Union[PerformanceFigures, _Mapping]]] = ...) -> None: ...

class StreamTradeUpdatesRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    def __init__(self, account: _Optional[str] = ...) -> None: ...

class StreamTradeUpdatesResponse(_message.Message):
    __slots__ = ("order", "fill")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    FILL_FIELD_NUMBER: _ClassVar[int]
    order: _common_pb2.Order
    fill: _common_pb2.Fill
    def __init__(self, order: _Optional[_Union[_common_pb2.Order, _Mapping]] = ..., fill: _Optional[_Union[_common_pb2.Fill, _Mapping]] = ...) -> None: ...

class RiskRules(_message.Message):
    __slots__ = ("max_position_qty", "max_position_notional", "max_position_notional_by_symbol", "max_gross_exposure", "max_daily_loss", "max_order_notional", "max_orders_per_day", "pattern_day_trader", "options_level")
    class MaxPositionNotionalBySymbolEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MAX_POSITION_QTY_FIELD_NUMBER: _ClassVar[int]
    MAX_POSITION_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    MAX_POSITION_NOTIONAL_BY_SYMBOL_FIELD_NUMBER: _ClassVar[int]
    MAX_GROSS_EXPOSURE_FIELD_NUMBER: _ClassVar[int]
    MAX_DAILY_LOSS_FIELD_NUMBER: _ClassVar[int]
    MAX_ORDER_NOTIONAL_FIELD_NUMBER: _ClassVar[int]
    MAX_ORDERS_PER_DAY_FIELD_NUMBER: _ClassVar[int]
    PATTERN_DAY_TRADER_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_LEVEL_FIELD_NUMBER: _ClassVar[int]
    max_position_qty: float
    max_position_notional: float
    max_position_notional_by_symbol: _containers.ScalarMap[str, float]
    max_gross_exposure: float
    max_daily_loss: float
    max_order_notional: float
    max_orders_per_day: int
    pattern_day_trader: bool
    options_level: int
    def __init__(self, max_position_qty: _Optional[float] = ..., max_position_notional: _Optional[float] = ..., max_position_notional_by_symbol: _Optional[_Mapping[str, float]] = ..., max_gross_exposure: _Optional[float] = ..., max_daily_loss: _Optional[float] = ..., max_order_notional: _Optional[float] = ..., max_orders_per_day: _Optional[int] = ..., pattern_day_trader: _Optional[bool] = ..., options_level: _Optional[int] = ...) -> None: ...

class AccountSettings(_message.Message):
    __slots__ = ("risk",)
    RISK_FIELD_NUMBER: _ClassVar[int]
    risk: RiskRules
    def __init__(self, risk: _Optional[_Union[RiskRules, _Mapping]] = ...) -> None: ...

class RiskStanding(_message.Message):
    __slots__ = ("day", "start_equity", "equity", "loss_today", "orders_today", "day_trades", "halted")
    DAY_FIELD_NUMBER: _ClassVar[int]
    START_EQUITY_FIELD_NUMBER: _ClassVar[int]
    EQUITY_FIELD_NUMBER: _ClassVar[int]
    LOSS_TODAY_FIELD_NUMBER: _ClassVar[int]
    ORDERS_TODAY_FIELD_NUMBER: _ClassVar[int]
    DAY_TRADES_FIELD_NUMBER: _ClassVar[int]
    HALTED_FIELD_NUMBER: _ClassVar[int]
    day: str
    start_equity: float
    equity: float
    loss_today: float
    orders_today: int
    day_trades: int
    halted: str
    def __init__(self, day: _Optional[str] = ..., start_equity: _Optional[float] = ..., equity: _Optional[float] = ..., loss_today: _Optional[float] = ..., orders_today: _Optional[int] = ..., day_trades: _Optional[int] = ..., halted: _Optional[str] = ...) -> None: ...

class GetAccountSettingsRequest(_message.Message):
    __slots__ = ("account",)
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    account: str
    def __init__(self, account: _Optional[str] = ...) -> None: ...

class GetAccountSettingsResponse(_message.Message):
    __slots__ = ("account", "settings", "own", "standing", "quotas")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    OWN_FIELD_NUMBER: _ClassVar[int]
    STANDING_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    account: str
    settings: AccountSettings
    own: bool
    standing: RiskStanding
    quotas: AccountQuotas
    def __init__(self, account: _Optional[str] = ..., settings: _Optional[_Union[AccountSettings, _Mapping]] = ..., own: _Optional[bool] = ..., standing: _Optional[_Union[RiskStanding, _Mapping]] = ..., quotas: _Optional[_Union[AccountQuotas, _Mapping]] = ...) -> None: ...

class AccountQuotas(_message.Message):
    __slots__ = ("orders_per_second", "order_burst", "cancels_per_second", "cancel_burst", "open_orders", "signals_per_second", "signal_burst", "strategies_running", "flood_seconds", "strategy_ctx_calls", "strategy_log_lines_per_second", "strategy_log_bytes_per_second", "strategy_log_burst_seconds", "strategy_state_bytes")
    ORDERS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    ORDER_BURST_FIELD_NUMBER: _ClassVar[int]
    CANCELS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    CANCEL_BURST_FIELD_NUMBER: _ClassVar[int]
    OPEN_ORDERS_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_BURST_FIELD_NUMBER: _ClassVar[int]
    STRATEGIES_RUNNING_FIELD_NUMBER: _ClassVar[int]
    FLOOD_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_CTX_CALLS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_LOG_LINES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_LOG_BYTES_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_LOG_BURST_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_STATE_BYTES_FIELD_NUMBER: _ClassVar[int]
    orders_per_second: float
    order_burst: int
    cancels_per_second: float
    cancel_burst: int
    open_orders: int
    signals_per_second: float
    signal_burst: int
    strategies_running: int
    flood_seconds: int
    strategy_ctx_calls: int
    strategy_log_lines_per_second: float
    strategy_log_bytes_per_second: int
    strategy_log_burst_seconds: float
    strategy_state_bytes: int
    def __init__(self, orders_per_second: _Optional[float] = ..., order_burst: _Optional[int] = ..., cancels_per_second: _Optional[float] = ..., cancel_burst: _Optional[int] = ..., open_orders: _Optional[int] = ..., signals_per_second: _Optional[float] = ..., signal_burst: _Optional[int] = ..., strategies_running: _Optional[int] = ..., flood_seconds: _Optional[int] = ..., strategy_ctx_calls: _Optional[int] = ..., strategy_log_lines_per_second: _Optional[float] = ..., strategy_log_bytes_per_second: _Optional[int] = ..., strategy_log_burst_seconds: _Optional[float] = ..., strategy_state_bytes: _Optional[int] = ...) -> None: ...

class SetAccountSettingsRequest(_message.Message):
    __slots__ = ("account", "settings", "use_defaults", "request_id")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    USE_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    account: str
    settings: AccountSettings
    use_defaults: bool
    request_id: str
    def __init__(self, account: _Optional[str] = ..., settings: _Optional[_Union[AccountSettings, _Mapping]] = ..., use_defaults: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class SetAccountSettingsResponse(_message.Message):
    __slots__ = ("account", "settings", "own", "standing", "quotas")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    OWN_FIELD_NUMBER: _ClassVar[int]
    STANDING_FIELD_NUMBER: _ClassVar[int]
    QUOTAS_FIELD_NUMBER: _ClassVar[int]
    account: str
    settings: AccountSettings
    own: bool
    standing: RiskStanding
    quotas: AccountQuotas
    def __init__(self, account: _Optional[str] = ..., settings: _Optional[_Union[AccountSettings, _Mapping]] = ..., own: _Optional[bool] = ..., standing: _Optional[_Union[RiskStanding, _Mapping]] = ..., quotas: _Optional[_Union[AccountQuotas, _Mapping]] = ...) -> None: ...

class ListPositionGroupsRequest(_message.Message):
    __slots__ = ("account", "page_size", "page_token")
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    account: str
    page_size: int
    page_token: str
    def __init__(self, account: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class PositionGroup(_message.Message):
    __slots__ = ("id", "account", "underlying", "order", "legs", "greeks", "market_value", "unrealized_pnl", "max_profit", "max_loss", "breakevens")
    ID_FIELD_NUMBER: _ClassVar[int]
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    UNDERLYING_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    LEGS_FIELD_NUMBER: _ClassVar[int]
    GREEKS_FIELD_NUMBER: _ClassVar[int]
    MARKET_VALUE_FIELD_NUMBER: _ClassVar[int]
    UNREALIZED_PNL_FIELD_NUMBER: _ClassVar[int]
    MAX_PROFIT_FIELD_NUMBER: _ClassVar[int]
    MAX_LOSS_FIELD_NUMBER: _ClassVar[int]
    BREAKEVENS_FIELD_NUMBER: _ClassVar[int]
    id: str
    account: str
    underlying: str
    order: _common_pb2.Order
    legs: _containers.RepeatedCompositeFieldContainer[_common_pb2.PositionGreeks]
    greeks: _common_pb2.Greeks
    market_value: float
    unrealized_pnl: float
    max_profit: float
    max_loss: float
    breakevens: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, id: _Optional[str] = ..., account: _Optional[str] = ..., underlying: _Optional[str] = ..., order: _Optional[_Union[_common_pb2.Order, _Mapping]] = ..., legs: _Optional[_Iterable[_Union[_common_pb2.PositionGreeks, _Mapping]]] = ..., greeks: _Optional[_Union[_common_pb2.Greeks, _Mapping]] = ..., market_value: _Optional[float] = ..., unrealized_pnl: _Optional[float] = ..., max_profit: _Optional[float] = ..., max_loss: _Optional[float] = ..., breakevens: _Optional[_Iterable[float]] = ...) -> None: ...

class ListPositionGroupsResponse(_message.Message):
    __slots__ = ("groups", "next_page_token")
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[PositionGroup]
    next_page_token: str
    def __init__(self, groups: _Optional[_Iterable[_Union[PositionGroup, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SubmitOptionStrategyRequest(_message.Message):
    __slots__ = ("account", "strategy", "underlying", "expiry", "parameters", "qty", "limit_price", "tif", "client_order_id", "tag", "validate_only")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _struct_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...
    ACCOUNT_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    UNDERLYING_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    QTY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_PRICE_FIELD_NUMBER: _ClassVar[int]
    TIF_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ORDER_ID_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    VALIDATE_ONLY_FIELD_NUMBER: _ClassVar[int]
    account: str
    strategy: str
    underlying: str
    expiry: str
    parameters: _containers.MessageMap[str, _struct_pb2.Value]
    qty: float
    limit_price: float
    tif: _common_pb2.TimeInForce
    client_order_id: str
    tag: str
    validate_only: bool
    def __init__(self, account: _Optional[str] = ..., strategy: _Optional[str] = ..., underlying: _Optional[str] = ..., expiry: _Optional[str] = ..., parameters: _Optional[_Mapping[str, _struct_pb2.Value]] = ..., qty: _Optional[float] = ..., limit_price: _Optional[float] = ..., tif: _Optional[_Union[_common_pb2.TimeInForce, str]] = ..., client_order_id: _Optional[str] = ..., tag: _Optional[str] = ..., validate_only: _Optional[bool] = ...) -> None: ...

class StrategyLeg(_message.Message):
    __slots__ = ("leg", "price", "iv", "strike", "expiry", "right")
    LEG_FIELD_NUMBER: _ClassVar[int]
    PRICE_FIELD_NUMBER: _ClassVar[int]
    IV_FIELD_NUMBER: _ClassVar[int]
    STRIKE_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    RIGHT_FIELD_NUMBER: _ClassVar[int]
    leg: _common_pb2.Leg
    price: float
    iv: float
    strike: float
    expiry: str
    right: str
    def __init__(self, leg: _Optional[_Union[_common_pb2.Leg, _Mapping]] = ..., price: _Optional[float] = ..., iv: _Optional[float] = ..., strike: _Optional[float] = ..., expiry: _Optional[str] = ..., right: _Optional[str] = ...) -> None: ...

class StrategyPlan(_message.Message):
    __slots__ = ("strategy", "underlying", "expiry", "legs", "net_price", "max_profit", "max_loss", "breakevens", "spot")
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    UNDERLYING_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_FIELD_NUMBER: _ClassVar[int]
    LEGS_FIELD_NUMBER: _ClassVar[int]
    NET_PRICE_FIELD_NUMBER: _ClassVar[int]
    MAX_PROFIT_FIELD_NUMBER: _ClassVar[int]
    MAX_LOSS_FIELD_NUMBER: _ClassVar[int]
    BREAKEVENS_FIELD_NUMBER: _ClassVar[int]
    SPOT_FIELD_NUMBER: _ClassVar[int]
    strategy: str
    underlying: str
    expiry: str
    legs: _containers.RepeatedCompositeFieldContainer[StrategyLeg]
    net_price: float
    max_profit: float
    max_loss: float
    breakevens: _containers.RepeatedScalarFieldContainer[float]
    spot: float
    def __init__(self, strategy: _Optional[str] = ..., underlying: _Optional[str] = ..., expiry: _Optional[str] = ..., legs: _Optional[_Iterable[_Union[StrategyLeg, _Mapping]]] = ..., net_price: _Optional[float] = ..., max_profit: _Optional[float] = ..., max_loss: _Optional[float] = ..., breakevens: _Optional[_Iterable[float]] = ..., spot: _Optional[float] = ...) -> None: ...

class SubmitOptionStrategyResponse(_message.Message):
    __slots__ = ("plan", "order", "duplicate")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    plan: StrategyPlan
    order: _common_pb2.Order
    duplicate: bool
    def __init__(self, plan: _Optional[_Union[StrategyPlan, _Mapping]] = ..., order: _Optional[_Union[_common_pb2.Order, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...
