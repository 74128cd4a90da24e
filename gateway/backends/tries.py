"""The batches on their way to pods: each one try on one pod, settled when it ends.

A try is encoded for its pod's wire and sent within the earlier of its callers' deadline and
its per-try timeout: from the dispatch step itself when the pod's client can send at once
(``PodBackend.begin``: its answer comes back on a callback, no task), else from a task of its
own that awaits the call. Its answer is split among the callers; a failure is settled as
``gateway.routing.retry`` says (counted against the pod, queued again for another, or answered
with the error). Either way the pod's slot is freed and the scheduler told.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.backends.backend import Cancellable
from gateway.backends.batch_call import Flight, Ticket, request_ids
from gateway.batching.cost_model import CostModel
from gateway.batching.queue import BatchQueue, Pending
from gateway.batching.timeline import InFlight
from gateway.errors import Code, InferError
from gateway.observe.tracing import BatchTrace
from gateway.routing.call_policy import call_timeout
from gateway.routing.per_try import TryBound, try_bound
from gateway.routing.pod_set import Pod, PodSet
from gateway.routing.retry import fail_all, settle_failed_try
from gateway.stats import ModelStats

__all__ = ["BatchTries", "TryTarget"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TryTarget:
    """Where a try goes and how it is read: the model's name on the pods, the connect timeout,
    and whether dim 0 of every answer is the batch."""

    model: str
    connect_s: float
    batched: bool


@dataclass(slots=True, eq=False)
class _Try:
    pod: Pod
    batch: list[Pending]
    on_pod: InFlight
    target: TryTarget
    flight: Flight
    started: float  # when the try began (clock), before its request was built
    sent: float = 0.0  # when its request went
    bound: TryBound | None = None  # None while the batch has not been sent
    ended: bool = False
    trace: BatchTrace | None = None  # the batch's span, when a member is traced
    error: str | None = None  # why the try failed, for its span


class BatchTries:
    """Runs and settles the tries of one model's batches; ``done`` is called as each ends."""

    def __init__(
        self,
        *,
        pods: PodSet,
        queue: BatchQueue,
        stats: ModelStats,
        cost: CostModel,
        done: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pods = pods
        self._queue = queue
        self._stats = stats
        self._cost = cost
        self._done = done
        self._clock = clock
        self.running: set[asyncio.Task[None]] = set()  # tries awaited in tasks of their own
        self.active = 0  # tries not yet ended

    def start(
        self,
        pod: Pod,
        batch: list[Pending],
        on_pod: InFlight,
        flight: Flight,
        target: TryTarget,
        trace: BatchTrace | None = None,
    ) -> None:
        """Start the try of ``batch`` on ``pod`` (its slot already taken, its rows counted);
        ``trace``: the batch's span, whose context goes with the call."""
        self.active += 1
        t = _Try(pod, batch, on_pod, target, flight, self._clock(), trace=trace)
        context = None if trace is None else trace.traceparent
        try:
            request = self._encode(t, flight)
            timeout_s = _bound(t).timeout_s
            call = pod.client.begin(request, timeout_s, lambda r, e: self._ended(t, r, e), context)
        except Exception as exc:  # a fault of the gateway's own: answered, never left waiting
            self._failed(t, exc)
            return
        if call is not None:
            flight.started = True
            flight.cancel = lambda: self._cancel(t, call)
            return
        task = asyncio.get_running_loop().create_task(self._await(t, flight, request, context))
        flight.cancel = task.cancel
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def wait(self, timeout_s: float) -> None:
        """Wait, up to ``timeout_s``, for the tries awaited in tasks to end."""
        if self.running:
            await asyncio.wait(self.running, timeout=timeout_s)

    def _encode(self, t: _Try, flight: Flight) -> Any:
        tickets: list[Ticket] = [p.payload for p in t.batch]
        first = tickets[0]
        counts = [p.rows for p in t.batch]
        bodies = [ticket.body for ticket in tickets]
        request = t.pod.client.encode_batch(t.target.model, first.version, bodies, counts)
        t.sent = self._clock()
        t.pod.timeline.on_wire(t.on_pod, t.sent)
        t.bound = try_bound(
            call_timeout(min(p.deadline for p in t.batch), t.sent), flight.per_try_s
        )
        return request

    async def _await(self, t: _Try, flight: Flight, request: Any, trace: str | None) -> None:
        flight.started = True
        try:
            if flight.abandoned:
                return  # every caller left before it went
            timeout_s = _bound(t).timeout_s
            reply = await t.pod.client.infer(request, timeout_s, t.target.connect_s, trace)
        except InferError as exc:
            self._ended(t, None, exc)
        except Exception as exc:
            self._failed(t, exc)
        except asyncio.CancelledError:
            self._end(t)  # every caller left: the call was cancelled
            raise
        else:
            self._ended(t, reply, None)
        finally:
            self._end(t)

    def _ended(self, t: _Try, reply: Any, error: InferError | None) -> None:
        """The call's outcome: split the answer among the callers, or settle the failure."""
        try:
            if error is not None:
                t.error = error.message
                settle_failed_try(self._pods, self._queue, t.pod, t.batch, error, t.bound)
            else:
                self._answered(t, reply)
        except InferError as exc:
            t.error = exc.message
            settle_failed_try(self._pods, self._queue, t.pod, t.batch, exc, t.bound)
        except Exception as exc:
            self._failed(t, exc)
        finally:
            self._end(t)

    def _answered(self, t: _Try, reply: Any) -> None:
        pod, batch = t.pod, t.batch
        t2 = self._clock()
        service = pod.timeline.finished(t.on_pod, t2)
        counts = [p.rows for p in batch]
        requested = batch[0].payload.body.outputs
        outputs = pod.client.decode_batch(reply, counts, t.target.batched, requested, pod.address)
        t3 = self._clock()
        self._pods.record_success(pod)
        rows = t.on_pod.rows
        if not pod.timed_by_pod:  # a shared pod's device time comes from its statistics
            self._cost.observe(rows, service)
        ns = [int((b - a) * 1e9) for a, b in ((t.sent, t2), (t.started, t.sent), (t2, t3))]
        self._stats.record_batch(rows, len(batch), *ns)
        for p, outs in zip(batch, outputs, strict=True):
            ticket: Ticket = p.payload
            if not ticket.future.done():
                self._stats.record_queued(ticket.queued_ns)
                ticket.future.set_result(outs)

    def _failed(self, t: _Try, exc: Exception) -> None:
        log.exception(
            "batch for pod %s failed",
            t.pod.address,
            exc_info=exc,
            extra={"request_ids": request_ids(t.batch)},
        )
        message = t.error = f"batch for pod {t.pod.address}: {exc}"
        fail_all(t.batch, InferError(Code.INTERNAL, message))
        self._end(t)

    def _cancel(self, t: _Try, call: Cancellable) -> None:
        call.cancel()
        t.error = "cancelled: every caller left"
        self._end(t)

    def _end(self, t: _Try) -> None:
        """Free the try's slot (once) and tell the scheduler."""
        if t.ended:
            return
        t.ended = True
        t.flight.cancel = None  # it held the try: no cycle outlives it (no work for the GC)
        if t.trace is not None:
            t.trace.end(t.error)
            t.trace = None
        pod = t.pod
        pod.timeline.finished(t.on_pod, self._clock())  # no-op once answered
        pod.in_flight -= 1
        pod.outstanding_rows -= t.on_pod.rows
        self.active -= 1
        self._done()


def _bound(t: _Try) -> TryBound:
    assert t.bound is not None  # set as its request is built
    return t.bound
