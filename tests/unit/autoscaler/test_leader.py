"""Lease leader election against the API double, on fake clocks (no sleeps)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes_asyncio import client

from autoscaler.leader import LeaderElector, LeaseRecord, Observed, Step, lease_step
from loadtest.kube_api.objects import LEASES
from loadtest.kube_api.server import KubeApiServer

NS, LEASE = "models", "inference-autoscaler"


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def wall(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.t)


def candidate(api: client.ApiClient, identity: str, clock: Clock) -> LeaderElector:
    return LeaderElector(
        api,
        namespace=NS,
        name=LEASE,
        identity=identity,
        lease_duration_s=15,
        renew_deadline_s=10,
        retry_period_s=2,
        clock=clock,
        wall_clock=clock.wall,
    )


@pytest.fixture
def clock() -> Clock:
    """The clock candidates ``a`` and ``b`` share."""
    return Clock()


@pytest.fixture
def a(api: client.ApiClient, clock: Clock) -> LeaderElector:
    return candidate(api, "a", clock)


@pytest.fixture
def b(api: client.ApiClient, clock: Clock) -> LeaderElector:
    return candidate(api, "b", clock)


def lease_spec(kube: KubeApiServer) -> dict[str, Any]:
    spec: dict[str, Any] = kube.store.get(LEASES, NS, LEASE)["spec"]
    return spec


def holder(kube: KubeApiServer) -> str:
    return str(lease_spec(kube)["holderIdentity"])


async def test_the_first_candidate_creates_the_lease_and_the_second_waits(
    kube: KubeApiServer, a: LeaderElector, b: LeaderElector
) -> None:
    assert await a.step() and not await b.step()
    assert holder(kube) == "a"
    spec = lease_spec(kube)
    assert spec["leaseDurationSeconds"] == 15 and spec["renewTime"].endswith(".000000Z")


async def test_a_renewing_leader_keeps_the_lease(
    kube: KubeApiServer, clock: Clock, a: LeaderElector, b: LeaderElector
) -> None:
    await a.step()
    for _ in range(30):
        clock.t += 2
        assert await a.step()
        assert not await b.step()
    assert holder(kube) == "a" and lease_spec(kube)["leaseTransitions"] == 0


async def test_a_standby_takes_over_when_the_leader_stops_renewing(
    kube: KubeApiServer, api: client.ApiClient
) -> None:
    clock_a = Clock()
    clock_b = Clock(5_000.0)  # its own monotonic clock: only its own observations matter
    a, b = candidate(api, "a", clock_a), candidate(api, "b", clock_b)
    await a.step()
    assert not await b.step()
    clock_b.t += 14
    assert not await b.step(), "not before the lease duration has passed on b's clock"
    clock_b.t += 2
    assert await b.step()
    assert holder(kube) == "b" and lease_spec(kube)["leaseTransitions"] == 1
    clock_a.t += 16
    assert not await a.step() and not a.is_leader


async def test_a_released_lease_is_taken_at_once(
    kube: KubeApiServer, a: LeaderElector, b: LeaderElector
) -> None:
    await a.step()
    assert not await b.step()
    await a.release()
    assert not a.is_leader and holder(kube) == ""
    assert await b.step()


async def test_losing_the_write_race_is_not_leading(
    kube: KubeApiServer, a: LeaderElector, b: LeaderElector
) -> None:
    await a.step()
    await a.release()
    kube.faults.fail("PUT", "leases", 409)
    assert not await b.step()


async def test_a_leader_that_cannot_renew_stops_leading_after_the_renew_deadline(
    kube: KubeApiServer, clock: Clock, a: LeaderElector
) -> None:
    await a.step()
    for _ in range(10):
        kube.faults.fail("GET", "leases", 503)
    clock.t += 4
    assert await a.step(), "still within the renew deadline"
    clock.t += 6
    assert not await a.step()


@pytest.mark.parametrize(
    ("record", "observed_at", "now", "step"),
    [
        (None, None, 0.0, Step.CREATE),
        (LeaseRecord("me", 15, "t1", 0, "1"), None, 0.0, Step.RENEW),
        (LeaseRecord("other", 15, "t1", 0, "1"), 0.0, 14.9, Step.WAIT),
        (LeaseRecord("other", 15, "t1", 0, "1"), 0.0, 15.0, Step.ACQUIRE),
        (LeaseRecord("", 1, "t1", 3, "1"), 0.0, 0.0, Step.ACQUIRE),
    ],
)
def test_lease_step(
    record: LeaseRecord | None, observed_at: float | None, now: float, step: Step
) -> None:
    observed = None
    if record is not None and observed_at is not None:
        observed = Observed((record.holder, record.renew_time, record.transitions), observed_at)
    assert lease_step(record, observed, "me", now)[0] is step


def test_a_changed_record_restarts_the_expiry_clock() -> None:
    first = LeaseRecord("other", 15, "t1", 0, "1")
    _, observed = lease_step(first, None, "me", 0.0)
    renewed = LeaseRecord("other", 15, "t2", 0, "2")
    step, observed = lease_step(renewed, observed, "me", 14.0)
    assert step is Step.WAIT and observed is not None and observed.at == 14.0
    assert lease_step(renewed, observed, "me", 28.0)[0] is Step.WAIT
