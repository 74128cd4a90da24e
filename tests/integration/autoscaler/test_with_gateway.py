"""The gateway and the autoscaler together, over the real gRPC report stream.

A real simpod behind a gateway whose reporter streams to an ``autoscaler`` process; the
autoscaler scales a Deployment in the Kubernetes API double (served from this test's event
loop) and holds its Lease there. Load on the gateway moves the Deployment's count; killing the
autoscaler does not disturb serving; a restarted autoscaler resumes without a scale-down.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
import yaml

from loadtest.kube_api.objects import (
    DEPLOYMENTS,
    EVENTS,
    LEASES,
    deployment,
    spec_replicas,
    write_kubeconfig,
)
from loadtest.kube_api.server import KubeApiServer
from loadtest.probes.metrics import parse_metrics
from loadtest.stack.procs import HOST, Proc, free_port, start_gateway, start_pod, wait_http
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from protos.infer import InferRequestBody
from protos.tensors import from_numpy

NS = "default"


@pytest.fixture
async def kube() -> AsyncIterator[KubeApiServer]:
    """The API server double, holding the Deployment ``sim`` at one replica."""
    async with KubeApiServer() as server:
        server.store.create(DEPLOYMENTS, NS, deployment("sim", 1, {"app": "sim"}))
        yield server


def start_autoscaler(config: dict[str, Any], tmp_path: Path, name: str) -> tuple[Proc, str]:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    exe = str(Path(sys.executable).parent / "autoscaler")
    popen = subprocess.Popen([exe, "--config", str(path)], start_new_session=True)
    metrics = f"http://{HOST}:{config['server']['metrics_port']}"
    try:
        wait_http(f"{metrics}/healthz", proc=popen)
    except BaseException:
        popen.kill()
        raise
    return Proc(name, popen), f"{metrics}/metrics"


def scrape(url: str, name: str, **labels: str) -> float:
    """The value of one sample (its name and labels) of a metrics page; 0 if absent."""
    with urllib.request.urlopen(url, timeout=2) as resp:
        return parse_metrics(resp.read().decode()).total(name, **labels) or 0.0


def replicas(kube: KubeApiServer) -> int:
    return spec_replicas(kube.store, NS, "sim")


async def until(predicate: Callable[[], bool], limit_s: float = 30.0) -> None:
    """Wait for a condition; the limit bounds a hang, it is not a timing assertion."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not await asyncio.to_thread(predicate):
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.1)


class Load:
    """Closed-loop gRPC clients on the gateway, counting answers and errors."""

    def __init__(self, address: str, clients: int) -> None:
        self.address = address
        self.clients = clients
        self.ok = 0
        self.errors: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Load:
        self._channel = grpc.aio.insecure_channel(self.address)
        stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        data = np.ones((1, 16), dtype=np.float32)
        request = v2_grpc.encode_request(
            "sim", InferRequestBody([from_numpy("INPUT0", "FP32", data)])
        )

        async def client() -> None:
            while True:
                try:
                    await stub.ModelInfer(request, timeout=10)
                    self.ok += 1
                except grpc.aio.AioRpcError as exc:
                    self.errors.append(exc.code().name)

        self._tasks = [asyncio.create_task(client()) for _ in range(self.clients)]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._channel.close()


async def test_load_scales_killing_the_autoscaler_does_not_disturb_serving_and_a_restart_holds(
    kube: KubeApiServer, tmp_path: Path
) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", kube.url, NS)
    grpc_port = free_port()

    def config(identity: str) -> dict[str, Any]:
        return {
            "server": {"host": HOST, "grpc_port": grpc_port, "metrics_port": free_port()},
            "kubernetes": {"namespace": NS, "kubeconfig": str(kubeconfig)},
            "leader_election": {
                "identity": identity,
                "lease_duration_s": 2,
                "renew_deadline_s": 1.5,
                "retry_period_s": 0.2,
            },
            "tick_ms": 200,
            "report_ttl_ms": 1000,
            "models": [
                {
                    "name": "sim",
                    "scaling": {
                        "target_per_pod": 2,
                        "target_utilisation": 1.0,
                        "max_replicas": 5,
                        "stable_window_s": 4,
                        "panic_window_s": 1,
                        "scale_down_stabilization_s": 1,
                        "restart_hold_s": 60,
                    },
                }
            ],
        }

    pod = await asyncio.to_thread(start_pod, ["--fixed-ms", "20", "--per-row-ms", "0.1"])
    gateway = await asyncio.to_thread(
        start_gateway,
        [{"name": "sim", "endpoints": [pod.grpc_address], "dynamic_batching": {}}],
        extra={
            "autoscaler": {
                "address": f"{HOST}:{grpc_port}",
                "report_interval_ms": 100,
                "replica_id": "gw-test",
            }
        },
    )
    first, first_metrics = await asyncio.to_thread(start_autoscaler, config("first"), tmp_path, "a")
    second: Proc | None = None
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
            first.popen.wait()
            served = load.ok
            connected = f"{gateway.metrics_url}"
            await until(lambda: scrape(connected, "gateway_autoscaler_connected") == 0.0)
            await until(lambda: load.ok > served + 200)
            assert not load.errors, "serving is not disturbed by the autoscaler's absence"
        scaled_to = max(scaled_to, replicas(kube))
        # No load now: a fresh autoscaler would see no demand, but it just (re)started.
        second, second_metrics = await asyncio.to_thread(
            start_autoscaler, config("second"), tmp_path, "b"
        )
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
