"""What a pod's failure means for the batch and for the pod, and how long a call may take.
Pure."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.errors import Code

__all__ = ["BLAME_MIN_TIMEOUT_S", "Verdict", "call_timeout", "judge"]

BLAME_MIN_TIMEOUT_S = 0.1  # a call cut shorter than this by its deadline is not the pod's fault
_MARGIN_S = 0.005  # answer a little before the deadline, so the caller reads our error
_RETRY = {Code.UNAVAILABLE, Code.RESOURCE_EXHAUSTED}
_CALLER = {Code.INVALID_ARGUMENT, Code.PAYLOAD_TOO_LARGE, Code.RESOURCE_EXHAUSTED}


@dataclass(frozen=True, slots=True)
class Verdict:
    """``retry``: the pod did not take the batch (it was never run), so another pod may;
    ``pod_fault``: it counts towards ejecting the pod (outlier detection)."""

    retry: bool
    pod_fault: bool


def judge(code: Code, *, timeout_s: float) -> Verdict:
    """The verdict on a failed call that had ``timeout_s`` to run.

    UNAVAILABLE (no connection, refused, reset, shutting down) is retried elsewhere and counts
    against the pod; RESOURCE_EXHAUSTED (the pod is full) is retried and does not count; a
    bad input (INVALID_ARGUMENT) goes back to the caller and does not count; a timeout counts
    when the pod had a fair time; anything else (INTERNAL…) goes back and counts.
    """
    if code is Code.DEADLINE_EXCEEDED:
        return Verdict(retry=False, pod_fault=timeout_s >= BLAME_MIN_TIMEOUT_S)
    return Verdict(retry=code in _RETRY, pod_fault=code not in _CALLER)


def call_timeout(earliest_deadline: float, now: float) -> float:
    """The time a batch's call may take: until its earliest deadline, less a small margin so
    the answer (or our DEADLINE_EXCEEDED) reaches the caller before its own deadline."""
    remaining = earliest_deadline - now
    return max(0.001, remaining - min(_MARGIN_S, remaining * 0.05))
