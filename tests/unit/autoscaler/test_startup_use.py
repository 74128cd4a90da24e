"""The learnt start-up time in use: the decider's pods on the way, and the controller's wiring
(samples, the gauge, a leadership change), on a fake clock."""

from __future__ import annotations

import logging

import pytest

from autoscaler.aggregate import GatewayReport, ReportStore
from autoscaler.controller import Controller, Target
from autoscaler.decider import Decision, Reason, ScalerState, decide
from autoscaler.load import ModelLoad, Observations
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.spec import ScalingSpec
from tests.fakes.clock import Clock

T0 = 10_000.0
# Demand in pods = rows / 10; no restart hold.
SPEC = ScalingSpec(target_per_pod=10, target_utilisation=1.0, restart_hold_s=0, startup_s=10)


def _waiting(ready: int, starting: int, now: float) -> ModelLoad:
    return ModelLoad(
        at=now,
        reporters=1,
        inflight_rows=40,
        ready_endpoints=ready,
        starting_endpoints=starting,
    )


def _decide_at(age_s: float, startup_s: float | None) -> Decision:
    """4 pods asked for ``age_s`` ago (2 ready, 2 starting), demand 4 pods."""
    now = T0 + age_s
    obs = Observations(_waiting(2, 2, now), 4, 2, startup_s=startup_s, asked_at=T0)
    decision, _ = decide(SPEC, obs, ScalerState(), now)
    return decision


@pytest.mark.parametrize("age_s", [1.0, 10.0, 19.9])
def test_pods_asked_for_count_while_younger_than_twice_the_start_up(age_s: float) -> None:
    decision = _decide_at(age_s, startup_s=10.0)
    assert decision.desired == 4
    assert decision.lost_pods == 0


def test_pods_asked_for_older_than_twice_the_start_up_are_lost_and_asked_again() -> None:
    decision = _decide_at(20.5, startup_s=10.0)
    assert decision.lost_pods == 2
    assert decision.desired == 6
    assert decision.reason is Reason.REPLACING_LOST


def test_without_a_learnt_start_up_the_spec_prior_sets_the_limit() -> None:
    assert _decide_at(19.0, startup_s=None).desired == 4
    assert _decide_at(21.0, startup_s=None).desired == 6


def test_lost_pods_are_not_replaced_when_the_ready_pods_suffice() -> None:
    now = T0 + 100
    load = ModelLoad(at=now, reporters=1, inflight_rows=20, ready_endpoints=2)
    obs = Observations(load, 4, 2, startup_s=10.0, asked_at=T0)
    decision, _ = decide(SPEC, obs, ScalerState(), now)
    assert decision.lost_pods == 2
    assert decision.desired <= 4


class FakeScaler:
    """A Deployment whose spec.replicas follows each patch; pods are what the reports say."""

    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self.patches: list[tuple[int, int]] = []

    async def current(self, target: Target, *, refresh: bool = False) -> int:
        return self.replicas

    async def apply(self, target: Target, decision: Decision) -> None:
        self.patches.append((decision.current, decision.desired))
        self.replicas = decision.desired


class Loop:
    """A store, a controller and a fake Deployment on one clock; a report before each tick."""

    def __init__(self, spec: ScalingSpec = SPEC, replicas: int = 1) -> None:
        self.clock = Clock(T0)
        self.store = ReportStore(ttl_s=1.0, missing_hold_s=60.0)
        self.metrics = AutoscalerMetrics()
        self.scaler = FakeScaler(replicas)
        self.leader = True
        self.seq = 0
        self.controller = Controller(
            targets=[Target("m", "models", "m", spec)],
            store=self.store,
            metrics=self.metrics,
            scaler=self.scaler,
            is_leader=lambda: self.leader,
            clock=self.clock,
        )

    async def tick_at(self, t: float, *, ready: int, rows: int = 40) -> None:
        self.clock.now = T0 + t
        self.seq += 1
        report = GatewayReport(
            replica_id="gw-1",
            model="m",
            seq=self.seq,
            interval_s=0.25,
            inflight_rows=rows,
            ready_endpoints=ready,
            starting_endpoints=max(0, self.scaler.replicas - ready),
        )
        self.store.record(report, self.clock.now)
        await self.controller.tick()

    def sample(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, {"model": "m", **labels})


async def test_the_controller_learns_the_start_up_and_exports_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = Loop()
    caplog.set_level(logging.INFO, logger="autoscaler.controller")
    await loop.tick_at(0, ready=1)
    assert loop.scaler.patches == [(1, 4)]
    assert loop.sample("autoscaler_pod_startup_seconds") == 10.0, "the prior"
    await loop.tick_at(1, ready=2)
    await loop.tick_at(3, ready=4)
    assert loop.controller.startup.samples("m") == (3.0,)
    assert loop.sample("autoscaler_pod_startup_seconds") == 3.0
    assert loop.sample("autoscaler_pod_startup_samples_total", kind="full") == 1.0
    assert "pods started in 3.00 s (1 -> 4, 4 ready)" in caplog.text


async def test_the_controller_asks_again_once_the_pods_are_overdue() -> None:
    loop = Loop()
    await loop.tick_at(0, ready=1)
    for t in range(1, 21):
        await loop.tick_at(t, ready=1)
    assert loop.scaler.patches == [(1, 4)], "20 s: not yet twice the 10 s prior"
    await loop.tick_at(21, ready=1)
    assert loop.scaler.patches == [(1, 4), (4, 7)]
    assert loop.sample("autoscaler_lost_pods") == 3.0
    assert loop.controller.startup.pending_since("m") == T0 + 21


async def test_a_leadership_change_drops_the_pending_sample() -> None:
    loop = Loop()
    await loop.tick_at(0, ready=1)
    assert loop.controller.startup.pending_since("m") == T0
    loop.leader = False
    await loop.tick_at(1, ready=2)
    await loop.tick_at(2, ready=4)
    assert loop.controller.startup.samples("m") == ()
    assert loop.sample("autoscaler_pod_startup_seconds") == 10.0
