"""Open-loop arrival schedules: when each request is due, fixed before the run starts. Pure.

A schedule is an array of offsets in seconds from the run's start, ascending. Poisson arrivals
have exponential inter-arrival times drawn from a seeded generator, so a run can be replayed;
constant arrivals are evenly spaced. K generator processes each take ``rate / K`` with their own
seed: the union of K independent Poisson processes of rate λ/K is a Poisson process of rate λ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = ["ARRIVAL_KINDS", "ArrivalSpec", "offsets", "process_spec"]

ArrivalKind = Literal["poisson", "constant"]
ARRIVAL_KINDS: tuple[ArrivalKind, ...] = ("poisson", "constant")


@dataclass(frozen=True, slots=True)
class ArrivalSpec:
    """``rate`` arrivals per second over ``duration_s`` seconds, Poisson or evenly spaced."""

    rate: float
    duration_s: float
    kind: ArrivalKind = "poisson"
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.rate > 0:
            raise ValueError(f"rate must be > 0, got {self.rate}")
        if not self.duration_s > 0:
            raise ValueError(f"duration must be > 0, got {self.duration_s}")
        if self.kind not in ARRIVAL_KINDS:
            raise ValueError(f"unknown arrival kind {self.kind!r}; expected one of {ARRIVAL_KINDS}")


def process_spec(spec: ArrivalSpec, index: int, processes: int) -> ArrivalSpec:
    """The share of generator process ``index`` of ``processes``: rate/K, its own seed.

    Constant arrivals are staggered instead: process i's schedule is shifted by i/rate, so the
    processes together are evenly spaced at ``rate``.
    """
    if not 0 <= index < processes:
        raise ValueError(f"process index {index} outside 0..{processes - 1}")
    return ArrivalSpec(
        rate=spec.rate / processes,
        duration_s=spec.duration_s,
        kind=spec.kind,
        seed=spec.seed * 1_000_003 + index,
    )


def offsets(spec: ArrivalSpec, *, phase_s: float = 0.0) -> np.ndarray:
    """Every arrival's offset (seconds, float64, ascending) in ``[0, duration_s)``.

    ``phase_s`` shifts constant arrivals (see ``process_spec``); Poisson ones ignore it.
    """
    if spec.kind == "constant":
        n = int(np.ceil(spec.duration_s * spec.rate))
        times = phase_s % (1.0 / spec.rate) + np.arange(n, dtype=np.float64) / spec.rate
        return times[times < spec.duration_s]
    rng = np.random.default_rng(spec.seed)
    expected = spec.rate * spec.duration_s
    chunk = int(expected + 6 * np.sqrt(expected) + 16)  # almost always enough in one draw
    parts: list[np.ndarray] = []
    last = 0.0
    while last < spec.duration_s:
        times = last + np.cumsum(rng.exponential(1.0 / spec.rate, chunk))
        parts.append(times)
        last = float(times[-1])
    times = np.concatenate(parts)
    return times[times < spec.duration_s]
