"""What a model's scheduler holds at one moment: read by the load reporter and the metrics."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PodView", "SchedulerState"]


@dataclass(frozen=True, slots=True)
class PodView:
    """One pod as the scheduler sees it."""

    address: str
    in_flight: int  # batches sent, not yet answered
    outstanding_rows: int
    ready: bool
    slots: int  # batches it may hold


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
    def inflight_rows(self) -> int:
        return sum(p.outstanding_rows for p in self.pods)
