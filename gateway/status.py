"""The gateway's live status on its metrics port: ``GET /status`` (JSON), ``GET /`` (a page).

Read at request time from the same sources as the metrics and the load reporter: each model's
``Scheduler.state(now)`` (queue depth by priority, the fitted F and c, arrivals, rejections,
the pods: ready, in flight, outstanding rows, devices) and the gateway's Prometheus metrics
(batch sizes, rejections by reason, requests by protocol, queue wait and latency sums). Beside
them, from the model's pod set: which pods outlier detection has ejected, this replica's share of
each pod's slots, and the gateway replicas that share the pods. ``/`` is a plain HTML page
whose inline script reads ``/status`` every second and keeps each pod's device timeline (its
running and waiting batches, second by second) in the browser.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web
from prometheus_client.metrics import MetricWrapperBase

from gateway import __version__ as VERSION
from gateway.metrics import GatewayMetrics
from gateway.scheduler_state import PodView, SchedulerState

if TYPE_CHECKING:
    from gateway.core import Gateway
    from gateway.models.runtime import ModelRuntime
    from gateway.reporter import LoadReporter

__all__ = [
    "GatewayStatus",
    "MetricFigures",
    "add_status_routes",
    "metric_figures",
    "model_status",
    "pod_status",
]

_NO_STORE = {"Cache-Control": "no-store"}
MetricFigures = dict[str, dict[str, Any]]  # by model: the figures the metrics hold


def _samples(metric: MetricWrapperBase) -> Iterable[Any]:
    for family in metric.collect():
        yield from family.samples


def metric_figures(metrics: GatewayMetrics) -> MetricFigures:
    """Per model, what the metrics have counted since start: batches by size (cumulative
    buckets) and by why they were sent, rejections by reason, requests by protocol, failures by
    code, and the count and sum of queue waits and of latencies."""
    out: MetricFigures = {}

    def model(labels: Mapping[str, str]) -> dict[str, Any]:
        return out.setdefault(
            labels["model"],
            {"batch_buckets": {}, "rejections": {}, "requests": {}, "failures": {}, "sends": {}},
        )

    for s in _samples(metrics.batch_rows):
        m = model(s.labels)
        if s.name.endswith("_bucket"):
            m["batch_buckets"][s.labels["le"]] = s.value
        elif s.name.endswith("_count"):
            m["batches"] = s.value
        elif s.name.endswith("_sum"):
            m["batch_rows"] = s.value
    counted: tuple[tuple[MetricWrapperBase, str, str], ...] = (
        (metrics.rejections, "rejections", "reason"),
        (metrics.requests, "requests", "protocol"),
        (metrics.failures, "failures", "code"),
        (metrics.batch_sends, "sends", "reason"),
    )
    for metric, key, label in counted:
        for s in _samples(metric):
            if s.name.endswith("_total"):
                counts = model(s.labels)[key]
                counts[s.labels[label]] = counts.get(s.labels[label], 0.0) + s.value
    timed: tuple[tuple[MetricWrapperBase, str], ...] = (
        (metrics.queue_time, "queue_wait_s"),
        (metrics.latency, "latency_s"),
    )
    for timer, key in timed:
        for s in _samples(timer):
            if s.name.endswith(("_count", "_sum")):
                figures = model(s.labels).setdefault(key, {"count": 0.0, "sum": 0.0})
                figures[s.name.rsplit("_", 1)[1]] += s.value
    return out


def _batch_sizes(buckets: Mapping[str, float]) -> list[dict[str, Any]]:
    """Cumulative ``le`` buckets as batches per row range: 1, 2, 3-4, 5-8, ..., 257+."""
    out: list[dict[str, Any]] = []
    below, seen = 0, 0.0
    for le, count in sorted(buckets.items(), key=lambda kv: float(kv[0])):
        if le == "+Inf":
            rows = f"{below + 1}+"
        else:
            top = int(float(le))
            rows = str(top) if top == below + 1 else f"{below + 1}-{top}"
            below = top
        out.append({"rows": rows, "batches": int(count - seen)})
        seen = count
    return out


def pod_status(pod: PodView, *, ejected: bool, share: int | None) -> dict[str, Any]:
    """One pod: its state, what it has in flight, and its devices (running, waiting)."""
    running = min(pod.in_flight, pod.devices)
    if pod.terminating:
        state = "terminating"
    elif ejected:
        state = "ejected"
    else:
        state = "ready" if pod.ready else "starting"
    return {
        "address": pod.address,
        "state": state,
        "ready": pod.ready,
        "ejected": ejected,
        "in_flight": pod.in_flight,
        "slots": pod.slots,
        "share": share,  # this replica's slots of it when others share it; None: all
        "outstanding_rows": pod.outstanding_rows,
        "devices": pod.devices,
        "running": running,
        "waiting": pod.in_flight - running,
    }


def model_status(
    model: str,
    state: SchedulerState,
    *,
    in_flight_requests: int,
    ejected: frozenset[str],
    shares: Mapping[str, int] | None,
    replicas: tuple[str, ...],
    me: str,
    figures: Mapping[str, Any],
) -> dict[str, Any]:
    """One model's status from its scheduler's state and the metrics' figures."""
    pods = [
        pod_status(
            p,
            ejected=p.address in ejected,
            share=None if shares is None else shares.get(p.address, 0),
        )
        for p in state.pods
    ]
    return {
        "model": model,
        "in_flight_requests": in_flight_requests,
        "queued_requests": state.queued_requests,
        "queued_rows": state.queued_rows,
        "queue": [{"priority": lv, "requests": n, "rows": r} for lv, n, r in state.levels],
        "arrival_rows_per_s": round(state.arrival_rows_per_s, 3),
        "completed_rows_total": state.completed_rows_total,
        "rejected_requests_total": state.rejected_requests_total,
        "rejections": figures.get("rejections", {}),
        "requests": figures.get("requests", {}),
        "failures": figures.get("failures", {}),
        "cost": {"fixed_s": state.fixed_s, "per_row_s": state.per_row_s},
        "max_batch_size": state.max_batch_size,
        "batches_total": int(figures.get("batches", 0)),
        "batch_rows_total": int(figures.get("batch_rows", 0)),
        "batch_sizes": _batch_sizes(figures.get("batch_buckets", {})),
        "batch_sends": figures.get("sends", {}),  # batches by the batcher's reason to send
        "queue_wait_s": figures.get("queue_wait_s", {"count": 0.0, "sum": 0.0}),
        "latency_s": figures.get("latency_s", {"count": 0.0, "sum": 0.0}),
        "replica": me or None,  # this replica's name as the coordinator lists it
        "sharing_replicas": list(replicas),  # every replica on these pods; []: none listed
        "pods": pods,
        "ready_pods": sum(1 for p in pods if p["state"] == "ready"),
    }


