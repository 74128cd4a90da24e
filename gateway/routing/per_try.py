"""How long one try of a batch on one pod may take, and what a try cut short by it means. Pure.

A pod that stalls (a wedged device, a hung process that still answers its probes) would hold
its batch until the callers' deadline. The per-try timeout cuts the try when the pod is far
past what the cost model predicts for the batch, so the batch goes to another pod while its
callers still have time, and the stall counts against the pod (outlier detection ejects it).
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.batching.cost_model import BatchCost
from gateway.config import PerTryTimeoutSettings
from gateway.errors import Code, InferError
from gateway.routing.call_policy import Verdict, judge

__all__ = ["TryBound", "judge_try", "per_try_timeout", "try_bound"]


def per_try_timeout(
    settings: PerTryTimeoutSettings, cost: BatchCost | None, rows: int, wait_s: float
) -> float | None:
    """Seconds a try of ``rows`` rows may take when it waits ``wait_s`` on the pod for a
    device: ``factor`` times the predicted wait plus device time, at least ``min_ms``; None
    when off or while the cost is not known (a guess could cut every try of a slow model)."""
    if cost is None or settings.factor <= 0:
        return None
    expected = max(0.0, wait_s) + max(0.0, cost.seconds(rows))
    return max(settings.min_ms / 1000, settings.factor * expected)


@dataclass(frozen=True, slots=True)
class TryBound:
    """The time a try may take, and whether the per-try timeout (not the deadline) set it."""

    timeout_s: float
    per_try: bool = False


def try_bound(deadline_timeout_s: float, per_try_s: float | None) -> TryBound:
    """The tighter of the time left before the batch's deadline and the per-try timeout."""
    if per_try_s is not None and per_try_s < deadline_timeout_s:
        return TryBound(per_try_s, per_try=True)
    return TryBound(deadline_timeout_s)


def judge_try(exc: InferError, bound: TryBound, address: str) -> tuple[InferError, Verdict]:
    """The error and verdict for a failed try. One cut by its per-try timeout is the pod's
    fault and is retried on another pod (inference is idempotent; the call was cancelled);
    any other failure is judged as ``call_policy.judge`` says."""
    if bound.per_try and exc.code is Code.DEADLINE_EXCEEDED:
        error = InferError(
            Code.DEADLINE_EXCEEDED,
            f"pod {address} did not answer within the per-try timeout "
            f"({bound.timeout_s * 1000:.0f} ms)",
        )
        return error, Verdict(retry=True, pod_fault=True)
    return exc, judge(exc.code, timeout_s=bound.timeout_s)
