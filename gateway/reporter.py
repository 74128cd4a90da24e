"""The gateway's side of autoscaling: per-model load, streamed to the autoscaler and exported.

Every ``report_interval_ms`` the reporter streams one LoadReport per model over a client stream
(protos/autoscaler.proto). It runs in its own task and never blocks serving: when the
autoscaler is away, no report is made (the counters keep accumulating into the next one) and the
stream is retried with capped exponential backoff and jitter. On stop it sends a ``final``
report per model, so the autoscaler stops counting this replica without holding for it.

The same signals are exported as Prometheus gauges (``gateway_load_*``) by ``LoadCollector``,
so an HPA or KEDA can scale on them instead of the autoscaler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.backoff import Backoff
from gateway.tasks import cancel_and_wait
from protos import autoscaler_pb2 as pb
from protos import autoscaler_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from gateway.config import AutoscalerSettings
    from gateway.core import Gateway
    from gateway.models.runtime import ModelRuntime

__all__ = [
    "LoadCollector",
    "LoadReporter",
    "ModelSnapshot",
    "ReportBuilder",
    "default_replica_id",
    "gateway_snapshots",
    "snapshot",
]

log = logging.getLogger(__name__)

CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 10_000),  # find a vanished autoscaler without waiting on TCP
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.initial_reconnect_backoff_ms", 200),
    ("grpc.max_reconnect_backoff_ms", 5_000),
]


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


def snapshot(runtime: ModelRuntime, now: float) -> ModelSnapshot:
    """One model's signals, from its scheduler's state and its request count."""
    s = runtime.scheduler.state(now)
    ready = s.ready_pods
    return ModelSnapshot(  # in field order
        runtime.name,
        s.queued_requests,
        s.queued_rows,
        s.inflight_rows,
        s.arrival_rows_per_s,
        runtime.requests_total,
        s.completed_rows_total,
        s.rejected_requests_total,
        s.fixed_s,
        s.per_row_s,
        max((p.slots for p in ready), default=0),
        max((p.devices for p in ready), default=0),
        s.max_batch_size,
        len(ready),
        len(s.starting_pods),
        len(s.terminating_pods),
    )


class ReportBuilder:
    """Turns snapshots into LoadReports: counters become deltas since the model's last report.

    A model's first snapshot only sets the baseline (its deltas are 0, its interval 0).
    """

    def __init__(self, replica_id: str) -> None:
        self.replica_id = replica_id
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


def default_replica_id() -> str:
    """The host name (the pod name in Kubernetes) and the process id."""
    return f"{socket.gethostname()}-{os.getpid()}"


class LoadReporter:
    """Streams this gateway's load to the autoscaler until stopped; see the module docstring."""

    def __init__(
        self,
        *,
        settings: AutoscalerSettings,
        snapshots: Callable[[float], list[ModelSnapshot]],
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        backoff_base_s: float = 0.2,
        backoff_cap_s: float = 5.0,
    ) -> None:
        self.address = settings.address
        self.interval_s = settings.report_interval_ms / 1000
        self.builder = ReportBuilder(settings.replica_id or default_replica_id())
        self._snapshots = snapshots
        self._clock = clock
        self._backoff = Backoff(
            base_s=backoff_base_s, cap_s=backoff_cap_s, rng=rng or random.Random()
        )
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._channel: grpc.aio.Channel | None = None
        self.connected = False
        self.reports_sent = 0
        self.stream_failures = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self, timeout_s: float = 2.0) -> None:
        """Say goodbye (final reports) if connected, within ``timeout_s``; then stop."""
        self._stop.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            await cancel_and_wait(self._task)

    async def _run(self) -> None:
        async with grpc.aio.insecure_channel(self.address, options=CHANNEL_OPTIONS) as channel:
            self._channel = channel
            stub = pb_grpc.LoadReportServiceStub(channel)
            while not self._stop.is_set():
                sent_before = self.reports_sent
                try:
                    await stub.StreamLoad(self._reports())
                except grpc.aio.AioRpcError as exc:
                    self.stream_failures += 1
                    log.log(
                        logging.WARNING if self._backoff.failures == 0 else logging.DEBUG,
                        "load report stream to %s failed: %s",
                        self.address,
                        exc.code().name,
                    )
                except Exception:  # never let the reporter die; serving does not depend on it
                    self.stream_failures += 1
                    log.exception("load reporter error")
                finally:
                    self.connected = False
                if self._stop.is_set():
                    break
                if self.reports_sent > sent_before + 1:  # the stream had worked: start afresh
                    self._backoff.reset()
                delay = self._backoff.next()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)

    async def _reports(self) -> AsyncIterator[Any]:
        """The stream's messages: every model each interval; finals when stopping."""
        while not self._stop.is_set():
            now = self._clock()
            for msg in self.builder.build_all(self._snapshots(now), now):
                yield msg
                self.reports_sent += 1
            ready = grpc.ChannelConnectivity.READY
            self.connected = self._channel is not None and self._channel.get_state() == ready
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval_s)
        for msg in self.builder.finals():
            yield msg


def gateway_snapshots(gateway: Gateway) -> Callable[[float], list[ModelSnapshot]]:
    """A snapshot function over the gateway's models as they are at each call."""

    def take(now: float) -> list[ModelSnapshot]:
        return [snapshot(r, now) for r in list(gateway.models.values())]

    return take


class LoadCollector(Collector):
    """The LoadReport signals as Prometheus gauges, read at scrape time, plus reporter health."""

    def __init__(
        self,
        snapshots: Callable[[float], list[ModelSnapshot]],
        reporter: LoadReporter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._snapshots = snapshots
        self._reporter = reporter
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        fields = {
            "queued_requests": "Requests queued in this gateway",
            "queued_rows": "Rows queued in this gateway",
            "inflight_rows": "Rows sent to pods, not yet answered",
            "arrival_rows_per_s": "Arriving rows per second, shed ones included (about 1 s)",
            "slots_per_pod": "In-flight batches a ready pod takes (its devices + 1 waiting)",
            "devices_per_pod": "Batches a ready pod runs at once (its devices)",
            "ready_endpoints": "Pods this gateway routes to",
            "starting_endpoints": "Pods this gateway knows that are not ready yet",
            "terminating_endpoints": "Pods this gateway knows that are terminating",
            "demand_rows": "Queued plus in-flight rows: the concurrency to scale on",
        }
        families = {
            k: GaugeMetricFamily(f"gateway_load_{k}", doc, labels=["model"])
            for k, doc in fields.items()
        }
        for snap in self._snapshots(self._clock()):
            for key, family in families.items():
                if key == "demand_rows":
                    value = float(snap.queued_rows + snap.inflight_rows)
                else:
                    value = float(getattr(snap, key))
                family.add_metric([snap.model], value)
        yield from families.values()
        if self._reporter is not None:
            connected = GaugeMetricFamily(
                "gateway_autoscaler_connected", "1 while the load report stream is up"
            )
            connected.add_metric([], 1.0 if self._reporter.connected else 0.0)
            sent = CounterMetricFamily("gateway_autoscaler_reports", "Load reports sent")
            sent.add_metric([], self._reporter.reports_sent)
            failed = CounterMetricFamily(
                "gateway_autoscaler_stream_failures", "Load report streams that failed"
            )
            failed.add_metric([], self._reporter.stream_failures)
            yield from (connected, sent, failed)
