"""The pod's failure injection changed while it runs (``PUT /faults``): a pod that served well
starts to stall, and a stalled request its client cancels is counted CANCELED."""

from __future__ import annotations

import asyncio

import aiohttp
import grpc
import numpy as np
import pytest

from loadtest.stack.procs import PodProc
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from tests.integration.loadtest.simpod.simpod_wire import metric, sim_request, until


async def test_a_serving_pod_made_to_stall_holds_requests_until_the_client_gives_up(
    pod: PodProc, http: aiohttp.ClientSession
) -> None:
    async with grpc.aio.insecure_channel(pod.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        body, data = sim_request(2, 1)
        reply = await stub.ModelInfer(v2_grpc.encode_request("sim", body), timeout=10)
        out = v2_grpc.decode_response(reply).outputs[0]
        assert np.frombuffer(out.data, np.float32).tolist() == (2 * data).ravel().tolist()
        async with http.put(f"{pod.http_url}/faults", json={"stall_rate": 1.0}) as resp:
            assert resp.status == 200
            assert await resp.json() == {"error_rate": 0.0, "stall_rate": 1.0, "crash_rate": 0.0}
        call = asyncio.ensure_future(stub.ModelInfer(v2_grpc.encode_request("sim", body)))

        async def pending() -> bool:
            return await metric(http, pod, "nv_inference_pending_request_count", model="sim") == 1

        await until(pending)
        assert not call.done()
        call.cancel()

        async def cancelled() -> bool:
            labels = {"model": "sim", "reason": "CANCELED"}
            return await metric(http, pod, "nv_inference_request_failure", **labels) == 1

        await until(cancelled)
        async with http.put(f"{pod.http_url}/faults", json={"stall_rate": 0}) as resp:
            assert resp.status == 200
        reply = await stub.ModelInfer(v2_grpc.encode_request("sim", body), timeout=10)
        assert reply.outputs[0].name == "OUTPUT0"


@pytest.mark.parametrize(
    "doc", [{"stall_rate": 2.0}, {"stall": 1}, {"stall_rate": "1"}, [1], {"crash_rate": True}]
)
async def test_a_bad_fault_setting_is_refused_naming_it(
    pod: PodProc, http: aiohttp.ClientSession, doc: object
) -> None:
    async with http.put(f"{pod.http_url}/faults", json=doc) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]
    async with http.get(f"{pod.http_url}/faults") as resp:
        assert (await resp.json())["crash_rate"] == 0.0
