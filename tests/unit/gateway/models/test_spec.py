"""Requests are validated at the edge against the model the pods described."""

from __future__ import annotations

import pytest

from gateway.errors import Code, InferError
from gateway.models.spec import ModelSpec, config_type, v2_type
from protos import grpc_service_pb2 as pb
from protos import model_config_pb2 as mc
from protos.infer import InferRequestBody, RequestedOutput
from protos.tensors import Tensor


def sim_config(max_batch: int = 8) -> mc.ModelConfig:
    config = mc.ModelConfig(name="sim", platform="simulated", max_batch_size=max_batch)
    config.input.add(name="INPUT0", data_type=mc.TYPE_FP32, dims=[16])
    config.output.add(name="OUTPUT0", data_type=mc.TYPE_FP32, dims=[16])
    return config


def request(shape: tuple[int, ...], name: str = "INPUT0", dtype: str = "FP32") -> InferRequestBody:
    count = 1
    for d in shape:
        count *= d
    return InferRequestBody([Tensor(name, dtype, shape, b"\0" * 4 * count)])


def test_datatype_names_map_both_ways() -> None:
    assert v2_type(mc.TYPE_STRING) == "BYTES"
    assert v2_type(mc.TYPE_BF16) == "BF16"
    assert config_type("BYTES") == mc.TYPE_STRING
    assert config_type("FP32") == mc.TYPE_FP32


def test_valid_request_reports_its_rows() -> None:
    spec = ModelSpec.from_config("gw-sim", sim_config())
    assert spec.validate(request((5, 16))) == 5
    assert spec.metadata().inputs[0].shape == [-1, 16]
    assert spec.config().name == "gw-sim"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (request((2, 16), name="X"), "unexpected input 'X'"),
        (request((2, 16), dtype="INT32"), "has datatype INT32, model 'sim' expects FP32"),
        (request((2, 8)), r"has shape \[2, 8\], model 'sim' expects \[-1, 16\]"),
        (request((9, 16)), "batch size 9, more than model 'sim' max_batch_size 8"),
        (request((0, 16)), "batch size 0; it must be at least 1"),
        (request((3,)), r"has shape \[3\]"),
    ],
)
def test_invalid_requests_are_invalid_argument_naming_the_problem(
    body: InferRequestBody, message: str
) -> None:
    spec = ModelSpec.from_config("sim", sim_config())
    with pytest.raises(InferError, match=message) as info:
        spec.validate(body)
    assert info.value.code is Code.INVALID_ARGUMENT


def test_unknown_output_and_missing_input_are_named() -> None:
    config = sim_config()
    config.input.add(name="INPUT1", data_type=mc.TYPE_INT32, dims=[1])
    spec = ModelSpec.from_config("sim", config)
    with pytest.raises(InferError, match=r"needs input\(s\) \['INPUT1'\]"):
        spec.validate(request((1, 16)))
    body = request((1, 16))
    body.inputs.append(Tensor("INPUT1", "INT32", (1, 1), b"\0" * 4))
    body.outputs = [RequestedOutput("NOPE")]
    with pytest.raises(InferError, match="unknown output 'NOPE'"):
        spec.validate(body)


@pytest.mark.parametrize("described", [True, False])
@pytest.mark.parametrize(
    ("outputs", "message"),
    [
        ([RequestedOutput("OUTPUT0"), RequestedOutput("OUTPUT0")], "'OUTPUT0' is requested more"),
        ([RequestedOutput("OUTPUT0", classification=3)], "top 3 classes.*classification ext"),
    ],
)
def test_a_repeated_or_classified_output_is_refused_before_any_pod_sees_it(
    described: bool, outputs: list[RequestedOutput], message: str
) -> None:
    """A repeat the pod would answer twice (which the gateway would then blame on the pod),
    and a classification the gateway would answer with the raw tensor: both refused."""
    if described:
        spec = ModelSpec.from_config("sim", sim_config())
    else:
        spec = ModelSpec.from_metadata("sim", pb.ModelMetadataResponse(name="sim"), 8)
    body = request((1, 16))
    body.outputs = outputs
    with pytest.raises(InferError, match=message) as info:
        spec.validate(body)
    assert info.value.code is Code.INVALID_ARGUMENT
    body.outputs = [RequestedOutput("OUTPUT0")]
    assert spec.validate(body) == 1


def test_metadata_only_pods_batch_when_config_says_so() -> None:
    metadata = pb.ModelMetadataResponse(name="m", platform="p")
    metadata.inputs.add(name="INPUT0", datatype="FP32", shape=[-1, 16])
    metadata.outputs.add(name="OUTPUT0", datatype="FP32", shape=[-1, 16])
    batching = ModelSpec.from_metadata("m", metadata, max_batch_size=4)
    assert batching.max_batch_size == 4
    assert batching.validate(request((3, 16))) == 3
    plain = ModelSpec.from_metadata("m", metadata, max_batch_size=None)
    assert plain.max_batch_size == 0
    assert plain.validate(request((3, 16))) == 1
    assert plain.config().input[0].dims == [-1, 16]
