"""simpod --no-signature and --row-size: the demo model as MLServer's default describes it."""

from __future__ import annotations

import numpy as np
import pytest

from loadtest.simpod.config import parse_args
from loadtest.simpod.errors import SimError
from loadtest.simpod.models import build_models
from protos.infer import InferRequestBody
from protos.tensors import from_numpy, to_numpy


def test_flags_parse() -> None:
    cfg = parse_args(["--no-signature", "--row-size", "8"])
    assert cfg.no_signature and cfg.row_size == 8
    assert not parse_args([]).no_signature


def test_no_signature_model_describes_nothing_and_doubles_any_shape() -> None:
    model = build_models("sim", 32, False, signature=False)["sim"]
    meta = model.metadata()
    assert list(meta.inputs) == [] and list(meta.outputs) == []
    with pytest.raises(SimError):
        model.config(1)
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    batch = model.check(InferRequestBody([from_numpy("INPUT0", "FP32", data)]))
    (out,) = model.run(batch)
    assert batch.rows == 2 and np.array_equal(to_numpy(out), 2 * data)
    with pytest.raises(SimError, match="datatype FP64"):
        model.check(InferRequestBody([from_numpy("INPUT0", "FP64", data.astype(np.float64))]))


def test_row_size_sets_the_dims() -> None:
    assert build_models("sim", 4, False, row_size=8)["sim"].metadata().inputs[0].shape == [-1, 8]
