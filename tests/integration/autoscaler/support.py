"""Shared by the gateway + autoscaler tests: closed-loop load, metric scrapes, bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from loadtest.probes.metrics import parse_metrics
from loadtest.stack.procs import GatewayProc, PodProc, start_gateway, start_pod
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from protos.infer import InferRequestBody
from protos.tensors import from_numpy

__all__ = ["NS", "Load", "autoscaler_config", "scrape", "start_sim", "until"]

NS = "default"


def autoscaler_config(kubeconfig: Path, identity: str) -> dict[str, Any]:
    """An autoscaler of the model ``sim`` (2 in flight per pod) on the API double, with a short
    Lease; ``server`` is the caller's."""
    return {
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


def scrape(url: str, name: str, **labels: str) -> float:
    """The value of one sample (its name and labels) of a metrics page; 0 if absent."""
    with urllib.request.urlopen(url, timeout=2) as resp:
        return parse_metrics(resp.read().decode()).total(name, **labels) or 0.0


async def until(predicate: Callable[[], bool], limit_s: float = 30.0) -> None:
    """Wait for a condition; the limit bounds a hang, it is not a timing assertion."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not await asyncio.to_thread(predicate):
        assert loop.time() < deadline, "condition not reached"
        await asyncio.sleep(0.1)


class Load:
    """Closed-loop gRPC clients on the gateway, counting answers and errors."""

    def __init__(self, address: str, clients: int, model: str = "sim") -> None:
        self.address = address
        self.clients = clients
        self.model = model
        self.ok = 0
        self.errors: list[str] = []
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Load:
        self._channel = grpc.aio.insecure_channel(self.address)
        stub = pb_grpc.GRPCInferenceServiceStub(self._channel)
        data = np.ones((1, 16), dtype=np.float32)
        request = v2_grpc.encode_request(
            self.model, InferRequestBody([from_numpy("INPUT0", "FP32", data)])
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


async def start_sim(reporting: dict[str, Any]) -> tuple[PodProc, GatewayProc]:
    """A simpod and a gateway ``gw-test`` serving it as ``sim``, reporting every 100 ms to the
    autoscaler that ``reporting`` names (its ``address`` or ``discovery``)."""
    pod = await asyncio.to_thread(start_pod, ["--fixed-ms", "20", "--per-row-ms", "0.1"])
    try:
        gateway = await asyncio.to_thread(
            start_gateway,
            [{"name": "sim", "endpoints": [pod.grpc_address], "dynamic_batching": {}}],
            extra={"autoscaler": {**reporting, "report_interval_ms": 100, "replica_id": "gw-test"}},
        )
    except BaseException:
        pod.stop()
        raise
    return pod, gateway
