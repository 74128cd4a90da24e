"""The gateway's side of autoscaling: per-model load, streamed to the autoscaler and exported.

Every ``report_interval_ms`` the reporter streams one LoadReport per model to each autoscaler
replica (protos/autoscaler.proto; ``gateway.report_stream`` is one stream): the one configured
``address``, or every replica behind the autoscaler's headless Service, found through its
EndpointSlices, so that whichever replica leads has every gateway's whole load (and so does a
standby that takes over). It runs in its own tasks and never blocks serving: when a replica is
away, no report is made to it (the counters keep accumulating into its next one) and its stream
is retried with capped exponential backoff and jitter. On stop each stream sends a ``final``
report per model, so the autoscaler stops counting this replica without holding for it. The
replies list the gateway replicas that share each model's pods; ``gateway_peers`` hands that
list to the model's pods, which divide their slots by it (gateway.routing.shares).

The same signals are exported as Prometheus gauges (``gateway_load_*``) by
``gateway.load_metrics.LoadCollector``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gateway.backoff import Backoff
from gateway.discovery.model_discovery import ModelDiscovery
from gateway.discovery.peers import ServicePeers
from gateway.discovery.store import EndpointSnapshot
from gateway.report_stream import ReportStream
from gateway.tasks import cancel_and_wait
from protos import autoscaler_pb2 as pb

if TYPE_CHECKING:
    from gateway.config import AutoscalerSettings, GatewayConfig
    from gateway.core import Gateway
    from gateway.models.runtime import ModelRuntime
    from gateway.scheduler_state import PodView

__all__ = [
    "LoadReporter",
    "ModelSnapshot",
    "ReportBuilder",
    "advertised_address",
    "default_replica_id",
    "gateway_snapshots",
    "snapshot",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModelSnapshot:
    """One model's levels now and its counters since the gateway started."""

    model: str
    queued_requests: int
    queued_rows: int
    inflight_rows: int
    arrival_rows_per_s: float
    arrived_requests_total: int
    completed_rows_total: int
    rejected_requests_total: int
    fixed_s: float | None
    per_row_s: float | None
    slots_per_pod: int  # in-flight batches: the devices plus one waiting on the pod
    devices_per_pod: int  # batches a pod runs at once: what its throughput scales with
    max_batch_size: int
    ready_endpoints: int
    starting_endpoints: int  # neither ready nor terminating
    terminating_endpoints: int  # Kubernetes says terminating
    sharing_replicas: int = 1  # gateway replicas on these pods, as the coordinator lists them
    own_slots: int = 0  # in-flight batches this replica may hold on its ready pods, in all
    forwarded_requests_total: int = 0  # sent on to the replicas owning the pods


def own_slots(limits: dict[str, int] | None, pods: Iterable[PodView]) -> int:
    """The batches this replica may hold on ``pods`` in all: its shares, else every slot."""
    if limits is None:
        return sum(p.slots for p in pods)
    return sum(limits.get(p.address, 0) for p in pods)


def snapshot(runtime: ModelRuntime, now: float) -> ModelSnapshot:
    """One model's signals, from its scheduler's state and its request count."""
    s = runtime.scheduler.state(now)
    ready = s.ready_pods
    forwarder = runtime.forwarder
    forwarding = bool(runtime.pods.forward_to()) and forwarder.usable
    return ModelSnapshot(  # by keyword: many adjacent int fields, a swap would go unseen
        model=runtime.name,
        queued_requests=s.queued_requests,
        queued_rows=s.queued_rows,
        inflight_rows=s.inflight_rows,
        arrival_rows_per_s=s.arrival_rows_per_s,
        arrived_requests_total=runtime.requests_total
        - forwarder.forwarded_total
        + forwarder.handed_back_total,
        completed_rows_total=s.completed_rows_total,
        rejected_requests_total=s.rejected_requests_total,
        fixed_s=s.fixed_s,
        per_row_s=s.per_row_s,
        slots_per_pod=max((p.slots for p in ready), default=0),
        devices_per_pod=max((p.devices for p in ready), default=0),
        max_batch_size=s.max_batch_size,
        ready_endpoints=len(ready),
        starting_endpoints=len(s.starting_pods),
        terminating_endpoints=len(s.terminating_pods),
        sharing_replicas=max(1, len(runtime.pods.shares.replicas)),
        own_slots=0 if forwarding else own_slots(runtime.pods.limits(ready), ready),
        forwarded_requests_total=forwarder.forwarded_total,
    )


