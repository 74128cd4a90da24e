"""The gateway and the autoscaler together, over the real gRPC report stream.

A real simpod behind a gateway whose reporter streams to an ``autoscaler`` process; the
autoscaler scales a Deployment in the Kubernetes API double (served from this test's event
loop) and holds its Lease there. Load on the gateway moves the Deployment's count; killing the
autoscaler does not disturb serving; a restarted autoscaler resumes without a scale-down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loadtest.kube_api.objects import (
    DEPLOYMENTS,
    EVENTS,
    LEASES,
    deployment,
    spec_replicas,
    write_kubeconfig,
)
from loadtest.kube_api.server import KubeApiServer
from loadtest.stack.procs import HOST, AutoscalerProc, free_port, start_autoscaler
from tests.integration.autoscaler.support import (
    NS,
    Load,
    autoscaler_config,
    scrape,
    start_sim,
    until,
)


@pytest.fixture
async def kube() -> AsyncIterator[KubeApiServer]:
    """The API server double, holding the Deployment ``sim`` at one replica."""
    async with KubeApiServer() as server:
        server.store.create(DEPLOYMENTS, NS, deployment("sim", 1, {"app": "sim"}))
        yield server


def replicas(kube: KubeApiServer) -> int:
    return spec_replicas(kube.store, NS, "sim")


async def test_load_scales_killing_the_autoscaler_does_not_disturb_serving_and_a_restart_holds(
    kube: KubeApiServer, tmp_path: Path
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.url, NS)
    grpc_port = free_port()  # the restarted autoscaler comes back on the same address

    def start(identity: str) -> AutoscalerProc:
        return start_autoscaler(autoscaler_config(kubeconfig, identity), grpc_port=grpc_port)

    pod, gateway = await start_sim({"address": f"{HOST}:{grpc_port}"})
    first = await asyncio.to_thread(start, "first")
    first_metrics = first.metrics_url
    second: AutoscalerProc | None = None
    try:
        await until(lambda: scrape(first_metrics, "autoscaler_leader") == 1.0)
        assert replicas(kube) == 1
        async with Load(gateway.grpc_address, clients=16) as load:
            await until(lambda: replicas(kube) >= 3)
            scaled_to = replicas(kube)
            # The Event is written after the scale patch: wait for it, do not race it.
            await until(
                lambda: any(
                    e["reason"] == "SuccessfulRescale" for e in kube.store.list(EVENTS, NS, {})[0]
                )
            )
            first.kill()  # SIGKILL: no goodbye, the Lease is not released
            first.popen.wait(timeout=30)
            served = load.ok
            connected = f"{gateway.metrics_url}"
            await until(lambda: scrape(connected, "gateway_autoscaler_connected") == 0.0)
            await until(lambda: load.ok > served + 200)
            assert not load.errors, "serving is not disturbed by the autoscaler's absence"
        scaled_to = max(scaled_to, replicas(kube))
        # No load now: a fresh autoscaler would see no demand, but it just (re)started.
        second = await asyncio.to_thread(start, "second")
        second_metrics = second.metrics_url
        await until(lambda: scrape(second_metrics, "autoscaler_leader") == 1.0)
        hold = {"model": "sim", "reason": "hold_restart"}
        await until(lambda: scrape(second_metrics, "autoscaler_decisions_total", **hold) >= 10)
        assert replicas(kube) == scaled_to, "no scale-down after a restart"
        lease = kube.store.get(LEASES, NS, "inference-autoscaler")
        assert lease["spec"]["holderIdentity"] == "second"
    finally:
        for proc in (second, first):
            if proc is not None:
                proc.stop()
        await asyncio.to_thread(gateway.stop)
        await asyncio.to_thread(pod.stop)
