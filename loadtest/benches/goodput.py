"""``loadtest goodput``: rows/s served within a p99 SLO, with and without batching, vs the limit.

Simulated pods (``F + c·n`` device time, one batch at a time) sit behind one or more gateway
replicas (``gateways``: each count in turn, the load spread evenly over them, ``stack.spread``),
started for each pod count, replica count and gateway config: WITH batching
(``dynamic_batching`` with a ``max_queue_delay``, plus the gateway's cost model) and WITHOUT (no
``dynamic_batching``: one request per batch). For each, open-loop Poisson load climbs a grid of
offered loads (fractions of the pods' physical limit) and then bisects (``goodput_sweep``).
Every step reads the gateways' and pods' CPU, and each gateway's batch sizes and fitted batch
cost over its window (``gateways_probe``). The goodput is the most rows/s a passing step served.
It prints every step, then one table side by side, and writes JSON. ``runtime="triton"``
puts a real Triton in the pods' place instead (``goodput_triton``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.benches.gateways_probe import GatewaysProbe, wait_all_idle
from loadtest.benches.goodput_report import print_steps, print_summary, step_line
from loadtest.benches.goodput_sweep import (
    DEFAULT_GRID,
    MODES,
    Step,
    Sweep,
    judge,
    median_sweep,
    next_fraction,
    physical_limit,
    select_goodput,
)
from loadtest.clients.base import ClientSpec, is_grpc
from loadtest.clients.payload import SimPayload
from loadtest.generators.open_loop import OpenLoopConfig
from loadtest.probes.cpu import CpuSource, PidCpu
from loadtest.results.open_loop_result import DEFAULT_LAG_LIMIT_US, OpenLoopResult
from loadtest.results.report import report_doc, write_json
from loadtest.stack.gateways import Gateways, start_gateways
from loadtest.stack.procs import PodProc, Served, start_pod
from loadtest.stack.simpod_args import SimPod
from loadtest.stack.spread import run_open_loop_spread, spread_processes, spread_specs

__all__ = [
    "BACKEND_PROTOCOLS",
    "MODES",
    "RUNTIMES",
    "GoodputConfig",
    "Sweep",
    "SweepTarget",
    "backend_model",
    "gateway_model",
    "goodput_doc",
    "median_sweep",
    "run_goodput",
    "run_sweep",
]

DEFAULT_JSON = Path("reports/bench-goodput.json")
_SETTLE_S = 0.5  # between steps
_IDLE_WAIT_S = 60.0  # at most, for the gateway to answer what an overloaded step left queued
RUNTIMES = ("simpod", "triton")
BACKEND_PROTOCOLS = ("grpc", "http")  # as gateway.backends.backend's (a test holds them equal)


@dataclass(frozen=True, slots=True)
class GoodputConfig:
    pods: tuple[int, ...] = (1, 2)
    gateways: tuple[int, ...] = (1,)  # gateway replicas in front of the same pods, each in turn
    modes: tuple[str, ...] = MODES
    rows: int = 1
    duration_s: float = 4.0
    warmup_s: float = 1.0
    slo_ms: float = 50.0
    processes: int | None = None  # None: one per ``rate_per_process`` req/s offered
    rate_per_process: float = 2500.0  # well under one process's ceiling (README)
    protocol: str = "http-binary"
    grid: tuple[float, ...] = DEFAULT_GRID
    stop_after: int = 2
    refine: int = 2
    invalid_retries: int = 2  # reruns of a step whose generator fell behind (a noisy moment)
    repeats: int = 1  # sweeps per pod count and mode; the summary shows the median
    error_tolerance: float = 0.001
    fixed_ms: float = 8.0
    per_row_ms: float = 0.25
    max_batch: int = 32
    max_queue_delay_us: int = 5000
    inflight_per_pod: int | None = None
    backend_protocol: str = "grpc"  # the gateways' batches to the pods: grpc or http (REST)
    timeout_s: float = 2.0
    verify_every: int = 64
    lag_limit_us: int = DEFAULT_LAG_LIMIT_US
    seed: int = 1
    json_path: Path = DEFAULT_JSON
    runtime: str = "simpod"  # what serves the model: simulated pods, or a real Triton
    # A running server instead of started pods and gateways: its address (as the protocol
    # wants it), the rows/s the grid's fractions are of, its gateway metrics and processes.
    target: str | None = None
    target_limit_rows_s: float | None = None
    target_metrics: str | None = None
    target_pids: tuple[tuple[str, int], ...] = ()

    def __post_init__(self) -> None:
        if self.target is not None and not (self.target_limit_rows_s or 0) > 0:
            raise ValueError("a target needs the rows/s its offered loads are fractions of")
        if not self.gateways or min(self.gateways) < 1:
            raise ValueError(f"gateways must be counts >= 1, got {self.gateways}")
        if self.target is not None and self.gateways != (1,):
            raise ValueError("a target is one running server: gateways are started without one")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {self.runtime!r}")
        if self.backend_protocol not in BACKEND_PROTOCOLS:
            choices = ", ".join(BACKEND_PROTOCOLS)
            raise ValueError(
                f"backend_protocol must be one of {choices}, got {self.backend_protocol!r}"
            )
        if self.target is not None and self.runtime != "simpod":
            raise ValueError("a target is a running server: the runtime is started without one")

    def generator_processes(self, rate: float, gateways: int = 1) -> int:
        """Generator processes for ``rate`` req/s spread over ``gateways`` replicas: as few as
        keep each under its budget (so they take as little CPU from the processes under test
        as they can), and a multiple of ``gateways`` (``spread_processes``)."""
        if self.processes is not None:
            return spread_processes(self.processes, gateways)
        return spread_processes(max(1, math.ceil(rate / self.rate_per_process)), gateways)

    def limit(self, pods: int) -> float:
        return physical_limit(pods, self.fixed_ms, self.per_row_ms, self.max_batch)

    def pod_args(self) -> list[str]:
        """The flags its pods are started with."""
        return SimPod(self.fixed_ms, self.per_row_ms, self.max_batch).args(quiet=True)


@dataclass(frozen=True, slots=True)
class SweepTarget:
    """Where a sweep sends: the addresses per protocol (the load spread over them), the
    gateways' metrics URLs by name ({}: not read), the processes whose CPU counts (the
    gateways' named ``gateway``…), and a check that the servers are still up."""

    http_urls: tuple[str, ...]
    grpc_addresses: tuple[str, ...]
    metrics: dict[str, str]
    procs: dict[str, CpuSource]
    gone: Callable[[], str | None] = lambda: None
    gateway_names: tuple[str, ...] = ("gateway",)
    model: str = "sim"  # the model the load is sent to

    def probe(self) -> GatewaysProbe:
        """What a step reads over its window: CPU and the gateways' figures."""
        return GatewaysProbe(self.procs, self.metrics, self.model)

    def wait_idle(self, timeout_s: float) -> float:
        """Wait (bounded) until what a step left queued is answered; the seconds waited."""
        return wait_all_idle(self.metrics, self.model, timeout_s)

    def addresses(self, protocol: str) -> tuple[str, ...]:
        return self.grpc_addresses if is_grpc(protocol) else self.http_urls

    @classmethod
    def started(cls, gateways: Gateways, pods: list[PodProc]) -> SweepTarget:
        named = gateways.named()
        procs: dict[str, CpuSource] = dict(named)
        procs.update({f"pod{i}": p for i, p in enumerate(pods)})

        def gone() -> str | None:
            what = gateways.gone()
            return None if what is None else f"{what} during a step"

        return cls(
            gateways.addresses("http-json"),
            gateways.addresses("grpc"),
            gateways.metrics_urls,
            procs,
            gone,
            tuple(named),
        )

    @classmethod
    def running(cls, config: GoodputConfig) -> SweepTarget:
        assert config.target is not None
        procs: dict[str, CpuSource] = {name: PidCpu(pid) for name, pid in config.target_pids}
        metrics = {} if config.target_metrics is None else {"gateway": config.target_metrics}
        return cls((config.target,), (config.target,), metrics, procs)


