"""The one place where protobuf messages and domain models meet.

Nothing else in sandtrade imports ``_pb2`` modules for their message types' fields; servicers
and the client call these functions.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from sandtrade.broker.risk import RiskRules, RiskStanding
from sandtrade.market.hub import FeedStatus, SymbolFeedStatus
from sandtrade.models import (
    ORDER_SOURCE_KINDS,
    Account,
    Bar,
    ExitSpec,
    Fill,
    FillKind,
    Leg,
    LegIntent,
    OptionRight,
    Order,
    OrderClass,
    OrderSide,
    OrderSource,
    OrderStatus,
    OrderType,
    Position,
    Quote,
    TimeInForce,
)
from sandtrade.options.chain import ChainRow, OptionChain
from sandtrade.options.greeks import AccountGreeks, PositionGreeks
from sandtrade.options.payoff import PayoffLeg
from sandtrade.options.templates import StrategyPlan
from sandtrade.v1 import common_pb2 as pb
from sandtrade.v1 import market_pb2 as mpb
from sandtrade.v1 import trading_pb2 as tpb

__all__ = [
    "account_from_pb",
    "account_greeks_from_pb",
    "account_to_pb",
    "bar_from_pb",
    "bar_to_pb",
    "chain_from_pb",
    "chain_to_pb",
    "class_from_pb",
    "class_to_pb",
    "exit_from_pb",
    "exit_to_pb",
    "feed_status_from_pb",
    "feed_status_to_pb",
    "fill_from_pb",
    "fill_to_pb",
    "greeks_from_pb",
    "greeks_to_pb",
    "group_payoff_legs",
    "leg_from_pb",
    "leg_to_pb",
    "order_from_pb",
    "order_to_pb",
    "parameters_from_pb",
    "parameters_to_pb",
    "plan_from_pb",
    "plan_to_pb",
    "position_from_pb",
    "position_greeks_from_pb",
    "position_greeks_to_pb",
    "position_to_pb",
    "quote_from_pb",
    "quote_to_pb",
    "risk_rules_from_pb",
    "risk_rules_to_pb",
    "risk_standing_from_pb",
    "risk_standing_to_pb",
    "side_from_pb",
    "side_to_pb",
    "source_from_pb",
    "source_to_pb",
    "status_from_pb",
    "status_to_pb",
    "tif_from_pb",
    "tif_to_pb",
    "time_from_pb",
    "time_to_pb",
    "type_from_pb",
    "type_to_pb",
]

_SIDES = {OrderSide.BUY: pb.ORDER_SIDE_BUY, OrderSide.SELL: pb.ORDER_SIDE_SELL}
_TYPES = {OrderType.MARKET: pb.ORDER_TYPE_MARKET, OrderType.LIMIT: pb.ORDER_TYPE_LIMIT,
          OrderType.STOP: pb.ORDER_TYPE_STOP, OrderType.STOP_LIMIT: pb.ORDER_TYPE_STOP_LIMIT,
          OrderType.TRAILING_STOP: pb.ORDER_TYPE_TRAILING_STOP}
_CLASSES = {c: getattr(pb, f"ORDER_CLASS_{c.name}") for c in OrderClass}
_CLASSES_BACK = {v: k for k, v in _CLASSES.items()}
_EXIT_FIELDS = ("price", "percent", "amount", "limit_price")
_TIFS = {TimeInForce.DAY: pb.TIME_IN_FORCE_DAY, TimeInForce.GTC: pb.TIME_IN_FORCE_GTC,
         TimeInForce.IOC: pb.TIME_IN_FORCE_IOC, TimeInForce.FOK: pb.TIME_IN_FORCE_FOK}
_STATUSES = {s: getattr(pb, f"ORDER_STATUS_{s.name}") for s in OrderStatus}
_SIDES_BACK = {v: k for k, v in _SIDES.items()}
_TYPES_BACK = {v: k for k, v in _TYPES.items()}
_TIFS_BACK = {v: k for k, v in _TIFS.items()}
_STATUSES_BACK = {v: k for k, v in _STATUSES.items()}
_INTENTS = {i: getattr(pb, f"LEG_INTENT_{i.name}") for i in LegIntent}
_INTENTS_BACK = {v: k for k, v in _INTENTS.items()}
_FILL_KINDS = {k: getattr(pb, f"FILL_KIND_{k.name}") for k in FillKind}
_FILL_KINDS_BACK = {v: k for k, v in _FILL_KINDS.items()}
_SOURCE_KINDS = {k: getattr(pb, f"ORDER_SOURCE_KIND_{k.upper()}") for k in ORDER_SOURCE_KINDS}
_SOURCE_KINDS_BACK = {v: k for k, v in _SOURCE_KINDS.items()}


def source_to_pb(source: OrderSource, out: pb.OrderSource | None = None) -> pb.OrderSource:
    """An order's source as its message."""
    m = pb.OrderSource() if out is None else out
    m.kind, m.ref, m.label = _SOURCE_KINDS[source.kind], source.ref, source.label
    return m


