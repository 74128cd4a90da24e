"""A Deployment that serves several models (one pod, many models, as Triton's model repository):
sized once, from its models' demands summed. Pure: nothing here reads a clock or does I/O.

Models that name the same (namespace, deployment) share its pods and their devices, so each
model's demand in pods (its load over one pod's capacity *for that model*, ``demand``) is a
share of the same pods: the Deployment needs their sum, and gets one decision and one patch.

How the models' scaling parameters combine into the Deployment's (``deployment_spec``), where
"set" means written in the model's ``scaling`` block:

- ``MODEL_FIELDS`` (how a model's load becomes pods: mode, targets, latency, backlog drain)
  stay each model's own.
- ``min_replicas``: the highest set (every model keeps its floor); ``max_replicas``: the lowest
  set (every model keeps its cap). A floor above a cap is refused, naming both models.
- Every other field (windows, panic, stabilization, tolerance, rate limits, grace, staleness,
  restart hold, start-up prior) shapes the one decision: the models that set it must set the
  same value, which then applies to the Deployment (set it in one model only, or alike).
- Unset everywhere: the default.

At a tick (``share_of``, ``combine``): a model with no fresh report (none live, or the newest
older than ``stale_after_s``) is *silent*: its demand is unknown, so the Deployment is sized
on the others' and never scaled down (``hold_missing_model``); all silent, it holds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from autoscaler.demand import overload, wanted_pods
from autoscaler.load import DeploymentDemand, ModelLoad
from autoscaler.spec import Mode, ScalingSpec

__all__ = [
    "DEPLOYMENT_FIELDS",
    "MODEL_FIELDS",
    "Member",
    "ModelShare",
    "combine",
    "deployment_spec",
    "merge_loads",
    "set_fields_of",
    "share_of",
]

MODEL_FIELDS = frozenset(
    {"mode", "target_per_pod", "target_utilisation", "latency_target_s", "backlog_drain_s"}
)
DEPLOYMENT_FIELDS = tuple(
    f.name for f in dataclasses.fields(ScalingSpec) if f.name not in MODEL_FIELDS
)
_DEFAULT = ScalingSpec()


def set_fields_of(spec: ScalingSpec) -> frozenset[str]:
    """The fields of a spec built in code (no config text to say which were written): those
    that differ from the defaults."""
    fields = dataclasses.fields(spec)
    return frozenset(f.name for f in fields if getattr(spec, f.name) != getattr(_DEFAULT, f.name))


@dataclass(frozen=True, slots=True)
class Member:
    """One model of a Deployment as configured: its spec and the scaling fields it set."""

    model: str
    spec: ScalingSpec
    set_fields: frozenset[str]


def _conflict(where: str, field: str, a: tuple[str, Any], b: tuple[str, Any]) -> ValueError:
    return ValueError(
        f"models '{a[0]}' and '{b[0]}' share the Deployment {where} but set scaling.{field} "
        f"to {a[1]} and {b[1]}: a Deployment is decided once, with one {field} (set it alike, "
        "or in one of them only)"
    )


def deployment_spec(members: Sequence[Member], where: str) -> ScalingSpec:
    """The spec the Deployment ``where`` (namespace/name) is decided with: the first model's,
    with the Deployment-wide fields combined as the module says; ValueError naming the models
    and the field when they contradict each other."""
    if not members:
        raise ValueError(f"the Deployment {where} has no model")
    if len(members) == 1:
        return members[0].spec
    values: dict[str, Any] = {}
    setters: dict[str, tuple[str, Any]] = {}
    for name in DEPLOYMENT_FIELDS:
        given = [(m.model, getattr(m.spec, name)) for m in members if name in m.set_fields]
        if not given:
            continue
        if name == "min_replicas":
            setters[name] = max(given, key=lambda g: g[1])
        elif name == "max_replicas":
            setters[name] = min(given, key=lambda g: g[1])
        else:
            other = next((g for g in given if g[1] != given[0][1]), None)
            if other is not None:
                raise _conflict(where, name, given[0], other)
            setters[name] = given[0]
        values[name] = setters[name][1]
    low = setters.get("min_replicas", ("", _DEFAULT.min_replicas))
    high = setters.get("max_replicas", ("", _DEFAULT.max_replicas))
    if low[1] > high[1]:
        by = [f"model '{m}'" if m else "the default" for m in (low[0], high[0])]
        raise ValueError(
            f"models {', '.join(repr(m.model) for m in members)} share the Deployment {where}: "
            f"scaling.min_replicas {low[1]} ({by[0]}) is above scaling.max_replicas "
            f"{high[1]} ({by[1]}): no count keeps every model's floor and cap"
        )
    try:
        return replace(members[0].spec, **values)
    except ValueError as exc:
        names = ", ".join(repr(m.model) for m in members)
        raise ValueError(
            f"models {names} share the Deployment {where}; their combined scaling: {exc}"
        ) from None


@dataclass(frozen=True, slots=True)
class ModelShare:
    """One model's part of its Deployment's demand at a tick.

    ``pods``: its demand in pods (None: silent, no fresh report); ``full_pods``: the same at
    full speed (pods at the limit, not at the target utilisation); ``surge_pods``: while its
    queue grows or it sheds (capacity mode), its intake in pods now (``demand.overload``)."""

    model: str
    load: ModelLoad | None
    pods: float | None = None
    mode: Mode | None = None
    full_pods: float = 0.0
    surge_pods: float | None = None

    @property
    def fresh(self) -> bool:
        return self.pods is not None


def share_of(
    model: str, spec: ScalingSpec, load: ModelLoad | None, now: float, stale_after_s: float
) -> ModelShare:
    """``model``'s share under its own ``spec``; silent without a fresh report."""
    if load is None or load.reporters == 0 or now - load.at > stale_after_s:
        return ModelShare(model, load)
    pods, mode = wanted_pods(spec, load)
    over = overload(spec, load)
    if over is None:
        return ModelShare(model, load, pods, mode, pods * spec.target_utilisation)
    intake, limit = over
    surge = intake / (limit * spec.target_utilisation)
    return ModelShare(model, load, pods, mode, intake / limit, surge)


