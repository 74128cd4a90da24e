"""A tenant's quota: a token bucket of rows, refilled at a rate up to a burst."""

from __future__ import annotations

import math

__all__ = ["TokenBucket", "default_burst"]

_SLACK = 1e-9  # tokens: float refill must not refuse a request that is exactly due


def default_burst(rate: float) -> int:
    """The burst when none is given: one second of rows, at least one row."""
    return max(1, math.ceil(rate))


class TokenBucket:
    """Holds up to ``burst`` rows, starts full and refills at ``rate`` rows a second.

    The caller passes the time (any monotonic clock) and holds a lock if threads share it.
    """

    __slots__ = ("_last", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._last = now

    def tokens(self, now: float) -> float:
        """Rows that could be taken at ``now``."""
        self._refill(now)
        return self._tokens

    def take(self, rows: int, now: float) -> float:
        """Take ``rows`` and return 0.0, or take nothing and return the seconds until there are
        enough (``math.inf`` when ``rows`` is over the burst: it can never pass)."""
        self._refill(now)
        if rows <= 0:
            return 0.0
        if rows > self.burst:
            return math.inf
        if self._tokens + _SLACK >= rows:
            self._tokens = max(0.0, self._tokens - rows)
            return 0.0
        return (rows - self._tokens) / self.rate

    def _refill(self, now: float) -> None:
        elapsed = now - self._last
        if elapsed > 0:  # a clock that steps back refills nothing
            self._tokens = min(float(self.burst), self._tokens + elapsed * self.rate)
            self._last = now