def source_from_pb(m: pb.OrderSource) -> OrderSource | None:
    """An order's source from its message; None for an unknown kind."""
    kind = _SOURCE_KINDS_BACK.get(m.kind)
    if kind is None:
        return None
    return OrderSource(kind=kind, ref=m.ref, label=m.label)  # type: ignore[arg-type]


def leg_to_pb(leg: Leg, out: pb.Leg | None = None) -> pb.Leg:
    """A multi-leg order's leg as its message."""
    m = pb.Leg() if out is None else out
    m.symbol, m.side, m.ratio = leg.symbol, _SIDES[leg.side], leg.ratio
    m.intent = _INTENTS[leg.intent]
    return m


def leg_from_pb(m: pb.Leg) -> dict[str, Any]:
    """A leg's fields from its message (checked by :class:`~sandtrade.models.Leg`); an unset
    side stays None so the check names it, an unset ratio is 1 and an unset intent auto."""
    return {"symbol": m.symbol, "side": _SIDES_BACK.get(m.side),  # type: ignore[call-overload]
            "ratio": m.ratio or 1,
            "intent": _INTENTS_BACK.get(m.intent, LegIntent.AUTO)}  # type: ignore[call-overload]


_EPOCH = datetime(1970, 1, 1)


def time_to_pb(t: datetime | None, out: Timestamp | None = None) -> Timestamp:
    """A naive UTC (or aware) datetime as a Timestamp; None leaves it unset."""
    ts = Timestamp() if out is None else out
    if t is not None:
        if t.tzinfo is not None:
            t = t.astimezone(UTC).replace(tzinfo=None)
        # Timestamp.FromDatetime does the same in several Python calls; this runs for every
        # order, fill and bar the API sends.
        d = t - _EPOCH
        ts.seconds = d.days * 86400 + d.seconds
        ts.nanos = d.microseconds * 1000
    return ts


def time_from_pb(ts: Timestamp) -> datetime:
    """A Timestamp as a naive UTC datetime (the domain's convention)."""
    return ts.ToDatetime()


def side_to_pb(side: OrderSide) -> Any:
    return _SIDES[side]


def side_from_pb(value: int) -> OrderSide | None:
    """None for UNSPECIFIED or an unknown number."""
    return _SIDES_BACK.get(value)  # type: ignore[call-overload]


def type_to_pb(t: OrderType) -> Any:
    return _TYPES[t]


def type_from_pb(value: int) -> OrderType | None:
    return _TYPES_BACK.get(value)  # type: ignore[call-overload]


def tif_to_pb(t: TimeInForce) -> Any:
    return _TIFS[t]


def tif_from_pb(value: int) -> TimeInForce | None:
    return _TIFS_BACK.get(value)  # type: ignore[call-overload]


def status_to_pb(s: OrderStatus) -> Any:
    return _STATUSES[s]


def status_from_pb(value: int) -> OrderStatus | None:
    return _STATUSES_BACK.get(value)  # type: ignore[call-overload]


def class_to_pb(c: OrderClass) -> Any:
    return _CLASSES[c]


def class_from_pb(value: int) -> OrderClass | None:
    """The order class, or None for UNSPECIFIED (or a value this version does not know)."""
    return _CLASSES_BACK.get(value)  # type: ignore[call-overload, no-any-return]


def exit_to_pb(spec: ExitSpec, out: pb.ExitSpec) -> pb.ExitSpec:
    for name in _EXIT_FIELDS:
        value = getattr(spec, name)
        if value is not None:
            setattr(out, name, value)
    return out


def exit_from_pb(m: pb.ExitSpec) -> ExitSpec:
    """The exit; ``ValueError`` (pydantic's) naming the field when it breaks a rule."""
    return ExitSpec(**{n: getattr(m, n) for n in _EXIT_FIELDS if m.HasField(n)})


