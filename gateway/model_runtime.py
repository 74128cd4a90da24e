"""One served model at run time: its spec, its pods, and the way a request reaches one of them."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

from gateway.config import ModelSettings
from gateway.errors import Code, InferError
from gateway.metrics import GatewayMetrics
from gateway.model_spec import ModelSpec
from gateway.pods import Pod, PodSet
from gateway.routing import pick_pod
from gateway.stats import ModelStats
from protos import v2_grpc
from protos.infer import InferRequestBody, InferResponseBody

__all__ = ["ModelRuntime"]

log = logging.getLogger(__name__)


class ModelRuntime:
    """A model the gateway serves: validates requests against its spec and sends them to pods."""

    def __init__(
        self,
        settings: ModelSettings,
        *,
        metrics: GatewayMetrics,
        probe_interval_s: float,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.name
        self.spec: ModelSpec | None = None
        self.stats = ModelStats()
        self.in_flight = 0  # requests admitted and not yet answered
        self._metrics = metrics
        self._rng = rng or random.Random()
        self._fetching = False
        self.pods = PodSet(
            model=settings.target_model,
            addresses=list(settings.endpoints),
            probe_interval_s=probe_interval_s,
            probe_timeout_s=settings.connect_timeout_ms / 1000,
            on_ready=self._pod_ready,
        )
        self._batch_rows = metrics.batch_rows.labels(self.name)
        self._pod_batches = {
            p.address: metrics.batches.labels(self.name, p.address) for p in self.pods.pods
        }

    @property
    def ready(self) -> bool:
        """Ready when the spec is known and at least one pod is ready (v2 ModelReady)."""
        return self.spec is not None and any(p.ready for p in self.pods.pods)

    def start(self) -> None:
        self.pods.start()

    async def stop(self) -> None:
        await self.pods.stop()

    def deadline(self, timeout_s: float | None, now: float) -> float:
        """The request's deadline: the caller's timeout, capped by the model's default."""
        default = self.settings.default_timeout_ms / 1000
        return now + (default if timeout_s is None else min(timeout_s, default))

    async def infer(self, body: InferRequestBody, deadline: float, version: str = "") -> Any:
        """Validate and answer one request; every failure is an InferError.

        Returns the pod's ModelInferResponse message (outputs raw), renamed to this model.
        """
        spec = self.spec or await self._wait_ready(deadline)
        rows = spec.validate(body)
        request = v2_grpc.encode_request(self.settings.target_model, body, version)
        reply = await self._send(request, rows, deadline)
        reply.model_name = self.name
        reply.id = body.id
        return reply

    async def infer_body(
        self, body: InferRequestBody, deadline: float, version: str = ""
    ) -> InferResponseBody:
        """Like infer, decoded into tensors (for the HTTP front-end)."""
        return v2_grpc.decode_response(await self.infer(body, deadline, version))

    async def _wait_ready(self, deadline: float) -> ModelSpec:
        """Wait, up to the deadline, for the spec and a ready pod; else UNAVAILABLE."""
        while not self.ready:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InferError(Code.UNAVAILABLE, f"no ready pod for model '{self.name}'")
            try:
                await asyncio.wait_for(self.pods.changed(), remaining)
            except TimeoutError:
                continue
        assert self.spec is not None
        return self.spec

    async def _send(self, request: Any, rows: int, deadline: float) -> Any:
        """Send to a ready pod; a pod that cannot be reached is marked down and another tried."""
        tried: set[str] = set()
        while True:
            candidates = [p for p in self.pods.ready_pods() if p.address not in tried]
            pod = pick_pod(candidates, self._rng)
            if pod is None:
                if tried:
                    raise InferError(Code.UNAVAILABLE, f"no ready pod for model '{self.name}'")
                await self._wait_ready(deadline)
                continue
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise InferError(Code.DEADLINE_EXCEEDED, "deadline exceeded before sending")
            try:
                return await self._call(pod, request, rows, timeout)
            except InferError as exc:
                if exc.code is not Code.UNAVAILABLE:
                    raise
                self.pods.set_ready(pod, False)
                tried.add(pod.address)
                log.warning("pod %s unavailable: %s", pod.address, exc.message)

    async def _call(self, pod: Pod, request: Any, rows: int, timeout: float) -> Any:
        pod.in_flight += 1
        pod.outstanding_rows += rows
        start = time.perf_counter_ns()
        try:
            reply = await pod.client.infer(request, timeout)
        finally:
            pod.in_flight -= 1
            pod.outstanding_rows -= rows
        self._pod_batches[pod.address].inc()
        self._batch_rows.observe(rows)
        self.stats.record_batch(rows, 1, time.perf_counter_ns() - start)
        return reply

    def _pod_ready(self, pod: Pod) -> None:
        if self.spec is None and not self._fetching:
            self._fetching = True
            asyncio.get_running_loop().create_task(self._fetch_spec(pod))

    async def _fetch_spec(self, pod: Pod) -> None:
        """Learn the model from a pod: ModelConfig, or ModelMetadata when it has no config."""
        timeout = self.settings.connect_timeout_ms / 1000
        try:
            config = await pod.client.model_config(timeout)
            if config is not None:
                spec = ModelSpec.from_config(self.name, config, self.settings.max_batch_size)
            else:
                metadata = await pod.client.model_metadata(timeout)
                spec = ModelSpec.from_metadata(self.name, metadata, self.settings.max_batch_size)
        except Exception as exc:  # any failure: the pod is not usable yet
            log.warning("cannot read model %s from pod %s: %s", self.name, pod.address, exc)
            self.pods.set_ready(pod, False)
        else:
            self.spec = spec
            log.info(
                "model %s: max_batch_size %d, inputs %s, outputs %s (from %s)",
                self.name,
                spec.max_batch_size,
                list(spec.inputs),
                list(spec.outputs),
                pod.address,
            )
            self.pods.notify()
        finally:
            self._fetching = False
