"""What the goodput benchmark reads from the stack over a measurement window.

At the window's start and end it reads the CPU seconds of the gateway and of each pod
(``probes.cpu``), and the gateway's ``/metrics`` (``probes.metrics``: the ``gateway_batch_rows``
histogram's sum and count, per model), so the deltas give CPU per request and the mean batch
size over exactly that window.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from loadtest.probes.cpu import CpuSource, CpuWindow
from loadtest.probes.metrics import Scrape, fetch_metrics, parse_metrics

__all__ = [
    "BatchCounts",
    "StackProbe",
    "batch_counts",
    "parse_batch_counts",
    "parse_inflight",
    "wait_idle",
]

_TIMEOUT_S = 2.0


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

    @classmethod
    def of(cls, scrape: Scrape, model: str) -> BatchCounts:
        """``gateway_batch_rows`` sum and count for ``model`` in ``scrape`` (zeros if absent)."""
        rows = scrape.total("gateway_batch_rows_sum", model=model)
        batches = scrape.total("gateway_batch_rows_count", model=model)
        return cls(rows or 0.0, batches or 0.0)


def parse_batch_counts(text: str, model: str) -> BatchCounts:
    """``gateway_batch_rows`` sum and count for ``model`` from Prometheus text (zeros if absent)."""
    return BatchCounts.of(parse_metrics(text), model)


def parse_inflight(text: str, model: str) -> float | None:
    """``gateway_inflight_requests`` (admitted, not yet answered) for ``model``, if exported."""
    return _inflight(parse_metrics(text), model)


def _inflight(scrape: Scrape | None, model: str) -> float | None:
    return None if scrape is None else scrape.total("gateway_inflight_requests", model=model)


def batch_counts(metrics_url: str, model: str) -> BatchCounts | None:
    """The gateway's batch counts now, or None when its metrics cannot be read."""
    scrape = fetch_metrics(metrics_url, _TIMEOUT_S)
    return None if scrape is None else BatchCounts.of(scrape, model)


def wait_idle(metrics_url: str, model: str, timeout_s: float) -> float:
    """Wait (bounded) until the gateway holds no admitted request of ``model``, so one step's
    backlog does not spill into the next; returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        scrape = fetch_metrics(metrics_url, _TIMEOUT_S)
        inflight = (
            None if scrape is None else scrape.total("gateway_inflight_requests", model=model)
        )
        if not inflight:
            break
        time.sleep(0.2)
    return time.monotonic() - start


class StackProbe:
    """A ``WindowProbe``: CPU seconds of each process and the gateway's batch counts."""

    def __init__(
        self, procs: Mapping[str, CpuSource], metrics_url: str | None, model: str = "sim"
    ) -> None:
        self.metrics_url = metrics_url  # None: batch counts are not read
        self.model = model
        self.batches: BatchCounts | None = None
        self._cpu = CpuWindow(procs)
        self._batches0: BatchCounts | None = None

    @property
    def cpu_s(self) -> dict[str, float]:
        """CPU seconds each process used over the window."""
        return self._cpu.seconds

    def start(self) -> None:
        if self.metrics_url is not None:  # read before the CPU, so its cost is not counted
            self._batches0 = batch_counts(self.metrics_url, self.model)
        self._cpu.start()

    def stop(self) -> None:
        self._cpu.stop()
        end = None if self.metrics_url is None else batch_counts(self.metrics_url, self.model)
        self.batches = None if end is None or self._batches0 is None else end - self._batches0
