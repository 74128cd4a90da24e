"""The request queues: priorities, bounds, batch keys and Triton's timeout actions."""

from __future__ import annotations

import pytest

from gateway.batching.queue import BatchQueue, Pending, QueueFull
from gateway.batching.queue_policy import QueuePolicy, TimeoutAction
from gateway.batching.rate import RateEstimator

OPEN = QueuePolicy()


def req(
    name: str,
    rows: int = 1,
    *,
    key: str = "k",
    level: int = 1,
    at: float = 0.0,
    deadline: float = float("inf"),
    queue_deadline: float = float("inf"),
    action: TimeoutAction = TimeoutAction.REJECT,
) -> Pending:
    return Pending(
        rows=rows,
        key=key,
        enqueued=at,
        deadline=deadline,
        queue_deadline=queue_deadline,
        level=level,
        action=action,
        payload=name,
    )


def names(batch: list[Pending]) -> list[str]:
    return [p.payload for p in batch]


def test_higher_priority_requests_are_batched_first_fifo_within_a_level() -> None:
    q = BatchQueue(levels=2)
    for p in (req("low1", level=2), req("high1"), req("low2", level=2), req("high2")):
        q.admit(p, OPEN)
    assert names(q.peek(3)) == ["high1", "high2", "low1"]


def test_only_requests_with_the_head_key_join_its_batch() -> None:
    q = BatchQueue(levels=1)
    for p in (req("a1", key="a"), req("b1", key="b"), req("a2", key="a")):
        q.admit(p, OPEN)
    batch = q.peek(32)
    assert names(batch) == ["a1", "a2"]
    q.take(batch)
    assert names(q.peek(32)) == ["b1"]
    assert (q.requests, q.rows) == (1, 1)


def test_a_request_is_never_split_to_fill_a_batch() -> None:
    q = BatchQueue(levels=1)
    for p in (req("r6", rows=6), req("r5", rows=5), req("r2", rows=2)):
        q.admit(p, OPEN)
    assert names(q.peek(8)) == ["r6", "r2"]


def test_a_full_level_rejects_at_once() -> None:
    q = BatchQueue(levels=2)
    bounded = QueuePolicy(max_queue_size=2)
    q.admit(req("a"), bounded)
    q.admit(req("b"), bounded)
    with pytest.raises(QueueFull, match="priority level 1 queue is full"):
        q.admit(req("c"), bounded)
    q.admit(req("other level", level=2), bounded)  # each level has its own bound


def test_reject_timeout_expires_and_delay_timeout_moves_behind_everyone() -> None:
    q = BatchQueue(levels=1)
    q.admit(req("reject", queue_deadline=1.0), OPEN)
    q.admit(req("delay", queue_deadline=1.0, action=TimeoutAction.DELAY), OPEN)
    q.admit(req("fresh"), OPEN)
    assert q.next_expiry() == 1.0
    expired = q.expire(now=1.0)
    assert names(expired) == ["reject"]
    assert names(list(q)) == ["fresh", "delay"]
    assert q.level_sizes()[0] == (0, 1, 1)  # the delayed queue


def test_the_hard_deadline_expires_even_delayed_requests() -> None:
    q = BatchQueue(levels=1)
    q.admit(req("d", deadline=5.0, queue_deadline=1.0, action=TimeoutAction.DELAY), OPEN)
    assert q.expire(now=2.0) == []
    assert q.next_expiry() == 5.0
    assert names(q.expire(now=5.0)) == ["d"]
    assert q.requests == 0


def test_cancelled_requests_leave_without_being_batched() -> None:
    q = BatchQueue(levels=1)
    gone, stays = req("gone"), req("stays")
    q.admit(gone, OPEN)
    q.admit(stays, OPEN)
    q.cancel(gone)
    assert names(q.peek(32)) == ["stays"]
    assert q.expire(now=0.0) == []
    assert q.requests == 1


def test_a_batch_that_could_not_be_sent_goes_back_to_the_front() -> None:
    q = BatchQueue(levels=1)
    for p in (req("a"), req("b"), req("c")):
        q.admit(p, OPEN)
    batch = q.peek(2)
    q.take(batch)
    q.requeue(batch)
    assert names(list(q)) == ["a", "b", "c"]
    assert q.requests == 3


def test_resizing_levels_keeps_every_request() -> None:
    q = BatchQueue(levels=3)
    for level in (1, 2, 3):
        q.admit(req(f"l{level}", level=level), OPEN)
    q.resize(2)
    assert names(list(q)) == ["l1", "l2", "l3"]
    assert q.requests == 3


def test_arrival_rate_follows_the_load_and_decays() -> None:
    rate = RateEstimator(horizon_s=1.0)
    t = 0.0
    for _ in range(3000):
        t += 0.001
        rate.record(1, t)
    assert 900 < rate.rate(t) < 1010
    assert rate.rate(t + 5) < 10
