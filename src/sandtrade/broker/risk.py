"""Risk rules per account: position size and value, gross exposure, daily loss, order value,
orders per day, and the pattern-day-trader protection as Alpaca applies it.

:class:`RiskRules` is data (every limit optional: None is no limit). :class:`RiskChecks` is the
part of :class:`~sandtrade.broker.paper.PaperBroker` that enforces them inside the broker's own
order checks, so every door (gRPC, the webhook, the CLI, strategies) and every back-test (the
worker holds the same broker) refuse the same orders with the same words.

The day is the broker clock's date (bar time, UTC). An account's day starts at the first bar
of the date, at its equity then (the previous close: Alpaca's ``last_equity``). Once equity
falls more than ``max_daily_loss`` below it, the account is halted until the next day: only
orders that reduce a position are accepted. Orders that only reduce a position are never
refused by a risk rule, except by the pattern-day-trader protection, which is about exits.

Day trades follow FINRA's interpretation /02, as Alpaca counts them: per symbol and day, a run
of closing fills after an opening fill is one day trade (buy, buy, sell, sell is one; buy,
sell, buy, sell is two). With ``pattern_day_trader`` on, an order that would close a position
opened the same day is refused while the account has made 3 day trades in the last 5 business
days and its equity is under 25,000, in Alpaca's words. Crypto is exempt, as at Alpaca.
Alpaca also counts pending orders as potential day trades; this broker counts fills only.

What must survive a restart is kept in the store: the day's start equity, halt and order count
as host state (``risk:ACCOUNT:day``, committed with the change that altered it) for an account
whose rules count the day (``max_daily_loss``, ``max_orders_per_day``; set such a rule and
the day already begun is stored), and day trades are rebuilt from the stored fills by
:meth:`~sandtrade.broker.restore.Restore.restore`. An account without such a rule begins its
day again after a restart, at its equity then (only ``sandtrade account`` shows that day).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from sandtrade.broker.lots import EPS, SIGN, AccountBook
from sandtrade.models import AssetClass, BrokerChange, Instrument, Order

__all__ = ["PDT_DAY_TRADES", "PDT_EQUITY", "PDT_WORDS", "RiskChecks", "RiskRules",
           "RiskStanding", "business_days_back", "risk_state_key"]

#: Alpaca's message for an order refused by its pattern-day-trader protection (HTTP 403,
#: code 40310100).
PDT_WORDS = "trade denied due to pattern day trading protection"
#: Below this equity the protection applies.
PDT_EQUITY = 25_000.0
#: Day trades allowed in 5 business days; the order that would make one more is refused.
PDT_DAY_TRADES = 3
_Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class RiskRules(BaseModel):
    """An account's risk limits; None (the default of each) is no limit."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_position_qty: _Positive | None = Field(
        None, description="Largest position in any symbol, in units (shares, coins, contracts), "
        "long or short; working orders on the same side count.")
    max_position_notional: _Positive | None = Field(
        None, description="Largest value of a position in any symbol, at the last price.")
    max_position_notional_by_symbol: dict[str, _Positive] = Field(
        default_factory=dict, description="Per-symbol overrides of max_position_notional.")
    max_gross_exposure: _Positive | None = Field(
        None, description="Largest sum of the absolute values of all positions, with the "
        "working orders that add to them.")
    max_daily_loss: _Positive | None = Field(
        None, description="Loss from the day's start equity at which the account is halted "
        "until the next day (only orders that reduce a position pass).")
    max_order_notional: _Positive | None = Field(
        None, description="Largest value of one order that opens or adds to a position.")
    max_orders_per_day: Annotated[int, Field(gt=0)] | None = Field(
        None, description="Orders accepted per day; past it only orders that reduce a "
        "position pass.")
    options_level: Annotated[int, Field(ge=0, le=3)] | None = Field(
        None, description="The account's options level (0 to 3, as Alpaca's); None: the "
        "broker's options_level setting (3, as Alpaca's paper accounts).")
    pattern_day_trader: bool = Field(
        False, description="Refuse a 4th day trade in 5 business days while equity is under "
        "25,000, as Alpaca's pattern-day-trader protection does.")

    def is_empty(self) -> bool:
        """Whether no rule is set."""
        return self == _NO_RULES

    def position_notional_limit(self, symbol: str) -> float | None:
        """The position value limit for ``symbol`` (its override, else the general one)."""
        return self.max_position_notional_by_symbol.get(symbol, self.max_position_notional)


