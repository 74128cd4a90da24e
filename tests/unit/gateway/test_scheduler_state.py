"""What the scheduler tells the reporter, the metrics and ModelStatistics: its state snapshot,
its rejections, and each answered request's time in the queue. Fake pods."""

from __future__ import annotations

import time

import pytest

from gateway.discovery.endpoints import Endpoint
from gateway.errors import Code, InferError
from tests.fakes.scheduler import ask, fake_scheduler


async def test_the_state_shows_pods_counters_and_an_empty_queue_after_answers() -> None:
    scheduler, _, fakes = await fake_scheduler(2)
    for i in range(4):
        await ask(scheduler, float(i))
    state = scheduler.state(time.monotonic())
    assert (state.queued_requests, state.queued_rows, state.inflight_rows) == (0, 0, 0)
    assert state.completed_rows_total == 4 and state.rejected_requests_total == 0
    assert sorted(p.address for p in state.ready_pods) == sorted(fakes)
    assert all(p.slots == 1 and p.in_flight == 0 for p in state.pods)
    assert state.arrival_rows_per_s > 0
    assert [lvl for lvl, _, _ in state.levels] == [0, 1]
    await scheduler.stop()


async def test_the_state_shows_each_pods_devices_and_whether_it_is_terminating() -> None:
    scheduler, pods, _ = await fake_scheduler(2)
    first, second = pods.pods
    first.timeline.devices = 3
    second.endpoint = Endpoint(second.address, ready=False, serving=True, terminating=True)
    state = scheduler.state(time.monotonic())
    views = {p.address: p for p in state.pods}
    assert (views[first.address].devices, views[first.address].terminating) == (3, False)
    assert views[second.address].terminating and not views[second.address].ready
    assert state.terminating_pods == (views[second.address],) and state.starting_pods == ()
    await scheduler.stop()


async def test_every_answered_request_records_its_queue_time() -> None:
    scheduler, _, fakes = await fake_scheduler(1)
    for i in range(3):
        await ask(scheduler, float(i))
    fakes["p0:1"].error = Code.INVALID_ARGUMENT  # a failed request records no queue time
    with pytest.raises(InferError):
        await ask(scheduler, 9.0)
    assert scheduler.stats.queue.count == 3
    assert scheduler.stats.queue.ns > 0
    await scheduler.stop()
