"""Triton's queue policy rules, pure: priority levels and the queue-timeout override."""

from __future__ import annotations

import math

import pytest

from gateway.batching.queue_policy import (
    BadParameter,
    LevelPolicies,
    QueuePolicy,
    TimeoutAction,
    priority_level,
)
from gateway.config import DynamicBatchingSettings


def test_an_override_applies_only_between_zero_and_the_default() -> None:
    p = QueuePolicy(default_timeout_s=0.1, allow_timeout_override=True)
    assert p.queue_timeout_s(50_000) == pytest.approx(0.05)
    assert p.queue_timeout_s(200_000) == pytest.approx(0.1)
    assert p.queue_timeout_s(0) == pytest.approx(0.1)
    assert p.queue_timeout_s(None) == pytest.approx(0.1)
    assert p.queue_timeout_s(True) == pytest.approx(0.1)  # not a number of microseconds


def test_without_a_default_or_the_allowance_a_request_sets_no_queue_timeout() -> None:
    assert QueuePolicy(allow_timeout_override=True).queue_deadline(5.0, 50_000) == math.inf
    assert QueuePolicy(default_timeout_s=0.1).queue_deadline(5.0, 50_000) == pytest.approx(5.1)


def test_priority_zero_is_the_default_level_and_others_must_exist() -> None:
    assert priority_level(0, levels=3, default_level=2) == 2
    assert priority_level(3, levels=3, default_level=2) == 3
    with pytest.raises(BadParameter, match=r"outside 1\.\.3"):
        priority_level(4, levels=3, default_level=2)
    for bad in (-1, 1.5, "1", True):
        with pytest.raises(BadParameter, match="'priority'"):
            priority_level(bad, levels=3, default_level=2)


def test_each_level_gets_its_own_policy_from_the_config() -> None:
    settings = DynamicBatchingSettings.model_validate(
        {
            "priority_levels": 2,
            "default_queue_policy": {"max_queue_size": 8},
            "priority_queue_policy": {
                1: {"default_timeout_microseconds": 1000, "timeout_action": "DELAY"}
            },
        }
    )
    levels = LevelPolicies(settings)
    assert levels.policy(1) == QueuePolicy(
        default_timeout_s=0.001, timeout_action=TimeoutAction.DELAY
    )
    assert levels.policy(2) == QueuePolicy(max_queue_size=8)
    place = levels.place({"priority": 1}, now=2.0)
    assert (place.level, place.queue_deadline) == (1, pytest.approx(2.001))
    assert levels.place({}, now=2.0).level == 2
