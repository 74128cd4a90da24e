"""What the goodput benchmark reads from the stack over a measurement window.

At the window's start and end it reads the CPU seconds of the gateway and of each pod, and the
gateway's ``/metrics`` (the ``gateway_batch_rows`` histogram's sum and count, per model), so the
deltas give CPU per request and the mean batch size over exactly that window.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from loadtest.benches.ab import CpuSource

__all__ = [
    "BatchCounts",
    "StackProbe",
    "batch_counts",
    "parse_batch_counts",
    "parse_inflight",
    "wait_idle",
]


@dataclass(frozen=True, slots=True)
class BatchCounts:
    """Cumulative rows sent in batches, and batches sent, for one model."""

    rows: float = 0.0
    batches: float = 0.0

    def __sub__(self, other: BatchCounts) -> BatchCounts:
        return BatchCounts(self.rows - other.rows, self.batches - other.batches)

    @property
    def mean(self) -> float | None:
        return self.rows / self.batches if self.batches > 0 else None


def parse_batch_counts(text: str, model: str) -> BatchCounts:
    """``gateway_batch_rows`` sum and count for ``model`` from Prometheus text (zeros if absent)."""
    rows = batches = 0.0
    for family in text_string_to_metric_families(text):
        if family.name != "gateway_batch_rows":
            continue
        for sample in family.samples:
            if sample.labels.get("model") != model:
                continue
            if sample.name.endswith("_sum"):
                rows = sample.value
            elif sample.name.endswith("_count"):
                batches = sample.value
    return BatchCounts(rows, batches)


def parse_inflight(text: str, model: str) -> float | None:
    """``gateway_inflight_requests`` (admitted, not yet answered) for ``model``, if exported."""
    for family in text_string_to_metric_families(text):
        if family.name == "gateway_inflight_requests":
            for sample in family.samples:
                if sample.labels.get("model") == model:
                    return sample.value
    return None


def _scrape(metrics_url: str, timeout_s: float = 2.0) -> str | None:
    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout_s) as resp:
            return str(resp.read().decode("utf-8", "replace"))
    except OSError:
        return None


def batch_counts(metrics_url: str, model: str) -> BatchCounts | None:
    """The gateway's batch counts now, or None when its metrics cannot be read."""
    text = _scrape(metrics_url)
    return None if text is None else parse_batch_counts(text, model)


def wait_idle(metrics_url: str, model: str, timeout_s: float) -> float:
    """Wait (bounded) until the gateway holds no admitted request of ``model``, so one step's
    backlog does not spill into the next; returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        text = _scrape(metrics_url)
        inflight = None if text is None else parse_inflight(text, model)
        if not inflight:
            break
        time.sleep(0.2)
    return time.monotonic() - start


@dataclass
class StackProbe:
    """A ``WindowProbe``: CPU seconds of each process and the gateway's batch counts."""

    procs: Mapping[str, CpuSource]
    metrics_url: str | None  # None: batch counts are not read
    model: str = "sim"
    cpu_s: dict[str, float] = field(default_factory=dict)
    batches: BatchCounts | None = None
    _cpu0: dict[str, float] = field(default_factory=dict)
    _batches0: BatchCounts | None = None

    def start(self) -> None:
        if self.metrics_url is not None:  # read before the CPU, so its cost is not counted
            self._batches0 = batch_counts(self.metrics_url, self.model)
        self._cpu0 = {name: p.cpu_seconds() for name, p in self.procs.items()}

    def stop(self) -> None:
        self.cpu_s = {name: p.cpu_seconds() - self._cpu0[name] for name, p in self.procs.items()}
        end = None if self.metrics_url is None else batch_counts(self.metrics_url, self.model)
        self.batches = None if end is None or self._batches0 is None else end - self._batches0