class ReportBuilder:
    """Turns snapshots into LoadReports: counters become deltas since the model's last report.

    A model's first snapshot only sets the baseline (its deltas are 0, its interval 0).
    """

    def __init__(self, replica_id: str, peer_address: str = "") -> None:
        self.replica_id = replica_id
        self.peer_address = peer_address
        self._last: dict[str, tuple[float, ModelSnapshot, int]] = {}  # model: (time, snap, seq)

    def build(self, snap: ModelSnapshot, now: float) -> Any:
        prev = self._last.get(snap.model)
        seq = prev[2] + 1 if prev else 1
        base = prev[1] if prev else snap
        msg = pb.LoadReport(
            replica_id=self.replica_id,
            model=snap.model,
            seq=seq,
            interval_s=now - prev[0] if prev else 0.0,
            queued_requests=snap.queued_requests,
            queued_rows=snap.queued_rows,
            inflight_rows=snap.inflight_rows,
            arrived_requests=max(0, snap.arrived_requests_total - base.arrived_requests_total),
            arrival_rows_per_s=snap.arrival_rows_per_s,
            completed_rows=max(0, snap.completed_rows_total - base.completed_rows_total),
            rejected_requests=max(0, snap.rejected_requests_total - base.rejected_requests_total),
            slots_per_pod=snap.slots_per_pod,
            devices_per_pod=snap.devices_per_pod,
            max_batch_size=snap.max_batch_size,
            ready_endpoints=snap.ready_endpoints,
            starting_endpoints=snap.starting_endpoints,
            terminating_endpoints=snap.terminating_endpoints,
            peer_address=self.peer_address,
        )
        if snap.fixed_s is not None and snap.per_row_s is not None:
            msg.batch_cost.fixed_s = snap.fixed_s
            msg.batch_cost.per_row_s = snap.per_row_s
        self._last[snap.model] = (now, snap, seq)
        return msg

    def build_all(self, snaps: Iterable[ModelSnapshot], now: float) -> list[Any]:
        """Reports for these models, plus a final one for each model no longer served."""
        snaps = list(snaps)
        gone = self._last.keys() - {s.model for s in snaps}
        out = [self.build(s, now) for s in snaps]
        for model in sorted(gone):
            out.append(self.final(model))
            del self._last[model]
        return out

    def final(self, model: str) -> Any:
        prev = self._last.get(model)
        return pb.LoadReport(
            replica_id=self.replica_id, model=model, seq=prev[2] + 1 if prev else 1, final=True
        )

    def finals(self) -> list[Any]:
        return [self.final(m) for m in sorted(self._last)]


def advertised_address(config: GatewayConfig, environ: Mapping[str, str]) -> str:
    """Where the other replicas may send this one requests (``AutoscalerSettings.peer_address``);
    none while callers need keys or TLS, which a request sent on does not carry."""
    settings = config.autoscaler
    if settings is None or config.tenants or config.auth.required or config.server.tls:
        return ""
    if settings.peer_address is not None:
        return settings.peer_address
    pod_ip = environ.get("POD_IP", "")
    return f"{pod_ip}:{config.server.http_port}" if pod_ip else ""


