"""What becomes of a batch whose try on a pod failed: counted against the pod when the fault is
the pod's, queued again at the front for another pod within the retry budget, or answered with
the error."""

from __future__ import annotations

import logging

from gateway.backends.batch_call import request_ids
from gateway.batching.queue import BatchQueue, Pending
from gateway.errors import Code, InferError
from gateway.routing.per_try import TryBound, judge_try
from gateway.routing.pod_set import Pod, PodSet

__all__ = ["fail", "fail_all", "settle_failed_try"]

log = logging.getLogger(__name__)


def fail(p: Pending, exc: InferError) -> None:
    """Answer one request's caller with ``exc`` (unless it has its answer, or has left)."""
    future = p.payload.future
    if not future.done():
        future.set_exception(exc)


def fail_all(batch: list[Pending], exc: InferError) -> None:
    for p in batch:
        fail(p, exc)


def settle_failed_try(
    pods: PodSet,
    queue: BatchQueue,
    pod: Pod,
    batch: list[Pending],
    exc: InferError,
    bound: TryBound | None,
) -> None:
    """Settle a try of ``batch`` on ``pod`` that failed with ``exc`` under ``bound`` (None: the
    batch was never sent, the gateway's own failure, passed back and held against no pod)."""
    if bound is None:
        fail_all(batch, exc)
        return
    exc, verdict = judge_try(exc, bound, pod.address)
    if verdict.pod_fault:
        pods.record_failure(pod)
    if verdict.retry:
        _retry(pods, queue, pod, batch, exc)
    else:
        fail_all(batch, exc)


def _retry(
    pods: PodSet, queue: BatchQueue, pod: Pod, batch: list[Pending], exc: InferError
) -> None:
    """A pod that did not run the batch (or was cut off): queue it again at the front, for
    another pod, within the retry budget; an unreachable pod is out until its probe passes."""
    if exc.code is Code.UNAVAILABLE:
        pods.set_ready(pod, False)
    batch = [p for p in batch if not p.payload.future.done()]
    futures = [p.payload.future for p in batch]
    if not batch:
        return
    if not pods.retry_budget.try_start(
        pods.active_batches(), lambda: all(f.done() for f in futures)
    ):
        log.warning(
            "pod %s failed (%s); retry budget spent",
            pod.address,
            exc,
            extra={"request_ids": request_ids(batch)},
        )
        message = f"{exc.message} (not retried: the retry budget is spent)"
        spent = InferError(Code.UNAVAILABLE, message, unsent=exc.unsent, lost=exc.lost)
        fail_all(batch, spent)
        return
    log.warning(
        "pod %s failed (%s); requeueing %d requests",
        pod.address,
        exc,
        len(batch),
        extra={"request_ids": request_ids(batch)},
    )
    for p in batch:
        info = p.payload.info
        if info is not None and info.trace is not None:
            info.trace.enqueued()  # its next queue span starts now
    queue.requeue(batch)
