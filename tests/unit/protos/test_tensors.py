"""The v2 tensor encodings: JSON, raw and typed contents agree, and bad data is named."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from protos import grpc_service_pb2 as pb
from protos.tensors import (
    DATATYPES,
    CodecError,
    bytes_elements,
    check_bytes_count,
    check_bytes_room,
    check_json_extent,
    contents_to_raw,
    from_numpy,
    json_to_raw,
    json_work,
    raw_to_json,
    serialize_bytes,
    to_numpy,
)

NUMERIC_JSON = [n for n, d in DATATYPES.items() if d.json_ok and not d.is_bytes]


@pytest.mark.parametrize("name", NUMERIC_JSON)
def test_json_data_round_trips_through_raw_bytes(name: str) -> None:
    dt = DATATYPES[name]
    values = [[True, False], [False, True]] if name == "BOOL" else [[0, 1], [2, 3]]
    raw = json_to_raw(dt, values, 4, "x")
    assert raw == np.array(values, dtype=dt.numpy).tobytes()
    assert np.asarray(raw_to_json(dt, raw)).tolist() == np.array(values).ravel().tolist()


def test_nested_and_flat_json_give_the_same_bytes() -> None:
    dt = DATATYPES["FP32"]
    assert json_to_raw(dt, [[1, 2], [3, 4]], 4, "x") == json_to_raw(dt, [1, 2, 3, 4], 4, "x")


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("INT8", [1, 300], "out of range for INT8"),
        ("INT32", [1, 1.5], "floating-point values, datatype is INT32"),
        ("FP32", ["a", "b"], "non-numeric"),
        ("BOOL", [1, 0], "integer values, datatype is BOOL"),
        ("FP32", [1, 2, 3], "has 3 elements, shape needs 2"),
        ("FP32", [[1], [2, 3]], "not a regular array"),
        ("FP16", [1, 2], "must be sent as binary"),
        ("BF16", [1, 2], "must be sent as binary"),
        ("BYTES", [1, 2], "must be strings"),
    ],
)
def test_bad_json_data_is_rejected_with_the_reason(name: str, data: list, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        json_to_raw(DATATYPES[name], data, 2, "input 'x'")


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("INT64", [2**63, 0]),
        ("INT64", [-(2**63) - 1, 0]),
        ("INT64", [float(2**63), 0]),  # orjson reads an integer beyond uint64 as a float
        ("UINT64", [2**64, 0]),
        ("UINT64", [float(2**64), 0]),
        ("UINT64", [-1, 2**63]),
        ("UINT32", [2**64, 0]),
        ("UINT8", [-1, 0]),
    ],
)
def test_json_integers_beyond_the_datatype_are_named_out_of_range(name: str, data: list) -> None:
    with pytest.raises(CodecError, match=f"data has values out of range for {name}"):
        json_to_raw(DATATYPES[name], data, 2, "input 'x'")


@pytest.mark.parametrize("data", [[1.0, 2.0], [1.5, 1e30], [math.nan, 1], [math.inf, 1]])
def test_json_floats_in_integer_data_are_named_floating_point(data: list) -> None:
    with pytest.raises(CodecError, match="floating-point values, datatype is INT64"):
        json_to_raw(DATATYPES["INT64"], data, 2, "input 'x'")


@pytest.mark.parametrize("name", ["INT16", "INT64", "UINT64"])
def test_empty_json_integer_data_is_no_value_out_of_range(name: str) -> None:
    assert json_to_raw(DATATYPES[name], [], 0, "x") == b""  # numpy reads [] as float64


def test_json_uint64_values_that_need_all_64_bits_are_exact() -> None:
    raw = json_to_raw(DATATYPES["UINT64"], [2**64 - 1, 0], 2, "x")
    assert np.frombuffer(raw, dtype="<u8").tolist() == [2**64 - 1, 0]


def test_bytes_elements_are_length_prefixed_and_split_back() -> None:
    elements = [b"", b"abc", "héllo".encode()]
    raw = serialize_bytes(elements)
    assert raw[:4] == b"\x00\x00\x00\x00"
    assert bytes_elements(raw) == elements
    check_bytes_count(raw, 3, "x")
    with pytest.raises(CodecError, match="holds 3 elements, shape needs 2"):
        check_bytes_count(raw, 2, "x")
    with pytest.raises(CodecError, match="runs past the end"):
        bytes_elements(raw[:-1])


def test_typed_contents_convert_to_the_same_raw_bytes_as_numpy() -> None:
    contents = pb.InferTensorContents(int_contents=[-1, 2, 127])
    assert (
        contents_to_raw(DATATYPES["INT8"], contents, 3, "x")
        == np.array([-1, 2, 127], dtype=np.int8).tobytes()
    )
    contents = pb.InferTensorContents(fp32_contents=[0.5, 1.5])
    assert (
        contents_to_raw(DATATYPES["FP32"], contents, 2, "x")
        == np.array([0.5, 1.5], dtype=np.float32).tobytes()
    )
    with pytest.raises(CodecError, match="out of range for INT8"):
        contents_to_raw(DATATYPES["INT8"], pb.InferTensorContents(int_contents=[200]), 1, "x")
    with pytest.raises(CodecError, match="must be sent in raw_input_contents"):
        contents_to_raw(DATATYPES["FP16"], pb.InferTensorContents(), 0, "x")


def test_json_floats_beyond_fp32_are_infinite_without_a_warning() -> None:
    """As tritonserver answers them (Infinity); numpy's cast warning is not the client's
    business and must not reach the gateway's log."""
    dt = DATATYPES["FP32"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raw = json_to_raw(dt, [1e300, -1e300, 0.5], 3, "x")
    assert np.frombuffer(raw, dtype=dt.numpy).tolist() == [np.inf, -np.inf, 0.5]


def test_numpy_round_trip_keeps_shape_and_values() -> None:
    array = np.arange(6, dtype=np.int64).reshape(2, 3)
    tensor = from_numpy("x", "INT64", array)
    assert tensor.shape == (2, 3)
    assert (to_numpy(tensor) == array).all()
    strings = np.array([b"a", b"bc"], dtype=object)
    assert to_numpy(from_numpy("s", "BYTES", strings)).tolist() == [b"a", b"bc"]


def test_bf16_json_output_is_the_float_it_encodes() -> None:
    value = np.array([1.5, -2.0], dtype=np.float32)
    bf16 = (value.view(np.uint32) >> 16).astype("<u2").tobytes()
    assert raw_to_json(DATATYPES["BF16"], bf16).tolist() == [1.5, -2.0]


@pytest.mark.parametrize(
    ("data", "shape"),
    [
        ([1, 2, 3, 4], (2, 2)),
        ([[1, 2], [3, 4]], (2, 2)),
        ([[1, 2, 3, 4]], (2, 2)),  # nested otherwise than the shape, as numpy reads it
        (7, ()),
        ([[], []], (2, 0)),
    ],
)
def test_json_extent_accepts_data_that_fills_the_shape(data: object, shape: tuple) -> None:
    check_json_extent(data, shape, "input 'x'")


@pytest.mark.parametrize(
    ("data", "shape", "message"),
    [
        ([1, 2, 3], (2, 2), r"data has 3 elements, shape \[2, 2\] needs 4"),
        ([[1, 2], [3]], (2, 2), "data has 3 elements"),
        ([[1, 2], 3], (2, 2), "ragged nested list"),
        (5, (2,), "data has 1 elements"),
        ([[[]]] * 4, (4,), "nests more lists than its shape has rows"),
    ],
)
def test_json_extent_refuses_data_that_does_not_fill_the_shape(
    data: object, shape: tuple, message: str
) -> None:
    with pytest.raises(CodecError, match=message):
        check_json_extent(data, shape, "input 'x'")


def test_json_extent_reads_list_lengths_not_values() -> None:
    class Opaque:  # any value would do: only the lists around it are looked at
        pass

    check_json_extent([[Opaque()] * 3] * 2, (2, 3), "x")
    assert json_work((4, 0)) == 4 and json_work((2, 3)) == 6 and json_work(()) == 1


def test_bytes_room_is_checked_before_any_prefix_is_read() -> None:
    check_bytes_room(12, 3, "x")  # three empty elements
    with pytest.raises(CodecError, match="11 bytes, which cannot hold the 3 elements"):
        check_bytes_room(11, 3, "x")
    with pytest.raises(CodecError, match="cannot hold the 0 elements"):
        check_bytes_room(4, 0, "x")
