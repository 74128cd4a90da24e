"""The per-try timeout: from the cost model's prediction, at least its floor, never past the
deadline; a try it cuts is retried on another pod and held against the pod."""

from __future__ import annotations

import pytest

from gateway.batching.cost_model import BatchCost
from gateway.config import PerTryTimeoutSettings
from gateway.errors import Code, InferError
from gateway.routing.per_try import TryBound, judge_try, per_try_timeout, try_bound

COST = BatchCost(fixed_s=0.2, per_row_s=0.01)


def test_the_timeout_is_the_factor_times_the_predicted_wait_and_device_time() -> None:
    settings = PerTryTimeoutSettings(factor=4, min_ms=10)
    assert per_try_timeout(settings, COST, 10, 0.0) == pytest.approx(4 * 0.3)
    assert per_try_timeout(settings, COST, 10, 0.5) == pytest.approx(4 * 0.8)


def test_the_floor_holds_for_a_fast_model() -> None:
    settings = PerTryTimeoutSettings(factor=4, min_ms=1000)
    assert per_try_timeout(settings, BatchCost(0.001, 0.0), 1, 0.0) == 1.0


def test_no_per_try_timeout_while_the_cost_is_unknown_or_when_off() -> None:
    assert per_try_timeout(PerTryTimeoutSettings(), None, 1, 0.0) is None
    assert per_try_timeout(PerTryTimeoutSettings(factor=0), COST, 1, 0.0) is None


def test_the_deadline_bounds_a_try_when_it_is_sooner() -> None:
    assert try_bound(0.5, 2.0) == TryBound(0.5)
    assert try_bound(0.5, None) == TryBound(0.5)
    assert try_bound(3.0, 2.0) == TryBound(2.0, per_try=True)


def test_a_try_cut_by_its_per_try_timeout_is_retried_and_held_against_the_pod() -> None:
    cut = InferError(Code.DEADLINE_EXCEEDED, "pod p:1: Deadline Exceeded")
    error, verdict = judge_try(cut, TryBound(0.25, per_try=True), "p:1")
    assert verdict.retry and verdict.pod_fault
    assert error.message == "pod p:1 did not answer within the per-try timeout (250 ms)"


def test_a_try_cut_by_the_deadline_is_not_retried() -> None:
    cut = InferError(Code.DEADLINE_EXCEEDED, "pod p:1: Deadline Exceeded")
    error, verdict = judge_try(cut, TryBound(0.25), "p:1")
    assert error is cut and not verdict.retry and verdict.pod_fault


def test_other_failures_are_judged_as_before() -> None:
    bad = InferError(Code.INVALID_ARGUMENT, "no such input")
    error, verdict = judge_try(bad, TryBound(0.25, per_try=True), "p:1")
    assert error is bad and not verdict.retry and not verdict.pod_fault
