"""Domain types shared by every room: instruments, market data, orders, fills, positions, accounts.

Entities with a life cycle (orders, fills, positions, accounts, trades) are pydantic v2 models:
they cross process and network boundaries, get persisted, and a bad value must be rejected
with a message naming the field and the value.

Market data records (:class:`Bar`, :class:`Quote`) are immutable ``NamedTuple`` records instead.
A back-test creates one per bar, hundreds of thousands per run; pydantic construction would cost
more than everything else the engine does for that bar. They are validated once, where they enter
the system (:meth:`Bar.checked`, the CSV loader), and are plain read-only data afterwards, which
is also what untrusted strategy code may be handed.

What a broker event changed (:class:`BrokerChange`, written by the store as one transaction) and
what a trade-update subscriber receives (:class:`TradeUpdate`) are plain dataclasses: the broker
builds them from models it has already checked, so there is nothing to validate, and the broker,
the store, transport and the client all share them.

Prices and quantities are floats. Back-tests must agree to the cent with backtesting.py, which
computes in floats, and float arithmetic is an order of magnitude faster than ``Decimal``;
quantities are snapped to each instrument's lot size (:meth:`Instrument.round_qty`) so that
fractional crypto quantities stay exact multiples of the lot.

It is one file because these are the vocabulary every room shares: an order's rules (its
class and legs included, :func:`order_class_problem`) belong to the type, checked wherever
an order is built, and a room that splits them would import them all back together.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "CASH_SETTLED_ROOTS",
    "CRYPTO_ASSETS",
    "CRYPTO_QUOTES",
    "ORDER_SOURCE_KINDS",
    "TERMINAL_STATUSES",
    "Account",
    "AssetClass",
    "Bar",
    "BrokerChange",
    "ExitSpec",
    "Fill",
    "FillKind",
    "Instrument",
    "Leg",
    "LegIntent",
    "OptionRight",
    "Order",
    "OrderClass",
    "OrderSide",
    "OrderSource",
    "OrderStatus",
    "OrderType",
    "Position",
    "Quote",
    "TimeInForce",
    "Trade",
    "TradeUpdate",
    "copied",
    "crypto_pair",
    "implied_order_type",
    "multileg_problem",
    "option_underlying",
    "order_class_problem",
    "parse_occ_symbol",
    "trusted",
    "unvalidated",
]

M = TypeVar("M", bound=BaseModel)


#: BaseModel's slots, set through their descriptors: a bound setter call is cheaper than
#: ``object.__setattr__``, which looks the name up on every call.
_set_fields_set = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_object_setattr = object.__setattr__
#: Each trusted class's field names (every field is given, so they are the set fields).
_FIELD_NAMES: dict[type[BaseModel], frozenset[str]] = {}


def trusted(cls: type[M], **values: Any) -> M:
    """Build ``cls`` from values computed by our own code, skipping validation.

    For the broker's hot path only (a fill, a closed trade): pydantic's ``model_construct``
    costs more than validating; this sets the same instance state directly. Every field must
    be given, with a value of its declared type.
    """
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(cls.model_fields)
    # set(frozenset) copies the table without hashing; a call that left a field out (none
    # should) still records exactly the fields it gave.
    return unvalidated(cls, values, set(names) if len(values) == len(names) else set(values))


def copied(model: M) -> M:
    """A shallow copy of ``model``, equal to ``model.model_copy()`` (its fields, the fields
    set, its extra fields) without pydantic's Python-level steps: the broker copies every
    order it commits, and each fill's order, position and account, so on a live host's busy
    bar ``model_copy`` was a seventh of the feed's time. Not for models with private
    attributes (none of ours has any)."""
    obj = unvalidated(type(model), model.__dict__.copy(), set(model.__pydantic_fields_set__))
    if model.__pydantic_extra__ is not None:
        _set_extra(obj, dict(model.__pydantic_extra__))
    return obj


def unvalidated(cls: type[M], values: dict[str, Any], fields_set: set[str]) -> M:
    """``cls`` with ``values`` (every field, checked by the caller) as its state and
    ``fields_set`` as the fields pydantic records as given, without validation: the one
    place that builds a model by hand (:func:`trusted`, the broker's order fast path)."""
    obj = cls.__new__(cls)
    _object_setattr(obj, "__dict__", values)
    _set_fields_set(obj, fields_set)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


# --------------------------------------------------------------------------- instruments


class AssetClass(StrEnum):
    """What kind of thing an instrument is; decides quantity rules and allowed order types."""

    EQUITY = "equity"
    CRYPTO = "crypto"
    OPTION = "option"


class OptionRight(StrEnum):
    """Call or put."""

    CALL = "call"
    PUT = "put"


_OCC_RE = re.compile(r"^(?P<root>[A-Z0-9.]{1,6}) *(?P<date>\d{6})(?P<right>[CP])(?P<strike>\d{8})$")


def parse_occ_symbol(symbol: str) -> tuple[str, date, OptionRight, float]:
    """Split an OCC option symbol such as ``SPY   251219C00450000`` into its parts.

    Returns ``(underlying, expiry, right, strike)``. The root may be padded with spaces to six
    characters (the OCC's own form) or not padded at all (``SPY251219C00450000``).
    """
    m = _OCC_RE.match(symbol.strip().upper())
    if not m:
        raise ValueError(
            f"{symbol!r} is not an OCC option symbol; expected ROOT (1-6 chars, optionally "
            "space-padded to 6) + YYMMDD + C or P + strike x 1000 in 8 digits, "
            "e.g. 'SPY   251219C00450000'"
        )
    raw = m["date"]
    try:
        expiry = date(2000 + int(raw[:2]), int(raw[2:4]), int(raw[4:]))
    except ValueError:
        raise ValueError(f"{symbol!r}: expiry {raw!r} is not a valid YYMMDD date") from None
    right = OptionRight.CALL if m["right"] == "C" else OptionRight.PUT
    return m["root"], expiry, right, int(m["strike"]) / 1000.0


#: Crypto assets a pair written without a separator may start with (``BTCUSD``, ``ETHBTC``):
#: the common ones on Coinbase, Kraken, Binance and TradingView, reviewed by hand, 3 characters
#: or more. A US equity ticker has at most 5 letters and a pair at least 6, so a whole
#: BASE+QUOTE spelling cannot be a stock; a base alone can (ETH is Ethan Allen, BTCS a stock).
CRYPTO_ASSETS = frozenset({
    "BTC", "XBT", "ETH", "SOL", "ADA", "DOGE", "XDG", "XRP", "LTC", "BCH", "DOT", "AVAX",
    "LINK", "MATIC", "POL", "UNI", "ATOM", "XLM", "TRX", "SHIB", "ETC", "FIL", "NEAR", "APT",
    "ARB", "AAVE", "ALGO", "XMR", "XTZ", "EOS", "SAND", "MANA", "AXS", "CRV", "MKR", "COMP",
    "SNX", "SUSHI", "YFI", "BNB", "TON", "SUI", "PEPE", "ICP", "HBAR", "VET", "GRT", "INJ",
    "RNDR", "RENDER", "FTM", "KSM", "ZEC", "DASH", "BAT", "ENJ", "CHZ", "LDO", "STX", "IMX",
    "QNT", "EGLD", "FLOW", "MINA", "GALA", "APE", "BONK", "WIF", "SEI", "TIA", "JUP", "WBTC",
    "PAXG", "USDT", "USDC", "DAI",
})
#: What a crypto pair may be priced in: fiat currencies, stablecoins and the big crypto assets.
CRYPTO_QUOTES = frozenset({
    "USD", "EUR", "GBP", "JPY", "AUD", "CAD", "CHF", "KRW", "TRY", "BRL",
    "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USDP", "DAI",
    "BTC", "XBT", "ETH", "BNB", "SOL",
})
_FIAT_AND_STABLE = frozenset({"USD", "EUR", "GBP", "JPY", "AUD", "CAD", "CHF", "KRW", "TRY",
                              "BRL", "USDT", "USDC", "BUSD", "FDUSD", "TUSD", "USDP", "DAI"})
_PAIR_SEPARATED = re.compile(r"^(?P<base>[A-Z0-9]{2,10})[-/](?P<quote>[A-Z0-9]{2,10})$")


def crypto_pair(symbol: str) -> tuple[str, str] | None:
    """``(base, quote)`` when ``symbol`` spells a crypto pair, else None.

    With a separator (``BTC-USD``, ``BTC/USD``) the base or the quote must be a crypto code or
    the quote a currency: the separator says it is a pair, so a new coin (``PEPE-USD``) counts,
    and a share class (``BRK-B``) does not. Without one (``BTCUSD``, ``BTCUSDT``, ``ETHBTC``,
    ``XBTUSD``, TradingView's perpetual ``BTCUSDT.P``) the base must be in
    :data:`CRYPTO_ASSETS` and the rest in :data:`CRYPTO_QUOTES`: only a whole pair counts.
    """
    text = symbol.strip().upper()
    m = _PAIR_SEPARATED.match(text)
    if m:
        base, quote = m["base"], m["quote"]
        if quote in CRYPTO_QUOTES or base in CRYPTO_ASSETS or quote in CRYPTO_ASSETS:
            return base, quote
        return None
    text = text.removesuffix(".P")
    for cut in range(3, len(text) - 2):
        if text[:cut] in CRYPTO_ASSETS and text[cut:] in CRYPTO_QUOTES:
            return text[:cut], text[cut:]
    return None


class Instrument(BaseModel):
    """A tradable thing and its trading rules.

    ``lot_size`` is the quantity step (1 share, 1 contract, 1e-8 BTC); ``min_notional`` the
    smallest order value the venue accepts; ``multiplier`` scales price to value (100 for a
    standard equity option).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    symbol: Annotated[str, Field(min_length=1, max_length=32)]
    asset_class: AssetClass = AssetClass.EQUITY
    lot_size: Annotated[float, Field(gt=0)] = 1.0
    min_notional: Annotated[float, Field(ge=0)] = 0.0
    tick_size: Annotated[float, Field(gt=0)] = 0.01
    multiplier: Annotated[float, Field(gt=0)] = 1.0
    shortable: bool = True
    underlying: str | None = None
    expiry: date | None = None
    right: OptionRight | None = None
    strike: float | None = None

    @field_validator("symbol")
    @classmethod
    def _symbol_is_clean(cls, v: str) -> str:
        if v != v.strip() and not _OCC_RE.match(v.strip()):
            raise ValueError(f"symbol {v!r} has leading or trailing spaces")
        return v

    @classmethod
    def equity(cls, symbol: str, *, fractional: bool = False, **kw: object) -> Instrument:
        """A stock or ETF; whole shares unless ``fractional`` (then 1e-9 shares, as Alpaca)."""
        return cls(symbol=symbol, asset_class=AssetClass.EQUITY,
                   lot_size=1e-9 if fractional else 1.0, **kw)  # type: ignore[arg-type]

    @classmethod
    def crypto(cls, symbol: str, *, lot_size: float = 1e-8, min_notional: float = 1.0,
               **kw: object) -> Instrument:
        """A crypto pair such as ``BTC-USD``: fractional quantities, traded around the clock."""
        return cls(symbol=symbol, asset_class=AssetClass.CRYPTO, lot_size=lot_size,
                   min_notional=min_notional, **kw)  # type: ignore[arg-type]

    @classmethod
    def for_symbol(cls, symbol: str) -> Instrument:
        """The instrument a bare symbol (a CSV file's name, a synthetic symbol) stands for: a
        crypto pair (:func:`crypto_pair`) trades fractionally, anything else is a whole-share
        equity. The one place the host decides it."""
        pair = crypto_pair(symbol)
        if pair is None:
            return cls.equity(symbol)
        # The minimum order value is in the quote currency: 1 USD (or EUR, USDT ...) is a
        # venue's usual floor, 1 BTC for ETHBTC would refuse every ordinary order.
        return cls.crypto(symbol, min_notional=1.0 if pair[1] in _FIAT_AND_STABLE else 0.0)

    def quantity_problem(self, qty: float) -> str | None:
        """Why ``qty`` units (the sign ignored) cannot be traded, or None: below the lot size,
        or not a whole number of lots."""
        q = abs(qty)
        if q < self.lot_size * (1 - 1e-9):
            unit = " (it trades in whole units)" if self.lot_size == 1 else \
                " (the smallest quantity it trades in)"
            return f"quantity {q!r} is below {self.symbol}'s lot size {self.lot_size:g}{unit}"
        if not self.is_whole_lots(q):
            # repr, not :g: six significant digits would print 0.123456789 as 0.123457,
            # a whole number of 1e-8 lots, and the message would contradict itself.
            below = self.round_qty(q)
            hint = f" (nearest below: {below!r})" if below > 0 else ""
            return (f"quantity {q!r} is not a whole number of {self.symbol}'s lot size "
                    f"{self.lot_size:g}{hint}")
        return None

    @classmethod
    def option(cls, occ_symbol: str) -> Instrument:
        """A standard (100-share) equity option from its OCC symbol."""
        underlying, expiry, right, strike = parse_occ_symbol(occ_symbol)
        return cls(symbol=occ_symbol.strip().upper(), asset_class=AssetClass.OPTION,
                   lot_size=1.0, multiplier=100.0, underlying=underlying, expiry=expiry,
                   right=right, strike=strike, shortable=True)

    @property
    def fractional(self) -> bool:
        """True when quantities below one unit are allowed."""
        return self.lot_size < 1.0

    @property
    def _lot_decimals(self) -> int:
        return max(0, -math.floor(math.log10(self.lot_size) + 1e-12)) if self.lot_size < 1 else 0

    def round_qty(self, qty: float) -> float:
        """Round a quantity down (towards zero) to a whole number of lots."""
        lots = math.floor(abs(qty) / self.lot_size + 1e-9)
        out = round(lots * self.lot_size, self._lot_decimals)
        return math.copysign(out, qty) if out else 0.0

    def is_whole_lots(self, qty: float) -> bool:
        """True when ``qty`` is a whole number of lots (within float noise)."""
        lots = abs(qty) / self.lot_size
        return abs(lots - round(lots)) <= 1e-9 * max(1.0, lots)


# --------------------------------------------------------------------------- market data


def _check_finite(field: str, value: float, where: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ValueError(f"{where}{field} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{where}{field} must be finite, got {value!r}")
    return v


class Bar(NamedTuple):
    """One OHLCV bar: the price range of ``symbol`` over the interval that starts at ``time``."""

    symbol: str
    time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float = 0.0

    @classmethod
    def checked(cls, symbol: str, time: datetime, open: float, high: float, low: float,
                close: float, volume: float = 0.0) -> Bar:
        """Build a bar, raising ``ValueError`` naming the field and value when it is not sane."""
        where = f"bar {symbol} {time}: "
        o, h = _check_finite("open", open, where), _check_finite("high", high, where)
        lo, c = _check_finite("low", low, where), _check_finite("close", close, where)
        v = _check_finite("volume", volume, where)
        for name, val in (("open", o), ("high", h), ("low", lo), ("close", c)):
            if val <= 0:
                raise ValueError(f"{where}{name} must be positive, got {val!r}")
        if v < 0:
            raise ValueError(f"{where}volume must not be negative, got {v!r}")
        if h < max(o, c, lo) or lo > min(o, c):
            raise ValueError(
                f"{where}high/low do not contain open/close "
                f"(open={o}, high={h}, low={lo}, close={c})"
            )
        return cls(symbol, time, o, h, lo, c, v)


class Quote(NamedTuple):
    """Best bid and ask for ``symbol`` at ``time``."""

    symbol: str
    time: datetime
    bid: float
    ask: float
    bid_size: float = 0.0
    ask_size: float = 0.0

    @property
    def mid(self) -> float:
        """The midpoint between bid and ask."""
        return (self.bid + self.ask) / 2.0


# --------------------------------------------------------------------------- orders


class OrderSide(StrEnum):
    """Buy or sell. A sell with no long position opens (or adds to) a short."""

    BUY = "buy"
    SELL = "sell"

    @property
    def sign(self) -> int:
        """+1 for buy, -1 for sell."""
        return 1 if self is OrderSide.BUY else -1


class OrderType(StrEnum):
    """How the fill price is determined."""

    MARKET = "market"
    LIMIT = "limit"
    STOP = "stop"
    STOP_LIMIT = "stop_limit"
    TRAILING_STOP = "trailing_stop"


def implied_order_type(limit_price: float | None, stop_price: float | None) -> OrderType:
    """The order type the prices given imply, when no type is given: a limit price makes a
    limit order, a stop price a stop order, both a stop-limit order, neither a market order."""
    if limit_price is not None:
        return OrderType.STOP_LIMIT if stop_price is not None else OrderType.LIMIT
    return OrderType.STOP if stop_price is not None else OrderType.MARKET


class TimeInForce(StrEnum):
    """How long an order stays working.

    ``day``: until the end of the session in which it can first trade. ``gtc``: until filled
    or canceled. ``ioc``: whatever can fill on the first bar it meets, the rest canceled.
    ``fok``: fills completely on the first bar it meets, or is canceled.
    """

    DAY = "day"
    GTC = "gtc"
    IOC = "ioc"
    FOK = "fok"


class OrderClass(StrEnum):
    """How an order hangs together with others (Alpaca's order classes).

    ``simple``: on its own. ``mleg``: a multi-leg options order whose legs fill together
    or not at all (:class:`Leg`). ``bracket``: an entry with a take profit and a stop loss, the two
    exits one-cancels-other and working only once the entry has filled. ``oto``: an entry with
    one exit (a take profit, a stop loss or a trailing stop). ``oco``: exit-only, a limit take
    profit and a stop loss on a position already held, one-cancels-other.
    """

    SIMPLE = "simple"
    BRACKET = "bracket"
    OCO = "oco"
    OTO = "oto"
    MLEG = "mleg"


class LegIntent(StrEnum):
    """Whether a leg of a multi-leg order opens or closes a position (Alpaca's
    ``position_intent``); ``auto`` closes what is held and opens the rest."""

    OPEN = "open"
    CLOSE = "close"
    AUTO = "auto"


class Leg(BaseModel):
    """One leg of a multi-leg (``mleg``) order: it trades ``qty * ratio`` of ``symbol``.

    ``symbol`` is an OCC option symbol (canonical, unpadded) or the underlying itself for a
    stock leg (a covered call, a collar).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    symbol: str
    side: OrderSide
    ratio: Annotated[int, Field(ge=1, le=100)] = 1
    intent: LegIntent = LegIntent.AUTO


class ExitSpec(BaseModel):
    """A take profit or a stop loss, as a trader writes it.

    Exactly one of ``price`` (absolute: the take profit's limit price, the stop loss's stop
    price), ``percent`` (from the entry's fill price, 2.0 = 2 %) and ``amount`` (a price
    distance from the entry's fill price). ``limit_price`` (a stop loss only) makes the stop
    loss a stop-limit order.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    price: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    percent: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    amount: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    limit_price: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _one_distance(self) -> ExitSpec:
        given = [n for n in ("price", "percent", "amount") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of price (absolute), percent (from the entry's fill price) "
                f"and amount (a price distance from it); got {', '.join(given) or 'none'}")
        return self

    def resolve(self, entry: float, direction: int) -> float:
        """The absolute price for an entry filled at ``entry``: ``direction`` +1 puts it above
        the entry (a long's take profit, a short's stop loss), -1 below."""
        if self.price is not None:
            return self.price
        if self.percent is not None:
            return entry * (1 + direction * self.percent / 100)
        assert self.amount is not None
        return entry + direction * self.amount


class OrderStatus(StrEnum):
    """The order life cycle: new → accepted → (partially_filled →) filled, or a terminal exit."""

    NEW = "new"
    ACCEPTED = "accepted"
    PARTIALLY_FILLED = "partially_filled"
    FILLED = "filled"
    CANCELED = "canceled"
    REJECTED = "rejected"
    EXPIRED = "expired"


TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)

_NO_STATUSES: frozenset[OrderStatus] = frozenset()
_ALLOWED_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.NEW: frozenset({OrderStatus.ACCEPTED, OrderStatus.REJECTED}),
    OrderStatus.ACCEPTED: frozenset({OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED,
                                     OrderStatus.CANCELED, OrderStatus.EXPIRED}),
    OrderStatus.PARTIALLY_FILLED: frozenset({OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED,
                                             OrderStatus.CANCELED, OrderStatus.EXPIRED}),
}


#: The doors an order can come through (:class:`OrderSource`'s ``kind``).
ORDER_SOURCE_KINDS = ("tradingview", "grpc", "client", "strategy", "replay", "cli")


class OrderSource(BaseModel):
    """Which door an order came through, set by that door (never by the request): a
    TradingView alert (``ref`` its signal id, ``label`` the alert's comment or id), a
    gRPC call (``grpc``; ``client`` from the Python client, ``cli`` from the command line;
    ``ref`` the token id, ``label`` the client's name and version), a strategy run (``ref``
    the strategy's name) or a replay of the signal journal (``replay``; ``ref`` the signal
    id). An order placed by a signal is its signal's: ``ref`` the signal id, ``kind`` where
    the signal came from (``grpc``, or ``client`` from the Python client's SubmitSignal)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["tradingview", "grpc", "client", "strategy", "replay", "cli"]
    ref: Annotated[str, Field(max_length=128)] = ""
    label: Annotated[str, Field(max_length=256)] = ""


class Order(BaseModel):
    """An instruction to buy or sell, and its state as the broker works it.

    An order is sized by ``qty`` (units) or by ``equity_fraction`` (a share of the account's
    buying power, resolved into whole lots when it fills, as backtesting.py sizes ``buy()``;
    ``qty`` then records the resolved size).
    ``reduce_only`` orders may only shrink a position; at fill time their quantity is capped to
    the position then held, so a repeated ``close_position`` can never flip it.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=False)

    id: str
    account: Annotated[str, Field(min_length=1)]
    symbol: Annotated[str, Field(min_length=1)]
    side: OrderSide
    type: OrderType = OrderType.MARKET
    qty: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    equity_fraction: Annotated[float, Field(gt=0, lt=1)] | None = None
    #: The limit price; for an ``mleg`` order the net price per spread, positive a debit
    #: (paid), negative a credit (received), as Alpaca's mleg orders.
    limit_price: Annotated[float, Field(allow_inf_nan=False)] | None = None
    stop_price: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    tif: TimeInForce = TimeInForce.GTC
    reduce_only: bool = False
    stop_triggered: bool = False
    client_order_id: Annotated[str, Field(max_length=128)] | None = None
    tag: Annotated[str, Field(max_length=256)] | None = None
    status: OrderStatus = OrderStatus.NEW
    filled_qty: float = 0.0
    avg_fill_price: float | None = None
    reject_reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    replaces: str | None = None
    replaced_by: str | None = None
    order_class: OrderClass = OrderClass.SIMPLE
    take_profit: ExitSpec | None = None
    stop_loss: ExitSpec | None = None
    trail_price: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    trail_percent: Annotated[float, Field(gt=0, lt=100, allow_inf_nan=False)] | None = None
    parent_id: str | None = None
    hwm: float | None = None
    legs: list[Leg] | None = None
    #: Which door it came through (None for orders stored before doors said so).
    source: OrderSource | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Order:
        if self.order_class is OrderClass.MLEG or self.legs is not None:
            problem = multileg_problem(self)
            if problem is not None:
                raise ValueError(problem)
            return self
        if self.limit_price is not None and self.limit_price <= 0:
            raise ValueError(f"Input should be greater than 0 (got {self.limit_price!r}; "
                             "only an mleg order's net limit_price may be below 0, a credit)")
        if self.qty is None and self.equity_fraction is None:
            raise ValueError(
                "one of qty (units) and equity_fraction (share of buying power, between 0 "
                "and 1) must be set"
            )
        needs_limit = self.type in (OrderType.LIMIT, OrderType.STOP_LIMIT)
        # A trailing stop's stop price is the broker's to compute (from hwm and the trail).
        needs_stop = self.type in (OrderType.STOP, OrderType.STOP_LIMIT)
        if needs_limit and self.limit_price is None:
            raise ValueError(f"a {self.type.value} order needs limit_price")
        if needs_stop and self.stop_price is None:
            raise ValueError(f"a {self.type.value} order needs stop_price")
        if not needs_limit and self.limit_price is not None:
            raise ValueError(self._contradiction("limit_price", self.limit_price))
        if (not needs_stop and self.stop_price is not None
                and self.type is not OrderType.TRAILING_STOP):
            raise ValueError(self._contradiction("stop_price", self.stop_price))
        if (self.order_class is not OrderClass.SIMPLE or self.type is OrderType.TRAILING_STOP
                or self.take_profit is not None
                or self.stop_loss is not None or self.trail_price is not None
                or self.trail_percent is not None):
            problem = order_class_problem(self)
            if problem is not None:
                raise ValueError(problem)
        return self

    def _contradiction(self, name: str, price: float) -> str:
        implied = implied_order_type(self.limit_price, self.stop_price).value
        return (f"{name}={price!r} given for a {self.type.value} order; the prices given make "
                f"a {implied} order: leave the type out (it follows from the prices) or use "
                f"type '{implied}'")

    @property
    def is_open(self) -> bool:
        """True while the broker may still fill it."""
        return self.status not in TERMINAL_STATUSES

    @property
    def remaining_qty(self) -> float:
        """Units still to fill (``qty`` - ``filled_qty``); 0 for fraction orders not yet sized."""
        return (self.qty or 0.0) - self.filled_qty

    def transition(self, status: OrderStatus) -> None:
        """Move to ``status``, refusing moves the life cycle does not allow."""
        allowed = _ALLOWED_TRANSITIONS.get(self.status, _NO_STATUSES)
        if status not in allowed:
            raise ValueError(
                f"order {self.id}: cannot go from {self.status.value} to {status.value}")
        self.__dict__["status"] = status  # checked above; pydantic's __setattr__ is slow


def order_class_problem(order: Order) -> str | None:
    """What is wrong with ``order``'s class, exits and trail (Alpaca's rules), naming the
    field, or None. Checked by :class:`Order`'s validation."""
    cls, tp, sl = order.order_class, order.take_profit, order.stop_loss
    trail = [n for n in ("trail_price", "trail_percent") if getattr(order, n) is not None]
    if len(trail) > 1:
        return "trail_price and trail_percent: give one of them, not both"
    if order.type is OrderType.TRAILING_STOP:
        if not trail:
            return "a trailing_stop order needs trail_price or trail_percent"
        if cls is not OrderClass.SIMPLE and not (cls is OrderClass.OTO and order.parent_id):
            return (f"order_class: a trailing_stop order cannot be a {cls.value} order's leg "
                    "(Alpaca's rule); submit it on its own, or as the exit of an oto entry "
                    "(trail_price/trail_percent on the entry)")
        if tp is not None or sl is not None:
            return "take_profit/stop_loss: a trailing_stop order has no legs"
        return None
    if sl is None and tp is None and not trail and cls is OrderClass.SIMPLE:
        return None
    if tp is not None and tp.limit_price is not None:
        return ("take_profit.limit_price: only a stop loss takes a limit price (the take "
                "profit's price is its limit)")
    if cls is OrderClass.SIMPLE:
        named = "take_profit" if tp is not None else "stop_loss" if sl is not None else trail[0]
        return (f"{named} needs an order_class: bracket (take profit and stop loss), oto (one "
                "exit) or oco (exit-only)")
    if order.tif not in (TimeInForce.DAY, TimeInForce.GTC):
        return (f"tif: a {cls.value} order is day or gtc (Alpaca's rule), "
                f"got {order.tif.value!r}")
    if order.parent_id is not None:  # a leg the broker made: its prices are resolved
        return None
    if cls is OrderClass.BRACKET:
        if tp is None or sl is None:
            return ("take_profit and stop_loss: a bracket order needs both "
                    f"(missing: {'take_profit' if tp is None else 'stop_loss'}); with one "
                    "exit use order_class oto")
        if trail:
            return (f"{trail[0]}: a trailing stop cannot be a bracket leg (Alpaca's rule); "
                    "use order_class oto with the trailing stop alone")
        if tp.price is not None and sl.price is not None:
            above = order.side is OrderSide.BUY
            if (tp.price <= sl.price) if above else (tp.price >= sl.price):
                return (f"take_profit.price {tp.price:g} must be "
                        f"{'above' if above else 'below'} stop_loss.price {sl.price:g} for a "
                        f"{order.side.value} bracket")
        return None
    if cls is OrderClass.OTO:
        exits = [n for n, v in (("take_profit", tp), ("stop_loss", sl)) if v is not None]
        exits += trail
        if len(exits) != 1:
            return ("an oto order has exactly one exit: take_profit, stop_loss, or a trailing "
                    f"stop (trail_price/trail_percent); got {', '.join(exits) or 'none'}")
        return None
    # OCO: exit-only; the order itself is the take profit (a limit), its sibling the stop.
    if tp is None or sl is None:
        return ("take_profit and stop_loss: an oco order needs both "
                f"(missing: {'take_profit' if tp is None else 'stop_loss'})")
    if trail:
        return f"{trail[0]}: an oco order's legs are a limit and a stop, not a trailing stop"
    for name, spec in (("take_profit", tp), ("stop_loss", sl)):
        if spec.price is None:
            return (f"{name}: an oco order is exit-only, so its prices are absolute (give "
                    "price; percent and amount measure from an entry's fill)")
    if order.type is not OrderType.LIMIT or order.limit_price != tp.price:
        return ("type: an oco order is a limit order at take_profit.price (Alpaca's rule): "
                f"type 'limit', limit_price {tp.price:g}")
    assert tp.price is not None and sl.price is not None
    if (tp.price <= sl.price) if order.side is OrderSide.SELL else (tp.price >= sl.price):
        return (f"take_profit.price {tp.price:g} must be "
                f"{'above' if order.side is OrderSide.SELL else 'below'} stop_loss.price "
                f"{sl.price:g} for a {order.side.value} oco (it exits a "
                f"{'long' if order.side is OrderSide.SELL else 'short'})")
    return None


#: Option roots whose contracts settle in cash (index options), by the underlying whose
#: price settles them: the weekly and PM-settled roots settle on their index.
CASH_SETTLED_ROOTS: dict[str, str] = {
    "SPX": "SPX", "SPXW": "SPX", "NDX": "NDX", "NDXP": "NDX", "RUT": "RUT", "RUTW": "RUT",
    "VIX": "VIX", "VIXW": "VIX", "XSP": "XSP",
}


def option_underlying(symbol: str) -> str | None:
    """The underlying an OCC option symbol settles on (``SPXW...`` -> ``SPX``), or None when
    ``symbol`` is not an option symbol."""
    try:
        root = parse_occ_symbol(symbol)[0]
    except ValueError:
        return None
    return CASH_SETTLED_ROOTS.get(root, root)


def multileg_problem(order: Order) -> str | None:
    """What is wrong with a multi-leg (``mleg``) order on its own, naming the field, or None:
    the rules that need no market (2 or more legs, ratios in lowest terms, no duplicate legs,
    one underlying, market or limit). The broker adds its own (the most legs it takes,
    expiries, the net price against the legs' bounds, buying power)."""
    legs = order.legs
    if order.order_class is not OrderClass.MLEG:
        return f"legs: only an mleg order has legs (order_class is {order.order_class.value})"
    if not legs or len(legs) < 2:
        return (f"legs: an mleg order has 2 to 4 legs (got {len(legs or ())}); a single "
                "option is a simple order")
    if order.type not in (OrderType.MARKET, OrderType.LIMIT):
        return f"type: an mleg order is market or limit (got {order.type.value!r})"
    if order.qty is None or order.equity_fraction is not None:
        return "qty: an mleg order is sized by qty, the number of spreads"
    if order.qty != int(order.qty):
        return f"qty: an mleg order trades whole spreads (got {order.qty!r})"
    if order.side is not OrderSide.BUY:
        return ("side: an mleg order's legs carry their sides; the order's own side is buy "
                f"(got {order.side.value!r})")
    if order.tif not in (TimeInForce.DAY, TimeInForce.GTC):
        return f"tif: an mleg order is day or gtc (got {order.tif.value!r})"
    for name in ("take_profit", "stop_loss", "trail_price", "trail_percent", "stop_price"):
        if getattr(order, name) is not None:
            return f"{name}: an mleg order takes none (it is market or limit)"
    if order.reduce_only:
        return "reduce_only: an mleg order says open or close per leg (its intent)"
    seen: dict[str, int] = {}
    underlyings: dict[str, int] = {}
    stock: list[int] = []
    for i, leg in enumerate(legs):
        if leg.symbol in seen:
            return (f"legs[{i}].symbol: {leg.symbol} is also legs[{seen[leg.symbol]}]; each "
                    "leg trades a different symbol (add the ratios into one leg)")
        seen[leg.symbol] = i
        under = option_underlying(leg.symbol)
        if under is None:
            stock.append(i)
            continue
        if leg.symbol != leg.symbol.strip().upper() or " " in leg.symbol:
            return (f"legs[{i}].symbol: {leg.symbol!r} is not canonical; write the OCC "
                    "symbol unpadded, e.g. SPY251219C00450000")
        underlyings.setdefault(under, i)
    if not underlyings:
        return "legs: an mleg order needs at least one option leg (OCC symbol)"
    if len(underlyings) > 1:
        (a, i), (b, j) = list(underlyings.items())[:2]
        return (f"legs[{j}].symbol: underlying {b} differs from legs[{i}]'s {a}; a spread's "
                "legs share one underlying")
    underlying = next(iter(underlyings))
    if len(stock) > 1:
        return f"legs[{stock[1]}].symbol: a spread has at most one stock leg"
    for i in stock:
        if legs[i].symbol != underlying:
            return (f"legs[{i}].symbol: {legs[i].symbol!r} is neither an OCC option symbol "
                    f"nor the options' underlying {underlying}")
    g = 0
    for leg in legs:
        g = math.gcd(g, leg.ratio)
    if g > 1:
        ratios = ":".join(str(leg.ratio) for leg in legs)
        lowest = ":".join(str(leg.ratio // g) for leg in legs)
        return (f"legs: ratios {ratios} are not in lowest terms; write {lowest} and multiply "
                f"qty by {g}")
    if order.symbol != underlying:
        return (f"symbol: an mleg order's symbol is its legs' underlying {underlying} "
                f"(got {order.symbol!r})")
    return None


class FillKind(StrEnum):
    """What made a fill: a trade, or an option's expiry event (exercise of a long option,
    assignment of a short one, expiry worthless; a cash-settled option's exercise and
    assignment pay the difference and deliver no shares)."""

    TRADE = "trade"
    EXERCISE = "exercise"
    ASSIGNMENT = "assignment"
    EXPIRY = "expiry"


class Fill(BaseModel):
    """One execution of (part of) an order, or of an option's expiry event (``kind``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    order_id: str
    account: str
    symbol: str
    side: OrderSide
    qty: Annotated[float, Field(gt=0)]
    #: Price per unit; 0 only for an option leg quoted at 0 or expiring worthless.
    price: Annotated[float, Field(ge=0)]
    commission: Annotated[float, Field(ge=0)] = 0.0
    time: datetime
    bar_index: int | None = None
    #: Where the price came from: ``feed`` (a market source's bar or quote), ``signal`` (the
    #: price a signal carried, for a symbol no source covers) or ``last`` (the last price a
    #: signal of the account carried for the symbol).
    price_source: Literal["feed", "signal", "last"] = "feed"
    kind: FillKind = FillKind.TRADE


class Position(BaseModel):
    """Holdings of one symbol in one account. ``qty`` is negative for a short."""

    model_config = ConfigDict(extra="forbid")

    account: str
    symbol: str
    qty: float = 0.0
    avg_price: float = 0.0
    realized_pnl: float = 0.0
    market_price: float | None = None
    multiplier: float = 1.0

    @property
    def market_value(self) -> float:
        """Signed value at the last known price (``avg_price`` when no price is known yet)."""
        price = self.avg_price if self.market_price is None else self.market_price
        return self.qty * price * self.multiplier

    @property
    def unrealized_pnl(self) -> float:
        """Profit or loss if the position were closed at the last known price."""
        if self.market_price is None:
            return 0.0
        return self.qty * (self.market_price - self.avg_price) * self.multiplier


class Account(BaseModel):
    """A paper account: one pool of cash shared by every symbol it trades.

    ``equity``, ``buying_power`` and the market values are a snapshot computed by the broker
    at the last known prices; ``cash`` is authoritative.
    """

    model_config = ConfigDict(extra="forbid")

    id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")]
    cash: float
    initial_cash: Annotated[float, Field(gt=0)]
    currency: str = "USD"
    realized_pnl: float = 0.0
    commissions: float = 0.0
    equity: float | None = None
    buying_power: float | None = None
    long_market_value: float = 0.0
    short_market_value: float = 0.0
    created_at: datetime | None = None


class Trade(BaseModel):
    """A closed (or still open) round trip: entry and exit of one lot, FIFO-matched.

    ``pnl`` is net of the commissions of both legs and ``return_pct`` is the gross price move
    minus commissions per unit of entry value, as backtesting.py defines ``PnL``/``ReturnPct``.
    """

    model_config = ConfigDict(extra="forbid")

    account: str
    symbol: str
    size: float
    entry_time: datetime
    entry_price: float
    entry_bar: int | None = None
    exit_time: datetime | None = None
    exit_price: float | None = None
    exit_bar: int | None = None
    pnl: float = 0.0
    return_pct: float = 0.0
    commission: float = 0.0
    tag: str | None = None


@dataclass(slots=True)
class BrokerChange:
    """Everything one broker event changed, written as a single transaction.

    A fill, for example, is the fill itself, the order's new filled quantity and status, the
    position and the account's cash: all four land together or not at all.
    """

    orders: list[Order] = field(default_factory=list)
    fills: list[Fill] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    #: Broker state that is neither an order nor a fill (an account's risk standing for the
    #: day), as JSON values by key: committed to the store's host state with the rest.
    state: dict[str, Any] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.orders or self.fills or self.positions or self.accounts or self.state)


@dataclass(frozen=True, slots=True)
class TradeUpdate:
    """An order after a change, and the fill that caused it when it was a fill."""

    order: Order
    fill: Fill | None = None
