"""simpod over gRPC: metadata, health, infer (unary and streamed), errors, statistics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from loadtest.stack.procs import PodProc
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import v2_grpc
from protos.infer import InferRequestBody, RequestedOutput
from protos.tensors import DATATYPES, Tensor, to_numpy
from tests.integration.loadtest.simpod.simpod_wire import (
    grpc_error,
    sample,
    sim_request,
)


async def test_grpc_server_and_model_metadata(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    assert (await stub.ServerLive(pb.ServerLiveRequest())).live
    assert (await stub.ServerReady(pb.ServerReadyRequest())).ready
    assert (await stub.ModelReady(pb.ModelReadyRequest(name="sim"))).ready
    assert not (await stub.ModelReady(pb.ModelReadyRequest(name="nope"))).ready
    meta = await stub.ServerMetadata(pb.ServerMetadataRequest())
    assert meta.name == "simpod"
    assert set(meta.extensions) >= {"binary_tensor_data", "statistics", "model_configuration"}
    model = await stub.ModelMetadata(pb.ModelMetadataRequest(name="sim"))
    assert model.platform == "simulated"
    assert [(t.name, t.datatype, list(t.shape)) for t in model.inputs] == [
        ("INPUT0", "FP32", [-1, 16])
    ]
    config = (await stub.ModelConfig(pb.ModelConfigRequest(name="sim"))).config
    assert config.max_batch_size == 32
    assert config.HasField("dynamic_batching")
    assert config.instance_group[0].count == 2
    err = await grpc_error(stub.ModelMetadata(pb.ModelMetadataRequest(name="nope")))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_grpc_health_is_serving(pod: PodProc) -> None:
    async with grpc.aio.insecure_channel(pod.grpc_address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = await health.Check(health_pb2.HealthCheckRequest(service=""))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_grpc_infer_doubles_the_input(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    request, data = sim_request(7, seed=1)
    msg = v2_grpc.encode_request("sim", request)
    reply = await stub.ModelInfer(msg)
    assert reply.model_name == "sim" and reply.id == "r1"
    assert len(reply.raw_output_contents) == 1
    (out,) = v2_grpc.decode_response(reply).outputs
    assert out.name == "OUTPUT0" and out.shape == (7, 16)
    assert np.array_equal(to_numpy(out), data * 2)


async def test_grpc_infer_accepts_typed_contents(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    values = [float(i) / 4 for i in range(32)]
    msg = pb.ModelInferRequest(model_name="sim")
    tensor = msg.inputs.add(name="INPUT0", datatype="FP32", shape=[2, 16])
    tensor.contents.fp32_contents.extend(values)
    (out,) = v2_grpc.decode_response(await stub.ModelInfer(msg)).outputs
    assert to_numpy(out).ravel().tolist() == [2 * v for v in values]


async def test_grpc_stream_infer(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    requests = [sim_request(i + 1, seed=i) for i in range(5)]
    bad = InferRequestBody([Tensor("INPUT0", "FP32", (33, 16), bytes(33 * 64))], id="bad")

    async def messages() -> AsyncIterator[pb.ModelInferRequest]:
        for request, _ in requests:
            yield v2_grpc.encode_request("sim", request)
        yield v2_grpc.encode_request("sim", bad)

    answers: dict[str, Any] = {}
    errors: list[str] = []
    async for reply in stub.ModelStreamInfer(messages()):
        if reply.error_message:
            errors.append(reply.error_message)
        else:
            answers[reply.infer_response.id] = reply.infer_response
    assert len(errors) == 1 and "max_batch_size 32" in errors[0]
    assert sorted(answers) == sorted(r.id for r, _ in requests)
    for request, data in requests:
        (out,) = v2_grpc.decode_response(answers[request.id]).outputs
        assert np.array_equal(to_numpy(out), data * 2)


@pytest.mark.parametrize(
    ("tensor", "outputs", "needle"),
    [
        (Tensor("INPUT0", "FP32", (33, 16), bytes(33 * 64)), None, "max_batch_size 32"),
        (Tensor("INPUT9", "FP32", (1, 16), bytes(64)), None, "INPUT9"),
        (Tensor("INPUT0", "INT32", (1, 16), bytes(64)), None, "INT32"),
        (Tensor("INPUT0", "FP32", (1, 8), bytes(32)), None, "shape [1, 8]"),
        (Tensor("INPUT0", "FP32", (1, 16), bytes(64)), [RequestedOutput("OUT")], "'OUT'"),
        (Tensor("INPUT0", "FP32", (1, 16), bytes(60)), None, "raw data is 60 bytes"),
    ],
)
async def test_grpc_invalid_requests(
    stub: pb_grpc.GRPCInferenceServiceStub,
    tensor: Tensor,
    outputs: list[RequestedOutput] | None,
    needle: str,
) -> None:
    msg = v2_grpc.encode_request("sim", InferRequestBody([tensor], outputs))
    err = await grpc_error(stub.ModelInfer(msg))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert needle in (err.details() or "")


async def test_grpc_unknown_model(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    request, _ = sim_request(1)
    err = await grpc_error(stub.ModelInfer(v2_grpc.encode_request("nope", request)))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await grpc_error(stub.ModelInfer(v2_grpc.encode_request("sim", request, "7")))
    assert err.code() == grpc.StatusCode.NOT_FOUND


async def test_grpc_statistics_grow(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    async def stats() -> Any:
        reply = await stub.ModelStatistics(pb.ModelStatisticsRequest(name="identity_int16"))
        (model_stats,) = reply.model_stats
        return model_stats

    before = await stats()
    for rows in (1, 3, 3):
        msg = v2_grpc.encode_request("identity_int16", InferRequestBody([sample("INT16", rows)]))
        await stub.ModelInfer(msg)
    after = await stats()
    assert after.inference_count - before.inference_count == 7
    assert after.execution_count - before.execution_count == 3
    success = after.inference_stats.success
    assert success.count - before.inference_stats.success.count == 3
    assert after.inference_stats.compute_infer.ns > before.inference_stats.compute_infer.ns
    sizes = {b.batch_size: b.compute_infer.count for b in after.batch_stats}
    assert sizes[3] >= 2
    every = await stub.ModelStatistics(pb.ModelStatisticsRequest())
    assert len(every.model_stats) == 1 + len(DATATYPES)
