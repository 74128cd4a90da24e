"""The routing choice: which pod gets the next batch, and when it should leave. Pure; randomness
is injected."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

from gateway.batching.cost_model import BatchCost

__all__ = ["Routable", "Timed", "choose_pod", "pick_pod"]

SAME_TIME_S = 0.0005  # pods whose devices free this close together count as free at once


class Routable(Protocol):
    """What the router reads of a pod."""

    @property
    def outstanding_rows(self) -> int: ...


class _SendAt(Protocol):
    def send_at(self, fit: BatchCost | None, now: float) -> float: ...


class Timed(Routable, Protocol):
    """A pod with a device timeline: when a batch should leave to reach a device as it frees."""

    @property
    def timeline(self) -> _SendAt: ...


P = TypeVar("P", bound="Routable")
T = TypeVar("T", bound="Timed")


def pick_pod(candidates: Sequence[P], rng: random.Random) -> P | None:
    """Least outstanding rows between two candidates drawn at random (power of two choices).

    Two draws keep a herd from piling onto the one pod that looked idlest a moment ago; a tie
    goes to the first draw, which is itself random.
    """
    if not candidates:
        return None
    if len(candidates) == 1:
        return candidates[0]
    a, b = rng.sample(range(len(candidates)), 2)
    first, second = candidates[a], candidates[b]
    return second if second.outstanding_rows < first.outstanding_rows else first


def choose_pod(
    free: Sequence[T], fit: BatchCost | None, now: float, rng: random.Random
) -> tuple[T, float]:
    """Among pods with a free slot (at least one), the one whose device frees first, and when a
    batch should leave for it; pods free at once (within ``SAME_TIME_S``) are picked between by
    ``pick_pod``."""
    times = [pod.timeline.send_at(fit, now) for pod in free]
    first = min(times)
    soonest = [pod for pod, t in zip(free, times, strict=True) if t <= first + SAME_TIME_S]
    return pick_pod(soonest, rng) or soonest[0], first
