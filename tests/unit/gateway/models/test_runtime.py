"""A model's runtime before any pod has described it: a request waits for the spec, and the
scheduler's state counts it as queued, so the load report carries demand (scale from zero)."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.config import ModelSettings
from gateway.errors import Code, InferError
from gateway.metrics import GatewayMetrics
from gateway.models.runtime import ModelRuntime
from protos.infer import InferRequestBody
from protos.tensors import Tensor
from tests.fakes.reports import until


def request(rows: int) -> InferRequestBody:
    row = bytes(16 * 4)  # 16 FP32 zeros
    return InferRequestBody([Tensor("INPUT0", "FP32", (rows, 16), row * rows)])


def runtime() -> ModelRuntime:
    """A model with no pod at all: no spec will ever come."""
    return ModelRuntime(ModelSettings(name="sim"), metrics=GatewayMetrics(), probe_interval_s=1)


async def test_a_request_waiting_for_the_spec_counts_as_queued_until_it_gives_up() -> None:
    model = runtime()
    waiting = asyncio.create_task(model.infer(request(3), time.monotonic() + 2))
    await until(lambda: model.scheduler.state(time.monotonic()).queued_requests > 0)
    state = model.scheduler.state(time.monotonic())
    assert (state.queued_requests, state.queued_rows) == (1, 3)
    with pytest.raises(InferError) as err:
        await waiting
    assert err.value.code is Code.UNAVAILABLE
    state = model.scheduler.state(time.monotonic())
    assert (state.queued_requests, state.queued_rows) == (0, 0)


async def test_a_waiting_request_that_is_cancelled_is_no_longer_counted() -> None:
    model = runtime()
    waiting = asyncio.create_task(model.infer(request(1), time.monotonic() + 30))
    await until(lambda: model.scheduler.state(time.monotonic()).queued_requests > 0)
    assert model.scheduler.state(time.monotonic()).queued_requests == 1
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert model.scheduler.state(time.monotonic()).queued_requests == 0
