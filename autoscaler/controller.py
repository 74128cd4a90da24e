"""The control loop: every tick, per model, observe → decide → (if leading) actuate.

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
    """A model and the Deployment that serves it."""

    model: str
    namespace: str
    deployment: str
    spec: ScalingSpec
    actuation: str = PATCH


@dataclass
class _ModelLoop:
    target: Target
    state: ScalerState = field(default_factory=ScalerState)
    current: int | None = None
    last: Decision | None = None
    leading: bool = False  # at the previous tick


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
        self._loops = [_ModelLoop(t) for t in targets]
        self._store = store
        self._metrics = metrics
        self._scaler = scaler
        self._dry_run = dry_run
        self._is_leader = is_leader
        self._clock = clock
        self.startup = StartupEstimator({t.model: t.spec.startup_s for t in targets})
        self.history = DecisionHistory()  # each model's last decisions and their inputs

    @property
    def targets(self) -> list[Target]:
        return [m.target for m in self._loops]

    def decisions(self) -> dict[str, Decision]:
        return {m.target.model: m.last for m in self._loops if m.last is not None}

    async def tick(self) -> dict[str, Decision]:
        """One round over every model; a failing model does not stop the others."""
        for loop in self._loops:
            try:
                await self._one(loop)
            except Exception:
                log.exception("model %s: tick failed", loop.target.model)
        return self.decisions()

    async def _one(self, loop: _ModelLoop) -> None:
        target = loop.target
        leading = self._is_leader()
        if self._scaler is not None and (leading or loop.current is None):
            # A new leader reads afresh: the one before may have scaled since its last read.
            fresh = leading and not loop.leading
            loop.current = await self._scaler.current(target, refresh=fresh)
        if leading != loop.leading:
            self.startup.cancel(target.model)
        loop.leading = leading
        if loop.current is None:  # dry run without a cluster: start at the minimum
            loop.current = target.spec.min_replicas
        now = self._clock()
        load = self._store.load(target.model, now)
        ready = load.ready_endpoints if load is not None else None
        sample = None
        if ready is not None:
            sample = self.startup.observe_ready(target.model, ready, now)
            _log_sample(sample)
        startup_s = self.startup.estimate(target.model)
        asked_at = self.startup.pending_since(target.model)
        obs = Observations(load, loop.current, ready, startup_s, asked_at)
        decision, loop.state = decide(target.spec, obs, loop.state, now)
        self._metrics.observe_startup(target.model, startup_s, sample)
        entry = DecisionEntry(target.model, now, target.spec, obs, decision)
        if self.history.add(entry):  # its count or reason changed: one line, with its inputs
            log.info(
                "model %s: %d -> %d (%s; demand %.2f stable, %.2f panic pods)",
                target.model,
                decision.current,
                decision.desired,
                decision.reason.value,
                decision.stable_pods or 0.0,
                decision.panic_pods or 0.0,
                extra={"event": "scale_decision", **entry.fields()},
            )
        loop.last = decision
        self._metrics.observe(
            target.model,
            decision,
            staleness_s=self._store.staleness(target.model, now),
            reporters=load.reporters if load else 0,
            missing=load.missing if load else 0,
            ready=ready,
        )
        if not decision.changes or not leading:
            return
        if target.actuation == KEDA:
            self._metrics.scale_changes.labels(target.model, KEDA).inc()
            if self._scaler is None:
                loop.current = decision.desired
            return
        if self._dry_run or self._scaler is None:
            self._metrics.scale_changes.labels(target.model, "dry_run").inc()
            if self._scaler is None:
                loop.current = decision.desired
            return
        try:
            await self._scaler.apply(target, decision)
        except Exception:
            self._metrics.scale_changes.labels(target.model, "failed").inc()
            raise
        self._metrics.scale_changes.labels(target.model, "patched").inc()
        partial = self.startup.observe_patch(target.model, decision.current, decision.desired, now)
        _log_sample(partial)
        if partial is not None:
            self._metrics.observe_startup(
                target.model, self.startup.estimate(target.model), partial
            )
        loop.current = decision.desired

    async def run(self, stop: asyncio.Event, tick_s: float) -> None:
        while not stop.is_set():
            await self.tick()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), tick_s)


def _log_sample(sample: StartupSample | None) -> None:
    if sample is not None:
        log.info(
            "model %s: pods started in %.2f s (%d -> %d, %d ready%s)",
            sample.model,
            sample.seconds,
            sample.from_n,
            sample.to_n,
            sample.ready,
            ", partial" if sample.partial else "",
        )
