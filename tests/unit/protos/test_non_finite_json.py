"""NaN, Infinity and -Infinity (and, read, Inf, -Inf and -NaN) in REST JSON tensor data, read
and written as Triton's RapidJSON does (kParseNanAndInfFlag, kWriteNanAndInfFlag); any other
bad body refused with a CodecError."""

from __future__ import annotations

import json
import math

import numpy as np
import orjson
import pytest

from protos import v2_http
from protos.infer import InferRequestBody, InferResponseBody
from protos.tensors import CodecError, Tensor, from_numpy

NON_FINITE = [math.inf, -math.inf, math.nan, 1.5]


def _tensor(datatype: str, values: list[float]) -> Tensor:
    if datatype == "BF16":  # the upper 16 bits of each FP32
        bits = np.array(values, dtype=np.float32).view(np.uint32) >> 16
        return Tensor("o", "BF16", (len(values),), bits.astype("<u2").tobytes())
    return from_numpy("o", datatype, np.array(values))


def _data_text(body: bytes) -> bytes:
    """The ``data`` array of the one tensor in a JSON body, as written."""
    start = body.index(b'"data":') + len(b'"data":')
    return body[start : body.index(b"]", start) + 1]


def _one_input(datatype: str, data: bytes, shape: int = 4) -> bytes:
    return b'{"inputs":[{"name":"a","datatype":"%s","shape":[%d],"data":%s}]}' % (
        datatype.encode(),
        shape,
        data,
    )


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "FP16", "BF16"])
def test_non_finite_outputs_are_written_as_rapidjson_tokens(datatype: str) -> None:
    response = InferResponseBody("m", [_tensor(datatype, NON_FINITE)])
    body, length = v2_http.encode_response(response, [False])
    assert length is None
    assert _data_text(body) == b"[Infinity,-Infinity,NaN,1.5]"
    data = json.loads(body)["outputs"][0]["data"]  # as a client reads it: no null, no NaN for inf
    assert data[:2] == [math.inf, -math.inf] and math.isnan(data[2]) and data[3] == 1.5


def test_finite_outputs_are_written_by_orjson_unchanged() -> None:
    values = np.array([0.1, -2.5, 3.4e38], dtype=np.float32)
    body, _ = v2_http.encode_response(
        InferResponseBody("m", [from_numpy("o", "FP32", values)]), [False]
    )
    assert _data_text(body) == orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY)


@pytest.mark.parametrize("datatype", ["FP32", "FP64"])
def test_json_inputs_read_nan_and_infinity(datatype: str) -> None:
    body = _one_input(datatype, b"[NaN, Infinity, -Infinity, 1.5]")
    (tensor,) = v2_http.decode_request(body, None).inputs
    values = np.frombuffer(tensor.data, dtype=np.float32 if datatype == "FP32" else np.float64)
    assert np.isnan(values[0]) and values[1:].tolist() == [math.inf, -math.inf, 1.5]


def test_json_inputs_read_rapidjsons_other_spellings() -> None:
    """Inf, -Inf and -NaN, which Triton reads too; a token inside a string is left alone."""
    body = _one_input("FP64", b"[Inf, -Inf, -NaN, Infinity]").replace(
        b'{"inputs"', b'{"id": "Inf -NaN \\" Inf", "inputs"'
    )
    request = v2_http.decode_request(body, None)
    values = np.frombuffer(request.inputs[0].data, dtype=np.float64)
    assert values[:2].tolist() == [math.inf, -math.inf] and np.isnan(values[2])
    assert values[3] == math.inf and request.id == 'Inf -NaN " Inf'


def test_a_non_finite_json_request_and_response_round_trip() -> None:
    tensor = _tensor("FP64", NON_FINITE)
    request = v2_http.decode_request(*v2_http.encode_request(InferRequestBody([tensor]), False))
    response = v2_http.decode_response(
        *v2_http.encode_response(InferResponseBody("m", [tensor]), [False])
    )
    assert request.inputs == [tensor] and response.outputs == [tensor]  # the canonical NaN


@pytest.mark.parametrize(
    ("datatype", "message"),
    [
        ("INT32", "data holds floating-point values, datatype is INT32"),
        ("INT64", "data holds floating-point values, datatype is INT64"),
        ("UINT64", "data holds floating-point values, datatype is UINT64"),
        ("BOOL", "data holds floating-point values, datatype is BOOL"),
        ("BYTES", "BYTES data must be strings, got float"),
        ("FP16", "FP16 data must be sent as binary, not JSON"),
        ("BF16", "BF16 data must be sent as binary, not JSON"),
    ],
)
def test_non_finite_json_data_is_refused_for_other_datatypes(datatype: str, message: str) -> None:
    for token in (b"NaN", b"Infinity", b"-Infinity"):
        with pytest.raises(CodecError, match=message):
            v2_http.decode_request(_one_input(datatype, b"[%s, 1]" % token, 2), None)


def test_the_slow_path_reads_numbers_as_orjson_does() -> None:
    body = (
        b'{"inputs":[{"name":"a","datatype":"FP32","shape":[1],"data":[NaN]},'
        b'{"name":"b","datatype":"UINT64","shape":[1],"data":[18446744073709551615]}]}'
    )
    assert v2_http.decode_request(body, None).inputs[1].data == b"\xff" * 8
    too_big = body.replace(b"18446744073709551615", b"18446744073709551616")
    with pytest.raises(CodecError, match="out of range for UINT64"):
        v2_http.decode_request(too_big, None)


DEEP = "the body is not valid JSON: it nests too deeply"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[" * 100_000 + b"NaN", DEEP),  # past the parser's recursion limit
        (b'{"x":' * 100_000 + b"NaN", DEEP),
        (b'{"inputs":' + b"[" * 300 + b"NaN" + b"]" * 300 + b"}", DEEP),  # past orjson's
        (b'{"inputs": [NaN', "not valid JSON: Expecting ',' delimiter"),
        (b'{"id": "\\ud800", "inputs": [NaN]}', "not valid JSON: .*surrogates not allowed"),
        (_one_input("FP64", b"[NaN, 1e400]", 2), "not valid JSON: number is infinity"),
        (_one_input("FP64", b"[NaN, " + b"9" * 5000 + b"]", 2), "number is infinity"),
        (b"\xff NaN", "not valid JSON: 'utf-8' codec can't decode"),
        ('{"inputs": [NaN]}'.encode("utf-16"), "not valid JSON"),
        (_one_input("FP32", b"[Infinit, NaN]", 2), "not valid JSON"),  # as RapidJSON refuses
        (_one_input("FP32", b"[nan, Inf]", 2), "not valid JSON"),
        (b'{"parameters": {"x": -Inf}, "inputs": []}', "NaN and Infinity are allowed in tensor"),
        (b'{"parameters": {"x": NaN}, "inputs": []}', "NaN and Infinity are allowed in tensor"),
        (_one_input("FP32", b"[1]", 1).replace(b"[1]}", b"[1], 1]}"), "not valid JSON"),
        (
            b'{"inputs":[{"name":"a","datatype":"FP32","shape":[NaN],"data":[1]}]}',
            "NaN and Infinity are allowed in tensor data only",
        ),
    ],
)
def test_bad_bodies_with_nan_are_refused_with_what_is_wrong(body: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        v2_http.decode_request(body, None)


def test_a_body_without_nan_or_infinity_keeps_orjsons_message() -> None:
    with pytest.raises(CodecError, match="not valid JSON: invalid literal, expected 'null'"):
        v2_http.decode_request(b'{"inputs": [nan]}', None)
