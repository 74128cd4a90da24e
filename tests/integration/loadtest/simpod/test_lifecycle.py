"""simpod's start-up delay, injected failures and clean SIGTERM, each on a pod of its own."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import grpc
import numpy as np

from loadtest.simpod.engine import CRASH_EXIT_CODE
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from protos.tensors import to_numpy
from tests.integration.loadtest.simpod.simpod_wire import (
    FAST,
    grpc_error,
    grpc_infer_error,
    http_infer,
    metric,
    own_pod,
    sim_request,
    until,
)


async def test_startup_delay(http: aiohttp.ClientSession) -> None:
    with own_pod([*FAST, "--startup-s", "1.5"], wait_ready=False) as pod:
        async with http.get(f"{pod.http_url}/v2/health/ready") as resp:
            assert resp.status == 400
        async with grpc.aio.insecure_channel(pod.grpc_address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            assert not (await stub.ServerReady(pb.ServerReadyRequest())).ready
            assert (await stub.ServerLive(pb.ServerLiveRequest())).live
            request, _ = sim_request(1)
            err = await grpc_error(stub.ModelInfer(v2_grpc.encode_request("sim", request)))
            assert err.code() == grpc.StatusCode.UNAVAILABLE

            async def ready() -> bool:
                async with http.get(f"{pod.http_url}/v2/health/ready") as resp:
                    return resp.status == 200

            await until(ready)
            assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
            assert (await stub.ModelInfer(v2_grpc.encode_request("sim", request))).outputs


async def test_error_rate_one_gives_internal(http: aiohttp.ClientSession) -> None:
    with own_pod([*FAST, "--error-rate", "1.0"]) as pod:
        request, _ = sim_request(2)
        err = await grpc_infer_error(pod, v2_grpc.encode_request("sim", request))
        assert err.code() == grpc.StatusCode.INTERNAL
        url = f"{pod.http_url}/v2/models/sim/infer"
        status, body, _ = await http_infer(http, url, request, binary=False)
        assert status == 500 and b"error" in body
        failures = await metric(
            http, pod, "nv_inference_request_failure", model="sim", reason="BACKEND"
        )
        assert failures == 2


async def test_stalled_request_ends_at_the_deadline(http: aiohttp.ClientSession) -> None:
    with own_pod([*FAST, "--stall-rate", "1.0"]) as pod:
        request, _ = sim_request(1)
        msg = v2_grpc.encode_request("sim", request)
        err = await grpc_infer_error(pod, msg, timeout=0.5)
        assert err.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        async def cleared() -> bool:
            return await metric(http, pod, "nv_inference_pending_request_count", model="sim") == 0

        await until(cleared)
        canceled = await metric(
            http, pod, "nv_inference_request_failure", model="sim", reason="CANCELED"
        )
        assert canceled == 1


async def test_crash_rate_one_exits_mid_batch() -> None:
    with own_pod([*FAST, "--crash-rate", "1.0"], clean_exit=False) as pod:
        request, _ = sim_request(1)
        err = await grpc_infer_error(pod, v2_grpc.encode_request("sim", request))
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert await asyncio.to_thread(pod.popen.wait, 10) == CRASH_EXIT_CODE


async def test_sigterm_finishes_in_flight_batches_and_exits_0(
    http: aiohttp.ClientSession,
) -> None:
    with own_pod(["--fixed-ms", "1000", "--per-row-ms", "0"], clean_exit=False) as pod:
        request, data = sim_request(3)
        async with grpc.aio.insecure_channel(pod.grpc_address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            call = asyncio.ensure_future(stub.ModelInfer(v2_grpc.encode_request("sim", request)))

            async def started() -> bool:
                return await metric(http, pod, "simpod_running_batches", model="sim") == 1

            await until(started)
            pod.kill(signal.SIGTERM)
            (out,) = v2_grpc.decode_response(await call).outputs
            assert np.array_equal(to_numpy(out), data * 2)
        assert await asyncio.to_thread(pod.popen.wait, 10) == 0
