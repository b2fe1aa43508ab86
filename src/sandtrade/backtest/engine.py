"""The event-driven back-test engine: bars in, the same paper broker, equity values out.

For each timestamp the engine: lets the broker work the orders against the new bar(s) (fills at
the open, see :mod:`sandtrade.broker.fills`), records the equity at the close, reports fills
to ``on_fill`` and then calls ``on_bar``. Bars are consumed as a stream; the engine keeps
the strategy's look-back window and hands the equity values to a ``measure`` callback in
batches, so memory does not grow with the length of the history.

It only simulates: measuring (statistics, curves) is :mod:`sandtrade.backtest.meter`'s, run
beside it by :func:`sandtrade.backtest.runner.run_backtest` or on the host by the sandbox. The
sandbox's worker imports this module, so it imports no measuring, no files, no market.
"""

from __future__ import annotations

import gc
import heapq
from array import array
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from sandtrade.backtest import options_desk
from sandtrade.backtest.result import Simulation
from sandtrade.broker import BrokerSettings, FillProfile, PaperBroker, RiskRules, sequential_ids
from sandtrade.errors import DataError, OrderRejected, StrategyError
from sandtrade.models import (
    Bar,
    ExitSpec,
    Fill,
    Instrument,
    Leg,
    Order,
    OrderSide,
    OrderType,
    TimeInForce,
    Trade,
)
from sandtrade.options.settings import OptionsSettings
from sandtrade.options.sources import ChainSource, OptionQuotes
from sandtrade.strategy import context
from sandtrade.strategy.context import (
    AccountView,
    Context,
    FillView,
    GreeksView,
    GroupView,
    OptionRowView,
    PositionView,
)
from sandtrade.strategy.loader import LoadedStrategy, strategy_error
from sandtrade.strategy.plots import PlotRecorder

__all__ = ["ACCOUNT", "LocalTrading", "Measure", "simulate"]

ACCOUNT = "backtest"
#: What :func:`simulate` hands its measurements to: ``(bars, equities, closed trades)``.
Measure = Callable[[list[Bar], "array[float]", list[Trade]], None]
PROGRESS_EVERY = 4096
#: Rejected orders listed one by one in a result's warnings; the rest are counted.
MAX_REJECTION_WARNINGS = 200
#: The strategy log kept when the caller does not take it (``log=None``): the sandbox
#: worker's default cap (``WorkerLimits.log_bytes``), so a run in-process is bounded alike.
MAX_LOG_BYTES = 1 << 20


