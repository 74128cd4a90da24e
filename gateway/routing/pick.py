"""The routing choice: which pod gets the next batch. Pure; randomness is injected."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Protocol, TypeVar

__all__ = ["Routable", "pick_pod"]


class Routable(Protocol):
    """What the router reads of a pod."""

    @property
    def outstanding_rows(self) -> int: ...


P = TypeVar("P", bound="Routable")


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