def bar_to_pb(bar: Bar, out: pb.Bar | None = None) -> pb.Bar:
    m = pb.Bar(symbol=bar.symbol, open=bar.open, high=bar.high, low=bar.low, close=bar.close,
               volume=bar.volume) if out is None else out
    if out is not None:
        m.symbol, m.open, m.high, m.low, m.close, m.volume = (
            bar.symbol, bar.open, bar.high, bar.low, bar.close, bar.volume)
    time_to_pb(bar.time, m.time)
    return m


def bar_from_pb(m: pb.Bar) -> Bar:
    return Bar(m.symbol, time_from_pb(m.time), m.open, m.high, m.low, m.close, m.volume)


def quote_to_pb(q: Quote) -> pb.Quote:
    m = pb.Quote(symbol=q.symbol, bid=q.bid, ask=q.ask, bid_size=q.bid_size,
                 ask_size=q.ask_size)
    time_to_pb(q.time, m.time)
    return m


def quote_from_pb(m: pb.Quote) -> Quote:
    return Quote(m.symbol, time_from_pb(m.time), m.bid, m.ask, m.bid_size, m.ask_size)


def order_to_pb(o: Order, out: pb.Order | None = None) -> pb.Order:
    m = pb.Order() if out is None else out
    m.id, m.account, m.symbol = o.id, o.account, o.symbol
    m.side, m.type, m.tif = _SIDES[o.side], _TYPES[o.type], _TIFS[o.tif]
    m.status = _STATUSES[o.status]
    m.reduce_only = o.reduce_only
    m.client_order_id = o.client_order_id or ""
    m.tag = o.tag or ""
    m.filled_qty = o.filled_qty
    m.reject_reason = o.reject_reason or ""
    for name in ("qty", "equity_fraction", "limit_price", "stop_price", "avg_fill_price"):
        value = getattr(o, name)
        if value is not None:
            setattr(m, name, value)
    if o.created_at is not None:
        time_to_pb(o.created_at, m.created_at)
    if o.updated_at is not None:
        time_to_pb(o.updated_at, m.updated_at)
    m.order_class = _CLASSES[o.order_class]
    if o.take_profit is not None:
        exit_to_pb(o.take_profit, m.take_profit)
    if o.stop_loss is not None:
        exit_to_pb(o.stop_loss, m.stop_loss)
    for name in ("trail_price", "trail_percent", "hwm"):
        value = getattr(o, name)
        if value is not None:
            setattr(m, name, value)
    m.parent_id = o.parent_id or ""
    for leg in o.legs or ():
        out_leg = m.legs.add()
        leg_to_pb(leg, out_leg.leg)
        out_leg.status = _STATUSES[o.status]
        out_leg.filled_qty = o.filled_qty * leg.ratio
    if o.source is not None:
        source_to_pb(o.source, m.source)
    return m


def order_from_pb(m: pb.Order) -> Order:
    def opt(name: str) -> float | None:
        return getattr(m, name) if m.HasField(name) else None

    return Order(
        id=m.id, account=m.account, symbol=m.symbol,
        side=_SIDES_BACK[m.side],  # type: ignore[index]
        type=_TYPES_BACK[m.type],  # type: ignore[index]
        qty=opt("qty"), equity_fraction=opt("equity_fraction"),
        limit_price=opt("limit_price"), stop_price=opt("stop_price"),
        tif=_TIFS_BACK[m.tif],  # type: ignore[index]
        reduce_only=m.reduce_only, client_order_id=m.client_order_id or None,
        tag=m.tag or None, status=_STATUSES_BACK[m.status],  # type: ignore[index]
        filled_qty=m.filled_qty, avg_fill_price=opt("avg_fill_price"),
        reject_reason=m.reject_reason or None,
        created_at=time_from_pb(m.created_at) if m.HasField("created_at") else None,
        updated_at=time_from_pb(m.updated_at) if m.HasField("updated_at") else None,
        order_class=_CLASSES_BACK.get(m.order_class, OrderClass.SIMPLE),
        take_profit=exit_from_pb(m.take_profit) if m.HasField("take_profit") else None,
        stop_loss=exit_from_pb(m.stop_loss) if m.HasField("stop_loss") else None,
        trail_price=opt("trail_price"), trail_percent=opt("trail_percent"),
        parent_id=m.parent_id or None, hwm=opt("hwm"),
        legs=[Leg.model_validate(leg_from_pb(x.leg)) for x in m.legs] or None,
        source=source_from_pb(m.source) if m.HasField("source") else None)


