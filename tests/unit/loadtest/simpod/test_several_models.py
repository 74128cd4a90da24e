"""One simulated pod serving several demo models (``--model-name a,b``) on the same devices."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from loadtest.simpod.config import parse_args
from loadtest.simpod.core import Faults, batch_cost_s
from loadtest.simpod.engine import Engine
from loadtest.simpod.models import build_models
from protos.infer import InferRequestBody
from protos.tensors import from_numpy, to_numpy


def _request(rows: int) -> InferRequestBody:
    values = np.ones((rows, 16), dtype=np.float32)
    return InferRequestBody([from_numpy("INPUT0", "FP32", values)])


def test_a_comma_separated_name_builds_alike_demo_models() -> None:
    models = build_models("a,b", 8, False)
    assert list(models) == ["a", "b"]
    assert models["a"].metadata().inputs[0].shape == models["b"].metadata().inputs[0].shape
    assert list(build_models("a,b", 8, True))[:2] == ["a", "b"]


@pytest.mark.parametrize("name", ["a,,b", "a,a", ",a", "a,"])
def test_empty_or_repeated_names_are_refused(name: str) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--model-name", name])


def test_the_command_line_takes_several_models() -> None:
    assert parse_args(["--model-name", "a,b"]).model_name == "a,b"


async def test_the_models_batches_share_the_pods_devices() -> None:
    """One device: a batch of ``a`` and one of ``b`` sent together run one after the other on
    it (device time booked on the one device is both batches')."""
    engine = Engine(
        build_models("a,b", 8, False), devices=1, fixed_ms=2.0, per_row_ms=0.5, faults=Faults()
    )
    engine.set_started()
    a, b = await asyncio.gather(
        engine.infer("a", "", _request(4)), engine.infer("b", "", _request(2))
    )
    assert to_numpy(a.outputs[0]).tolist() == [[2.0] * 16] * 4
    assert b.model_name == "b"
    booked = batch_cost_s(4, 2.0, 0.5) + batch_cost_s(2, 2.0, 0.5)
    assert engine.pool.busy_s(0) == pytest.approx(booked)
    assert engine.stats["a"].execution_count == engine.stats["b"].execution_count == 1
