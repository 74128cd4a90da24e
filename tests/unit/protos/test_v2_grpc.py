"""The gRPC request codec: heads are checked and capped before any data is decoded."""

from __future__ import annotations

import numpy as np
import pytest

from protos import grpc_service_pb2 as pb
from protos import v2_grpc
from protos.heads import DecodeLimits, RequestHead
from protos.infer import InferRequestBody
from protos.tensors import CodecError, from_numpy, serialize_bytes

LIMITS = DecodeLimits(max_decode_elements=10, max_bytes_items=4)


def checked(msg: pb.ModelInferRequest) -> RequestHead:
    """The request's head, checked against LIMITS."""
    head = v2_grpc.parse_request(msg)
    head.check(LIMITS)
    return head


def raw_request(*arrays: tuple[str, str, np.ndarray]) -> pb.ModelInferRequest:
    tensors = [from_numpy(name, dtype, array) for name, dtype, array in arrays]
    return v2_grpc.encode_request("m", InferRequestBody(tensors))


def test_raw_contents_and_typed_contents_together_are_refused_as_triton_does() -> None:
    msg = raw_request(("a", "FP32", np.zeros(2, np.float32)))
    msg.inputs[0].contents.fp32_contents.extend([1.0, 2.0])
    with pytest.raises(
        CodecError,
        match="contents field must not be specified when using raw_input_contents "
        "for input 'a' for model 'm'",
    ):
        v2_grpc.parse_request(msg)


def test_typed_contents_are_counted_and_capped_before_conversion(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def spy(dt: object, contents: object, count: int, what: str) -> bytes:
        calls.append(what)
        return b"\0" * 4 * count

    monkeypatch.setattr(v2_grpc, "contents_to_raw", spy)
    msg = pb.ModelInferRequest(model_name="m")
    msg.inputs.add(name="a", datatype="FP32", shape=[3]).contents.fp32_contents.extend([1, 2, 3])
    head = checked(msg)
    assert calls == []
    head.decode()
    assert calls == ["input 'a'"]
    msg.inputs.add(name="b", datatype="INT32", shape=[8]).contents.int_contents.extend([0] * 8)
    with pytest.raises(CodecError, match=r"input 'b': .* 11 elements .* max_decode_elements 10"):
        checked(msg)
    msg.inputs[1].shape[:] = [2]
    with pytest.raises(CodecError, match="int_contents has 8 elements, shape needs 2"):
        checked(msg)
    assert calls == ["input 'a'"]


def test_raw_bytes_items_are_capped_and_sized_from_the_shape() -> None:
    msg = raw_request(("s", "BYTES", np.array([b""] * 5, dtype=object)))
    with pytest.raises(CodecError, match="input 's': the request holds 5 BYTES items"):
        checked(msg)
    msg = pb.ModelInferRequest(model_name="m", raw_input_contents=[serialize_bytes([b"ab"])])
    msg.inputs.add(name="s", datatype="BYTES", shape=[3])
    with pytest.raises(CodecError, match="6 bytes, which cannot hold the 3 elements"):
        checked(msg)


def test_raw_fixed_size_data_is_not_decode_work() -> None:
    msg = raw_request(("a", "FP32", np.arange(100, dtype=np.float32)))
    (tensor,) = checked(msg).decode().inputs
    assert tensor.shape == (100,) and len(tensor.data) == 400
