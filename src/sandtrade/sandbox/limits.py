"""Limits are data: every limit a worker runs under, with its default and unit."""

from __future__ import annotations

from typing import Annotated, NamedTuple

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["OPERATOR_MAXIMA", "RunQuotas", "WorkerLimits"]


class RunQuotas(NamedTuple):
    """What one live run may do per event and per second: its account's quotas (``[quotas]``
    or ``[accounts.NAME.quotas]``), each at most what the worker's limits allow."""

    ctx_calls_per_event: int
    log_lines_per_s: float
    log_bytes_per_s: int
    log_burst_seconds: float
    state_bytes: int

    def within(self, limits: WorkerLimits) -> RunQuotas:
        """These quotas, each capped at ``limits``' own value."""
        return RunQuotas(min(self.ctx_calls_per_event, limits.ctx_calls_per_event),
                         min(self.log_lines_per_s, limits.log_lines_per_s),
                         min(self.log_bytes_per_s, limits.log_bytes_per_s),
                         min(self.log_burst_seconds, limits.log_burst_seconds),
                         min(self.state_bytes, limits.state_bytes))


class WorkerLimits(BaseModel):
    """What one strategy worker may use. The kernel enforces the first five; the supervisor
    (its watchdog, from outside) enforces them too and the rest."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpu_seconds: Annotated[int, Field(gt=0, description="CPU time, seconds (RLIMIT_CPU)")] = 120
    memory_mb: Annotated[int, Field(ge=256, description="address space, MiB (RLIMIT_AS); "
                                    "the supervisor also kills at this RSS")] = 1024
    open_files: Annotated[int, Field(ge=16, description="file descriptors (RLIMIT_NOFILE)")] = 64
    wall_seconds: Annotated[float, Field(gt=0, description="wall time of a whole run, s")] = 900
    event_seconds: Annotated[float, Field(gt=0, description="wall time one hook (or one "
                                          "progress step of a back-test) may take, s")] = 10.0
    ctx_calls_per_event: Annotated[int, Field(gt=0, description="broker calls (ctx.buy, "
                                              "ctx.account, ...) one live event may make; "
                                              "the rest of that event's are refused")] = 1000
    log_bytes: Annotated[int, Field(ge=0, description="strategy log (print, ctx.log), bytes")
                         ] = 1 << 20
    log_lines_per_s: Annotated[float, Field(gt=0, description="live runs: strategy log "
                                            "lines a second, on average")] = 200.0
    log_bytes_per_s: Annotated[int, Field(gt=0, description="live runs: strategy log bytes "
                                          "a second, on average")] = 64 << 10
    log_burst_seconds: Annotated[float, Field(gt=0, description="live runs: seconds of log "
                                              "rate a burst may take at once")] = 5.0
    stderr_bytes: Annotated[int, Field(ge=0, description="worker stderr kept, bytes")] = 64 << 10
    result_bytes: Annotated[int, Field(gt=0, description="largest result message, bytes")
                            ] = 256 << 20
    # The maximum stays at the default: the state travels in a ``done`` frame whose header
    # the host caps at 1 MiB, JSON escapes included.
    state_bytes: Annotated[int, Field(ge=2, description="a live strategy's ctx.state as JSON, "
                                      "bytes")] = 256 << 10

    def run_quotas(self) -> RunQuotas:
        """The per-run quotas these limits allow (a run's account may set lower ones)."""
        return RunQuotas(self.ctx_calls_per_event, self.log_lines_per_s, self.log_bytes_per_s,
                         self.log_burst_seconds, self.state_bytes)

    def within(self, maxima: WorkerLimits) -> WorkerLimits:
        """These limits, refused if any exceeds the operator's ``maxima`` (names the limit)."""
        for name in type(self).model_fields:
            mine, most = getattr(self, name), getattr(maxima, name)
            if mine > most:
                raise ValueError(f"limit {name}={mine} exceeds the operator's maximum {most}")
        return self


#: What an operator allows at most unless configured otherwise.
OPERATOR_MAXIMA = WorkerLimits(cpu_seconds=3600, memory_mb=4096, open_files=256,
                               wall_seconds=7200, event_seconds=60,
                               ctx_calls_per_event=100_000, log_bytes=16 << 20,
                               log_lines_per_s=100_000, log_bytes_per_s=64 << 20,
                               log_burst_seconds=60, stderr_bytes=1 << 20, result_bytes=1 << 30,
                               state_bytes=256 << 10)
