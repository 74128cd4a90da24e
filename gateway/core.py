"""The gateway's core behind both front-ends: the served models and what the v2 API asks of them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

from gateway import __version__
from gateway.config import GatewayConfig, ModelSettings
from gateway.errors import Code, InferError
from gateway.memory_budget import MemoryBudget
from gateway.metrics import GatewayMetrics, ModelState, StateCollector, request_ended
from gateway.models.decoupled import Emit
from gateway.models.runtime import ModelRuntime
from gateway.models.spec import ModelSpec
from gateway.observe.observer import RequestObserver
from gateway.observe.request import RequestInfo
from gateway.observe.tracing import SpanProcessor, Tracing
from gateway.tenants.directory import TenantDirectory
from protos import grpc_service_pb2 as pb
from protos.infer import InferRequestBody, InferResponseBody

__all__ = ["EXTENSIONS", "SERVER_NAME", "SERVER_VERSION", "Gateway"]

T = TypeVar("T")
SERVER_NAME = "inference-gateway"
SERVER_VERSION = __version__
EXTENSIONS = ("binary_tensor_data", "parameters", "statistics", "model_configuration")


class Gateway:
    """Served models by name, server health and metadata, and request accounting."""

    def __init__(
        self,
        config: GatewayConfig,
        metrics: GatewayMetrics | None = None,
        span_processor: SpanProcessor | None = None,  # tests and benches: spans go here
    ) -> None:
        self.config = config
        self.metrics = metrics or GatewayMetrics()
        self.tracing = Tracing(config.tracing, span_processor)
        self.tenants = TenantDirectory(config.tenants, config.auth)
        self.request_observer = RequestObserver.of(
            config.access_log,
            self.tracing,
            self.metrics.access_log_dropped,
            request_ended(self.metrics),
        )
        self.budget = MemoryBudget(config.server.memory_budget_bytes)  # every request's bytes
        self.models = {m.name: self._runtime(m) for m in config.models}
        self.live = True
        self.ready = False
        self._observers: dict[tuple[str, str], _Observer] = {}
        self.metrics.registry.register(StateCollector(self._states))

    def _runtime(self, settings: ModelSettings) -> ModelRuntime:
        probe_s = self.config.server.probe_interval_ms / 1000
        runtime = ModelRuntime(
            settings, metrics=self.metrics, probe_interval_s=probe_s, tenants=self.tenants
        )
        runtime.pods.co_served = partial(self._serves_elsewhere, runtime)
        return runtime

    def _serves_elsewhere(self, runtime: ModelRuntime, address: str) -> bool:
        """Whether a pod of ``runtime`` also serves another model of this gateway (one pod,
        several models: its devices run the others' batches too)."""
        return any(r is not runtime and r.pods.get(address) for r in self.models.values())

    async def apply(self, new: GatewayConfig) -> list[str]:
        """Swap in a new config (live reload): models are updated in place, keeping every
        queued request; new models start; removed ones stop. Returns what changed.

        The server section (ports, limits) and the autoscaler section (the load reporter's
        address and pace) are fixed at start: changes to them are reported and not applied.
        """
        changes: list[str] = []
        if new.tenants != self.config.tenants or new.auth != self.config.auth:
            changes.extend(self.tenants.update(new.tenants, new.auth))  # first: it may refuse
        if new.server != self.config.server:
            changes.append("server: changes need a restart; keeping the running server settings")
            new = new.model_copy(update={"server": self.config.server})
        if new.autoscaler != self.config.autoscaler:
            changes.append(
                "autoscaler: changes need a restart; keeping the running load reporter's settings"
            )
            new = new.model_copy(update={"autoscaler": self.config.autoscaler})
        if new.tracing != self.config.tracing:
            changes.extend(self.tracing.update(new.tracing) or ["tracing: sample_ratio changed"])
            new = new.model_copy(update={"tracing": self.tracing.settings})
        if new.access_log != self.config.access_log:
            self.request_observer.access.sampler.update(new.access_log)
            changes.extend(
                _diff(
                    {"access_log": self.config.access_log.model_dump()},
                    {"access_log": new.access_log.model_dump()},
                )
            )
        old = {m.name: m for m in self.config.models}
        for settings in new.models:
            before = old.get(settings.name)
            if before is None:
                runtime = self.models[settings.name] = self._runtime(settings)
                runtime.start()
                changes.append(f"model {settings.name}: added")
            elif settings != before:
                diff = _diff(before.model_dump(), settings.model_dump())
                changes.append(f"model {settings.name}: " + ", ".join(diff))
                self.models[settings.name].update(settings)
        for name in old.keys() - {m.name for m in new.models}:
            runtime = self.models.pop(name)
            await runtime.stop()
            changes.append(f"model {name}: removed")
        self.config = new
        return changes

    async def start(self) -> None:
        for runtime in self.models.values():
            runtime.start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        await asyncio.gather(*(m.stop() for m in self.models.values()))
        await asyncio.to_thread(self.tracing.shutdown)  # the spans held are exported first

    def model(self, name: str, version: str = "") -> ModelRuntime:
        """The model ``name`` (at ``version``, when one is asked for); NOT_FOUND when the gateway
        does not serve it, or its pods have said which versions they serve and this is not one."""
        runtime = self.models.get(name)
        if runtime is None:
            raise InferError(Code.NOT_FOUND, f"unknown model '{name}'")
        spec = runtime.spec
        if version and spec is not None and version not in spec.versions:
            raise InferError(
                Code.NOT_FOUND,
                f"model '{name}' has no version '{version}' (served: {', '.join(spec.versions)})",
            )
        return runtime

    def spec(self, name: str, version: str = "") -> ModelSpec:
        """The model's spec; UNAVAILABLE until a pod has told the gateway what the model is."""
        runtime = self.model(name, version)
        if runtime.spec is None:
            raise InferError(
                Code.UNAVAILABLE, f"model '{name}' has no ready pod yet; its metadata is unknown"
            )
        return runtime.spec

    def server_metadata(self) -> Any:
        return pb.ServerMetadataResponse(
            name=SERVER_NAME, version=SERVER_VERSION, extensions=list(EXTENSIONS)
        )

    def statistics(self, name: str = "", version: str = "") -> Any:
        """ModelStatistics of one model, or of all with an empty name."""
        runtimes = [self.model(name, version)] if name else list(self.models.values())
        return _statistics(runtimes, version)

    def statistics_of(self, names: list[str]) -> Any:
        """ModelStatistics of the served models among ``names`` (a tenant's)."""
        return _statistics([self.models[n] for n in sorted(names) if n in self.models])

    def observer(self, model: str, protocol: str) -> _Observer:
        key = (model, protocol)
        found = self._observers.get(key)
        if found is None:
            found = self._observers[key] = _Observer(self.metrics, model, protocol)
        return found

    async def infer(
        self,
        protocol: str,
        name: str,
        version: str,
        body: InferRequestBody,
        timeout_s: float | None,
        info: RequestInfo | None = None,
    ) -> InferResponseBody:
        """Answer one inference request, accounting for it (and filling in ``info``)."""

        def call(runtime: ModelRuntime, deadline: float) -> Awaitable[InferResponseBody]:
            return runtime.infer(body, deadline, version, info)

        return await self._accounted(protocol, name, version, body, timeout_s, info, call)

    async def infer_decoupled(
        self,
        protocol: str,
        name: str,
        version: str,
        body: InferRequestBody,
        timeout_s: float | None,
        info: RequestInfo | None,
        emit: Emit,
    ) -> Any | None:
        """Pass one request of a decoupled model through unbatched (``emit`` takes each of
        its responses but the last, returned; see ``gateway.models.decoupled``), accounted as
        ``infer`` accounts one; a last response that is the pod's error counts as failed."""

        def call(runtime: ModelRuntime, deadline: float) -> Awaitable[Any | None]:
            return runtime.infer_decoupled(body, deadline, version, info, emit)

        def failed(last: Any | None) -> bool:
            return last is not None and bool(last.error_message)

        return await self._accounted(protocol, name, version, body, timeout_s, info, call, failed)

    async def _accounted(
        self,
        protocol: str,
        name: str,
        version: str,
        body: InferRequestBody,
        timeout_s: float | None,
        info: RequestInfo | None,
        call: Callable[[ModelRuntime, float], Awaitable[T]],
        failed: Callable[[T], bool] = lambda _: False,
    ) -> T:
        """``call`` the model's runtime with the request's deadline, counting the request,
        its latency and how it ended."""
        start = time.perf_counter_ns()
        runtime = self.model(name, version)
        if info is not None:
            info.model, info.body_id = name, body.id
        timeout_s = _timeout_param(body, timeout_s)
        observer = self.observer(name, protocol)
        observer.requests.inc()
        runtime.requests_total += 1
        runtime.in_flight += 1
        ok = False
        try:
            reply = await call(runtime, runtime.deadline(timeout_s, time.monotonic()))
            ok = not failed(reply)
            if not ok:
                observer.failed(Code.INTERNAL)
            return reply
        except InferError as exc:
            observer.failed(exc.code)
            raise
        except asyncio.CancelledError:
            observer.failed(Code.CANCELLED)
            raise
        finally:
            runtime.in_flight -= 1
            elapsed = time.perf_counter_ns() - start
            observer.latency.observe(elapsed / 1e9)
            runtime.stats.record_request(ok, elapsed)

    def _states(self) -> list[ModelState]:
        now = time.monotonic()
        return [
            ModelState(r.name, r.in_flight, r.scheduler.state(now), r.signatures)
            for r in self.models.values()
        ]


def _statistics(runtimes: list[ModelRuntime], version: str = "") -> Any:
    return pb.ModelStatisticsResponse(
        model_stats=[r.stats.to_proto(r.name, version or r.version) for r in runtimes]
    )


def _diff(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """Each changed field as 'path: old -> new'."""
    out: list[str] = []
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_diff(a, b, f"{prefix}{key}."))
        else:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out


def _timeout_param(body: InferRequestBody, timeout_s: float | None) -> float | None:
    """The tighter of the transport's timeout and the request's ``timeout`` parameter (µs)."""
    value = body.parameters.get("timeout")
    if value is None:
        return timeout_s
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InferError(Code.INVALID_ARGUMENT, "parameter 'timeout' must be microseconds (int)")
    if value == 0:
        return timeout_s
    param_s = value / 1e6
    return param_s if timeout_s is None else min(param_s, timeout_s)


class _Observer:
    """The metric children for one (model, protocol), bound once."""

    def __init__(self, metrics: GatewayMetrics, model: str, protocol: str) -> None:
        self._metrics = metrics
        self._labels = (model, protocol)
        self.requests = metrics.requests.labels(model, protocol)
        self.latency = metrics.latency.labels(model, protocol)

    def failed(self, code: Code) -> None:
        self._metrics.failures.labels(*self._labels, code.triton_reason, code.reason).inc()
