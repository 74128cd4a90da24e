"""gRPC connections are closed after ``server.grpc_max_connection_age_s`` (GOAWAY, then the
grace), so a client behind a ClusterIP reconnects and rebalances; no call is lost on the way."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import grpc
import numpy as np
import pytest

from loadtest.stack.procs import GatewayProc, PodProc, start_gateway, start_pod
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from protos.infer import InferRequestBody
from protos.tensors import from_numpy

AGE_S = 0.5


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayProc]:
    pod: PodProc = start_pod(["--fixed-ms", "1", "--per-row-ms", "0"])
    try:
        gw = start_gateway(
            [{"name": "sim", "endpoints": [pod.grpc_address]}],
            extra={
                "server": {
                    "grpc_max_connection_age_s": AGE_S,
                    "grpc_max_connection_age_grace_s": 2.0,
                }
            },
        )
        try:
            yield gw
        finally:
            gw.stop()
    finally:
        pod.stop()


async def test_an_old_connection_is_replaced_and_every_call_is_answered(
    gateway: GatewayProc,
) -> None:
    request = v2_grpc.encode_request(
        "sim", InferRequestBody([from_numpy("INPUT0", "FP32", np.ones((1, 16), np.float32))])
    )
    connections = 0
    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)

        async def count_connections() -> None:
            nonlocal connections
            state = channel.get_state(try_to_connect=True)
            while True:
                await channel.wait_for_state_change(state)
                state = channel.get_state()
                if state is grpc.ChannelConnectivity.READY:
                    connections += 1

        watcher = asyncio.create_task(count_connections())
        answered = 0
        try:
            async with asyncio.timeout(60):  # bounds a hang; not a timing check
                while connections < 3:
                    await stub.ModelInfer(request, timeout=10)
                    answered += 1
                    await asyncio.sleep(0.01)
        finally:
            watcher.cancel()
    assert connections >= 3, "the server never closed an aged connection"
    assert answered > 0
