"""Prometheus metrics of the gateway, in its own registry, served on the metrics port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "GatewayMetrics",
    "ModelMetrics",
    "ModelState",
    "PodState",
    "StateCollector",
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
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "gateway_requests", "Inference requests received", ["model", "protocol"], registry=r
        )
        self.failures = Counter(
            "gateway_request_failures",
            "Inference requests answered with an error, by reason",
            ["model", "protocol", "reason"],
            registry=r,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from a request's arrival to its answer",
            ["model", "protocol"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batches = Counter(
            "gateway_pod_batches", "Batches sent, by pod", ["model", "pod"], registry=r
        )
        self.queue_time = Histogram(
            "gateway_queue_duration_seconds",
            "Time a request waited in the gateway's queue before its batch was sent",
            ["model"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.rejections = Counter(
            "gateway_rejections",
            "Requests the gateway itself turned away, by reason (queue_full, timeout)",
            ["model", "reason"],
            registry=r,
        )
        self.batch_rows = Histogram(
            "gateway_batch_rows",
            "Rows per batch sent",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )


@dataclass(frozen=True, slots=True)
class PodState:
    model: str
    pod: str
    in_flight: int
    outstanding_rows: int
    ready: bool


@dataclass(frozen=True, slots=True)
class ModelState:
    model: str
    in_flight: int
    queue: list[tuple[int, int, int]]  # (priority level, requests, rows); level 0 = delayed
    fixed_s: float | None
    per_row_s: float | None


def _gauge(name: str, doc: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=labels)


class StateCollector(Collector):
    """Gauges read from live state at scrape time, so the hot path keeps no gauge current."""

    def __init__(self, states: Callable[[], tuple[list[ModelState], list[PodState]]]) -> None:
        self._states = states

    def collect(self) -> Iterator[GaugeMetricFamily]:
        models, pods = self._states()
        mp = ["model", "pod"]
        in_flight = _gauge("gateway_pod_inflight_batches", "Batches sent, not yet answered", mp)
        rows = _gauge("gateway_pod_outstanding_rows", "Rows sent to a pod, not yet answered", mp)
        ready = _gauge("gateway_pod_ready", "1 when the gateway routes to the pod", mp)
        for p in pods:
            in_flight.add_metric([p.model, p.pod], p.in_flight)
            rows.add_metric([p.model, p.pod], p.outstanding_rows)
            ready.add_metric([p.model, p.pod], 1.0 if p.ready else 0.0)
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
        for m in models:
            requests.add_metric([m.model], m.in_flight)
            for level, n, r in m.queue:
                q_requests.add_metric([m.model, str(level)], n)
                q_rows.add_metric([m.model, str(level)], r)
            if m.fixed_s is not None and m.per_row_s is not None:
                fixed.add_metric([m.model], m.fixed_s)
                per_row.add_metric([m.model], m.per_row_s)
        yield from (in_flight, rows, ready, requests, q_requests, q_rows, fixed, per_row)


class ModelMetrics:
    """The scheduler's hooks for one model, writing to the gateway's metrics."""

    def __init__(self, metrics: GatewayMetrics, model: str) -> None:
        self._metrics = metrics
        self._model = model
        self._rows = metrics.batch_rows.labels(model)
        self._queue_time = metrics.queue_time.labels(model)
        self._pods: dict[str, Any] = {}

    def batch_sent(self, pod: str, rows: int, requests: int) -> None:
        counter = self._pods.get(pod)
        if counter is None:
            counter = self._pods[pod] = self._metrics.batches.labels(self._model, pod)
        counter.inc()
        self._rows.observe(rows)

    def queue_time(self, seconds: float) -> None:
        self._queue_time.observe(seconds)

    def rejected(self, reason: str) -> None:
        self._metrics.rejections.labels(self._model, reason).inc()
