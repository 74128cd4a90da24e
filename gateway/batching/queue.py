"""A model's request queues: one bounded queue per priority level, Triton's queue policy semantics.

Pure: time is passed in. Level 1 is the highest priority. Within a level, tenants share by
weight (``gateway.batching.fair``); with one tenant a level is a FIFO. A request whose queue
timeout passes is rejected (REJECT) or moved behind every other request (DELAY); its hard
deadline (the caller's) always rejects it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

from gateway.batching.fair import FairLevel
from gateway.batching.queue_policy import QueuePolicy, TimeoutAction

__all__ = ["BatchQueue", "Pending", "QueueFull"]


class QueueFull(Exception):
    """The request's priority level is at max_queue_size."""

    def __init__(self, level: int, size: int) -> None:
        super().__init__(f"priority level {level} queue is full ({size} requests)")
        self.level = level


@dataclass(slots=True, eq=False)
class Pending:
    """One queued request as the batching core sees it; ``payload`` is the shell's."""

    rows: int
    key: Hashable
    enqueued: float
    deadline: float = math.inf  # the caller's hard deadline
    queue_deadline: float = math.inf  # the queue policy's timeout
    level: int = 1
    action: TimeoutAction = TimeoutAction.REJECT
    payload: Any = None
    cancelled: bool = False
    delayed: bool = False
    done: bool = field(default=False)
    tenant: str = ""  # whose share of the level it is served from
    weight: float = 1.0  # the tenant's weight
    # Fair queuing's virtual tags (start, finish) and admission order, set on admission.
    start: float = field(default=0.0, init=False, repr=False)
    tag: float = field(default=0.0, init=False, repr=False)
    seq: int = field(default=0, init=False, repr=False)


def _expiry(p: Pending) -> float:
    return p.deadline if p.delayed else min(p.deadline, p.queue_deadline)


