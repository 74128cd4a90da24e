"""The actuator against the API double: scale subresource reads and merge-patches, 409 races,
429 Retry-After, 5xx backoff, and an Event per change. Waits are recorded, never slept."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from kubernetes_asyncio import client

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from autoscaler_kube_double import KubeDouble

from autoscaler.actuator import ScaleActuator, ScaleError

NS, NAME = "models", "sim"


@pytest.fixture
async def kube() -> AsyncIterator[tuple[KubeDouble, client.ApiClient]]:
    double = KubeDouble()
    double.add_deployment(NS, NAME, 2)
    server = TestServer(double.app(), host="127.0.0.1")
    await server.start_server()
    configuration = client.Configuration(host=str(server.make_url("")).rstrip("/"))
    api = client.ApiClient(configuration)
    yield double, api
    await api.close()
    await server.close()


def actuator(api: client.ApiClient, sleeps: list[float]) -> ScaleActuator:
    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    return ScaleActuator(
        api,
        instance="autoscaler-0",
        sleep=record,
        wall_clock=lambda: datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    )


def patches(double: KubeDouble) -> int:
    return sum(1 for _, kind in double.requests if kind == "patch_scale")


async def test_a_change_patches_the_scale_and_records_an_event(
    kube: tuple[KubeDouble, client.ApiClient],
) -> None:
    double, api = kube
    result = await actuator(api, []).scale(NS, NAME, 5, "panic")
    assert (result.previous, result.replicas, result.patched) == (2, 5, True)
    assert double.deployments[(NS, NAME)] == 5
    [event] = double.events
    assert event["reason"] == "SuccessfulRescale"
    assert event["message"] == "New size: 5; reason: panic; from 2 to 5"
    assert event["involvedObject"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": NAME,
        "namespace": NS,
    }
    assert event["firstTimestamp"] == "2026-01-02T03:04:05Z"


async def test_no_change_no_patch_no_event(kube: tuple[KubeDouble, client.ApiClient]) -> None:
    double, api = kube
    result = await actuator(api, []).scale(NS, NAME, 2, "stable")
    assert not result.patched and patches(double) == 0 and not double.events


async def test_a_conflicting_writer_makes_it_reread_and_retry(
    kube: tuple[KubeDouble, client.ApiClient],
) -> None:
    double, api = kube
    double.before_patch = lambda d: d.set_replicas(NS, NAME, 3)  # kubectl scale, just before
    result = await actuator(api, []).scale(NS, NAME, 6, "stable")
    assert (result.previous, result.conflicts, result.patched) == (3, 1, True)
    assert double.deployments[(NS, NAME)] == 6 and patches(double) == 2
    assert double.events[0]["message"].endswith("from 3 to 6")


async def test_a_writer_that_set_the_same_count_leaves_nothing_to_do(
    kube: tuple[KubeDouble, client.ApiClient],
) -> None:
    double, api = kube
    double.before_patch = lambda d: d.set_replicas(NS, NAME, 6)
    result = await actuator(api, []).scale(NS, NAME, 6, "stable")
    assert (result.patched, result.conflicts) == (False, 1) and not double.events


async def test_429_waits_for_retry_after(kube: tuple[KubeDouble, client.ApiClient]) -> None:
    double, api = kube
    double.fail("patch_scale", 429, {"Retry-After": "3"})
    sleeps: list[float] = []
    assert (await actuator(api, sleeps).scale(NS, NAME, 4, "stable")).patched
    assert sleeps == [3.0] and double.deployments[(NS, NAME)] == 4


async def test_5xx_backs_off_exponentially(kube: tuple[KubeDouble, client.ApiClient]) -> None:
    double, api = kube
    double.fail("get_scale", 503)
    double.fail("patch_scale", 500)
    double.fail("patch_scale", 500)
    sleeps: list[float] = []
    assert (await actuator(api, sleeps).scale(NS, NAME, 4, "stable")).patched
    assert sleeps == [0.2, 0.2, 0.4]


async def test_gives_up_after_the_attempts(kube: tuple[KubeDouble, client.ApiClient]) -> None:
    double, api = kube
    for _ in range(10):
        double.fail("patch_scale", 503)
    sleeps: list[float] = []
    with pytest.raises(ScaleError):
        await actuator(api, sleeps).scale(NS, NAME, 4, "stable")
    assert len(sleeps) == 6 and double.deployments[(NS, NAME)] == 2


async def test_scale_to_zero_reads_back_as_zero(kube: tuple[KubeDouble, client.ApiClient]) -> None:
    _, api = kube
    act = actuator(api, [])
    await act.scale(NS, NAME, 0, "scale_to_zero")
    assert (await act.read(NS, NAME)).replicas == 0  # spec.replicas is omitted at 0
    assert (await act.scale(NS, NAME, 1, "scale_from_zero")).previous == 0


async def test_a_failed_event_does_not_undo_the_scale(
    kube: tuple[KubeDouble, client.ApiClient],
) -> None:
    double, api = kube
    double.fail("event", 403)
    assert (await actuator(api, []).scale(NS, NAME, 3, "stable")).patched
    assert double.deployments[(NS, NAME)] == 3 and not double.events
