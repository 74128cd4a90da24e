"""The real kubectl against the control plane: get, scale, and get -w streaming changes."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path

import pytest

from loadtest.control_plane.plane import ControlPlane
from loadtest.kube_api.objects import ENDPOINTSLICES, PODS
from tests.integration.loadtest.control_plane.plane_wait import BOUND_S, eventually

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


async def kubectl(kubeconfig: Path, *args: str) -> str:
    assert KUBECTL is not None
    proc = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(kubeconfig), *args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), BOUND_S)
    assert proc.returncode == 0, err.decode()
    return out.decode()


def pod_names(plane: ControlPlane, resource: str = PODS) -> list[str]:
    items, _ = plane.api.store.list(resource, "models", {})
    return [p["metadata"]["name"] for p in items]


async def test_get_lists_deployments_pods_slices_and_events(
    plane: ControlPlane, kubeconfig: Path
) -> None:
    plane.add_deployment("sim", 1)
    await eventually(lambda: len(pod_names(plane, ENDPOINTSLICES)) == 1, "a pod's slice")
    (pod,) = pod_names(plane)
    out = await kubectl(kubeconfig, "get", "deployments,pods,endpointslices,events", "-n", "models")
    assert "deployment.apps/sim" in out
    assert f"pod/{pod}" in out
    assert f"endpointslice.discovery.k8s.io/{pod}" in out
    assert f"event/{pod}." in out


async def test_scale_and_watch_stream_a_new_pod(plane: ControlPlane, kubeconfig: Path) -> None:
    plane.add_deployment("sim", 1)
    await eventually(lambda: len(pod_names(plane)) == 1, "a pod")
    before = set(pod_names(plane))
    assert KUBECTL is not None
    watch = await asyncio.create_subprocess_exec(
        KUBECTL, "--kubeconfig", str(kubeconfig), "get", "pods", "-w", "-n", "models",
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    assert watch.stdout is not None
    try:
        first = await asyncio.wait_for(watch.stdout.readline(), BOUND_S)  # the header
        assert b"NAME" in first
        out = await kubectl(kubeconfig, "scale", "deployment", "sim", "--replicas=2")
        assert "scaled" in out
        await eventually(lambda: len(pod_names(plane)) == 2, "a second pod")
        (new,) = set(pod_names(plane)) - before
        seen = ""
        while new not in seen:
            line = await asyncio.wait_for(watch.stdout.readline(), BOUND_S)
            assert line, f"kubectl get -w ended before {new} showed:\n{seen}"
            seen += line.decode()
    finally:
        watch.terminate()
        await watch.wait()
