"""Each Deployment's scaling decisions with the inputs they were made from: logged and kept.

Pure: nothing here reads a clock or does I/O. The controller (the shell) hands every tick's
``DecisionEntry`` to a ``DecisionHistory``: the newest per model is kept, and so are the last
``keep`` whose count or reason changed (the ones it logs, as one structured line with
``entry.fields()``). The status page and ``autoscaler explain`` read them. A Deployment that
serves several models is one entry (keyed by its first model), whose ``models`` field lists
each model's share of the demand and its own load: what the decision came from.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

from autoscaler.decider import Decision
from autoscaler.load import ModelLoad, Observations
from autoscaler.sharing import ModelShare
from autoscaler.spec import ScalingSpec

__all__ = ["DecisionEntry", "DecisionHistory", "load_fields", "share_fields", "window_fields"]


def _round(x: float | None, digits: int = 4) -> float | None:
    return None if x is None else round(x, digits)


def load_fields(load: ModelLoad, now: float) -> dict[str, Any]:
    """The gateways' summed load as the decider saw it (``age_s``: of the newest report)."""
    cost = load.cost
    return {
        "reporters": load.reporters,
        "missing": load.missing,
        "age_s": _round(now - load.at, 3),
        "queued_requests": load.queued_requests,
        "queued_rows": load.queued_rows,
        "inflight_rows": load.inflight_rows,
        "arrival_rows_per_s": _round(load.arrival_rows_per_s, 2),
        "arrived_requests_per_s": _round(load.arrived_requests_per_s, 2),
        "completed_rows_per_s": _round(load.completed_rows_per_s, 2),
        "rejected_requests_per_s": _round(load.rejected_requests_per_s, 2),
        "queue_growth_rows_per_s": _round(load.queue_growth_rows_per_s, 2),
        "fixed_s": _round(cost.fixed_s, 6) if cost else None,
        "per_row_s": _round(cost.per_row_s, 6) if cost else None,
        "max_batch_size": load.max_batch_size,
        "slots_per_pod": load.slots_per_pod,
        "devices_per_pod": load.devices_per_pod,
        "ready_endpoints": load.ready_endpoints,
        "starting_endpoints": load.starting_endpoints,
        "terminating_endpoints": load.terminating_endpoints,
    }


def share_fields(share: ModelShare, now: float) -> dict[str, Any]:
    """One model's part of its Deployment's decision (``pods`` None: silent, no fresh report)."""
    load = share.load
    return {
        "model": share.model,
        "pods": _round(share.pods),
        "mode": share.mode.value if share.mode is not None else None,
        "surge_pods": _round(share.surge_pods),
        "load": load_fields(load, now) if load is not None else None,
    }


def window_fields(spec: ScalingSpec) -> dict[str, Any]:
    """The windows and limits the decider applied."""
    return {
        "mode": spec.mode.value,
        "stable_window_s": spec.stable_window_s,
        "panic_window_s": spec.panic_window_s,
        "panic_threshold": spec.panic_threshold,
        "scale_down_stabilization_s": spec.scale_down_stabilization_s,
        "tolerance": spec.tolerance,
        "rate_period_s": spec.rate_period_s,
        "min_replicas": spec.min_replicas,
        "max_replicas": spec.max_replicas,
    }


@dataclass(frozen=True, slots=True)
class DecisionEntry:
    """One tick's decision for one Deployment (``model``: its first model), with what it was
    decided from, at ``at``; ``shares``: each model's, when it serves several."""

    model: str
    at: float
    spec: ScalingSpec
    observations: Observations
    decision: Decision
    deployment: str = ""  # namespace/name
    shares: tuple[ModelShare, ...] = ()

    def fields(self, now: float | None = None) -> dict[str, Any]:
        """The decision, its observations and windows as plain values (``age_s`` with ``now``)."""
        d, obs = self.decision, self.observations
        asked = obs.asked_at
        out: dict[str, Any] = {
            "model": self.model,
            "current": d.current,
            "desired": d.desired,
            "reason": d.reason.value,
            "panicking": d.panicking,
            "mode": d.mode.value if d.mode is not None else None,
            "stable_pods": _round(d.stable_pods),
            "panic_pods": _round(d.panic_pods),
            "recommendation": d.recommendation,
            "lost_pods": d.lost_pods,
            "observations": {
                "current_replicas": obs.current_replicas,
                "ready_replicas": obs.ready_replicas,
                "startup_s": _round(obs.startup_s, 3),
                "scale_up_waiting_s": _round(self.at - asked, 3) if asked is not None else None,
                "load": load_fields(obs.load, self.at) if obs.load is not None else None,
            },
            "windows": window_fields(self.spec),
        }
        if self.deployment:
            out["deployment"] = self.deployment
        if self.shares:
            out["demand_pods"] = _round(sum(s.pods or 0.0 for s in self.shares))
            out["silent_models"] = [s.model for s in self.shares if not s.fresh]
            out["models"] = [share_fields(s, self.at) for s in self.shares]
        if now is not None:
            out["age_s"] = _round(now - self.at, 3)
        return out


def _same(a: Decision, b: Decision) -> bool:
    return (a.desired, a.reason) == (b.desired, b.reason)


class DecisionHistory:
    """Per Deployment (keyed by its first model): the newest entry, and the last ``keep`` that
    changed the count or reason."""

    def __init__(self, keep: int = 50) -> None:
        if keep < 1:
            raise ValueError("keep must be >= 1")
        self._keep = keep
        self._latest: dict[str, DecisionEntry] = {}
        self._changes: dict[str, deque[DecisionEntry]] = {}

    def add(self, entry: DecisionEntry) -> bool:
        """Keep ``entry`` as its model's newest; True (and kept among the changes) when its
        count or reason differs from the entry before it."""
        before = self._latest.get(entry.model)
        self._latest[entry.model] = entry
        if before is not None and _same(before.decision, entry.decision):
            return False
        self._changes.setdefault(entry.model, deque(maxlen=self._keep)).append(entry)
        return True

    def latest(self, model: str) -> DecisionEntry | None:
        return self._latest.get(model)

    def changes(self, model: str) -> list[DecisionEntry]:
        """The kept changes of ``model``, newest first."""
        return list(reversed(self._changes.get(model, ())))
