"""Which requests are traced (a sampled parent is followed, a not-sampled one obeyed, the rest by
``sample_ratio``) and the spans they make: server, ``queue`` and the batch's client span."""

from __future__ import annotations

import random
import re

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from gateway.observe.settings import TracingSettings
from gateway.observe.tracing import TracedRequest, Tracing, start_batch, traceparent_of

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN_ID = "00f067aa0ba902b7"
SAMPLED = f"00-{TRACE_ID}-{SPAN_ID}-01"
NOT_SAMPLED = f"00-{TRACE_ID}-{SPAN_ID}-00"
W3C = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01")
NAME = "POST /v2/models/{model}/infer"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def tracing(exporter: InMemorySpanExporter, ratio: float, seed: int = 1) -> Tracing:
    settings = TracingSettings(enabled=True, sample_ratio=ratio)
    return Tracing(settings, SimpleSpanProcessor(exporter), random.Random(seed))


def start(
    t: Tracing, traceparent: str | None = None, tracestate: str | None = None
) -> TracedRequest | None:
    return t.start(NAME, traceparent, tracestate, {"http.request.method": "POST"}, 1_000)


def begun(t: Tracing, traceparent: str | None = None) -> TracedRequest:
    traced = start(t, traceparent)
    assert traced is not None
    return traced


