"""The live host: store, paper broker, market hub and feed, and the gRPC server, wired up.

``sandtrade serve`` runs one :class:`HostRuntime`; tests start their own on port 0 in a
temporary data directory. Starting is also recovering: the broker is rebuilt from the store
(orders, fills, positions, cash), and the feed resumes after the last bar the broker
committed, so a host killed with SIGKILL continues exactly where its last transaction left it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sandtrade.auth import ALL_ACCOUNTS, AuthError, Principal, TokenAuthority
from sandtrade.broker.durable import DurableBroker
from sandtrade.broker.ids import unique_ids
from sandtrade.broker.paper import PaperBroker
from sandtrade.broker.quotas import QuotaBook, Quotas
from sandtrade.broker.risk import RiskRules
from sandtrade.errors import SandtradeError
from sandtrade.host.config import Settings
from sandtrade.host.plugins import PluginHost
from sandtrade.host.sandbox_options import sandbox_options
from sandtrade.market.continuation import FeedNote
from sandtrade.market.hub import (
    FeedStatus,
    MarketFeed,
    MarketHub,
    MarketSource,
    SymbolFeedStatus,
    format_bar_time,
)
from sandtrade.models import Account, Bar, Fill, Position, Quote
from sandtrade.options.sources import OptionQuotes
from sandtrade.rpc.door import TradingDoor
from sandtrade.rpc.market import MarketDataServicer
from sandtrade.rpc.server import RpcServer, create_server
from sandtrade.rpc.signals import SignalServicer
from sandtrade.rpc.strategies import StrategyServicer
from sandtrade.rpc.trading import TradingServicer
from sandtrade.sandbox.limits import RunQuotas
from sandtrade.sandbox.manager import StrategyManager
from sandtrade.signal_model import SignalRecord
from sandtrade.signals.pipeline import SignalPipeline
from sandtrade.store import open_store
from sandtrade.store.base import Store

__all__ = ["OPERATOR_TOKEN_FILE", "STORE_FILE", "HostRuntime", "apply_risk_rules",
           "open_host_store",
           "tune_gc_for_serving"]

log = logging.getLogger(__name__)

STORE_FILE = "sandtrade.db"
OPERATOR_TOKEN_FILE = "operator.token"


def tune_gc_for_serving() -> None:
    """Keep Python's cyclic garbage collector from pausing a serving host for tens of ms.

    A host holds many long-lived objects (market history, orders, records), and a full
    collection walks all of them with every thread stopped: ``bench/webhook_load.py`` saw
    70-90 ms pauses, which made the p99 of webhook answers 35 ms instead of 8. Objects alive
    once the host is up are moved out of the collector's sight (``gc.freeze``), and young
    collections run every 50,000 allocations instead of 700. ``sandtrade serve`` calls this;
    a program that embeds :class:`HostRuntime` decides for itself.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def apply_risk_rules(broker: PaperBroker, settings: Settings, store: Store) -> None:
    """Give ``broker`` the risk rules of every account: the file's ``[risk]`` for all, its
    ``[accounts.NAME.risk]``, then what was set over gRPC (stored; it wins)."""
    broker.set_default_rules(settings.risk)
    for name in settings.accounts:
        rules = settings.account_rules(name)
        if rules is not None:
            broker.set_rules(name, rules)
    for account, data in store.list_account_settings().items():
        risk = data.get("risk")
        if risk is not None:
            try:
                broker.set_rules(account, RiskRules.model_validate(risk))
            except ValueError as e:
                raise SandtradeError(f"account {account!r}: its stored risk rules are "
                                     f"invalid ({e}); set them again with "
                                     "SetAccountSettings") from None