def fill_to_pb(f: Fill, out: pb.Fill | None = None) -> pb.Fill:
    m = pb.Fill() if out is None else out
    m.id, m.order_id, m.account, m.symbol = f.id, f.order_id, f.account, f.symbol
    m.side, m.qty, m.price, m.commission = _SIDES[f.side], f.qty, f.price, f.commission
    time_to_pb(f.time, m.time)
    m.kind = _FILL_KINDS[f.kind]
    return m


def fill_from_pb(m: pb.Fill) -> Fill:
    return Fill(id=m.id, order_id=m.order_id, account=m.account, symbol=m.symbol,
                side=_SIDES_BACK[m.side],  # type: ignore[index]
                qty=m.qty, price=m.price, commission=m.commission, time=time_from_pb(m.time),
                kind=_FILL_KINDS_BACK.get(m.kind, FillKind.TRADE))  # type: ignore[call-overload]


def position_to_pb(p: Position) -> pb.Position:
    m = pb.Position(account=p.account, symbol=p.symbol, qty=p.qty, avg_price=p.avg_price,
                    realized_pnl=p.realized_pnl, multiplier=p.multiplier)
    if p.market_price is not None:
        m.market_price = p.market_price
        m.market_value = p.market_value
        m.unrealized_pnl = p.unrealized_pnl
    return m


def position_from_pb(m: pb.Position) -> Position:
    return Position(account=m.account, symbol=m.symbol, qty=m.qty, avg_price=m.avg_price,
                    realized_pnl=m.realized_pnl, multiplier=m.multiplier,
                    market_price=m.market_price if m.HasField("market_price") else None)


def account_to_pb(a: Account) -> pb.Account:
    return pb.Account(id=a.id, currency=a.currency, cash=a.cash, initial_cash=a.initial_cash,
                      equity=a.equity if a.equity is not None else a.cash,
                      buying_power=a.buying_power if a.buying_power is not None else a.cash,
                      realized_pnl=a.realized_pnl, commissions=a.commissions,
                      long_market_value=a.long_market_value,
                      short_market_value=a.short_market_value)


def account_from_pb(m: pb.Account) -> Account:
    return Account(id=m.id, currency=m.currency, cash=m.cash, initial_cash=m.initial_cash,
                   equity=m.equity, buying_power=m.buying_power, realized_pnl=m.realized_pnl,
                   commissions=m.commissions, long_market_value=m.long_market_value,
                   short_market_value=m.short_market_value)


_FEED_STATES = {name.removeprefix("FEED_STATE_").lower(): value
                for name, value in mpb.FeedState.items() if value}
_FEED_STATES_BACK = {v: k for k, v in _FEED_STATES.items()}


def feed_status_to_pb(status: FeedStatus) -> mpb.GetFeedStatusResponse:
    """The feed's status as the answer to GetFeedStatus."""
    out = mpb.GetFeedStatusResponse(
        source=status.source, then=status.then, state=_FEED_STATES.get(status.state, 0),
        position=status.position, error=status.error)
    for s in status.symbols:
        m = out.symbols.add(symbol=s.symbol, state=_FEED_STATES.get(s.state, 0), bars=s.bars,
                            source_bars=s.source_bars, passes=s.passes,
                            shift_seconds=int(s.shift.total_seconds()), message=s.message)
        if s.last_bar_time is not None:
            time_to_pb(s.last_bar_time, m.last_bar_time)
        if s.ended_at is not None:
            time_to_pb(s.ended_at, m.ended_at)
    return out


def feed_status_from_pb(m: mpb.GetFeedStatusResponse) -> FeedStatus:
    """GetFeedStatus's answer as a :class:`~sandtrade.market.hub.FeedStatus`."""
    return FeedStatus(
        source=m.source, then=m.then, state=_FEED_STATES_BACK.get(m.state, "unspecified"),
        position=m.position, error=m.error,
        symbols=tuple(SymbolFeedStatus(
            symbol=s.symbol, state=_FEED_STATES_BACK.get(s.state, "unspecified"),
            bars=s.bars, source_bars=s.source_bars, passes=s.passes,
            last_bar_time=time_from_pb(s.last_bar_time) if s.HasField("last_bar_time")
            else None,
            ended_at=time_from_pb(s.ended_at) if s.HasField("ended_at") else None,
            shift=timedelta(seconds=s.shift_seconds), message=s.message)
            for s in m.symbols))


