"""``ctx.pine``: the runtime of strategies imported from Pine Script.

``sandtrade pine import`` turns a Pine strategy into an ordinary strategy file; what Pine does
that Python does not (series with look-back, ``na``, ``var``, indicators called on computed
values, Pine's order book of named entries and exits) is this module's, trusted code in the
worker, reached by the strategy through ``ctx.pine`` alone (no import). The generated file
stays readable: one call here per Pine construct.

Series and history
------------------
``keep(name, value)`` records a variable's value on this bar (the last write of a bar wins, as
Pine's ``x[1]`` is the value ``x`` had when the bar ended); ``past(name, n)`` reads it ``n``
bars back (``na`` where the variable had no value). ``at(site, value, n)`` is the history of an
expression at one place of the source (``close[1]``, a function argument ``src[length]``).
``recall``/``has`` give ``var`` variables their value from one bar to the next.

Orders, as Pine's broker emulator places them
---------------------------------------------
Pine orders are named: ``entry`` (with Pine's reversal: an entry against the position also
closes it, and ``pyramiding`` caps the entries in one direction), ``order`` (a plain order),
``close`` (the quantity an entry id opened), ``close_all``, ``exit`` (a take profit and/or a
stop loss, or a trailing stop, for the position an entry opened) and ``cancel``. Each becomes
an order of the paper broker through the same calls ``ctx.buy``/``ctx.sell`` make, so the
broker's fill rules hold: a market order fills at the next bar's open (at this bar's close
with the ``close`` fill profile, Pine's ``process_orders_on_close``), stops and limits against
the next bar's range. Placing an order under an id that already has a working order replaces
it, as Pine modifies it.

It is one file because the runtime is one object whose series, indicators and order book share
its private state: the sandbox hides only ``_`` names from a strategy, so module functions
over that state would have to be reachable names. The tables of Pine's built-ins are
:mod:`sandtrade.strategy.pine_builtins`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import Any, NamedTuple

from sandtrade.models import OrderSide, OrderType
from sandtrade.strategy.indicators import INDICATORS
from sandtrade.strategy.pine_builtins import (
    NA,
    TA_FUNCTIONS,
    MathFunctions,
    epoch_ms,
    isna,
    number,
)

__all__ = ["PineRuntime"]

#: The furthest a series may look back (Pine's ``max_bars_back`` default).
MAX_BARS_BACK = 5000
#: Iterations a Pine ``for`` loop may make per bar before the runtime stops it, as Pine does.
MAX_LOOP = 500_000
#: ``default_qty_type`` values.
QTY_TYPES = ("fixed", "percent_of_equity", "cash")


class _Series:
    """One name's values by bar, for ``x[n]``."""

    __slots__ = ("bar", "values")

    def __init__(self) -> None:
        self.values: deque[Any] = deque(maxlen=MAX_BARS_BACK + 1)
        self.bar = -1

    def put(self, bar: int, value: object) -> None:
        if self.bar == bar:
            self.values[-1] = value
            return
        if self.bar >= 0:
            for _ in range(min(bar - self.bar - 1, MAX_BARS_BACK)):
                self.values.append(NA)  # bars it had no value on
        self.values.append(value)
        self.bar = bar

    def get(self, bar: int, n: int) -> Any:
        back = n + (bar - self.bar)  # how far behind the last value written
        if back < 0 or back >= len(self.values):
            return NA
        return self.values[-1 - back]


class _Working(NamedTuple):
    """A Pine order waiting in the broker: what placed it and the broker's order."""

    kind: str            # entry, order, close, exit-limit, exit-stop, exit-trail
    pine_id: str
    direction: int       # +1 long (buys), -1 short (sells)
    qty: float           # the entry's own quantity, before any reversal
    limit: float | None
    stop: float | None
    oca: str
    broker_id: str
    broker_qty: float


class _ExitSpec(NamedTuple):
    pine_id: str
    from_entry: str
    qty: float | None
    qty_percent: float
    limit: float | None
    stop: float | None
    profit: float | None
    loss: float | None
    trail_price: float | None
    trail_points: float | None
    trail_offset: float | None


