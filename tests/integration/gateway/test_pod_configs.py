"""The gateway process in front of a pod (in this test's process) whose configs are Triton's own:
``/config`` over HTTP and gRPC keeps every field of the pod's, its instances are counted per GPU,
and a stateful model's requests (a decoupled one's but on ModelStreamInfer) are refused, naming
why, without reaching the pod.
The configs' fields and values were checked against tritonserver 2.51's own."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np
import pytest

from gateway.models.spec import ModelSpec
from loadtest.stack.procs import GatewayProc, start_gateway
from protos import grpc_service_pb2 as pb
from protos import grpc_service_pb2_grpc as pb_grpc
from protos import model_config_pb2 as mc
from protos import v2_grpc
from protos.infer import InferRequestBody, InferResponseBody
from protos.json_format import message_to_dict
from protos.tensors import from_numpy, to_numpy

OVERRIDDEN = {"name", "max_batch_size", "dynamic_batching"}  # the values in force are the gateway's
BATCHING = {"max_queue_delay_microseconds": 1000, "preferred_batch_size": [4]}


def model_config(name: str) -> mc.ModelConfig:
    """A config as Triton serves one (normalised: GPUs listed), ``stateful`` and ``decoupled``
    models as their names say."""
    cfg = mc.ModelConfig(name=name, backend="python", max_batch_size=32)
    cfg.default_model_filename = "model.py"
    cfg.version_policy.latest.num_versions = 1
    cfg.input.add(name="INPUT0", data_type=mc.TYPE_FP32, dims=[16])
    cfg.output.add(name="OUTPUT0", data_type=mc.TYPE_FP32, dims=[16])
    cfg.optimization.input_pinned_memory.enable = True
    cfg.optimization.output_pinned_memory.enable = True
    cfg.parameters["FIXED_MS"].string_value = "1"
    kind = mc.ModelInstanceGroup.KIND_GPU
    cfg.instance_group.add(name=f"{name}_0", kind=kind, count=2, gpus=[0, 1])
    if name == "stateful":
        cfg.sequence_batching.max_sequence_idle_microseconds = 1_000_000
        cfg.sequence_batching.direct.SetInParent()
    else:
        cfg.dynamic_batching.max_queue_delay_microseconds = 100
    cfg.model_transaction_policy.decoupled = name == "decoupled"
    return cfg


class ConfigPod(pb_grpc.GRPCInferenceServiceServicer):
    """A pod serving ``configs`` by name; its models answer OUTPUT0 = 2 * INPUT0."""

    def __init__(self, configs: dict[str, mc.ModelConfig]) -> None:
        self.configs = configs
        self.infers: list[str] = []  # the models of the ModelInfer calls that reached it

    async def ModelReady(self, request: Any, context: Any) -> Any:
        return pb.ModelReadyResponse(ready=request.name in self.configs)

    async def ModelMetadata(self, request: Any, context: Any) -> Any:
        return ModelSpec.from_config(request.name, self.configs[request.name]).metadata()

    async def ModelConfig(self, request: Any, context: Any) -> Any:
        return pb.ModelConfigResponse(config=self.configs[request.name])

    async def ModelInfer(self, request: Any, context: Any) -> Any:
        self.infers.append(request.model_name)
        body = v2_grpc.decode_request(request)
        doubled = from_numpy("OUTPUT0", "FP32", 2 * to_numpy(body.inputs[0]))
        return v2_grpc.encode_response(
            InferResponseBody(request.model_name, [doubled], "1", body.id)
        )


@dataclass
class Stack:
    pod: ConfigPod
    gateway: GatewayProc


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    pod = ConfigPod({n: model_config(n) for n in ("plain", "stateful", "decoupled")})
    server = grpc.aio.server()
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(pod, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    models: list[dict[str, Any]] = [
        {"name": n, "endpoints": [f"127.0.0.1:{port}"], "dynamic_batching": BATCHING}
        for n in pod.configs
    ]
    models[0]["max_batch_size"] = 8
    gateway = await asyncio.to_thread(start_gateway, models)
    try:
        yield Stack(pod, gateway)
    finally:
        await asyncio.to_thread(gateway.stop)
        await server.stop(None)


def http(method: str, url: str, doc: Any = None) -> tuple[int, Any]:
    data = None if doc is None else json.dumps(doc).encode()
    req = urllib.request.Request(url, data, {"Content-Type": "application/json"}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def infer_doc(**parameters: Any) -> dict[str, Any]:
    tensor = {"name": "INPUT0", "datatype": "FP32", "shape": [1, 16], "data": [1.0] * 16}
    return {"id": "r", "parameters": parameters, "inputs": [tensor]}


def without(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in OVERRIDDEN}


async def test_config_is_the_pods_over_http_and_grpc(stack: Stack) -> None:
    url = f"{stack.gateway.http_url}/v2/models/plain/config"
    status, served = await asyncio.to_thread(http, "GET", url)
    assert status == 200
    pod = json.loads(json.dumps(message_to_dict(stack.pod.configs["plain"])))
    assert without(served) == without(pod)
    assert served["version_policy"] == {"latest": {"num_versions": 1}}
    assert served["parameters"] == {"FIXED_MS": {"string_value": "1"}}
    assert served["max_batch_size"] == 8  # the gateway's, lower than the pod's 32
    assert served["dynamic_batching"]["max_queue_delay_microseconds"] == 1000
    assert served["dynamic_batching"]["preferred_batch_size"] == [4]
    async with grpc.aio.insecure_channel(stack.gateway.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        reply = await stub.ModelConfig(pb.ModelConfigRequest(name="plain"), timeout=10)
        stateful = await stub.ModelConfig(pb.ModelConfigRequest(name="stateful"), timeout=10)
    assert message_to_dict(reply.config) == served
    assert stateful.config.sequence_batching == stack.pod.configs["stateful"].sequence_batching
    assert stateful.config.WhichOneof("scheduling_choice") == "sequence_batching"


async def test_instances_are_counted_per_gpu(stack: Stack) -> None:
    url = f"http://127.0.0.1:{stack.gateway.metrics_port}/status"
    with urllib.request.urlopen(url, timeout=10) as resp:
        status = json.loads(resp.read())
    pods = {m["model"]: m["pods"] for m in status["models"]}
    (pod,) = pods["plain"]
    assert (pod["devices"], pod["slots"]) == (4, 5)  # count 2 on each of GPUs 0 and 1


async def test_stateful_and_decoupled_models_are_refused_before_the_pod(stack: Stack) -> None:
    base = f"{stack.gateway.http_url}/v2/models"
    sequence = {"sequence_id": 9, "sequence_start": True}
    status, doc = await asyncio.to_thread(
        http, "POST", f"{base}/stateful/infer", infer_doc(**sequence)
    )
    assert status == 400
    assert "stateful models are not served through the gateway yet" in doc["error"]
    status, doc = await asyncio.to_thread(http, "POST", f"{base}/decoupled/infer", infer_doc())
    assert status == 501
    assert "decoupled transaction policy" in doc["error"]
    async with grpc.aio.insecure_channel(stack.gateway.grpc_address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        body = InferRequestBody([from_numpy("INPUT0", "FP32", np.ones((1, 16), np.float32))])
        for model, code in (
            ("stateful", grpc.StatusCode.INVALID_ARGUMENT),
            ("decoupled", grpc.StatusCode.UNIMPLEMENTED),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.ModelInfer(v2_grpc.encode_request(model, body), timeout=10)
            assert err.value.code() == code
        # On a stream it goes on to the pod's ModelStreamInfer (this pod has none; see
        # test_decoupled for one that has), never to its ModelInfer.
        stream = stub.ModelStreamInfer()
        await stream.write(v2_grpc.encode_request("decoupled", body))
        answer = await stream.read()
        await stream.done_writing()
        # the pod's failure, named (grpc words it "Method not implemented" or, when the
        # servicer's exception races the call's end, "Internal error from Core")
        assert answer.error_message.startswith("pod 127.0.0.1:"), answer
        assert stack.pod.infers == []  # nothing reached the pod's ModelInfer
        reply = await stub.ModelInfer(v2_grpc.encode_request("plain", body), timeout=10)
    assert to_numpy(v2_grpc.decode_response(reply).outputs[0]).tolist() == [[2.0] * 16]
    # A sequence id to a model without sequence_batching is answered, as Triton answers it.
    status, doc = await asyncio.to_thread(
        http, "POST", f"{base}/plain/infer", infer_doc(**sequence)
    )
    assert status == 200, doc
    assert stack.pod.infers == ["plain", "plain"]