def spans(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def test_tracing_off_makes_no_span() -> None:
    t = Tracing(TracingSettings(enabled=False, sample_ratio=1.0))
    assert t.enabled is False
    assert start(t, SAMPLED) is None
    assert start(t) is None


def test_a_sampled_parent_is_followed_even_with_ratio_0(exporter: InMemorySpanExporter) -> None:
    t = tracing(exporter, 0.0)
    assert t.enabled is True
    traced = begun(t, SAMPLED)
    traced.end({}, None)
    (server,) = exporter.get_finished_spans()
    assert server.name == NAME and server.kind is SpanKind.SERVER
    assert server.parent is not None and server.parent.span_id == int(SPAN_ID, 16)
    assert server.context is not None and server.context.trace_id == int(TRACE_ID, 16)
    assert traced.trace_id == TRACE_ID
    assert server.start_time == 1_000
    assert server.attributes is not None and server.attributes["http.request.method"] == "POST"


def test_the_parent_s_tracestate_is_kept(exporter: InMemorySpanExporter) -> None:
    traced = start(tracing(exporter, 0.0), SAMPLED, "vendor=abc")
    assert traced is not None
    assert traced.span.get_span_context().trace_state.get("vendor") == "abc"


def test_a_not_sampled_parent_is_obeyed_even_with_ratio_1(exporter: InMemorySpanExporter) -> None:
    assert start(tracing(exporter, 1.0), NOT_SAMPLED) is None
    assert exporter.get_finished_spans() == ()


@pytest.mark.parametrize(
    "malformed",
    ["garbage", f"00-{'0' * 32}-{SPAN_ID}-01", f"00-{TRACE_ID}-{'0' * 16}-01", f"00-{TRACE_ID}-01"],
)
def test_a_malformed_parent_is_as_if_none_came(
    exporter: InMemorySpanExporter, malformed: str
) -> None:
    assert start(tracing(exporter, 0.0), malformed) is None
    traced = begun(tracing(exporter, 1.0), malformed)
    traced.end({}, None)
    (root,) = exporter.get_finished_spans()
    assert root.parent is None  # a new root
    assert traced.trace_id != TRACE_ID


def test_with_no_parent_the_ratio_decides(exporter: InMemorySpanExporter) -> None:
    assert all(start(tracing(exporter, 1.0, seed)) is not None for seed in range(50))
    assert all(start(tracing(exporter, 0.0, seed)) is None for seed in range(50))
    t = tracing(exporter, 0.25, seed=2024)
    traced = sum(start(t) is not None for _ in range(4000))
    assert 800 <= traced <= 1200  # binomial(4000, 0.25): 1000 ± 7 sd


def test_the_same_seed_makes_the_same_decisions(exporter: InMemorySpanExporter) -> None:
    def decisions(seed: int) -> list[bool]:
        t = tracing(exporter, 0.5, seed)
        return [start(t) is not None for _ in range(200)]

    assert decisions(5) == decisions(5)
    assert decisions(5) != decisions(6)


def test_sent_makes_a_queue_span_child_of_the_server_span(
    exporter: InMemorySpanExporter,
) -> None:
    traced = begun(tracing(exporter, 1.0))
    traced.enqueued_ns = 2_000
    traced.sent(7_000, {"inference.pod": "p0:1"})
    (queue,) = spans(exporter, "queue")
    assert queue.parent is not None
    assert queue.parent.span_id == traced.span.get_span_context().span_id
    assert (queue.start_time, queue.end_time) == (2_000, 7_000)
    assert queue.attributes is not None and queue.attributes["inference.pod"] == "p0:1"


def test_a_queue_span_never_queued_starts_when_it_was_sent(
    exporter: InMemorySpanExporter,
) -> None:
    begun(tracing(exporter, 1.0)).sent(7_000, {})
    (queue,) = spans(exporter, "queue")
    assert (queue.start_time, queue.end_time) == (7_000, 7_000)


def test_no_traced_member_no_batch_span() -> None:
    assert start_batch([], "sim", "p0:1", 4, 2) is None


def test_a_batch_span_is_a_client_child_of_its_first_member_linked_to_all(
    exporter: InMemorySpanExporter,
) -> None:
    t = tracing(exporter, 1.0)
    first, second = begun(t, SAMPLED), begun(t)
    batch = start_batch([first, second], "sim", "p0:1", 5, 3)
    assert batch is not None
    batch.end(None)
    (span,) = spans(exporter, "batch")
    assert span.kind is SpanKind.CLIENT
    assert span.parent is not None
    assert span.parent.span_id == first.span.get_span_context().span_id
    assert span.context is not None and span.context.trace_id == int(TRACE_ID, 16)
    linked = {link.context.span_id for link in span.links}
    assert linked == {m.span.get_span_context().span_id for m in (first, second)}
    assert dict(span.attributes or {}) == {
        "inference.pod": "p0:1",
        "inference.batch_rows": 5,
        "inference.model": "sim",
        "inference.batch_requests": 3,
    }
    assert span.status.status_code is StatusCode.UNSET
    assert batch.traceparent == traceparent_of(span.context)
    assert W3C.fullmatch(batch.traceparent)
    assert batch.traceparent.split("-")[2] == f"{span.context.span_id:016x}"
    queues = spans(exporter, "queue")  # each member's wait ended as the batch went
    assert {q.parent.span_id for q in queues if q.parent is not None} == linked
    assert all(q.end_time == span.start_time for q in queues)


def test_a_failed_batch_span_has_error_status(exporter: InMemorySpanExporter) -> None:
    batch = start_batch([begun(tracing(exporter, 1.0))], "sim", "p0:1", 1, 1)
    assert batch is not None
    batch.end("pod p0:1: UNAVAILABLE")
    (span,) = spans(exporter, "batch")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "pod p0:1: UNAVAILABLE"


def test_a_failed_request_s_span_has_error_status_and_its_code(
    exporter: InMemorySpanExporter,
) -> None:
    traced = begun(tracing(exporter, 1.0))
    traced.end({"inference.model": "sim"}, ("RESOURCE_EXHAUSTED", "queue full"))
    (server,) = spans(exporter, NAME)
    assert server.status.status_code is StatusCode.ERROR
    assert server.status.description == "queue full"
    assert server.attributes is not None
    assert server.attributes["inference.status"] == "RESOURCE_EXHAUSTED"
    assert server.attributes["inference.model"] == "sim"


def test_an_answered_request_s_span_is_not_an_error(exporter: InMemorySpanExporter) -> None:
    begun(tracing(exporter, 1.0)).end({}, None)
    (server,) = spans(exporter, NAME)
    assert server.status.status_code is StatusCode.UNSET
    assert server.attributes is not None and "inference.status" not in server.attributes


def test_update_changes_the_ratio_and_says_when_the_rest_needs_a_restart(
    exporter: InMemorySpanExporter,
) -> None:
    t = tracing(exporter, 0.0)
    assert t.update(t.settings.model_copy(update={"sample_ratio": 1.0})) == []
    assert t.settings.sample_ratio == 1.0
    assert start(t) is not None  # at once
    moved = t.settings.model_copy(update={"sample_ratio": 0.0, "otlp_endpoint": "elsewhere:4317"})
    (message,) = t.update(moved)
    assert "restart" in message
    assert t.settings.sample_ratio == 0.0
    assert t.settings.otlp_endpoint == "localhost:4317"  # kept


def test_shutdown_is_idempotent(exporter: InMemorySpanExporter) -> None:
    t = tracing(exporter, 1.0)
    begun(t).end({}, None)
    t.shutdown()
    t.shutdown()
    assert t.enabled is False
    assert start(t) is None
    assert len(exporter.get_finished_spans()) == 1
