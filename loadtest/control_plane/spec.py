"""What a Deployment asks of its simulated pods, read from its annotations over the defaults."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from loadtest.stack.simpod_args import SimPod

__all__ = ["ANNOTATION_PREFIX", "Defaults", "PodTemplate", "template_of"]

ANNOTATION_PREFIX = "sim.loadtest/"
# Annotation (after the prefix) -> the SimPod field it sets, and how its text is read.
_COST: dict[str, tuple[str, type]] = {
    "fixed-ms": ("fixed_ms", float),
    "per-row-ms": ("per_row_ms", float),
    "max-batch": ("max_batch", int),
    "devices": ("devices", int),
    "startup-s": ("startup_s", float),
}


@dataclass(frozen=True, slots=True)
class Defaults:
    """What a Deployment that says nothing gets: the pod's cost shape and a grace period."""

    pod: SimPod = field(default_factory=SimPod)
    grace_s: float = 10.0


@dataclass(frozen=True, slots=True)
class PodTemplate:
    """One Deployment's pods: how each is started, labelled and stopped."""

    deployment: str
    service: str  # the Service whose EndpointSlices list the pods
    labels: Mapping[str, str]
    pod: SimPod
    grace_s: float  # SIGTERM, then SIGKILL after this
    extra_args: tuple[str, ...] = ()  # more simpod flags (``sim.loadtest/args``)

    def args(self) -> list[str]:
        """``simpod``'s flags for one pod of this template."""
        return [*self.pod.args(quiet=True), *self.extra_args]


def _annotations(deployment: Mapping[str, Any]) -> dict[str, str]:
    template = (deployment.get("spec") or {}).get("template") or {}
    own = (deployment.get("metadata") or {}).get("annotations") or {}
    return {**own, **((template.get("metadata") or {}).get("annotations") or {})}


def template_of(deployment: Mapping[str, Any], defaults: Defaults) -> PodTemplate:
    """The pod template of ``deployment``: ``sim.loadtest/<name>`` annotations (on the
    Deployment or its pod template, the template's winning) override ``defaults``; a value
    that does not parse raises ValueError."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    notes = {
        k.removeprefix(ANNOTATION_PREFIX): str(v)
        for k, v in _annotations(deployment).items()
        if k.startswith(ANNOTATION_PREFIX)
    }
    costs = {attr: cast(notes[key]) for key, (attr, cast) in _COST.items() if key in notes}
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    grace = pod_spec.get("terminationGracePeriodSeconds")
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or (
        (spec.get("selector") or {}).get("matchLabels") or {}
    )
    name = str(meta.get("name", ""))
    return PodTemplate(
        deployment=name,
        service=notes.get("service", name),
        labels=dict(labels),
        pod=replace(defaults.pod, **costs),
        grace_s=float(grace) if grace is not None else defaults.grace_s,
        extra_args=tuple(shlex.split(notes.get("args", ""))),
    )
