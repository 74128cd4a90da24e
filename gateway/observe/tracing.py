"""OpenTelemetry traces of requests and their batches (``tracing:``; off by default).

A request is traced when it comes with a sampled W3C ``traceparent`` (its span joins that
trace), or, with no parent, with probability ``sample_ratio``; a parent that says "not sampled"
is obeyed. The decision is made here, once, before any span exists, so a request not traced
costs a random draw and tracing off costs nothing (the SDK's sampler is always-on: every span
made is one chosen). A traced request has a server span, a ``queue`` child span for its wait,
and takes part in its batch's ``batch`` span: a client span, child of the batch's first traced
request, with a link to each traced member, whose context goes to the pod as ``traceparent``
(Triton joins its own trace to it). Spans leave through a batch processor to an OTLP/gRPC
collector, in a thread of the SDK's own; when its queue is full, spans are dropped, never
waited for.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from gateway import __version__
from gateway.observe.settings import TracingSettings

__all__ = [
    "BatchTrace",
    "SpanProcessor",
    "TracedRequest",
    "Tracing",
    "start_batch",
    "traceparent_of",
]

_PROPAGATOR = TraceContextTextMapPropagator()


def traceparent_of(context: trace.SpanContext) -> str:
    """The W3C ``traceparent`` header for a span context."""
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


@dataclass(slots=True, eq=False)
class TracedRequest:
    """A traced request's span and the tracer that makes its children."""

    tracer: trace.Tracer
    span: trace.Span
    enqueued_ns: int = 0  # wall clock (ns since the epoch), when it was queued

    @property
    def trace_id(self) -> str:
        return format(self.span.get_span_context().trace_id, "032x")

    def enqueued(self) -> None:
        self.enqueued_ns = time.time_ns()

    def sent(self, sent_ns: int, attributes: Mapping[str, Any]) -> None:
        """Its batch went at ``sent_ns``: its ``queue`` span, from when it was queued."""
        context = trace.set_span_in_context(self.span)
        queue = self.tracer.start_span(
            "queue", context, attributes=attributes, start_time=self.enqueued_ns or sent_ns
        )
        queue.end(end_time=sent_ns)

    def end(self, attributes: Mapping[str, Any], error: tuple[str, str] | None) -> None:
        """The request ended: its outcome (``error``: its code's name and message)."""
        span = self.span
        span.set_attributes(attributes)
        if error is not None:
            span.set_attribute("inference.status", error[0])
            span.set_status(Status(StatusCode.ERROR, error[1][:500]))
        span.end()


@dataclass(slots=True, eq=False)
class BatchTrace:
    """A batch's span on one pod, and the ``traceparent`` that goes with its call."""

    span: trace.Span
    traceparent: str

    def end(self, error: str | None) -> None:
        if error is not None:
            self.span.set_status(Status(StatusCode.ERROR, error[:500]))
        self.span.end()


def start_batch(
    members: Sequence[TracedRequest], model: str, pod: str, rows: int, requests: int
) -> BatchTrace | None:
    """A batch goes to ``pod`` now: each traced member's ``queue`` span ends, and the batch's
    span begins, child of its first traced member and linked to each; None with no member
    traced."""
    if not members:
        return None
    sent_ns = time.time_ns()
    attributes: dict[str, Any] = {"inference.pod": pod, "inference.batch_rows": rows}
    for member in members:
        member.sent(sent_ns, attributes)
    first = members[0]
    links = [Link(m.span.get_span_context()) for m in members]
    attributes["inference.model"] = model
    attributes["inference.batch_requests"] = requests
    span = first.tracer.start_span(
        "batch",
        trace.set_span_in_context(first.span),
        kind=SpanKind.CLIENT,
        attributes=attributes,
        links=links,
        start_time=sent_ns,
    )
    return BatchTrace(span, traceparent_of(span.get_span_context()))


class Tracing:
    """The gateway's tracer; ``start`` decides whether a request is traced and begins it."""

    def __init__(
        self,
        settings: TracingSettings,
        processor: SpanProcessor | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._rng = rng or random.Random()
        self._provider: TracerProvider | None = None
        self._tracer: trace.Tracer | None = None
        if settings.enabled or processor is not None:
            resource = Resource.create(
                {"service.name": settings.service_name, "service.version": __version__}
            )
            self._provider = TracerProvider(sampler=ALWAYS_ON, resource=resource)
            self._provider.add_span_processor(processor or _exporting(settings))
            self._tracer = self._provider.get_tracer("gateway", __version__)

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def update(self, settings: TracingSettings) -> list[str]:
        """Take a reloaded section: the ratio at once; the rest needs a restart (said so)."""
        ratio = settings.sample_ratio
        kept = self.settings.model_copy(update={"sample_ratio": ratio})
        self.settings = kept
        if settings != kept:
            return ["tracing: only sample_ratio changes without a restart; keeping the rest"]
        return []

    def start(
        self,
        name: str,
        traceparent: str | None,
        tracestate: str | None,
        attributes: Mapping[str, Any],
        start_ns: int,
    ) -> TracedRequest | None:
        """The request's server span, if it is traced (see the module docstring)."""
        tracer = self._tracer
        if tracer is None:
            return None
        context: Context | None = None
        if traceparent:
            carrier = {"traceparent": traceparent}
            if tracestate:
                carrier["tracestate"] = tracestate
            context = _PROPAGATOR.extract(carrier)
            parent = trace.get_current_span(context).get_span_context()
            if not parent.is_valid:
                context = None  # a malformed header: as if none came
            elif not parent.trace_flags.sampled:
                return None
        if context is None and not self._rng.random() < self.settings.sample_ratio:
            return None
        span = tracer.start_span(
            name, context, kind=SpanKind.SERVER, attributes=attributes, start_time=start_ns
        )
        return TracedRequest(tracer, span)

    def shutdown(self) -> None:
        """Export what is held (within the export timeout) and stop."""
        if self._provider is not None:
            self._provider.shutdown()
            self._provider = None
            self._tracer = None


def _exporting(settings: TracingSettings) -> SpanProcessor:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(
        endpoint=settings.otlp_endpoint,
        insecure=settings.insecure,
        timeout=settings.export_timeout_s,
    )
    return BatchSpanProcessor(
        exporter,
        max_queue_size=settings.max_queue_size,
        schedule_delay_millis=settings.export_delay_ms,
        export_timeout_millis=settings.export_timeout_s * 1000,
    )
