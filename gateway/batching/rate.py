"""Arrival rate as an exponentially decaying average; time is passed in, never read."""

from __future__ import annotations

import math

__all__ = ["RateEstimator"]


class RateEstimator:
    """Rows (or requests) per second over roughly the last ``horizon_s`` seconds."""

    def __init__(self, *, horizon_s: float = 1.0) -> None:
        self._tau = horizon_s
        self._rate = 0.0
        self._at: float | None = None

    def _decay_to(self, now: float) -> None:
        if self._at is not None and now > self._at:
            self._rate *= math.exp(-(now - self._at) / self._tau)
        if self._at is None or now > self._at:
            self._at = now

    def record(self, amount: float, now: float) -> None:
        self._decay_to(now)
        self._rate += amount / self._tau

    def rate(self, now: float) -> float:
        self._decay_to(now)
        return self._rate