def merge_loads(loads: Sequence[ModelLoad]) -> ModelLoad | None:
    """Several models' loads as one, for the decider's checks and the logs: counts and rates
    summed, pods (the same for every model: they share them) and gateways the largest, no
    cost fit (each model has its own); None for none."""
    if not loads:
        return None

    def total(name: str) -> Any:
        return sum(getattr(load, name) for load in loads)

    def most(name: str) -> Any:
        return max(getattr(load, name) for load in loads)

    summed = (
        "queued_requests",
        "queued_rows",
        "inflight_rows",
        "arrival_rows_per_s",
        "arrived_requests_per_s",
        "completed_rows_per_s",
        "rejected_requests_per_s",
        "queue_growth_rows_per_s",
    )
    largest = (
        "reporters",
        "missing",
        "slots_per_pod",
        "devices_per_pod",
        "max_batch_size",
        "ready_endpoints",
        "starting_endpoints",
        "terminating_endpoints",
    )
    return ModelLoad(
        at=most("at"),
        cost=None,
        **{name: total(name) for name in summed},
        **{name: most(name) for name in largest},
    )


def combine(shares: Sequence[ModelShare]) -> tuple[ModelLoad | None, DeploymentDemand]:
    """The Deployment's load (its fresh models' merged; with none fresh, every live one's,
    which the decider finds stale) and demand: the fresh shares summed. An overload of one
    model is the Deployment's when the models' intakes at full speed need more pods than are
    ready: then the surge is every fresh model's pods now, summed."""
    fresh = [s for s in shares if s.fresh]
    silent = tuple(s.model for s in shares if not s.fresh)
    if not fresh:
        live = [s.load for s in shares if s.load is not None]
        return merge_loads(live), DeploymentDemand(0.0, Mode.CONCURRENCY, None, silent)
    load = merge_loads([s.load for s in fresh if s.load is not None])
    assert load is not None
    pods = sum(s.pods or 0.0 for s in fresh)
    biggest = max(fresh, key=lambda s: s.pods or 0.0)
    mode = biggest.mode or Mode.CONCURRENCY
    surge = None
    growing = any(s.surge_pods is not None for s in fresh)
    if growing and sum(s.full_pods for s in fresh) > load.ready_endpoints:
        surge = sum(s.surge_pods if s.surge_pods is not None else s.pods or 0.0 for s in fresh)
    return load, DeploymentDemand(pods, mode, surge, silent)
