"""StrategyService: upload, start, stop, delete and watch sandboxed strategies; back-test them.

Uploading, starting, stopping and deleting need the ``admin`` scope. Reading (list, status,
logs) needs ``read``, and a back-test ``trade``. A strategy belongs to an account and is named
within it. A token of one account looks strategies up in its own account only: another
account's strategy, running, stopped or deleted, is the same NOT_FOUND as one that never
existed, and since no other account's row is read, it takes the same time. The operator's
token (every account) names the account, or may leave it out when only one account has a
strategy of that name.
"""

from __future__ import annotations

import math
import queue
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2

from sandtrade.auth import ALL_ACCOUNTS, AuthError, Principal, TokenAuthority
from sandtrade.backtest.request import BacktestRequest, DataSpec
from sandtrade.backtest.result import BacktestResult
from sandtrade.broker import BrokerSettings
from sandtrade.errors import InvalidField
from sandtrade.rpc import convert
from sandtrade.rpc.errors import relay, streaming, unary
from sandtrade.sandbox.manager import LogLine, StrategyManager, strategy_not_found
from sandtrade.sandbox.runner import SandboxRunner
from sandtrade.store.base import StrategyRecord
from sandtrade.v1 import strategies_pb2 as spb
from sandtrade.v1 import strategies_pb2_grpc

__all__ = ["StrategyServicer", "struct_to_params"]

#: The longest idempotency key a DeleteStrategy takes, and how many answers are remembered.
MAX_REQUEST_ID = 128
REMEMBERED_DELETES = 1000

_STATES = {"stopped": spb.STRATEGY_STATE_STOPPED, "starting": spb.STRATEGY_STATE_STARTING,
           "running": spb.STRATEGY_STATE_RUNNING, "stopping": spb.STRATEGY_STATE_STOPPING,
           "failed": spb.STRATEGY_STATE_FAILED}

_ORIGINS = {"strategy": spb.LOG_ORIGIN_STRATEGY, "host": spb.LOG_ORIGIN_HOST,
            "error": spb.LOG_ORIGIN_ERROR}


def struct_to_params(struct: struct_pb2.Struct, field: str = "params") -> dict[str, Any]:
    """A Struct of parameter overrides as Python values: protobuf numbers are doubles, so a
    whole number becomes an int (an int parameter accepts it, a float one converts it)."""
    out: dict[str, Any] = {}
    for key, value in json_format.MessageToDict(struct).items():
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, dict | list) or value is None:
            raise InvalidField(f"{field}.{key}", "must be a number, string or boolean")
        out[key] = value
    return out


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update({k: v for k, v in values.items()})
    return s


def strategy_to_pb(record: StrategyRecord, state: str) -> spb.Strategy:
    m = spb.Strategy(id=record.id, name=record.name, account=record.account,
                     symbols=list(record.symbols),
                     state=_STATES.get(state, spb.STRATEGY_STATE_UNSPECIFIED),
                     source_sha256=record.source_sha256)
    m.params.CopyFrom(_struct(record.params))
    convert.time_to_pb(record.uploaded_at, m.uploaded_at)
    return m


