"""The scheduler's failure handling with fake pods: retry elsewhere within the budget, pass bad
input back, and never count the gateway's own rejections against a pod."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.errors import Code, InferError
from gateway.routing.retry_budget import RetryBudget
from tests.fakes.scheduler import ask, fake_scheduler


async def test_an_unavailable_pod_s_batch_goes_to_another_pod() -> None:
    scheduler, pods, fakes = await fake_scheduler(2)
    fakes["p0:1"].error = Code.UNAVAILABLE
    answers = await asyncio.gather(*(ask(scheduler, float(i)) for i in range(6)))
    for i, a in enumerate(answers):
        assert (a == 2 * i).all()
    assert [p.address for p in pods.ready_pods()] == ["p1:1"]
    await scheduler.stop()


async def test_bad_input_is_passed_back_not_retried_and_not_held_against_the_pod() -> None:
    scheduler, pods, fakes = await fake_scheduler(2)
    for f in fakes.values():
        f.error = Code.INVALID_ARGUMENT
    for _ in range(4):
        with pytest.raises(InferError) as info:
            await ask(scheduler, 1.0)
        assert info.value.code is Code.INVALID_ARGUMENT
    assert sum(f.calls for f in fakes.values()) == 4
    assert len(pods.ready_pods()) == 2 and pods.outliers.ejected(time.monotonic()) == 0
    await scheduler.stop()


async def test_internal_errors_eject_the_pod_after_the_streak() -> None:
    scheduler, pods, fakes = await fake_scheduler(3)
    fakes["p0:1"].error = Code.INTERNAL
    results = await asyncio.gather(
        *(ask(scheduler, 1.0) for _ in range(30)), return_exceptions=True
    )
    failed = [r for r in results if isinstance(r, InferError)]
    assert all(r.code is Code.INTERNAL for r in failed)
    assert 1 <= len(failed) <= 2  # passed back, never retried, until ejected after 2
    assert "p0:1" not in {p.address for p in pods.ready_pods()}
    await scheduler.stop()


async def test_when_the_retry_budget_is_spent_the_error_is_explicit() -> None:
    scheduler, pods, fakes = await fake_scheduler(2, RetryBudget(percent=0.0, floor=0))
    fakes["p0:1"].error = Code.RESOURCE_EXHAUSTED  # retryable; does not mark the pod down
    fakes["p1:1"].error = Code.RESOURCE_EXHAUSTED
    with pytest.raises(InferError) as info:
        await ask(scheduler, 1.0)
    assert info.value.code is Code.UNAVAILABLE and "retry budget" in info.value.message
    assert pods.retry_budget.refused == 1
    await scheduler.stop()


async def test_requests_that_expire_in_the_gateway_queue_never_count_against_a_pod() -> None:
    scheduler, pods, fakes = await fake_scheduler(1)
    pod = pods.pods[0]
    pod.in_flight = pod.slots  # busy: nothing can be sent
    results = await asyncio.gather(
        *(ask(scheduler, 1.0, timeout_s=0.05) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, InferError) for r in results)
    assert fakes["p0:1"].calls == 0
    pod.in_flight = 0
    assert pods.outliers.ejection_count("p0:1") == 0 and pods.ready_pods() == (pod,)
    await scheduler.stop()
