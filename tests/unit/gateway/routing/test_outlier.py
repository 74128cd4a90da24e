"""Outlier detection (Envoy's consecutive failures), the retry budget and the call policy."""

from __future__ import annotations

from gateway.errors import Code
from gateway.routing.call_policy import call_timeout, judge
from gateway.routing.outlier import OutlierDetector, OutlierPolicy
from gateway.routing.retry_budget import RetryBudget

POLICY = OutlierPolicy(consecutive_failures=3, base_ejection_s=10.0, max_ejection_s=25.0)


def fail(d: OutlierDetector, host: str, now: float, times: int, hosts: int = 10) -> bool:
    return any([d.failure(host, now, hosts) for _ in range(times)])


def test_a_pod_is_ejected_after_n_consecutive_failures_only() -> None:
    d = OutlierDetector(POLICY)
    assert not fail(d, "a", 0.0, 2)
    d.success("a", 0.0)  # the streak is broken
    assert not fail(d, "a", 0.0, 2)
    assert d.failure("a", 0.0, 10)
    assert d.is_ejected("a", 9.9) and not d.is_ejected("a", 10.0)


def test_it_comes_back_on_trial_and_one_failure_ejects_it_for_longer() -> None:
    d = OutlierDetector(POLICY)
    fail(d, "a", 0.0, 3)
    assert d.on_trial("a", 10.0)
    assert d.failure("a", 10.0, 10)  # on trial: at once
    assert d.is_ejected("a", 29.9) and not d.is_ejected("a", 30.0)  # twice the base
    d.failure("a", 30.0, 10)
    assert d.is_ejected("a", 54.9) and not d.is_ejected("a", 55.0)  # capped at 25 s


def test_a_success_on_trial_restores_it_and_the_count_decays() -> None:
    d = OutlierDetector(POLICY)
    fail(d, "a", 0.0, 3)
    d.success("a", 10.0)
    assert not d.on_trial("a", 10.0) and not d.is_ejected("a", 10.0)
    assert d.ejection_count("a") == 1
    d.success("a", 30.0)  # two intervals later
    assert d.ejection_count("a") == 0


def test_at_most_the_percentage_is_ejected_but_at_least_one() -> None:
    d = OutlierDetector(OutlierPolicy(consecutive_failures=1, max_ejected_percent=10.0))
    assert d.failure("a", 0.0, 3)  # 10 % of 3 is 0: one may still go
    assert not d.failure("b", 0.0, 3)
    assert d.ejected(0.0) == 1
    d2 = OutlierDetector(OutlierPolicy(consecutive_failures=1, max_ejected_percent=50.0))
    assert d2.failure("a", 0.0, 4) and d2.failure("b", 0.0, 4) and not d2.failure("c", 0.0, 4)


def test_next_return_says_when_an_ejected_pod_comes_back() -> None:
    d = OutlierDetector(POLICY)
    assert d.next_return() == float("inf")
    fail(d, "a", 5.0, 3)
    assert d.next_return() == 15.0


def test_the_retry_budget_allows_a_percentage_of_active_with_a_floor() -> None:
    b = RetryBudget(percent=20.0, floor=3)
    assert b.limit(0) == 3 and b.limit(100) == 20
    done = [False]
    assert all(b.try_start(0, lambda: done[0]) for _ in range(3))
    assert not b.try_start(0, lambda: False)
    done[0] = True  # those retries ended: the budget is back
    assert b.try_start(0, lambda: False)
    assert (b.granted, b.refused) == (4, 1)


def test_only_failures_before_the_pod_took_the_batch_are_retried() -> None:
    assert judge(Code.UNAVAILABLE, timeout_s=1.0).retry
    assert judge(Code.RESOURCE_EXHAUSTED, timeout_s=1.0).retry
    for code in (Code.INVALID_ARGUMENT, Code.INTERNAL, Code.DEADLINE_EXCEEDED, Code.NOT_FOUND):
        assert not judge(code, timeout_s=1.0).retry


def test_bad_input_and_a_full_pod_do_not_count_against_the_pod() -> None:
    assert not judge(Code.INVALID_ARGUMENT, timeout_s=1.0).pod_fault
    assert not judge(Code.RESOURCE_EXHAUSTED, timeout_s=1.0).pod_fault
    assert judge(Code.UNAVAILABLE, timeout_s=1.0).pod_fault
    assert judge(Code.INTERNAL, timeout_s=1.0).pod_fault
    assert judge(Code.DEADLINE_EXCEEDED, timeout_s=1.0).pod_fault
    assert not judge(Code.DEADLINE_EXCEEDED, timeout_s=0.01).pod_fault  # no fair chance


def test_the_call_timeout_ends_just_before_the_earliest_deadline() -> None:
    assert 0.99 < call_timeout(11.0, 10.0) < 1.0
    assert call_timeout(10.0, 10.5) == 0.001
