"""The REST body codec (JSON and the binary extension) on any input: a decoded request whose
data is what its header says, or a CodecError saying what is wrong; nothing else."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from protos import v2_http
from protos.infer import InferRequestBody, InferResponseBody
from protos.tensors import (
    DATATYPES,
    CodecError,
    Tensor,
    bytes_elements,
    element_count,
)
from tests.fuzz.budget import fuzz
from tests.fuzz.strategies import (
    assert_consistent,
    bytes_blob,
    datatypes,
    documents,
    gateway_decode,
    json_bytes,
    mutated,
    outcome,
    scalars,
    shapes,
    valid_requests,
)

lengths = st.none() | st.integers(-3, 400) | st.sampled_from([2**31, 2**63 - 1, -(2**63)])


def rest_decode(body: bytes, length: int | None) -> InferRequestBody | CodecError:
    return gateway_decode(v2_http.parse_request, body, length)


# Values a field can be given in place of the right one: wrong types, nested lists, huge or
# negative numbers, plain documents; and, per field, values close to the right ones.
wrong = (
    documents(max_leaves=6)
    | st.sampled_from([-1, 2**31, 2**64, 1.5, True, "8", None, [], {}])
    | st.lists(st.lists(st.integers(-3, 3), max_size=3), max_size=3)
)
numbers = st.integers(-(2**64), 2**64) | st.floats() | st.booleans() | st.text(max_size=2)
data_values = (
    st.lists(st.integers(-3, 3), max_size=8)
    | st.lists(numbers, max_size=8)
    | st.lists(st.lists(st.integers(0, 2**64), max_size=3), max_size=3)
    | st.lists(st.text(max_size=3), max_size=8)
    | st.lists(st.lists(st.text(max_size=2), max_size=2), max_size=3)
)
NEAR: dict[str, st.SearchStrategy[Any]] = {
    "name": st.text(min_size=1, max_size=3) | wrong,
    "datatype": datatypes | wrong,
    "shape": shapes | st.lists(st.integers(0, 3), max_size=3) | wrong,
    "data": data_values | wrong,
    "parameters": st.dictionaries(st.sampled_from(["binary_data_size", "x"]), wrong) | wrong,
    "binary_data_size": st.integers(-1, 40) | wrong,
    "shared_memory_region": wrong,
    "binary_data": st.booleans() | wrong,
}
TENSOR_KEYS = ["name", "datatype", "shape", "data", "parameters"]
PARAM_KEYS = ["binary_data_size", "shared_memory_region", "binary_data"]


@st.composite
def wrong_documents(draw: st.DrawFn, key: str) -> tuple[bytes, int | None]:
    """A valid body (``key``: inputs or outputs) with fields of its JSON head replaced,
    dropped or added, its binary part mutated and its header length lying."""
    request = draw(valid_requests())
    body, length = v2_http.encode_request(request, binary=draw(st.booleans()))
    head_len = len(body) if length is None else length
    doc: dict[str, Any] = json.loads(body[:head_len])  # stdlib: it reads NaN, as Triton writes it
    if key == "outputs":
        doc["outputs"] = doc.pop("inputs")
    for _ in range(draw(st.integers(1, 2))):
        where = draw(st.sampled_from(["tensor", "tensor", "param", "param", "top"]))
        tensors = doc.get(key)
        if where != "top" and isinstance(tensors, list) and tensors:
            obj = draw(st.sampled_from(tensors))
            if not isinstance(obj, dict):
                continue
            if where == "param":
                params = obj.setdefault("parameters", {})
                field = draw(st.sampled_from(PARAM_KEYS))
                if isinstance(params, dict):
                    params[field] = draw(NEAR[field])
            elif draw(st.integers(0, 3)):
                field = draw(st.sampled_from(TENSOR_KEYS))
                obj[field] = draw(NEAR[field])
            else:
                obj.pop(draw(st.sampled_from(TENSOR_KEYS)), None)
        else:
            doc[draw(st.sampled_from([key, "id", "parameters", "outputs", "x"]))] = draw(wrong)
    head = json_bytes(doc)
    binary = body[head_len:]
    if draw(st.booleans()):
        binary = draw(mutated(binary) | bytes_blob(draw(st.integers(0, 3))))
    declared = draw(st.sampled_from(["exact", "exact", "none", "any"]))
    if declared == "exact":
        return head + binary, len(head) if binary or length is not None else None
    return head + binary, None if declared == "none" else draw(lengths)


@fuzz(examples=600)
@given(st.binary(max_size=64) | st.binary(max_size=64).map(lambda b: b'{"inputs":' + b), lengths)
def test_any_bytes_decode_or_are_refused(body: bytes, length: int | None) -> None:
    rest_decode(body, length)


@fuzz(examples=600)
@given(documents(scalars | shapes | datatypes, max_leaves=20), lengths)
def test_any_json_document_decodes_or_is_refused(doc: Any, length: int | None) -> None:
    rest_decode(json_bytes(doc), length)
    rest_decode(json_bytes({"inputs": [doc]}), None)


@fuzz(examples=1200)
@given(wrong_documents("inputs"))
def test_a_request_with_wrong_fields_decodes_or_is_refused(case: tuple[bytes, int | None]) -> None:
    rest_decode(*case)


def one_input(obj: dict[str, Any], binary: bytes = b"") -> bytes:
    return json_bytes({"inputs": [{"name": "x", **obj}]}) + binary


@fuzz(examples=1000)
@given(
    st.sampled_from([n for n in DATATYPES if DATATYPES[n].json_ok]),
    shapes | st.lists(st.integers(0, 3), max_size=3),
    data_values | documents(max_leaves=8),
)
def test_json_data_of_any_extent_and_type_decodes_or_is_refused(
    dt: str, shape: list[int], data: Any
) -> None:
    decoded = rest_decode(one_input({"datatype": dt, "shape": shape, "data": data}), None)
    if isinstance(decoded, InferRequestBody) and dt not in ("BYTES", "BOOL", "FP32", "FP16"):
        tensor = decoded.inputs[0]
        values = np.frombuffer(tensor.data, DATATYPES[dt].numpy).tolist()
        expected = np.asarray(data, dtype=object).ravel().tolist()
        assert len(values) == len(expected)  # NaN in, NaN out (as Triton reads it)
        assert all(a == b or (a != a and b != b) for a, b in zip(values, expected, strict=True))


@fuzz(examples=1000)
@given(datatypes, shapes | st.lists(st.integers(0, 3), max_size=3), st.data())
def test_binary_data_whose_size_or_prefixes_lie_decodes_or_is_refused(
    dt: str, shape: list[int], data: st.DataObject
) -> None:
    count = element_count(shape) if all(0 <= d < 64 for d in shape) else 3
    blob = data.draw(bytes_blob(count) if dt == "BYTES" else st.binary(max_size=4 * count + 8))
    size = data.draw(st.sampled_from([len(blob), len(blob) - 1, len(blob) + 1]))
    trailing = data.draw(st.binary(max_size=2))
    obj = {"datatype": dt, "shape": shape, "parameters": {"binary_data_size": size}}
    head = one_input(obj)
    rest_decode(head + blob + trailing, len(head))


@fuzz(examples=400)
@given(valid_requests())
def test_a_valid_binary_request_decodes_to_itself(request: InferRequestBody) -> None:
    body, length = v2_http.encode_request(request, binary=True)
    decoded = v2_http.decode_request(body, length)
    assert decoded.inputs == request.inputs
    assert decoded.id == request.id
    assert [(o.name, bool(o.binary)) for o in decoded.outputs or ()] == [
        (o.name, bool(o.binary)) for o in request.outputs or ()
    ]


def json_carries(tensor: Tensor) -> bool:
    """Whether JSON can carry this tensor's values exactly: finite numbers, UTF-8 strings."""
    dt = DATATYPES[tensor.datatype]
    if dt.is_bytes:
        try:
            [e.decode() for e in bytes_elements(tensor.data)]
        except UnicodeDecodeError:
            return False
        return True
    assert dt.numpy is not None
    values = np.frombuffer(tensor.data, dtype=dt.numpy)
    return dt.numpy.kind != "f" or bool(np.isfinite(values).all())