def default_replica_id() -> str:
    """The host name (the pod name in Kubernetes) and the process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class LoadReporter:
    """Streams this gateway's load to the autoscaler until stopped: to the one ``address``, or
    to every replica behind the ``discovery`` Service, one ``ReportStream`` each, opened and
    closed as the Service's endpoints come and go (see the module docstring)."""

    def __init__(
        self,
        *,
        settings: AutoscalerSettings,
        snapshots: Callable[[float], list[ModelSnapshot]],
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 5.0,
        on_peers: Callable[[str, str, Mapping[str, str]], None] = lambda model, me, peers: None,
        peer_address: str = "",
    ) -> None:
        self.address = settings.address
        self.peer_address = peer_address
        self._on_peers = on_peers
        self.discovery_settings = settings.discovery
        self.interval_s = settings.report_interval_ms / 1000
        self.replica_id = settings.replica_id or default_replica_id()
        self.streams: dict[str, ReportStream] = {}  # by autoscaler address
        self._snapshots = snapshots
        self._clock = clock
        self._rng = rng or random.Random()
        self._backoff = (backoff_base_s, backoff_cap_s)
        self._discovery: ModelDiscovery | None = None
        self._last_reply: float | None = None  # when a coordinator last listed the replicas
        self._peers_stale_s = settings.peers_stale_s
        self.service_peers = None
        if settings.replicas_discovery is not None:
            self.service_peers = ServicePeers(settings.replicas_discovery)
        self._fallback_task: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Future[None]] = set()
        self._retired = (0, 0)  # reports sent, failures: of streams already closed

    @property
    def connected(self) -> bool:
        """Some autoscaler replica takes this gateway's reports."""
        return any(s.connected for s in self.streams.values())

    @property
    def leader_connected(self) -> bool:
        """The replica that says it holds the Lease takes this gateway's reports."""
        return any(s.connected and s.leader for s in self.streams.values())

    @property
    def reports_sent(self) -> int:
        return self._retired[0] + sum(s.reports_sent for s in self.streams.values())

    @property
    def stream_failures(self) -> int:
        return self._retired[1] + sum(s.stream_failures for s in self.streams.values())

    def start(self) -> None:
        if self.address is not None:
            self._open(self.address)
        if self.discovery_settings is not None:
            self._discovery = ModelDiscovery(self.discovery_settings, self.track, rng=self._rng)
            self._discovery.start()
        if self.service_peers is not None:
            self.service_peers.start()
            self._fallback_task = asyncio.get_running_loop().create_task(self._fall_back())

    def track(self, view: EndpointSnapshot, _changed: frozenset[str] = frozenset()) -> None:
        """One stream per autoscaler endpoint that serves; close those no longer listed."""
        wanted = {address for address, e in view.endpoints.items() if e.serving}
        for address in sorted(wanted - self.streams.keys()):
            self._open(address)
        for address in sorted(self.streams.keys() - wanted):
            log.info("load reports: autoscaler %s is gone from the Service", address)
            closing = asyncio.ensure_future(self._close(address))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    def _open(self, address: str) -> None:
        log.info("load reports: streaming to autoscaler %s", address)
        base_s, cap_s = self._backoff
        stream = ReportStream(
            address,
            builder=ReportBuilder(self.replica_id, self.peer_address),
            snapshots=self._snapshots,
            interval_s=self.interval_s,
            clock=self._clock,
            backoff=Backoff(base_s=base_s, cap_s=cap_s, rng=self._rng),
            on_reply=self._replied,
        )
        self.streams[address] = stream
        stream.start()

    def _replied(self, stream: ReportStream, reply: Any) -> None:
        """The replicas sharing a model's pods, from the leader's replies (from any replica's
        while no connected one leads): they agree but for a report or two."""
        if stream.leader or not self.leader_connected:
            self._last_reply = self._clock()
            peers = {p.replica_id: p.peer_address for p in reply.gateway_peers}
            peers = peers or dict.fromkeys(reply.gateway_replicas, "")  # an older autoscaler
            self._on_peers(reply.model, self.replica_id, peers)

    def _close(self, address: str, timeout_s: float = 2.0) -> Awaitable[None]:
        """Take the stream out now; its goodbye is the awaitable (its counts are kept)."""
        stream = self.streams.pop(address)
        sent, failures = self._retired
        self._retired = (sent + stream.reports_sent, failures + stream.stream_failures)

        async def goodbye() -> None:
            before = stream.reports_sent, stream.stream_failures
            await stream.stop(timeout_s)
            sent, failures = self._retired
            self._retired = (
                sent + stream.reports_sent - before[0],
                failures + stream.stream_failures - before[1],
            )

        return goodbye()

    def fallback_peers(self, now: float) -> Mapping[str, str] | None:
        """The gateway Service's replicas when no coordinator listed them for
        ``peers_stale_s`` (since this replica started, or since the last list); else None."""
        listed = self.service_peers.peers if self.service_peers is not None else {}
        fresh = self._last_reply is not None and now - self._last_reply <= self._peers_stale_s
        return None if fresh or not listed else listed

    async def _fall_back(self) -> None:
        """Every report interval: the Service's list to every model, while it stands in."""
        assert self.service_peers is not None
        while True:
            await asyncio.sleep(self.interval_s)
            now = self._clock()
            peers = self.fallback_peers(now)
            if peers is not None:
                if not self.peer_address:  # forwarding is off here (keys, TLS): ids only
                    peers = dict.fromkeys(peers, "")
                for snap in self._snapshots(now):
                    self._on_peers(snap.model, self.service_peers.me, peers)

    async def stop(self, timeout_s: float = 2.0) -> None:
        """Say goodbye (final reports) on every stream, within ``timeout_s``; then stop."""
        if self._fallback_task is not None:
            await cancel_and_wait(self._fallback_task)
        if self.service_peers is not None:
            await self.service_peers.stop()
        if self._discovery is not None:
            await self._discovery.stop()
        closing = [self._close(a, timeout_s) for a in list(self.streams)]
        await asyncio.gather(*closing, *self._closing)


def gateway_peers(gateway: Gateway) -> Callable[[str, str, Mapping[str, str]], None]:
    """Hands each model's gateway replicas (with their peer addresses) to its pods
    (gateway.routing.shares)."""

    def apply(model: str, me: str, replicas: Mapping[str, str]) -> None:
        runtime = gateway.models.get(model)
        if runtime is not None:
            runtime.set_peers(me, replicas)

    return apply


def gateway_snapshots(gateway: Gateway) -> Callable[[float], list[ModelSnapshot]]:
    """A snapshot function over the gateway's models as they are at each call."""

    def take(now: float) -> list[ModelSnapshot]:
        return [snapshot(r, now) for r in list(gateway.models.values())]

    return take