class LocalTrading:
    """The :class:`~sandtrade.strategy.context.Trading` port over an in-process broker."""

    __slots__ = ("_account", "_broker", "_quotes")

    def __init__(self, broker: PaperBroker, account: str,
                 quotes: OptionQuotes | None = None) -> None:
        self._broker = broker
        self._account = account
        self._quotes = quotes or options_desk.backtest_quotes(broker)

    def submit(self, symbol: str, side: OrderSide, qty: float | None, *,
               equity_fraction: float | None, type: OrderType, limit_price: float | None,
               stop_price: float | None, tif: str, reduce_only: bool,
               tag: str | None, take_profit: ExitSpec | None = None,
               stop_loss: ExitSpec | None = None, trail_price: float | None = None,
               trail_percent: float | None = None) -> Order:
        """Submit to the broker for this account."""
        if take_profit is None and stop_loss is None and trail_price is None \
                and trail_percent is None:
            return self._broker.submit(
                self._account, symbol, side, qty, equity_fraction=equity_fraction, type=type,
                limit_price=limit_price, stop_price=stop_price, tif=tif,
                reduce_only=reduce_only, tag=tag)
        return self._broker.submit(
            self._account, symbol, side, qty, equity_fraction=equity_fraction, type=type,
            limit_price=limit_price, stop_price=stop_price, tif=tif, reduce_only=reduce_only,
            tag=tag, take_profit=take_profit, stop_loss=stop_loss, trail_price=trail_price,
            trail_percent=trail_percent)

    def signal(self, body: str) -> tuple[str, str, str]:
        """A back-test sends no signal (an alert of a Pine strategy included)."""
        return "", "not_sent", "a back-test sends no signals"

    def close_position(self, symbol: str) -> Order | None:
        """A reduce-only market order for the whole position, or None when flat."""
        qty = self._broker.position_qty(self._account, symbol)
        if not qty:
            return None
        return self._broker.submit(
            self._account, symbol, OrderSide.SELL if qty > 0 else OrderSide.BUY, abs(qty),
            equity_fraction=None, type=OrderType.MARKET, limit_price=None, stop_price=None,
            tif="gtc", reduce_only=True, tag=None)

    def cancel(self, order_id: str) -> bool:
        """Cancel if still working (and this account's)."""
        try:
            order = self._broker.get_order(order_id)
        except OrderRejected:  # unknown (or long finished and forgotten)
            return False
        if order.account != self._account or not (
                order.is_open or any(o.is_open for o in self._broker.children(order_id))):
            return False  # finished, and no exit of it is working
        self._broker.cancel(order_id, "canceled by the strategy")
        return True

    def position(self, symbol: str) -> PositionView:
        """The account's position in ``symbol``."""
        qty, avg, realized, mark, mult = self._broker.position_state(self._account, symbol)
        price = avg if mark is None else mark
        return PositionView(symbol, qty, avg, price, (price - avg) * qty * mult if qty else 0.0,
                            realized)

    def account(self) -> AccountView:
        """Cash, equity and buying power now."""
        return AccountView(*self._broker.account_state(self._account))

    def open_orders(self) -> list[Order]:
        """Working orders."""
        return self._broker.orders(self._account, open_only=True)

    def option_chain(self, symbol: str, expiry: str | None) -> list[OptionRowView]:
        """The chain synthesised (or replayed) at the current bar."""
        return options_desk.chain_rows(self._quotes, symbol, expiry)

    def _made(self, op: Callable[[], Order]) -> tuple[Order, list[Fill]]:
        broker, account = self._broker, self._account
        before = len(broker.fills(account))
        order = op()
        return order, broker.fills(account)[before:]

    def option_order(self, symbol: str, template: str | None, legs: list[dict[str, Any]],
                     qty: float, *, limit_price: float | None, tif: str, tag: str | None,
                     params: dict[str, Any]) -> tuple[Order, list[Fill]]:
        """A multi-leg order for this account; a template is built from the chain now."""
        chosen: list[Leg] | list[dict[str, Any]] = (
            options_desk.template_legs(self._quotes, symbol, template, params)
            if template is not None else legs)
        tif_v = TimeInForce(tif)
        return self._made(lambda: self._broker.submit_multileg(
            self._account, chosen, qty, limit_price=limit_price, tif=tif_v, tag=tag))

    def option_close(self, group_id: str, *, limit_price: float | None, tag: str | None
                     ) -> tuple[Order, list[Fill]]:
        """Close one of this account's position groups."""
        return self._made(lambda: self._broker.close_group(
            self._account, group_id, limit_price=limit_price, tag=tag))

    def option_greeks(self) -> GreeksView:
        """The account's greeks at the current bar."""
        broker = self._broker
        return options_desk.greeks_view(self._quotes, broker.positions(self._account),
                                        broker.last_price)

    def option_groups(self) -> list[GroupView]:
        """The account's open position groups, valued at the current bar."""
        broker = self._broker

        def multiplier(sym: str) -> float:
            inst = broker.option_instrument(sym)
            return inst.multiplier if inst is not None else 1.0

        return options_desk.group_views(
            self._quotes, ((g.id, g.legs) for g in broker.position_groups(self._account)),
            broker.last_price, multiplier)


def _nothing() -> None:
    pass


def _timestamps(streams: Sequence[Iterable[Bar]]) -> Iterator[Sequence[Bar]]:
    """Bars grouped by timestamp; one symbol's bars are yielded one at a time."""
    if len(streams) == 1:
        for bar in streams[0]:
            yield (bar,)
        return
    group: list[Bar] = []
    for bar in heapq.merge(*streams, key=lambda b: b.time):
        if group and bar.time != group[0].time:
            yield group
            group = []
        group.append(bar)
    if group:
        yield group


