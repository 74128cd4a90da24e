"""A model's scheduler: queues requests, and when a pod slot frees, forms and sends a batch.

The shell around the pure batching core (gateway.batching): it holds no policy of its own. One
dispatch task per model runs whenever something changes (an arrival, a finished batch, a pod
coming or going, a timer) and asks the policy whether the batch in hand goes now. Batches are
formed across all pods of the model (pull-based): whichever pod frees a slot gets the next one.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.batching.admission import estimated_wait_s, rejection_reason, retry_after_s
from gateway.batching.cost_model import CostModel
from gateway.batching.merge import batch_key, merge_requests, split_response
from gateway.batching.policy import BatchingPolicy, LoadView, decide
from gateway.batching.queue import BatchQueue, Pending, QueueFull
from gateway.batching.queue_policy import BadParameter, LevelPolicies, QueuePolicy
from gateway.batching.rate import RateEstimator
from gateway.batching.timeline import InFlight
from gateway.config import DynamicBatchingSettings, ModelSettings
from gateway.errors import Code, InferError
from gateway.routing.call_policy import call_timeout, judge
from gateway.routing.pick import choose_pod
from gateway.routing.pod_set import Pod, PodSet
from gateway.scheduler_state import PodView, SchedulerState, Unqueued
from gateway.stats import ModelStats
from gateway.tasks import cancel_and_wait
from protos import v2_grpc
from protos.infer import InferRequestBody
from protos.tensors import CodecError, Tensor

__all__ = ["Scheduler", "SchedulerMetrics"]

log = logging.getLogger(__name__)
_NO_BATCHING = DynamicBatchingSettings()


@dataclass(slots=True)
class _Ticket:
    """The shell's half of a queued request."""

    body: InferRequestBody
    version: str
    future: asyncio.Future[list[Tensor]]
    queued_ns: int = 0  # time in the queue, once sent


class SchedulerMetrics(Protocol):
    """Hooks the scheduler reports through (metrics live elsewhere)."""

    def batch_sent(self, pod: str, rows: int, requests: int) -> None: ...
    def queue_time(self, seconds: float) -> None: ...
    def rejected(self, reason: str) -> None: ...


class _NoMetrics:
    def batch_sent(self, pod: str, rows: int, requests: int) -> None:
        pass

    def queue_time(self, seconds: float) -> None:
        pass

    def rejected(self, reason: str) -> None:
        pass