def _price(name: str, value: object) -> float | None:
    """An order price argument: None for ``na`` or not given."""
    if isna(value):
        return None
    if type(value) not in (int, float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    v = float(value)  # type: ignore[arg-type]
    if not math.isfinite(v):
        return None
    return v


def _id(name: str, value: object) -> str:
    if type(value) is not str or not value or len(value) > 100:
        raise ValueError(f"{name} must be a non-empty string of at most 100 characters, "
                         f"got {value!r}")
    return value


class PineRuntime:
    """What ``ctx.pine`` is: series, indicators and Pine's orders for one imported strategy."""

    __slots__ = ("_bar", "_bar_index", "_bars", "_ctx", "_day", "_entries", "_exits", "_initial",
                 "_last", "_mintick", "_pyramiding", "_qty_type", "_qty_value",
                 "_send", "_series", "_sites", "_ta", "_trading", "_working", "math")

    long = "long"
    short = "short"

    def __init__(self, ctx: Any, *, send: Any = None, trading: Any = None) -> None:
        # ``ctx`` is the strategy's Context (not imported: context.py imports this module);
        # ``send`` its order door (Context._send: the checks ctx.buy makes) and ``trading``
        # its broker port, for what ctx has no public call for (cancel by id, trailing stops).
        self._ctx = ctx
        self._send = send
        self._trading = trading
        self._bar: Any = None
        self._bars: deque[Any] = deque(maxlen=MAX_BARS_BACK + 1)
        self._bar_index = -1
        self._day: Any = None
        self._series: dict[str, _Series] = {}
        self._sites: dict[str, _Series] = {}
        self._ta: dict[str, Any] = {}
        self._last: dict[str, Any] = {}
        #: Pine ids of the entries holding the position, oldest first: [id, signed qty].
        self._entries: list[list[Any]] = []
        self._working: dict[tuple[str, str], _Working] = {}
        self._exits: dict[str, _ExitSpec] = {}
        self._pyramiding = 1
        self._qty_type = "fixed"
        self._qty_value = 1.0
        self._initial = 1_000_000.0
        self._mintick = 0.01
        self.math = MathFunctions()

    # ------------------------------------------------------------ settings and bars

    def setup(self, *, pyramiding: int = 1, default_qty_type: str = "fixed",
              default_qty_value: float = 1.0, initial_capital: float = 1_000_000.0,
              mintick: float = 0.01) -> None:
        """The ``strategy()`` settings that act inside the strategy (once, in ``on_start``)."""
        if type(pyramiding) is not int or pyramiding < 0:
            raise ValueError(f"pyramiding must be a whole number, 0 or more, got {pyramiding!r}")
        if default_qty_type not in QTY_TYPES:
            raise ValueError(f"default_qty_type must be one of {', '.join(QTY_TYPES)}, "
                             f"got {default_qty_type!r}")
        self._pyramiding = max(1, pyramiding)  # Pine: 0 also allows one entry
        self._qty_type = default_qty_type
        self._qty_value = float(default_qty_value)
        self._initial = float(initial_capital)
        self._mintick = float(mintick)

    def begin(self, bar: Any) -> None:
        """Start a bar (first thing in ``on_bar``): the exits follow the position."""
        self._bar = bar
        self._bars.append(bar)
        self._bar_index = self._ctx.bar_index
        self._follow_position()

    @property
    def bar_index(self) -> int:
        """Pine's ``bar_index``."""
        return self._bar_index

    @property
    def time(self) -> int:
        """Pine's ``time``: the bar's time in milliseconds since 1970 (UTC)."""
        return epoch_ms(self._bar.time)

    @property
    def hl2(self) -> float:
        """``hl2``."""
        b = self._bar
        return (b.high + b.low) / 2  # type: ignore[no-any-return]

    @property
    def hlc3(self) -> float:
        """``hlc3``."""
        b = self._bar
        return (b.high + b.low + b.close) / 3  # type: ignore[no-any-return]

    @property
    def ohlc4(self) -> float:
        """``ohlc4``."""
        b = self._bar
        return (b.open + b.high + b.low + b.close) / 4  # type: ignore[no-any-return]

    @property
    def hlcc4(self) -> float:
        """``hlcc4``."""
        b = self._bar
        return (b.high + b.low + 2 * b.close) / 4  # type: ignore[no-any-return]

    def source(self, name: str) -> float:
        """The value of a source input (``close``, ``hl2``, …) on this bar."""
        if name not in ("open", "high", "low", "close", "volume", "hl2", "hlc3", "ohlc4",
                        "hlcc4"):
            raise ValueError(f"a source is open, high, low, close, volume, hl2, hlc3, ohlc4 or "
                             f"hlcc4, got {name!r}")
        if name in ("hl2", "hlc3", "ohlc4", "hlcc4"):
            return getattr(self, name)  # type: ignore[no-any-return]
        return getattr(self._bar, name)  # type: ignore[no-any-return]

    @property
    def mintick(self) -> float:
        """``syminfo.mintick``."""
        return self._mintick

    @property
    def ticker(self) -> str:
        """``syminfo.ticker``."""
        return self._ctx.symbol

    @property
    def isfirst(self) -> bool:
        """``barstate.isfirst``."""
        return self._bar_index == 0

    # ------------------------------------------------------------ na and series

    @staticmethod
    def isna(x: object) -> bool:
        """Pine's ``na(x)``."""
        return isna(x)

    @staticmethod
    def nz(x: object, replacement: object = 0) -> Any:
        """Pine's ``nz(x, replacement)``."""
        return replacement if isna(x) else x

    @staticmethod
    def true(x: object) -> bool:
        """A Pine condition: ``na`` is false."""
        return False if isna(x) else bool(x)

    def keep(self, name: str, value: Any) -> Any:
        """Record ``value`` as variable ``name``'s on this bar; returns it."""
        s = self._series.get(name)
        if s is None:
            s = self._series[name] = _Series()
        s.put(self._bar_index, value)
        self._last[name] = value
        return value

    def past(self, name: str, n: object) -> Any:
        """Variable ``name``'s value ``n`` bars ago (``na`` before it had one)."""
        k = self._back(n)
        s = self._series.get(name)
        return NA if s is None else s.get(self._bar_index, k)

    def has(self, name: str) -> bool:
        """True once a ``var`` variable has been declared (its first bar has run)."""
        return name in self._last

    def recall(self, name: str) -> Any:
        """A ``var`` variable's value from the bar before, carried over to this bar."""
        return self.keep(name, self._last[name])

    @staticmethod
    def div(a: float, b: float) -> float:
        """``a / b``; ``na`` where ``b`` is 0 or either is ``na``, as Pine divides."""
        return a / b if b and not isna(b) else NA

    @staticmethod
    def mod(a: float, b: float) -> float:
        """``a % b`` with the sign of ``a`` (Pine's remainder); ``na`` where ``b`` is 0."""
        return math.fmod(a, b) if b and not isna(b) else NA

    def bar_past(self, name: str, n: object) -> Any:
        """A built-in series ``n`` bars ago: ``close[1]``, ``hl2[2]``, ``bar_index[1]``, read
        from the bars themselves wherever the reference stands."""
        k = self._back(n)
        bars = self._bars
        if k >= len(bars):
            return NA
        b = bars[-1 - k]
        if name in ("open", "high", "low", "close", "volume"):
            return getattr(b, name)
        if name == "hl2":
            return (b.high + b.low) / 2
        if name == "hlc3":
            return (b.high + b.low + b.close) / 3
        if name == "ohlc4":
            return (b.open + b.high + b.low + b.close) / 4
        if name == "hlcc4":
            return (b.high + b.low + 2 * b.close) / 4
        if name == "bar_index":
            return self._bar_index - k
        if name == "time":
            return epoch_ms(b.time)
        raise ValueError(f"{name!r} is not a built-in series")

    def at(self, site: str, value: Any, n: object) -> Any:
        """``expr[n]``: the history of an expression at one place of the source."""
        k = self._back(n)
        s = self._sites.get(site)
        if s is None:
            s = self._sites[site] = _Series()
        s.put(self._bar_index, value)
        return s.get(self._bar_index, k)

    @staticmethod
    def _back(n: object) -> int:
        if type(n) is float and n == int(n):
            n = int(n)
        if type(n) is not int or not 0 <= n <= MAX_BARS_BACK:
            raise IndexError(f"history reference [{n!r}]: a whole number of bars from 0 to "
                             f"{MAX_BARS_BACK}")
        return n

    @staticmethod
    def upto(start: float, end: float, step: float | None = None) -> Iterator[float]:
        """Pine's ``for i = start to end [by step]``: both ends included, counting down when
        ``end`` is below ``start``."""
        if isna(start) or isna(end):
            return
        s = abs(step) if step is not None else 1
        if not s:
            raise ValueError("a for loop's step must not be 0")
        i, n = start, 0
        if end >= start:
            while i <= end:
                yield i
                i += s
                n += 1
                if n > MAX_LOOP:
                    raise RuntimeError(f"a for loop ran more than {MAX_LOOP:,} times in a bar")
        else:
            while i >= end:
                yield i
                i -= s
                n += 1
                if n > MAX_LOOP:
                    raise RuntimeError(f"a for loop ran more than {MAX_LOOP:,} times in a bar")

    # ------------------------------------------------------------ indicators

    def ta(self, site: str, name: str, *args: Any) -> Any:
        """Pine's ``ta.<name>(args…)`` called at ``site``: each place of the source has its
        own indicator, built on its first call with the settings then given."""
        core = self._ta.get(site)
        spec = TA_FUNCTIONS[name]
        names = [p for p, _ in spec.params]
        if core is None:
            settings = [args[names.index(s)] for s in spec.settings]
            core = self._ta[site] = INDICATORS[name](*settings)
        bar = self._bar
        values: list[Any] = []
        for v in spec.values:
            if v == "condition":
                values.append(self.true(args[names.index(v)]))
            elif v[0] != "@":
                values.append(number(args[names.index(v)]))
            elif v == "@session":
                day = bar.time.date()
                values.append(day != self._day)
                self._day = day
            else:
                values.append(getattr(bar, v[1:]))
        return core.update(*values)

    def fixnan(self, site: str, x: Any) -> Any:
        """Pine's ``ta.fixnan``/``fixnan``: the last value that was not ``na``."""
        if not isna(x):
            self._last[site] = x
            return x
        return self._last.get(site, NA)

    # ------------------------------------------------------------ strategy state

    @property
    def position_size(self) -> float:
        """``strategy.position_size``: positive long, negative short, 0 flat."""
        return self._ctx.position().qty

    @property
    def position_avg_price(self) -> float:
        """``strategy.position_avg_price`` (``na`` when flat)."""
        p = self._ctx.position()
        return p.avg_price if p.qty else NA

    @property
    def equity(self) -> float:
        """``strategy.equity``."""
        return self._ctx.account.equity

    @property
    def initial_capital(self) -> float:
        """``strategy.initial_capital``."""
        return self._initial

    @property
    def netprofit(self) -> float:
        """``strategy.netprofit``: realised profit less commissions."""
        a = self._ctx.account
        return a.realized_pnl - a.commissions

    @property
    def openprofit(self) -> float:
        """``strategy.openprofit``."""
        return self._ctx.position().unrealized_pnl

    @property
    def opentrades(self) -> int:
        """``strategy.opentrades``: entries holding the position."""
        return len(self._entries)

    # ------------------------------------------------------------ orders

    def _direction(self, direction: object) -> int:
        if direction == "long":
            return 1
        if direction == "short":
            return -1
        raise ValueError(f"direction must be strategy.long or strategy.short, got {direction!r}")

    def _default_qty(self) -> float:
        if self._qty_type == "fixed":
            return self._qty_value
        price = self._bar.close
        cash = self._qty_value if self._qty_type == "cash" else \
            self._ctx.account.equity * self._qty_value / 100
        return float(math.floor(cash / price)) if price > 0 else 0.0

    def _place(self, kind: str, pine_id: str, direction: int, qty: float, broker_qty: float,
               limit: float | None, stop: float | None, oca: str, reduce_only: bool) -> None:
        self._drop((kind, pine_id))
        if broker_qty <= 0:
            return
        ctx = self._ctx
        side = OrderSide.BUY if direction > 0 else OrderSide.SELL
        oid = self._send(side, ctx.symbol, broker_qty, None, limit, stop, "gtc", pine_id,
                        reduce_only)
        self._working[(kind, pine_id)] = _Working(kind, pine_id, direction, qty, limit, stop,
                                                  oca, oid, broker_qty)

    def _drop(self, key: tuple[str, str]) -> None:
        w = self._working.pop(key, None)
        if w is not None:
            self._trading.cancel(w.broker_id)

    def _entry_qty(self, direction: int, qty: float) -> float:
        """The broker quantity of an entry now: 0 when pyramiding forbids it, its own
        quantity plus the opposite position it reverses."""
        pos = self._ctx.position().qty
        if pos * direction > 0:
            same = sum(1 for e in self._entries if e[1] * direction > 0)
            if same >= self._pyramiding:
                return 0.0
            return qty
        return qty + abs(pos)

    def entry(self, id: str, direction: str, qty: float = NA, limit: float = NA,
              stop: float = NA, oca_name: str = "", oca_type: str = "none", comment: str = "",
              when: bool = True, alert_message: str = "", disable_alert: bool = False) -> None:
        """``strategy.entry``: enter (or add to) a position; against a position it reverses
        it, as Pine does. ``qty`` defaults to ``default_qty_type``/``default_qty_value``."""
        if not self.true(when):
            return
        pid = _id("id", id)
        d = self._direction(direction)
        q = self._default_qty() if isna(qty) else float(qty)
        if oca_type not in ("none", "cancel"):
            raise ValueError(f"oca_type {oca_type!r} is not supported (yet); use "
                             "strategy.oca.cancel or none")
        oca = oca_name if oca_type == "cancel" else ""
        self._place("entry", pid, d, q, self._entry_qty(d, q), _price("limit", limit),
                    _price("stop", stop), oca, False)

    def order(self, id: str, direction: str, qty: float = NA, limit: float = NA,
              stop: float = NA, oca_name: str = "", oca_type: str = "none", comment: str = "",
              when: bool = True, alert_message: str = "", disable_alert: bool = False) -> None:
        """``strategy.order``: a plain order, no reversal and no pyramiding check."""
        if not self.true(when):
            return
        pid = _id("id", id)
        d = self._direction(direction)
        q = self._default_qty() if isna(qty) else float(qty)
        oca = oca_name if oca_type == "cancel" else ""
        self._place("order", pid, d, q, q, _price("limit", limit), _price("stop", stop), oca,
                    False)

    def close(self, id: str, comment: str = "", qty: float = NA, qty_percent: float = 100.0,
              when: bool = True, alert_message: str = "", immediately: bool = False,
              disable_alert: bool = False) -> None:
        """``strategy.close``: close what entry ``id`` opened, at market."""
        if not self.true(when):
            return
        pid = _id("id", id)
        held = sum(e[1] for e in self._entries if e[0] == pid)
        if not held:
            return
        q = abs(held) * float(qty_percent) / 100 if isna(qty) else min(float(qty), abs(held))
        self._place("close", pid, -1 if held > 0 else 1, q, q, None, None, "", True)

    def close_all(self, comment: str = "", when: bool = True, alert_message: str = "",
                  immediately: bool = False, disable_alert: bool = False) -> None:
        """``strategy.close_all``: close the whole position at market."""
        if not self.true(when):
            return
        pos = self._ctx.position().qty
        if pos:
            self._place("close", "\x00all", -1 if pos > 0 else 1, abs(pos), abs(pos), None,
                        None, "", True)

    def exit(self, id: str, from_entry: str = "", qty: float = NA, qty_percent: float = 100.0,
             profit: float = NA, limit: float = NA, loss: float = NA, stop: float = NA,
             trail_price: float = NA, trail_points: float = NA, trail_offset: float = NA,
             oca_name: str = "", comment: str = "", comment_profit: str = "",
             comment_loss: str = "", comment_trailing: str = "", when: bool = True,
             alert_message: str = "", alert_profit: str = "", alert_loss: str = "",
             alert_trailing: str = "", disable_alert: bool = False) -> None:
        """``strategy.exit``: a take profit (``limit``, or ``profit`` ticks from the entry's
        price) and/or a stop loss (``stop``, or ``loss`` ticks), or a trailing stop that
        starts ``trail_points`` ticks in profit (or at ``trail_price``) and trails
        ``trail_offset`` ticks behind, for the position entry ``from_entry`` opened (every
        entry when empty). It waits for the entry and follows the position from then on."""
        if not self.true(when):
            return
        spec = _ExitSpec(_id("id", id), from_entry, None if isna(qty) else float(qty),
                         float(qty_percent), _price("limit", limit), _price("stop", stop),
                         _price("profit", profit), _price("loss", loss),
                         _price("trail_price", trail_price), _price("trail_points", trail_points),
                         _price("trail_offset", trail_offset))
        if spec.limit is None and spec.stop is None and spec.profit is None \
                and spec.loss is None and spec.trail_offset is None:
            raise ValueError(f"strategy.exit({id!r}): give limit/profit, stop/loss or "
                             "trail_offset")
        self._exits[spec.pine_id] = spec
        self._place_exit(spec)

    def cancel(self, id: str, when: bool = True) -> None:
        """``strategy.cancel``: cancel the working orders placed under ``id``."""
        if not self.true(when):
            return
        pid = _id("id", id)
        for key in [k for k in self._working if k[1] == pid]:
            self._drop(key)
        self._exits.pop(pid, None)

    def cancel_all(self, when: bool = True) -> None:
        """``strategy.cancel_all``."""
        if not self.true(when):
            return
        for key in list(self._working):
            self._drop(key)
        self._exits.clear()

    # ------------------------------------------------------------ exits, fills, position

    def _place_exit(self, spec: _ExitSpec) -> None:
        held = [e for e in self._entries if not spec.from_entry or e[0] == spec.from_entry]
        size = sum(e[1] for e in held)
        keys = [("exit-limit", spec.pine_id), ("exit-stop", spec.pine_id),
                ("exit-trail", spec.pine_id)]
        if not size:
            for key in keys:
                self._drop(key)
            return
        d = 1 if size > 0 else -1
        q = abs(size) * spec.qty_percent / 100 if spec.qty is None else min(spec.qty, abs(size))
        entry = self._ctx.position().avg_price
        tick = self._mintick
        limit = spec.limit if spec.limit is not None else (
            None if spec.profit is None else entry + d * spec.profit * tick)
        stop = spec.stop if spec.stop is not None else (
            None if spec.loss is None else entry - d * spec.loss * tick)
        for kind, lim, stp in (("exit-limit", limit, None), ("exit-stop", None, stop)):
            w = self._working.get((kind, spec.pine_id))
            price = lim if lim is not None else stp
            if price is None:
                self._drop((kind, spec.pine_id))
            elif w is None or w.broker_qty != q or (w.limit, w.stop) != (lim, stp):
                self._place(kind, spec.pine_id, -d, q, q, lim, stp, "", True)
        if spec.trail_offset is not None and ("exit-trail", spec.pine_id) not in self._working:
            start = spec.trail_price if spec.trail_price is not None else (
                None if spec.trail_points is None else entry + d * spec.trail_points * tick)
            bar = self._bar
            reached = start is None or (bar is not None and (
                bar.high >= start if d > 0 else bar.low <= start))
            if reached:
                ctx = self._ctx
                oid = self._trading.submit(
                    ctx.symbol, OrderSide.SELL if d > 0 else OrderSide.BUY, q,
                    equity_fraction=None, type=OrderType.TRAILING_STOP, limit_price=None,
                    stop_price=None, tif="gtc", reduce_only=True, tag=spec.pine_id,
                    trail_price=spec.trail_offset * tick).id
                self._working[("exit-trail", spec.pine_id)] = _Working(
                    "exit-trail", spec.pine_id, -d, q, None, None, "", oid, q)

    def _follow_position(self) -> None:
        """After the bar's fills: entries that pyramiding now forbids or whose reversal
        quantity changed are placed again; exits follow the position."""
        for key, w in list(self._working.items()):
            if w.kind == "entry":
                want = self._entry_qty(w.direction, w.qty)
                if want != w.broker_qty:
                    self._place("entry", w.pine_id, w.direction, w.qty, want, w.limit, w.stop,
                                w.oca, False)
            elif w.kind == "close" and not self._ctx.position().qty:
                self._drop(key)
        for spec in list(self._exits.values()):
            self._place_exit(spec)

    def on_fill(self, fill: Any) -> None:
        """Book a fill (the generated ``on_fill`` calls this): the entries that hold the
        position, one-cancels-all groups, and the order's end."""
        key = next((k for k, w in self._working.items() if w.broker_id == fill.order_id), None)
        if key is None:
            return
        w = self._working[key]
        signed = fill.qty if fill.side == "buy" else -fill.qty
        self._book(w.pine_id if w.kind in ("entry", "order") else None, signed,
                   w.pine_id if w.kind == "close" else None)
        still = any(o.id == w.broker_id for o in self._ctx.orders())
        if not still:
            del self._working[key]
        if w.oca:
            for k2, other in list(self._working.items()):
                if other.oca == w.oca and k2 != key:
                    self._drop(k2)
        if w.kind.startswith("exit-"):
            for kind in ("exit-limit", "exit-stop", "exit-trail"):
                if kind != w.kind:
                    self._drop((kind, w.pine_id))
            if not still:
                self._exits.pop(w.pine_id, None)

    def _book(self, pine_id: str | None, signed: float, closing: str | None) -> None:
        """Entries after a fill of ``signed`` units: reduce the oldest (or ``closing``'s)
        first, then what is left opens a new entry under ``pine_id``."""
        left = signed
        order = sorted(self._entries, key=lambda e: e[0] != closing) if closing else \
            list(self._entries)
        for e in order:
            if not left or e[1] * left > 0:
                continue
            take = min(abs(e[1]), abs(left))
            e[1] += take if e[1] < 0 else -take
            left += take if left < 0 else -take
        self._entries = [e for e in self._entries if e[1]]
        if left:
            if pine_id is None:
                pine_id = "\x00order"
            self._entries.append([pine_id, left])

    # ------------------------------------------------------------ plots and alerts

    def plot(self, title: str, value: object, *, pane: str = "price",
             color: str | None = None) -> None:
        """``plot``/``plotshape``: one value per bar under ``title``, through ``ctx.plot``
        (``na`` leaves a gap)."""
        v = NA if isna(value) else float(value)  # type: ignore[arg-type]
        self._ctx.plot(title, v, pane=pane, color=color)

    def alert(self, message: object, freq: object = None) -> None:
        """``alert``: a line in the run's log, and the message sent as a signal of the
        strategy's account (``ctx.signal``: a live run's alerts trade as TradingView's
        would through a bridge; a back-test sends none)."""
        self._ctx.log(f"ALERT {message}")
        self._ctx.signal(str(message))

    @staticmethod
    def tostring(x: object) -> str:
        """``str.tostring``."""
        if isna(x):
            return "NaN"
        if type(x) is bool:
            return "true" if x else "false"
        if type(x) is float and x == int(x):
            return str(int(x)) if abs(x) < 1e15 else str(x)
        return str(x)
