"""Admission under overload: turn a request away at once when it would wait too long. Pure.

A bounded queue (Triton's max_queue_size) bounds requests, not time: under overload a queue of
a fixed size still makes every caller wait until its deadline. Here the wait is estimated from
the rows queued ahead and the pods' fitted throughput, and a request whose wait would pass its
deadline, or the model's max_queue_wait, is rejected before it is queued.
"""

from __future__ import annotations

from gateway.batching.cost_model import BatchCost

__all__ = [
    "EVICTED",
    "OVERLOADED",
    "QUEUE_FULL",
    "REJECT_REASONS",
    "TIMEOUT",
    "estimated_wait_s",
    "rejection_reason",
    "retry_after_s",
]

# Why the gateway itself turned a request away: the labels of gateway_rejections_total.
# overloaded: its estimated wait passes its deadline or max_queue_wait (rejection_reason);
# queue_full: its priority level's queue is full; evicted: queued, then pushed out of a full
# level by a tenant below its fair share; timeout: its deadline passed before or while it was
# queued.
REJECT_REASONS = OVERLOADED, QUEUE_FULL, EVICTED, TIMEOUT = (
    "overloaded",
    "queue_full",
    "evicted",
    "timeout",
)


def estimated_wait_s(
    rows_ahead: int, cost: BatchCost | None, slots: int, max_batch_size: int
) -> float | None:
    """Seconds until the rows ahead are served at full batches on every slot (None: unknown)."""
    if cost is None or slots <= 0:
        return None
    return rows_ahead / cost.throughput(max(1, max_batch_size), slots)


def rejection_reason(
    *, now: float, deadline: float, wait_s: float | None, max_wait_s: float | None
) -> str | None:
    """Why a request should be turned away now, or None to admit it."""
    if wait_s is None:
        return None
    if max_wait_s is not None and wait_s > max_wait_s:
        return f"estimated queue wait {wait_s * 1000:.0f} ms exceeds {max_wait_s * 1000:.0f} ms"
    if now + wait_s > deadline:
        return (
            f"estimated queue wait {wait_s * 1000:.0f} ms exceeds the request's remaining "
            f"{max(0.0, deadline - now) * 1000:.0f} ms"
        )
    return None


def retry_after_s(wait_s: float | None) -> float:
    """The Retry-After a rejected caller is given: the estimated wait, at least a second."""
    return max(1.0, wait_s or 0.0)