def simulate(strategy: LoadedStrategy, data: Mapping[str, Iterable[Bar]] | Iterable[Bar],
             *, measure: Measure, keep_bars: bool = True,
             cash: float = 10_000.0, settings: BrokerSettings | None = None,
             params: Mapping[str, Any] | None = None, instruments: Iterable[Instrument] = (),
             progress: Callable[[int], None] | None = None, close_at_end: bool = False,
             profiles: Iterable[type[FillProfile]] = (),
             log: Callable[[str], None] | None = None,
             heartbeat: Callable[[], None] | None = None,
             risk: RiskRules | None = None, options: OptionsSettings | None = None,
             chains: ChainSource | None = None) -> Simulation:
    """Run ``strategy`` over ``data`` without measuring it (see
    :func:`sandtrade.backtest.runner.run_backtest`, which measures it in this process).

    Every few thousand bars, and at the end, ``measure(bars, equities, trades)`` receives the
    bars taken in since its last call (empty with ``keep_bars=False``: the sandbox's host has
    them already), the equity value at the end of each timestamp (one per bar with a single
    stream, one per run of equal times with several), both reused after the call, and the
    trades closed so far (a list that only grows; the sandbox sends the new ones along).
    ``risk``: the account's risk rules, which the broker enforces as it does live.
    ``options``: how ``ctx.options`` chains are synthesised from the underlying's bars (the
    ``[options]`` settings: volatility, strikes, expiries, spread); ``chains``: a chain
    source to use instead (recorded chains, :class:`~sandtrade.options.RecordedChains`).
    """
    # The loop allocates many short-lived, acyclic objects (bars, tuples, floats); with the
    # default thresholds the cyclic collector runs every 700 allocations and costs ~13 % of a
    # run. Collect less often while it runs; reference counting still frees everything else.
    # Objects that exist before the run (the caller's data, a whole history in a list) are
    # frozen out of the collector's sight, so a long history in memory does not make every
    # collection during the run slower (measured: up to 25 % of a run).
    thresholds = gc.get_threshold()
    freeze = gc.get_freeze_count() == 0
    gc.set_threshold(100_000, 50, 100)
    if freeze:
        gc.freeze()
    try:
        return _run(strategy, data, cash=cash, settings=settings, params=params,
                    instruments=instruments, progress=progress, close_at_end=close_at_end,
                    profiles=profiles, log=log, heartbeat=heartbeat, measure=measure,
                    keep_bars=keep_bars, risk=risk, options=options, chains=chains)
    finally:
        if freeze:
            gc.unfreeze()
        gc.set_threshold(*thresholds)


