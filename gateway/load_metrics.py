"""The LoadReport signals as Prometheus gauges (``gateway_load_*``), read at scrape time, so an
HPA or KEDA can scale on them instead of the autoscaler; and the reporter's health."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from gateway.reporter import LoadReporter, ModelSnapshot

__all__ = ["LoadCollector"]


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
            "sharing_replicas": "Gateway replicas sharing the pods (from the coordinator)",
            "own_slots": "In-flight batches this replica may hold on its ready pods, in all",
        }
        families = {
            k: GaugeMetricFamily(f"gateway_load_{k}", doc, labels=["model"])
            for k, doc in fields.items()
        }
        snaps = list(self._snapshots(self._clock()))
        for snap in snaps:
            for key, family in families.items():
                if key == "demand_rows":
                    value = float(snap.queued_rows + snap.inflight_rows)
                else:
                    value = float(getattr(snap, key))
                family.add_metric([snap.model], value)
        yield from families.values()
        forwarded = CounterMetricFamily(
            "gateway_forwarded_requests",
            "Requests sent on to the gateway replicas that own the model's pods",
            labels=["model"],
        )
        for snap in snaps:
            forwarded.add_metric([snap.model], float(snap.forwarded_requests_total))
        yield forwarded
        if self._reporter is not None:
            rep = self._reporter
            gauges = {
                "connected": ("1 while a load report stream is up", rep.connected),
                "leader_connected": (
                    "1 while the replica that leads takes the reports",
                    rep.leader_connected,
                ),
                "streams": ("Autoscaler replicas streamed to", len(rep.streams)),
            }
            for key, (doc, value) in gauges.items():
                family = GaugeMetricFamily(f"gateway_autoscaler_{key}", doc)
                family.add_metric([], float(value))
                yield family
            sent = CounterMetricFamily("gateway_autoscaler_reports", "Load reports sent")
            sent.add_metric([], rep.reports_sent)
            failed = CounterMetricFamily(
                "gateway_autoscaler_stream_failures", "Load report streams that failed"
            )
            failed.add_metric([], rep.stream_failures)
            yield from (sent, failed)
