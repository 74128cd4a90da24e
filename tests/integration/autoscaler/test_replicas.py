"""Two autoscaler replicas behind a headless Service, one gateway streaming to both.

The gateway finds the replicas through the Service's EndpointSlices (served by the API double)
and keeps a report stream to each; both aggregate its load, only the Lease holder patches the
Deployment, and both stay ready. Killing the leader hands the Lease to the standby, which
already holds the whole load: it goes on deciding on it without a gap or a scale-down.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from loadtest.kube_api.objects import (
    DEPLOYMENTS,
    ENDPOINTSLICES,
    LEASES,
    SliceEndpoint,
    deployment,
    endpoint_slice,
    spec_replicas,
    write_kubeconfig,
)
from loadtest.kube_api.server import KubeApiServer
from loadtest.stack.procs import (
    HOST,
    AutoscalerProc,
    free_port,
    start_autoscaler,
)
from tests.integration.autoscaler.support import (
    NS,
    Load,
    autoscaler_config,
    scrape,
    start_sim,
    until,
)

SERVICE = "inference-autoscaler"  # the autoscalers' headless Service


@pytest.fixture
async def kube() -> AsyncIterator[KubeApiServer]:
    """The API double, holding the Deployment ``sim`` at one replica."""
    async with KubeApiServer() as server:
        server.store.create(DEPLOYMENTS, NS, deployment("sim", 1, {"app": "sim"}))
        yield server


def publish(kube: KubeApiServer, name: str, grpc_port: int) -> None:
    """The EndpointSlice of one autoscaler pod (one slice each: they share an IP here)."""
    endpoint = SliceEndpoint(HOST, pod=name)
    kube.store.create(ENDPOINTSLICES, NS, endpoint_slice(name, SERVICE, [endpoint], port=grpc_port))


def ready(scaler: AutoscalerProc) -> bool:
    with urllib.request.urlopen(f"http://{HOST}:{scaler.metrics_port}/healthz", timeout=2) as r:
        return bool(r.status == 200)


def decisions(scaler: AutoscalerProc, **labels: str) -> float:
    return scrape(scaler.metrics_url, "autoscaler_decisions_total", model="sim", **labels)


async def test_both_replicas_hear_the_gateway_only_the_leader_acts_and_a_takeover_has_the_load(
    kube: KubeApiServer, tmp_path: Path
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.url, NS)
    ports = {name: free_port() for name in ("autoscaler-a", "autoscaler-b")}
    for name, port in ports.items():
        publish(kube, name, port)
    discovery = {
        "namespace": NS,
        "service": SERVICE,
        "port_name": "grpc",
        "kubeconfig": str(kubeconfig),
    }
    pod, gateway = await start_sim({"discovery": discovery})
    scalers: dict[str, AutoscalerProc] = {}
    try:
        for name, port in ports.items():
            scalers[name] = await asyncio.to_thread(
                start_autoscaler, autoscaler_config(kubeconfig, name), grpc_port=port
            )
        heard = {"gateway": "gw-test", "rpc": "Exchange"}
        for scaler in scalers.values():  # every replica hears the gateway, two-way
            url = scaler.metrics_url

            def hears(url: str = url) -> bool:
                return scrape(url, "autoscaler_gateway_reports_total", **heard) > 0

            await until(hears)
        lead = {n: s.metrics_url for n, s in scalers.items()}
        await until(lambda: sum(scrape(u, "autoscaler_leader") for u in lead.values()) == 1.0)
        leader_name = next(n for n, u in lead.items() if scrape(u, "autoscaler_leader") == 1.0)
        leader = scalers[leader_name]
        standby_name = next(n for n in scalers if n != leader_name)
        standby = scalers[standby_name]
        assert all(ready(s) for s in scalers.values()), "a standby is ready too"
        gw = gateway.metrics_url
        await until(lambda: scrape(gw, "gateway_autoscaler_streams") == 2.0)
        await until(lambda: scrape(gw, "gateway_autoscaler_leader_connected") == 1.0)

        async with Load(gateway.grpc_address, clients=16) as load:
            await until(lambda: spec_replicas(kube.store, NS, "sim") >= 3)  # the leader acted
            # The standby aggregates the same load: it sees the gateway and its demand.
            s_url = standby.metrics_url
            await until(
                lambda: scrape(s_url, "autoscaler_demand_pods", model="sim", window="stable") >= 2
            )
            assert scrape(s_url, "autoscaler_reporting_gateways", model="sim") == 1.0
            assert scrape(s_url, "autoscaler_scale_changes_total", result="patched") == 0.0
            scaled_to = spec_replicas(kube.store, NS, "sim")
            no_data = decisions(standby, reason="hold_no_data")

            leader.kill()  # SIGKILL: no goodbye, the Lease is not released
            leader.popen.wait(timeout=30)
            kube.store.delete(ENDPOINTSLICES, NS, leader_name)  # as the endpoints controller
            await until(lambda: scrape(s_url, "autoscaler_leader") == 1.0)
            taken_over = decisions(standby)
            await until(lambda: decisions(standby) >= taken_over + 10)
            assert decisions(standby, reason="hold_no_data") == no_data, "it had the load"
            assert spec_replicas(kube.store, NS, "sim") >= scaled_to, "no scale-down"
            await until(lambda: scrape(gw, "gateway_autoscaler_streams") == 1.0)
            await until(lambda: scrape(gw, "gateway_autoscaler_leader_connected") == 1.0)
            assert not load.errors
        lease = kube.store.get(LEASES, NS, "inference-autoscaler")
        assert lease["spec"]["holderIdentity"] == standby_name
    finally:
        for scaler in scalers.values():
            scaler.stop()
        await asyncio.to_thread(gateway.stop)
        await asyncio.to_thread(pod.stop)
