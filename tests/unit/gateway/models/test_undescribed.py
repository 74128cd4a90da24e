"""A pod that declares no signature: requests pass through; only the batch dim is checked."""

from __future__ import annotations

import pytest

from gateway.errors import InferError
from gateway.models.describe import Descriptions, signature_text
from gateway.models.spec import ModelSpec
from protos import grpc_service_pb2 as pb
from protos.infer import InferRequestBody
from protos.tensors import Tensor


def empty_metadata() -> pb.ModelMetadataResponse:
    return pb.ModelMetadataResponse(name="sim", versions=["1"], platform="mlserver")


def described(dims: int) -> ModelSpec:
    meta = empty_metadata()
    meta.inputs.add(name="INPUT0", datatype="FP32", shape=[-1, dims])
    meta.outputs.add(name="OUTPUT0", datatype="FP32", shape=[-1, dims])
    return ModelSpec.from_metadata("sim", meta, 8)


def body(*tensors: tuple[str, str, tuple[int, ...]]) -> InferRequestBody:
    return InferRequestBody([Tensor(n, t, s, b"") for n, t, s in tensors])


def test_without_max_batch_size_any_request_is_one_batch() -> None:
    spec = ModelSpec.from_metadata("sim", empty_metadata(), None)
    assert not spec.described and spec.max_batch_size == 0
    assert spec.validate(body(("X", "INT8", (3, 2)), ("Y", "BYTES", ()))) == 1
    assert spec.metadata().inputs == []
    assert spec.config().max_batch_size == 0


def test_with_max_batch_size_dim_0_is_the_batch() -> None:
    spec = ModelSpec.from_metadata("sim", empty_metadata(), 4)
    assert spec.max_batch_size == 4
    assert spec.validate(body(("A", "FP32", (3, 7)), ("B", "FP64", (3,)))) == 3
    for bad in (
        body(("A", "FP32", (5, 2))),
        body(("A", "FP32", ())),
        body(("A", "FP32", (2,)), ("B", "FP32", (3,))),
        body(("A", "FP32", (1,)), ("A", "FP32", (1,))),
    ):
        with pytest.raises(InferError):
            spec.validate(bad)


def test_newest_wins_once_the_ready_pods_agree() -> None:
    old, new = described(16), described(8)
    seen = Descriptions("sim")
    seen.record("a", old)
    assert seen.choose(None, old, {"a"}) is old
    seen.record("b", new)
    assert seen.choose(old, new, {"a", "b"}) is old  # they disagree: keep what is in force
    assert len(seen.distinct({"a", "b"})) == 2
    assert seen.choose(old, old, {"b"}) is new  # the old pod left
    seen.forget("a")
    assert seen.distinct({"a", "b"}) == [new]
    assert "[-1, 8]" in signature_text(new)
    assert "no declared signature" in signature_text(
        ModelSpec.from_metadata("s", empty_metadata(), 0)
    )
