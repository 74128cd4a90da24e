"""A model's request queues: one bounded FIFO per priority level, Triton's queue policy semantics.

Pure: time is passed in. Level 1 is the highest priority. A request whose queue timeout passes
is rejected (REJECT) or moved behind every other request (DELAY); its hard deadline (the
caller's) always rejects it.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any

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


def _expiry(p: Pending) -> float:
    return p.deadline if p.delayed else min(p.deadline, p.queue_deadline)


class BatchQueue:
    """Priority levels of FIFO queues plus the delayed queue (DELAY requests past timeout)."""

    def __init__(self, levels: int) -> None:
        self._levels: list[deque[Pending]] = [deque() for _ in range(max(1, levels))]
        self._delayed: deque[Pending] = deque()
        self.requests = 0
        self.rows = 0
        # The earliest expiry of a queued request; may be early (after a take), never late.
        self._soonest = math.inf
        self._cancelled = False  # a request was cancelled since the last expire()

    @property
    def levels(self) -> int:
        return len(self._levels)

    def resize(self, levels: int) -> None:
        """Change the number of levels, keeping every request (extra levels fold into the last)."""
        levels = max(1, levels)
        old = [p for q in self._levels for p in q]
        self._levels = [deque() for _ in range(levels)]
        for p in old:
            p.level = min(p.level, levels)
            self._levels[p.level - 1].append(p)

    def level_sizes(self) -> list[tuple[int, int, int]]:
        """(level, requests, rows) per level; the delayed queue is reported as level 0."""
        sizes = [(i + 1, len(q), sum(p.rows for p in q)) for i, q in enumerate(self._levels)]
        return [(0, len(self._delayed), sum(p.rows for p in self._delayed)), *sizes]

    def admit(self, pending: Pending, policy: QueuePolicy) -> None:
        """Queue a request at its level, or raise QueueFull."""
        queue = self._levels[pending.level - 1]
        if policy.max_queue_size and len(queue) >= policy.max_queue_size:
            raise QueueFull(pending.level, len(queue))
        queue.append(pending)
        self.requests += 1
        self.rows += pending.rows
        self._soonest = min(self._soonest, _expiry(pending))

    def cancel(self, pending: Pending) -> None:
        """The caller went away: the request is skipped, and removed at the next expire()."""
        pending.cancelled = True
        self._cancelled = True

    def __iter__(self) -> Iterator[Pending]:
        """Every live request in service order: levels high to low, then delayed."""
        for queue in (*self._levels, self._delayed):
            for p in queue:
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
        for queue in (*self._levels, self._delayed):
            keep: deque[Pending] = deque()
            for p in queue:
                if p.cancelled:
                    self._drop(p)
                elif now >= p.deadline or (
                    now >= p.queue_deadline and p.action is TimeoutAction.REJECT
                ):
                    self._drop(p)
                    expired.append(p)
                elif now >= p.queue_deadline and not p.delayed:
                    p.delayed = True
                    self._delayed.append(p)
                else:
                    keep.append(p)
            queue.clear()
            queue.extend(keep)
        self._soonest = min(
            (_expiry(p) for q in (*self._levels, self._delayed) for p in q), default=math.inf
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
        service order while they fit in ``max_rows`` (a request is never split)."""
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
        """Put a batch that could not be sent back at the front of its levels, in order."""
        for p in reversed(batch):
            if p.cancelled:
                continue
            p.done = False
            (self._delayed if p.delayed else self._levels[p.level - 1]).appendleft(p)
            self.requests += 1
            self.rows += p.rows
            self._soonest = min(self._soonest, _expiry(p))

    def take(self, batch: list[Pending]) -> None:
        """Remove a batch returned by peek()."""
        if len(batch) == 1:  # the head alone (the common case at low load)
            head = batch[0]
            queue = self._delayed if head.delayed else self._levels[head.level - 1]
            if queue and queue[0] is head:
                queue.popleft()
                self._drop(head)
                return
        chosen = {id(p) for p in batch}
        for queue in (*self._levels, self._delayed):
            if any(id(p) in chosen for p in queue):
                keep = [p for p in queue if id(p) not in chosen]
                queue.clear()
                queue.extend(keep)
        for p in batch:
            self._drop(p)