def open_host_store(data_dir: Path) -> Store:
    """The host's store in ``data_dir`` (created if needed)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    return open_store(f"sqlite:///{data_dir / STORE_FILE}")


def run_quotas(q: Quotas) -> RunQuotas:
    """What each live strategy of an account with quotas ``q`` may do."""
    return RunQuotas(q.strategy_ctx_calls, q.strategy_log_lines_per_second,
                     q.strategy_log_bytes_per_second, q.strategy_log_burst_seconds,
                     q.strategy_state_bytes)


class HostRuntime:
    """Everything ``sandtrade serve`` runs, started and stopped as one."""

    def __init__(self, settings: Settings, *, plugins: PluginHost | None = None) -> None:
        self.settings = settings
        self.plugins = plugins or PluginHost.create()
        self.data_dir = Path(settings.data_dir)
        self.store: Store | None = None
        self.live: DurableBroker | None = None
        self.hub: MarketHub | None = None
        self.feed: MarketFeed | None = None
        self.auth: TokenAuthority | None = None
        self.trading: TradingServicer | None = None
        self.rpc: RpcServer | None = None
        self.source: MarketSource | None = None
        self.strategies: StrategyManager | None = None
        self.signals: SignalPipeline | None = None
        self.http: Any = None
        #: ``/metrics`` (with the HTTP server).
        self.metrics: Any = None
        self.watch: Any = None
        self.host_api: Any = None
        self.operator_token_path = self.data_dir / OPERATOR_TOKEN_FILE
        self.restored_fills = 0
        #: Where the broker reads option quotes (symbol -> Quote or None): the ``[options]``
        #: chain source priced from the market feed's last price of the underlying, at the
        #: time of the feed's last bar (set in start(); a test may replace it before).
        self.option_quotes: Callable[[str], Quote | None] | None = None
        self.options: OptionQuotes | None = None
        self._market_time: datetime | None = None
        #: Called with a line for people at each change of the market feed (a symbol's data
        #: ended, loops, goes synthetic); ``sandtrade serve`` prints it on stderr.
        self.on_market_note: Callable[[str], None] | None = None
        #: Symbols a market source covers: its instruments, and every symbol it has published
        #: a bar of (a source that starts covering a symbol takes over its pricing from the
        #: signals, at once). Added to by the feed's thread only; read anywhere.
        self.fed: set[str] = set()
        self._position = 0
        self._worked = 0
        self._stopped = threading.Event()

    # ------------------------------------------------------------------ life

    def start(self, *, feed: bool = True) -> HostRuntime:
        """Open the store, restore the broker, start the gRPC server and the strategies that
        were running, then (unless ``feed`` is False: call :meth:`start_feed`) the market."""
        s = self.settings
        self.store = store = open_host_store(self.data_dir)
        self.source = source = self._make_source()
        table = s.symbol_table()
        instruments = [table.apply(i) for i in source.instruments()]
        self.fed = {i.symbol for i in instruments}
        profiles = list(self.plugins.fill_profiles().values())
        sandbox = sandbox_options(s, self.plugins)  # checked before anything starts
        if self.option_quotes is None:
            self.options = self._make_option_quotes()
            self.option_quotes = self.options.quote
        quotes = self.option_quotes

        def make_broker() -> PaperBroker:
            broker = PaperBroker(s.broker, instruments=instruments, store=store,
                                 ids=unique_ids(), profiles=profiles,
                                 quotes=quotes)
            self.restored_fills = broker.restore()
            for symbol in broker.symbols():  # what signals registered, under today's rules
                inst = broker.instrument(symbol)
                if inst is not None and symbol not in self.fed:
                    broker.register(table.apply(inst))
            apply_risk_rules(broker, s, store)
            return broker

        self.live = DurableBroker(make_broker, store)
        #: How fast each account may trade and signal ([quotas], [accounts.NAME.quotas]).
        self.quotas = QuotaBook(s.account_quotas)
        if store.get_account(s.account) is None:
            store.create_account(Account(id=s.account, cash=s.cash, initial_cash=s.cash))
        self.auth = TokenAuthority(store)
        self._ensure_operator_token()
        #: The trading API: the gRPC TradingService, and the door of each strategy run.
        self.trading = TradingServicer(self.live, store, self.auth,
                                       configured_rules=s.account_rules, quotas=self.quotas,
                                       options=self.options)

        self.hub = MarketHub(history_limit=s.market.history_limit)
        self.trading.prices = self.hub.bars  # live performance is marked at the hub's closes
        cursor_key = self._cursor_key()
        skip = int(store.get_state(cursor_key) or 0)
        self._position = skip
        self._worked = skip
        self.hub.add_listener(self._to_broker)
        # Strategies that were running resume on the feed's thread, once the bars worked
        # before the restart are back in the hub's history (their warm-up) and before the
        # first new bar.
        self.feed = MarketFeed(source, self.hub, bars_per_second=s.market.bars_per_second,
                               skip=skip, on_caught_up=self._caught_up,
                               then=s.market.resolved_then(), seed=s.market.seed,
                               on_note=self._market_note)

        symbols = sorted({i.symbol for i in instruments})
        self.strategies = StrategyManager(
            store=store, live=self.live, hub=self.hub, auth=self.auth, cash=s.cash,
            symbols=lambda: symbols, open_door=self._open_door, fill_profiles=profiles,
            settings=s.strategies, lockstep=s.strategies.lockstep(s.market.bars_per_second),
            running_quota=lambda account: s.account_quotas(account).strategies_running,
            run_quotas=lambda account: run_quotas(s.account_quotas(account)),
            sandbox=sandbox.supervisor_kwargs(), account_modules=s.account_modules)
        live_brokers = {name: cls(s.plugins.get(name, {}))
                        for name, cls in self.plugins.live_brokers().items()}
        self.signals = SignalPipeline(
            store=store, live=self.live, formats=self.plugins.signal_formats(s.signals.mappings),
            settings=s.signals, symbols=lambda: symbols, default_account=s.account,
            market_position=lambda: self._worked,
            instrument={i.symbol: i for i in instruments}.get, strategies=self.strategies,
            live_brokers=live_brokers, quotas=self.quotas, symbol_table=table,
            covered=self.fed.__contains__,
            chains=self.options.chain if self.options is not None else None)
        self.rpc = create_server(
            trading=self.trading,
            market=MarketDataServicer(self.hub, self.auth, feed_status=self.feed_status,
                                      options=self.options, positions=self._positions),
            strategies=StrategyServicer(self.strategies, self.auth),
            signals=SignalServicer(self.signals, self.auth),
            address=s.grpc)
        if s.http:
            self._start_http()
        if feed:
            self.feed.start()
        log.info("host up: gRPC %s, HTTP %s, %d fills restored, feed resumes after bar %d",
                 self.rpc.address, self.http.url if self.http else "off", self.restored_fills,
                 skip)
        return self

    def _positions(self, principal: Principal, account: str) -> list[Position]:
        """``account``'s positions as ``principal`` may read them (GetOptionGreeks): the
        trading API's own check and broker call."""
        assert self.trading is not None and self.live is not None
        return self.live.call(self.trading.positions_op(principal, account))

    def _make_option_quotes(self) -> OptionQuotes:
        """The ``[options] source`` chain source, priced from the hub's last price of each
        underlying (so an option is priced once its underlying has a bar) at the time of the
        feed's last bar (the wall clock before the first)."""
        s = self.settings
        sources = self.plugins.option_chain_sources()
        try:
            source_cls = sources[s.options.source]
        except KeyError:
            raise SandtradeError(f"options.source: unknown chain source {s.options.source!r} "
                                 f"(known: {', '.join(sorted(sources))})") from None

        def last_price(symbol: str) -> float | None:
            quote = self.hub.latest_quote(symbol) if self.hub is not None else None
            return None if quote is None else quote.bid

        def clock() -> datetime:
            return self._market_time or datetime.now(UTC)

        return OptionQuotes(source_cls(s.options), last_price, clock)  # type: ignore[call-arg]

    def _make_source(self) -> MarketSource:
        """The market source ``[market] source`` names (``NAME`` or ``NAME:ARG``), built with
        its ``[sources.NAME]`` settings (and ARG under the key the source's ``argument``
        names) in ``market.source_options``."""
        s = self.settings
        sources = self.plugins.market_sources()
        name, colon, argument = s.market.source.partition(":")
        try:
            source_cls = sources[name]
        except KeyError:
            raise SandtradeError(f"market.source: unknown source {name!r} (known: "
                                 f"{', '.join(sorted(sources))})") from None
        options = {**s.sources.get(name, {}), **s.market.source_options}
        if colon:
            key = getattr(source_cls, "argument", None)
            if not key or not argument:
                raise SandtradeError(
                    f"market.source: {s.market.source!r}: the {name} source takes no argument "
                    f"after ':'" if not key else
                    f"market.source: {s.market.source!r}: give the {key} after ':' "
                    f"({name}:{key.upper()})")
            options[key] = argument
        market = s.market.model_copy(update={"source": name, "source_options": options})
        return source_cls(market)  # type: ignore[call-arg]

    def _start_http(self) -> None:
        from sandtrade.http import HttpServer, create_app
        from sandtrade.plugin_api import HostApi, HostParts
        from sandtrade.watch import HostWatch

        s = self.settings
        assert self.signals is not None and self.auth is not None
        assert self.live is not None and self.store is not None
        assert self.trading is not None and self.strategies is not None
        #: The host's changes as one numbered log, for pages that follow them (dashboard).
        self.watch = HostWatch(live=self.live, store=self.store, hub=self.hub,
                               strategies=self.strategies).start()
        watch = self.watch
        # A route paused through any door (the dashboard, gRPC, the CLI) shows on every page.
        self.signals.pauses.on_change = lambda view, account: watch.emit("route", account,
                                                                          view)
        parts = HostParts(live=self.live, store=self.store, trading=self.trading,
                          strategies=self.strategies, hub=self.hub, watch=self.watch)
        api = HostApi(pipeline=self.signals, auth=self.auth, plugins=s.plugins, parts=parts,
                      performance=self.trading.performance,
                      performances=self.trading.performances)
        #: What plugins are given of the host (the dashboard's reads and actions).
        self.host_api = api
        try:
            routers = self.plugins.http_routes(api)
        except ValueError as e:  # a plugin's settings are invalid
            raise SandtradeError(str(e)) from None

        def health() -> dict[str, Any]:
            status = self.feed_status()
            return {**api.health(), "market": status.to_json() if status else None}

        from sandtrade.host.metrics import CONTENT_TYPE, HostMetrics

        assert self.store is not None and self.live is not None
        assert self.strategies is not None
        signals = self.signals
        self.metrics = metrics = HostMetrics(
            store=self.store, live=self.live, strategies=self.strategies,
            signals_waiting=lambda: int(signals.health()["signals_waiting"]),
            feed_lag=lambda: max(0, (self.feed.position if self.feed else 0) - self._worked),
            recent_arrival=signals.received_at if signals is not None else None)
        auth = self.auth

        def scrape(authorization: str | None, client: str | None) -> tuple[int, bytes, str]:
            """``/metrics``, as ``[metrics] access`` allows."""
            access = s.metrics
            if access.access == "off":
                return 404, b"not found\n", "text/plain"
            if access.access == "allowlist":
                if not access.allows(client):
                    return 403, b"forbidden: this address is not in [metrics] allow\n", \
                        "text/plain"
            else:
                scheme, _, token = (authorization or "").partition(" ")
                try:
                    principal = auth.verify(token.strip()) if scheme.lower() == "bearer" \
                        else None
                except AuthError:
                    principal = None
                if principal is None or principal.account != ALL_ACCOUNTS \
                        or not principal.has("admin"):
                    return 401, (b"unauthorized: send the operator's token as "
                                 b"'Authorization: Bearer <token>'\n"), "text/plain"
            return 200, metrics.render(), CONTENT_TYPE

        app = create_app(routers, health=health, metrics=scrape,
                         observe_webhook=metrics.webhook_ack.observe)
        self.http = HttpServer(app, s.http, ssl_certfile=s.ssl_certfile,
                               ssl_keyfile=s.ssl_keyfile).start()

    def _caught_up(self) -> None:
        """On the feed's thread, once the bars worked before a restart are back in the hub
        and before the first new one: the broker gets its last prices back, signals
        journaled but not executed before the restart execute, strategies resume."""
        assert self.strategies is not None and self.hub is not None
        assert self.live is not None and self.signals is not None
        self.fed.update(self.hub.symbols())  # what the feed covered before a restart
        latest = [bars[-1] for bars in (self.hub.bars(s, limit=1) for s in self.hub.symbols())
                  if bars]
        if latest:
            def mark(b: PaperBroker) -> None:
                b.set_time(max(bar.time for bar in latest))
                for bar in latest:
                    b.mark(bar.symbol, bar.close)

            self.live.call(mark)
        self.signals.recover()
        resumed = self.strategies.resume()
        if resumed:
            log.info("strategies resumed: %s", ", ".join(resumed))

    def feed_status(self) -> FeedStatus | None:
        """Where the market feed is (None before :meth:`start`)."""
        return self.feed.status() if self.feed is not None else None

    def _market_note(self, note: FeedNote, status: SymbolFeedStatus) -> None:
        """On the feed's thread, at a change of a symbol's feed: when its prices have ended,
        the broker expires its working orders and refuses new ones, with the reason (an
        order that can never fill must not sit ``accepted``); and people are told."""
        assert self.live is not None and self.feed is not None
        message = f"market: {status.message}"
        if note.kind == "ended":
            at = (f"ended at {format_bar_time(note.last_bar)} (bar {note.bars} of {note.bars})"
                  if note.last_bar is not None else "ended without a bar")
            then = self.feed.then
            # What would have kept the market going: whoever reads the reason can act on it.
            hint = "; --then loop or synthetic keeps a market going" if then == "stop" else ""
            reason = f"no more prices for {note.symbol}: the {self.feed.source.name} {at}{hint}"
            expired = self.live.call(lambda b: b.end_prices(note.symbol, reason))
            if expired:
                message += (f" ({len(expired)} working order{'s' * (len(expired) > 1)} "
                            "expired)")
        elif note.kind == "looped" and (note.passes > 1 or not self.feed.caught_up):
            # Told once, when the looping begins: each later pass is more of the same (its
            # number is in the status), and the passes a restarted feed skips are history.
            log.debug("%s", message)
            return
        log.info("%s", message)
        if self.on_market_note is not None:
            self.on_market_note(message)

    def start_feed(self) -> None:
        """Start the market feed of a host started with ``feed=False``."""
        assert self.feed is not None
        self.feed.start()

    def stop(self) -> None:
        """Stop the feed, the server and the broker (finishing queued work), close the store."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        if self.http is not None:
            self.http.stop()
        if self.metrics is not None:
            self.metrics.close()
        if self.watch is not None:
            self.watch.stop()
        if self.feed is not None:
            self.feed.stop()
        if self.signals is not None:
            self.signals.close()
        if self.strategies is not None:
            self.strategies.shutdown()
        if self.rpc is not None:
            self.rpc.stop()
        if self.live is not None:
            self.live.close()
        if self.store is not None:
            self.store.close()

    def __enter__(self) -> HostRuntime:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait(self) -> None:
        """Block until :meth:`stop` is called (from a signal handler, say)."""
        self._stopped.wait()

    # ------------------------------------------------------------------ wiring

    def _cursor_key(self) -> str:
        assert self.source is not None
        return f"feed:{self.source.name}:position"

    def _to_broker(self, bar: Bar) -> None:
        """Hub listener (feed thread): the broker works the bar, and the feed's position is
        committed in the same transaction, so each bar is worked exactly once across
        restarts. The strategies get the bar and its fills before that commit (see below)."""
        assert self.live is not None and self.feed is not None
        live = self.live
        position = self.feed.position
        key = self._cursor_key()

        if bar.symbol not in self.fed:
            self.fed.add(bar.symbol)
            log.info("market: %s now has prices from the %s source; signals for it wait for "
                     "its bars", bar.symbol, self.feed.source.name)

        if self.strategies is not None:
            # A timestamp a strategy of several symbols still holds is over: it handles it
            # before the broker works this bar (as in a back-test).
            self.strategies.flush_before(bar.time)
        self._market_time = bar.time

        def op(b: PaperBroker) -> list[Fill]:
            fills = b.on_bar(bar)
            live.note_state(key, position)
            self._worked = position  # read by signals under the same lock
            return fills

        try:
            seq, fills, error = live.apply(op)
        except Exception as e:  # the broker is shut down
            log.error("bar %s %s not worked: %s", bar.symbol, bar.time, e)
            return

        def settled(lost: str | None) -> None:
            if lost is not None:
                log.error("bar %s %s was worked but its changes were not stored: %s; it is "
                          "worked again after a restart", bar.symbol, bar.time, lost)

        # The bar's changes commit on the broker's commit thread, in one group with whatever
        # the strategies do about them, and the strategies see the bar now rather than one
        # fsync later. Nothing of the bar reaches anyone outside the host before it is
        # durable: trade updates are published after their commit, and an order a strategy
        # places on this bar is answered only once its group, which holds this bar's changes
        # (applied before it), is durable.
        live.settle_later(seq, settled)
        if error is not None:
            log.error("bar %s %s not worked: %s", bar.symbol, bar.time, error)
            return
        if self.strategies is not None:
            self.strategies.on_bar(bar, fills)

    def _open_door(self, principal: Principal, account: str, run_id: str) -> TradingDoor:
        """A strategy run's door: the trading API's own methods, as the run's principal."""
        assert self.trading is not None
        return TradingDoor(self.trading, principal, account, run_id,
                           flood_seconds=self.settings.account_quotas(account).flood_seconds,
                           options=self.options, signals=self._strategy_signal)

    def _strategy_signal(self, body: str, principal: Principal, source: str) -> SignalRecord:
        """A strategy's ``ctx.signal``: journaled (blocking, on a door thread) like any
        signal; the record as the journal has it."""
        if self.signals is None:
            raise SandtradeError("this host takes no signals")
        return self.signals.submit(body, source=source, principal=principal).record

    def _ensure_operator_token(self) -> None:
        """On first start, an admin token for every account, readable by this user only; the
        CLI's commands use it when no other token is given."""
        assert self.auth is not None
        path = self.operator_token_path
        if path.exists():
            return
        _, token = self.auth.create(ALL_ACCOUNTS, ("admin",), label="operator (created by "
                                    "sandtrade serve)")
        # Written aside, then linked into place: a CLI waiting for the file (`sandtrade serve &`
        # then `sandtrade buy ...`) never reads half a token; link, like O_EXCL, never
        # replaces a file that is there.
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        try:
            os.link(tmp, path)
        finally:
            os.unlink(tmp)
