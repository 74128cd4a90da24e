"""``loadtest cold-starts``: fresh stacks loaded at once, from cold; does any start collapse?

A baseline run first: fresh pods behind one fresh gateway, loaded at ``fraction`` of the pods'
physical limit for ``duration_s`` with open-loop 1-row requests and no warm-up; its p50 is the
reference. Then, for each replica count in ``gateways``, ``starts`` runs, each on its own stack
(fresh pods, fresh replicas and their coordinator, started here by ``stack.gateways``; nothing
is kept between runs), the same load spread over the replicas (``stack.spread``) from the
moment they serve. Each run records p50 and p99, errors by kind (429s apart), the rows/s each
replica answered without error in the window and its fitted batch cost ``F + c·n`` at the end
(both from its ``/metrics``), the processes' CPU and their pids. A run *collapsed* if it got
any 429, if its p50 is over ``COLLAPSE_P50_RATIO`` x the baseline's, if it served nothing, or if
a process of its stack exited. Only ``run_cold_starts`` and its probe do I/O here; the figures,
the rule and the report are pure (``cold_starts_report``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.benches.cold_starts_report import (
    MODEL,
    ColdStartsReport,
    ReplicaFigures,
    RunRecord,
    cold_starts_doc,
    print_report,
    replica_figures,
    run_line,
)
from loadtest.benches.goodput_sweep import physical_limit
from loadtest.clients.base import CLIENT_KINDS, ClientSpec
from loadtest.clients.payload import SimPayload
from loadtest.generators.open_loop import OpenLoopConfig
from loadtest.probes.cpu import CpuSource, CpuWindow
from loadtest.probes.metrics import Scrape, fetch_metrics
from loadtest.results.open_loop_result import OpenLoopResult
from loadtest.results.report import write_json
from loadtest.stack.gateways import Gateways, start_gateways
from loadtest.stack.procs import PodProc, Proc, start_pod
from loadtest.stack.simpod_args import SimPod
from loadtest.stack.spread import run_open_loop_spread, spread_processes, spread_specs

__all__ = ["ColdStartsConfig", "run_cold_starts"]

DEFAULT_JSON = Path("reports/bench-cold-starts.json")
_PAUSE_S = 0.5  # between one stack's stop and the next one's start
_SCRAPE_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class ColdStartsConfig:
    starts: int = 10
    gateways: tuple[int, ...] = (2,)
    pods: int = 1
    fraction: float = 0.6
    duration_s: float = 8.0
    protocol: str = "http-json"
    processes: int | None = None  # None: one per ``rate_per_process`` req/s offered
    rate_per_process: float = 2500.0
    timeout_s: float = 2.0
    seed: int = 1
    verify_every: int = 64
    fixed_ms: float = 8.0
    per_row_ms: float = 0.25
    max_batch: int = 32
    max_queue_delay_us: int = 5000
    json_path: Path = DEFAULT_JSON

    def __post_init__(self) -> None:
        if self.starts < 1 or self.pods < 1:
            raise ValueError(f"starts and pods must be >= 1, got {self.starts}, {self.pods}")
        if not self.gateways or min(self.gateways) < 1:
            raise ValueError(f"gateways must be counts >= 1, got {self.gateways}")
        if not (self.fraction > 0 and self.duration_s > 0 and self.timeout_s > 0):
            raise ValueError("fraction, duration and timeout must be > 0")
        if self.protocol not in CLIENT_KINDS:
            raise ValueError(f"unknown protocol '{self.protocol}'; expected one of {CLIENT_KINDS}")
        if not math.isfinite(self.limit_rows_s):
            raise ValueError("the pods cost nothing (F = c = 0): their limit is unbounded")

    @property
    def limit_rows_s(self) -> float:
        """The pods' physical limit: full batches back to back on each."""
        return physical_limit(self.pods, self.fixed_ms, self.per_row_ms, self.max_batch)

    @property
    def rate(self) -> float:
        """Requests/s offered (1-row requests): ``fraction`` of the limit."""
        return self.fraction * self.limit_rows_s

    def generator_processes(self, gateways: int) -> int:
        """Generator processes for ``gateways`` replicas: one per ``rate_per_process`` req/s
        (or as asked), raised to a multiple of the count (``spread_processes``)."""
        asked = self.processes or max(1, math.ceil(self.rate / self.rate_per_process))
        return spread_processes(asked, gateways)

    def pod_args(self) -> list[str]:
        """The flags its pods are started with."""
        return SimPod(self.fixed_ms, self.per_row_ms, self.max_batch).args(quiet=True)

    def model(self, endpoints: list[str]) -> dict[str, Any]:
        """The gateways' model: the pods' static endpoints, batching with ``max_queue_delay``."""
        delay = {"max_queue_delay_microseconds": self.max_queue_delay_us}
        return {"name": MODEL, "endpoints": endpoints, "dynamic_batching": delay}


