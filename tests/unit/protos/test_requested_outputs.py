"""An output request's parameters as either wire decodes them: Triton's ``classification``
kept (so the gateway can refuse it, not drop it), and checked."""

from __future__ import annotations

import orjson
import pytest

from protos import grpc_service_pb2 as pb
from protos import v2_grpc, v2_http
from protos.tensors import CodecError


def _http(output: dict[str, object]) -> bytes:
    tensor = {"name": "INPUT0", "datatype": "FP32", "shape": [1, 1], "data": [1.0]}
    return orjson.dumps({"inputs": [tensor], "outputs": [output]})


def _grpc(**params: pb.InferParameter) -> pb.ModelInferRequest:
    msg = pb.ModelInferRequest(model_name="sim")
    msg.inputs.add(name="INPUT0", datatype="FP32", shape=[1, 1])
    msg.raw_input_contents.append(b"\0" * 4)
    out = msg.outputs.add(name="OUTPUT0")
    for key, value in params.items():
        out.parameters[key].CopyFrom(value)
    return msg


def test_classification_is_kept_on_both_wires() -> None:
    head = v2_http.parse_request(
        _http({"name": "OUTPUT0", "parameters": {"classification": 3}}), None
    )
    assert head.outputs is not None and head.outputs[0].classification == 3
    msg = _grpc(classification=pb.InferParameter(int64_param=3))
    head = v2_grpc.parse_request(msg)
    assert head.outputs is not None and head.outputs[0].classification == 3
    plain = v2_grpc.parse_request(_grpc())
    assert plain.outputs is not None and plain.outputs[0].classification == 0


@pytest.mark.parametrize("count", ["3", -1, True, 2.5])
def test_a_classification_that_is_not_a_count_is_named(count: object) -> None:
    body = _http({"name": "OUTPUT0", "parameters": {"classification": count}})
    with pytest.raises(CodecError, match=r"outputs\[0\]\.parameters\.classification"):
        v2_http.parse_request(body, None)


def test_a_grpc_classification_given_as_text_is_named() -> None:
    msg = _grpc(classification=pb.InferParameter(string_param="3"))
    with pytest.raises(CodecError, match=r"outputs\[0\]\.parameters\.classification"):
        v2_grpc.parse_request(msg)
