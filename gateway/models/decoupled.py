"""A decoupled model's requests (0 or more responses each), passed through unbatched.

Each request goes alone to one pod with a free slot, on a ModelStreamInfer call of its own
(``gateway.backends.stream_call``), sent with ``triton_enable_empty_final_response`` so the pod
says when it is done (``triton_final_response``). Every response of the pod is relayed, in
order, with the caller's id and the gateway's model name; the empty final response only when the
caller asked for it too. The request holds its slot (``Pod.in_flight``, the count batches take
slots by) from the moment it is sent until its last response, so batches and decoupled calls
share a pod's slots; one waiting for a slot counts as queued for the autoscaler. The request's
deadline bounds the wait and the whole call; a call that breaks is an error naming the pod.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway.backends.stream_call import (
    EMPTY_FINAL,
    PodStream,
    StreamingPod,
    ends_request,
    is_empty_final,
)
from gateway.batching.policy import STREAM
from gateway.config import ModelSettings
from gateway.errors import Code, InferError
from gateway.observe.request import RequestInfo
from gateway.observe.tracing import start_batch
from gateway.routing.pick import pick_pod
from gateway.routing.pod_set import Pod, PodSet
from gateway.scheduler import Scheduler, SchedulerMetrics
from protos.infer import InferRequestBody
from protos.v2_grpc import encode_request

__all__ = ["DecoupledRelay", "Emit"]

Emit = Callable[[Any], Awaitable[None]]  # one ModelStreamInferResponse to the caller, in order
_POD_FAULTS = (Code.UNAVAILABLE, Code.INTERNAL)  # a broken call held against the pod


@dataclass(frozen=True, slots=True)
class _Relay:
    """One request on its way: the pod's request, and what its caller gets back."""

    request: Any  # the ModelInferRequest to the pod
    request_id: str  # the caller's, echoed in every response
    wants_empty_final: bool  # the caller asked for the empty final response itself
    emit: Emit


class DecoupledRelay:
    """One decoupled model's calls: a free slot found (or waited for), the pod's responses
    relayed, the slot given back."""

    def __init__(
        self,
        name: str,
        pods: PodSet,
        scheduler: Scheduler,
        metrics: SchedulerMetrics,
        rng: random.Random | None = None,
    ) -> None:
        self.name = name
        self._pods = pods
        self._scheduler = scheduler  # its stats, its unqueued count, its wake when a slot frees
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._change = asyncio.Event()

    def wake(self) -> None:
        """A slot freed or the pods changed: every request waiting for a slot looks again."""
        self._change.set()
        self._change = asyncio.Event()

    async def call(
        self,
        settings: ModelSettings,
        body: InferRequestBody,
        rows: int,
        deadline: float,
        version: str,
        info: RequestInfo | None,
        emit: Emit,
    ) -> Any | None:
        """Send ``body`` (validated, ``rows`` rows) to one pod and ``emit`` each of its
        responses but the last, which is returned (None when there is none to relay: the pod's
        empty final response the caller did not ask for). A failure raises InferError (after
        the responses already emitted)."""
        if settings.backend_protocol != "grpc":
            raise InferError(
                Code.UNIMPLEMENTED,
                f"model '{self.name}' is decoupled: it is served over its pods' gRPC "
                f"ModelStreamInfer, and its backend_protocol is {settings.backend_protocol}",
            )
        wants_empty_final = body.parameters.get(EMPTY_FINAL) is True
        request = encode_request(settings.target_model, body, version)
        request.parameters[EMPTY_FINAL].bool_param = True
        enqueued = time.monotonic()
        with self._scheduler.unqueued.waiting(rows):
            pod = await self._take(deadline, rows, enqueued)
        try:
            relay = _Relay(request, body.id, wants_empty_final, emit)
            return await self._relay(pod, relay, settings, rows, deadline, enqueued, info)
        finally:
            pod.in_flight -= 1
            pod.outstanding_rows -= rows
            self.wake()
            self._scheduler.wake()  # a batch waiting for a slot of these pods looks again

    async def _take(self, deadline: float, rows: int, enqueued: float) -> Pod:
        """A pod with a free slot, its slot taken; waits for one up to ``deadline``."""
        while True:
            pod = pick_pod(self._pods.free_pods(), self._rng)
            if pod is not None:
                pod.in_flight += 1
                pod.outstanding_rows += rows
                return pod
            now = time.monotonic()
            if now >= deadline:
                waited_ms = (now - enqueued) * 1000
                if not self._pods.ready_pods():
                    raise InferError(
                        Code.UNAVAILABLE,
                        f"no ready pod for model '{self.name}' (waited {waited_ms:.0f} ms)",
                    )
                raise InferError(
                    Code.DEADLINE_EXCEEDED,
                    f"request timed out after {waited_ms:.0f} ms waiting for a free slot of "
                    f"model '{self.name}'",
                    reason="timeout",
                )
            change = self._change
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(change.wait(), deadline - now)

    async def _relay(
        self,
        pod: Pod,
        relay: _Relay,
        settings: ModelSettings,
        rows: int,
        deadline: float,
        enqueued: float,
        info: RequestInfo | None,
    ) -> Any | None:
        client = pod.client
        if not isinstance(client, StreamingPod):
            raise InferError(Code.UNIMPLEMENTED, f"pod {pod.address} has no ModelStreamInfer")
        sent = time.monotonic()
        queued_ns = int((sent - enqueued) * 1e9)
        self._metrics.queue_time(sent - enqueued)
        self._metrics.batch_sent(pod.address, rows, 1, STREAM)
        batch = None
        if info is not None:
            info.sent(queued_ns, rows, pod.address)
            if info.trace is not None:
                batch = start_batch([info.trace], self.name, pod.address, rows, 1)
        timeout_s = max(0.0, deadline - sent)
        error: str | None = None
        try:
            async with asyncio.timeout(timeout_s):  # the deadline bounds emitting too
                stream = await client.stream_infer(
                    relay.request,
                    timeout_s,
                    settings.connect_timeout_ms / 1000,
                    None if batch is None else batch.traceparent,
                )
                try:
                    last = await self._read(stream, relay)
                finally:
                    stream.cancel()
        except TimeoutError:
            error = (
                f"pod {pod.address}: model '{self.name}' did not end its responses within the "
                f"request's deadline ({timeout_s * 1000:.0f} ms)"
            )
            raise InferError(Code.DEADLINE_EXCEEDED, error, reason="timeout") from None
        except InferError as exc:
            error = exc.message
            if exc.code in _POD_FAULTS:
                self._pods.record_failure(pod)
            raise
        except asyncio.CancelledError:
            error = "cancelled"
            raise
        finally:
            if batch is not None:
                batch.end(error)
        self._pods.record_success(pod)
        stats = self._scheduler.stats
        stats.record_queued(queued_ns)
        stats.record_batch(rows, 1, int((time.monotonic() - sent) * 1e9))
        return last

    async def _read(self, stream: PodStream, relay: _Relay) -> Any | None:
        """Relay the pod's responses up to its request's last (returned, not emitted)."""
        while True:
            response = await stream.read()
            if response is None:  # the pod closed its side: it is done with the request
                return None
            answer = response.infer_response
            answer.model_name = self.name
            answer.id = relay.request_id
            if ends_request(response):
                if is_empty_final(response) and not relay.wants_empty_final:
                    return None
                return response
            await relay.emit(response)
