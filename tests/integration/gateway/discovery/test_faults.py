"""Pod faults under steady load, with the gateway finding its pods through the API double.

Real simulated pods, a real gateway process reading the double through a kubeconfig, and a
steady stream of requests. A pod killed mid-batch, a pod that stalls, and a pod that drains
each lose no request: every request gets its correct answer or an explicit error from the
gateway, none hangs, and the in-flight gauges go back to zero.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import pytest

from loadtest.kube_api.objects import (
    ENDPOINTSLICES,
    SliceEndpoint,
    endpoint_slice,
    write_kubeconfig,
)
from loadtest.kube_api.server import KubeApiServer
from loadtest.probes.metrics import parse_metrics
from loadtest.stack.procs import GatewayProc, PodProc, start_gateway, start_pod
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from protos.infer import InferRequestBody
from protos.tensors import from_numpy, to_numpy

FAST = ["--fixed-ms", "2", "--per-row-ms", "0.1", "--devices", "2"]
DEADLINE_MS = 3000  # the model's default timeout: every request is answered within it
CLIENT_TIMEOUT_S = 10.0  # far past the deadline: hitting it means the gateway let one hang
BOUND_S = 15.0  # upper bound to fail on while waiting for a state, never a measured time


def _slice(pod: PodProc, **conditions: bool) -> dict[str, object]:
    return endpoint_slice(
        f"sim-{pod.grpc_port}",
        "sim",
        [SliceEndpoint("127.0.0.1", pod=f"sim-{pod.grpc_port}", **conditions)],
        port=pod.grpc_port,
    )


@dataclass
class Stack:
    api: KubeApiServer
    pods: list[PodProc]
    gateway: GatewayProc

    def set_pod(self, pod: PodProc, **conditions: bool) -> None:
        self.api.store.replace(ENDPOINTSLICES, "default", _slice(pod, **conditions))

    def remove_pod(self, pod: PodProc) -> None:
        self.api.store.delete(ENDPOINTSLICES, "default", f"sim-{pod.grpc_port}")


@dataclass
class Outcomes:
    ok: int = 0
    wrong: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)
    hung: int = 0


async def steady_load(address: str, stop: asyncio.Event, workers: int = 6) -> Outcomes:
    """Closed-loop load until ``stop``: each answer is checked against 2·x."""
    out = Outcomes()
    async with grpc.aio.insecure_channel(address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)

        async def worker(seed: int) -> None:
            rng = np.random.default_rng(seed)
            while not stop.is_set():
                x = rng.standard_normal((int(rng.integers(1, 4)), 16), dtype=np.float32)
                request = v2_grpc.encode_request(
                    "sim", InferRequestBody([from_numpy("INPUT0", "FP32", x)])
                )
                try:
                    reply = await stub.ModelInfer(request, timeout=CLIENT_TIMEOUT_S)
                except grpc.aio.AioRpcError as exc:
                    details = exc.details() or ""
                    if (
                        exc.code() is grpc.StatusCode.DEADLINE_EXCEEDED
                        and details == "Deadline Exceeded"
                    ):
                        out.hung += 1  # the client's own deadline: the gateway never answered
                    else:
                        out.errors.append((exc.code().name, details))
                    continue
                y = to_numpy(v2_grpc.decode_response(reply).outputs[0])
                if np.array_equal(y, 2 * x):
                    out.ok += 1
                else:
                    out.wrong += 1

        await asyncio.gather(*(worker(i) for i in range(workers)))
    return out


def gauge(text: str, name: str) -> dict[str, float]:
    """Samples of a gauge of model ``sim`` by its pod label."""
    return parse_metrics(text).by_label(name, "model_server_pod", model="sim")


async def scrape(url: str) -> str:
    def get() -> str:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.read().decode()

    return await asyncio.to_thread(get)


async def wait_for(check: object, what: str) -> None:
    end = time.monotonic() + BOUND_S
    while time.monotonic() < end:
        if await check():  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"not within {BOUND_S} s: {what}")


async def pod_ready_in_gateway(stack: Stack, pod: PodProc, ready: bool) -> bool:
    text = await scrape(stack.gateway.metrics_url)
    return gauge(text, "gateway_pod_ready").get(pod.grpc_address) == (1.0 if ready else 0.0)


async def inflight_back_to_zero(stack: Stack) -> None:
    async def zero() -> bool:
        values = gauge(await scrape(stack.gateway.metrics_url), "gateway_pod_inflight_batches")
        return bool(values) and all(v == 0 for v in values.values())

    await wait_for(zero, "every gateway_pod_inflight_batches back to 0")


def executions(pod: PodProc) -> float:
    with urllib.request.urlopen(f"{pod.http_url}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return parse_metrics(text).total("nv_inference_exec_count", model="sim") or 0.0


@pytest.fixture
async def stack(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Stack]:
    """Three pods (the third with the test's extra flags), the double listing them, a gateway."""
    extra: list[str] = getattr(request, "param", [])
    api = KubeApiServer()
    await api.start()
    pods = await asyncio.gather(
        asyncio.to_thread(start_pod, FAST),
        asyncio.to_thread(start_pod, FAST),
        asyncio.to_thread(start_pod, [*FAST, *extra]),
    )
    for pod in pods:
        api.store.create(ENDPOINTSLICES, "default", _slice(pod))
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", api.url)
    model = {
        "name": "sim",
        "default_timeout_ms": DEADLINE_MS,
        "discovery": {
            "service": "sim",
            "port_name": "grpc",
            "kubeconfig": str(kubeconfig),
            "watch_timeout_s": 5,
            "silence_timeout_s": 10,
        },
    }
    gateway = await asyncio.to_thread(start_gateway, [model])
    s = Stack(api, list(pods), gateway)
    try:
        for pod in pods:
            await wait_for(lambda p=pod: pod_ready_in_gateway(s, p, True), "pods seen ready")
        yield s
    finally:
        await asyncio.to_thread(gateway.stop)
        for pod in pods:
            await asyncio.to_thread(pod.stop)
        await api.stop()


def assert_nothing_lost(out: Outcomes) -> None:
    assert out.hung == 0 and out.wrong == 0
    assert out.ok > 50
    for code, details in out.errors:  # explicit errors from the gateway, none silent
        assert code in ("DEADLINE_EXCEEDED", "UNAVAILABLE"), (code, details)
        assert details and details != "Deadline Exceeded"


async def end_load(stack: Stack, stop: asyncio.Event, load: asyncio.Task[Outcomes]) -> Outcomes:
    """Stop the load; nothing was lost, every error was a deadline, and nothing is left in
    flight on any pod."""
    stop.set()
    out = await load
    assert_nothing_lost(out)
    assert all(code == "DEADLINE_EXCEEDED" for code, _ in out.errors)
    await inflight_back_to_zero(stack)
    return out


async def test_a_pod_killed_mid_batch_loses_no_request(stack: Stack) -> None:
    stop = asyncio.Event()
    load = asyncio.create_task(steady_load(stack.gateway.grpc_address, stop))
    await asyncio.sleep(0.7)
    victim = stack.pods[2]
    victim.kill()  # SIGKILL, batches in flight
    await asyncio.sleep(0.7)
    stack.remove_pod(victim)  # Kubernetes notices later than the gateway
    await asyncio.sleep(0.5)
    # Every batch of the killed pod went to another pod: none failed UNAVAILABLE. (On a busy
    # machine a request may still miss its deadline; that error is explicit, and allowed.)
    await end_load(stack, stop, load)


@pytest.mark.parametrize("stack", [["--stall-rate", "1.0"]], indirect=True)
async def test_a_pod_that_stalls_loses_no_request(stack: Stack) -> None:
    stop = asyncio.Event()
    load = asyncio.create_task(steady_load(stack.gateway.grpc_address, stop))
    await asyncio.sleep(4.0)  # more than a deadline: the stalled batches fail explicitly
    out = await end_load(stack, stop, load)
    assert out.errors  # the stalled pod's batches were answered, with an explicit error


async def test_a_draining_pod_gets_no_new_batch_and_loses_no_request(stack: Stack) -> None:
    stop = asyncio.Event()
    load = asyncio.create_task(steady_load(stack.gateway.grpc_address, stop))
    await asyncio.sleep(0.5)
    draining = stack.pods[2]
    stack.set_pod(draining, ready=False, serving=True, terminating=True)
    await wait_for(lambda: pod_ready_in_gateway(stack, draining, False), "the drain seen")
    await asyncio.sleep(0.2)  # batches sent before the drain finish
    before = await asyncio.to_thread(executions, draining)
    await asyncio.sleep(0.8)
    assert await asyncio.to_thread(executions, draining) == before  # no new batch
    stack.remove_pod(draining)
    draining.stop()  # SIGTERM once out of the slices
    await asyncio.sleep(0.3)
    await end_load(stack, stop, load)
