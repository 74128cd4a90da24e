"""Several gateway replicas on the same pods: the slots of each pod that one replica may fill.

A pod takes ``S`` batches in flight (its devices plus one waiting). Each replica sees every pod
and, left alone, would fill all ``S`` of each, so that N replicas put N·S batches on a pod: the
extra ones queue there, their wait reads as device time and the fitted cost, the just-in-time
sends and the admission estimates all go wrong. So the replicas divide the slots.

The coordinator (the autoscaler, which hears every replica's reports) answers each report with
the sorted ids of the replicas sharing the model's pods; each replica then lays the slots out
the same way, with no further exchange: the pods sorted by address, their ``S`` slots one after
the other, and each replica in id order taking the next ``⌊P·S/N⌋`` (the first ``P·S mod N``
one more). So with as many pods as replicas or more, a replica holds whole pods (it batches
for them as a lone gateway would) and at most two pods are split; with fewer, the pods' slots
are split between replicas. When there are more replicas than slots, each still gets one (the
pod then queues the excess: progress over strictness).

Laid out over the pods Kubernetes calls ready (the same EndpointSlices reach every replica),
not over one replica's own probe view, so the replicas agree. If none of a replica's pods is
usable to it, it takes an equal share of the ones that are (``fallback``): never starved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

__all__ = ["SlotShares", "Slotted", "fallback_share", "layout"]


class Slotted(Protocol):
    """A pod as far as its slots go (a routing ``Pod``, or the scheduler's view of one)."""

    @property
    def address(self) -> str: ...
    @property
    def slots(self) -> int: ...


def layout(replicas: Sequence[str], me: str, pods: Sequence[str], slots: int) -> dict[str, int]:
    """The slots of each pod (by address) that replica ``me`` may fill; pods absent get none."""
    peers = sorted({*replicas, me})
    ordered = sorted(set(pods))
    total = len(ordered) * max(0, slots)
    if not ordered or slots <= 0:
        return {}
    n, i = len(peers), peers.index(me)
    if total < n:  # more replicas than slots: one each, round the slots
        k = i % total
        return {ordered[k // slots]: 1}
    quota, extra = divmod(total, n)
    start = i * quota + min(i, extra)
    end = start + quota + (1 if i < extra else 0)
    out: dict[str, int] = {}
    for k in range(start, end):
        pod = ordered[k // slots]
        out[pod] = out.get(pod, 0) + 1
    return out


def fallback_share(replicas: int, slots: int) -> int:
    """An equal share of one pod's slots among ``replicas`` (at least one)."""
    return max(1, slots // max(1, replicas))


class SlotShares:
    """One model's share for this replica, recomputed only when its inputs change."""

    def __init__(self) -> None:
        self.me = ""
        self.replicas: tuple[str, ...] = ()  # from the coordinator; () until it answers
        self._key: tuple[object, ...] = ()
        self._limits: dict[str, int] = {}

    @property
    def active(self) -> bool:
        """Whether another replica shares the pods (else every slot is this replica's)."""
        return any(r != self.me for r in self.replicas)

    def set_replicas(self, me: str, replicas: Sequence[str]) -> bool:
        """The coordinator's latest list; True when it changed."""
        new = tuple(sorted(set(replicas)))
        if (me, new) == (self.me, self.replicas):
            return False
        self.me, self.replicas = me, new
        return True

    def of_view(self, view: Sequence[Slotted], members: Sequence[str]) -> dict[str, int]:
        """This replica's slots of each pod, laid out over ``members`` (the pods Kubernetes
        calls ready, which every replica sees alike); when none of its own is in ``view``
        (the pods it can use now), an equal share of each of those."""
        slots = max((p.slots for p in view), default=0)
        limits = self.limits(members, slots)
        if not any(limits.get(p.address, 0) for p in view):
            share = fallback_share(len(self.replicas), slots)
            return {p.address: share for p in view}
        return limits

    def limits(self, pods: Sequence[str], slots: int) -> dict[str, int]:
        """``layout`` for these pods and slots, cached."""
        key = (self.replicas, self.me, tuple(pods), slots)
        if key != self._key:
            self._key = key
            self._limits = layout(self.replicas, self.me, pods, slots)
        return self._limits
