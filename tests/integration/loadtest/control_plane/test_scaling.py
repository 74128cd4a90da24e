"""Scaling a Deployment through its scale subresource: pods start, become ready, drain, go."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.client import ApiClient, AppsV1Api

from gateway.discovery.client import api_client
from loadtest.control_plane.plane import ControlPlane
from loadtest.kube_api.objects import DEPLOYMENTS, ENDPOINTSLICES, PODS
from loadtest.kube_api.store import Change
from tests.integration.loadtest.control_plane.plane_wait import alive, eventually

Conditions = tuple[bool, bool, bool]  # (ready, serving, terminating)


@pytest.fixture
async def apps(kubeconfig: Path) -> AsyncIterator[AppsV1Api]:
    client: ApiClient = await api_client(str(kubeconfig))
    yield AppsV1Api(client)
    await client.close()


class SliceLog:
    """Every state each EndpointSlice was written in, in order; None: deleted."""

    def __init__(self) -> None:
        self.states: dict[str, list[Conditions | None]] = {}

    def __call__(self, change: Change) -> None:
        if change.resource != ENDPOINTSLICES:
            return
        obj = change.after or change.before
        assert obj is not None
        name = obj["metadata"]["name"]
        state: Conditions | None = None
        if change.after is not None:
            c = change.after["endpoints"][0]["conditions"]
            state = (c["ready"], c["serving"], c["terminating"])
        log = self.states.setdefault(name, [])
        if not log or log[-1] != state:
            log.append(state)


def status(plane: ControlPlane) -> dict[str, Any]:
    return dict(plane.api.store.get(DEPLOYMENTS, "models", "sim").get("status") or {})


def pods(plane: ControlPlane) -> list[str]:
    items, _ = plane.api.store.list(PODS, "models", {"app": "sim"})
    return sorted(p["metadata"]["name"] for p in items)


async def scale(apps: AppsV1Api, replicas: int) -> None:
    await apps.patch_namespaced_deployment_scale("sim", "models", {"spec": {"replicas": replicas}})


async def test_scaling_0_2_1_starts_pods_then_drains_one(
    plane: ControlPlane, apps: AppsV1Api
) -> None:
    slices = SliceLog()
    plane.api.store.on_write.append(slices)
    plane.add_deployment("sim", 0)
    await eventually(lambda: status(plane).get("observedGeneration") == 1, "status observed")
    assert pods(plane) == [] and not status(plane).get("replicas")

    await scale(apps, 2)
    await eventually(lambda: status(plane).get("readyReplicas") == 2, "2 ready replicas")
    st = status(plane)
    assert (st["replicas"], st["availableReplicas"], st["updatedReplicas"]) == (2, 2, 2)
    assert st["observedGeneration"] == 2
    started = pods(plane)
    assert len(started) == 2 and set(slices.states) == set(started)
    for name in started:  # each slice first not ready, then ready and serving
        assert slices.states[name] == [(False, False, False), (True, True, False)]
    pids = list(plane.kubelet.pids)
    assert len(pids) == 2

    await scale(apps, 1)
    await eventually(lambda: len(pods(plane)) == 1, "one pod left")
    (gone,) = set(started) - set(pods(plane))
    assert slices.states[gone][-2:] == [(False, True, True), None]  # drained, then removed
    await eventually(lambda: status(plane).get("replicas") == 1, "status of 1 replica")
    assert status(plane)["readyReplicas"] == 1
    assert sum(alive(pid) for pid in pids) == 1  # the drained pod's process has exited
