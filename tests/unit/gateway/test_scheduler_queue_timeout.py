"""The scheduler applies Triton's queue-timeout override rule: a request's ``timeout`` may only
shorten its level's ``default_timeout_microseconds``, and only where ``allow_timeout_override``
is set. A hand-moved clock; no pods, so requests stay queued until they expire."""

from __future__ import annotations

import asyncio
import math

import numpy as np
import pytest

from gateway.config import ModelSettings
from gateway.errors import Code, InferError
from gateway.routing.pod_set import PodSet
from gateway.scheduler import Scheduler
from gateway.stats import ModelStats
from protos.infer import InferRequestBody
from protos.tensors import from_numpy
from tests.fakes.clock import Clock


async def expired_at(default_us: int, allow: bool, timeout_us: int | None, at: float) -> bool:
    """Whether a request queued at t=0 with parameter ``timeout`` has left the queue at ``at``."""
    policy = {"default_timeout_microseconds": default_us, "allow_timeout_override": allow}
    settings = ModelSettings.model_validate(
        {"name": "m", "dynamic_batching": {"default_queue_policy": policy}}
    )
    pods = PodSet(
        model="m", addresses=[], probe_interval_s=10.0, probe_timeout_s=1.0, on_ready=print
    )
    clock = Clock()
    scheduler = Scheduler(settings=settings, pods=pods, stats=ModelStats(), clock=clock)
    x = np.zeros((1, 4), dtype=np.float32)
    params = {} if timeout_us is None else {"timeout": timeout_us}
    body = InferRequestBody([from_numpy("INPUT0", "FP32", x)], parameters=params)
    task = asyncio.get_running_loop().create_task(scheduler.submit(body, 1, math.inf))
    await asyncio.sleep(0)
    assert scheduler.queue.requests == 1
    expired = scheduler.queue.expire(at)
    task.cancel()
    return bool(expired)


@pytest.mark.parametrize(
    ("default_us", "allow", "timeout_us", "at", "expired"),
    [
        (100_000, True, 50_000, 0.06, True),  # a shorter timeout overrides the default
        (100_000, True, 10_000_000, 1.0, True),  # a longer one may not lengthen it
        (100_000, True, 10_000_000, 0.05, False),
        (0, True, 50_000, 1.0, False),  # no default timeout: a request sets none
        (100_000, False, 50_000, 0.06, False),  # no override allowed: the default holds
        (100_000, False, 50_000, 0.1, True),
        (100_000, True, None, 0.1, True),
    ],
)
async def test_a_request_timeout_may_only_shorten_the_level_default(
    default_us: int, allow: bool, timeout_us: int | None, at: float, expired: bool
) -> None:
    assert await expired_at(default_us, allow, timeout_us, at) is expired


async def test_a_request_whose_deadline_passed_on_the_way_in_times_out_and_is_not_overload() -> (
    None
):
    """A timeout shorter than the trip to the queue is the caller's deadline, not load: a
    deadline error without a Retry-After, counted as a timeout."""
    settings = ModelSettings.model_validate({"name": "m", "dynamic_batching": {}})
    pods = PodSet(
        model="m", addresses=[], probe_interval_s=10.0, probe_timeout_s=1.0, on_ready=print
    )
    clock = Clock(5.0)
    scheduler = Scheduler(settings=settings, pods=pods, stats=ModelStats(), clock=clock)
    body = InferRequestBody([from_numpy("INPUT0", "FP32", np.zeros((1, 4), np.float32))])
    with pytest.raises(InferError) as refused:
        await scheduler.submit(body, 1, 5.0)
    error = refused.value
    assert error.code is Code.DEADLINE_EXCEEDED and error.reason == "timeout"
    assert "timed out before it was queued" in str(error) and error.retry_after_s is None
    assert scheduler.queue.requests == 0 and scheduler.rejected_total == 1
