"""A pod that stalls, with real processes: its batches are cut by the per-try timeout the cost
model sets and answered by the healthy pod, well before the callers' deadline, and it is
ejected; a caller that leaves has its batch cancelled on the pod."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections.abc import Callable
from typing import Any

import aiohttp
import grpc
import numpy as np
import pytest

from loadtest.probes.metrics import Scrape, parse_metrics
from loadtest.stack.procs import GatewayProc, PodProc, start_gateway
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc, v2_http
from protos.infer import InferRequestBody
from protos.tensors import from_numpy, to_numpy

POD = ["--fixed-ms", "20", "--per-row-ms", "0.5"]
DEADLINE_MS = 20_000  # the callers' deadline: a stalled pod holds a batch past it
BOUND_S = 15.0  # an upper bound to fail on, never a measured time


def scrape(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return parse_metrics(resp.read().decode())


def pod_count(pod: PodProc, name: str, **labels: str) -> float:
    return scrape(f"{pod.http_url}/metrics").total(name, model="sim", **labels) or 0.0


async def wait_for(check: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + BOUND_S
    while not await asyncio.to_thread(check):
        if time.monotonic() > end:
            raise AssertionError(f"not within {BOUND_S} s: {what}")
        await asyncio.sleep(0.02)


def request(seed: int) -> tuple[InferRequestBody, np.ndarray]:
    x = np.random.default_rng(seed).standard_normal((1, 16), dtype=np.float32)
    return InferRequestBody([from_numpy("INPUT0", "FP32", x)], id=f"r{seed}"), x


async def grpc_infer(stub: pb_grpc.GRPCInferenceServiceStub, seed: int) -> None:
    body, x = request(seed)
    reply = await stub.ModelInfer(v2_grpc.encode_request("sim", body), timeout=BOUND_S)
    np.testing.assert_array_equal(to_numpy(v2_grpc.decode_response(reply).outputs[0]), 2 * x)


async def http_infer(session: aiohttp.ClientSession, gw: GatewayProc, seed: int) -> None:
    body, x = request(seed)
    payload, _ = v2_http.encode_request(body, False)
    async with session.post(f"{gw.http_url}/v2/models/sim/infer", data=payload) as resp:
        assert resp.status == 200, await resp.text()
        out = v2_http.decode_response(await resp.read(), None)
    np.testing.assert_array_equal(to_numpy(out.outputs[0]), 2 * x)


async def set_faults(session: aiohttp.ClientSession, pod: PodProc, **rates: float) -> None:
    async with session.put(f"{pod.http_url}/faults", json=rates) as resp:
        assert resp.status == 200, await resp.text()


async def burst(
    stub: pb_grpc.GRPCInferenceServiceStub,
    session: aiohttp.ClientSession,
    gw: GatewayProc,
    seed: int,
) -> None:
    """8 gRPC and 8 HTTP requests at once; each must be answered 200, with its own answer."""
    calls = [grpc_infer(stub, seed + i) for i in range(8)]
    calls += [http_infer(session, gw, seed + 8 + i) for i in range(8)]
    await asyncio.wait_for(asyncio.gather(*calls), BOUND_S)


def model(pods: list[PodProc], backend: str = "grpc", **settings: Any) -> dict[str, Any]:
    """The model on ``pods``, reached over ``backend``: gRPC, or their v2 REST API."""
    if backend == "http":
        endpoints = [p.http_url.removeprefix("http://") for p in pods]
    else:
        endpoints = [p.grpc_address for p in pods]
    return {
        "name": "sim",
        "backend_protocol": backend,
        "endpoints": endpoints,
        "default_timeout_ms": DEADLINE_MS,
        "max_queue_wait_ms": 0,
        **settings,
    }


BACKENDS = pytest.mark.parametrize("backend", ["grpc", "http"])


@BACKENDS
async def test_a_stalled_pod_s_batches_are_cut_and_answered_by_the_healthy_pod(
    two_pods: list[PodProc], backend: str
) -> None:
    healthy, stalled = two_pods
    settings = model(
        two_pods,
        backend,
        per_try_timeout={"factor": 4, "min_ms": 1000},
        outlier_detection={"consecutive_failures": 1},
    )
    gw = await asyncio.to_thread(start_gateway, [settings])
    try:
        async with (
            aiohttp.ClientSession() as session,
            grpc.aio.insecure_channel(gw.grpc_address) as channel,
        ):
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            for i in range(10):  # the cost model learns the pods' batch time
                await grpc_infer(stub, i)
            fitted = "gateway_batch_cost_fixed_seconds"
            await wait_for(
                lambda: scrape(gw.metrics_url).total(fitted, model="sim") is not None, fitted
            )
            await set_faults(session, stalled, stall_rate=1.0)
            before = pod_count(healthy, "nv_inference_request_success")
            stalled_before = pod_count(stalled, "nv_inference_request_success")
            await burst(stub, session, gw, 100)
            pending = "nv_inference_pending_request_count"
            await wait_for(lambda: pod_count(stalled, pending) == 0, "the stalled tries cut")
            cut = pod_count(stalled, "nv_inference_request_failure", reason="CANCELED")
            assert cut >= 1  # it held a batch, which the per-try timeout cut
            await burst(stub, session, gw, 200)  # the stalled pod is out: ejected
            assert pod_count(stalled, "nv_inference_request_failure", reason="CANCELED") == cut
            assert pod_count(stalled, pending) == 0
        assert pod_count(healthy, "nv_inference_request_success") - before >= 32
        assert pod_count(stalled, "nv_inference_request_success") == stalled_before
    finally:
        await asyncio.to_thread(gw.stop)


@BACKENDS
async def test_a_caller_that_leaves_has_its_batch_cancelled_on_the_pod(
    two_pods: list[PodProc], backend: str
) -> None:
    pod = two_pods[0]
    off = {"factor": 0}  # only the callers' deadline bounds a try
    gw = await asyncio.to_thread(start_gateway, [model([pod], backend, per_try_timeout=off)])
    try:
        async with (
            aiohttp.ClientSession() as session,
            grpc.aio.insecure_channel(gw.grpc_address) as channel,
        ):
            await set_faults(session, pod, stall_rate=1.0)
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            leaving = [
                asyncio.ensure_future(grpc_infer(stub, 1)),
                asyncio.ensure_future(http_infer(session, gw, 2)),
            ]
            pending = "nv_inference_pending_request_count"
            await wait_for(lambda: pod_count(pod, pending) == 2, "both batches on the pod")
            for call in leaving:
                call.cancel()  # the gRPC call is cancelled; the HTTP connection is closed
            await asyncio.gather(*leaving, return_exceptions=True)
            await wait_for(lambda: pod_count(pod, pending) == 0, "both cancelled on the pod")
            assert pod_count(pod, "nv_inference_request_failure", reason="CANCELED") == 2
            await set_faults(session, pod, stall_rate=0.0)
            await grpc_infer(stub, 3)  # the slots were freed
    finally:
        await asyncio.to_thread(gw.stop)
