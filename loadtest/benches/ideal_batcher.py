"""The latency no batcher can beat on a device of cost ``F + c·n``: an ideal one, simulated. Pure.

Poisson arrivals of one row each; one device; the moment it frees, the ideal batcher hands it
every row waiting (up to the max batch), with no network, no decision cost and no margin, and
the device holds the batch for ``F + c·n``. Its p99 at a load is a floor for any real batcher
(the gateway's, Triton's) on the same device: what a p99 SLO leaves for everything else
(HTTP in and out, the queue, the wire to the pod) is the SLO minus that floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["IdealFigures", "ideal_batcher"]


@dataclass(frozen=True, slots=True)
class IdealFigures:
    """One simulated load: latency percentiles in ms and the mean batch."""

    rows_per_s: float
    p50_ms: float
    p99_ms: float
    mean_batch: float


def ideal_batcher(
    rows_per_s: float,
    fixed_ms: float,
    per_row_ms: float,
    max_batch: int,
    *,
    seconds: float = 300.0,
    seed: int = 0,
    warmup: float = 0.1,
) -> IdealFigures:
    """Simulate ``seconds`` of arrivals at ``rows_per_s``; the first ``warmup`` share of the
    requests is left out of the percentiles (the queue starts empty)."""
    if rows_per_s <= 0 or seconds <= 0 or max_batch < 1:
        raise ValueError("rows_per_s, seconds and max_batch must be > 0")
    rng = np.random.default_rng(seed)
    n = max(1, int(rows_per_s * seconds))
    arrivals = np.cumsum(rng.exponential(1e3 / rows_per_s, n))  # ms
    latency = np.empty(n)
    sizes: list[int] = []
    i, free = 0, 0.0
    while i < n:
        start = max(free, float(arrivals[i]))
        j = min(int(np.searchsorted(arrivals, start, side="right")), i + max_batch)
        end = start + fixed_ms + per_row_ms * (j - i)
        latency[i:j] = end - arrivals[i:j]
        sizes.append(j - i)
        free, i = end, j
    kept = latency[int(warmup * n) :]
    return IdealFigures(
        rows_per_s,
        float(np.percentile(kept, 50)),
        float(np.percentile(kept, 99)),
        float(np.mean(sizes)),
    )
