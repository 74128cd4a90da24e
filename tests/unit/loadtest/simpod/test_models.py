"""The simulated pod's models: request checks, outputs, metadata and Triton config."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.simpod.errors import Code, SimError
from loadtest.simpod.models import build_models, demo_model, identity_models
from protos import model_config_pb2 as mc
from protos.infer import InferRequestBody, RequestedOutput
from protos.tensors import DATATYPES, Tensor, from_numpy, to_numpy


def _sim_request(rows: int, **kw: object) -> InferRequestBody:
    values = np.arange(rows * 16, dtype=np.float32).reshape(rows, 16)
    return InferRequestBody([from_numpy("INPUT0", "FP32", values)], **kw)  # type: ignore[arg-type]


def _invalid(request: InferRequestBody, match: str) -> None:
    with pytest.raises(SimError, match=match) as info:
        demo_model(32).check(request)
    assert info.value.code is Code.INVALID_ARGUMENT


def test_sim_doubles_its_input() -> None:
    model = demo_model(32)
    request = _sim_request(3)
    batch = model.check(request)
    assert batch.rows == 3
    assert batch.outputs == ["OUTPUT0"]
    (out,) = model.run(batch)
    assert (out.name, out.datatype, out.shape) == ("OUTPUT0", "FP32", (3, 16))
    assert np.array_equal(to_numpy(out), to_numpy(request.inputs[0]) * 2)


def test_full_batch_is_accepted_and_one_more_row_is_not() -> None:
    assert demo_model(32).check(_sim_request(32)).rows == 32
    _invalid(_sim_request(33), "batch size 33.*max_batch_size 32")


def test_empty_batch_is_rejected() -> None:
    _invalid(_sim_request(0), "batch size 0")


def test_wrong_input_name() -> None:
    tensor = Tensor("INPUT1", "FP32", (1, 16), bytes(64))
    _invalid(InferRequestBody([tensor]), "unexpected input 'INPUT1'")


def test_input_given_twice() -> None:
    tensor = Tensor("INPUT0", "FP32", (1, 16), bytes(64))
    _invalid(InferRequestBody([tensor, tensor]), "2 times")


def test_wrong_datatype() -> None:
    tensor = Tensor("INPUT0", "FP64", (1, 16), bytes(128))
    _invalid(InferRequestBody([tensor]), "datatype FP64.*expects FP32")


@pytest.mark.parametrize("shape", [(1, 8), (16,), (1, 16, 1)])
def test_wrong_shape(shape: tuple[int, ...]) -> None:
    count = int(np.prod(shape))
    tensor = Tensor("INPUT0", "FP32", shape, bytes(4 * count))
    _invalid(InferRequestBody([tensor]), r"shape .* expects \[-1, 16\]")


def test_unknown_requested_output() -> None:
    _invalid(_sim_request(1, outputs=[RequestedOutput("OUTPUT9")]), "unknown output 'OUTPUT9'")


def test_requested_outputs_are_returned_in_order() -> None:
    model = demo_model(32)
    batch = model.check(_sim_request(1, outputs=[RequestedOutput("OUTPUT0", True)]))
    assert [t.name for t in model.run(batch)] == ["OUTPUT0"]


def test_metadata_has_the_batch_dimension() -> None:
    meta = demo_model(8, "m").metadata()
    assert meta.name == "m"
    assert list(meta.versions) == ["1"]
    assert meta.platform == "simulated"
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [
        ("INPUT0", "FP32", [-1, 16])
    ]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [
        ("OUTPUT0", "FP32", [-1, 16])
    ]


def test_config_is_what_perf_analyzer_reads() -> None:
    cfg = demo_model(32).config(devices=3)
    assert cfg.name == "sim"
    assert cfg.platform == "simulated"
    assert cfg.max_batch_size == 32
    assert cfg.input[0].data_type == mc.TYPE_FP32
    assert list(cfg.input[0].dims) == [16]
    assert cfg.output[0].name == "OUTPUT0"
    assert cfg.HasField("dynamic_batching")
    assert cfg.WhichOneof("scheduling_choice") == "dynamic_batching"
    (group,) = cfg.instance_group
    assert (group.count, group.kind) == (3, mc.ModelInstanceGroup.KIND_GPU)


def test_one_identity_model_per_datatype() -> None:
    models = identity_models(4)
    assert sorted(m.name for m in models) == sorted(f"identity_{d.lower()}" for d in DATATYPES)
    by_name = {m.name: m for m in models}
    assert by_name["identity_bytes"].config(1).input[0].data_type == mc.TYPE_STRING
    assert by_name["identity_bf16"].config(1).input[0].data_type == mc.TYPE_BF16
    assert by_name["identity_fp16"].metadata().inputs[0].shape == [-1, -1]


def test_identity_returns_its_input_byte_for_byte() -> None:
    model = {m.name: m for m in identity_models(4)}["identity_bytes"]
    array = np.array([[b"a", b""], [b"\x00\xff", "é".encode()]], dtype=object)
    tensor = from_numpy("INPUT0", "BYTES", array)
    (out,) = model.run(model.check(InferRequestBody([tensor])))
    assert out.data == tensor.data
    assert out.shape == (2, 2)
    assert out.datatype == "BYTES"


def test_identity_checks_batch_size() -> None:
    model = {m.name: m for m in identity_models(4)}["identity_int8"]
    with pytest.raises(SimError, match="batch size 5"):
        model.check(InferRequestBody([Tensor("INPUT0", "INT8", (5, 3), bytes(15))]))


def test_build_models() -> None:
    assert list(build_models("sim", 32, False)) == ["sim"]
    assert len(build_models("demo", 32, True)) == 1 + len(DATATYPES)
    assert "demo" in build_models("demo", 32, True)