_NO_RULES = RiskRules()


@dataclass(frozen=True, slots=True)
class RiskStanding:
    """An account's day against its rules, for people (``sandtrade account``)."""

    day: date | None
    start_equity: float | None
    equity: float
    orders_today: int
    day_trades: int  # in the last 5 business days
    halted: str | None  # why, when halted for the day

    @property
    def loss_today(self) -> float:
        """How far equity is below the day's start (negative: a gain)."""
        return 0.0 if self.start_equity is None else self.start_equity - self.equity

    def to_json(self) -> dict[str, Any]:
        """As plain JSON values."""
        return {"day": self.day.isoformat() if self.day else None,
                "start_equity": self.start_equity, "equity": self.equity,
                "loss_today": self.loss_today, "orders_today": self.orders_today,
                "day_trades_5d": self.day_trades, "halted": self.halted}


class _SymbolDay:
    """One symbol's trading direction today, for counting day trades."""

    __slots__ = ("closing", "day", "opened")

    def __init__(self, day: date) -> None:
        self.day = day
        self.opened = False   # a fill opened or added to a position today
        self.closing = False  # the last fill today closed part of it (a run of closes)


class _RiskDay:
    """One account's risk state: its day and its recent day trades."""

    __slots__ = ("day", "day_trades", "halt_equity", "orders", "start_equity", "symbols")

    def __init__(self) -> None:
        self.day: date | None = None
        self.start_equity: float | None = None
        self.halt_equity: float | None = None  # equity when the daily loss limit was reached
        self.orders = 0
        self.day_trades: list[date] = []
        self.symbols: dict[str, _SymbolDay] = {}

    def to_json(self) -> dict[str, Any]:
        return {"day": self.day.isoformat() if self.day else None,
                "start_equity": self.start_equity, "halt_equity": self.halt_equity,
                "orders": self.orders}

    def load(self, data: Mapping[str, Any]) -> None:
        day = data.get("day")
        self.day = date.fromisoformat(day) if isinstance(day, str) else None
        self.start_equity = _float_or_none(data.get("start_equity"))
        self.halt_equity = _float_or_none(data.get("halt_equity"))
        orders = data.get("orders")
        self.orders = orders if isinstance(orders, int) and not isinstance(orders, bool) else 0


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def risk_state_key(account: str) -> str:
    """The host state key of ``account``'s risk day."""
    return f"risk:{account}:day"


def business_days_back(day: date, n: int) -> date:
    """The weekday ``n`` business days (Monday to Friday) before ``day``."""
    while n > 0:
        day -= timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


