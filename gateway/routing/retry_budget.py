"""The retry budget, as Envoy's: retries in progress at most a percentage of active batches,
with a floor, so failures never turn into a retry storm."""

from __future__ import annotations

import math
from collections.abc import Callable

__all__ = ["RetryBudget"]


class RetryBudget:
    """Counts retries in progress; a retry ends when ``done()`` says so (its requests are all
    answered), checked on each new attempt, so nothing can leak the count."""

    def __init__(self, *, percent: float = 20.0, floor: int = 3) -> None:
        self.percent = percent
        self.floor = floor
        self._running: list[Callable[[], bool]] = []
        self.granted = 0
        self.refused = 0

    def limit(self, active: int) -> int:
        """Retries allowed at once with ``active`` batches in flight."""
        return max(self.floor, math.floor(active * self.percent / 100))

    def in_progress(self) -> int:
        self._running = [d for d in self._running if not d()]
        return len(self._running)

    def try_start(self, active: int, done: Callable[[], bool]) -> bool:
        """Start a retry if the budget allows; ``done`` tells when it has ended."""
        if self.in_progress() >= self.limit(active):
            self.refused += 1
            return False
        self._running.append(done)
        self.granted += 1
        return True
