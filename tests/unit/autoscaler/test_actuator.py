"""The actuator against the API double: scale subresource reads and merge-patches, 409 races,
429 Retry-After, 5xx backoff, an Event per change, and how seldom the control loop reads the
scale. Waits are recorded, never slept; time is a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes_asyncio import client

from autoscaler.actuator import DeploymentScaler, ScaleActuator, ScaleError
from autoscaler.aggregate import GatewayReport, ReportStore
from autoscaler.controller import Controller, Target
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.spec import ScalingSpec
from loadtest.kube_api.objects import DEPLOYMENTS, EVENTS, deployment, set_replicas, spec_replicas
from loadtest.kube_api.server import KubeApiServer
from tests.fakes.clock import Clock

NS, NAME = "models", "sim"


@pytest.fixture(autouse=True)
def sim(kube: KubeApiServer) -> None:
    """The Deployment every test scales, at 2 replicas."""
    kube.store.create(DEPLOYMENTS, NS, deployment(NAME, 2, {"app": NAME}))


def actuator(api: client.ApiClient, sleeps: list[float]) -> ScaleActuator:
    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    return ScaleActuator(
        api,
        instance="autoscaler-0",
        sleep=record,
        wall_clock=lambda: datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    )


def patches(kube: KubeApiServer) -> int:
    return sum(1 for method, path, _ in kube.requests if method == "PATCH" and "/scale" in path)


def replicas(kube: KubeApiServer) -> int:
    return spec_replicas(kube.store, NS, NAME)


def events(kube: KubeApiServer) -> list[dict[str, Any]]:
    return kube.store.list(EVENTS, NS, {})[0]


def race(kube: KubeApiServer, count: int) -> None:
    """Another writer sets the count just before the actuator's next patch is served."""
    kube.faults.race(
        "PATCH",
        "deployments",
        lambda: set_replicas(kube.store, NS, NAME, count),
        subresource="scale",
    )


def fail_scale(
    kube: KubeApiServer, method: str, code: int, headers: dict[str, str] | None = None
) -> None:
    """The next ``method`` on the scale subresource is answered with ``code``."""
    kube.faults.fail(method, "deployments", code, subresource="scale", headers=headers)


async def test_a_change_patches_the_scale_and_records_an_event(
    kube: KubeApiServer, api: client.ApiClient
) -> None:
    result = await actuator(api, []).scale(NS, NAME, 5, "panic")
    assert (result.previous, result.replicas, result.patched) == (2, 5, True)
    assert replicas(kube) == 5
    [event] = events(kube)
    assert event["reason"] == "SuccessfulRescale"
    assert event["message"] == "New size: 5; reason: panic; from 2 to 5"
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": NAME,
        "namespace": NS,
    }
    assert event["firstTimestamp"] == "2026-01-02T03:04:05Z"


async def test_no_change_no_patch_no_event(kube: KubeApiServer, api: client.ApiClient) -> None:
    result = await actuator(api, []).scale(NS, NAME, 2, "stable")
    assert not result.patched and patches(kube) == 0 and not events(kube)


async def test_a_conflicting_writer_makes_it_reread_and_retry(
    kube: KubeApiServer, api: client.ApiClient
) -> None:
    race(kube, 3)  # kubectl scale, just before
    result = await actuator(api, []).scale(NS, NAME, 6, "stable")
    assert (result.previous, result.conflicts, result.patched) == (3, 1, True)
    assert replicas(kube) == 6 and patches(kube) == 2
    assert events(kube)[0]["message"].endswith("from 3 to 6")


async def test_a_writer_that_set_the_same_count_leaves_nothing_to_do(
    kube: KubeApiServer, api: client.ApiClient
) -> None:
    race(kube, 6)
    result = await actuator(api, []).scale(NS, NAME, 6, "stable")
    assert (result.patched, result.conflicts) == (False, 1) and not events(kube)


async def test_429_waits_for_retry_after(kube: KubeApiServer, api: client.ApiClient) -> None:
    fail_scale(kube, "PATCH", 429, {"Retry-After": "3"})
    sleeps: list[float] = []
    assert (await actuator(api, sleeps).scale(NS, NAME, 4, "stable")).patched
    assert sleeps == [3.0] and replicas(kube) == 4


async def test_5xx_backs_off_exponentially(kube: KubeApiServer, api: client.ApiClient) -> None:
    fail_scale(kube, "GET", 503)
    fail_scale(kube, "PATCH", 500)
    fail_scale(kube, "PATCH", 500)
    sleeps: list[float] = []
    assert (await actuator(api, sleeps).scale(NS, NAME, 4, "stable")).patched
    assert sleeps == [0.2, 0.2, 0.4]


