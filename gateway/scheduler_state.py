"""What a model's scheduler holds at one moment: read by the load reporter and the metrics."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["PodView", "SchedulerState", "Unqueued"]


class Unqueued:
    """Requests admitted but not yet in the queue: they wait for the model's spec, which only
    a ready pod can give. They count as queued in the scheduler's state, so a model with no
    pod yet still reports its demand and the autoscaler scales it from zero."""

    __slots__ = ("requests", "rows")

    def __init__(self) -> None:
        self.requests = 0
        self.rows = 0

    @contextlib.contextmanager
    def waiting(self, rows: int) -> Iterator[None]:
        """Count one request of ``rows`` rows while the block runs."""
        self.requests += 1
        self.rows += rows
        try:
            yield
        finally:
            self.requests -= 1
            self.rows -= rows


@dataclass(frozen=True, slots=True)
class PodView:
    """One pod as the scheduler sees it."""

    address: str
    in_flight: int  # batches sent, not yet answered
    outstanding_rows: int
    ready: bool  # Kubernetes and the gateway's probe both say so
    slots: int  # batches it may hold: its devices, plus one waiting on the pod
    devices: int  # batches it runs at once
    terminating: bool  # its endpoint's Kubernetes condition: on its way out

    @property
    def starting(self) -> bool:
        """Neither ready nor terminating: on its way in (or not answering its probe yet)."""
        return not self.ready and not self.terminating


@dataclass(frozen=True, slots=True)
class SchedulerState:
    """The queue's levels, the fitted batch cost, the pods, and counters since start."""

    queued_requests: int
    queued_rows: int
    levels: tuple[tuple[int, int, int], ...]  # (level, requests, rows); level 0: delayed
    arrival_rows_per_s: float
    completed_rows_total: int
    rejected_requests_total: int
    fixed_s: float | None  # the fitted F + c·n, when there is one
    per_row_s: float | None
    max_batch_size: int
    pods: tuple[PodView, ...]

    @property
    def ready_pods(self) -> tuple[PodView, ...]:
        return tuple(p for p in self.pods if p.ready)

    @property
    def starting_pods(self) -> tuple[PodView, ...]:
        return tuple(p for p in self.pods if p.starting)

    @property
    def terminating_pods(self) -> tuple[PodView, ...]:
        return tuple(p for p in self.pods if p.terminating)

    @property
    def inflight_rows(self) -> int:
        return sum(p.outstanding_rows for p in self.pods)
