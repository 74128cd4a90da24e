"""The REST body codec: JSON and the binary extension, both directions."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from protos import v2_http
from protos.infer import InferRequestBody, InferResponseBody, RequestedOutput
from protos.tensors import CodecError, Tensor, from_numpy


def test_binary_request_splits_header_and_tensors() -> None:
    a = from_numpy("A", "FP32", np.arange(4, dtype=np.float32).reshape(2, 2))
    s = from_numpy("S", "BYTES", np.array([b"x", b""], dtype=object))
    body, length = v2_http.encode_request(InferRequestBody([a, s]), binary=True)
    assert length is not None
    header = orjson.loads(body[:length])
    assert header["inputs"][0]["parameters"] == {"binary_data_size": 16}
    decoded = v2_http.decode_request(body, length)
    assert decoded.inputs == [a, s]


def test_outputs_are_binary_per_output_or_by_request_default() -> None:
    body = InferRequestBody(
        [], [RequestedOutput("A", True), RequestedOutput("B", None)], parameters={}
    )
    assert v2_http.wants_binary(body, "A") is True
    assert v2_http.wants_binary(body, "B") is False
    body.parameters["binary_data_output"] = True
    assert v2_http.wants_binary(body, "B") is True


def test_response_mixes_json_and_binary_outputs() -> None:
    a = from_numpy("A", "INT32", np.array([[1, 2]], dtype=np.int32))
    b = from_numpy("B", "FP64", np.array([0.5]))
    body, length = v2_http.encode_response(InferResponseBody("m", [a, b], id="7"), [False, True])
    assert length is not None
    header = orjson.loads(body[:length])
    assert header["outputs"][0]["data"] == [1, 2]
    assert "parameters" not in header["outputs"][0]  # C++ client: no parameters on JSON outputs
    assert header["outputs"][1]["parameters"] == {"binary_data_size": 8}
    decoded = v2_http.decode_response(body, length)
    assert decoded.outputs == [a, b] and decoded.id == "7"


HEADER = (
    b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": [2],'
    b' "parameters": {"binary_data_size": 8}}]}'
)
JSON_ONLY = b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": [1], "data": [1]}]}'


@pytest.mark.parametrize(
    ("body", "length", "message"),
    [
        (b"[]", None, "the body must be a JSON object"),
        (b"{", None, "not valid JSON"),
        (b'{"inputs": []}', None, "'inputs' must be a non-empty list"),
        (b'{"inputs": [{"datatype": "FP32", "shape": [1], "data": [1]}]}', None, "name"),
        (
            b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": [-1], "data": []}]}',
            None,
            "shape must be a list of non-negative integers",
        ),
        (
            b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": [1]}]}',
            None,
            "neither 'data' nor a binary_data_size",
        ),
        (HEADER + b"\0" * 4, len(HEADER), "runs past the end"),
        (JSON_ONLY + b"xx", len(JSON_ONLY), "2 bytes of binary data that no tensor claims"),
        (b"{}", 99, "Inference-Header-Content-Length is 99"),
        (
            b'{"inputs": [{"name": "a", "datatype": "FP32", "shape": [1], "data": [1],'
            b' "parameters": {"shared_memory_region": "r"}}]}',
            None,
            "shared memory",
        ),
    ],
)
def test_malformed_bodies_name_what_is_wrong(body: bytes, length: int | None, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        v2_http.decode_request(body, length)


def test_binary_size_must_match_the_shape() -> None:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "a",
                    "datatype": "FP32",
                    "shape": [2],
                    "parameters": {"binary_data_size": 4},
                }
            ]
        }
    )
    with pytest.raises(
        CodecError, match="binary_data_size is 4 bytes, shape \\[2\\] of FP32 needs 8"
    ):
        v2_http.decode_request(header + b"\0" * 4, len(header))


def test_request_echoes_parameters_and_id() -> None:
    tensor = Tensor("a", "INT64", (1,), np.array([5], dtype=np.int64).tobytes())
    request = InferRequestBody([tensor], None, "req-1", {"priority": 2, "timeout": 1000})
    body, length = v2_http.encode_request(request, binary=False)
    decoded = v2_http.decode_request(body, length)
    assert (decoded.id, decoded.parameters, decoded.outputs) == ("req-1", request.parameters, None)