_RISK_LIMITS = ("max_position_qty", "max_position_notional", "max_gross_exposure",
                "max_daily_loss", "max_order_notional", "max_orders_per_day", "options_level")


def risk_rules_to_pb(rules: RiskRules, out: tpb.RiskRules | None = None) -> tpb.RiskRules:
    """Risk rules as their message (unset limits stay unset)."""
    m = tpb.RiskRules() if out is None else out
    for name in _RISK_LIMITS:
        value = getattr(rules, name)
        if value is not None:
            setattr(m, name, value)
    m.max_position_notional_by_symbol.update(rules.max_position_notional_by_symbol)
    m.pattern_day_trader = rules.pattern_day_trader
    return m


def risk_rules_from_pb(m: tpb.RiskRules) -> RiskRules:
    """Risk rules from their message; pydantic's ``ValidationError`` when a value is invalid."""
    values: dict[str, Any] = {name: getattr(m, name) for name in _RISK_LIMITS
                              if m.HasField(name)}
    return RiskRules(**values, pattern_day_trader=m.pattern_day_trader,
                     max_position_notional_by_symbol=dict(m.max_position_notional_by_symbol))


def risk_standing_to_pb(s: RiskStanding, out: tpb.RiskStanding | None = None
                        ) -> tpb.RiskStanding:
    """An account's day as its message."""
    m = tpb.RiskStanding() if out is None else out
    m.day = s.day.isoformat() if s.day else ""
    if s.start_equity is not None:
        m.start_equity = s.start_equity
    m.equity = s.equity
    m.loss_today = s.loss_today
    m.orders_today = s.orders_today
    m.day_trades = s.day_trades
    m.halted = s.halted or ""
    return m


def risk_standing_from_pb(m: tpb.RiskStanding) -> RiskStanding:
    """An account's day from its message."""
    return RiskStanding(day=date.fromisoformat(m.day) if m.day else None,
                        start_equity=m.start_equity if m.HasField("start_equity") else None,
                        equity=m.equity, orders_today=m.orders_today, day_trades=m.day_trades,
                        halted=m.halted or None)


# ------------------------------------------------------------------ options

_RIGHTS = {OptionRight.CALL: mpb.OPTION_RIGHT_CALL, OptionRight.PUT: mpb.OPTION_RIGHT_PUT}
_RIGHTS_BACK = {v: k for k, v in _RIGHTS.items()}
_ROW_OPTIONAL = ("last", "volume", "open_interest", "iv", "delta", "gamma", "theta", "vega",
                 "theo")


def chain_to_pb(chain: OptionChain, rows: Iterable[ChainRow], source: str
                ) -> mpb.GetOptionChainResponse:
    """A chain (``rows``: the ones asked for) as the answer to GetOptionChain."""
    out = mpb.GetOptionChainResponse(underlying=chain.underlying, source=source,
                                     expiries=[e.isoformat() for e in chain.expiries()])
    time_to_pb(chain.as_of, out.as_of)
    if chain.spot is not None:
        out.spot = chain.spot
    for row in rows:
        m = out.rows.add(symbol=row.symbol, expiry=row.expiry.isoformat(),
                         right=_RIGHTS[row.right], strike=row.strike, bid=row.bid,
                         ask=row.ask, mark=row.mark)
        for name in _ROW_OPTIONAL:
            value = getattr(row, name)
            if value is not None:
                setattr(m, name, value)
    return out


def chain_from_pb(m: mpb.GetOptionChainResponse) -> OptionChain:
    """GetOptionChain's answer as an :class:`~sandtrade.options.OptionChain`."""
    rows = [ChainRow(r.symbol, m.underlying, date.fromisoformat(r.expiry),
                     _RIGHTS_BACK[r.right], r.strike, r.bid, r.ask,
                     *(getattr(r, n) if r.HasField(n) else None for n in _ROW_OPTIONAL))
            for r in m.rows]
    return OptionChain(m.underlying, time_from_pb(m.as_of),
                       m.spot if m.HasField("spot") else None, rows)


def greeks_to_pb(delta: float, gamma: float, theta: float, vega: float,
                 out: pb.Greeks) -> pb.Greeks:
    """Summed greeks as their message."""
    out.delta, out.gamma, out.theta, out.vega = delta, gamma, theta, vega
    return out


def greeks_from_pb(m: pb.Greeks) -> tuple[float, float, float, float]:
    """Delta, gamma, theta and vega from their message."""
    return m.delta, m.gamma, m.theta, m.vega


