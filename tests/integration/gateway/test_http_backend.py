"""The gateway process talking to its pods over v2 REST (``backend_protocol: http``): both
front-ends answered in batches. A stalled pod's batches cut and answered by the healthy pod,
and a batch whose caller left cancelled on the pod, run over both backends in
test_stalled_pod.py."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc

from loadtest.stack.procs import PodProc, start_gateway
from protos import grpc_service_pb2_grpc as pb_grpc
from tests.integration.gateway.test_stalled_pod import (
    burst,
    model,
    pod_count,
    scrape,
)


async def test_both_front_ends_are_answered_in_batches_over_the_pods_rest_api(
    two_pods: list[PodProc],
) -> None:
    pod = two_pods[0]
    settings = model(
        [pod],
        "http",
        max_inflight_per_pod=1,
        dynamic_batching={"max_queue_delay_microseconds": 5000},
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