def gateway_model(config: GoodputConfig, mode: str, endpoints: list[str]) -> dict[str, Any]:
    """The gateway's model config for ``mode``: batching, or one request per batch."""
    model: dict[str, Any] = {"name": "sim", "endpoints": endpoints}
    if mode == "batching":
        model["dynamic_batching"] = {"max_queue_delay_microseconds": config.max_queue_delay_us}
    if config.inflight_per_pod is not None:
        model["max_inflight_per_pod"] = config.inflight_per_pod
    return model


def backend_model(
    config: GoodputConfig, mode: str, servers: Sequence[Served], backend: str | None = None
) -> dict[str, Any]:
    """``gateway_model`` in front of ``servers``, its batches to their gRPC or (``backend``,
    else the config's ``backend_protocol``, ``http``) their REST API with binary tensors."""
    if (backend or config.backend_protocol) == "http":
        endpoints = [server.http_url.removeprefix("http://") for server in servers]
        return {**gateway_model(config, mode, endpoints), "backend_protocol": "http"}
    return gateway_model(config, mode, [server.grpc_address for server in servers])


def _step(config: GoodputConfig, sweep: Sweep, target: SweepTarget, fraction: float) -> None:
    offered = fraction * sweep.limit_rows_s
    addresses = target.addresses(config.protocol)
    spec = ClientSpec(
        config.protocol,
        addresses[0],
        SimPayload(model=target.model, rows=config.rows),
        verify_every=config.verify_every,
        timeout_s=config.timeout_s,
    )
    load = OpenLoopConfig(
        rate=offered / config.rows,
        duration_s=config.duration_s,
        warmup_s=config.warmup_s,
        processes=config.generator_processes(offered / config.rows, len(addresses)),
        seed=config.seed + 1000 * sweep.run + len(sweep.steps),
        lag_limit_us=config.lag_limit_us,
        drain_s=config.timeout_s + 1.0,
    )
    probe = target.probe()
    result = run_open_loop_spread(spread_specs(spec, addresses), load, probe)
    gone = target.gone()
    if gone is not None:
        raise RuntimeError(gone)
    step = _to_step(config, fraction, offered, result, probe, target.gateway_names)
    verdict = judge(step, config.slo_ms, config.error_tolerance)
    sweep.steps.append(step)
    sweep.details.append(
        {
            **step.as_dict(),
            "passed": verdict.passed,
            "verdict": verdict.reason,
            "cpu_s": {k: round(v, 4) for k, v in probe.cpu_s.items()},
            "load": result.as_dict(),
        }
    )
    print(step_line(sweep, step, verdict), flush=True)


