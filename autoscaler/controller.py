"""The control loop: every tick, per Deployment, observe → decide → (if leading) actuate.

Targets (models) that name the same (namespace, deployment) are one Deployment: decided once
from their demands summed (``autoscaler.sharing``), with the Deployment's spec, and patched
once; a Deployment of one model is decided from its load as it always was.

A shell: the policy is ``decide``; the Kubernetes calls are the ``Scaler``'s. Without a scaler
(``--dry-run`` with no cluster) the current count is the last decision. A replica that is not
the leader still decides (its windows stay warm for a takeover) but never writes.

Every tick's decision goes to ``history`` (``autoscaler.decision_log``); one whose count or
reason changed is logged as one line whose fields are its inputs: observations and windows.

Each scale-up patch and the ready endpoints the gateways report feed the ``StartupEstimator``
(the pods' start-up time, learnt); the decider gets the estimate and the pending patch's time.
A leadership change drops the pending measurements: the other replica may have patched since.

A target with ``actuation`` ``keda`` is decided, logged and exported like any other, but never
patched (``autoscaler_scale_changes_total{result="keda"}`` counts its changes): KEDA's HPA
owns its spec.replicas and follows the decision through ``autoscaler.keda``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from autoscaler.aggregate import ReportStore
from autoscaler.decider import Decision, ScalerState, decide
from autoscaler.decision_log import DecisionEntry, DecisionHistory
from autoscaler.load import Observations
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.sharing import (
    Member,
    ModelShare,
    combine,
    deployment_spec,
    set_fields_of,
    share_of,
)
from autoscaler.spec import ScalingSpec
from autoscaler.startup import StartupEstimator, StartupSample

__all__ = ["KEDA", "PATCH", "Controller", "Scaler", "Target"]

PATCH = "patch"  # a Target's actuation: this loop patches the scale
KEDA = "keda"  # KEDA's HPA does, from the decision served to it

log = logging.getLogger(__name__)


class Scaler(Protocol):
    """What the loop needs from the actuator."""

    async def current(self, target: Target, *, refresh: bool = False) -> int:
        """The Deployment's spec.replicas; it may be a kept read unless ``refresh``."""
        ...

    async def apply(self, target: Target, decision: Decision) -> None: ...


@dataclass(frozen=True, slots=True)
class Target:
    """A model and the Deployment that serves it. ``deployment_spec``: the Deployment's spec
    when it serves several models (``config.shared_specs``); None: combined here from the
    models' specs, taking the fields that differ from the defaults as set."""

    model: str
    namespace: str
    deployment: str
    spec: ScalingSpec
    actuation: str = PATCH
    deployment_spec: ScalingSpec | None = None


@dataclass
class _DeploymentLoop:
    """One Deployment's loop: its models' targets (the first names it), spec and state."""

    targets: tuple[Target, ...]
    spec: ScalingSpec
    state: ScalerState = field(default_factory=ScalerState)
    current: int | None = None
    last: Decision | None = None
    leading: bool = False  # at the previous tick

    @property
    def target(self) -> Target:
        return self.targets[0]

    @property
    def key(self) -> str:
        """Its history's and start-up estimate's key: the first model's name."""
        return self.targets[0].model

    @property
    def where(self) -> str:
        return f"{self.target.namespace}/{self.target.deployment}"


def _group(targets: list[Target]) -> list[_DeploymentLoop]:
    """One loop per (namespace, deployment), in the order of their first model."""
    groups: dict[tuple[str, str], list[Target]] = {}
    for t in targets:
        groups.setdefault((t.namespace, t.deployment), []).append(t)
    loops = []
    for (ns, name), group in groups.items():
        if len({t.actuation for t in group}) > 1:
            raise ValueError(f"the models of the Deployment {ns}/{name} differ in actuation")
        spec = group[0].deployment_spec
        if spec is None:
            members = [Member(t.model, t.spec, set_fields_of(t.spec)) for t in group]
            spec = deployment_spec(members, f"{ns}/{name}")
        loops.append(_DeploymentLoop(tuple(group), spec))
    return loops


