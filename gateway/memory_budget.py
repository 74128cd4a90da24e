"""One budget for the bytes of every request the gateway holds, whichever front-end read it.

A request's bytes are held from the moment its size is known (an HTTP head's Content-Length,
each chunk of a chunked body, a gRPC message) until it is answered: read, decoded, queued,
merged into a batch and in flight to a pod. Past the budget a new request is refused at once
(HTTP 429 / gRPC RESOURCE_EXHAUSTED, before its body is read), so a flood of large bodies
costs the gateway a bounded amount of memory and every request it did admit is answered.
Pure: no I/O, no clock; the front-ends hold a ``Lease`` per request.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["BudgetCollector", "Lease", "MemoryBudget", "budget_full"]


class Lease:
    """The bytes one request holds; ``grow`` for a body that arrives in chunks; ``release``
    once (more calls do nothing)."""

    __slots__ = ("_budget", "bytes")

    def __init__(self, budget: MemoryBudget, n: int) -> None:
        self._budget: MemoryBudget | None = budget
        self.bytes = n

    def grow(self, n: int) -> bool:
        """Hold ``n`` bytes more; False (holding nothing more) past the budget."""
        budget = self._budget
        if budget is None or not budget._take(n):
            return False
        self.bytes += n
        return True

    def release(self) -> None:
        budget, self._budget = self._budget, None
        if budget is not None:
            budget._give(self.bytes)


class MemoryBudget:
    """``limit`` bytes shared by every request in the gateway (0: no limit)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self.peak = 0
        self.refused = 0  # requests (or chunks) refused for want of room

    def try_acquire(self, n: int) -> Lease | None:
        """A lease of ``n`` bytes, or None when they would pass the budget."""
        return Lease(self, n) if self._take(n) else None

    def _take(self, n: int) -> bool:
        if self.limit and self.in_use + n > self.limit:
            self.refused += 1
            return False
        self.in_use += n
        self.peak = max(self.peak, self.in_use)
        return True

    def _give(self, n: int) -> None:
        self.in_use = max(0, self.in_use - n)


def budget_full(budget: MemoryBudget, n: int) -> str:
    """The refusal's message: what the request needs and what the gateway holds."""
    return (
        f"the gateway's memory budget is full: {budget.in_use} of {budget.limit} bytes held "
        f"by requests in progress, this one needs {max(0, n)}; retry later"
    )


class BudgetCollector(Collector):
    """The budget on the metrics page, read at scrape time."""

    def __init__(self, budget: MemoryBudget) -> None:
        self._budget = budget

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        b = self._budget
        yield GaugeMetricFamily(
            "gateway_memory_budget_bytes", "Bytes the memory budget allows (0: none)", b.limit
        )
        yield GaugeMetricFamily(
            "gateway_memory_held_bytes",
            "Bytes of requests being read, queued or in flight",
            b.in_use,
        )
        yield GaugeMetricFamily(
            "gateway_memory_held_peak_bytes", "The most bytes held at once since start", b.peak
        )
        yield CounterMetricFamily(
            "gateway_memory_budget_refusals",
            "Requests refused because the memory budget was full",
            b.refused,
        )
