"""A model's scaling spec: the frozen parameters the decider applies (Knative, HPA, beyond)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Mode", "ScalingSpec"]


class Mode(enum.StrEnum):
    """How demand is turned into pods."""

    CONCURRENCY = "concurrency"  # Knative: (in-flight + queued rows) ÷ target rows per pod
    CAPACITY = "capacity"  # arrival rate ÷ per-pod throughput at the latency target's batch size


@dataclass(frozen=True, slots=True)
class ScalingSpec:
    """Everything the decider needs to know about one model; never changed in place.

    Defaults follow Knative's KPA for the windows and the HPA for stabilization and tolerance.
    """

    mode: Mode = Mode.CONCURRENCY
    target_per_pod: float = 32.0  # concurrency mode: in-flight + queued rows per pod
    target_utilisation: float = 0.7  # of the target (Knative) or of the throughput (capacity)
    latency_target_s: float = 0.1  # capacity mode: the batch latency the sizing must keep
    backlog_drain_s: float = 5.0  # capacity mode: queued rows should drain within this
    min_replicas: int = 1  # 0 allows scale to zero
    max_replicas: int = 100
    stable_window_s: float = 60.0
    panic_window_s: float = 6.0
    panic_threshold: float = 2.0  # panic when panic-window demand ≥ this * pods (200%)
    scale_down_stabilization_s: float = 300.0  # HPA: the highest recommendation in the window
    tolerance: float = 0.1  # HPA: no change while demand/current is within 1 ± tolerance
    scale_up_factor: float = 10.0  # per rate period, at most * this (HPA 2, Knative 1000) ...
    scale_up_pods: int = 4  # ... or + this many pods, whichever is more (HPA's 100% / 4 pods)
    scale_down_factor: float = 2.0  # per rate period, at most ÷ this (Knative's max down rate)
    rate_period_s: float = 15.0
    scale_to_zero_grace_s: float = 30.0  # no demand this long before going to zero
    stale_after_s: float = 2.0  # reports older than this are not data: hold
    restart_hold_s: float = 60.0  # after a (re)start, never scale down for this long
    startup_s: float = 30.0  # pod start-up prior, until the controller has measured one

    def __post_init__(self) -> None:
        problems = []
        if self.target_per_pod <= 0:
            problems.append("target_per_pod must be > 0")
        if not 0 < self.target_utilisation <= 1:
            problems.append("target_utilisation must be in (0, 1]")
        if self.latency_target_s <= 0:
            problems.append("latency_target_s must be > 0")
        if not 0 <= self.min_replicas <= self.max_replicas:
            problems.append("need 0 <= min_replicas <= max_replicas")
        if not 0 < self.panic_window_s <= self.stable_window_s:
            problems.append("need 0 < panic_window_s <= stable_window_s")
        if self.panic_threshold <= 1:
            problems.append("panic_threshold must be > 1")
        if self.scale_up_factor <= 1 or self.scale_down_factor <= 1:
            problems.append("scale_up_factor and scale_down_factor must be > 1")
        if self.tolerance < 0 or self.scale_up_pods < 0 or self.backlog_drain_s <= 0:
            problems.append("tolerance, scale_up_pods must be >= 0; backlog_drain_s > 0")
        if self.startup_s <= 0:
            problems.append("startup_s must be > 0")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def pod_target(self) -> float:
        """Rows in the system one pod should carry (concurrency mode)."""
        return self.target_per_pod * self.target_utilisation
