"""A request is checked against the model before any of its tensors is decoded: one the model
cannot take never reaches the JSON, typed-contents or BYTES conversion."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest

from gateway.config import ModelSettings
from gateway.errors import Code, InferError
from gateway.metrics import GatewayMetrics
from gateway.models.runtime import ModelRuntime
from gateway.models.spec import ModelSpec
from protos import grpc_service_pb2 as pb
from protos import model_config_pb2 as mc
from protos import v2_grpc, v2_http
from protos.heads import DecodeLimits, RequestHead
from protos.infer import InferRequestBody
from protos.tensors import CodecError, from_numpy

LIMITS = DecodeLimits(max_decode_elements=1000, max_bytes_items=100)
STRINGS = np.array([b"a", b"b"] * 8, dtype=object).reshape(1, 16)


def fp32_model() -> ModelSpec:
    config = mc.ModelConfig(name="sim", platform="simulated", max_batch_size=8)
    config.input.add(name="INPUT0", data_type=mc.TYPE_FP32, dims=[16])
    config.output.add(name="OUTPUT0", data_type=mc.TYPE_FP32, dims=[16])
    return ModelSpec.from_config("sim", config)


def undescribed_model() -> ModelSpec:
    return ModelSpec.from_metadata("sim", pb.ModelMetadataResponse(name="sim"), 8)


def runtime(spec: ModelSpec | None) -> ModelRuntime:
    model = ModelRuntime(ModelSettings(name="sim"), metrics=GatewayMetrics(), probe_interval_s=1)
    model.spec = spec
    return model


def http_json() -> RequestHead:
    doc = {
        "inputs": [{"name": "INPUT0", "datatype": "BYTES", "shape": [1, 16], "data": ["a"] * 16}]
    }
    return v2_http.parse_request(orjson.dumps(doc), None)


def http_binary() -> RequestHead:
    body = InferRequestBody([from_numpy("INPUT0", "BYTES", STRINGS)])
    return v2_http.parse_request(*v2_http.encode_request(body, binary=True))


def grpc_raw() -> RequestHead:
    body = InferRequestBody([from_numpy("INPUT0", "BYTES", STRINGS)])
    return v2_grpc.parse_request(v2_grpc.encode_request("sim", body))


def grpc_contents() -> RequestHead:
    msg = pb.ModelInferRequest(model_name="sim")
    tensor = msg.inputs.add(name="INPUT0", datatype="BYTES", shape=[1, 16])
    tensor.contents.bytes_contents.extend([b"a"] * 16)
    return v2_grpc.parse_request(msg)


# Each wire's BYTES request and the conversion its data would go through.
WIRES: dict[str, tuple[Callable[[], RequestHead], Any, str]] = {
    "http-json": (http_json, v2_http, "json_to_raw"),
    "http-binary": (http_binary, v2_http, "check_bytes_count"),
    "grpc-raw": (grpc_raw, v2_grpc, "check_bytes_count"),
    "grpc-contents": (grpc_contents, v2_grpc, "contents_to_raw"),
}


@pytest.fixture(params=sorted(WIRES))
def wire(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[int]]:
    """(a function giving the wire's BYTES head, the calls of its conversion so far)."""
    parse, module, name = WIRES[request.param]
    real = getattr(module, name)
    calls: list[int] = []

    def spy(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(module, name, spy)
    return parse, calls


def test_a_datatype_the_model_does_not_take_is_refused_before_decoding(
    wire: tuple[Any, list[int]],
) -> None:
    parse, calls = wire
    with pytest.raises(InferError, match="datatype BYTES, model 'sim' expects FP32") as err:
        runtime(fp32_model()).decode(parse(), LIMITS)
    assert err.value.code is Code.INVALID_ARGUMENT
    assert calls == []


def test_a_model_without_signature_takes_the_request_as_sent(wire: tuple[Any, list[int]]) -> None:
    parse, calls = wire
    body = runtime(undescribed_model()).decode(parse(), LIMITS)
    assert body.inputs[0].datatype == "BYTES" and calls == [1]


def test_before_any_pod_describes_the_model_the_data_is_decoded_for_infer_to_check(
    wire: tuple[Any, list[int]],
) -> None:
    parse, calls = wire
    runtime(None).decode(parse(), LIMITS)
    assert calls == [1]


def test_past_a_cap_even_a_model_without_signature_is_refused_before_decoding(
    wire: tuple[Any, list[int]],
) -> None:
    parse, calls = wire
    tight = DecodeLimits(max_decode_elements=1000, max_bytes_items=8)
    with pytest.raises(CodecError, match="input 'INPUT0': the request holds 16 BYTES items"):
        runtime(undescribed_model()).decode(parse(), tight)
    assert calls == []
    with pytest.raises(InferError, match="datatype BYTES"):  # the model's own refusal first
        runtime(fp32_model()).decode(parse(), tight)
