"""When the scheduler looks at its queue: a lone request to an idle model goes to its pod from
the caller's own task, with no dispatch step or timer in between; requests that arrive while a
batch is in flight are looked at together in the loop's next round, and can share a batch."""

from __future__ import annotations

import asyncio
import time

from gateway.batching.policy import UNBATCHED, LoadView, rows_to_keep_up
from gateway.config import DynamicBatchingSettings
from gateway.scheduler import Scheduler
from tests.fakes.scheduler import ask, fake_scheduler


class SendReasons:
    """The scheduler's metrics hooks, keeping each batch's reason to send."""

    def __init__(self) -> None:
        self.reasons: list[str] = []

    def batch_sent(self, pod: str, rows: int, requests: int, reason: str) -> None:
        self.reasons.append(reason)

    def queue_time(self, seconds: float) -> None:
        pass

    def rejected(self, reason: str) -> None:
        pass


def batching(scheduler: Scheduler) -> None:
    scheduler.max_batch_size = 8
    scheduler.update(
        scheduler.settings.model_copy(update={"dynamic_batching": DynamicBatchingSettings()})
    )


async def test_a_lone_request_to_an_idle_model_is_sent_from_its_caller_s_task() -> None:
    scheduler, pods, fakes = await fake_scheduler(1)
    caller = asyncio.create_task(ask(scheduler, 1.0))
    await asyncio.sleep(0)  # the caller runs up to its wait for the answer, and no further
    assert pods.pods[0].in_flight == 1 and scheduler.tries.active == 1  # sent already
    assert scheduler.queue.requests == 0
    assert scheduler._step is None and scheduler._timer is None  # nothing else woken
    assert (await caller == 2).all()
    assert fakes["p0:1"].calls == 1
    await scheduler.stop()


async def test_a_lone_request_is_not_held_for_a_batch_by_a_busy_arrival_rate() -> None:
    scheduler, pods, _ = await fake_scheduler(1)
    batching(scheduler)
    settings = scheduler.settings
    delay = DynamicBatchingSettings(max_queue_delay_microseconds=10_000_000)
    scheduler.update(settings.model_copy(update={"dynamic_batching": delay}))
    for _ in range(8):  # a pod of 8 ms a batch, as fitted
        scheduler.cost.observe(1, 0.008)
    now = time.monotonic()
    scheduler.arrivals.record(200, now)  # 200 rows/s: 1.6 times what lone rows can carry
    fit = scheduler.cost.fit()
    policy = scheduler.policy()
    load = LoadView(scheduler.arrivals.rate(now), fit, 1)
    assert rows_to_keep_up(policy, load) > 1  # the cost model alone would wait (10 s)
    caller = asyncio.create_task(ask(scheduler, 5.0))
    await asyncio.sleep(0)
    assert pods.pods[0].in_flight == 1  # sent at once: its pod held nothing
    assert (await caller == 10).all()
    await scheduler.stop()


async def test_no_step_and_no_timer_are_left_once_the_answers_are_in() -> None:
    scheduler, _, _ = await fake_scheduler(1)
    for i in range(5):
        assert (await ask(scheduler, float(i)) == 2 * i).all()
    await asyncio.sleep(0)  # the finished tries' rounds
    assert scheduler._step is None and scheduler._timer is None
    await scheduler.stop()


async def test_requests_arriving_while_a_batch_is_in_flight_share_the_next_batch() -> None:
    scheduler, pods, fakes = await fake_scheduler(1)
    batching(scheduler)
    fake, pod = fakes["p0:1"], pods.pods[0]
    pod.slots = 2
    fake.stall = True
    first = asyncio.create_task(ask(scheduler, 1.0, timeout_s=30))
    await asyncio.sleep(0)
    assert pod.in_flight == 1  # the first went alone, at once
    later = [asyncio.create_task(ask(scheduler, float(i), timeout_s=30)) for i in (2, 3)]
    await asyncio.sleep(0)  # both queue in this round; the step runs in the next
    assert scheduler.queue.requests == 2 and scheduler._step is not None
    await asyncio.sleep(0)
    assert pod.in_flight == 2 and scheduler.queue.requests == 0
    assert pod.outstanding_rows == 3  # the first's row, and the later two as one batch
    for task in (first, *later):
        task.cancel()
    await asyncio.gather(first, *later, return_exceptions=True)
    await scheduler.stop()


async def test_a_stopped_scheduler_takes_no_step() -> None:
    scheduler, pods, fakes = await fake_scheduler(1)
    await scheduler.stop()
    scheduler.wake()
    assert scheduler._step is None
    assert pods.pods[0].in_flight == 0 and fakes["p0:1"].calls == 0


async def test_each_batch_is_sent_with_the_batchers_reason_or_as_unbatched() -> None:
    scheduler, _, _ = await fake_scheduler(1)
    sends = scheduler._metrics = SendReasons()
    assert (await ask(scheduler, 1.0) == 2).all()  # no dynamic_batching: a request per batch
    batching(scheduler)
    assert (await ask(scheduler, 2.0) == 4).all()  # batched, max_queue_delay 0: at once
    assert sends.reasons == [UNBATCHED, "max_queue_delay"]
    await scheduler.stop()
