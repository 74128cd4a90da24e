"""A clock the test moves by hand: pass it wherever the code takes ``clock``."""

from __future__ import annotations

__all__ = ["Clock"]


class Clock:
    """Reads ``now``; the test sets or advances it."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
