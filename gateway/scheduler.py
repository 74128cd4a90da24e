"""A model's scheduler: queues requests, and when a pod slot frees, forms and sends a batch.

The shell around the pure batching core (gateway.batching): it holds no policy of its own. The
dispatch step runs whenever something changes (an arrival, a finished batch, a pod coming or
going, a timer) and asks the policy whether the batch in hand goes now. Batches are formed
across all pods of the model (pull-based): whichever pod frees a slot gets the next one.

The step is a plain callback, never a task of its own: a request that finds the queue empty and
no batch of its model in flight is dispatched in its caller's task at once (an idle pod with a
free slot gets a lone request with no wake-up in between); any other change asks for one step
in the loop's next round, so requests arriving together under load are looked at together and
can share a batch; a timer is armed only while a batch waits.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from typing import Protocol

from gateway.backends.batch_call import Flight, Ticket
from gateway.backends.tries import BatchTries, TryTarget
from gateway.batching.admission import (
    EVICTED,
    OVERLOADED,
    QUEUE_FULL,
    TIMEOUT,
    estimated_wait_s,
    rejection_reason,
    retry_after_s,
)
from gateway.batching.cost_model import CostModel
from gateway.batching.merge import batch_key
from gateway.batching.policy import UNBATCHED, BatchingPolicy, LoadView, decide
from gateway.batching.queue import BatchQueue, Pending, QueueFull
from gateway.batching.queue_policy import BadParameter, LevelPolicies, QueuePolicy
from gateway.batching.rate import RateEstimator
from gateway.config import DynamicBatchingSettings, ModelSettings
from gateway.errors import Code, InferError
from gateway.observe.request import RequestInfo
from gateway.observe.tracing import TracedRequest, start_batch
from gateway.routing.per_try import per_try_timeout
from gateway.routing.pick import choose_pod
from gateway.routing.pod_set import Pod, PodSet
from gateway.routing.retry import fail
from gateway.scheduler_state import PodView, SchedulerState, Unqueued
from gateway.stats import ModelStats
from protos.infer import InferRequestBody
from protos.tensors import Tensor

__all__ = ["Scheduler", "SchedulerMetrics"]

log = logging.getLogger(__name__)
_NO_BATCHING = DynamicBatchingSettings()


class SchedulerMetrics(Protocol):
    """Hooks the scheduler reports through (metrics live elsewhere)."""

    def batch_sent(self, pod: str, rows: int, requests: int, reason: str) -> None: ...
    def queue_time(self, seconds: float) -> None: ...
    def rejected(self, reason: str) -> None: ...


class _NoMetrics:
    def batch_sent(self, pod: str, rows: int, requests: int, reason: str) -> None:
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
        self._running = False
        self._stopped = False  # stop() was called: nothing is queued any more
        self._step: asyncio.Handle | None = None  # a step asked for in the loop's next round
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf  # when the timer fires (the scheduler's clock)
        self.settings = settings
        self.queue = BatchQueue(self.batching.levels)
        self.tries = BatchTries(
            pods=pods, queue=self.queue, stats=stats, cost=self.cost, done=self.wake, clock=clock
        )
        self.unqueued = Unqueued()  # waiting for the model's spec, before the queue
        self._policy_key: tuple[int, int] | None = None
        self._try_target: TryTarget | None = None  # where tries go, for these settings
        self._policy = BatchingPolicy(max_batch_size=1)
        self._levels = LevelPolicies(self.batching)  # the queue policies in force
        self.rejected_total = 0  # requests turned away: queue full, overloaded, timed out

    @property
    def batching(self) -> DynamicBatchingSettings:
        return self.settings.dynamic_batching or _NO_BATCHING

    def update(self, settings: ModelSettings) -> None:
        """Swap the model's settings; every queued request stays queued."""
        self.settings = settings
        self._try_target = None
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
        self._running = True
        self.wake()

    async def stop(self) -> None:
        """Stop dispatching; queued requests are answered UNAVAILABLE, batches in flight end;
        a request submitted after is answered UNAVAILABLE at once."""
        self._running = False
        self._stopped = True
        for handle in (self._step, self._timer):
            if handle is not None:
                handle.cancel()
        self._step = self._timer = None
        self._timer_at = math.inf
        self.fail_queued(InferError(Code.UNAVAILABLE, "the gateway is shutting down"))
        await self.tries.wait(5.0)

    def fail_queued(self, exc: InferError) -> None:
        """Answer every queued request with ``exc`` (none of them was sent)."""
        queued = list(self.queue)
        for p in queued:
            fail(p, exc)
        self.queue.take(queued)

    def wake(self) -> None:
        """Look at the queue in the loop's next round (one look for any number of wakes); with
        nothing queued there is nothing to look at."""
        if self._step is None and self._running and self.queue.requests:
            self._step = asyncio.get_running_loop().call_soon(self._dispatch_step)

    # -- admission -------------------------------------------------------------------------

    async def submit(
        self,
        body: InferRequestBody,
        rows: int,
        deadline: float,
        version: str = "",
        info: RequestInfo | None = None,
    ) -> list[Tensor]:
        """Queue a validated request and wait for its outputs (or its error); ``info`` is told
        where it went."""
        if self._stopped:
            raise InferError(Code.UNAVAILABLE, f"model '{self.settings.name}' has stopped")
        now = self._clock()
        try:
            place = self._levels.place(body.parameters, now)
        except BadParameter as exc:
            raise InferError(Code.INVALID_ARGUMENT, str(exc)) from None
        future: asyncio.Future[list[Tensor]] = asyncio.get_running_loop().create_future()
        ticket = Ticket(body, version, future, info=info)
        tenant = info.tenant if info is not None and self.settings.fair_share else None
        if info is not None and info.trace is not None:
            info.trace.enqueued()
        pending = Pending(
            rows=rows,
            key=(version, batch_key(body, self.batches)),
            enqueued=now,
            deadline=deadline,
            queue_deadline=place.queue_deadline,
            level=place.level,
            action=place.policy.timeout_action,
            payload=ticket,
            tenant=tenant.name if tenant is not None else "",
            weight=tenant.weight if tenant is not None else 1.0,
        )
        self.arrivals.record(rows, now)  # shed load is demand too
        self._admit(pending, place.policy, now)
        if self.queue.requests == 1 and not self.tries.active and self._step is None:
            self._dispatch_step()  # alone, and the pods idle: it may go at once, from here
        else:
            self.wake()  # looked at with whatever else arrives in this round of the loop
        try:
            return await future
        except asyncio.CancelledError:
            self.queue.cancel(pending)  # the caller left: never sent if still queued,
            if ticket.flight is not None:  # and cancelled on the pod if its batch has no caller
                ticket.flight.caller_left()
            self.wake()
            raise

    def _admit(self, pending: Pending, policy: QueuePolicy, now: float) -> None:
        """Queue the request, or reject it at once: queue full, or a wait it cannot afford
        (the rows served before it: with tenants, its place by its tenant's share)."""
        p = pending
        if p.deadline <= now:  # its timeout ran out on the way in: not the queue's doing
            self._rejected(TIMEOUT)
            raise InferError(
                Code.DEADLINE_EXCEEDED,
                f"request to model '{self.settings.name}' timed out before it was queued "
                "(its timeout is shorter than the time to reach the queue)",
                reason=TIMEOUT,
            )
        ahead = self.queue.rows_ahead(p.tenant, p.weight, p.rows, p.level)
        wait = estimated_wait_s(ahead, self.cost.fit(), self._devices(), self.max_batch_size)
        max_wait_ms = self.settings.max_queue_wait_ms
        reason = rejection_reason(
            now=now,
            deadline=pending.deadline,
            wait_s=wait,
            max_wait_s=max_wait_ms / 1000 if max_wait_ms else None,
        )
        if reason is not None:
            self._rejected(OVERLOADED)
            raise InferError(
                Code.RESOURCE_EXHAUSTED,
                f"model '{self.settings.name}' is overloaded: {reason}",
                retry_after_s=retry_after_s(wait),
                reason=OVERLOADED,
            )
        try:
            evicted = self.queue.admit(pending, policy)
        except QueueFull as exc:
            self._rejected(QUEUE_FULL)
            raise InferError(
                Code.RESOURCE_EXHAUSTED,
                f"model '{self.settings.name}': {exc}",
                retry_after_s=retry_after_s(wait),
                reason=QUEUE_FULL,
            ) from None
        if evicted is not None:  # a full level made room for a tenant below its share
            self._rejected(EVICTED)
            message = (
                f"model '{self.settings.name}': tenant '{evicted.tenant}' is over its share of "
                f"the full queue of priority level {evicted.level}"
            )
            fail(evicted, InferError(Code.RESOURCE_EXHAUSTED, message, reason=EVICTED))

    # -- dispatch --------------------------------------------------------------------------

    def _dispatch_step(self) -> None:
        """One dispatch step, then the timer for the next one a waiting batch needs."""
        self._step = None
        if not self._running:
            return
        try:
            wait_until = self._dispatch(self._clock())
        except Exception as exc:  # a fault of the gateway's own: what is queued is answered
            log.exception("dispatch of model '%s' failed", self.settings.name)
            self.fail_queued(InferError(Code.INTERNAL, f"dispatch failed: {exc}"))
            wait_until = math.inf
        if wait_until < self._timer_at or (wait_until == math.inf and self._timer is not None):
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_at = wait_until
            if wait_until < math.inf:
                delay = max(0.0, wait_until - self._clock())
                self._timer = asyncio.get_running_loop().call_later(delay, self._timer_fired)

    def _timer_fired(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self._dispatch_step()

    def _dispatch(self, now: float) -> float:
        """Send every batch the policy allows now; return when to look again."""
        for p in self.queue.expire(now):
            fail(p, self._expiry_error(p, now))
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
            rows = sum(p.rows for p in batch)
            decision = decide(
                policy,
                LoadView(self.arrivals.rate(now), fit, self._devices()),
                now=now,
                batch_rows=rows,
                oldest_enqueued=min(p.enqueued for p in batch),
                earliest_deadline=min(p.deadline for p in batch),
                send_at=send_at,
                alone=self.queue.requests == 1 and pod.in_flight == 0 and send_at <= now,
            )
            if not decision.rows:
                return min(decision.wait_until, self.queue.next_expiry())
            if decision.rows < rows:
                batch = self.queue.peek(decision.rows)
            self.queue.take(batch)
            self._send(pod, batch, now, send_at, decision.reason if self.batches else UNBATCHED)
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
        self._rejected(TIMEOUT)
        return InferError(
            Code.DEADLINE_EXCEEDED,
            f"request timed out after {waited_ms:.0f} ms in the queue of "
            f"model '{self.settings.name}'",
            reason=TIMEOUT,
        )

    def _send(
        self, pod: Pod, batch: list[Pending], now: float, send_at: float, reason: str
    ) -> None:
        rows = sum(p.rows for p in batch)
        pod.in_flight += 1
        pod.outstanding_rows += rows
        wait_s = send_at - now + pod.timeline.rtt.seconds  # predicted wait for a device
        per_try = per_try_timeout(self.settings.per_try_timeout, self.cost.fit(), rows, wait_s)
        flight = Flight([p.payload.future for p in batch], per_try)
        traced: list[TracedRequest] = []
        for p in batch:
            ticket: Ticket = p.payload
            ticket.queued_ns = queued_ns = int((now - p.enqueued) * 1e9)
            ticket.flight = flight
            self._metrics.queue_time(now - p.enqueued)
            info = ticket.info
            if info is not None:
                info.sent(queued_ns, rows, pod.address)
                if info.trace is not None:
                    traced.append(info.trace)
        self._metrics.batch_sent(pod.address, rows, len(batch), reason)
        on_pod = pod.timeline.sent(rows, now)
        trace = start_batch(traced, self.settings.name, pod.address, rows, len(batch))
        self.tries.start(pod, batch, on_pod, flight, self._target(), trace)

    def _target(self) -> TryTarget:
        """Where tries go, built again only when the settings or the model's batching change."""
        batched = self.max_batch_size > 0
        target = self._try_target
        if target is None or target.batched != batched:
            s = self.settings
            target = self._try_target = TryTarget(
                s.target_model, s.connect_timeout_ms / 1000, batched
            )
        return target
