"""The Python client of the sandtrade gRPC API.

::

    from sandtrade.client import Client

    with Client("127.0.0.1:50051", token="st_…", queue_path="orders.queue") as c:
        order = c.submit_order("AAPL", "buy", 10)
        print(order.status, c.account().equity)

Every mutating call carries an idempotency key (an order's ``client_order_id``, generated when
not given), so the client retries it after a lost reply or a dropped connection, with
exponential backoff, and the host executes it once. With ``queue_path``, orders sent while the
host is unreachable are kept in a file and sent, in order, when it is back (``submit_order``
then returns a :class:`QueuedOrder`); the queue survives the client process. Signals work the
same way: ``c.send_signal("buy 10 AAPL")`` or ``c.send_signal({"symbol": "AAPL", "action":
"long", "qty": 10})``, each with an idempotency key, queued when the host is away.
"""

from sandtrade.client.client import (
    AccountSettingsInfo,
    ApiError,
    BacktestProgress,
    Client,
    FailedPrecondition,
    InvalidArgument,
    LogEntry,
    NotFound,
    PermissionDenied,
    PositionGroupInfo,
    QueuedOrder,
    QueuedSignal,
    ResourceExhausted,
    SignalInfo,
    StrategyInfo,
    StrategyOrder,
    StrategyStatus,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "AccountSettingsInfo",
    "ApiError",
    "BacktestProgress",
    "Client",
    "FailedPrecondition",
    "InvalidArgument",
    "LogEntry",
    "NotFound",
    "PermissionDenied",
    "PositionGroupInfo",
    "QueuedOrder",
    "QueuedSignal",
    "ResourceExhausted",
    "SignalInfo",
    "StrategyInfo",
    "StrategyOrder",
    "StrategyStatus",
    "Unauthenticated",
    "Unavailable",
]
