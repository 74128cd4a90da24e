"""The gRPC front-end's limits against a real gateway: answers in flight per stream (a client
that reads nothing stops its stream being read), calls at once, and keepalive enforcement."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from loadtest.probes.metrics import Scrape, fetch_metrics
from loadtest.stack.procs import GatewayProc, start_gateway, start_pod
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from protos.infer import InferRequestBody
from protos.tensors import from_numpy, to_numpy
from tests.fakes.reports import until

ROW = 16384  # FP32 values per row: each answer (64 KiB) is more than a stream's first window
STREAM_BOUND = 4
MAX_RPCS = 2


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayProc]:
    """``sim`` answers at once; every request to ``stalled`` hangs until its caller leaves."""
    fast = start_pod(["--fixed-ms", "1", "--per-row-ms", "0", "--row-size", str(ROW)])
    stalled = start_pod(["--model-name", "stalled", "--stall-rate", "1"])
    server = {
        "grpc_stream_max_inflight": STREAM_BOUND,
        "grpc_max_concurrent_rpcs": MAX_RPCS,
        "grpc_min_ping_interval_s": 5.0,
        "grpc_max_ping_strikes": 1,
    }
    models = [
        {"name": "sim", "endpoints": [fast.grpc_address]},
        {"name": "stalled", "endpoints": [stalled.grpc_address]},
    ]
    try:
        gw = start_gateway(models, extra={"server": server})
        yield gw
        gw.stop()
    finally:
        stalled.stop()
        fast.stop()


def scrape(gw: GatewayProc) -> Scrape:
    found = fetch_metrics(gw.metrics_url, timeout_s=5)
    assert found is not None, "the gateway's metrics cannot be read"
    return found


def request(model: str, i: int) -> pb.ModelInferRequest:
    data = np.full((1, ROW if model == "sim" else 16), i, np.float32)
    body = InferRequestBody([from_numpy("INPUT0", "FP32", data)], None, f"r{i}")
    return v2_grpc.encode_request(model, body)


async def test_a_stream_whose_client_reads_nothing_is_not_read_past_the_bound(
    gateway: GatewayProc,
) -> None:
    sent = 10 * STREAM_BOUND
    # No BDP probing: the client's windows stay at 64 KiB, so gRPC takes no whole answer
    # while the client reads nothing; answers wait in the gateway, holding their slots.
    options = [("grpc.http2.bdp_probe", 0)]
    async with grpc.aio.insecure_channel(gateway.grpc_address, options=options) as channel:
        call = pb_grpc.GRPCInferenceServiceStub(channel).ModelStreamInfer(timeout=60)

        async def send() -> None:
            for i in range(sent):
                await call.write(request("sim", i))
            await call.done_writing()

        sender = asyncio.create_task(send())
        try:

            def paused() -> bool:
                now = scrape(gateway)
                return (
                    now.total("gateway_grpc_stream_answers_pending") == STREAM_BOUND
                    and now.total("gateway_inflight_requests", model="sim") == 0
                )

            await until(paused, limit_s=30)  # bounds a hang; not a timing check
            started = scrape(gateway).total("gateway_requests_total", model="sim")
            assert started == STREAM_BOUND, "the gateway read past its bound"
            answers = {}
            async with asyncio.timeout(60):
                async for answer in call:
                    assert not answer.error_message, answer.error_message
                    answers[answer.infer_response.id] = answer.infer_response
            await sender
        finally:
            sender.cancel()
    assert sorted(answers) == sorted(f"r{i}" for i in range(sent))
    for i in (0, sent - 1):
        (out,) = v2_grpc.decode_response(answers[f"r{i}"]).outputs
        assert np.array_equal(to_numpy(out), np.full((1, ROW), 2 * i, np.float32))
    now = scrape(gateway)
    assert now.total("gateway_grpc_stream_answers_pending") == 0
    assert now.total("gateway_requests_total", model="sim") == sent


async def test_a_call_past_the_concurrent_rpc_limit_is_resource_exhausted(
    gateway: GatewayProc,
) -> None:
    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        held = [
            asyncio.ensure_future(stub.ModelInfer(request("stalled", i), timeout=60))
            for i in range(MAX_RPCS)
        ]
        try:
            await until(
                lambda: (
                    scrape(gateway).total("gateway_inflight_requests", model="stalled") == MAX_RPCS
                ),
                limit_s=30,
            )
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ModelInfer(request("stalled", MAX_RPCS), timeout=10)
            assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "limit" in (err.value.details() or "").lower()
        finally:
            for call in held:
                call.cancel()
        async with asyncio.timeout(30):  # the slots come back once the held calls are gone
            while True:
                try:
                    live = await stub.ServerLive(pb.ServerLiveRequest(), timeout=5)
                    break
                except grpc.aio.AioRpcError as exc:
                    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc
                    await asyncio.sleep(0.05)
        assert live.live


async def test_a_client_that_pings_too_often_is_sent_away(gateway: GatewayProc) -> None:
    """Pings every 100 ms on a quiet stream, against a 5 s minimum: GOAWAY (too_many_pings)."""
    options = [
        ("grpc.keepalive_time_ms", 100),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    async with grpc.aio.insecure_channel(gateway.grpc_address, options=options) as channel:
        call = pb_grpc.GRPCInferenceServiceStub(channel).ModelStreamInfer(timeout=30)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            async for _ in call:
                pass
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "too many pings" in (err.value.details() or "").lower()