def _jsonable(value: Any) -> Any:
    """Stats and trades as Struct values: non-finite numbers become None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


class StrategyServicer(strategies_pb2_grpc.StrategyServiceServicer):
    """The strategies of one host."""

    def __init__(self, manager: StrategyManager, auth: TokenAuthority) -> None:
        self.manager = manager
        self.auth = auth
        #: Answers of recent DeleteStrategy calls by (token's account, request_id) (AIP-155).
        self._deleted: OrderedDict[tuple[str, str], spb.DeleteStrategyResponse] = OrderedDict()
        self._delete_lock = threading.Lock()

    def _name(self, name: str) -> str:
        if not name:
            raise InvalidField("name", "required")
        return name

    def _find(self, principal: Principal, scope: str, name: str,
              account: str) -> StrategyRecord:
        """The strategy ``name`` (of ``account``, when given) as ``principal`` may reach it
        with ``scope``. A token of one account looks in its own account only, so another
        account's strategy is the same NOT_FOUND as none, and takes the same time (only the
        caller's rows are read); the operator's must name the account when several have a
        strategy of that name."""
        principal.require_scope(scope)  # before the lookup: the answer must not depend on it
        name = self._name(name)
        if principal.account != ALL_ACCOUNTS:
            if account and account != principal.account:
                raise strategy_not_found(name)
            return self.manager.record(principal.account, name)
        if account:
            return self.manager.record(account, name)
        found = self.manager.find(name)
        if not found:
            raise strategy_not_found(name)
        if len(found) > 1:
            raise InvalidField("account", "name an account: this token acts for every "
                               f"account, and accounts {', '.join(r.account for r in found)} "
                               f"each have a strategy {name!r}")
        return found[0]

    @unary
    def UploadStrategy(self, request: spb.UploadStrategyRequest, context: grpc.ServicerContext,
                       principal: Principal) -> spb.UploadStrategyResponse:
        principal.require_scope("admin")
        name = self._name(request.name)
        account = request.account or (name if principal.account == ALL_ACCOUNTS
                                      else principal.account)
        principal.require("admin", account)
        record = self.manager.upload(account, name, request.source,
                                     symbols=list(request.symbols),
                                     params=struct_to_params(request.params))
        return spb.UploadStrategyResponse(strategy=strategy_to_pb(record, "stopped"))

    @unary
    def StartStrategy(self, request: spb.StartStrategyRequest, context: grpc.ServicerContext,
                      principal: Principal) -> spb.StartStrategyResponse:
        record = self._find(principal, "admin", request.name, request.account)
        record = self.manager.start(record.account, record.name)
        return spb.StartStrategyResponse(
            strategy=strategy_to_pb(record, self.manager.state_of(record.id)))

    @unary
    def StopStrategy(self, request: spb.StopStrategyRequest, context: grpc.ServicerContext,
                     principal: Principal) -> spb.StopStrategyResponse:
        record = self._find(principal, "admin", request.name, request.account)
        record = self.manager.stop(record.account, record.name)
        return spb.StopStrategyResponse(
            strategy=strategy_to_pb(record, self.manager.state_of(record.id)))

    @unary
    def DeleteStrategy(self, request: spb.DeleteStrategyRequest, context: grpc.ServicerContext,
                       principal: Principal) -> spb.DeleteStrategyResponse:
        principal.require_scope("admin")
        if len(request.request_id) > MAX_REQUEST_ID:
            raise InvalidField("request_id", f"at most {MAX_REQUEST_ID} characters "
                               f"(got {len(request.request_id)})")
        key = (principal.account, request.request_id)
        with self._delete_lock:
            if request.request_id and key in self._deleted:
                out = spb.DeleteStrategyResponse()
                out.CopyFrom(self._deleted[key])
                return out
        record = self._find(principal, "admin", request.name, request.account)
        record = self.manager.delete(record.account, record.name)
        out = spb.DeleteStrategyResponse(strategy=strategy_to_pb(record, "stopped"))
        if request.request_id:
            with self._delete_lock:
                self._deleted[key] = out
                while len(self._deleted) > REMEMBERED_DELETES:
                    self._deleted.popitem(last=False)
        return out

    @unary
    def ListStrategies(self, request: spb.ListStrategiesRequest, context: grpc.ServicerContext,
                       principal: Principal) -> spb.ListStrategiesResponse:
        principal.require_scope("read")
        size = request.page_size or 100
        if not 1 <= size <= 1000:
            raise InvalidField("page_size", f"must be between 1 and 1000 (got {size})")
        after: tuple[str, str] | None = None
        if request.page_token:
            account, slash, name = request.page_token.partition("/")
            if not slash:
                raise InvalidField("page_token", f"{request.page_token!r} is not a "
                                   "next_page_token of ListStrategies")
            after = (account, name)
        if principal.account == ALL_ACCOUNTS:
            only = request.account or None
        else:
            only = principal.require("read", request.account or None)
        rows = [(r, s) for r, s in self.manager.list_all(only)
                if after is None or (r.account, r.name) > after]
        resp = spb.ListStrategiesResponse(
            strategies=[strategy_to_pb(r, s) for r, s in rows[:size]])
        if len(rows) > size:
            last = rows[size - 1][0]
            resp.next_page_token = f"{last.account}/{last.name}"
        return resp

    @unary
    def GetStrategyStatus(self, request: spb.GetStrategyStatusRequest,
                          context: grpc.ServicerContext,
                          principal: Principal) -> spb.GetStrategyStatusResponse:
        record = self._find(principal, "read", request.name, request.account)
        record, state, status = self.manager.status(record.account, record.name)
        return spb.GetStrategyStatusResponse(
            strategy=strategy_to_pb(record, state), cpu_seconds=status.cpu_seconds,
            rss_bytes=status.rss_bytes, kill_reason=status.kill_reason,
            last_errors=list(status.last_errors), restarts=status.restarts,
            lag_bars=status.lag_bars, lag_seconds=status.lag_seconds,
            bars_coalesced=status.bars_coalesced, bars_dropped=status.bars_dropped)

    @unary
    def GetFanoutStats(self, request: spb.GetFanoutStatsRequest, context: grpc.ServicerContext,
                       principal: Principal) -> spb.GetFanoutStatsResponse:
        principal.require_scope("admin")
        if principal.account != ALL_ACCOUNTS:
            raise AuthError(f"token {principal.token_id} acts for account "
                            f"{principal.account!r}; the fan-out covers every account's "
                            "strategies: use the operator's token", "permission_denied")
        if request.latest < 0:
            raise InvalidField("latest", f"must not be negative (got {request.latest})")
        f = self.manager.fanout(request.latest)
        return spb.GetFanoutStatsResponse(
            mode=f["mode"], strategies=f["strategies"], bars=f["bars"], p50_ms=f["p50_ms"],
            p99_ms=f["p99_ms"], max_ms=f["max_ms"],
            lags=[spb.StrategyLag(**lag) for lag in f["lag"]])

    @streaming
    def StreamStrategyLogs(self, request: spb.StreamStrategyLogsRequest,
                           context: grpc.ServicerContext,
                           principal: Principal) -> Iterator[spb.StreamStrategyLogsResponse]:
        record = self._find(principal, "read", request.name, request.account)
        if request.tail < 0:
            raise InvalidField("tail", f"must not be negative (got {request.tail})")

        def message(entry: LogLine) -> spb.StreamStrategyLogsResponse:
            m = spb.StreamStrategyLogsResponse(
                line=entry.line, origin=_ORIGINS.get(entry.origin, spb.LOG_ORIGIN_UNSPECIFIED))
            convert.time_to_pb(entry.time, m.time)
            return m

        follow = (self.manager.follow_logs(record.account, record.name) if request.follow
                  else None)
        for entry in self.manager.logs(record.account, record.name, request.tail or 100):
            yield message(entry)
        if follow is not None:
            yield from relay(context, follow, message)

    @streaming
    def RunBacktest(self, request: spb.RunBacktestRequest, context: grpc.ServicerContext,
                    principal: Principal) -> Iterator[spb.RunBacktestResponse]:
        record = self._find(principal, "trade", request.name, request.account)
        symbols = list(request.symbols) or list(record.symbols)
        hub = self.manager.hub
        data = {}
        for k, s in enumerate(symbols):
            bars = hub.bars(s)
            if not bars:
                raise InvalidField(f"symbols[{k}]", f"the market has no history of {s!r} yet")
            data[s] = bars
        if request.cash < 0 or not math.isfinite(request.cash):
            raise InvalidField("cash", "must be positive")
        if not 0 <= request.commission < 0.1:
            raise InvalidField("commission", "must be a fraction from 0 to 0.1 (0.002 is "
                               "0.2 %)")
        if request.benchmark and request.benchmark not in symbols:
            raise InvalidField("benchmark", f"{request.benchmark!r} is not a symbol of this "
                               f"back-test (its symbols: {', '.join(symbols)})")
        params = {**record.params, **struct_to_params(request.params)}
        # The account's own risk rules, so the back-test stops where the live run would.
        risk = self.manager.live.call(lambda b: b.rules(record.account))
        breq = BacktestRequest(
            strategy=f"{record.name}.py", data=[DataSpec(path=f"hub:{s}") for s in symbols],
            cash=request.cash or self.manager.cash, params=params,
            broker=BrokerSettings(commission_pct=request.commission),
            benchmark=request.benchmark or None, risk=None if risk.is_empty() else risk)
        total = max(len(b) for b in data.values())
        updates: queue.Queue[int | BacktestResult | BaseException] = queue.Queue()

        def run() -> None:
            try:
                runner = SandboxRunner(supervisor=self.manager.supervisor,
                                       modules=self.manager.account_modules(record.account))
                updates.put(runner.run_source(record.source, breq, data,
                                              progress=updates.put))
            except BaseException as e:
                updates.put(e)

        threading.Thread(target=run, name=f"backtest-{record.name}", daemon=True).start()
        while True:
            item = updates.get()
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, int):
                yield spb.RunBacktestResponse(bars_done=item, bars_total=total)
                continue
            last = spb.RunBacktestResponse(bars_done=item.bars, bars_total=total)
            last.stats.update(_jsonable(item.stats))
            last.stat_names.extend(item.stats)
            for trade in item.trades:
                t = last.trades.add()
                t.update(_jsonable(trade.model_dump(mode="json")))
            yield last
            return
