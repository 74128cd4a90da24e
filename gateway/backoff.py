"""Reconnect delays: capped exponential backoff with jitter. Pure; randomness injected."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

__all__ = ["Backoff"]


@dataclass(slots=True)
class Backoff:
    """``next()`` gives a delay drawn uniformly from [c/2, c], c = min(cap, base·2^failures)
    ("equal jitter": never a hot loop, and replicas that lost the API server together do not
    come back together); ``reset()`` after a success."""

    base_s: float = 0.2
    cap_s: float = 30.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def ceiling(self) -> float:
        return min(self.cap_s, self.base_s * 2.0 ** min(self.failures, 62))

    def next(self) -> float:
        ceiling = self.ceiling()
        delay = self.rng.uniform(ceiling / 2, ceiling)
        self.failures += 1
        return delay

    def reset(self) -> None:
        self.failures = 0