class BatchQueue:
    """Priority levels of tenant-fair queues plus the delayed queue (DELAY requests past
    timeout, FIFO)."""

    def __init__(self, levels: int) -> None:
        self._levels: list[FairLevel] = [FairLevel() for _ in range(max(1, levels))]
        self._delayed: deque[Pending] = deque()
        self.requests = 0
        self.rows = 0
        self._seq = 0  # admission order, the tie-break between equal tags
        # The earliest expiry of a queued request; may be early (after a take), never late.
        self._soonest = math.inf
        self._cancelled = False  # a request was cancelled since the last expire()

    @property
    def levels(self) -> int:
        return len(self._levels)

    def resize(self, levels: int) -> None:
        """Change the number of levels, keeping every request (extra levels fold into the last);
        requests keep their service order within a level and are tagged afresh."""
        levels = max(1, levels)
        old = [p for level in self._levels for p in level]
        self._levels = [FairLevel() for _ in range(levels)]
        for p in old:
            p.level = min(p.level, levels)
            self._push(p)

    def level_sizes(self) -> list[tuple[int, int, int]]:
        """(level, requests, rows) per level; the delayed queue is reported as level 0."""
        sizes = [(i + 1, level.size, level.rows) for i, level in enumerate(self._levels)]
        return [(0, len(self._delayed), sum(p.rows for p in self._delayed)), *sizes]

    def tenant_rows(self) -> dict[str, int]:
        """Rows queued per tenant, every level and the delayed queue together."""
        rows: dict[str, int] = {}
        for level in self._levels:
            for tenant, lane in level.lanes.items():
                if lane.rows:
                    rows[tenant] = rows.get(tenant, 0) + lane.rows
        for p in self._delayed:
            rows[p.tenant] = rows.get(p.tenant, 0) + p.rows
        return rows

    def rows_ahead(self, tenant: str, weight: float, rows: int, level: int) -> int:
        """About the rows that would be served before a new request of ``tenant`` at
        ``level``: every row above it and, as in ``rows`` with one tenant, the delayed queue's,
        plus at its level its own rows and each other tenant's rows tagged before its own."""
        index = min(max(1, level), self.levels) - 1
        delayed = self.rows - sum(lv.rows for lv in self._levels)
        above = sum(lv.rows for lv in self._levels[:index])
        return delayed + above + self._levels[index].rows_before(tenant, weight, rows)

    def _push(self, p: Pending) -> None:
        self._seq += 1
        p.seq = self._seq
        self._levels[p.level - 1].push(p)

    def admit(self, pending: Pending, policy: QueuePolicy) -> Pending | None:
        """Queue a request at its level, or raise QueueFull.

        A full level still takes a request of a tenant holding fewer than its weighted share
        of max_queue_size: the newest request of the tenant most over its share is removed to
        make room and returned, for the caller to answer (None: nothing to answer)."""
        level = self._levels[pending.level - 1]
        evicted: Pending | None = None
        if policy.max_queue_size and level.size >= policy.max_queue_size:
            evicted = level.evict_for(pending.tenant, pending.weight, policy.max_queue_size)
            if evicted is None:
                raise QueueFull(pending.level, level.size)
            self._drop(evicted)
            if evicted.cancelled:
                evicted = None  # its caller has gone: nobody to answer
        self._push(pending)
        self.requests += 1
        self.rows += pending.rows
        self._soonest = min(self._soonest, _expiry(pending))
        return evicted

    def cancel(self, pending: Pending) -> None:
        """The caller went away: the request is skipped, and removed at the next expire()."""
        pending.cancelled = True
        self._cancelled = True

    def __iter__(self) -> Iterator[Pending]:
        """Every live request in service order: levels high to low (tenants merged by tag
        within a level), then delayed."""
        for level in self._levels:
            for p in level:
                if not p.cancelled:
                    yield p
        for p in self._delayed:
            if not p.cancelled:
                yield p

    def _drop(self, p: Pending) -> None:
        self.requests -= 1
        self.rows -= p.rows
        p.done = True
        if not self.requests:
            self._soonest = math.inf  # nothing left to expire

    def expire(self, now: float) -> list[Pending]:
        """Remove cancelled requests, and those whose deadline or REJECT timeout has passed.

        Returns the expired ones (to be answered); DELAY requests past their queue timeout move
        to the delayed queue instead.
        """
        expired: list[Pending] = []
        if now < self._soonest and not self._cancelled:
            return expired
        self._cancelled = False

        def stays(p: Pending) -> bool:
            return not p.cancelled and now < p.deadline and now < p.queue_deadline

        for level in self._levels:
            for p in level.filter(stays):
                if p.cancelled:
                    self._drop(p)
                elif now >= p.deadline or p.action is TimeoutAction.REJECT:
                    self._drop(p)
                    expired.append(p)
                else:
                    p.delayed = True
                    self._delayed.append(p)
        keep: deque[Pending] = deque()
        for p in self._delayed:
            if p.cancelled:
                self._drop(p)
            elif now >= p.deadline:
                self._drop(p)
                expired.append(p)
            else:
                keep.append(p)
        self._delayed = keep
        queued = (p for level in self._levels for p in level.items())
        self._soonest = min(
            (_expiry(p) for q in (queued, self._delayed) for p in q), default=math.inf
        )
        return expired

    def next_expiry(self) -> float:
        """The earliest time at which expire() may have work to do (never later than that)."""
        return self._soonest

    def head(self) -> Pending | None:
        """The request served next."""
        return next(iter(self), None)

    def peek(self, max_rows: int) -> list[Pending]:
        """The batch that would be formed now: the head, then requests with its key in
        service order while they fit in ``max_rows`` (a request is never split). Tenants mix
        freely in a batch."""
        head = self.head()
        if head is None:
            return []
        batch: list[Pending] = []
        rows = 0
        for p in self:
            if p is head or (p.key == head.key and rows + p.rows <= max_rows):
                batch.append(p)
                rows += p.rows
                if rows == max_rows:
                    break
        return batch

    def requeue(self, batch: list[Pending]) -> None:
        """Put a batch that could not be sent back at the front of its levels (and of its
        tenants' lanes, its tags kept), in order."""
        for p in reversed(batch):
            if p.cancelled:
                continue
            p.done = False
            if p.delayed:
                self._delayed.appendleft(p)
            else:
                p.level = min(p.level, self.levels)
                self._levels[p.level - 1].push_front(p)
            self.requests += 1
            self.rows += p.rows
            self._soonest = min(self._soonest, _expiry(p))

    def _pop_front(self, p: Pending) -> bool:
        if p.delayed:
            if self._delayed and self._delayed[0] is p:
                self._delayed.popleft()
                return True
            return False
        return self._levels[p.level - 1].pop_front(p)

    def take(self, batch: list[Pending]) -> None:
        """Remove a batch returned by peek() (served: its levels' virtual time advances)."""
        rest = [p for p in batch if not self._pop_front(p)]  # the cheap case: lane fronts
        if rest:
            chosen = {id(p) for p in rest}
            if any(p.delayed for p in rest):
                self._delayed = deque(p for p in self._delayed if id(p) not in chosen)
            for index in {p.level - 1 for p in rest if not p.delayed}:
                self._levels[index].take(
                    [p for p in rest if not p.delayed and p.level - 1 == index]
                )
        for p in batch:
            self._drop(p)