def _run(strategy: LoadedStrategy, data: Mapping[str, Iterable[Bar]] | Iterable[Bar], *,
         cash: float, settings: BrokerSettings | None, params: Mapping[str, Any] | None,
         instruments: Iterable[Instrument], progress: Callable[[int], None] | None,
         close_at_end: bool, profiles: Iterable[type[FillProfile]],
         log: Callable[[str], None] | None, heartbeat: Callable[[], None] | None,
         measure: Measure,
         keep_bars: bool, risk: RiskRules | None, options: OptionsSettings | None,
         chains: ChainSource | None) -> Simulation:
    streams: dict[str, Iterable[Bar]] | None = None
    if isinstance(data, Mapping):
        streams = dict(data)
    settings = settings or BrokerSettings()
    broker = PaperBroker(settings, instruments=instruments, ids=sequential_ids(),
                         profiles=profiles)
    # Option quotes: the chain at the broker's last price of the underlying and its time.
    quotes = options_desk.backtest_quotes(broker, options, chains)
    broker.set_quote_provider(quotes)
    broker.open_account(ACCOUNT, cash)
    if risk is not None:
        broker.set_rules(ACCOUNT, risk)
    closed = broker.closed_trades(ACCOUNT)
    logs: list[str] = []
    warnings: list[str] = []

    rejections = 0
    log_size = dropped_lines = 0

    def keep_log(line: str) -> None:
        # Bounded like the sandbox's StrategyLog: a strategy that logs on every bar must not
        # grow the result (and what `sandtrade backtest` prints) without limit.
        nonlocal log_size, dropped_lines
        if log_size + len(line) > MAX_LOG_BYTES:
            dropped_lines += 1
            return
        log_size += len(line) + 1
        logs.append(line)

    def rejected(order: Order) -> None:
        # Bounded like the strategy log: a strategy sending a refused order on every bar
        # must not grow the result without limit.
        nonlocal rejections
        rejections += 1
        if rejections <= MAX_REJECTION_WARNINGS:
            warnings.append(f"{order.updated_at or '-'}: order {order.id} ({order.side.value} "
                            f"{order.symbol}) rejected: {order.reject_reason}")

    run_params = dict(strategy.params if params is None else params)
    plots = PlotRecorder()
    ctx = Context(LocalTrading(broker, ACCOUNT, quotes), run_params, log=log or keep_log,
                  on_reject=rejected, plots=plots)
    path = strategy.path
    on_bar = strategy.caller("on_bar")
    on_fill = strategy.caller("on_fill")
    on_start = strategy.caller("on_start")
    on_stop = strategy.caller("on_stop")
    # Called once per bar, not wrapped around each hook: a wrapper cost two Python calls per
    # hook call (about 4 % of a back-test).
    beat: Callable[[], None] = heartbeat or _nothing
    symbols: list[str] = []
    seen: set[str] = set()

    if streams is None:
        stream_list: list[Iterable[Bar]] = [data]  # type: ignore[list-item]
    else:
        stream_list = list(streams.values())
        symbols = list(streams)
    pending_close_fills: list[FillView] = []
    market_at_close = broker.profile.market_at_close
    i = -1
    # The hook being run and the bar time, so a strategy exception names both; set with
    # plain local assignments because this loop runs once per bar.
    hook: str | None = None
    hook_time: Any = None
    broker_on_bar = broker.on_bar
    broker_equity = broker.equity
    # Measured in batches: a list (or a C no-op: deque(maxlen=0).append) and an array append
    # per bar, no Python call.
    bars: list[Bar] = []
    discard: deque[Bar] = deque(maxlen=0)
    keep_bar = bars.append if keep_bars else discard.append
    equities = array("d")
    record = equities.append
    feed = context.advance
    take_fills = context.take_fills
    made = context.fills_made(ctx)  # one list for the run: tested on every bar

    def made_fills() -> None:
        # Fills an order made at once in the hook just run (a multi-leg order fills as it
        # is placed), to on_fill now: as live, where the worker does the same.
        nonlocal hook
        while got := take_fills(ctx):
            hook = "on_fill"
            for fv in got:
                ctx.symbol = fv.symbol
                beat()
                on_fill(ctx, fv)  # type: ignore[misc]

    def first_bar(bar: Bar) -> None:
        sym = bar.symbol
        seen.add(sym)
        if broker.instrument(sym) is None:
            broker.register(Instrument.for_symbol(sym))  # BTCUSD: fractional, as live
        if sym not in symbols:
            symbols.append(sym)

    def bankrupt(t: Any, equity: float) -> None:
        broker.liquidate(ACCOUNT, "equity reached zero")
        warnings.append(f"{t}: equity reached {equity:,.2f}; positions liquidated and the "
                        "back-test stopped, as a broker would")

    def periodic(done: int) -> None:
        # A step of the back-test is progress too (the supervisor's per-step budget counts
        # beats only), even for a strategy without per-bar hooks.
        beat()
        measure(bars, equities, closed)
        bars.clear()
        del equities[:]
        if progress is not None:
            progress(done)

    try:
        if len(stream_list) == 1:
            # One symbol: the hot path, the same steps as the loop below without grouping.
            only = ""
            held: Any = None  # the context's data of the symbol, from the first bar on
            updaters: list[Callable[[Bar, int], None]] = []
            for bar in stream_list[0]:
                i += 1
                if held is None:
                    first_bar(bar)
                    only = bar.symbol
                    held = context.symbol_history(ctx, only)
                    updaters = held.updaters
                elif bar.symbol != only:
                    raise DataError(f"one stream of bars holds {only} and {bar.symbol}; pass "
                                    "a mapping of symbol to bars for a portfolio")
                keep_bar(bar)
                got = broker_on_bar(bar, i)
                equity = broker_equity(ACCOUNT)
                record(equity)
                if equity <= 0:
                    bankrupt(bar.time, equity)
                    break
                if not i:
                    ctx.symbol = only
                    if on_start is not None:
                        hook, hook_time = "on_start", bar
                        beat()
                        on_start(ctx)
                        if on_fill is not None:
                            made_fills()
                # context.advance(ctx, bar, i), inlined: this runs once per bar
                ctx.time = bar.time
                ctx.symbol = only
                ctx.bar_index = i
                held.bars.append(bar)  # not bound once: ctx.history() may replace the deque
                for update in updaters:
                    update(bar, i)
                if on_fill is not None and (got or pending_close_fills):
                    hook, hook_time = "on_fill", bar
                    fills, pending_close_fills = pending_close_fills, []
                    fills.extend(FillView.of(f) for f in got)
                    for fv in fills:
                        beat()
                        on_fill(ctx, fv)
                    if made:
                        made_fills()
                        ctx.symbol = only
                if on_bar is not None:
                    hook = "on_bar"
                    hook_time = bar
                    beat()
                    on_bar(ctx, bar)
                    if on_fill is not None and made:
                        made_fills()
                        ctx.symbol = only
                hook = None
                if market_at_close:
                    pending_close_fills.extend(FillView.of(f) for f in broker.close_auction(bar))
                if not i & (PROGRESS_EVERY - 1):
                    periodic(i + 1)
        else:
            for group in _timestamps(stream_list):
                i += 1
                fills, pending_close_fills = pending_close_fills, []
                for bar in group:
                    if bar.symbol not in seen:
                        first_bar(bar)
                    keep_bar(bar)
                    got = broker_on_bar(bar, i)
                    if got:
                        fills.extend(FillView.of(f) for f in got)
                equity = broker_equity(ACCOUNT)
                t = group[0].time
                record(equity)
                if equity <= 0:
                    bankrupt(t, equity)
                    break
                if i == 0:
                    ctx.symbol = group[0].symbol
                    if on_start is not None:
                        hook, hook_time = "on_start", t
                        beat()
                        on_start(ctx)
                for bar in group:
                    feed(ctx, bar, i)
                if fills and on_fill is not None:
                    hook, hook_time = "on_fill", t
                    for fv in fills:
                        ctx.symbol = fv.symbol
                        beat()
                        on_fill(ctx, fv)
                    if made:
                        made_fills()
                for bar in group:
                    ctx.symbol = bar.symbol
                    if on_bar is not None:
                        hook = "on_bar"
                        hook_time = bar
                        beat()
                        on_bar(ctx, bar)
                        if on_fill is not None and made:
                            made_fills()
                    if market_at_close:
                        hook = None
                        pending_close_fills.extend(
                            FillView.of(f) for f in broker.close_auction(bar))
                hook = None
                if not i & (PROGRESS_EVERY - 1):
                    periodic(i + 1)
        n_bars = i + 1
        if n_bars == 0:
            raise StrategyError(f"{path}: the data holds no bars; nothing to back-test")
        if on_stop is not None:
            hook, hook_time = "on_stop", None
            beat()
            on_stop(ctx)
            hook = None
    except StrategyError:
        raise
    except Exception as e:
        # A SandtradeError from outside the hooks (a DataError from the CSV stream) is already
        # a message a person can act on; one out of a hook (the broker refusing a malformed
        # order) still needs the strategy's file:line.
        if hook is None:
            raise
        when = hook_time.time if isinstance(hook_time, Bar) else hook_time
        raise strategy_error(path, e, f"in {hook}" + (f" at {when}" if when else "")) from None
    measure(bars, equities, closed)
    if close_at_end:
        broker.liquidate(ACCOUNT, "closed at the end of the back-test")
    if progress is not None:
        progress(n_bars)

    if rejections > MAX_REJECTION_WARNINGS:
        warnings.append(f"{rejections - MAX_REJECTION_WARNINGS:,} more orders were rejected "
                        f"({rejections:,} in all; only the first {MAX_REJECTION_WARNINGS} "
                        "are listed)")
    if dropped_lines:
        warnings.append(f"the strategy log reached its {MAX_LOG_BYTES:,}-byte limit; "
                        f"{dropped_lines:,} lines were dropped")
    return Simulation(
        strategy=strategy.name,
        symbols=symbols,
        params=run_params,
        settings={"cash": cash, **settings.model_dump(), "close_at_end": close_at_end,
                  **({"risk": risk.model_dump(mode="json")} if risk is not None else {})},
        bars=n_bars,
        warmup_bars=ctx.warmup_bars(),
        trades=list(closed),
        open_trades=broker.open_trades(ACCOUNT),
        logs=logs,
        warnings=warnings,
        plots=plots.result(),
    )