class Scheduler:
    """Queue, batch and dispatch for one model."""

    def __init__(
        self,
        *,
        settings: ModelSettings,
        pods: PodSet,
        stats: ModelStats,
        metrics: SchedulerMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.pods = pods
        self.stats = stats
        self.cost = CostModel()
        self.arrivals = RateEstimator(horizon_s=1.0)
        self.max_batch_size = 0  # the model's, once a pod has described it
        self._metrics: SchedulerMetrics = metrics or _NoMetrics()
        self._clock = clock
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self.settings = settings
        self.queue = BatchQueue(self.batching.levels)
        self.unqueued = Unqueued()  # waiting for the model's spec, before the queue
        self._policy_key: tuple[int, int] | None = None
        self._policy = BatchingPolicy(max_batch_size=1)
        self._levels = LevelPolicies(self.batching)  # the queue policies in force
        self.rejected_total = 0  # requests turned away: queue full, overloaded, timed out

    @property
    def batching(self) -> DynamicBatchingSettings:
        return self.settings.dynamic_batching or _NO_BATCHING

    def update(self, settings: ModelSettings) -> None:
        """Swap the model's settings; every queued request stays queued."""
        self.settings = settings
        self._levels = LevelPolicies(self.batching)
        if self.queue.levels != self.batching.levels:
            self.queue.resize(self.batching.levels)
        self.wake()

    @property
    def batches(self) -> bool:
        """Whether requests of this model are merged into batches."""
        return self.settings.dynamic_batching is not None and self.max_batch_size > 0

    def policy(self) -> BatchingPolicy:
        """The batching policy in force, built once per settings and model max batch size."""
        key = (id(self.settings), self.max_batch_size)
        if key != self._policy_key:
            self._policy_key = key
            self._policy = BatchingPolicy.of(self.settings.dynamic_batching, self.max_batch_size)
        return self._policy

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Stop dispatching; queued requests are answered UNAVAILABLE, batches in flight end."""
        await cancel_and_wait(self._task)
        for p in list(self.queue):
            self._fail(p, InferError(Code.UNAVAILABLE, "the gateway is shutting down"))
        self.queue.take(list(self.queue))
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=5.0)

    def wake(self) -> None:
        self._wake.set()

    # -- admission -------------------------------------------------------------------------

    async def submit(
        self, body: InferRequestBody, rows: int, deadline: float, version: str = ""
    ) -> list[Tensor]:
        """Queue a validated request and wait for its outputs (or its error)."""
        now = self._clock()
        try:
            place = self._levels.place(body.parameters, now)
        except BadParameter as exc:
            raise InferError(Code.INVALID_ARGUMENT, str(exc)) from None
        future: asyncio.Future[list[Tensor]] = asyncio.get_running_loop().create_future()
        pending = Pending(
            rows=rows,
            key=(version, batch_key(body, self.batches)),
            enqueued=now,
            deadline=deadline,
            queue_deadline=place.queue_deadline,
            level=place.level,
            action=place.policy.timeout_action,
            payload=_Ticket(body, version, future),
        )
        self.arrivals.record(rows, now)  # shed load is demand too
        self._admit(pending, place.policy, now)
        self.wake()
        try:
            return await future
        except asyncio.CancelledError:
            self.queue.cancel(pending)  # the caller left: never sent if still queued
            self.wake()
            raise

    def _admit(self, pending: Pending, policy: QueuePolicy, now: float) -> None:
        """Queue the request, or reject it at once: queue full, or a wait it cannot afford."""
        wait = estimated_wait_s(
            self.queue.rows, self.cost.fit(), self._devices(), self.max_batch_size
        )
        max_wait_ms = self.settings.max_queue_wait_ms
        reason = rejection_reason(
            now=now,
            deadline=pending.deadline,
            wait_s=wait,
            max_wait_s=max_wait_ms / 1000 if max_wait_ms else None,
        )
        retry_after = retry_after_s(wait)
        if reason is not None:
            self._rejected("overloaded")
            raise InferError(
                Code.RESOURCE_EXHAUSTED,
                f"model '{self.settings.name}' is overloaded: {reason}",
                retry_after_s=retry_after,
            )
        try:
            self.queue.admit(pending, policy)
        except QueueFull as exc:
            self._rejected("queue_full")
            raise InferError(
                Code.RESOURCE_EXHAUSTED,
                f"model '{self.settings.name}': {exc}",
                retry_after_s=retry_after,
            ) from None

    # -- dispatch --------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            wait_until = self._dispatch(self._clock())
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            if wait_until < math.inf:
                loop = asyncio.get_running_loop()
                delay = max(0.0, wait_until - self._clock())
                self._timer = loop.call_later(delay, self._wake.set)
            await self._wake.wait()

    def _dispatch(self, now: float) -> float:
        """Send every batch the policy allows now; return when to look again."""
        for p in self.queue.expire(now):
            self._fail(p, self._expiry_error(p, now))
        while self.queue.requests:
            free = self.pods.free_pods()  # the routing view's pods with a free slot
            if not free:
                break
            policy = self.policy()
            batch = self.queue.peek(policy.max_batch_size)
            if not batch:
                break
            fit = self.cost.fit()
            pod, send_at = choose_pod(free, fit, now, self._rng)
            decision = decide(
                policy,
                LoadView(self.arrivals.rate(now), fit, self._devices()),
                now=now,
                batch_rows=sum(p.rows for p in batch),
                oldest_enqueued=min(p.enqueued for p in batch),
                earliest_deadline=min(p.deadline for p in batch),
                send_at=send_at,
            )
            if not decision.rows:
                return min(decision.wait_until, self.queue.next_expiry())
            if decision.rows < policy.max_batch_size:
                batch = self.queue.peek(decision.rows)
            self.queue.take(batch)
            self._send(pod, batch, now)
        return self.queue.next_expiry()

    def state(self, now: float) -> SchedulerState:
        """What the scheduler holds now, for the reporter and the metrics: queue, cost, pods."""
        fit = self.cost.fit()
        pods = tuple(
            PodView(
                p.address,
                p.in_flight,
                p.outstanding_rows,
                p.ready,
                p.slots,
                p.timeline.devices,
                p.endpoint.terminating,
            )
            for p in self.pods.pods
        )
        return SchedulerState(
            queued_requests=self.queue.requests + self.unqueued.requests,
            queued_rows=self.queue.rows + self.unqueued.rows,
            levels=tuple(self.queue.level_sizes()),
            arrival_rows_per_s=self.arrivals.rate(now),
            completed_rows_total=self.stats.inference_count,
            rejected_requests_total=self.rejected_total,
            fixed_s=fit.fixed_s if fit else None,
            per_row_s=fit.per_row_s if fit else None,
            max_batch_size=self.max_batch_size,
            pods=pods,
        )

    def _rejected(self, reason: str) -> None:
        self.rejected_total += 1
        self._metrics.rejected(reason)

    def _devices(self) -> int:
        return sum(p.timeline.devices for p in self.pods.ready_pods())

    def _expiry_error(self, p: Pending, now: float) -> InferError:
        waited_ms = (now - p.enqueued) * 1000
        if not self.pods.ready_pods():
            return InferError(
                Code.UNAVAILABLE,
                f"no ready pod for model '{self.settings.name}' (waited {waited_ms:.0f} ms)",
            )
        self._rejected("timeout")
        return InferError(
            Code.DEADLINE_EXCEEDED,
            f"request timed out after {waited_ms:.0f} ms in the queue of "
            f"model '{self.settings.name}'",
        )

    def _send(self, pod: Pod, batch: list[Pending], now: float) -> None:
        rows = sum(p.rows for p in batch)
        pod.in_flight += 1
        pod.outstanding_rows += rows
        for p in batch:
            p.payload.queued_ns = int((now - p.enqueued) * 1e9)
            self._metrics.queue_time(now - p.enqueued)
        self._metrics.batch_sent(pod.address, rows, len(batch))
        on_pod = pod.timeline.sent(rows, now)
        task = asyncio.get_running_loop().create_task(self._call(pod, batch, on_pod))
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _call(self, pod: Pod, batch: list[Pending], on_pod: InFlight) -> None:
        tickets: list[_Ticket] = [p.payload for p in batch]
        counts = [p.rows for p in batch]
        rows = on_pod.rows
        t0 = self._clock()
        timeout = 0.0  # stays 0 while the batch has not been sent
        try:
            request = merge_requests(
                self.settings.target_model, tickets[0].version, [t.body for t in tickets], counts
            )
            t1 = self._clock()
            pod.timeline.on_wire(on_pod, t1)
            timeout = call_timeout(min(p.deadline for p in batch), t1)
            connect_s = self.settings.connect_timeout_ms / 1000
            reply = await pod.client.infer(request, timeout, connect_s)
            t2 = self._clock()
            service = pod.timeline.finished(on_pod, t2)
            outputs = split_response(v2_grpc.decode_response(reply).outputs, counts)
            t3 = self._clock()
        except InferError as exc:
            verdict = judge(exc.code, timeout_s=timeout)
            if timeout and verdict.pod_fault:  # never the gateway's own failure
                self.pods.record_failure(pod)
            if timeout and verdict.retry:
                self._retry(pod, batch, exc)
            else:
                self._fail_all(batch, exc)
        except CodecError as exc:
            self.pods.record_failure(pod)
            self._fail_all(
                batch, InferError(Code.INTERNAL, f"pod {pod.address} sent a bad response: {exc}")
            )
        else:
            self.pods.record_success(pod)
            self.cost.observe(rows, service)
            ns = [int((b - a) * 1e9) for a, b in ((t1, t2), (t0, t1), (t2, t3))]
            self.stats.record_batch(rows, len(batch), *ns)
            for ticket, outs in zip(tickets, outputs, strict=True):
                if not ticket.future.done():
                    self.stats.record_queued(ticket.queued_ns)
                    ticket.future.set_result(outs)
        finally:
            pod.timeline.finished(on_pod, self._clock())  # no-op once answered
            pod.in_flight -= 1
            pod.outstanding_rows -= rows
            self.wake()

    def _retry(self, pod: Pod, batch: list[Pending], exc: InferError) -> None:
        """A pod that did not take the batch: queue it again at the front, for another pod,
        within the retry budget; an unreachable pod is out until its probe passes again."""
        if exc.code is Code.UNAVAILABLE:
            self.pods.set_ready(pod, False)
        batch = [p for p in batch if not p.payload.future.done()]
        futures = [p.payload.future for p in batch]
        if not batch:
            return
        if not self.pods.retry_budget.try_start(
            self.pods.active_batches(), lambda: all(f.done() for f in futures)
        ):
            log.warning("pod %s failed (%s); retry budget spent", pod.address, exc)
            self._fail_all(
                batch,
                InferError(
                    Code.UNAVAILABLE, f"{exc.message} (not retried: the retry budget is spent)"
                ),
            )
            return
        log.warning("pod %s failed (%s); requeueing %d requests", pod.address, exc, len(batch))
        self.queue.requeue(batch)

    def _fail(self, p: Pending, exc: InferError) -> None:
        future = p.payload.future
        if not future.done():
            future.set_exception(exc)

    def _fail_all(self, batch: list[Pending], exc: InferError) -> None:
        for p in batch:
            self._fail(p, exc)
