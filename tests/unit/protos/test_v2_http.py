"""The REST body codec: JSON and the binary extension, both directions."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from protos import v2_http
from protos.heads import DecodeLimits, RequestHead
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


@pytest.mark.parametrize("flag", ["false", 1, 0, "true", [], {}])
def test_request_binary_data_output_must_be_a_boolean_when_parsed(flag: object) -> None:
    doc = orjson.loads(JSON_ONLY)
    doc["parameters"] = {"binary_data_output": flag}
    with pytest.raises(CodecError, match=r"parameters\.binary_data_output must be a boolean"):
        v2_http.parse_request(orjson.dumps(doc), None)


@pytest.mark.parametrize("flag", [True, False, None])
def test_request_binary_data_output_is_kept_when_boolean(flag: bool | None) -> None:
    doc = orjson.loads(JSON_ONLY)
    doc["parameters"] = {"binary_data_output": flag, "priority": 1}
    head = v2_http.parse_request(orjson.dumps(doc), None)
    assert head.parameters == {"binary_data_output": flag, "priority": 1}
    assert v2_http.wants_binary(head.decode(), "a") is bool(flag)


@pytest.mark.parametrize(
    ("datatype", "value"),
    [("INT64", b"9223372036854775808"), ("UINT64", b"18446744073709551616"), ("UINT32", b"-1")],
)
def test_json_integers_out_of_range_are_named_so(datatype: str, value: bytes) -> None:
    body = b'{"inputs":[{"name":"a","datatype":"%s","shape":[2],"data":[%s,0]}]}' % (
        datatype.encode(),
        value,
    )
    with pytest.raises(CodecError, match=f"input 'a': data has values out of range for {datatype}"):
        v2_http.decode_request(body, None)


LIMITS = DecodeLimits(max_decode_elements=10, max_bytes_items=4)


def checked(body: bytes, length: int | None) -> RequestHead:
    """The request's head, checked against LIMITS."""
    head = v2_http.parse_request(body, length)
    head.check(LIMITS)
    return head


def json_body(*inputs: tuple[str, str, list[int], object]) -> bytes:
    return orjson.dumps(
        {"inputs": [{"name": n, "datatype": t, "shape": s, "data": d} for n, t, s, d in inputs]}
    )


def test_parsing_converts_no_data(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def spy(dt: object, data: object, count: int, what: str) -> bytes:
        calls.append(what)
        return b"\0" * 4 * count

    monkeypatch.setattr(v2_http, "json_to_raw", spy)
    head = checked(json_body(("a", "FP32", [2], ["x", "y"])), None)
    assert (head.inputs[0].name, head.inputs[0].datatype, head.inputs[0].shape) == (
        "a",
        "FP32",
        (2,),
    )
    assert calls == []
    head.decode()
    assert calls == ["input 'a'"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            json_body(("a", "FP32", [6], [0] * 6), ("b", "INT32", [5], [0] * 5)),
            "input 'b': the request holds 11 elements to decode, more than the server's "
            "max_decode_elements 10",
        ),
        (
            json_body(("s", "BYTES", [5], [""] * 5)),
            "input 's': the request holds 5 BYTES items, more than the server's max_bytes_items 4",
        ),
        (
            json_body(("a", "FP32", [11, 0], [[]] * 11)),  # rows of empty lists are work too
            "max_decode_elements 10",
        ),
    ],
)
def test_decode_caps_are_named_with_the_input_that_passes_them(body: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        checked(body, None)


def test_raw_fixed_size_data_is_not_decode_work() -> None:
    a = from_numpy("a", "FP32", np.zeros(100, np.float32))
    body, length = v2_http.encode_request(InferRequestBody([a]), binary=True)
    assert checked(body, length).decode().inputs == [a]


def test_binary_bytes_are_capped_and_sized_before_their_prefixes_are_read() -> None:
    many = from_numpy("s", "BYTES", np.array([b""] * 5, dtype=object))
    body, length = v2_http.encode_request(InferRequestBody([many]), binary=True)
    with pytest.raises(CodecError, match="input 's': the request holds 5 BYTES items"):
        checked(body, length)
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "s",
                    "datatype": "BYTES",
                    "shape": [3],
                    "parameters": {"binary_data_size": 8},
                }
            ]
        }
    )
    with pytest.raises(CodecError, match="8 bytes, which cannot hold the 3 elements"):
        checked(header + b"\0" * 8, len(header))
