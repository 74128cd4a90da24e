"""Pod faults the scheduler survives, with fake pods: a stalled try cut by its per-try timeout
and retried elsewhere, a batch whose callers all left cancelled on the pod, and answers of the
wrong size or shape, or that do not parse, failed with an error naming the pod."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from gateway.backends.batch_call import answer_of
from gateway.backends.pod_client import PodClient
from gateway.config import DynamicBatchingSettings, PerTryTimeoutSettings
from gateway.errors import Code, InferError
from gateway.routing.outlier import OutlierDetector, OutlierPolicy
from gateway.scheduler import Scheduler
from protos import grpc_service_pb2 as pb
from tests.fakes.scheduler import ask, fake_scheduler

BOUND_S = 5.0  # an upper bound to fail on, never a measured time


async def until(check: Callable[[], bool], what: str) -> None:
    end = time.monotonic() + BOUND_S
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"not within {BOUND_S} s: {what}")
        await asyncio.sleep(0.005)


def configure(scheduler: Scheduler, **update: Any) -> None:
    scheduler.update(scheduler.settings.model_copy(update=update))


def batching(scheduler: Scheduler, max_batch_size: int = 8) -> None:
    """The model batches: requests queued together go as one batch."""
    scheduler.max_batch_size = max_batch_size
    configure(scheduler, dynamic_batching=DynamicBatchingSettings())


async def warm_up(scheduler: Scheduler) -> None:
    """Enough answered batches for the cost model to have a fit."""
    for i in range(8):
        await ask(scheduler, float(i))
    assert scheduler.cost.fit() is not None


# -- per-try timeout ------------------------------------------------------------------------


async def test_a_stalled_pod_s_batch_is_cut_by_its_per_try_timeout_and_answered_elsewhere() -> None:
    scheduler, pods, fakes = await fake_scheduler(2)
    pods.outliers = OutlierDetector(OutlierPolicy(consecutive_failures=1))
    configure(scheduler, per_try_timeout=PerTryTimeoutSettings(factor=5, min_ms=50))
    await warm_up(scheduler)
    fakes["p0:1"].stall = True
    calls = fakes["p0:1"].calls
    answers = await asyncio.gather(*(ask(scheduler, float(i), timeout_s=30) for i in range(8)))
    for i, a in enumerate(answers):
        assert (a == 2 * i).all()
    assert fakes["p0:1"].calls > calls  # it had a batch, and held it
    assert [p.address for p in pods.ready_pods()] == ["p1:1"]  # ejected as an outlier
    await scheduler.stop()


async def test_without_a_cost_fit_only_the_deadline_bounds_a_try() -> None:
    scheduler, _, fakes = await fake_scheduler(1)
    configure(scheduler, per_try_timeout=PerTryTimeoutSettings(factor=5, min_ms=1))
    fakes["p0:1"].stall = True
    with pytest.raises(InferError) as info:
        await ask(scheduler, 1.0, timeout_s=0.3)
    assert info.value.code is Code.DEADLINE_EXCEEDED
    assert "per-try" not in info.value.message
    assert fakes["p0:1"].calls == 1  # one try, to the deadline
    await scheduler.stop()


async def test_a_per_try_timeout_with_the_retry_budget_spent_is_an_explicit_error() -> None:
    scheduler, pods, fakes = await fake_scheduler(1)
    configure(scheduler, per_try_timeout=PerTryTimeoutSettings(factor=5, min_ms=50))
    await warm_up(scheduler)
    pods.retry_budget.floor = 0
    pods.retry_budget.percent = 0.0
    fakes["p0:1"].stall = True
    with pytest.raises(InferError) as info:
        await ask(scheduler, 1.0, timeout_s=30)
    assert info.value.code is Code.UNAVAILABLE
    assert "p0:1 did not answer within the per-try timeout" in info.value.message
    assert "retry budget" in info.value.message
    await scheduler.stop()


# -- callers who leave ----------------------------------------------------------------------


async def test_a_batch_whose_caller_left_is_cancelled_on_the_pod_and_its_slot_freed() -> None:
    scheduler, pods, fakes = await fake_scheduler(1)
    fake, pod = fakes["p0:1"], pods.pods[0]
    fake.stall = True
    caller = asyncio.create_task(ask(scheduler, 1.0, timeout_s=30))
    await until(lambda: fake.holding == 1, "the batch on the pod")
    caller.cancel()
    await until(lambda: fake.cancelled == 1, "the pod's call cancelled")
    await until(lambda: pod.in_flight == 0 and pod.outstanding_rows == 0, "the slot freed")
    fake.stall = False
    assert (await ask(scheduler, 3.0) == 6).all()  # the pod serves the next batch
    await scheduler.stop()


async def test_a_batch_is_cancelled_only_when_every_caller_has_left() -> None:
    scheduler, pods, fakes = await fake_scheduler(1)
    batching(scheduler)
    fake, pod = fakes["p0:1"], pods.pods[0]
    fake.stall = True
    pod.in_flight = pod.slots  # busy: the two requests queue, then go as one batch
    callers = [asyncio.create_task(ask(scheduler, 1.0, timeout_s=30)) for _ in range(2)]
    await until(lambda: scheduler.queue.requests == 2, "both queued")
    pod.in_flight = 0
    scheduler.wake()
    await until(lambda: fake.holding == 1, "one batch of both on the pod")
    callers[0].cancel()
    await asyncio.sleep(0.02)
    assert fake.cancelled == 0 and fake.holding == 1  # one caller still waits for it
    callers[1].cancel()
    await until(lambda: fake.cancelled == 1 and pod.in_flight == 0, "cancelled, slot freed")
    assert fake.calls == 1
    await scheduler.stop()


async def test_a_batch_whose_callers_left_before_it_went_is_never_sent() -> None:
    scheduler, pods, fakes = await fake_scheduler(1)
    timeline = pods.pods[0].timeline
    sent = timeline.sent

    def caller_leaves(rows: int, now: float) -> Any:  # as the batch is sent, its call not begun
        caller.cancel()
        return sent(rows, now)

    timeline.sent = caller_leaves  # type: ignore[method-assign]
    caller = asyncio.create_task(ask(scheduler, 1.0))
    with pytest.raises(asyncio.CancelledError):
        await caller
    await until(lambda: pods.pods[0].in_flight == 0, "the slot freed")
    assert fakes["p0:1"].calls == 0 and len(timeline) == 0
    await scheduler.stop()


# -- bad answers ----------------------------------------------------------------------------


def one_row_short(reply: Any) -> Any:
    out = reply.outputs[0]
    rows, rest = out.shape[0], list(out.shape[1:])
    del out.shape[:]
    out.shape.extend([rows - 1, *rest])
    size = len(reply.raw_output_contents[0])
    reply.raw_output_contents[0] = reply.raw_output_contents[0][: size - size // rows]
    return reply


def truncated(reply: Any) -> Any:
    reply.raw_output_contents[0] = reply.raw_output_contents[0][:-1]
    return reply


def no_outputs(reply: Any) -> Any:
    return pb.ModelInferResponse(model_name=reply.model_name, id=reply.id)


BAD_ANSWERS: list[tuple[Callable[[Any], Any], str]] = [
    (one_row_short, "has shape [1, 4], the batch has 2 rows"),
    (truncated, "raw data is 31 bytes"),
    (no_outputs, "the answer has outputs []"),
    (lambda reply: None, "does not parse as a ModelInferResponse"),
]


@pytest.mark.parametrize(("corrupt", "what"), BAD_ANSWERS)
async def test_a_bad_answer_fails_its_callers_naming_the_pod_and_the_scheduler_serves_on(
    corrupt: Callable[[Any], Any], what: str
) -> None:
    scheduler, pods, fakes = await fake_scheduler(1)
    batching(scheduler)
    fake, pod = fakes["p0:1"], pods.pods[0]
    fake.answer = corrupt
    pod.in_flight = pod.slots  # busy: the two requests go as one batch of 2 rows
    callers = [asyncio.create_task(ask(scheduler, float(i))) for i in range(2)]
    await until(lambda: scheduler.queue.requests == 2, "both queued")
    pod.in_flight = 0
    scheduler.wake()
    results = await asyncio.gather(*callers, return_exceptions=True)
    for r in results:
        assert isinstance(r, InferError) and r.code is Code.INTERNAL, r
        assert r.message.startswith("pod p0:1 sent a bad response: ") and what in r.message
    fake.answer = None
    assert (await ask(scheduler, 2.0) == 4).all()  # still serving
    assert pod.in_flight == 0
    await scheduler.stop()


async def test_a_lone_request_answered_with_the_wrong_rows_fails() -> None:
    scheduler, _, fakes = await fake_scheduler(1)
    scheduler.max_batch_size = 8  # dim 0 is the batch
    fakes["p0:1"].answer = one_row_short
    with pytest.raises(InferError) as info:
        await ask(scheduler, 1.0)
    assert info.value.code is Code.INTERNAL
    assert "output 'OUTPUT0' has shape [0, 4], the batch has 1 rows" in info.value.message
    await scheduler.stop()


async def test_a_fault_of_the_gateway_s_own_is_answered_not_left_waiting() -> None:
    scheduler, _, fakes = await fake_scheduler(1)

    def broken(reply: Any) -> Any:
        raise RuntimeError("a bug")

    fakes["p0:1"].answer = broken
    with pytest.raises(InferError) as info:
        await asyncio.wait_for(ask(scheduler, 1.0), BOUND_S)
    assert info.value.code is Code.INTERNAL and "a bug" in info.value.message
    await scheduler.stop()


async def test_an_answer_that_does_not_parse_over_grpc_is_internal_naming_the_pod() -> None:
    async def garbage(request: bytes, context: object) -> bytes:
        return b"\xff\xff\xff\xff not a ModelInferResponse"

    handler = grpc.method_handlers_generic_handler(
        "inference.GRPCInferenceService",
        {"ModelInfer": grpc.unary_unary_rpc_method_handler(garbage)},
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    client = PodClient(address=f"127.0.0.1:{port}", model="m")
    try:
        reply = await client.infer(pb.ModelInferRequest(model_name="m"), BOUND_S, BOUND_S)
        with pytest.raises(InferError) as info:
            answer_of(reply, [1], True, None, client.address)
        assert info.value.code is Code.INTERNAL
        assert f"pod {client.address} sent a bad response" in info.value.message
    finally:
        await client.close()
        await server.stop(0)
