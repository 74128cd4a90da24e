"""A pod's own account of its device time, for the cost model of a pod this replica shares.

The gateway times a batch from its answer (``timeline``): right while it alone sends to the
pod, since it knows which of its batches each one waited behind. A pod shared with other
gateway replicas also runs their batches, unseen, and the wait behind them would read as
device time (a fitted F twice the true one). Triton counts the device time itself, per batch
size, in ``ModelStatistics.batch_stats`` (compute input + infer + output; so does simpod);
``BatchStatsDelta`` turns two successive readings into the batches run since, by size, with
their mean time: samples for the cost model that no other replica's batch can inflate.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["BatchStatsDelta", "SizeSample", "batch_stats"]


@dataclass(frozen=True, slots=True)
class SizeSample:
    """``batches`` batches of ``rows`` rows took ``mean_s`` of device time each."""

    rows: int
    batches: int
    mean_s: float


def batch_stats(model_stats: Any) -> list[tuple[int, int, int]]:
    """(batch size, executions, device ns) from one ``ModelStatistics`` message."""
    out = []
    for entry in model_stats.batch_stats:
        ns = entry.compute_input.ns + entry.compute_infer.ns + entry.compute_output.ns
        out.append((int(entry.batch_size), int(entry.compute_infer.count), int(ns)))
    return out


class BatchStatsDelta:
    """Successive readings of one pod's cumulative batch statistics, as samples."""

    def __init__(self) -> None:
        self._last: dict[int, tuple[int, int]] | None = None

    def update(self, reading: Iterable[tuple[int, int, int]]) -> list[SizeSample]:
        """The batches run since the previous reading (none on the first: a baseline). Counts
        that went down mean the pod restarted: the reading is the new baseline."""
        now = {size: (count, ns) for size, count, ns in reading if size > 0}
        last, self._last = self._last, now
        if last is None or any(now.get(s, (0, 0))[0] < c for s, (c, _) in last.items()):
            return []
        out = []
        for size, (count, ns) in sorted(now.items()):
            before_count, before_ns = last.get(size, (0, 0))
            batches = count - before_count
            if batches > 0 and ns >= before_ns:
                out.append(SizeSample(size, batches, (ns - before_ns) / batches / 1e9))
        return out
