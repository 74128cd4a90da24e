"""A loopback OTLP/gRPC trace collector that keeps what it receives, for tests and benches.

Point an OTLP exporter at ``OtlpSink.endpoint`` (insecure). The sink serves on the running
event loop, so a synchronous exporter must not be called from that loop's thread (use
``asyncio.to_thread``) or the export waits on a server that cannot answer.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_service
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

__all__ = ["KEEP", "OtlpSink", "SpanDict", "span_dict"]

KEEP = 100_000  # spans kept; older ones are dropped
MAX_MESSAGE = 64 * 2**20
SpanDict = dict[str, Any]
SpanPredicate = Callable[[SpanDict], bool]


def _value(value: AnyValue) -> Any:
    """An OTLP attribute value as a plain Python value (arrays as lists, kvlists as dicts)."""
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return [_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind)


def _attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in pairs}


def _kind(kind: Span.SpanKind.ValueType) -> str:
    """``SPAN_KIND_CLIENT`` -> ``client``."""
    return Span.SpanKind.Name(kind).removeprefix("SPAN_KIND_").lower()


def span_dict(span: Span, resource: dict[str, Any] | None = None, scope: str = "") -> SpanDict:
    """``span`` as a plain dict: hex ids ("" for no parent), attributes as Python values, links
    as ``(trace_id, span_id)`` pairs, times in ns since the epoch, and its resource's attributes
    and instrumentation scope's name."""
    status = Status.StatusCode.Name(span.status.code)
    return {
        "trace_id": span.trace_id.hex(),
        "span_id": span.span_id.hex(),
        "parent_span_id": span.parent_span_id.hex(),
        "name": span.name,
        "kind": _kind(span.kind),
        "attributes": _attributes(span.attributes),
        "links": [(link.trace_id.hex(), link.span_id.hex()) for link in span.links],
        "events": [
            {"name": e.name, "time_ns": e.time_unix_nano, "attributes": _attributes(e.attributes)}
            for e in span.events
        ],
        "status": status.removeprefix("STATUS_CODE_").lower(),
        "status_message": span.status.message,
        "start_ns": span.start_time_unix_nano,
        "end_ns": span.end_time_unix_nano,
        "resource": dict(resource or {}),
        "scope": scope,
    }


class _TraceService(trace_grpc.TraceServiceServicer):
    def __init__(self, sink: OtlpSink) -> None:
        self._sink = sink

    async def Export(
        self, request: trace_service.ExportTraceServiceRequest, context: Any
    ) -> trace_service.ExportTraceServiceResponse:
        self._sink.add(request)
        return trace_service.ExportTraceServiceResponse()


class OtlpSink:
    """An OTLP ``TraceService`` on ``host`` that keeps the last ``keep`` spans it received."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, keep: int = KEEP) -> None:
        self.host = host
        self.port = port
        self._spans: deque[tuple[Span, SpanDict]] = deque(maxlen=keep)
        self._received = 0
        self._arrival = asyncio.Event()
        self._server: grpc.aio.Server | None = None

    @property
    def endpoint(self) -> str:
        """``host:port``, for ``OTLPSpanExporter(endpoint=..., insecure=True)``."""
        return f"{self.host}:{self.port}"

    @property
    def received(self) -> int:
        """Spans received since the start, dropped and cleared ones included."""
        return self._received

    async def start(self) -> int:
        """Serve; returns the port (the one chosen when ``port`` was 0)."""
        if self._server is not None:
            raise RuntimeError("the OTLP sink is already started")
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE)])
        trace_grpc.add_TraceServiceServicer_to_server(_TraceService(self), server)
        port = server.add_insecure_port(f"{self.host}:{self.port}")
        if port == 0:
            raise OSError(f"cannot bind the OTLP sink on {self.host}:{self.port}")
        await server.start()
        self._server, self.port = server, port
        return port

    async def stop(self) -> None:
        """Stop serving (at once); the spans received stay readable."""
        server, self._server = self._server, None
        if server is not None:
            await server.stop(grace=None)

    async def __aenter__(self) -> OtlpSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def add(self, request: trace_service.ExportTraceServiceRequest) -> None:
        """Keep every span of one export request (what the service does on each call)."""
        for resource_spans in request.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                scope = scope_spans.scope.name
                for span in scope_spans.spans:
                    self._spans.append((span, span_dict(span, resource, scope)))
                    self._received += 1
        arrival, self._arrival = self._arrival, asyncio.Event()
        arrival.set()

    def spans(self) -> list[SpanDict]:
        """The kept spans as plain dicts (copies), in the order they arrived."""
        return [dict(d) for _, d in self._spans]

    def proto_spans(self) -> list[Span]:
        """The kept spans as the OTLP ``Span`` messages received, in the order they arrived."""
        return [span for span, _ in self._spans]

    def clear(self) -> None:
        """Forget every span received so far (``received`` still counts them)."""
        self._spans.clear()

    async def wait_for(
        self, predicate: SpanPredicate, timeout_s: float = 10.0, *, count: int = 1
    ) -> list[SpanDict]:
        """The spans (dict copies) for which ``predicate`` holds, once there are at least
        ``count``: those kept now, then each as it arrives. TimeoutError after ``timeout_s``."""
        matched: list[SpanDict] = []
        seen = self._received - len(self._spans)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            arrival = self._arrival
            fresh = min(self._received - seen, len(self._spans))
            start = len(self._spans) - fresh
            matched += [
                dict(d) for _, d in itertools.islice(self._spans, start, None) if predicate(d)
            ]
            seen = self._received
            if len(matched) >= count:
                return matched
            left = deadline - loop.time()
            try:
                if left <= 0:
                    raise TimeoutError
                await asyncio.wait_for(arrival.wait(), left)
            except TimeoutError:
                raise TimeoutError(
                    f"{len(matched)} of {count} spans matched in {timeout_s}s "
                    f"({self._received} received)"
                ) from None
