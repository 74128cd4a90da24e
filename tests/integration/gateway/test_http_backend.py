"""The gateway process talking to its pods over v2 REST (``backend_protocol: http``): both
front-ends answered, batches formed, a stalled pod's batches cut and answered by the healthy
pod, and a batch whose caller left cancelled on the pod (its connection closed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import grpc
import pytest

from loadtest.stack.procs import PodProc, start_gateway, start_pod
from protos import grpc_service_pb2_grpc as pb_grpc
from tests.integration.gateway.test_stalled_pod import (
    DEADLINE_MS,
    POD,
    burst,
    grpc_infer,
    http_infer,
    pod_count,
    scrape,
    set_faults,
    wait_for,
)


def model(pods: list[PodProc], **settings: Any) -> dict[str, Any]:
    return {
        "name": "sim",
        "backend_protocol": "http",
        "endpoints": [p.http_url.removeprefix("http://") for p in pods],
        "default_timeout_ms": DEADLINE_MS,
        "max_queue_wait_ms": 0,
        **settings,
    }


@pytest.fixture
async def two_pods() -> AsyncIterator[list[PodProc]]:
    pods = list(await asyncio.gather(*(asyncio.to_thread(start_pod, POD) for _ in range(2))))
    yield pods
    for pod in pods:
        await asyncio.to_thread(pod.stop)


async def test_both_front_ends_are_answered_in_batches_over_the_pods_rest_api(
    two_pods: list[PodProc],
) -> None:
    pod = two_pods[0]
    settings = model(
        [pod], max_inflight_per_pod=1, dynamic_batching={"max_queue_delay_microseconds": 5000}
    )
    gw = await asyncio.to_thread(start_gateway, [settings])
    try:
        async with (
            aiohttp.ClientSession() as session,
            grpc.aio.insecure_channel(gw.grpc_address) as channel,
        ):
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            await burst(stub, session, gw, 0)  # 16 at once behind one slot: a few batches
        metrics = scrape(gw.metrics_url)
        batches = metrics.total("gateway_pod_batches_total", model="sim") or 0
        assert 1 <= batches < 16
        assert pod_count(pod, "nv_inference_request_success") == batches  # one POST a batch
        assert pod_count(pod, "nv_inference_count") == 16  # of all the rows
    finally:
        await asyncio.to_thread(gw.stop)


async def test_a_stalled_pod_s_batches_are_cut_and_answered_by_the_healthy_pod(
    two_pods: list[PodProc],
) -> None:
    healthy, stalled = two_pods
    settings = model(
        two_pods,
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
            rows_before = pod_count(healthy, "nv_inference_count")
            await burst(stub, session, gw, 100)
            pending = "nv_inference_pending_request_count"
            await wait_for(lambda: pod_count(stalled, pending) == 0, "the stalled tries cut")
            assert pod_count(stalled, "nv_inference_request_failure", reason="CANCELED") >= 1
            await burst(stub, session, gw, 200)  # the stalled pod is out: ejected
        assert pod_count(healthy, "nv_inference_count") - rows_before == 32  # every row
    finally:
        await asyncio.to_thread(gw.stop)


async def test_a_caller_that_leaves_has_its_batch_cancelled_on_the_pod(
    two_pods: list[PodProc],
) -> None:
    pod = two_pods[0]
    gw = await asyncio.to_thread(start_gateway, [model([pod], per_try_timeout={"factor": 0})])
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
                call.cancel()
            await asyncio.gather(*leaving, return_exceptions=True)
            await wait_for(lambda: pod_count(pod, pending) == 0, "both cancelled on the pod")
            assert pod_count(pod, "nv_inference_request_failure", reason="CANCELED") == 2
            await set_faults(session, pod, stall_rate=0.0)
            await grpc_infer(stub, 3)  # the slots were freed
    finally:
        await asyncio.to_thread(gw.stop)