def _to_step(
    config: GoodputConfig,
    fraction: float,
    offered: float,
    result: OpenLoopResult,
    probe: GatewaysProbe,
    gateway_names: tuple[str, ...],
) -> Step:
    s, lag = result.summary(), result.lag()
    cpu = [probe.cpu_s[n] for n in gateway_names if n in probe.cpu_s]
    gw_cpu = sum(cpu) if cpu else None
    return Step(
        fraction=fraction,
        offered_rows_s=offered,
        served_rows_s=result.throughput * config.rows,
        due=result.due,
        ok=result.ok,
        errors=result.error_count,
        p50_us=s.p50_us,
        p99_us=s.p99_us,
        valid=result.valid,
        mean_batch_rows=probe.batches.mean if probe.batches else None,
        gateway_cpu_us_per_req=(
            gw_cpu * 1e6 / result.ok if gw_cpu is not None and result.ok else None
        ),
        generator_lag_p99_us=lag.p99_us,
        generator_cpu_us_per_req=result.cpu_us_per_request,
        error_kinds=tuple(sorted(result.errors.items())),
        invalid_reason=result.invalid,
        per_gateway=tuple(probe.per_gateway),
        sends=probe.sends,
    )


def _settle(target: SweepTarget) -> None:
    """Let the target answer what a step left queued, then pause before the next."""
    waited = target.wait_idle(_IDLE_WAIT_S)
    if waited > 1.0:
        print(f"  (waited {waited:.1f} s for the step's backlog to clear)", flush=True)
    time.sleep(_SETTLE_S)


