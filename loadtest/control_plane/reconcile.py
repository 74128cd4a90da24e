"""The kubelet's decisions, pure: from the replicas wanted and the pods known at ``now``, what to
start, stop, kill and remove; and the Deployment status those pods add up to."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Action",
    "Desired",
    "Kill",
    "Phase",
    "PodView",
    "Remove",
    "Start",
    "Terminate",
    "deployment_status",
    "reconcile",
]


class Phase(enum.Enum):
    """Where a simulated pod is in its life."""

    PENDING = "Pending"  # its process is being started; not listening yet
    STARTING = "Starting"  # listening, not ready yet (the start-up delay)
    READY = "Ready"  # answers ready
    TERMINATING = "Terminating"  # SIGTERM sent at ``since``: draining
    EXITED = "Exited"  # its process is gone (stopped, or crashed)


LIVE = (Phase.PENDING, Phase.STARTING, Phase.READY)


@dataclass(frozen=True, slots=True)
class PodView:
    """What the kubelet knows of one pod: its phase since when, and when it was created."""

    name: str
    phase: Phase
    since: float
    created: float
    current: bool = True  # made from the Deployment's template as it is now


@dataclass(frozen=True, slots=True)
class Desired:
    """What the Deployment wants: ``replicas`` pods, each given ``grace_s`` to drain; no pod
    is started before ``start_after`` (a back-off after a failed start)."""

    replicas: int
    grace_s: float
    start_after: float = 0.0


@dataclass(frozen=True, slots=True)
class Start:
    """Start one more pod."""


@dataclass(frozen=True, slots=True)
class Terminate:
    """Send the pod SIGTERM: it drains, then exits."""

    name: str


@dataclass(frozen=True, slots=True)
class Kill:
    """The grace period is over: SIGKILL."""

    name: str


@dataclass(frozen=True, slots=True)
class Remove:
    """The pod's process is gone: delete its Pod and EndpointSlice."""

    name: str


Action = Start | Terminate | Kill | Remove


def _victim_order(pod: PodView) -> tuple[int, float]:
    """As the ReplicaSet controller picks: not ready before ready, newer before older."""
    return (pod.phase is Phase.READY, -pod.created)


def reconcile(desired: Desired, pods: Sequence[PodView], now: float) -> list[Action]:
    """The actions that move ``pods`` toward ``desired`` at ``now``.

    Exited pods are removed (a crashed one is then replaced); a terminating pod past its grace
    period is killed; live pods (pending, starting, ready) are started up to ``replicas`` or
    terminated down to it. A pending pod has no process to signal yet: it is terminated on a
    later call, once it is starting.
    """
    actions: list[Action] = [Remove(p.name) for p in pods if p.phase is Phase.EXITED]
    actions += [
        Kill(p.name)
        for p in pods
        if p.phase is Phase.TERMINATING and now - p.since >= desired.grace_s
    ]
    live = [p for p in pods if p.phase in LIVE]
    missing = desired.replicas - len(live)
    if missing > 0 and now >= desired.start_after:
        actions += [Start() for _ in range(missing)]
    elif missing < 0:
        signalable = [p for p in live if p.phase is not Phase.PENDING]
        victims = sorted(signalable, key=_victim_order)[:-missing]
        actions += [Terminate(p.name) for p in victims]
    return actions


def deployment_status(generation: int, replicas: int, pods: Sequence[PodView]) -> dict[str, Any]:
    """The Deployment ``status`` for ``pods`` (``replicas``: its spec's): terminating pods are
    not counted; available is ready (minReadySeconds 0); counts of 0 are left out, as the API
    server leaves them (omitempty)."""
    live = [p for p in pods if p.phase in LIVE]
    ready = sum(p.phase is Phase.READY for p in live)
    available = ready >= replicas
    counts = {
        "replicas": len(live),
        "updatedReplicas": sum(p.current for p in live),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": max(replicas - ready, 0),
    }
    return {
        "observedGeneration": generation,
        **{k: v for k, v in counts.items() if v},
        "conditions": [
            {
                "type": "Available",
                "status": "True" if available else "False",
                "reason": "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
            }
        ],
    }
