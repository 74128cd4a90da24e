"""Demand in pods: the pure conversion from a model's load to the pods it would keep busy."""

from __future__ import annotations

import math

from autoscaler.load import Cost, LoadGauges, ModelLoad
from autoscaler.spec import Mode, ScalingSpec

__all__ = [
    "batch_rows_for_latency",
    "devices_per_pod",
    "overload",
    "overload_pods",
    "per_pod_throughput",
    "pod_rows_per_s",
    "wanted_pods",
]


def batch_rows_for_latency(cost: Cost, latency_s: float, max_batch_size: int) -> int:
    """The biggest batch a device may run and still answer within ``latency_s``.

    A request may wait for the batch in service, then ride in the next one: about two batch
    times, ``2 · (F + c·n) ≤ latency``. At least 1; at most the model's max batch size (0: the
    model does not batch, so 1).
    """
    cap = max(1, max_batch_size)
    if cost.per_row_s <= 0:
        return cap
    rows = math.floor((latency_s / 2 - cost.fixed_s) / cost.per_row_s)
    return max(1, min(cap, rows))


def devices_per_pod(load: LoadGauges) -> int:
    """Batches a pod runs at once: the reported devices. A gateway older than that field
    reports only slots (devices plus one queued batch, or a configured limit), which say
    nothing sure about devices: count one, the cautious guess. 0 while no pod is known."""
    if load.devices_per_pod > 0:
        return load.devices_per_pod
    return 1 if load.slots_per_pod > 0 else 0


def pod_rows_per_s(spec: ScalingSpec, load: LoadGauges) -> float | None:
    """Rows per second one pod serves flat out at the latency target's batch size (its
    physical limit there); None without a cost fit or a known pod. A slot beyond the devices
    holds a batch waiting on the pod: it adds no throughput, so only devices count."""
    devices = devices_per_pod(load)
    if load.cost is None or devices <= 0:
        return None
    rows = batch_rows_for_latency(load.cost, spec.latency_target_s, load.max_batch_size)
    seconds = load.cost.seconds(rows)
    if seconds <= 0:
        return None
    return devices * rows / seconds


def per_pod_throughput(spec: ScalingSpec, load: LoadGauges) -> float | None:
    """Rows per second one pod should serve: its limit derated by the target utilisation."""
    limit = pod_rows_per_s(spec, load)
    return None if limit is None else limit * spec.target_utilisation


def wanted_pods(spec: ScalingSpec, load: ModelLoad) -> tuple[float, Mode]:
    """Pods the load needs now (fractional), and the mode that sized it.

    Capacity mode: arriving rows, shed ones included, ÷ per-pod throughput (the limit at the
    target utilisation); and at least (arriving rows + backlog ÷ drain time) ÷ the limit: the
    headroom above the utilisation target drains the backlog, so a queue that built up while
    pods started asks for more pods only when that headroom cannot drain it in time (a pod
    more, asked for then, would come after the queue is gone, and leave again). It falls
    back to concurrency mode until the gateways have a cost fit.
    Concurrency mode: rows in the system (queued in the gateways, or in flight on the pods,
    in their devices or in the slot beyond), plus shed rows converted to concurrency by
    Little's law (shed rate * the time a row spends in the system), ÷ the target per pod.
    """
    if spec.mode is Mode.CAPACITY:
        limit = pod_rows_per_s(spec, load)
        if limit is not None:
            steady = load.arrival_rows_per_s / (limit * spec.target_utilisation)
            drain = (load.arrival_rows_per_s + load.queued_rows / spec.backlog_drain_s) / limit
            return max(steady, drain), Mode.CAPACITY
    in_system = load.in_system_rows
    if load.completed_rows_per_s > 0:
        residence_s = in_system / load.completed_rows_per_s
    else:
        residence_s = spec.latency_target_s
    concurrency = in_system + load.shed_rows_per_s * residence_s
    return concurrency / spec.pod_target, Mode.CONCURRENCY


def overload(spec: ScalingSpec, load: ModelLoad) -> tuple[float, float] | None:
    """Capacity mode, while the model's queue grows or it sheds: its intake and one pod's
    limit, both in rows per second; else None.

    Rows come in at what the pods answered, plus what the queue grew by, plus what was shed:
    a rate measured over the latest report interval, which the gateway's arrival rate (a
    ~1 s average) reaches only later. The backlog is left to the windows (``wanted_pods``):
    counted here too, a queue that peaks while new pods start would ask for pods the rate
    never needs.
    """
    if spec.mode is not Mode.CAPACITY:
        return None
    limit = pod_rows_per_s(spec, load)
    if limit is None:
        return None
    growth = load.queue_growth_rows_per_s
    shed = load.shed_rows_per_s
    if growth <= 0 and shed <= 0:
        return None
    intake = max(load.arrival_rows_per_s, load.completed_rows_per_s + max(0.0, growth) + shed)
    return intake, limit


def overload_pods(spec: ScalingSpec, load: ModelLoad) -> float | None:
    """Capacity mode: the pods the intake needs *now*, when rows come in faster than the ready
    pods can serve them flat out (``overload``); else None. While that intake exceeds the
    ready pods' limit the queue grows whatever the windows say, so it is demand at once:
    intake ÷ per-pod throughput.
    """
    over = overload(spec, load)
    if over is None:
        return None
    intake, limit = over
    if intake <= load.ready_endpoints * limit:
        return None
    return intake / (limit * spec.target_utilisation)