class _ReplicasProbe:
    """A ``WindowProbe``: every replica's metrics scraped as the window opens and closes, and
    the CPU seconds of the stack's processes over it."""

    def __init__(self, metrics: Mapping[str, str], procs: Mapping[str, CpuSource]) -> None:
        self.metrics = dict(metrics)
        self.cpu = CpuWindow(procs)
        self.before: dict[str, Scrape | None] = {}
        self.after: dict[str, Scrape | None] = {}

    def start(self) -> None:
        self.before = {n: fetch_metrics(u, _SCRAPE_TIMEOUT_S) for n, u in self.metrics.items()}
        self.cpu.start()

    def stop(self) -> None:
        self.cpu.stop()
        self.after = {n: fetch_metrics(u, _SCRAPE_TIMEOUT_S) for n, u in self.metrics.items()}

    def replicas(self) -> tuple[ReplicaFigures, ...]:
        out = []
        for name in self.metrics:
            before, after = self.before.get(name), self.after.get(name)
            if before is not None and after is not None:
                out.append(replica_figures(name, before, after))
        return tuple(out)


def _stack_procs(gateways: Gateways, pods: list[PodProc]) -> dict[str, Proc]:
    """Every process of a run's stack, by name: the replicas, their coordinator, the pods."""
    procs: dict[str, Proc] = dict(gateways.named())
    if gateways.coordinator is not None:
        procs["coordinator"] = gateways.coordinator
    procs.update({f"pod{i}": p for i, p in enumerate(pods)})
    return procs


def _gone(procs: Mapping[str, Proc]) -> str:
    """Which processes have exited, and with what code; "" while all run."""
    codes = {name: p.popen.poll() for name, p in procs.items()}
    return ", ".join(f"{n} exited with {c}" for n, c in codes.items() if c is not None)


def _load(
    config: ColdStartsConfig, gateways: Gateways, probe: _ReplicasProbe, seed: int
) -> OpenLoopResult:
    addresses = gateways.addresses(config.protocol)
    spec = ClientSpec(
        config.protocol,
        addresses[0],
        SimPayload(rows=1),
        verify_every=config.verify_every,
        timeout_s=config.timeout_s,
    )
    load = OpenLoopConfig(
        rate=config.rate,
        duration_s=config.duration_s,
        warmup_s=0.0,
        processes=config.generator_processes(len(addresses)),
        seed=seed,
        drain_s=config.timeout_s + 1.0,
    )
    return run_open_loop_spread(spread_specs(spec, addresses), load, probe)


def _one_run(config: ColdStartsConfig, label: str, count: int, seed: int) -> RunRecord:
    """Start fresh pods and ``count`` fresh replicas, load them at once, stop them all."""
    pods: list[PodProc] = []
    try:
        for _ in range(config.pods):
            pods.append(start_pod(config.pod_args()))
        gateways = start_gateways(count, [config.model([p.grpc_address for p in pods])])
        try:
            procs = _stack_procs(gateways, pods)
            probe = _ReplicasProbe(gateways.metrics_urls, procs)
            result = _load(config, gateways, probe, seed)
            gone = _gone(procs)
        finally:
            gateways.stop()
    finally:
        for pod in reversed(pods):
            pod.stop()
    pids = {name: p.pid for name, p in procs.items()}
    return RunRecord(label, count, result, probe.replicas(), probe.cpu.seconds, pids, gone)


def run_cold_starts(config: ColdStartsConfig) -> ColdStartsReport:
    """The baseline, then every start; print each as it ends, then the table; write the JSON."""
    started = time.time()
    baseline = _one_run(config, "baseline", 1, config.seed)
    print(run_line(baseline, None), flush=True)
    if not baseline.result.ok:
        raise RuntimeError(
            f"the baseline (one gateway) served nothing: {baseline.result.error_sample}"
        )
    p50 = baseline.result.summary().p50_us
    runs: list[RunRecord] = []
    for count in config.gateways:
        for i in range(config.starts):
            time.sleep(_PAUSE_S)
            runs.append(_one_run(config, f"start {i + 1}", count, config.seed + 1 + i))
            print(run_line(runs[-1], p50), flush=True)
    report = ColdStartsReport(baseline, tuple(runs))
    print_report(report, config)
    write_json(config.json_path, cold_starts_doc(config, report, started))
    print(f"wrote {config.json_path}")
    return report
