"""What becomes of a batch whose try failed: requeued within the retry budget, or answered
with an error that still says how the try failed (the forwarder serves a lost one locally)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from gateway.batching.queue import BatchQueue, Pending
from gateway.errors import Code, InferError
from gateway.routing.per_try import TryBound
from gateway.routing.retry import settle_failed_try
from gateway.routing.retry_budget import RetryBudget
from tests.fakes.clock import Clock
from tests.unit.gateway.routing.test_pod_set import podset


async def _settled(budget: RetryBudget) -> tuple[BatchQueue, list[Pending]]:
    pods = podset(Clock(), ["a:1"], retry_budget=budget)
    await pods.probe(pods.pods[0])
    loop = asyncio.get_running_loop()
    batch = [
        Pending(
            rows=1,
            key=i,
            enqueued=0.0,
            payload=SimpleNamespace(future=loop.create_future(), info=None),
        )
        for i in range(2)
    ]
    queue = BatchQueue(1)
    lost = InferError(Code.UNAVAILABLE, "pod a:1: connection reset", lost=True)
    settle_failed_try(pods, queue, pods.pods[0], batch, lost, TryBound(1.0))
    return queue, batch


async def test_a_lost_try_within_the_budget_is_queued_again_at_the_front() -> None:
    queue, batch = await _settled(RetryBudget(floor=1))
    assert queue.requests == 2 and not any(p.payload.future.done() for p in batch)


async def test_a_lost_try_past_the_budget_answers_unavailable_and_says_it_was_lost() -> None:
    queue, batch = await _settled(RetryBudget(percent=0, floor=0))
    assert queue.requests == 0
    for p in batch:
        error = p.payload.future.exception()
        assert isinstance(error, InferError) and error.code is Code.UNAVAILABLE
        assert error.lost and "retry budget" in error.message
