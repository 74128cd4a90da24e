"""Prometheus metrics of the gateway, in its own registry, served on the metrics port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway import __version__ as VERSION
from gateway.batching.admission import REJECT_REASONS
from gateway.batching.policy import ALL_SEND_REASONS
from gateway.errors import Code
from gateway.observe.request import RequestInfo
from gateway.scheduler_state import SchedulerState

__all__ = [
    "GatewayMetrics",
    "ModelMetrics",
    "ModelState",
    "StateCollector",
    "request_ended",
]


_LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.002,
    0.005,
    0.01,
    0.02,
    0.05,
    0.1,
    0.2,
    0.5,
    1.0,
    2.0,
    5.0,
    10.0,
    30.0,
)


class GatewayMetrics:
    """Every metric the gateway exports; label children are bound once per model or pod."""

    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()

        def counter(name: str, doc: str, labels: list[str]) -> Counter:
            return Counter(name, doc, labels, registry=r)

        def histogram(
            name: str, doc: str, labels: list[str], buckets: tuple[float, ...] = _LATENCY_BUCKETS
        ) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=r)

        mp = ["model", "protocol"]
        self.requests = counter("gateway_requests", "Inference requests received", mp)
        self.failures = counter(
            "gateway_request_failures",
            "Inference requests answered with an error, by Triton's reason and the status code",
            [*mp, "reason", "code"],
        )
        self.latency = histogram(
            "gateway_request_duration_seconds", "Time from a request's arrival to its answer", mp
        )
        self.batches = counter(
            "gateway_pod_batches", "Batches sent, by pod", ["model", "model_server_pod"]
        )
        self.build_info = Gauge(
            "gateway_build_info", "1, labelled with the gateway's version", ["version"], registry=r
        )
        self.build_info.labels(VERSION).set(1)
        self.queue_time = histogram(
            "gateway_queue_duration_seconds",
            "Time a request waited in the gateway's queue before its batch was sent",
            ["model"],
        )
        self.rejections = counter(
            "gateway_rejections",
            f"Requests the gateway itself turned away, by reason: {', '.join(REJECT_REASONS)}",
            ["model", "reason"],
        )
        self.batch_rows = histogram(
            "gateway_batch_rows",
            "Rows per batch sent",
            ["model"],
            (1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.batch_sends = counter(
            "gateway_batch_sends",
            f"Batches sent, by why they were sent: {', '.join(ALL_SEND_REASONS)}",
            ["model", "reason"],
        )
        self.stream_answers = Gauge(
            "gateway_grpc_stream_answers_pending",
            "ModelStreamInfer requests read whose answers the client has not taken yet "
            "(at most server.grpc_stream_max_inflight per stream)",
            registry=r,
        )
        t = ["tenant"]  # only configured tenants and "anonymous": a bounded set
        self.tenant_requests = counter(
            "gateway_tenant_requests", "Inference requests, by tenant", t
        )
        self.tenant_rows = counter("gateway_tenant_rows", "Rows of the answered requests", t)
        self.tenant_rejections = counter(
            "gateway_tenant_rejections",
            "Requests of the tenant that failed, by reason (quota, forbidden, queue_full, "
            "overloaded, evicted, timeout, or the error's kind)",
            [*t, "reason"],
        )
        self.tenant_queue_time = histogram(
            "gateway_tenant_queue_duration_seconds", "Time in the queue, by tenant", t
        )
        self.tenant_latency = histogram(
            "gateway_tenant_request_duration_seconds", "Arrival to answer, by tenant", t
        )
        self.auth_failures = counter(
            "gateway_auth_failures", "Requests refused for a missing or unknown key", ["protocol"]
        )
        self.access_log_dropped = Counter(
            "gateway_access_log_dropped_lines",
            "Access-log lines not written: over access_log.max_lines_per_s",
            registry=r,
        )


@dataclass(frozen=True, slots=True)
class ModelState:
    """One served model at scrape time: requests in the gateway, and its scheduler's state."""

    model: str
    in_flight: int
    scheduler: SchedulerState
    signatures: int = 0  # distinct signatures among the ready pods that have described the model


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class StateCollector(Collector):
    """Gauges read from live state at scrape time, so the hot path keeps no gauge current."""

    def __init__(self, states: Callable[[], list[ModelState]]) -> None:
        self._states = states

    def collect(self) -> Iterator[GaugeMetricFamily]:
        models = self._states()
        mp = ["model", "model_server_pod"]  # not "pod": Prometheus adds that target label
        in_flight = _gauge("gateway_pod_inflight_batches", "Batches sent, not yet answered", mp)
        rows = _gauge("gateway_pod_outstanding_rows", "Rows sent to a pod, not yet answered", mp)
        ready = _gauge("gateway_pod_ready", "1 when the gateway routes to the pod", mp)
        requests = _gauge(
            "gateway_inflight_requests", "Requests admitted, not yet answered", ["model"]
        )
        q_requests = _gauge(
            "gateway_queue_requests", "Requests queued (priority 0: delayed)", ["model", "priority"]
        )
        q_rows = _gauge(
            "gateway_queue_rows", "Rows queued (priority 0: delayed)", ["model", "priority"]
        )
        fixed = _gauge(
            "gateway_batch_cost_fixed_seconds", "Fitted F of batch time F + c*n", ["model"]
        )
        per_row = _gauge(
            "gateway_batch_cost_per_row_seconds", "Fitted c of batch time F + c*n", ["model"]
        )
        ready_pods = _gauge("gateway_ready_pods", "Pods the gateway routes to", ["model"])
        signatures = _gauge(
            "gateway_model_signatures",
            "Distinct model signatures among ready pods (above 1: the pods disagree)",
            ["model"],
        )
        for m in models:
            signatures.add_metric([m.model], m.signatures)
            s = m.scheduler
            for p in s.pods:
                in_flight.add_metric([m.model, p.address], p.in_flight)
                rows.add_metric([m.model, p.address], p.outstanding_rows)
                ready.add_metric([m.model, p.address], 1.0 if p.ready else 0.0)
            requests.add_metric([m.model], m.in_flight)
            ready_pods.add_metric([m.model], len(s.ready_pods))
            for level, n, r in s.levels:
                q_requests.add_metric([m.model, str(level)], n)
                q_rows.add_metric([m.model, str(level)], r)
            if s.fixed_s is not None and s.per_row_s is not None:
                fixed.add_metric([m.model], s.fixed_s)
                per_row.add_metric([m.model], s.per_row_s)
        yield from (in_flight, rows, ready, requests, q_requests, q_rows, fixed, per_row)
        yield from (signatures, ready_pods)


