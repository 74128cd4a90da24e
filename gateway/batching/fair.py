"""One priority level shared across tenants by weight: start-time fair queuing. Pure.

Each tenant has a FIFO lane. On admission a request starts at the later of the level's virtual
time and its tenant's previous finish tag, and finishes ``rows / weight`` later; the level is
served in finish-tag order (ties by admission), and serving a request advances the virtual time
to its start. A flooding tenant's tags race ahead, a light tenant's land near the virtual time,
i.e. near the front, and a tenant idle for a while restarts at the virtual time: no credit is
banked. A request that leaves unserved (expired, cancelled, evicted) gives its tag back, so a
tenant whose flood expired is not held behind its own ghosts. With one tenant the order is FIFO.
"""

from __future__ import annotations

import heapq
import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gateway.batching.queue import Pending

__all__ = ["MIN_WEIGHT", "FairLevel", "Lane"]

MIN_WEIGHT = 1e-3  # a weight of 0 or less is taken as this: tags stay finite


def _order(p: Pending) -> tuple[float, int]:
    return (p.tag, p.seq)


@dataclass(slots=True)
class Lane:
    """One tenant's FIFO at one level."""

    items: deque[Pending] = field(default_factory=deque)
    weight: float = 1.0  # the weight its newest request arrived with
    rows: int = 0
    last: float = 0.0  # the finish tag its next request starts from (at least)
    served: float = 0.0  # the finish tag of its newest request served


class FairLevel:
    """The lanes of one priority level, their virtual time and their counts."""

    __slots__ = ("lanes", "rows", "size", "vtime")

    def __init__(self) -> None:
        self.lanes: dict[str, Lane] = {}
        self.vtime = 0.0
        self.size = 0  # requests queued here, cancelled ones included until removed
        self.rows = 0

    def __iter__(self) -> Iterator[Pending]:
        """Every request in service order (cancelled ones included)."""
        if len(self.lanes) == 1:  # one tenant: its FIFO
            [lane] = self.lanes.values()
            return iter(lane.items)
        busy = [lane.items for lane in self.lanes.values() if lane.items]
        if len(busy) == 1:
            return iter(busy[0])
        return heapq.merge(*busy, key=_order)

    def items(self) -> Iterator[Pending]:
        """Every request, in no particular order."""
        for lane in self.lanes.values():
            yield from lane.items

    def _lane(self, tenant: str, weight: float) -> Lane:
        lane = self.lanes.get(tenant)
        if lane is None:
            lane = self.lanes[tenant] = Lane(weight=weight)
        return lane

    def _add(self, lane: Lane, p: Pending) -> None:
        lane.rows += p.rows
        self.size += 1
        self.rows += p.rows

    def _remove(self, lane: Lane, p: Pending) -> None:
        lane.rows -= p.rows
        self.size -= 1
        self.rows -= p.rows

    def push(self, p: Pending) -> None:
        """Tag a new request and queue it at the back of its tenant's lane."""
        weight = max(p.weight, MIN_WEIGHT)
        lane = self._lane(p.tenant, weight)
        lane.weight = weight
        p.start = start = max(self.vtime, lane.last)
        p.tag = lane.last = start + p.rows / weight
        lane.items.append(p)
        self._add(lane, p)

    def push_front(self, p: Pending) -> None:
        """Put a request taken earlier back at the front of its lane, its tags kept."""
        lane = self._lane(p.tenant, max(p.weight, MIN_WEIGHT))
        lane.items.appendleft(p)
        lane.last = max(lane.last, p.tag)
        self._add(lane, p)

    def _served(self, lane: Lane, p: Pending) -> None:
        self._remove(lane, p)
        if p.start > self.vtime:
            self.vtime = p.start
        if p.tag > lane.served:
            lane.served = p.tag

    def pop_front(self, p: Pending) -> bool:
        """Serve ``p`` if it is at the front of its lane (the cheap case); False otherwise."""
        lane = self.lanes.get(p.tenant)
        if lane is None or not lane.items or lane.items[0] is not p:
            return False
        lane.items.popleft()
        self._served(lane, p)
        return True

    def take(self, batch: list[Pending]) -> None:
        """Serve the requests of ``batch`` queued here, wherever they are in their lanes."""
        chosen = {id(p) for p in batch}
        for tenant in {p.tenant for p in batch}:
            lane = self.lanes.get(tenant)
            if lane is None:
                continue
            keep: deque[Pending] = deque()
            for p in lane.items:
                if id(p) in chosen:
                    self._served(lane, p)
                else:
                    keep.append(p)
            lane.items = keep

    def filter(self, stays: Callable[[Pending], bool]) -> list[Pending]:
        """Remove, unserved, every request for which ``stays`` is False; return them in
        service order. Their tags are given back; idle lanes that owe nothing are forgotten."""
        gone: list[list[Pending]] = []
        for lane in self.lanes.values():
            if not lane.items:
                continue
            keep: deque[Pending] = deque()
            left: list[Pending] = []
            for p in lane.items:
                (keep.append if stays(p) else left.append)(p)
            if left:
                for p in left:
                    self._remove(lane, p)
                lane.items = keep
                lane.last = max(lane.served, max((p.tag for p in keep), default=-math.inf))
                gone.append(left)
        for tenant in [t for t, lane in self.lanes.items() if not lane.items]:
            if self.lanes[tenant].last <= self.vtime:
                del self.lanes[tenant]
        if len(gone) == 1:
            return gone[0]
        return list(heapq.merge(*gone, key=_order))

    def evict_for(self, tenant: str, weight: float, max_size: int) -> Pending | None:
        """Make room for a request of ``tenant`` if it holds fewer than its weighted share of
        ``max_size``: remove and return the newest request of the tenant most over its share.
        None: the tenant is at or over its share (the level is full for it)."""
        weight = max(weight, MIN_WEIGHT)
        own = self.lanes.get(tenant)
        held = len(own.items) if own is not None else 0
        others = [lane for t, lane in self.lanes.items() if t != tenant and lane.items]
        total = weight + sum(lane.weight for lane in others)
        if not others or held >= max_size * weight / total:
            return None
        lane = max(others, key=lambda lane: len(lane.items) / lane.weight)
        p = lane.items.pop()
        self._remove(lane, p)
        if p.tag >= lane.last:
            lane.last = max(lane.served, p.start)  # its tag given back
        return p

    def rows_before(self, tenant: str, weight: float, rows: int) -> int:
        """About the rows queued here that would be served before a new request of
        ``tenant``: all of its own, and each other lane's rows tagged before its tag."""
        weight = max(weight, MIN_WEIGHT)
        own = self.lanes.get(tenant)
        start = max(self.vtime, own.last) if own is not None else self.vtime
        tag = start + rows / weight
        ahead = own.rows if own is not None else 0
        for t, lane in self.lanes.items():
            if t == tenant or not lane.items:
                continue
            share = (tag - lane.items[0].start) * lane.weight
            ahead += min(lane.rows, max(0, int(share + 1e-9)))
        return ahead
