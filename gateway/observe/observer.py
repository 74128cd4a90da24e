"""Each inference request's beginning and end, for the access log and the trace.

The front-ends call ``begin`` as a request comes (before anything is parsed, so a request
refused for bad input is seen too) and ``end`` once it is answered or refused; in between the
gateway core and the scheduler fill in the ``RequestInfo``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from gateway.errors import Code, InferError, as_infer_error
from gateway.observe.access_log import AccessLog, AccessSampler
from gateway.observe.request import RequestInfo
from gateway.observe.settings import AccessLogSettings
from gateway.observe.tracing import Tracing
from protos.tensors import CodecError

__all__ = ["Ended", "RequestObserver"]

Ended = Callable[[RequestInfo, Code | None, str, float], None]  # (info, code, reason, latency)


class RequestObserver:
    """Begins and ends requests: their spans (``tracing``) and access-log lines."""

    def __init__(self, access: AccessLog, tracing: Tracing, ended: Ended | None = None) -> None:
        self.access = access
        self.tracing = tracing
        self._ended = ended

    @classmethod
    def of(
        cls, settings: AccessLogSettings, tracing: Tracing, dropped: Any, ended: Ended | None = None
    ) -> RequestObserver:
        """An observer logging as ``settings`` say, counting dropped lines on ``dropped``;
        ``ended`` is told of every request's end (the per-tenant metrics)."""
        return cls(AccessLog(AccessSampler(settings), dropped.inc), tracing, ended)

    def begin(
        self,
        protocol: str,
        span_name: str,
        traceparent: str | None = None,
        tracestate: str | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> RequestInfo:
        info = RequestInfo(protocol, time.perf_counter_ns())
        if self.tracing.enabled:
            info.trace = self.tracing.start(
                span_name, traceparent, tracestate, attributes or {}, time.time_ns()
            )
        return info

    def failed(self, info: RequestInfo, exc: BaseException) -> InferError | None:
        """End a request that raised ``exc``: the InferError to answer it with (bad input
        is INVALID_ARGUMENT), or None when ``exc`` is to go on up (cancelled: the caller
        left; any other: a fault of the gateway's own, counted INTERNAL)."""
        if isinstance(exc, InferError | CodecError):
            error = as_infer_error(exc)
            self.end(info, error.code, error.message, error.reason)
            return error
        if isinstance(exc, asyncio.CancelledError):
            self.end(info, Code.CANCELLED, "the caller left")
        else:
            self.end(info, Code.INTERNAL, str(exc))
        return None

    def end(
        self, info: RequestInfo, code: Code | None = None, message: str = "", reason: str = ""
    ) -> None:
        """The request was answered (``code`` None) or failed with ``code`` (``reason``: the
        metrics' label for why, e.g. quota)."""
        latency_s = (time.perf_counter_ns() - info.start_ns) / 1e9
        self.access.record(info, code, latency_s, message)
        if self._ended is not None:
            why = reason or (code.reason if code is not None else "")
            self._ended(info, code, why, latency_s)
        traced = info.trace
        if traced is not None:
            info.trace = None  # ended once
            attributes = {
                "inference.request_id": info.request_id,
                "inference.model": info.model,
                "inference.rows": info.rows,
                "inference.batch_rows": info.batch_rows,
                "inference.pod": info.pod,
                "inference.queue_ms": info.queue_ns / 1e6,
                "inference.tries": info.tries,
            }
            traced.end(attributes, None if code is None else (code.name, message))
