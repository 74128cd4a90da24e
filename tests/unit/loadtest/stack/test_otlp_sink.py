"""The loopback OTLP sink: the real OTLP/gRPC exporter's spans arrive with their ids, attributes
and links; the sink keeps a bounded number and can wait for spans to arrive."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from loadtest.stack.otlp_sink import OtlpSink


@pytest.fixture
async def sink() -> AsyncIterator[OtlpSink]:
    async with OtlpSink() as running:
        yield running


def _provider(sink: OtlpSink) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": "sink-test"}))
    exporter = OTLPSpanExporter(endpoint=sink.endpoint, insecure=True)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider


def _linked_spans(provider: TracerProvider) -> tuple[trace.SpanContext, trace.SpanContext]:
    """A ``batch`` span, child of ``parent`` and linked to ``request`` (blocks: it exports)."""
    tracer = provider.get_tracer("otlp-sink-test")
    with tracer.start_as_current_span("request") as request:
        pass
    with tracer.start_as_current_span("parent") as parent:
        batch = tracer.start_span(
            "batch",
            kind=trace.SpanKind.CLIENT,
            links=[trace.Link(request.get_span_context())],
            attributes={"batch.rows": 7, "model": "sim", "ok": True, "shape": [2, 3]},
        )
        batch.end()
    return request.get_span_context(), parent.get_span_context()


def _request(*names: str) -> ExportTraceServiceRequest:
    spans = [Span(name=n, trace_id=bytes(16), span_id=bytes(8)) for n in names]
    return ExportTraceServiceRequest(
        resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])]
    )


async def test_a_span_from_the_otlp_exporter_arrives_with_its_ids_attributes_and_link(
    sink: OtlpSink,
) -> None:
    provider = _provider(sink)
    try:
        request, parent = await asyncio.to_thread(_linked_spans, provider)
        (batch,) = await sink.wait_for(lambda s: s["name"] == "batch")
    finally:
        await asyncio.to_thread(provider.shutdown)
    assert batch["trace_id"] == f"{parent.trace_id:032x}"
    assert batch["parent_span_id"] == f"{parent.span_id:016x}"
    assert len(batch["span_id"]) == 16 and batch["span_id"] != batch["parent_span_id"]
    assert batch["attributes"] == {"batch.rows": 7, "model": "sim", "ok": True, "shape": [2, 3]}
    assert batch["links"] == [(f"{request.trace_id:032x}", f"{request.span_id:016x}")]
    assert batch["kind"] == "client"
    assert batch["resource"]["service.name"] == "sink-test"
    assert batch["scope"] == "otlp-sink-test"
    assert 0 < batch["start_ns"] <= batch["end_ns"]
    names = [s["name"] for s in sink.spans()]
    assert sorted(names) == ["batch", "parent", "request"]


async def test_proto_spans_are_the_messages_received(sink: OtlpSink) -> None:
    provider = _provider(sink)
    try:
        await asyncio.to_thread(_linked_spans, provider)
        await sink.wait_for(lambda s: True, count=3)
    finally:
        await asyncio.to_thread(provider.shutdown)
    protos = sink.proto_spans()
    assert [p.span_id.hex() for p in protos] == [s["span_id"] for s in sink.spans()]
    (batch,) = [p for p in protos if p.name == "batch"]
    assert batch.kind == Span.SpanKind.SPAN_KIND_CLIENT
    assert len(batch.links) == 1


async def test_a_root_span_has_no_parent_id(sink: OtlpSink) -> None:
    provider = _provider(sink)
    try:
        await asyncio.to_thread(_linked_spans, provider)
        (root,) = await sink.wait_for(lambda s: s["name"] == "parent")
    finally:
        await asyncio.to_thread(provider.shutdown)
    assert root["parent_span_id"] == ""
    assert root["links"] == []


def test_only_the_last_spans_are_kept() -> None:
    sink = OtlpSink(keep=3)
    sink.add(_request("a", "b"))
    sink.add(_request("c", "d", "e"))
    assert [s["name"] for s in sink.spans()] == ["c", "d", "e"]
    assert sink.received == 5


def test_spans_are_copies() -> None:
    sink = OtlpSink()
    sink.add(_request("a"))
    sink.spans()[0]["name"] = "changed"
    assert sink.spans()[0]["name"] == "a"


def test_clear_forgets_the_spans_but_not_the_count() -> None:
    sink = OtlpSink()
    sink.add(_request("a"))
    sink.clear()
    assert sink.spans() == [] and sink.proto_spans() == []
    assert sink.received == 1


async def test_wait_for_returns_the_matching_spans_as_they_arrive() -> None:
    sink = OtlpSink()
    sink.add(_request("x", "other"))
    waiting = asyncio.ensure_future(sink.wait_for(lambda s: s["name"] == "x", count=3))
    await asyncio.sleep(0)
    assert not waiting.done()
    sink.add(_request("other", "x"))
    await asyncio.sleep(0)
    assert not waiting.done()
    sink.add(_request("x"))
    found = await waiting
    assert [s["name"] for s in found] == ["x", "x", "x"]


async def test_wait_for_raises_timeout_when_too_few_spans_match() -> None:
    sink = OtlpSink()
    sink.add(_request("a"))
    with pytest.raises(TimeoutError, match="0 of 1 spans matched"):
        await sink.wait_for(lambda s: s["name"] == "b", timeout_s=0.05)


async def test_start_picks_a_free_loopback_port_and_stop_keeps_the_spans() -> None:
    sink = OtlpSink()
    port = await sink.start()
    try:
        assert port > 0 and sink.endpoint == f"127.0.0.1:{port}"
        with pytest.raises(RuntimeError):
            await sink.start()
        sink.add(_request("a"))
    finally:
        await sink.stop()
    assert [s["name"] for s in sink.spans()] == ["a"]
    await sink.stop()  # a second stop does nothing