@fuzz(examples=400)
@given(valid_requests())
def test_a_valid_json_request_decodes_to_itself_or_names_what_json_cannot_carry(
    request: InferRequestBody,
) -> None:
    body, length = v2_http.encode_request(request, binary=False)
    decoded = rest_decode(body, length)
    if not all(DATATYPES[t.datatype].json_ok for t in request.inputs):
        assert isinstance(decoded, CodecError) and "binary" in str(decoded), decoded
    elif all(json_carries(t) for t in request.inputs):
        assert isinstance(decoded, InferRequestBody), decoded
        assert decoded.inputs == request.inputs


def client_decode(body: bytes, length: int | None) -> InferResponseBody | CodecError:
    decoded = outcome(v2_http.decode_response, body, length)
    if isinstance(decoded, InferResponseBody):
        for tensor in decoded.outputs:
            assert_consistent(tensor)
    return decoded


@fuzz(examples=600)
@given(wrong_documents("outputs"))
def test_a_response_with_wrong_fields_decodes_or_is_refused(
    case: tuple[bytes, int | None],
) -> None:
    client_decode(*case)


@fuzz(examples=300)
@given(st.binary(max_size=64), lengths)
def test_any_bytes_as_a_response_decode_or_are_refused(body: bytes, length: int | None) -> None:
    client_decode(body, length)
