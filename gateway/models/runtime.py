"""One served model at run time: its spec, its pods, and its scheduler."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Mapping
from typing import Any

from gateway.backends.backend import PodBackend, client_factory
from gateway.config import ModelSettings
from gateway.discovery.model_discovery import ModelDiscovery
from gateway.discovery.store import EndpointSnapshot
from gateway.errors import Code, InferError
from gateway.metrics import GatewayMetrics, ModelMetrics
from gateway.models.decoupled import DecoupledRelay, Emit
from gateway.models.describe import Descriptions, describe_pod, signature_text
from gateway.models.device_poller import DeviceTimePoller
from gateway.models.sizing import pod_devices, pod_slots
from gateway.models.spec import STREAM, ModelSpec
from gateway.observe.request import RequestInfo
from gateway.routing.forward import Forwarder, handed_back_error
from gateway.routing.outlier import OutlierDetector, OutlierPolicy
from gateway.routing.pod_set import Pod, PodSet
from gateway.routing.retry_budget import RetryBudget
from gateway.scheduler import Scheduler
from gateway.stats import ModelStats
from gateway.tasks import cancel_and_wait
from gateway.tenants.directory import Tenant, TenantDirectory
from protos.heads import DecodeLimits, RequestHead
from protos.infer import InferRequestBody, InferResponseBody
from protos.tensors import Tensor

__all__ = ["ModelRuntime", "pod_devices", "pod_slots"]

log = logging.getLogger(__name__)


def _rows_of(body: InferRequestBody) -> int:
    """A request's rows before its spec is known: its first input's batch dimension, else 1."""
    shape = body.inputs[0].shape if body.inputs else ()
    return max(1, shape[0]) if shape else 1


def _size_pod(pod: Pod, settings: ModelSettings, pod_config: Any) -> None:
    pod.slots = pod_slots(settings, pod_config)
    pod.timeline.devices = pod_devices(settings, pod_config)


def _outlier_policy(settings: ModelSettings) -> OutlierPolicy:
    return OutlierPolicy(**settings.outlier_detection.model_dump())  # the same fields


class ModelRuntime:
    """A model the gateway serves: validates requests against its spec and schedules them."""

    def __init__(
        self,
        settings: ModelSettings,
        *,
        metrics: GatewayMetrics,
        probe_interval_s: float,
        rng: random.Random | None = None,
        tenants: TenantDirectory | None = None,
    ) -> None:
        self.settings = settings
        self.tenants = tenants  # quotas and priority ceilings of the callers
        self.name = settings.name
        self.spec: ModelSpec | None = None
        self.stats = ModelStats()
        self.in_flight = 0  # requests admitted and not yet answered
        self.requests_total = 0  # inference requests received since start
        self._describing: set[str] = set()  # pods being described now
        self._descriptions = Descriptions(self.name)
        self.pods = PodSet(
            model=settings.target_model,
            addresses=list(settings.endpoints),
            probe_interval_s=probe_interval_s,
            probe_timeout_s=settings.connect_timeout_ms / 1000,
            on_ready=self._pod_ready,
            on_change=self._pods_changed,
            client_factory=self._client,
            outliers=OutlierDetector(_outlier_policy(settings)),
            retry_budget=RetryBudget(
                percent=settings.retry_budget.percent, floor=settings.retry_budget.min_retries
            ),
        )
        self.metrics = ModelMetrics(metrics, self.name)
        self.scheduler = Scheduler(
            settings=settings, pods=self.pods, stats=self.stats, metrics=self.metrics, rng=rng
        )
        self.decoupled = DecoupledRelay(self.name, self.pods, self.scheduler, self.metrics, rng)
        # to the replicas owning the pods, when this one owns none (gateway.routing.forward)
        self.forwarder = Forwarder(settings, probe_interval_s=probe_interval_s, rng=rng)
        self.discovery: ModelDiscovery | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._poller: asyncio.Task[None] | None = None  # device time of pods shared with peers
        # The body decode() checked last, against which spec, and its rows: infer() takes it
        # at once (nothing runs between the two), so it is never validated twice.
        self._checked: tuple[InferRequestBody, ModelSpec, int] | None = None

    def _client(self, address: str, model: str) -> PodBackend:
        """A new pod's client, on the model's backend protocol."""
        settings = self.settings  # over TLS with its backend_tls
        return client_factory(settings.backend_protocol, settings.backend_tls)(address, model)

    @property
    def version(self) -> str:
        """The version the pods serve (their metadata's first), "1" until known."""
        return self.spec.versions[0] if self.spec and self.spec.versions else "1"

    @property
    def ready(self) -> bool:
        """Ready when the spec is known and at least one pod is ready (v2 ModelReady)."""
        return self.spec is not None and any(p.ready for p in self.pods.pods)

    @property
    def signatures(self) -> int:
        """Distinct signatures among the ready pods that have described the model."""
        return len(self._descriptions.distinct(self._ready_addresses()))

    def _ready_addresses(self) -> set[str]:
        return {p.address for p in self.pods.pods if p.ready}

    def start(self) -> None:
        self.pods.start()
        self.scheduler.start()
        self.forwarder.start()
        self._start_discovery()
        poller = DeviceTimePoller(self.pods, self.scheduler.cost.observe)
        self._poller = asyncio.get_running_loop().create_task(poller.run())

    async def stop(self) -> None:
        if self.discovery is not None:
            await self.discovery.stop()
        if self._poller is not None:
            await cancel_and_wait(self._poller)
        await self.forwarder.stop()  # first: what it hands back may still be served here
        await self.scheduler.stop()
        await self.pods.stop()

    def _start_discovery(self) -> None:
        """Watch the model's Service, if it has one; each endpoint view goes to the PodSet
        (the first one compared in full, so a restarted watch drops what it no longer lists)."""
        self.discovery = None
        if self.settings.discovery is None:
            return
        first = [True]

        def publish(snapshot: EndpointSnapshot, changed: frozenset[str]) -> None:
            if self.discovery is not discovery:
                return  # a watch being stopped after a reload
            self.pods.set_endpoints(snapshot.endpoints, None if first[0] else changed)
            first[0] = False

        discovery = self.discovery = ModelDiscovery(self.settings.discovery, publish)
        discovery.start()

    def update(self, settings: ModelSettings) -> None:
        """Apply new settings for this model (live reload); queued requests stay queued."""
        rewatch = settings.discovery != self.settings.discovery
        rewire = (settings.backend_protocol, settings.backend_tls) != (
            self.settings.backend_protocol,
            self.settings.backend_tls,
        )
        self.settings = settings
        if rewire:  # every pod anew on the new wire; batches in flight end on the old one
            self.pods.set_addresses([])
            self.pods.set_endpoints({})
            rewatch = rewatch or settings.discovery is not None
        self.pods.set_addresses(list(settings.endpoints))
        self.pods.outliers.policy = _outlier_policy(settings)  # ejections in force stay
        self.pods.retry_budget.percent = settings.retry_budget.percent
        self.pods.retry_budget.floor = settings.retry_budget.min_retries
        if rewatch:
            if self.discovery is not None:
                stopping = asyncio.get_running_loop().create_task(self.discovery.stop())
                self._background.add(stopping)
                stopping.add_done_callback(self._background.discard)
            if settings.discovery is None:
                self.pods.set_endpoints({})
            self._start_discovery()
        self.scheduler.update(settings)
        self.forwarder.update(settings, self.pods.forward_to())
        if self.spec is not None:
            self._apply_spec(self.spec)

    def set_peers(self, me: str, replicas: Mapping[str, str]) -> None:
        """The gateway replicas sharing the pods, with their peer addresses (from the
        coordinator): the pods' shares, and the owners requests are sent on to."""
        self.pods.set_peers(me, replicas)
        self.forwarder.update(self.settings, self.pods.forward_to())

    def deadline(self, timeout_s: float | None, now: float) -> float:
        """The request's deadline: the caller's timeout, capped by the model's default."""
        default = self.settings.default_timeout_ms / 1000
        return now + (default if timeout_s is None else min(timeout_s, default))

    def config(self) -> Any:
        """The model's config in force: the pod's, with the gateway's batching."""
        if self.spec is None:
            raise InferError(
                Code.UNAVAILABLE, f"model '{self.name}' has no ready pod yet; its config is unknown"
            )
        return self.spec.config(self.settings.dynamic_batching)

    def decode(
        self, head: RequestHead, limits: DecodeLimits, endpoint: str = "http"
    ) -> InferRequestBody:
        """Decode a request's tensors once its head fits the model and the decode caps: a
        request the model cannot take (on ``endpoint``: see ``ModelSpec.validate``) is refused
        before any data is converted. Before a pod has described the model only the caps
        apply (``infer`` checks the model then)."""
        spec = self.spec
        rows = spec.validate(head, endpoint) if spec is not None else 0
        head.check(limits)
        body = head.decode()
        if spec is not None:  # the body's tensors are the head's: checked, not again in infer
            self._checked = (body, spec, rows)
        return body

    async def infer(
        self,
        body: InferRequestBody,
        deadline: float,
        version: str = "",
        info: RequestInfo | None = None,
    ) -> InferResponseBody:
        """Validate, queue and answer one request; every failure is an InferError."""
        spec = await self.described(deadline, body)
        rows = self._admit(body, spec, info.protocol if info is not None else "http", info)
        outputs = await self._submit(body, rows, deadline, version, info)
        return InferResponseBody(self.name, outputs, version, body.id)

    def _submit(
        self,
        body: InferRequestBody,
        rows: int,
        deadline: float,
        version: str,
        info: RequestInfo | None,
    ) -> Awaitable[list[Tensor]]:
        """To the local scheduler, or on to a replica owning the pods when this one owns none
        (and the request was not sent on already)."""
        owners = self.pods.forward_to()
        keyed = self.tenants is not None and self.tenants.enabled  # a key does not go on
        if owners and not keyed and not (info is not None and info.forwarded):
            forwarder = self.forwarder
            forwarder.update(self.settings, owners)
            if forwarder.usable:
                return self._forward(body, rows, deadline, version, info)
        return self.scheduler.submit(body, rows, deadline, version, info)

    async def _forward(
        self,
        body: InferRequestBody,
        rows: int,
        deadline: float,
        version: str,
        info: RequestInfo | None,
    ) -> list[Tensor]:
        """On to an owner; when none takes it: to the local pods."""
        try:
            return await self.forwarder.submit(body, rows, deadline, version, info)
        except InferError as exc:
            if not handed_back_error(exc):
                raise
        return await self.scheduler.submit(body, rows, deadline, version, info)

    def _admit(
        self, body: InferRequestBody, spec: ModelSpec, endpoint: str, info: RequestInfo | None
    ) -> int:
        """The request's rows (checked by ``decode`` against ``spec``, else now), taken by its
        tenant's quota."""
        checked, self._checked = self._checked, None
        if checked is not None and checked[0] is body and checked[1] is spec:
            rows = checked[2]
        else:
            rows = spec.validate(body, endpoint)
        if info is not None:
            info.rows = rows
            if info.tenant is not None and self.tenants is not None:
                self._admit_tenant(info.tenant, body, rows)
        return rows

    def _admit_tenant(self, tenant: Tenant, body: InferRequestBody, rows: int) -> None:
        """The tenant's quota takes the rows (else 429), and its priority ceiling holds."""
        assert self.tenants is not None
        self.tenants.admit_rows(tenant, rows)
        batching = self.settings.dynamic_batching
        if tenant.max_priority is None or batching is None or not batching.priority_levels:
            return
        asked = body.parameters.get("priority", 0)
        if isinstance(asked, int) and not isinstance(asked, bool):
            level = asked or batching.default_priority_level or batching.priority_levels
            ceiling = self.tenants.priority(tenant, level)  # never past the model's lowest
            body.parameters["priority"] = min(ceiling, max(level, batching.priority_levels))

    async def described(self, deadline: float, body: InferRequestBody) -> ModelSpec:
        """The spec, once a pod has described the model (up to the deadline, else UNAVAILABLE;
        the request counted as queued while it waits)."""
        if self.spec is None:
            with self.scheduler.unqueued.waiting(_rows_of(body)):
                while self.spec is None:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise InferError(Code.UNAVAILABLE, f"no ready pod for model '{self.name}'")
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.pods.changed(), remaining)
        return self.spec

    async def infer_decoupled(
        self,
        body: InferRequestBody,
        deadline: float,
        version: str,
        info: RequestInfo | None,
        emit: Emit,
    ) -> Any | None:
        """A decoupled model's request, unbatched (``gateway.models.decoupled``): each of its
        responses but the last emitted, the last returned (None: none to relay)."""
        spec = await self.described(deadline, body)
        rows = self._admit(body, spec, STREAM, info)
        return await self.decoupled.call(self.settings, body, rows, deadline, version, info, emit)

    def _pods_changed(self) -> None:
        """The routing view changed: wake the scheduler; a pod gone may settle a signature."""
        self.scheduler.wake()
        self.decoupled.wake()
        if self.spec is not None:
            chosen = self._descriptions.choose(self.spec, self.spec, self._ready_addresses())
            if chosen is not self.spec:
                self._use_spec(chosen)

    def _pod_ready(self, pod: Pod) -> None:
        """A pod became ready (again): describe it anew."""
        if self.spec is not None:
            _size_pod(pod, self.settings, self.spec.pod_config)
        self._descriptions.forget(pod.address)
        if pod.address in self._describing:
            return
        self._describing.add(pod.address)
        fetch = asyncio.get_running_loop().create_task(self._fetch_spec(pod))
        self._background.add(fetch)  # keep a reference: the loop holds tasks weakly
        fetch.add_done_callback(self._background.discard)

    def _apply_spec(self, spec: ModelSpec) -> None:
        max_batch = spec.max_batch_size
        self.scheduler.max_batch_size = max_batch
        for pod in self.pods.pods:
            _size_pod(pod, self.settings, spec.pod_config)

    def _use_spec(self, spec: ModelSpec) -> None:
        self._apply_spec(spec)
        self.spec = spec

    async def _fetch_spec(self, pod: Pod) -> None:
        """Learn the model from a pod: ModelConfig, or ModelMetadata when it has no config."""
        try:
            spec = await describe_pod(pod, self.name, self.settings)
        except Exception as exc:  # any failure: the pod is not usable yet
            log.warning("cannot read model %s from pod %s: %s", self.name, pod.address, exc)
            self._describing.discard(pod.address)
            self.pods.set_ready(pod, False)
            return
        self._describing.discard(pod.address)
        self._descriptions.record(pod.address, spec)
        first = self.spec is None
        chosen = self._descriptions.choose(self.spec, spec, self._ready_addresses())
        if chosen is not self.spec:
            self._use_spec(chosen)
        _size_pod(pod, self.settings, spec.pod_config)
        if first:
            log.info(
                "model %s: %s, %d slots per pod (from %s)",
                self.name,
                signature_text(spec),
                pod.slots,
                pod.address,
            )
            self.pods.notify()
