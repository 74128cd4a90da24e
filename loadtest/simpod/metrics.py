"""The pod's Prometheus metrics, in its own registry, with Triton's metric names.

Triton's cumulative counters (``nv_inference_request_success`` and friends) are exposed under
their exact names, without the ``_total`` suffix prometheus-client adds to counters, so
scrapers written against Triton find them; they are typed ``untyped`` for that reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

__all__ = ["FAILURE_REASONS", "PodMetrics"]

FAILURE_REASONS = ("REJECTED", "CANCELED", "BACKEND", "OTHER")

_COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "nv_inference_request_success": ("Number of successful inference requests", ("model",)),
    "nv_inference_request_failure": (
        "Number of failed inference requests",
        ("model", "reason"),
    ),
    "nv_inference_count": ("Number of inferences performed (rows)", ("model",)),
    "nv_inference_exec_count": ("Number of model executions performed (batches)", ("model",)),
    "nv_inference_request_duration_us": (
        "Cumulative inference request duration in microseconds",
        ("model",),
    ),
    "nv_inference_queue_duration_us": (
        "Cumulative inference queuing duration in microseconds",
        ("model",),
    ),
    "nv_inference_compute_infer_duration_us": (
        "Cumulative compute inference duration in microseconds",
        ("model",),
    ),
}


class _TritonCounters(Collector):
    """Cumulative counters kept as plain numbers and exposed under their exact names."""

    def __init__(self) -> None:
        self._values: dict[str, dict[tuple[str, ...], float]] = {name: {} for name in _COUNTERS}

    def inc(self, name: str, labels: tuple[str, ...], amount: float = 1.0) -> None:
        series = self._values[name]
        series[labels] = series.get(labels, 0.0) + amount

    def value(self, name: str, labels: tuple[str, ...]) -> float:
        return self._values[name].get(labels, 0.0)

    def collect(self) -> Iterable[Metric]:
        for name, (doc, label_names) in _COUNTERS.items():
            metric = Metric(name, doc, "unknown")
            for labels, value in self._values[name].items():
                metric.add_sample(name, dict(zip(label_names, labels, strict=True)), value)
            yield metric


def _batch_buckets(max_batch: int) -> list[float]:
    buckets: list[float] = []
    size = 1
    while size < max_batch:
        buckets.append(float(size))
        size *= 2
    buckets.append(float(max_batch))
    return buckets


class PodMetrics:
    """Every metric the pod exposes on ``/metrics``."""

    def __init__(self, models: Sequence[str], devices: int, max_batch: int) -> None:
        self.registry = CollectorRegistry()
        self._counters = _TritonCounters()
        self.registry.register(self._counters)
        self._pending = Gauge(
            "nv_inference_pending_request_count",
            "Instantaneous number of pending requests awaiting execution per-model.",
            ["model"],
            registry=self.registry,
        )
        self._batch = Histogram(
            "simpod_batch_size",
            "Rows per executed batch",
            ["model"],
            buckets=_batch_buckets(max_batch),
            registry=self.registry,
        )
        self._busy = Counter(
            "simpod_device_busy_seconds",
            "Simulated device time spent running batches",
            ["device"],
            registry=self.registry,
        )
        self._running = Gauge(
            "simpod_running_batches",
            "Batches running on a device now",
            ["model"],
            registry=self.registry,
        )
        self._held_max = Gauge(
            "simpod_held_batches_max",
            "The most batches (requests) the pod held at once, waiting or running, since start",
            ["model"],
            registry=self.registry,
        )
        self._held: dict[str, int] = {}
        self._peak: dict[str, int] = {}
        self._ready = Gauge("simpod_ready", "1 when the pod is ready", registry=self.registry)
        for model in models:
            self._pending.labels(model).set(0)
            self._batch.labels(model)
            self._running.labels(model).set(0)
            self._held_max.labels(model).set(0)
            for name, (_doc, label_names) in _COUNTERS.items():
                if label_names == ("model",):
                    self._counters.inc(name, (model,), 0.0)
            for reason in FAILURE_REASONS:
                self._counters.inc("nv_inference_request_failure", (model, reason), 0.0)
        for device in range(devices):
            self._busy.labels(str(device)).inc(0)

    def set_ready(self, ready: bool) -> None:
        self._ready.set(1 if ready else 0)

    def pending(self, model: str, delta: int) -> None:
        self._pending.labels(model).inc(delta)

    def held(self, model: str, delta: int) -> None:
        """A request arrived (+1) or left (-1); the gauge keeps the most held at once."""
        held = self._held[model] = self._held.get(model, 0) + delta
        if held > self._peak.get(model, 0):
            self._peak[model] = held
            self._held_max.labels(model).set(held)

    def running(self, model: str, delta: int) -> None:
        self._running.labels(model).inc(delta)

    def device_busy(self, device: int, seconds: float) -> None:
        self._busy.labels(str(device)).inc(seconds)

    def success(
        self, model: str, rows: int, queue_s: float, compute_s: float, total_s: float
    ) -> None:
        key = (model,)
        self._counters.inc("nv_inference_request_success", key)
        self._counters.inc("nv_inference_count", key, rows)
        self._counters.inc("nv_inference_exec_count", key)
        self._counters.inc("nv_inference_request_duration_us", key, total_s * 1e6)
        self._counters.inc("nv_inference_queue_duration_us", key, queue_s * 1e6)
        self._counters.inc("nv_inference_compute_infer_duration_us", key, compute_s * 1e6)
        self._batch.labels(model).observe(rows)

    def failure(self, model: str, reason: str, total_s: float) -> None:
        self._counters.inc("nv_inference_request_failure", (model, reason))
        self._counters.inc("nv_inference_request_duration_us", (model,), total_s * 1e6)

    def counter(self, name: str, *labels: str) -> float:
        """The current value of one Triton counter series (for tests and logs)."""
        return self._counters.value(name, labels)

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)
