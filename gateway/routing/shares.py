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

With fewer pods than replicas, splitting a pod's slots costs dearly: each replica batches only
its share of the arrivals, so to keep up it waits twice as long for a batch as one batcher
would, and the pod runs the replicas' batches in turn. So when every replica that would own a
pod told the coordinator where it takes requests (its peer address), the first ``P`` replicas
each own one pod whole and batch for it as a lone gateway would, and the others hold no slot:
they send their requests on to the owners (``forward_to``; gateway/routing/forward.py), so each
pod has one batcher.

Laid out over the pods Kubernetes calls ready (the same EndpointSlices reach every replica),
not over one replica's own probe view, so the replicas agree. If none of a replica's pods is
usable to it, it takes an equal share of the ones that are (``fallback``): never starved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

__all__ = ["SlotShares", "Slotted", "fallback_share", "layout", "owners"]


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


def owners(replicas: Mapping[str, str], pods: Sequence[str]) -> dict[str, str] | None:
    """With fewer pods than replicas, the replica owning each pod (the first ``P`` replicas by
    id, in the pods' order) when each of them has a peer address; else None (split slots)."""
    peers, ordered = sorted(replicas), sorted(set(pods))
    if not ordered or len(ordered) >= len(peers):
        return None
    chosen = dict(zip(ordered, peers, strict=False))
    return chosen if all(replicas[r] for r in chosen.values()) else None


def fallback_share(replicas: int, slots: int) -> int:
    """An equal share of one pod's slots among ``replicas`` (at least one)."""
    return max(1, slots // max(1, replicas))


class SlotShares:
    """One model's share for this replica, recomputed only when its inputs change."""

    def __init__(self) -> None:
        self.me = ""
        self.replicas: tuple[str, ...] = ()  # from the coordinator; () until it answers
        self.addresses: dict[str, str] = {}  # their peer addresses ("": none)
        self._key: tuple[object, ...] = ()
        self._limits: dict[str, int] = {}
        self._owners_key: tuple[object, ...] = ()
        self._owners: dict[str, str] | None = None

    @property
    def active(self) -> bool:
        """Whether another replica shares the pods (else every slot is this replica's)."""
        return any(r != self.me for r in self.replicas)

    def set_replicas(self, me: str, replicas: Sequence[str] | Mapping[str, str]) -> bool:
        """The coordinator's latest list (ids, or ids with their peer addresses); True when
        it changed."""
        new = tuple(sorted(set(replicas)))
        addresses = {r: replicas[r] for r in new} if isinstance(replicas, Mapping) else {}
        if (me, new, addresses) == (self.me, self.replicas, self.addresses):
            return False
        self.me, self.replicas, self.addresses = me, new, addresses
        return True

    def owners(self, pods: Sequence[str]) -> dict[str, str] | None:
        """``owners`` of these pods (None: their slots are split), cached."""
        key = (self.replicas, self.me, tuple(pods), tuple(self.addresses.items()))
        if key != self._owners_key:
            self._owners_key = key
            peers = {r: self.addresses.get(r, "") for r in {*self.replicas, self.me}}
            self._owners = owners(peers, pods) if self.active else None
        return self._owners

    def forward_to(self, pods: Sequence[str]) -> tuple[str, ...]:
        """The owners' peer addresses when this replica owns none of ``pods`` (the pods
        Kubernetes calls ready) and sends its requests on to them; else ()."""
        owned = self.owners(pods)
        if owned is None or self.me in owned.values():
            return ()
        return tuple(self.addresses[r] for r in owned.values())

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
        """This replica's slots of each pod: the pod it owns whole, else ``layout``; cached."""
        owned = self.owners(pods)
        key = (self.replicas, self.me, tuple(pods), slots, owned is None)
        if key != self._key:
            self._key = key
            if owned is None:
                self._limits = layout(self.replicas, self.me, pods, slots)
            else:
                self._limits = {p: slots for p, r in owned.items() if r == self.me}
        return self._limits
