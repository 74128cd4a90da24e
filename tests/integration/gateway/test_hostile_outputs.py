"""Requests a pod would answer in a way the gateway must refuse (an output asked for twice, a
classification of an output) are refused at the edge, over HTTP and gRPC, before any pod sees
them: no 500, and no client can get the model's only pod ejected by sending them."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from typing import Any

import aiohttp
import grpc
import numpy as np
import pytest

from loadtest.stack.procs import GatewayProc, PodProc, start_gateway, start_pod
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc

FAST = ["--fixed-ms", "1", "--per-row-ms", "0.05"]
TRIES = 8  # more than outlier detection's consecutive_failures (5)
TENSOR = {"name": "INPUT0", "datatype": "FP32", "shape": [1, 16], "data": [0.5] * 16}
HOSTILE: dict[str, tuple[list[dict[str, Any]], str]] = {
    "repeated": ([{"name": "OUTPUT0"}, {"name": "OUTPUT0"}], "requested more than once"),
    "classified": (
        [{"name": "OUTPUT0", "parameters": {"classification": 3}}],
        "classification extension",
    ),
}


@pytest.fixture(scope="module")
def gateway() -> Iterator[GatewayProc]:
    pod: PodProc = start_pod(FAST)
    gw = start_gateway([{"name": "sim", "endpoints": [pod.grpc_address]}])
    yield gw
    assert gw.stop() == 0
    pod.stop()


def _grpc_request(outputs: list[dict[str, Any]]) -> pb.ModelInferRequest:
    msg = pb.ModelInferRequest(model_name="sim")
    msg.inputs.add(name="INPUT0", datatype="FP32", shape=[1, 16])
    msg.raw_input_contents.append(np.full((1, 16), 0.5, np.float32).tobytes())
    for out in outputs:
        o = msg.outputs.add(name=out["name"])
        for key, value in out.get("parameters", {}).items():
            o.parameters[key].int64_param = value
    return msg


@pytest.mark.parametrize("kind", sorted(HOSTILE))
async def test_a_hostile_output_request_is_refused_and_leaves_the_pod_serving(
    gateway: GatewayProc, kind: str
) -> None:
    outputs, message = HOSTILE[kind]
    url = f"{gateway.http_url}/v2/models/sim/infer"
    async with aiohttp.ClientSession() as session:
        for _ in range(TRIES):
            async with session.post(url, json={"inputs": [TENSOR], "outputs": outputs}) as resp:
                assert resp.status == 400, await resp.text()
                assert message in (await resp.json())["error"]
        async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            for _ in range(TRIES):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.ModelInfer(_grpc_request(outputs), timeout=10)
                assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
                assert message in str(refused.value.details())
            answer = await stub.ModelInfer(_grpc_request([{"name": "OUTPUT0"}]), timeout=10)
            assert answer.outputs[0].name == "OUTPUT0"
        async with session.post(url, json={"inputs": [TENSOR]}) as resp:
            assert resp.status == 200, await resp.text()
    with urllib.request.urlopen(gateway.metrics_url, timeout=5) as resp:
        text = resp.read().decode()
    assert 'gateway_ready_pods{model="sim"} 1.0' in text  # never ejected
