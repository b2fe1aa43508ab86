"""How servicers authenticate a call and turn failures into status codes a client can act on.

Every servicer method is wrapped by :func:`unary` or :func:`streaming`, which verify the
bearer token (UNAUTHENTICATED / PERMISSION_DENIED), and map the exceptions of
:mod:`sandtrade.errors`, which every room raises without knowing the wire:
:class:`InvalidField` and :class:`OrderRejected` to INVALID_ARGUMENT with a
``google.rpc.BadRequest`` field violation naming the field, :class:`NotFound` to NOT_FOUND,
:class:`Conflict` to FAILED_PRECONDITION, a store failure to UNAVAILABLE (nothing was written;
retry with the same idempotency key).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from sandtrade.auth import AuthError, Principal, TokenAuthority
from sandtrade.errors import (
    CheckFailed,
    Conflict,
    InvalidField,
    NotFound,
    OrderRejected,
    QuotaExceeded,
    StoreError,
    StrategyError,
)
from sandtrade.streams import EventStream

__all__ = ["relay", "status_of", "streaming", "unary"]

log = logging.getLogger(__name__)
S = TypeVar("S")
Req = TypeVar("Req")
Resp = TypeVar("Resp")
E = TypeVar("E")


def _abort(context: grpc.ServicerContext, code: grpc.StatusCode, message: str,
           field: str | None = None) -> NoReturn:
    if field is None:
        context.abort(code, message)
    violation = error_details_pb2.BadRequest(field_violations=[
        error_details_pb2.BadRequest.FieldViolation(field=field, description=message)])
    detail = any_pb2.Any()
    detail.Pack(violation)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=message,
                               details=[detail])
    context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("unreachable")  # abort_with_status raises


def _principal(auth: TokenAuthority, context: grpc.ServicerContext) -> Principal:
    for key, value in context.invocation_metadata():
        if key == "authorization":
            scheme, _, token = str(value).partition(" ")
            if scheme.lower() != "bearer" or not token:
                raise AuthError("authorization metadata must read 'Bearer <token>'")
            return auth.verify(token.strip())
    raise AuthError("no token: send 'authorization: Bearer <token>' metadata "
                    "(create one with `sandtrade tokens create`)")


def status_of(e: Exception) -> tuple[grpc.StatusCode, str, str | None]:
    """The status code, message and field (for a ``google.rpc.BadRequest``) an error of ours
    is answered with, by a gRPC call or a strategy run's door alike; INTERNAL for a bug."""
    if isinstance(e, AuthError):
        code = (grpc.StatusCode.PERMISSION_DENIED if e.code == "permission_denied"
                else grpc.StatusCode.INVALID_ARGUMENT if e.code == "invalid_argument"
                else grpc.StatusCode.UNAUTHENTICATED)
        return code, str(e), None
    if isinstance(e, InvalidField):
        return grpc.StatusCode.INVALID_ARGUMENT, str(e), e.field
    if isinstance(e, QuotaExceeded):
        return grpc.StatusCode.RESOURCE_EXHAUSTED, str(e), None
    if isinstance(e, OrderRejected):
        return grpc.StatusCode.INVALID_ARGUMENT, str(e), e.field or "order"
    if isinstance(e, NotFound):
        return grpc.StatusCode.NOT_FOUND, str(e), None
    if isinstance(e, CheckFailed | Conflict):
        return grpc.StatusCode.FAILED_PRECONDITION, str(e), None
    if isinstance(e, StrategyError):  # the strategy failed (a RunBacktest), not the host
        return grpc.StatusCode.FAILED_PRECONDITION, str(e), None
    if isinstance(e, StoreError):
        return grpc.StatusCode.UNAVAILABLE, str(e), None
    return grpc.StatusCode.INTERNAL, f"internal error: {type(e).__name__}", None


def _fail(context: grpc.ServicerContext, e: Exception, method: str) -> NoReturn:
    if isinstance(e, CheckFailed):
        failure = error_details_pb2.PreconditionFailure(violations=[
            error_details_pb2.PreconditionFailure.Violation(
                type="CHECK", subject=f"{d.file}:{d.line}", description=d.message)
            for d in e.diagnostics])
        detail = any_pb2.Any()
        detail.Pack(failure)
        status = status_pb2.Status(code=code_pb2.FAILED_PRECONDITION, message=str(e)[:8000],
                                   details=[detail])
        context.abort_with_status(rpc_status.to_status(status))
    if isinstance(e, QuotaExceeded):
        quota = error_details_pb2.QuotaFailure(violations=[
            error_details_pb2.QuotaFailure.Violation(subject=e.subject, description=str(e))])
        detail = any_pb2.Any()
        detail.Pack(quota)
        status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message=str(e),
                                   details=[detail])
        context.abort_with_status(rpc_status.to_status(status))
    code, message, field = status_of(e)
    if code is grpc.StatusCode.INTERNAL:
        log.exception("%s failed", method)
        message = f"{method}: {message}"
    _abort(context, code, message, field)


def relay(context: grpc.ServicerContext, stream: EventStream[E],
          to_message: Callable[[E], Resp]) -> Iterator[Resp]:
    """Send a stream's events to a streaming call until the client goes or the stream ends;
    a client too far behind gets RESOURCE_EXHAUSTED. The stream is closed either way."""
    context.add_callback(stream.close)
    try:
        while context.is_active():
            event = stream.get(timeout=0.5)
            if event is not None:
                yield to_message(event)
            elif stream.overflowed:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              "the stream fell too far behind; reconnect and catch up")
            elif stream.closed:
                return
    finally:
        stream.close()


def unary(fn: Callable[[S, Req, grpc.ServicerContext, Principal], Resp]
          ) -> Callable[[S, Req, grpc.ServicerContext], Resp]:
    """Wrap a unary servicer method ``fn(self, request, context, principal)``."""

    @functools.wraps(fn)
    def wrapper(self: S, request: Req, context: grpc.ServicerContext) -> Resp:
        try:
            principal = _principal(self.auth, context)  # type: ignore[attr-defined]
            return fn(self, request, context, principal)
        except grpc.RpcError:
            raise
        except Exception as e:
            if context.code() is not None:  # already aborted inside fn
                raise
            _fail(context, e, fn.__name__)

    return wrapper


def streaming(fn: Callable[[S, Req, grpc.ServicerContext, Principal], Iterator[Resp]]
              ) -> Callable[[S, Req, grpc.ServicerContext], Iterator[Resp]]:
    """Wrap a server-streaming servicer method (a generator) the same way."""

    @functools.wraps(fn)
    def wrapper(self: S, request: Req, context: grpc.ServicerContext) -> Iterator[Resp]:
        try:
            principal = _principal(self.auth, context)  # type: ignore[attr-defined]
            yield from fn(self, request, context, principal)
        except grpc.RpcError:
            raise
        except Exception as e:
            if context.code() is not None:
                raise
            _fail(context, e, fn.__name__)

    return wrapper