class ModelMetrics:
    """The scheduler's hooks for one model, writing to the gateway's metrics."""

    def __init__(self, metrics: GatewayMetrics, model: str) -> None:
        self._metrics = metrics
        self._model = model
        self._rows = metrics.batch_rows.labels(model)
        self._queue_time = metrics.queue_time.labels(model)
        self._pods: dict[str, Any] = {}
        self._reasons: dict[str, Any] = {}

    def batch_sent(self, pod: str, rows: int, requests: int, reason: str) -> None:
        counter = self._pods.get(pod)
        if counter is None:
            counter = self._pods[pod] = self._metrics.batches.labels(self._model, pod)
        counter.inc()
        self._rows.observe(rows)
        sends = self._reasons.get(reason)
        if sends is None:
            sends = self._reasons[reason] = self._metrics.batch_sends.labels(self._model, reason)
        sends.inc()

    def queue_time(self, seconds: float) -> None:
        self._queue_time.observe(seconds)

    def rejected(self, reason: str) -> None:
        self._metrics.rejections.labels(self._model, reason).inc()


def request_ended(
    metrics: GatewayMetrics,
) -> Callable[[RequestInfo, Code | None, str, float], None]:
    """What the request observer tells at each request's end, counted per tenant."""

    def ended(info: RequestInfo, code: Code | None, reason: str, latency_s: float) -> None:
        tenant = info.tenant
        if tenant is None:
            if code is Code.UNAUTHENTICATED:
                metrics.auth_failures.labels(info.protocol).inc()
            return
        name = tenant.name
        metrics.tenant_requests.labels(name).inc()
        metrics.tenant_latency.labels(name).observe(latency_s)
        if code is None:
            metrics.tenant_rows.labels(name).inc(info.rows)
        else:
            metrics.tenant_rejections.labels(name, reason).inc()
        if info.tries:
            metrics.tenant_queue_time.labels(name).observe(info.queue_ns / 1e9)

    return ended
