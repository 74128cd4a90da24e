"""OTLP sinks served from a thread of their own: a synchronous exporter in the caller's thread
reaches them, each sink counts its own spans, and the counts outlive the thread."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from loadtest.stack.otlp_sink import OtlpSink
from loadtest.stack.otlp_thread import SinkThread


def _send(sink: OtlpSink, names: list[str]) -> None:
    """Export one span per name to ``sink``, synchronously (returns once each is answered)."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(sink.endpoint, insecure=True)))
    tracer = provider.get_tracer("otlp-thread-test")
    for name in names:
        tracer.start_span(name).end()
    provider.shutdown()


def test_a_synchronous_exporter_reaches_sinks_served_from_the_thread() -> None:
    with SinkThread() as sinks:
        first, second = sinks.sink(), sinks.sink()
        assert first.endpoint != second.endpoint
        _send(first, ["a", "b"])
        _send(second, ["c"])
        assert (first.received, second.received) == (2, 1)
        assert [s["name"] for s in first.spans()] == ["a", "b"]
    assert (first.received, second.received) == (2, 1)  # still readable once stopped


def test_a_sink_thread_with_no_sink_stops() -> None:
    with SinkThread():
        pass