class Controller:
    """Runs the decider for every target each tick."""

    def __init__(
        self,
        *,
        targets: list[Target],
        store: ReportStore,
        metrics: AutoscalerMetrics,
        scaler: Scaler | None,
        dry_run: bool = False,
        is_leader: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loops = _group(targets)
        self._store = store
        self._metrics = metrics
        self._scaler = scaler
        self._dry_run = dry_run
        self._is_leader = is_leader
        self._clock = clock
        self.startup = StartupEstimator({m.key: m.spec.startup_s for m in self._loops})
        self.history = DecisionHistory()  # each Deployment's last decisions and their inputs
        self._keys = {t.model: m.key for m in self._loops for t in m.targets}
        self._models = {m.key: tuple(t.model for t in m.targets) for m in self._loops}

    @property
    def targets(self) -> list[Target]:
        return [t for m in self._loops for t in m.targets]

    def key_of(self, model: str) -> str:
        """The key of the model's Deployment in ``history`` and ``startup``."""
        return self._keys.get(model, model)

    def models_with(self, model: str) -> tuple[str, ...]:
        """The models of ``model``'s Deployment (itself included), in config order."""
        return self._models.get(self.key_of(model), (model,))

    def decisions(self) -> dict[str, Decision]:
        """Each model's Deployment's last decision, by model."""
        return {t.model: m.last for m in self._loops if m.last is not None for t in m.targets}

    async def tick(self) -> dict[str, Decision]:
        """One round over every model; a failing model does not stop the others."""
        for loop in self._loops:
            try:
                await self._one(loop)
            except Exception:
                log.exception("model %s: tick failed", ", ".join(t.model for t in loop.targets))
        return self.decisions()

    def _observe(
        self, loop: _DeploymentLoop, now: float
    ) -> tuple[Observations, tuple[ModelShare, ...]]:
        """The Deployment's observations (its load, or its models' combined) and each model's
        share of its demand (its own under its spec)."""
        stale_s = loop.spec.stale_after_s
        loads = [self._store.load(t.model, now) for t in loop.targets]
        shares = tuple(
            share_of(t.model, t.spec, load, now, stale_s)
            for t, load in zip(loop.targets, loads, strict=True)
        )
        load, demand = loads[0], None
        if len(loop.targets) > 1:
            load, demand = combine(shares)
        ready = load.ready_endpoints if load is not None else None
        sample = None
        if ready is not None:
            sample = self.startup.observe_ready(loop.key, ready, now)
            _log_sample(sample, loop)
        startup_s = self.startup.estimate(loop.key)
        for t in loop.targets:
            self._metrics.observe_startup(t.model, startup_s, sample)
        asked_at = self.startup.pending_since(loop.key)
        assert loop.current is not None
        obs = Observations(load, loop.current, ready, startup_s, asked_at, demand)
        return obs, shares

    async def _one(self, loop: _DeploymentLoop) -> None:
        target = loop.target
        leading = self._is_leader()
        if self._scaler is not None and (leading or loop.current is None):
            # A new leader reads afresh: the one before may have scaled since its last read.
            fresh = leading and not loop.leading
            loop.current = await self._scaler.current(target, refresh=fresh)
        if leading != loop.leading:
            self.startup.cancel(loop.key)
        loop.leading = leading
        if loop.current is None:  # dry run without a cluster: start at the minimum
            loop.current = loop.spec.min_replicas
        now = self._clock()
        obs, shares = self._observe(loop, now)
        decision, loop.state = decide(loop.spec, obs, loop.state, now)
        several = shares if len(shares) > 1 else ()
        entry = DecisionEntry(loop.key, now, loop.spec, obs, decision, loop.where, several)
        if self.history.add(entry):  # its count or reason changed: one line, with its inputs
            log.info(
                "%s: %d -> %d (%s; demand %.2f stable, %.2f panic pods%s)",
                f"deployment {loop.where}" if several else f"model {target.model}",
                decision.current,
                decision.desired,
                decision.reason.value,
                decision.stable_pods or 0.0,
                decision.panic_pods or 0.0,
                "".join(f"; {s.model} {_pods(s.pods)}" for s in several),
                extra={"event": "scale_decision", **entry.fields()},
            )
        loop.last = decision
        for share in shares:
            load = share.load
            self._metrics.observe(
                share.model,
                decision,
                staleness_s=self._store.staleness(share.model, now),
                reporters=load.reporters if load else 0,
                missing=load.missing if load else 0,
                ready=obs.ready_replicas,
            )
            where = (target.namespace, target.deployment)
            self._metrics.observe_share(share.model, share.pods, *where)
        if decision.changes and leading:
            await self._actuate(loop, decision, now)

    def _count(self, loop: _DeploymentLoop, result: str) -> None:
        """A scale change, counted under each model of the Deployment."""
        for t in loop.targets:
            self._metrics.scale_changes.labels(t.model, result).inc()

    async def _actuate(self, loop: _DeploymentLoop, decision: Decision, now: float) -> None:
        target = loop.target
        if target.actuation == KEDA:
            self._count(loop, KEDA)
            if self._scaler is None:
                loop.current = decision.desired
            return
        if self._dry_run or self._scaler is None:
            self._count(loop, "dry_run")
            if self._scaler is None:
                loop.current = decision.desired
            return
        try:
            await self._scaler.apply(target, decision)
        except Exception:
            self._count(loop, "failed")
            raise
        self._count(loop, "patched")
        partial = self.startup.observe_patch(loop.key, decision.current, decision.desired, now)
        _log_sample(partial, loop)
        if partial is not None:
            for t in loop.targets:
                self._metrics.observe_startup(t.model, self.startup.estimate(loop.key), partial)
        loop.current = decision.desired

    async def run(self, stop: asyncio.Event, tick_s: float) -> None:
        while not stop.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_s)


def _pods(x: float | None) -> str:
    return "silent" if x is None else f"{x:.2f}"


def _log_sample(sample: StartupSample | None, loop: _DeploymentLoop) -> None:
    if sample is not None:
        several = len(loop.targets) > 1
        log.info(
            "%s: pods started in %.2f s (%d -> %d, %d ready%s)",
            f"deployment {loop.where}" if several else f"model {sample.model}",
            sample.seconds,
            sample.from_n,
            sample.to_n,
            sample.ready,
            ", partial" if sample.partial else "",
        )
