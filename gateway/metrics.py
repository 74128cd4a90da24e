"""Prometheus metrics of the gateway, in its own registry, served on the metrics port."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["GatewayMetrics", "StateCollector"]


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
        self.batch_rows = Histogram(
            "gateway_batch_rows",
            "Rows per batch sent",
            ["model"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=r,
        )


class StateCollector(Collector):
    """Gauges read from live state at scrape time, so the hot path keeps no gauge current."""

    def __init__(
        self,
        pods: Callable[[], Iterable[tuple[str, str, int, int, bool]]],
        models: Callable[[], Iterable[tuple[str, int]]],
    ) -> None:
        self._pods = pods
        self._models = models

    def collect(self) -> Iterator[GaugeMetricFamily]:
        in_flight = GaugeMetricFamily(
            "gateway_pod_inflight_batches",
            "Batches sent to a pod and not yet answered",
            labels=["model", "pod"],
        )
        rows = GaugeMetricFamily(
            "gateway_pod_outstanding_rows",
            "Rows sent to a pod and not yet answered",
            labels=["model", "pod"],
        )
        ready = GaugeMetricFamily(
            "gateway_pod_ready", "1 when the gateway routes to the pod", labels=["model", "pod"]
        )
        for model, pod, batches, n, is_ready in self._pods():
            in_flight.add_metric([model, pod], batches)
            rows.add_metric([model, pod], n)
            ready.add_metric([model, pod], 1.0 if is_ready else 0.0)
        requests = GaugeMetricFamily(
            "gateway_inflight_requests",
            "Requests admitted and not yet answered",
            labels=["model"],
        )
        for model, n in self._models():
            requests.add_metric([model], n)
        yield from (in_flight, rows, ready, requests)
