"""The control loop end to end on a fake clock: a fluid gateway's reports → the store → the
controller → a fake Deployment. How fast a step above capacity is answered, and that steady
loads settle without flapping. Nothing sleeps: every report and tick is at a time set by hand.

The fluid gateway is a real one's arithmetic, not its code: pods of one device (F 8 ms +
0.25 ms/row, batches of 32 at the 100 ms target: 2000 rows/s each) with two slots, as the real
gateway reports them; rows queue when the ready pods are full and are shed after 1 s; the
arrival rate is the gateway's ~1 s exponential average; a report every 250 ms.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import pytest

from autoscaler.aggregate import GatewayReport, ReportStore
from autoscaler.controller import Controller, Target
from autoscaler.decider import Decision, Reason
from autoscaler.load import Cost
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.spec import Mode, ScalingSpec
from tests.fakes.clock import Clock

REPORT_S = 0.25
POD_LIMIT = 2000.0  # rows/s: 32 rows per 16 ms on the one device
COST = Cost(0.008, 0.00025)
SPEC = ScalingSpec(mode=Mode.CAPACITY, latency_target_s=0.1, restart_hold_s=0, max_replicas=20)


class Deployment:
    """The controller's Scaler: records each change; a new pod is ready ``startup_s`` later,
    a removed one terminates for ``startup_s`` (the newest go first)."""

    def __init__(self, clock: Clock, replicas: int, startup_s: float) -> None:
        self.clock = clock
        self.startup_s = startup_s
        self.ready_at = [-math.inf] * replicas
        self.leaving: list[float] = []  # when each terminating pod is gone
        self.changes: list[tuple[float, int, Reason]] = []

    @property
    def replicas(self) -> int:
        return len(self.ready_at)

    def ready(self, now: float) -> int:
        return sum(1 for t in self.ready_at if t <= now)

    def terminating(self, now: float) -> int:
        return sum(1 for t in self.leaving if t > now)

    async def current(self, target: Target, *, refresh: bool = False) -> int:
        return self.replicas

    async def apply(self, target: Target, decision: Decision) -> None:
        now = self.clock.now
        self.changes.append((now, decision.desired, decision.reason))
        if decision.desired > self.replicas:
            self.ready_at += [now + self.startup_s] * (decision.desired - self.replicas)
        else:
            self.ready_at.sort()
            gone = self.ready_at[decision.desired :]
            self.leaving += [now + self.startup_s for t in gone if t <= now]
            del self.ready_at[decision.desired :]


@dataclass
class FluidGateway:
    """One gateway replica in front of ``deployment``'s pods, as arithmetic."""

    deployment: Deployment
    rate: Callable[[float], float]  # rows (= requests) per second offered at a time
    step_s: float = 0.01
    deadline_s: float = 1.0
    at: float = 0.0
    queue: float = 0.0
    arrival_rate: float = 0.0
    totals: dict[str, float] = field(
        default_factory=lambda: {"arrived": 0.0, "completed": 0.0, "rejected": 0.0}
    )
    sent: dict[str, int] = field(default_factory=lambda: {"arrived": 0, "completed": 0})
    seq: int = 0

    def _advance(self, until: float) -> None:
        while self.at < until - 1e-9:
            dt = min(self.step_s, until - self.at)
            rate = self.rate(self.at)
            served = min(self.deployment.ready(self.at) * POD_LIMIT * dt, self.queue + rate * dt)
            self.queue += rate * dt - served
            limit = rate * self.deadline_s
            shed = max(0.0, self.queue - limit)
            self.queue -= shed
            self.arrival_rate = self.arrival_rate * math.exp(-dt) + rate * dt  # tau 1 s
            self.totals["arrived"] += rate * dt
            self.totals["completed"] += served
            self.totals["rejected"] += shed
            self.at += dt

    def report(self, now: float) -> GatewayReport:
        """The LoadReport at ``now``, decoded as the receiver decodes it."""
        last = self.at
        self._advance(now)
        self.seq += 1
        deltas = {}
        for name in ("arrived", "completed", "rejected"):
            total = math.floor(self.totals[name])
            deltas[name] = total - self.sent.get(name, 0)
            self.sent[name] = total
        return GatewayReport(
            replica_id="gw-1",
            model="sim",
            seq=self.seq,
            interval_s=now - last if self.seq > 1 else 0.0,
            queued_requests=round(self.queue),
            queued_rows=round(self.queue),
            inflight_rows=round(min(self.queue, 64.0)),
            arrived_requests=deltas["arrived"],
            arrival_rows_per_s=self.arrival_rate,
            completed_rows=deltas["completed"],
            rejected_requests=deltas["rejected"],
            cost=COST,
            slots_per_pod=2,
            devices_per_pod=1,
            max_batch_size=32,
            ready_endpoints=self.deployment.ready(now),
            starting_endpoints=self.deployment.replicas - self.deployment.ready(now),
            terminating_endpoints=self.deployment.terminating(now),
        )


