"""Triton's queue policies: the priority level a request joins and its queue timeout. Pure.

The rules are Triton's (``PolicyQueue`` in ``src/scheduler_utils.cc``): a request's ``priority``
parameter picks a level (1 is the highest; 0 or absent: the model's default level), and its
``timeout`` parameter (µs) may only *shorten* the level's ``default_timeout_microseconds``, and
only when the level has ``allow_timeout_override``: it applies when 0 < timeout < default, so a
level whose default is 0 (no queue timeout) never gets one from a request. The same ``timeout``
still caps the request's deadline, which is another matter (``gateway.core``).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

from gateway.config import DynamicBatchingSettings

__all__ = [
    "BadParameter",
    "LevelPolicies",
    "Placement",
    "QueuePolicy",
    "TimeoutAction",
    "priority_level",
]


class TimeoutAction(enum.Enum):
    REJECT = "REJECT"
    DELAY = "DELAY"


class BadParameter(ValueError):
    """A request parameter the queue cannot use; the message names it."""


@dataclass(frozen=True, slots=True)
class QueuePolicy:
    """Triton's ModelQueuePolicy for one priority level."""

    max_queue_size: int = 0  # 0: unbounded
    default_timeout_s: float = 0.0  # 0: none
    allow_timeout_override: bool = False
    timeout_action: TimeoutAction = TimeoutAction.REJECT

    def queue_timeout_s(self, requested_us: object = None) -> float:
        """The request's queue timeout (0: none): the default, or the request's ``timeout``
        where the level allows an override and it is shorter than the default."""
        default = self.default_timeout_s
        if (
            self.allow_timeout_override
            and isinstance(requested_us, int)
            and not isinstance(requested_us, bool)
            and 0 < requested_us / 1e6 < default
        ):
            return requested_us / 1e6
        return default

    def queue_deadline(self, now: float, requested_us: object = None) -> float:
        """When the request's queue timeout passes (inf: never)."""
        timeout = self.queue_timeout_s(requested_us)
        return now + timeout if timeout > 0 else math.inf


def priority_level(value: object, *, levels: int, default_level: int) -> int:
    """The level of a request's ``priority`` parameter (0: the default level)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadParameter("parameter 'priority' must be an integer ≥ 0")
    if value == 0:
        return default_level
    if value > levels:
        raise BadParameter(
            f"priority {value} is outside 1..{levels} (priority_levels of the model)"
        )
    return value


class Placement(NamedTuple):
    """Where a request goes in the queue: its level, that level's policy, its queue deadline."""

    level: int
    policy: QueuePolicy
    queue_deadline: float


class LevelPolicies:
    """The queue policy of each priority level of one batching config, built once per level."""

    def __init__(self, settings: DynamicBatchingSettings) -> None:
        self.settings = settings
        self._by_level: dict[int, QueuePolicy] = {}

    def policy(self, level: int) -> QueuePolicy:
        found = self._by_level.get(level)
        if found is None:
            p = self.settings.queue_policy(level)
            found = self._by_level[level] = QueuePolicy(
                max_queue_size=p.max_queue_size,
                default_timeout_s=p.default_timeout_microseconds / 1e6,
                allow_timeout_override=p.allow_timeout_override,
                timeout_action=TimeoutAction(p.timeout_action),
            )
        return found

    def place(self, parameters: Mapping[str, object], now: float) -> Placement:
        """A request's placement from its ``priority`` and ``timeout`` parameters."""
        s = self.settings
        level = priority_level(
            parameters.get("priority", 0), levels=s.levels, default_level=s.default_level
        )
        policy = self.policy(level)
        return Placement(level, policy, policy.queue_deadline(now, parameters.get("timeout")))