def position_greeks_to_pb(g: PositionGreeks, out: pb.PositionGreeks, *, avg_price: float,
                          iv: float | None = None) -> pb.PositionGreeks:
    """One measured position (or group leg) as its message."""
    out.symbol, out.underlying, out.qty, out.multiplier = (g.symbol, g.underlying, g.qty,
                                                          g.multiplier)
    if g.mark is not None:
        out.mark = g.mark
    out.market_value, out.unrealized_pnl, out.priced = g.market_value, g.unrealized_pnl, \
        g.priced
    out.avg_price = avg_price
    if iv is not None:
        out.iv = iv
    greeks_to_pb(g.delta, g.gamma, g.theta, g.vega, out.greeks)
    return out


def position_greeks_from_pb(m: pb.PositionGreeks) -> PositionGreeks:
    """A measured position from its message."""
    return PositionGreeks(m.symbol, m.underlying, m.qty, m.multiplier,
                          m.mark if m.HasField("mark") else None, m.market_value,
                          m.unrealized_pnl, *greeks_from_pb(m.greeks), m.priced)


def account_greeks_from_pb(m: mpb.GetOptionGreeksResponse) -> AccountGreeks:
    """GetOptionGreeks' answer as :class:`~sandtrade.options.AccountGreeks`."""
    return AccountGreeks([position_greeks_from_pb(p) for p in m.positions],
                         *greeks_from_pb(m.total), m.market_value, m.unrealized_pnl)


def group_payoff_legs(legs: Iterable[pb.PositionGreeks]) -> list[PayoffLeg]:
    """A position group's legs as the payoff sees them: the units held at their entry
    prices and implied volatilities."""
    out = []
    for m in legs:
        leg = Leg(symbol=m.symbol, side=OrderSide.BUY if m.qty > 0 else OrderSide.SELL)
        out.append(PayoffLeg.of(leg, m.avg_price, m.iv if m.HasField("iv") else None,
                                quantity=abs(m.qty)))
    return out


def plan_to_pb(plan: StrategyPlan, out: tpb.StrategyPlan) -> tpb.StrategyPlan:
    """A built strategy template as its message."""
    out.strategy, out.underlying, out.expiry = plan.name, plan.underlying, \
        plan.expiry.isoformat()
    for leg, p in zip(plan.legs, plan.payoff_legs, strict=True):
        m = out.legs.add(price=p.price, strike=p.strike or 0.0,
                         expiry=p.expiry.isoformat() if p.expiry else "",
                         right=p.right.value if p.right else "")
        leg_to_pb(leg, m.leg)
        if p.iv is not None:
            m.iv = p.iv
    out.net_price = plan.net_price
    if plan.max_profit is not None:
        out.max_profit = plan.max_profit
    if plan.max_loss is not None:
        out.max_loss = plan.max_loss
    out.breakevens.extend(plan.breakevens)
    if plan.spot is not None:
        out.spot = plan.spot
    return out


def plan_from_pb(m: tpb.StrategyPlan) -> StrategyPlan:
    """A built strategy template from its message (its payoff legs one spread each)."""
    legs = [Leg.model_validate(leg_from_pb(x.leg)) for x in m.legs]
    payoff = [PayoffLeg.of(leg, x.price, x.iv if x.HasField("iv") else None)
              for leg, x in zip(legs, m.legs, strict=True)]
    return StrategyPlan(m.strategy, m.underlying, date.fromisoformat(m.expiry), legs, payoff,
                        m.net_price, m.max_profit if m.HasField("max_profit") else None,
                        m.max_loss if m.HasField("max_loss") else None, list(m.breakevens),
                        m.spot if m.HasField("spot") else None)


def parameters_from_pb(m: tpb.SubmitOptionStrategyRequest) -> dict[str, Any]:
    """A template's parameters (a map of JSON values) as Python values: numbers, strings,
    booleans, None, lists and dicts, as JSON has them."""
    return {key: json_format.MessageToDict(value) for key, value in m.parameters.items()}


def parameters_to_pb(params: dict[str, Any], out: tpb.SubmitOptionStrategyRequest) -> None:
    """Set a template's parameters (JSON values: numbers, strings, booleans) on a request;
    a date is sent as its ISO 8601 text."""
    for key, value in params.items():
        v = value.isoformat() if isinstance(value, date) else value
        json_format.ParseDict(v, out.parameters[key])
