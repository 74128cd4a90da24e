"""``loadtest tenants``: a flooding tenant and a light one on slow pods, fair share vs FIFO.

Slow simulated pods (``F + c·n`` device time, one batch at a time, so their capacity is a few
hundred rows/s and one generator process can offer several times that) are started once. Then,
for each mode, a gateway over those pods with two tenants of equal weight (made-up API keys,
their SHA-256 digests in the config, ``auth.required``), dynamic batching on and the model's
``fair_share`` true (``fair``) or false (``fifo``). Two open-loop Poisson generators run at once,
each with its tenant's key (``Authorization: Bearer KEY``, gRPC ``authorization`` metadata):
A offers ``a_load`` times the pods' capacity, B ``b_load`` times; both measure the same window after
the same warm-up (``generators.workers``: one common start). The pods' and the gateway's
metrics are read when the window opens and closes (``tenants_report``). It prints each
tenant's figures side by side per mode, the pods' utilisation, and writes JSON.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.benches.goodput_sweep import physical_limit
from loadtest.benches.tenants_report import (
    MODE_LABELS,
    ModeRun,
    Scraped,
    TenantFigures,
    pod_figures,
    pods_rows,
    tenant_columns,
    tenant_rows,
)
from loadtest.clients.base import STANDARD_KINDS, ClientSpec, is_grpc
from loadtest.clients.payload import SimPayload
from loadtest.generators.open_loop import OpenLoopConfig, open_loop_job
from loadtest.generators.workers import Ready, run_in_processes
from loadtest.probes.metrics import Scrape, fetch_metrics
from loadtest.probes.stack import wait_idle
from loadtest.results.open_loop_result import OpenLoopResult
from loadtest.results.report import fmt_us, machine_note, print_table, report_doc, write_json
from loadtest.stack.procs import GatewayProc, PodProc, start_gateway, start_pod
from loadtest.stack.simpod_args import QUIET, SimPod

__all__ = [
    "MODES",
    "TENANTS",
    "TenantLoad",
    "TenantsConfig",
    "capacity_line",
    "gateway_config",
    "key_digests",
    "process_plan",
    "run_tenants",
    "tenant_keys",
    "tenant_loads",
    "tenants_doc",
]

MODES = ("fair", "fifo")
TENANTS = ("A", "B")  # A floods, B stays light
DEFAULT_JSON = Path("reports/bench-tenants.json")
_MODEL = "sim"
_IDLE_WAIT_S = 30.0  # at most, for a gateway to answer what the flood left queued
_SETTLE_S = 0.5
_SCRAPE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class TenantsConfig:
    pods: int = 2
    protocol: str = "http-binary"
    modes: tuple[str, ...] = MODES
    a_load: float = 3.0  # A's offered rows/s, times the pods' capacity
    b_load: float = 0.3
    rows: int = 1  # per request
    duration_s: float = 20.0  # measured, per mode
    warmup_s: float = 5.0
    slo_ms: float = 200.0  # goodput counts the rows answered within it
    fixed_ms: float = 20.0
    per_row_ms: float = 2.0
    max_batch: int = 8
    max_queue_delay_us: int = 5000
    timeout_s: float = 5.0  # per request
    verify_every: int = 64
    rate_per_process: float = 2500.0  # req/s one generator process offers at most (README)
    seed: int = 1
    json_path: Path = DEFAULT_JSON

    def __post_init__(self) -> None:
        if self.protocol not in STANDARD_KINDS:  # a stream's refusal does not say it is a 429
            raise ValueError(f"protocol must be one of {STANDARD_KINDS}, got {self.protocol}")
        if not self.modes or any(m not in MODES for m in self.modes):
            raise ValueError(f"modes must be drawn from {MODES}, got {self.modes}")
        if not (self.a_load > 0 and self.b_load > 0):
            raise ValueError("a_load and b_load must be > 0")

    @property
    def pod(self) -> SimPod:
        return SimPod(self.fixed_ms, self.per_row_ms, self.max_batch)

    @property
    def capacity_rows_s(self) -> float:
        """The pods' capacity: full batches back to back on every pod."""
        return physical_limit(self.pods, self.fixed_ms, self.per_row_ms, self.max_batch)

    def offered_rows_s(self, tenant: str) -> float:
        return self.capacity_rows_s * (self.a_load if tenant == "A" else self.b_load)


def capacity_line(config: TenantsConfig) -> str:
    """How the capacity follows from the pods' F, c and max batch."""
    batch_ms = config.fixed_ms + config.per_row_ms * config.max_batch
    return (
        f"capacity: {config.pods} pod(s) x {config.max_batch} rows / ({config.fixed_ms:g} ms + "
        f"{config.per_row_ms:g} ms x {config.max_batch} = {batch_ms:g} ms) = "
        f"{config.capacity_rows_s:,.0f} rows/s; A offers {config.a_load:g}x = "
        f"{config.offered_rows_s('A'):,.0f} rows/s, B {config.b_load:g}x = "
        f"{config.offered_rows_s('B'):,.0f} rows/s"
    )