def run_sweep(config: GoodputConfig, sweep: Sweep, target: SweepTarget) -> None:
    """Climb the grid, then bisect, against ``target``; set ``sweep``'s goodput."""
    tried: list[tuple[float, bool]] = []
    while True:
        fraction = next_fraction(
            tried, config.grid, stop_after=config.stop_after, refine=config.refine
        )
        if fraction is None:
            break
        for attempt in range(1 + config.invalid_retries):
            if attempt:
                print(f"  (generator fell behind: step rerun {attempt})", flush=True)
            _step(config, sweep, target, fraction)
            _settle(target)
            if sweep.steps[-1].valid:
                break
        verdict = judge(sweep.steps[-1], config.slo_ms, config.error_tolerance)
        tried.append((fraction, verdict.passed))
    sweep.goodput = select_goodput(sweep.steps, config.slo_ms, config.error_tolerance)


def run_goodput(config: GoodputConfig) -> list[Sweep]:
    """Run every sweep, print the steps and the side-by-side table, write the JSON report."""
    if config.runtime == "triton":
        from loadtest.benches.goodput_triton import run_triton_goodput

        return run_triton_goodput(config)
    started = time.time()
    sweeps: list[Sweep] = []
    if config.target is not None:
        assert config.target_limit_rows_s is not None
        for run in range(config.repeats):
            sweep = Sweep(0, "target", config.target_limit_rows_s, run=run)
            sweeps.append(sweep)
            run_sweep(config, sweep, SweepTarget.running(config))
        _report(config, sweeps, started)
        return sweeps
    for n in config.pods:
        pods: list[PodProc] = []
        try:
            for _ in range(n):
                pods.append(start_pod(config.pod_args()))
            for g, mode in ((g, m) for g in config.gateways for m in config.modes):
                gateways = start_gateways(g, [backend_model(config, mode, pods)])
                try:
                    for run in range(config.repeats):
                        sweep = Sweep(n, mode, config.limit(n), run=run, gateways=g)
                        sweeps.append(sweep)
                        run_sweep(config, sweep, SweepTarget.started(gateways, pods))
                finally:
                    gateways.stop()
        finally:
            for pod in reversed(pods):
                pod.stop()
    _report(config, sweeps, started)
    return sweeps


def _report(config: GoodputConfig, sweeps: list[Sweep], started: float) -> None:
    print_steps(sweeps, config)
    print_summary(sweeps, config)
    write_json(config.json_path, goodput_doc(config, sweeps, started))
    print(f"wrote {config.json_path}")


def goodput_doc(config: GoodputConfig, sweeps: list[Sweep], started: float) -> dict[str, Any]:
    """The JSON report of a run started at ``started`` (Unix seconds)."""

    def goodput(s: Sweep, scale: float, digits: int) -> float | None:
        return None if s.goodput is None else round(s.goodput.served_rows_s / scale, digits)

    return report_doc(
        "goodput",
        config,
        started,
        sweeps=[
            {
                "pods": s.pods,
                "gateways": s.gateways,
                "mode": s.mode,
                "run": s.run,
                "physical_limit_rows_s": round(s.limit_rows_s, 1),
                "goodput_rows_s": goodput(s, 1.0, 1),
                "goodput_fraction": goodput(s, s.limit_rows_s, 4),
                "goodput_step": None if s.goodput is None else s.goodput.as_dict(),
                "steps": s.details,
            }
            for s in sweeps
        ],
    )