async def test_gives_up_after_the_attempts(kube: KubeApiServer, api: client.ApiClient) -> None:
    for _ in range(10):
        fail_scale(kube, "PATCH", 503)
    sleeps: list[float] = []
    with pytest.raises(ScaleError):
        await actuator(api, sleeps).scale(NS, NAME, 4, "stable")
    assert len(sleeps) == 6 and replicas(kube) == 2


async def test_scale_to_zero_reads_back_as_zero(kube: KubeApiServer, api: client.ApiClient) -> None:
    act = actuator(api, [])
    await act.scale(NS, NAME, 0, "scale_to_zero")
    assert (await act.read(NS, NAME)).replicas == 0  # spec.replicas is omitted at 0
    assert (await act.scale(NS, NAME, 1, "scale_from_zero")).previous == 0


async def test_a_failed_event_does_not_undo_the_scale(
    kube: KubeApiServer, api: client.ApiClient
) -> None:
    kube.faults.fail("POST", "events", 403)
    assert (await actuator(api, []).scale(NS, NAME, 3, "stable")).patched
    assert replicas(kube) == 3 and not events(kube)


# -- the controller's reads: a kept count, re-read after a patch, on a 409, on a resync -----


def scale_gets(kube: KubeApiServer) -> int:
    return sum(1 for method, path, _ in kube.requests if method == "GET" and "/scale" in path)


def steady_controller(
    api: client.ApiClient, clock: Clock, is_leader: Callable[[], bool] = lambda: True
) -> tuple[Controller, ReportStore]:
    """A controller over the API double's ``sim``, resyncing every 30 s, for a load of 2 pods
    (concurrency mode, 10 rows a pod; ``ticks`` reports 20 rows)."""
    store = ReportStore(ttl_s=1.0, missing_hold_s=60.0)
    spec = ScalingSpec(target_per_pod=10, target_utilisation=1.0, restart_hold_s=0)
    controller = Controller(
        targets=[Target("sim", NS, NAME, spec)],
        store=store,
        metrics=AutoscalerMetrics(),
        scaler=DeploymentScaler(actuator(api, []), resync_s=30.0, clock=clock),
        is_leader=is_leader,
        clock=clock,
    )
    return controller, store


async def ticks(controller: Controller, store: ReportStore, clock: Clock, n: int) -> None:
    """``n`` ticks 500 ms apart, each after a report of 20 rows in flight."""
    for _ in range(n):
        clock.advance(0.5)
        store.record(GatewayReport(replica_id="gw", model="sim", inflight_rows=20), clock.now)
        await controller.tick()


async def test_ticks_with_nothing_changing_read_the_scale_once_per_resync(
    kube: KubeApiServer, api: client.ApiClient
) -> None:
    clock = Clock(100.0)
    controller, store = steady_controller(api, clock)
    await ticks(controller, store, clock, 200)  # 100 s at 2 pods, the count it has
    assert patches(kube) == 0
    assert scale_gets(kube) <= 1 + 100 // 30


async def test_a_patch_is_followed_by_one_read_and_a_conflict_by_a_reread(
    kube: KubeApiServer, api: client.ApiClient
) -> None:
    clock = Clock(100.0)
    controller, store = steady_controller(api, clock)
    await ticks(controller, store, clock, 1)
    assert scale_gets(kube) == 1
    set_replicas(kube.store, NS, NAME, 5)  # kubectl scale: seen at the resync, or on a 409
    race(kube, 4)
    await ticks(controller, store, clock, 2)
    assert scale_gets(kube) == 1, "no read before the resync"
    await ticks(controller, store, clock, 60)  # the resync reads 5: scale back to 2
    # read (resync) → patch with its version → 409 (the race) → re-read → patch → read after
    assert replicas(kube) == 2 and patches(kube) == 2
    assert scale_gets(kube) == 4
    before = scale_gets(kube)
    await ticks(controller, store, clock, 20)
    assert scale_gets(kube) == before, "settled: the kept count serves the ticks"


async def test_a_replica_that_becomes_the_leader_reads_the_scale_afresh(
    kube: KubeApiServer, api: client.ApiClient
) -> None:
    clock = Clock(100.0)
    leading = False
    controller, store = steady_controller(api, clock, lambda: leading)
    await ticks(controller, store, clock, 10)
    assert scale_gets(kube) == 1, "a follower reads once, to start from"
    leading = True
    await ticks(controller, store, clock, 10)
    assert scale_gets(kube) == 2 and patches(kube) == 0