@dataclass
class Loop:
    """The gateway, the store, the controller and the Deployment on one fake clock."""

    clock: Clock
    gateway: FluidGateway
    deployment: Deployment
    store: ReportStore
    controller: Controller
    metrics: AutoscalerMetrics

    async def run_until(self, end_s: float) -> None:
        """A report every 250 ms, each followed by a controller tick."""
        while self.clock.now < end_s - 1e-9:
            self.clock.advance(REPORT_S)
            self.store.record(self.gateway.report(self.clock.now), self.clock.now)
            await self.controller.tick()

    def decisions(self, reason: Reason) -> float:
        labels = {"model": "sim", "reason": reason.value}
        return self.metrics.registry.get_sample_value("autoscaler_decisions_total", labels) or 0.0


def make_loop(
    spec: ScalingSpec, rate: Callable[[float], float], *, replicas: int = 1, startup_s: float = 2.0
) -> Loop:
    clock = Clock(0.0)
    deployment = Deployment(clock, replicas, startup_s)
    store = ReportStore(ttl_s=1.0, missing_hold_s=60.0)
    metrics = AutoscalerMetrics()
    controller = Controller(
        targets=[Target("sim", "models", "sim", spec)],
        store=store,
        metrics=metrics,
        scaler=deployment,
        clock=clock,
    )
    return Loop(clock, FluidGateway(deployment, rate), deployment, store, controller, metrics)


def step(before: float, after: float, at: float) -> Callable[[float], float]:
    return lambda t: after if t >= at else before


@pytest.mark.parametrize(("factor", "pods"), [(1.2, 2), (1.5, 3), (3.0, 5)])
async def test_a_step_above_capacity_is_patched_within_two_report_intervals(
    factor: float, pods: int
) -> None:
    """Default windows (60 s stable, 6 s panic): their averages would take seconds; the
    queue's growth does not wait for them, and it asks for what the new rate needs (the
    first report covers the step for part of its interval, so it may ask for less)."""
    step_at = 30.1  # between two reports
    loop = make_loop(SPEC, step(0.5 * POD_LIMIT, factor * POD_LIMIT, step_at))
    await loop.run_until(30.0)
    assert loop.deployment.changes == []
    first_report = math.ceil(step_at / REPORT_S) * REPORT_S  # the first that shows the step
    await loop.run_until(first_report + 2 * REPORT_S)
    assert loop.deployment.changes[0][2] is Reason.QUEUE_GROWTH
    assert loop.deployment.replicas == pods
    await loop.run_until(step_at + 90)
    counts = [n for _, n, _ in loop.deployment.changes]
    assert counts == sorted(counts) and counts[-1] == pods, "no overshoot, no step back"
    assert loop.decisions(Reason.QUEUE_GROWTH) >= 1


async def test_a_queue_that_grows_under_the_pods_limit_is_not_an_overload() -> None:
    """Below the ready pods' limit a growing queue is batch formation: the windows decide."""
    loop = make_loop(SPEC, step(0.2 * POD_LIMIT, 0.6 * POD_LIMIT, 10.0))
    await loop.run_until(60)
    assert loop.deployment.changes == []
    assert loop.decisions(Reason.QUEUE_GROWTH) == 0


SHORT = replace(SPEC, stable_window_s=10, scale_down_stabilization_s=10)  # panic: 6 s


@pytest.mark.parametrize(
    ("factor", "pods"),
    [(0.5, 1), (0.9, 2), (1.1, 2), (1.5, 3), (2.5, 4), (4.0, 6)],
)
@pytest.mark.parametrize("startup_s", [0.5, 2.0, 5.0])
async def test_a_steady_load_settles_and_stays(factor: float, pods: int, startup_s: float) -> None:
    """Pods = rate ÷ (2000 rows/s * 70%) rounded up, reached without a step back, then held:
    10 s stable window and 10 s scale-down stabilization, from 1 pod and a quiet start."""
    loop = make_loop(SHORT, step(0.1 * POD_LIMIT, factor * POD_LIMIT, 5.0), startup_s=startup_s)
    await loop.run_until(120)
    counts = [n for _, n, _ in loop.deployment.changes]
    assert counts == sorted(counts), f"a step back: {loop.deployment.changes}"
    assert loop.deployment.replicas == pods
    assert all(t < 30 for t, _, _ in loop.deployment.changes), "settled, then stayed"
