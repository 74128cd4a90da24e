"""The pod's executor: admits checked requests, runs them on the simulated devices in real time.

Each request is one batch. Its device slot comes from ``DevicePool`` (absolute start and end
times on the loop's monotonic clock) and the request sleeps until those deadlines with
``loop.call_at``, so the schedule never drifts. Failure injection, statistics and metrics are
applied here; the wire servers (gRPC, HTTP) only decode, call ``infer`` and encode.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import sys
import time
from collections.abc import Mapping

from loadtest.simpod.core import DevicePool, Faults, Outcome, Slot, batch_cost_s, choose_outcome
from loadtest.simpod.errors import Code, SimError
from loadtest.simpod.metrics import PodMetrics
from loadtest.simpod.models import VERSION, SimModel
from loadtest.simpod.stats import ModelStats
from loadtest.simpod.traces import TraceRecorder
from protos.infer import InferRequestBody, InferResponseBody

__all__ = ["CRASH_EXIT_CODE", "Engine", "sleep_until"]

CRASH_EXIT_CODE = 3
log = logging.getLogger("simpod")


async def sleep_until(deadline: float) -> None:
    """Sleep until ``deadline`` on the running loop's clock (returns at once if it has passed)."""
    loop = asyncio.get_running_loop()
    if deadline <= loop.time():
        return
    future: asyncio.Future[None] = loop.create_future()
    handle = loop.call_at(deadline, _wake, future)
    try:
        await future
    finally:
        handle.cancel()


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Engine:
    """The models, the devices and the bookkeeping of one pod."""

    def __init__(
        self,
        models: Mapping[str, SimModel],
        *,
        devices: int,
        fixed_ms: float,
        per_row_ms: float,
        faults: Faults,
        seed: int | None = None,
    ) -> None:
        self.models = dict(models)
        self.devices = devices
        self.fixed_ms = fixed_ms
        self.per_row_ms = per_row_ms
        self.faults = faults
        self.pool = DevicePool(devices)
        self.metrics = PodMetrics(
            list(self.models), devices, max(m.max_batch for m in models.values())
        )
        self.stats = {name: ModelStats(name=name, version=VERSION) for name in self.models}
        self.traces = TraceRecorder()  # the trace context calls brought (read at /sim/traceparents)
        self._rng = random.Random(seed)
        self._started = False
        self._draining = False
        self._active = 0  # requests admitted and not stalled, not yet answered
        self._idle = asyncio.Event()
        self._idle.set()
        self._stalled: set[asyncio.Future[None]] = set()

    @property
    def ready(self) -> bool:
        return self._started and not self._draining

    def set_started(self) -> None:
        self._started = True
        self.metrics.set_ready(self.ready)

    def begin_drain(self) -> None:
        """Fail readiness and refuse new requests; those admitted run to the end."""
        self._draining = True
        self.metrics.set_ready(False)

    async def drained(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for every admitted (non-stalled) request to finish."""
        if self._idle.is_set():
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def abort_stalled(self) -> int:
        """Answer every stalled request with UNAVAILABLE (at shutdown); returns how many."""
        for future in self._stalled:
            if not future.done():
                future.set_exception(SimError(Code.UNAVAILABLE, "the pod is shutting down"))
        return len(self._stalled)

    def model(self, name: str, version: str = "") -> SimModel:
        """The model ``name`` (version "" or "1"), or NOT_FOUND."""
        model = self.models.get(name)
        if model is None:
            raise SimError(Code.NOT_FOUND, f"Request for unknown model: '{name}' is not found")
        if version not in ("", VERSION):
            raise SimError(
                Code.NOT_FOUND,
                f"Request for unknown model: '{name}' version {version} is not found",
            )
        return model

    def model_ready(self, name: str, version: str = "") -> bool:
        try:
            self.model(name, version)
        except SimError:
            return False
        return self.ready

    async def infer(self, name: str, version: str, request: InferRequestBody) -> InferResponseBody:
        """Run one request as one batch; raises SimError (or CancelledError if the caller left)."""
        model = self.model(name, version)
        if not self.ready:
            raise SimError(Code.UNAVAILABLE, f"model '{name}' is not ready")
        try:
            batch = model.check(request)
        except SimError:
            self._fail(name, "REJECTED", 0.0)
            raise
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        outcome = choose_outcome(self.faults, self._rng)
        self.metrics.pending(name, 1)
        self.metrics.held(name, 1)
        slot: Slot | None = None
        started = False
        self._enter()
        try:
            if outcome is Outcome.STALL:
                self._leave()  # a stalled request does not hold up draining
                stall: asyncio.Future[None] = loop.create_future()
                self._stalled.add(stall)
                try:
                    await stall
                finally:
                    self._stalled.discard(stall)
            slot = self.pool.reserve(
                arrived, batch_cost_s(batch.rows, self.fixed_ms, self.per_row_ms)
            )
            await sleep_until(slot.start)
            started = True
            self.metrics.pending(name, -1)
            self.metrics.running(name, 1)
            if outcome is Outcome.CRASH:
                await sleep_until(slot.start + slot.duration / 2)
                self._crash(name)
            outputs = model.run(batch)
            await sleep_until(slot.end)
            if outcome is Outcome.ERROR:
                raise SimError(Code.INTERNAL, f"simulated failure of model '{name}' (--error-rate)")
        except asyncio.CancelledError:
            if slot is not None and not started:
                self.pool.release(slot, loop.time())
            self._fail(name, "CANCELED", loop.time() - arrived)
            raise
        except SimError:
            self._fail(name, "BACKEND", loop.time() - arrived)
            raise
        finally:
            self.metrics.held(name, -1)
            if not started:
                self.metrics.pending(name, -1)
            elif slot is not None:
                self.metrics.running(name, -1)
                self.metrics.device_busy(slot.device, slot.duration)
            if outcome is not Outcome.STALL:
                self._leave()
        assert slot is not None
        total = loop.time() - arrived
        queue_s = slot.start - arrived
        self.stats[name].record_success(batch.rows, queue_s, slot.duration, total, _wall_ms())
        self.metrics.success(name, batch.rows, queue_s, slot.duration, total)
        return InferResponseBody(name, outputs, VERSION, request.id)

    def _fail(self, name: str, reason: str, total_s: float) -> None:
        self.stats[name].record_failure(total_s, _wall_ms())
        self.metrics.failure(name, reason, total_s)

    def _enter(self) -> None:
        self._active += 1
        self._idle.clear()

    def _leave(self) -> None:
        self._active -= 1
        if self._active == 0:
            self._idle.set()

    def _crash(self, name: str) -> None:
        log.error("simulated crash in a batch of model '%s' (--crash-rate); exiting", name)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000
