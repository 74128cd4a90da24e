"""An overhead-free batcher on a device of cost ``F + c·n``, simulated: the latency a real one
is measured against. Pure.

Poisson arrivals of one row each; one device; the moment it frees (or, idle, the moment a row
arrives) the batcher hands it every row waiting, up to the max batch, with no network, no
decision cost and no margin, and the device holds the batch for ``F + c·n``. A real batcher of
the same greedy kind (the gateway's at high load, Triton's once its delay has passed) pays
everything else on top: HTTP in and out, its own queue and decisions, the wire to the pod.
Greedy is not proven optimal for the tail (holding a lone row can pay off at low load), so this
is a yardstick, not a bound.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["IdealFigures", "ideal_batcher", "simulate"]


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
    """Simulate ``seconds`` of arrivals at ``rows_per_s``; the batches that start with the
    first ``warmup`` share of the rows are left out of every figure (the queue starts empty)."""
    if rows_per_s <= 0 or seconds <= 0 or max_batch < 1:
        raise ValueError("rows_per_s, seconds and max_batch must be > 0")
    rng = np.random.default_rng(seed)
    n = max(1, int(rows_per_s * seconds))
    arrivals = np.cumsum(rng.exponential(1e3 / rows_per_s, n))  # ms
    latency, firsts = simulate(arrivals, fixed_ms, per_row_ms, max_batch)
    sizes = np.diff(np.append(firsts, n))
    skip = int(np.searchsorted(firsts, int(warmup * n)))  # the first batch past the warm-up
    if skip >= len(firsts):  # too few rows to leave any out
        skip = 0
    kept = latency[int(firsts[skip]) :]
    return IdealFigures(
        rows_per_s,
        float(np.percentile(kept, 50)),
        float(np.percentile(kept, 99)),
        float(np.mean(sizes[skip:])),
    )


def simulate(
    arrivals: np.ndarray, fixed_ms: float, per_row_ms: float, max_batch: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each row's latency (ms) for ``arrivals`` (ms, ascending), and the index of each batch's
    first row."""
    n = len(arrivals)
    latency = np.empty(n)
    firsts: list[int] = []
    i, free = 0, 0.0
    while i < n:
        start = max(free, float(arrivals[i]))
        j = min(int(np.searchsorted(arrivals, start, side="right")), i + max_batch)
        end = start + fixed_ms + per_row_ms * (j - i)
        latency[i:j] = end - arrivals[i:j]
        firsts.append(i)
        free, i = end, j
    return latency, np.asarray(firsts, dtype=np.int64)