def tenant_keys() -> dict[str, str]:
    """A made-up API key per tenant, new each run."""
    return {t: f"bench-{t.lower()}-{secrets.token_urlsafe(18)}" for t in TENANTS}


def key_digests(keys: Mapping[str, str]) -> dict[str, str]:
    """Each tenant's key as the config gives it: its SHA-256 hex digest."""
    return {t: hashlib.sha256(k.encode()).hexdigest() for t, k in keys.items()}


def gateway_config(
    config: TenantsConfig, mode: str, endpoints: Sequence[str], digests: Mapping[str, str]
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The gateway's ``models`` and the rest of its config (tenants, auth) for ``mode``."""
    model: dict[str, Any] = {
        "name": _MODEL,
        "endpoints": list(endpoints),
        "fair_share": mode == "fair",
        "dynamic_batching": {"max_queue_delay_microseconds": config.max_queue_delay_us},
    }
    tenants = [
        {"name": t, "api_key_sha256": [digests[t]], "models": [_MODEL], "weight": 1.0}
        for t in TENANTS
    ]
    return [model], {"tenants": tenants, "auth": {"required": True}}


@dataclass(frozen=True, slots=True)
class TenantLoad:
    """One tenant's generator: what its clients send (with its key) and its open-loop load."""

    tenant: str
    spec: ClientSpec
    load: OpenLoopConfig


def tenant_loads(
    config: TenantsConfig, target: str, keys: Mapping[str, str]
) -> tuple[TenantLoad, ...]:
    """Each tenant's load on ``target``; every mode sends the same arrivals (the same seeds)."""
    loads = []
    for i, tenant in enumerate(TENANTS):
        rate = config.offered_rows_s(tenant) / config.rows
        spec = ClientSpec(
            config.protocol,
            target,
            SimPayload(rows=config.rows),
            verify_every=config.verify_every,
            timeout_s=config.timeout_s,
            headers=(("Authorization", f"Bearer {keys[tenant]}"),),
        )
        load = OpenLoopConfig(
            rate=rate,
            duration_s=config.duration_s,
            warmup_s=config.warmup_s,
            processes=max(1, math.ceil(rate / config.rate_per_process)),
            seed=config.seed + i,
            drain_s=config.timeout_s + 1.0,
        )
        loads.append(TenantLoad(tenant, spec, load))
    return tuple(loads)


# Per generator process: its tenant, client spec, load, and its index among that tenant's.
Plan = tuple[tuple[str, ClientSpec, OpenLoopConfig, int], ...]


def process_plan(loads: Sequence[TenantLoad]) -> Plan:
    """Every generator process of every tenant, in order."""
    return tuple(
        (t.tenant, t.spec, t.load, i) for t in loads for i in range(max(1, t.load.processes))
    )


async def _tenant_job(plan: Plan, index: int, ready: Ready) -> OpenLoopResult:
    """A ``workers`` job: process ``index`` runs its tenant's share of that tenant's load."""
    _, spec, load, share = plan[index]
    return await open_loop_job((spec, load), share, ready)


class _MetricsWindow:
    """A ``WindowProbe``: each source's metrics when the window opens and when it closes."""

    def __init__(self, urls: Sequence[str]) -> None:
        self.urls = list(urls)
        self.before: list[Scrape | None] = [None] * len(self.urls)
        self.after: list[Scrape | None] = [None] * len(self.urls)

    def _scrape(self) -> list[Scrape | None]:
        return [fetch_metrics(u, _SCRAPE_TIMEOUT_S) for u in self.urls]

    def start(self) -> None:
        self.before = self._scrape()

    def stop(self) -> None:
        self.after = self._scrape()

    def pairs(self) -> list[Scraped]:
        return list(zip(self.before, self.after, strict=True))


def _run_mode(
    config: TenantsConfig,
    mode: str,
    gateway: GatewayProc,
    pods: Sequence[PodProc],
    keys: Mapping[str, str],
) -> ModeRun:
    target = gateway.grpc_address if is_grpc(config.protocol) else gateway.http_url
    plan = process_plan(tenant_loads(config, target, keys))
    window = plan[0][2].window
    probe = _MetricsWindow([*(f"{p.http_url}/metrics" for p in pods), gateway.metrics_url])
    results = run_in_processes(
        _tenant_job, plan, len(plan), window, probe, result_timeout_s=config.timeout_s + 31.0
    )
    if gateway.popen.poll() is not None:
        raise RuntimeError(f"the gateway exited ({gateway.popen.returncode}) during the run")
    merged = {
        t: OpenLoopResult.merge_parallel(
            r
            for r, p in zip(results, plan, strict=True)
            if p[0] == t and isinstance(r, OpenLoopResult)
        )
        for t in TENANTS
    }
    *pod_pairs, gateway_pair = probe.pairs()
    run = ModeRun(
        mode,
        {t: TenantFigures.of(t, r, config.rows, config.slo_ms) for t, r in merged.items()},
        pod_figures(
            pod_pairs,
            gateway_pair,
            config.duration_s,
            config.capacity_rows_s,
            model=_MODEL,
            tenants=TENANTS,
        ),
        merged,
    )
    print(_mode_line(run), flush=True)
    return run


def _mode_line(run: ModeRun) -> str:
    parts = [
        f"{t}: served {f.served_rows_s:,.0f} rows/s p99 {fmt_us(f.p99_us)} "
        f"429s {f.rejected_per_s:,.0f}/s"
        for t, f in run.tenants.items()
    ]
    busy = run.pods.busy_fraction
    return f"{run.label:<10} " + "  ".join(parts) + (f"  pods busy {busy:.0%}" if busy else "")


def run_tenants(config: TenantsConfig) -> list[ModeRun]:
    """Start the pods, run every mode on a gateway of its own, print the tables, write JSON."""
    started = time.time()
    print(capacity_line(config), flush=True)
    keys = tenant_keys()
    digests = key_digests(keys)
    runs: list[ModeRun] = []
    pods: list[PodProc] = []
    try:
        for _ in range(config.pods):
            pods.append(start_pod(config.pod.args(quiet=True)))
        endpoints = [p.grpc_address for p in pods]
        for mode in config.modes:
            models, extra = gateway_config(config, mode, endpoints, digests)
            gateway = start_gateway(models, extra=extra, args=QUIET)
            try:
                runs.append(_run_mode(config, mode, gateway, pods, keys))
                waited = wait_idle(gateway.metrics_url, _MODEL, _IDLE_WAIT_S)
                if waited > 1.0:
                    print(f"  (waited {waited:.1f} s for the gateway's backlog to clear)")
            finally:
                gateway.stop()
            time.sleep(_SETTLE_S)
    finally:
        for pod in reversed(pods):
            pod.stop()
    print_report(config, runs)
    write_json(config.json_path, tenants_doc(config, runs, started))
    print(f"wrote {config.json_path}")
    return runs


def _notes(config: TenantsConfig, runs: Sequence[ModeRun]) -> list[str]:
    notes = [
        capacity_line(config) + ".",
        f"{config.protocol}, open loop (Poisson), {config.rows} row(s)/request, both tenants at "
        f"once for {config.duration_s:g} s after {config.warmup_s:g} s warm-up, per mode; equal "
        "weights; dynamic batching "
        f"(max_queue_delay {config.max_queue_delay_us} µs); the gateway's other settings default.",
        "Latencies from each request's scheduled send time, answered requests only; 429s/s: "
        "refused with 429 / RESOURCE_EXHAUSTED.",
    ]
    b = {r.label: r.tenants["B"].p99_us for r in runs}
    if len(b) > 1:
        notes.append("B's p99: " + ", ".join(f"{m} {fmt_us(v)}" for m, v in b.items()) + ".")
    for run in runs:
        for f in run.tenants.values():
            if f.invalid_reason:
                notes.append(f"{run.label} {f.tenant}: not trusted, {f.invalid_reason}.")
    return [*notes, machine_note()]


def print_report(config: TenantsConfig, runs: Sequence[ModeRun]) -> None:
    """The tenants' table and the pods' table, the modes side by side."""
    if not runs:
        return
    print_table(
        f"Tenants: A offers {config.a_load:g}x the pods' capacity, B {config.b_load:g}x "
        "(equal weights)",
        tenant_columns(runs),
        tenant_rows(runs, config.slo_ms),
    )
    print_table(
        f"Pods: {config.pods} x (F {config.fixed_ms:g} ms + {config.per_row_ms:g} ms/row, "
        f"max batch {config.max_batch})",
        ["figure", *(MODE_LABELS.get(r.mode, r.mode) for r in runs)],
        pods_rows(runs, TENANTS),
        _notes(config, runs),
    )


def tenants_doc(config: TenantsConfig, runs: Sequence[ModeRun], started: float) -> dict[str, Any]:
    """The JSON report of a run started at ``started`` (Unix seconds)."""
    return report_doc(
        "tenants",
        config,
        started,
        capacity_rows_s=round(config.capacity_rows_s, 1),
        offered_rows_s={t: round(config.offered_rows_s(t), 1) for t in TENANTS},
        modes=[r.as_dict() for r in runs],
    )
