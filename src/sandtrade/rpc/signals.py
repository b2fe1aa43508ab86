"""SignalService: submit signals (journaled before the answer), list and read the journal.

Submitting needs the ``signal`` scope; reading needs ``read`` on the signal's account (a
token for another account gets NOT_FOUND, whether the signal exists or not).
"""

from __future__ import annotations

import json

import grpc

from sandtrade.auth import ALL_ACCOUNTS, Principal, TokenAuthority
from sandtrade.errors import InvalidField, NotFound
from sandtrade.rpc import convert
from sandtrade.rpc.errors import unary
from sandtrade.rpc.trading import page_size
from sandtrade.signal_model import SignalRecord, SignalStatus
from sandtrade.signals.pauses import authorize, visible
from sandtrade.signals.pipeline import Overloaded, SignalPipeline
from sandtrade.v1 import signals_pb2 as sg
from sandtrade.v1 import signals_pb2_grpc

__all__ = ["SignalServicer", "signal_to_pb"]

_STATUS = {
    SignalStatus.RECEIVED: sg.SIGNAL_STATUS_RECEIVED,
    SignalStatus.REJECTED: sg.SIGNAL_STATUS_REJECTED,
    SignalStatus.VALIDATED: sg.SIGNAL_STATUS_VALIDATED,
    SignalStatus.ROUTED: sg.SIGNAL_STATUS_ROUTED,
    SignalStatus.EXECUTED: sg.SIGNAL_STATUS_EXECUTED,
    SignalStatus.FAILED: sg.SIGNAL_STATUS_FAILED,
    SignalStatus.DROPPED: sg.SIGNAL_STATUS_DROPPED,
}
MAX_BODY = 64 * 1024


def signal_to_pb(record: SignalRecord) -> sg.Signal:
    m = sg.Signal(id=record.id, source=record.source, raw_body=record.raw_body,
                  format=record.format, account=record.account,
                  status=_STATUS[record.status], reason=record.reason,
                  idempotency_key=record.idempotency_key or "",
                  destination=record.destination, alert_id=record.alert_id or "",
                  order_ids=record.orders,
                  parsed_json=json.dumps(record.parsed) if record.parsed else "")
    convert.time_to_pb(record.received_at, m.received_at)
    for step in record.history:
        s = m.history.add(status=_STATUS[step.status], reason=step.reason)
        convert.time_to_pb(step.at, s.at)
    return m


class SignalServicer(signals_pb2_grpc.SignalServiceServicer):
    """The signal journal of one host."""

    def __init__(self, pipeline: SignalPipeline, auth: TokenAuthority) -> None:
        self.pipeline = pipeline
        self.auth = auth

    @unary
    def SubmitSignal(self, request: sg.SubmitSignalRequest, context: grpc.ServicerContext,
                     principal: Principal) -> sg.SubmitSignalResponse:
        principal.require_scope("signal")
        if not request.body.strip():
            raise InvalidField("body", "is empty")
        if len(request.body.encode()) > MAX_BODY:
            raise InvalidField("body", f"is over {MAX_BODY} bytes")
        source = request.source or "grpc"
        if source not in ("grpc", "python"):
            raise InvalidField("source", f"{source!r}: use grpc or python")
        try:
            answer = self.pipeline.submit(
                request.body, source=source, principal=principal,
                fmt=request.format or None, idempotency_key=request.idempotency_key or None,
                dry_run=request.dry_run)
        except Overloaded as e:
            context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, str(e))
        record = answer.record
        if record.status is SignalStatus.REJECTED:
            journaled = f" (journaled as {record.id})" if record.id else ""
            raise InvalidField("body", f"{record.reason}{journaled}")
        shown = answer.original if answer.duplicate and answer.original else record
        return sg.SubmitSignalResponse(signal=signal_to_pb(shown), duplicate=answer.duplicate,
                                       explanation=answer.explanation)

    @unary
    def ListSignals(self, request: sg.ListSignalsRequest, context: grpc.ServicerContext,
                    principal: Principal) -> sg.ListSignalsResponse:
        account = request.account or None
        if account is None and principal.account != ALL_ACCOUNTS:
            account = principal.account
        if account is not None:
            principal.require("read", account)
        else:
            principal.require_scope("read")
        size = page_size(request.page_size)
        before = None
        if request.page_token:
            if not request.page_token.isdigit():
                raise InvalidField("page_token", "not a page token of this listing")
            before = int(request.page_token)
        rows = self.pipeline.store.list_signals(account=account, before_seq=before,
                                                limit=size + 1)
        resp = sg.ListSignalsResponse(signals=[signal_to_pb(r) for _, r in rows[:size]])
        if len(rows) > size:
            resp.next_page_token = str(rows[size - 1][0])
        return resp

    @unary
    def GetSignal(self, request: sg.GetSignalRequest, context: grpc.ServicerContext,
                  principal: Principal) -> sg.GetSignalResponse:
        principal.require_scope("read")
        if not request.signal_id:
            raise InvalidField("signal_id", "is required")
        record = self.pipeline.get(request.signal_id)
        if record is None or (principal.account not in (ALL_ACCOUNTS, record.account)):
            raise NotFound(f"signal {request.signal_id!r} does not exist")
        return sg.GetSignalResponse(signal=signal_to_pb(record))

    @unary
    def SetRoutePaused(self, request: sg.SetRoutePausedRequest, context: grpc.ServicerContext,
                       principal: Principal) -> sg.SetRoutePausedResponse:
        route, who = authorize(principal, request.route)
        info = self.pipeline.pauses.set(route, request.paused, who)
        if info is None:
            return sg.SetRoutePausedResponse(paused=False, route=sg.PausedRoute(route=route))
        return sg.SetRoutePausedResponse(paused=True, route=sg.PausedRoute(
            route=route, since=info["since"], by=info["by"]))

    @unary
    def ListPausedRoutes(self, request: sg.ListPausedRoutesRequest,
                         context: grpc.ServicerContext, principal: Principal
                         ) -> sg.ListPausedRoutesResponse:
        account: str | None = request.account or None
        if account is not None:
            principal.require("read", account)
        elif principal.account != ALL_ACCOUNTS:
            account = principal.require("read")
        else:
            principal.require_scope("read")
        paused = self.pipeline.pauses.all()
        return sg.ListPausedRoutesResponse(routes=[
            sg.PausedRoute(route=route, since=info["since"], by=info["by"])
            for route, info in sorted(paused.items()) if visible(route, account)])
