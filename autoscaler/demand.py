"""Demand in pods: the pure conversion from a model's load to the pods it would keep busy."""

from __future__ import annotations

import math

from autoscaler.load import Cost, ModelLoad
from autoscaler.spec import Mode, ScalingSpec

__all__ = ["batch_rows_for_latency", "per_pod_throughput", "wanted_pods"]


def batch_rows_for_latency(cost: Cost, latency_s: float, max_batch_size: int) -> int:
    """The biggest batch a slot may run and still answer within ``latency_s``.

    A request may wait for the batch in service, then ride in the next one: about two batch
    times, ``2 · (F + c·n) ≤ latency``. At least 1; at most the model's max batch size (0: the
    model does not batch, so 1).
    """
    cap = max(1, max_batch_size)
    if cost.per_row_s <= 0:
        return cap
    rows = math.floor((latency_s / 2 - cost.fixed_s) / cost.per_row_s)
    return max(1, min(cap, rows))


def per_pod_throughput(spec: ScalingSpec, load: ModelLoad) -> float | None:
    """Rows per second one pod serves at the latency target, derated by the utilisation;
    None without a cost fit or a known slot count."""
    if load.cost is None or load.slots_per_pod <= 0:
        return None
    rows = batch_rows_for_latency(load.cost, spec.latency_target_s, load.max_batch_size)
    seconds = load.cost.seconds(rows)
    if seconds <= 0:
        return None
    return load.slots_per_pod * rows / seconds * spec.target_utilisation


def wanted_pods(spec: ScalingSpec, load: ModelLoad) -> tuple[float, Mode]:
    """Pods the load needs now (fractional), and the mode that sized it.

    Capacity mode: (arriving rows, shed ones included, + backlog ÷ drain time) ÷ per-pod
    throughput; it falls back to concurrency mode until the gateways have a cost fit.
    Concurrency mode: rows in the system, plus shed rows converted to concurrency by Little's
    law (shed rate * the time a row spends in the system), ÷ the target per pod.
    """
    if spec.mode is Mode.CAPACITY:
        throughput = per_pod_throughput(spec, load)
        if throughput is not None:
            rate = load.arrival_rows_per_s + load.queued_rows / spec.backlog_drain_s
            return rate / throughput, Mode.CAPACITY
    in_system = load.in_system_rows
    if load.completed_rows_per_s > 0:
        residence_s = in_system / load.completed_rows_per_s
    else:
        residence_s = spec.latency_target_s
    concurrency = in_system + load.shed_rows_per_s * residence_s
    return concurrency / spec.pod_target, Mode.CONCURRENCY
