"""The gateway-wide budget of request bytes: leases, growth, refusal past the limit."""

from __future__ import annotations

from gateway.memory_budget import MemoryBudget


def test_leases_share_the_budget_and_are_refused_past_it() -> None:
    budget = MemoryBudget(100)
    a = budget.try_acquire(60)
    assert a is not None and budget.in_use == 60
    assert budget.try_acquire(50) is None and budget.refused == 1
    b = budget.try_acquire(40)
    assert b is not None and budget.in_use == 100 == budget.peak
    a.release()
    a.release()  # once only
    assert budget.in_use == 40
    assert budget.try_acquire(60) is not None


def test_a_chunked_body_grows_its_lease_until_the_budget_says_no() -> None:
    budget = MemoryBudget(10)
    lease = budget.try_acquire(0)
    assert lease is not None
    assert lease.grow(6) and lease.grow(4)
    assert not lease.grow(1) and lease.bytes == 10
    lease.release()
    assert budget.in_use == 0
    assert not lease.grow(1)  # released: holds nothing more


def test_zero_is_no_limit() -> None:
    budget = MemoryBudget(0)
    assert budget.try_acquire(10**12) is not None and budget.refused == 0
