"""Tenants share a priority level by weight: fair queuing in the batching core, fake times."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import pytest

from gateway.batching.queue import BatchQueue, Pending, QueueFull
from gateway.batching.queue_policy import QueuePolicy, TimeoutAction

OPEN = QueuePolicy()
INF = float("inf")


def req(
    name: str,
    rows: int = 1,
    *,
    tenant: str = "",
    weight: float = 1.0,
    key: str = "k",
    level: int = 1,
    deadline: float = INF,
    queue_deadline: float = INF,
    action: TimeoutAction = TimeoutAction.REJECT,
) -> Pending:
    return Pending(
        rows=rows,
        key=key,
        enqueued=0.0,
        deadline=deadline,
        queue_deadline=queue_deadline,
        level=level,
        action=action,
        payload=name,
        tenant=tenant,
        weight=weight,
    )


def names(batch: list[Pending]) -> list[str]:
    return [p.payload for p in batch]


def dispatch(q: BatchQueue, max_rows: int) -> list[Pending]:
    """One dispatch: the batch peek() forms, taken."""
    batch = q.peek(max_rows)
    q.take(batch)
    return batch


def flood(q: BatchQueue, tenant: str, n: int, weight: float = 1.0, **kw: object) -> None:
    for i in range(n):
        q.admit(req(f"{tenant}{i}", tenant=tenant, weight=weight, **kw), OPEN)  # type: ignore[arg-type]


def serve_backlogged(q: BatchQueue, batches: int, max_rows: int, refill: set[str]) -> Counter[str]:
    """Dispatch ``batches`` batches; every request served of a tenant in ``refill`` is
    replaced by a like one, so that tenant stays backlogged. Rows served per tenant."""
    served: Counter[str] = Counter()
    for _ in range(batches):
        for p in dispatch(q, max_rows):
            served[p.tenant] += p.rows
            if p.tenant in refill:
                q.admit(req("again", p.rows, tenant=p.tenant, weight=p.weight), OPEN)
    return served


# -- one tenant: exactly today's FIFO ------------------------------------------------------


@dataclass(eq=False)
class Ref:
    """A request in the reference FIFO."""

    name: str
    rows: int
    key: str
    level: int
    deadline: float
    queue_deadline: float
    action: TimeoutAction
    cancelled: bool = False
    delayed: bool = False


class Fifo:
    """The single-tenant queue as it was: a list per level, then the delayed list."""

    def __init__(self, levels: int) -> None:
        self.levels: list[list[Ref]] = [[] for _ in range(levels)]
        self.delayed: list[Ref] = []

    def queues(self) -> list[list[Ref]]:
        return [*self.levels, self.delayed]

    def order(self) -> list[str]:
        return [r.name for q in self.queues() for r in q if not r.cancelled]

    def peek(self, max_rows: int) -> list[str]:
        live = [r for q in self.queues() for r in q if not r.cancelled]
        batch: list[Ref] = []
        rows = 0
        for r in live:
            if r is live[0] or (r.key == live[0].key and rows + r.rows <= max_rows):
                batch.append(r)
                rows += r.rows
                if rows == max_rows:
                    break
        return [r.name for r in batch]

    def take(self, chosen: list[str]) -> list[Ref]:
        taken = [r for q in self.queues() for r in q if r.name in chosen]
        for q in self.queues():
            q[:] = [r for r in q if r.name not in chosen]
        return sorted(taken, key=lambda r: chosen.index(r.name))

    def requeue(self, batch: list[Ref]) -> None:
        for r in reversed(batch):
            if not r.cancelled:
                (self.delayed if r.delayed else self.levels[r.level - 1]).insert(0, r)

    def expire(self, now: float) -> list[str]:
        out: list[str] = []
        for q in self.queues():
            keep: list[Ref] = []
            for r in q:
                if r.cancelled:
                    continue
                if now >= r.deadline or (
                    now >= r.queue_deadline and r.action is TimeoutAction.REJECT
                ):
                    out.append(r.name)
                elif now >= r.queue_deadline and not r.delayed:
                    r.delayed = True
                    self.delayed.append(r)
                else:
                    keep.append(r)
            q[:] = keep
        return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_one_tenant_is_served_exactly_as_the_fifo_was(seed: int) -> None:
    rng = random.Random(seed)
    q, ref = BatchQueue(levels=2), Fifo(levels=2)
    policy = QueuePolicy(max_queue_size=rng.choice([0, 6]))
    live: dict[str, Pending] = {}
    refs: dict[str, Ref] = {}
    now, last_taken = 0.0, ""
    for step in range(3000):
        op = rng.random()
        if op < 0.4:
            name = f"r{step}"
            r = Ref(
                name,
                rng.randint(1, 4),
                rng.choice("ab"),
                rng.randint(1, 2),
                rng.choice([INF, now + rng.uniform(0.5, 5)]),
                rng.choice([INF, now + rng.uniform(0.2, 3)]),
                rng.choice(list(TimeoutAction)),
            )
            p = req(name, r.rows, key=r.key, level=r.level, deadline=r.deadline)
            p.queue_deadline, p.action = r.queue_deadline, r.action
            if policy.max_queue_size and len(ref.levels[r.level - 1]) >= policy.max_queue_size:
                with pytest.raises(QueueFull):
                    q.admit(p, policy)
                continue
            assert q.admit(p, policy) is None
            ref.levels[r.level - 1].append(r)
            live[name], refs[name] = p, r
        elif op < 0.7:
            max_rows = rng.randint(1, 8)
            batch = q.peek(max_rows)
            assert names(batch) == ref.peek(max_rows)
            q.take(batch)
            last_taken = ",".join(names(batch))
            ref.take(names(batch))
        elif op < 0.8 and last_taken:
            chosen = last_taken.split(",")
            q.requeue([live[n] for n in chosen])
            ref.requeue([refs[n] for n in chosen])
            last_taken = ""
        elif op < 0.9 and list(q):
            victim = rng.choice(list(q))
            q.cancel(victim)
            refs[victim.payload].cancelled = True
        else:
            now += rng.uniform(0.0, 0.5)
            assert names(q.expire(now)) == ref.expire(now)
        assert names(list(q)) == ref.order()
        held = [r for queue in ref.queues() for r in queue]
        assert (q.requests, q.rows) == (len(held), sum(r.rows for r in held))
        assert q.rows_ahead("", 1.0, 1, level=2) == q.rows  # what the wait estimate counted
        assert q.level_sizes()[1:] == [
            (i + 1, len(level), sum(r.rows for r in level)) for i, level in enumerate(ref.levels)
        ]


# -- two or more tenants --------------------------------------------------------------------


def test_a_light_tenant_arriving_behind_a_flood_is_in_the_next_batch() -> None:
    q = BatchQueue(levels=1)
    flood(q, "a", 100)
    dispatch(q, 8)
    q.admit(req("b0", tenant="b"), OPEN)
    assert names(dispatch(q, 8))[0] == "b0"
    assert q.head() is not None and q.head().tenant == "a"  # type: ignore[union-attr]


def test_a_light_tenant_arriving_with_the_flood_is_in_the_first_batch() -> None:
    q = BatchQueue(levels=1)
    flood(q, "a", 100)
    q.admit(req("b0", tenant="b"), OPEN)
    assert names(q.peek(2)) == ["a0", "b0"]  # equal tags: the earlier admission first


@pytest.mark.parametrize(("wa", "wb"), [(1.0, 1.0), (3.0, 1.0), (1.0, 2.0)])
def test_backlogged_tenants_are_served_rows_in_the_ratio_of_their_weights(
    wa: float, wb: float
) -> None:
    rng = random.Random(5)
    q = BatchQueue(levels=1)
    for i in range(40):
        q.admit(req(f"a{i}", rng.randint(1, 4), tenant="a", weight=wa), OPEN)
        q.admit(req(f"b{i}", rng.randint(1, 4), tenant="b", weight=wb), OPEN)
    served = serve_backlogged(q, 300, 8, refill={"a", "b"})
    assert served["a"] / served["b"] == pytest.approx(wa / wb, rel=0.05)


def test_a_tenant_idle_for_a_while_gets_no_burst_of_banked_credit() -> None:
    q = BatchQueue(levels=1)
    flood(q, "a", 40)
    flood(q, "b", 40)
    serve_backlogged(q, 20, 8, refill={"a"})  # both served, b drains
    serve_backlogged(q, 200, 8, refill={"a"})  # a alone for a long while
    assert "b" not in q.tenant_rows()
    flood(q, "b", 40)  # b comes back
    served = serve_backlogged(q, 10, 8, refill={"a", "b"})
    assert 0.4 <= served["b"] / (served["a"] + served["b"]) <= 0.6


def test_a_tenant_sending_each_request_as_the_last_is_taken_gets_only_its_share() -> None:
    q = BatchQueue(levels=1)
    flood(q, "b", 50)
    served: Counter[str] = Counter()
    for i in range(200):
        if "a" not in q.tenant_rows():
            q.admit(req(f"a{i}", tenant="a"), OPEN)
        for p in dispatch(q, 1):
            served[p.tenant] += 1
            if p.tenant == "b":
                q.admit(req("again", tenant="b"), OPEN)
    assert served["a"] == pytest.approx(served["b"], abs=2)


def test_a_tenant_whose_flood_expired_is_not_held_behind_it() -> None:
    q = BatchQueue(levels=1)
    flood(q, "a", 100, queue_deadline=1.0)  # the pods are down: none served
    flood(q, "b", 20)
    assert len(q.expire(now=1.0)) == 100
    q.admit(req("a-again", tenant="a"), OPEN)
    assert "a-again" in names(dispatch(q, 1) + dispatch(q, 1))


def test_batches_mix_tenants_whose_requests_share_a_key() -> None:
    q = BatchQueue(levels=1)
    flood(q, "a", 4)
    flood(q, "b", 4)
    assert names(q.peek(4)) == ["a0", "b0", "a1", "b1"]
    q = BatchQueue(levels=1)
    flood(q, "a", 4, key="x")
    flood(q, "b", 4, key="y")
    assert names(q.peek(4)) == ["a0", "a1", "a2", "a3"]  # the head's key only


def test_a_failed_batch_goes_back_to_the_front_of_its_tenants_lanes() -> None:
    q = BatchQueue(levels=1)
    flood(q, "a", 5)
    flood(q, "b", 5)
    before = names(list(q))
    batch = dispatch(q, 4)
    flood(q, "c", 3)  # arrives while the batch is out
    q.requeue(batch)
    assert names(q.peek(4)) == names(batch)
    assert names(list(q))[:8] == [*before[:4], "c0", "a2", "b2", "c1"]
    assert (q.requests, q.rows) == (13, 13)


def test_a_full_level_makes_room_for_a_tenant_below_its_share() -> None:
    q = BatchQueue(levels=1)
    bounded = QueuePolicy(max_queue_size=4)
    for i in range(4):
        q.admit(req(f"a{i}", tenant="a"), bounded)
    with pytest.raises(QueueFull):
        q.admit(req("a4", tenant="a"), bounded)  # a tenant at its share: full as before
    evicted = q.admit(req("b0", tenant="b"), bounded)
    assert evicted is not None and evicted.payload == "a3"  # the heavy one's newest
    assert evicted.done
    evicted = q.admit(req("b1", tenant="b"), bounded)
    assert evicted is not None and evicted.payload == "a2"
    with pytest.raises(QueueFull):
        q.admit(req("b2", tenant="b"), bounded)  # b now holds its share, 2 of 4
    assert names(list(q)) == ["a0", "b0", "a1", "b1"]
    assert (q.requests, q.rows, q.level_sizes()[1]) == (4, 4, (1, 4, 4))


def test_the_share_of_a_full_level_follows_the_weights() -> None:
    q = BatchQueue(levels=1)
    bounded = QueuePolicy(max_queue_size=8)
    for i in range(8):
        q.admit(req(f"a{i}", tenant="a"), bounded)
    for i in range(6):  # weight 3 of 4: a share of 6
        assert q.admit(req(f"b{i}", tenant="b", weight=3.0), bounded) is not None
    with pytest.raises(QueueFull):
        q.admit(req("b6", tenant="b", weight=3.0), bounded)
    assert q.tenant_rows() == {"a": 2, "b": 6}


def test_an_evicted_request_whose_caller_left_needs_no_answer() -> None:
    q = BatchQueue(levels=1)
    bounded = QueuePolicy(max_queue_size=2)
    a0, a1 = req("a0", tenant="a"), req("a1", tenant="a")
    q.admit(a0, bounded)
    q.admit(a1, bounded)
    q.cancel(a1)
    assert q.admit(req("b0", tenant="b"), bounded) is None
    assert names(list(q)) == ["a0", "b0"]
    assert q.requests == 2


def test_the_rows_ahead_of_a_light_tenant_are_few_and_of_a_flooding_one_many() -> None:
    q = BatchQueue(levels=2)
    flood(q, "a", 100)
    q.admit(req("high", 3, tenant="b", level=1), OPEN)
    q.admit(req("low", 5, tenant="b", level=2), OPEN)  # below level 1: never ahead of it
    assert q.rows_ahead("a", 1.0, 1, level=1) == 103
    assert q.rows_ahead("b", 1.0, 1, level=1) == 3 + 4  # its own, and a's up to its tag
    assert q.rows_ahead("c", 1.0, 1, level=1) <= 2
    assert q.rows_ahead("c", 1.0, 1, level=2) == 103 + 1  # level 1, and b's by their tags
    for _ in range(5):
        dispatch(q, 8)
    assert q.rows_ahead("c", 1.0, 1, level=1) <= 2  # the virtual time moved on with a's


def test_tenant_rows_count_every_level_and_the_delayed_queue() -> None:
    q = BatchQueue(levels=2)
    flood(q, "a", 3, rows=2)
    q.admit(req("b0", 4, tenant="b", level=2), OPEN)
    late = req("late", 5, tenant="b", queue_deadline=1.0, action=TimeoutAction.DELAY)
    q.admit(late, OPEN)
    assert q.expire(now=1.0) == []
    assert q.tenant_rows() == {"a": 6, "b": 9}
    assert names(list(q))[-1] == "late"  # delayed: behind every tenant of every level


def test_resizing_levels_keeps_every_tenants_requests() -> None:
    q = BatchQueue(levels=3)
    flood(q, "a", 3, level=3)
    flood(q, "b", 2, level=2)
    q.resize(2)
    assert sorted(names(list(q))) == ["a0", "a1", "a2", "b0", "b1"]
    assert (q.requests, q.level_sizes()[1:]) == (5, [(1, 0, 0), (2, 5, 5)])
    assert len(dispatch(q, 8)) == 5