class RiskChecks:
    """The risk rules of each account, enforced in the order checks (a mixin of
    :class:`~sandtrade.broker.paper.PaperBroker`)."""

    if TYPE_CHECKING:  # PaperBroker's state and methods these checks read
        _books: dict[str, AccountBook]
        _mark: dict[str, float]
        _working: dict[str, list[Order]]
        _now: datetime | None
        _store: Any
        _batch: list[BrokerChange] | None

        def equity(self, account_id: str) -> float: ...
        def _persist(self, change: BrokerChange) -> None: ...

    _risk_on = False  # any rule set, or day trades tracked (a restored broker): the hot paths
    _risk_default = _NO_RULES

    def _risk_init(self) -> None:
        self._risk_rules: dict[str, RiskRules] = {}
        self._risk_days: dict[str, _RiskDay] = {}
        self._risk_today: date | None = None

    # ------------------------------------------------------------------ settings and views

    def set_default_rules(self, rules: RiskRules) -> None:
        """The rules of every account that has none of its own."""
        self._risk_default = rules
        self._risk_on = self._risk_on or not rules.is_empty()
        self._store_days([a for a in self._risk_days if a not in self._risk_rules])

    def set_rules(self, account: str, rules: RiskRules | None) -> None:
        """``account``'s own rules (None: the defaults again). Effective at once: the next
        order is checked against them."""
        if rules is None:
            self._risk_rules.pop(account, None)
        else:
            self._risk_rules[account] = rules
            self._risk_on = self._risk_on or not rules.is_empty()
        self._store_days([account])

    def _store_days(self, accounts: list[str]) -> None:
        """Store the days begun so far of ``accounts`` whose rules now need them."""
        for account in accounts:
            state = self._risk_days.get(account)
            if state is not None and state.start_equity is not None \
                    and self._keeps_day(account):
                self._save_risk_day(account, state)

    def rules(self, account: str) -> RiskRules:
        """The rules ``account`` trades under."""
        return self._risk_rules.get(account, self._risk_default)

    def has_own_rules(self, account: str) -> bool:
        """Whether ``account`` trades under rules of its own (not the defaults)."""
        return account in self._risk_rules

    def risk_standing(self, account: str) -> RiskStanding:
        """``account``'s day against its rules."""
        state = self._risk_day(account)
        equity = self.equity(account)
        return RiskStanding(day=state.day, start_equity=state.start_equity, equity=equity,
                            orders_today=state.orders, day_trades=self._day_trades(state),
                            halted=self._halt_reason(state, self.rules(account)))

    # ------------------------------------------------------------------ the day

    def _risk_day(self, account: str) -> _RiskDay:
        """``account``'s state, begun for the broker clock's date if it is a new one."""
        state = self._risk_days.get(account)
        if state is None:
            state = self._risk_days[account] = _RiskDay()
        today = self._now.date() if self._now is not None else None
        if state.start_equity is None or (today is not None and state.day != today):
            self._begin_day(account, state, today)
        return state

    def _begin_day(self, account: str, state: _RiskDay, today: date | None) -> None:
        state.day = today
        state.start_equity = self.equity(account)
        state.halt_equity = None
        state.orders = 0
        if self._keeps_day(account):
            self._save_risk_day(account, state)

    def _keeps_day(self, account: str) -> bool:
        """Whether a rule of ``account`` needs its day to survive a restart (the daily loss
        and the orders a day): only then is the day's start stored. A replay of daily bars
        begins a day on every bar, for every account; storing 200 accounts' days on each
        was a tenth of a busy host's time."""
        rules = self.rules(account)
        return rules.max_daily_loss is not None or rules.max_orders_per_day is not None

    def _risk_new_day(self, today: date) -> None:
        """At the first bar of ``today`` (before it is worked): every account's day begins at
        its equity now, the previous close."""
        self._risk_today = today
        for account in self._books:
            state = self._risk_days.get(account)
            if state is None:
                state = self._risk_days[account] = _RiskDay()
            if state.day != today:
                self._begin_day(account, state, today)

    def _risk_after_bar(self, symbol: str) -> None:
        """After a bar of ``symbol``: an account holding it halts once its equity is past the
        daily loss limit (the halt holds for the rest of the day, whatever equity does)."""
        for account, book in self._books.items():
            if symbol not in book.positions:
                continue
            limit = self.rules(account).max_daily_loss
            if limit is None:
                continue
            state = self._risk_day(account)
            if state.halt_equity is None and state.start_equity is not None:
                equity = self.equity(account)
                if equity < state.start_equity - limit:
                    state.halt_equity = equity
                    self._save_risk_day(account, state)

    def _save_risk_day(self, account: str, state: _RiskDay) -> None:
        if self._store is not None or self._batch is not None:  # none in a back-test
            self._persist(BrokerChange(state={risk_state_key(account): state.to_json()}))

    def _load_risk_day(self, account: str, data: Mapping[str, Any]) -> None:
        """Restore ``account``'s day from the store's host state."""
        state = self._risk_days.get(account)
        if state is None:
            state = self._risk_days[account] = _RiskDay()
        state.load(data)
        self._risk_on = True

    # ------------------------------------------------------------------ day trades

    def _note_fill(self, account: str, symbol: str, held: float, sign: int, qty: float,
                   when: datetime, inst: Instrument | None) -> None:
        """Count a day trade when this fill closes part of a position opened today and the
        symbol's last fill today opened (FINRA interpretation /02)."""
        if inst is not None and inst.asset_class is AssetClass.CRYPTO:
            return
        state = self._risk_days.get(account)
        if state is None:
            state = self._risk_days[account] = _RiskDay()
        day = when.date()
        sym = state.symbols.get(symbol)
        if sym is None or sym.day != day:
            sym = state.symbols[symbol] = _SymbolDay(day)
        closing = min(qty, abs(held)) if held * sign < 0 else 0.0
        if closing > EPS:
            if sym.opened and not sym.closing:
                state.day_trades.append(day)
                if len(state.day_trades) > 64:  # only the last 5 business days matter
                    del state.day_trades[:32]
            sym.closing = True
        if qty - closing > EPS:
            sym.opened = True
            sym.closing = False

    def _day_trades(self, state: _RiskDay) -> int:
        """Day trades in the last 5 business days (today and the 4 before)."""
        today = self._now.date() if self._now is not None else state.day
        if today is None:
            return len(state.day_trades)
        since = business_days_back(today, 4)
        return sum(1 for d in state.day_trades if since <= d <= today)

    def _would_day_trade(self, state: _RiskDay, symbol: str) -> bool:
        sym = state.symbols.get(symbol)
        today = self._now.date() if self._now is not None else None
        return (sym is not None and sym.day == today and sym.opened and not sym.closing)

    # ------------------------------------------------------------------ the check

    def _halt_reason(self, state: _RiskDay, rules: RiskRules) -> str | None:
        if state.halt_equity is None or rules.max_daily_loss is None or state.day is None \
                or state.start_equity is None:
            return None
        below = state.start_equity - state.halt_equity
        until = (state.day + timedelta(days=1)).isoformat()
        return (f"risk: daily loss limit: equity {state.halt_equity:,.2f} is {below:,.2f} "
                f"below today's start {state.start_equity:,.2f} (limit "
                f"{rules.max_daily_loss:,.2f}); until {until} only orders that reduce a "
                "position are accepted")

    def _risk_problem(self, book: AccountBook, order: Order, inst: Instrument, held: float,
                      ref: float | None) -> str | None:
        """Why ``order`` breaks ``book``'s risk rules, or None. Called by the order checks
        once the order is known to be well formed, with the position held and the price."""
        rules = self._risk_rules.get(book.id, self._risk_default)
        if rules is _NO_RULES or rules.is_empty():
            return None
        account = book.id
        state = self._risk_day(account)
        sign = SIGN[order.side]
        qty = order.qty
        mult = inst.multiplier
        if qty is None and ref is not None:  # sized from buying power at fill: estimate it
            qty = order.equity_fraction * self.equity(account) / (ref * mult)  # type: ignore[operator]
        reducing = held * sign < 0 and (order.reduce_only or (
            order.qty is not None and order.qty <= abs(held) + EPS))
        side = order.side.value
        if (rules.pattern_day_trader and held * sign < 0
                and inst.asset_class is not AssetClass.CRYPTO
                and self._would_day_trade(state, order.symbol)):
            trades = self._day_trades(state)
            equity = self.equity(account)
            if trades >= PDT_DAY_TRADES and equity < PDT_EQUITY:
                return (f"risk: pattern day trader: {PDT_WORDS} ({side} {order.symbol} would "
                        f"close a position opened today: day trade {trades + 1} in 5 business "
                        f"days, {PDT_DAY_TRADES} allowed while equity {equity:,.2f} is under "
                        f"{PDT_EQUITY:,.0f})")
        if reducing:
            return None
        halted = self._halt_reason(state, rules)
        if halted is not None:
            return halted
        if rules.max_daily_loss is not None and state.start_equity is not None:
            equity = self.equity(account)
            if equity < state.start_equity - rules.max_daily_loss:
                state.halt_equity = equity
                self._save_risk_day(account, state)
                return self._halt_reason(state, rules)
        if rules.max_orders_per_day is not None and state.orders >= rules.max_orders_per_day:
            until = ((state.day + timedelta(days=1)).isoformat() if state.day else
                     "the next day")
            return (f"risk: orders per day: {state.orders:,} orders accepted today (limit "
                    f"{rules.max_orders_per_day:,}); until {until} only orders that reduce a "
                    "position are accepted")
        if qty is None:  # no price yet: only the quantity rule can be checked
            return self._position_qty_problem(rules, book, order, held, 0.0)
        working = self._working_same_side(book, order)
        after = held + sign * (working + qty)
        problem = self._position_qty_problem(rules, book, order, held, working)
        if problem is not None or ref is None:
            return problem
        price = f"at ~{ref:,.2f}"
        value = qty * ref * mult
        if rules.max_order_notional is not None and value > rules.max_order_notional + 1e-9:
            return (f"risk: max order notional: {side} {qty:g} {order.symbol} {price} is "
                    f"worth {value:,.2f} (limit {rules.max_order_notional:,.2f})")
        limit = rules.position_notional_limit(order.symbol)
        position_value = abs(after) * ref * mult
        if limit is not None and position_value > limit + 1e-9 and abs(after) > abs(held):
            return (f"risk: max position notional: {side} {qty:g} {order.symbol} {price} "
                    f"would make the {order.symbol} position worth {position_value:,.2f}"
                    f"{_with_working(working)} (limit {limit:,.2f})")
        if rules.max_gross_exposure is not None:
            gross = self._gross_exposure(book, order.symbol)
            adds = (abs(after) - abs(held)) * ref * mult
            total = gross + max(adds, 0.0)
            if total > rules.max_gross_exposure + 1e-9 and adds > 0:
                return (f"risk: max gross exposure: {side} {qty:g} {order.symbol} {price} "
                        f"would make gross exposure {total:,.2f}{_with_working(working)} "
                        f"(limit {rules.max_gross_exposure:,.2f})")
        return None

    def _position_qty_problem(self, rules: RiskRules, book: AccountBook, order: Order,
                              held: float, working: float) -> str | None:
        if rules.max_position_qty is None or order.qty is None:
            return None
        after = held + SIGN[order.side] * (working + order.qty)
        if abs(after) > rules.max_position_qty + EPS and abs(after) > abs(held):
            return (f"risk: max position size: {order.side.value} {order.qty:g} {order.symbol} "
                    f"would make the {order.symbol} position {after:g}"
                    f"{_with_working(working)} (limit {rules.max_position_qty:g})")
        return None

    def _working_same_side(self, book: AccountBook, order: Order) -> float:
        """What the account's working orders on ``order``'s side of its symbol still add."""
        total = 0.0
        for o in self._working.get(order.symbol, ()):
            if o.account == book.id and o.side is order.side and o.qty is not None \
                    and o.id != order.id:
                total += o.remaining_qty
        return total

    def _gross_exposure(self, book: AccountBook, skip: str) -> float:
        """Σ |position value| of ``book`` at the last prices, plus what its working orders
        in other symbols than ``skip`` would add (the caller adds ``skip``'s own)."""
        mark = self._mark
        gross = 0.0
        for sym, pos in book.positions.items():
            gross += abs(pos.qty) * mark.get(sym, pos.avg_price) * pos.multiplier
        for sym, orders in self._working.items():
            pos_state = book.positions.get(sym)
            held = pos_state.qty if pos_state is not None else 0.0
            for o in orders:
                if o.account != book.id or o.qty is None or sym == skip:
                    continue
                if held * SIGN[o.side] >= 0:  # adds to the position
                    gross += o.remaining_qty * mark.get(sym, o.limit_price or 0.0)
        return gross

    def _risk_accepted(self, account: str) -> None:
        """Count an accepted order against the day's orders (stored when a rule counts them)."""
        state = self._risk_day(account)
        state.orders += 1
        if self.rules(account).max_orders_per_day is not None:
            self._save_risk_day(account, state)


def _with_working(working: float) -> str:
    return f" with {working:g} on working orders" if working else ""