class GatewayStatus:
    """The status document of a running gateway, read afresh at each call."""

    def __init__(
        self,
        gateway: Gateway,
        reporter: LoadReporter | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._gateway = gateway
        self._reporter = reporter
        self._clock = clock

    def _model(self, runtime: ModelRuntime, now: float, figures: MetricFigures) -> dict[str, Any]:
        state = runtime.scheduler.state(now)
        pods = runtime.pods
        return model_status(
            runtime.name,
            state,
            in_flight_requests=runtime.in_flight,
            ejected=frozenset(
                p.address for p in state.pods if pods.outliers.is_ejected(p.address, now)
            ),
            shares=pods.limits(state.ready_pods),
            replicas=pods.shares.replicas,
            me=pods.shares.me,
            figures=figures.get(runtime.name, {}),
        )

    def read(self) -> dict[str, Any]:
        gw, rep = self._gateway, self._reporter
        now = self._clock()
        figures = metric_figures(gw.metrics)
        return {
            "service": "gateway",
            "version": VERSION,
            "ready": gw.ready,
            "replica": rep.replica_id if rep is not None else None,
            "autoscaler": None
            if rep is None
            else {
                "connected": rep.connected,
                "leader_connected": rep.leader_connected,
                "streams": len(rep.streams),
                "reports_sent": rep.reports_sent,
            },
            "memory": {"held_bytes": gw.budget.in_use, "budget_bytes": gw.budget.limit},
            "models": [self._model(r, now, figures) for r in list(gw.models.values())],
        }


def add_status_routes(app: web.Application, read: Callable[[], dict[str, Any]]) -> None:
    """``GET /`` (the page) and ``GET /status`` (``read()`` as JSON) on ``app``."""
    page = resources.files("gateway").joinpath("status_page.html").read_text()

    async def index(_: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", headers=_NO_STORE)

    async def status(_: web.Request) -> web.Response:
        body = orjson.dumps(read())
        return web.Response(body=body, content_type="application/json", headers=_NO_STORE)

    app.router.add_get("/", index)
    app.router.add_get("/status", status)
