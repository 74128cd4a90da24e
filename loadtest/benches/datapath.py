"""``loadtest bench`` (``make bench``): what the gateway's data path costs, per protocol.

One zero-cost simulated pod (``--fixed-ms 0 --per-row-ms 0``) and a gateway in front of it. For
each protocol (HTTP JSON, HTTP binary, gRPC) the same closed-loop load runs first straight to
the pod, then through the gateway, alternating, in one run (an A/B, ``benches.ab``); the CPU
time of the gateway and of the pod is read over each measurement window. The figures that
matter are the side-by-side ratios and the CPU-µs per request, not the absolute rates:
everything shares one machine.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loadtest.benches.ab import AbResult, Leg, ratio, run_ab
from loadtest.benches.ab_setups import Setup, launched
from loadtest.clients.base import STANDARD_KINDS
from loadtest.clients.payload import SimPayload
from loadtest.generators.closed_loop import ClosedLoopConfig
from loadtest.results.report import (
    fmt_cpu_us,
    fmt_rate,
    fmt_ratio,
    fmt_us,
    machine_note,
    print_table,
    report_doc,
    write_json,
)
from loadtest.stack.simpod_args import SimPod

__all__ = ["BenchConfig", "ProtocolFigures", "datapath_doc", "run_bench"]

DEFAULT_JSON = Path("reports/bench-datapath.json")


@dataclass(frozen=True, slots=True)
class BenchConfig:
    protocols: tuple[str, ...] = STANDARD_KINDS
    concurrency: int = 16  # requests in flight per generator process
    rows: int = 1  # per request
    duration_s: float = 5.0  # measured, per leg
    warmup_s: float = 1.0
    processes: int = 1  # generator processes
    rounds: int = 1  # direct/gateway alternations per protocol
    max_batch: int = 32
    pod_fixed_ms: float = 0.0  # the pod's F (0: the software's cost alone)
    pod_per_row_ms: float = 0.0  # the pod's c
    backend_protocol: str = "grpc"  # the gateway's batches to the pod: grpc or http
    verify_every: int = 16
    json_path: Path = DEFAULT_JSON

    def load(self) -> ClosedLoopConfig:
        return ClosedLoopConfig(
            concurrency=self.concurrency,
            duration_s=self.duration_s,
            warmup_s=self.warmup_s,
            processes=self.processes,
        )


@dataclass(slots=True)
class ProtocolFigures:
    """One protocol's A/B: A is straight to the pod, B through the gateway."""

    protocol: str
    ab: AbResult

    @property
    def direct(self) -> Leg:
        return self.ab.legs[0]

    @property
    def gateway(self) -> Leg:
        return self.ab.legs[1]

    @property
    def ratio(self) -> float | None:
        """Gateway throughput as a fraction of direct throughput."""
        return ratio(self.direct.result.throughput, self.gateway.result.throughput)

    def row(self) -> list[str]:
        d, g = self.direct.result.summary(), self.gateway.result.summary()
        pod = (
            f"{fmt_cpu_us(self.direct.cpu_us_per_request('pod'))} / "
            f"{fmt_cpu_us(self.gateway.cpu_us_per_request('pod'))}"
        )
        return [
            self.protocol,
            fmt_rate(self.direct.result.throughput),
            fmt_us(d.p50_us),
            fmt_us(d.p99_us),
            fmt_rate(self.gateway.result.throughput),
            fmt_us(g.p50_us),
            fmt_us(g.p99_us),
            fmt_ratio(self.ratio),
            fmt_cpu_us(self.gateway.cpu_us_per_request("gateway")),
            pod,
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "direct": self.direct.as_dict(),
            "gateway": self.gateway.as_dict(),
            "ratio_gateway_over_direct_rps": _round(self.ratio),
            "gateway_cpu_us_per_req": _round(self.gateway.cpu_us_per_request("gateway")),
            "pod_cpu_us_per_req_via_gateway": _round(self.gateway.cpu_us_per_request("pod")),
            "pod_cpu_us_per_req_direct": _round(self.direct.cpu_us_per_request("pod")),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


COLUMNS = [
    "protocol",
    "direct\nreq/s",
    "direct\np50",
    "direct\np99",
    "gateway\nreq/s",
    "gateway\np50",
    "gateway\np99",
    "ratio\ngw/direct",
    "gateway\nCPU-µs/req",
    "pod CPU-µs/req\ndirect / via gw",
]


def run_bench(config: BenchConfig) -> list[ProtocolFigures]:
    """Start the pod and the gateway, run every protocol both ways, print and write the report."""
    pod = SimPod(config.pod_fixed_ms, config.pod_per_row_ms, config.max_batch)
    setups = [
        Setup("pod", "pod", pod=pod),
        Setup("gateway", "gateway", pod=pod, backend=config.backend_protocol),
    ]
    payload = SimPayload(rows=config.rows)
    figures: list[ProtocolFigures] = []
    started = time.time()
    with launched(setups) as (direct, gateway):
        for kind in config.protocols:
            sides = [
                t.side(kind, payload, verify_every=config.verify_every, label=label)
                for t, label in ((direct, "direct"), (gateway, "gateway"))
            ]
            ab = run_ab(sides[0], sides[1], config.load(), config.rounds, tag=f"{kind:<11} ")
            figures.append(ProtocolFigures(kind, ab))
    _report(config, figures, started)
    return figures


def _report(config: BenchConfig, figures: list[ProtocolFigures], started: float) -> None:
    notes = [
        f"Closed loop: {config.concurrency} concurrent requests x {config.processes or 1} "
        f"process(es), {config.rows} row(s) each, {config.duration_s:g} s measured after "
        f"{config.warmup_s:g} s warm-up, x {config.rounds} round(s), direct and via the "
        "gateway alternating. Pod device cost per batch: "
        f"{config.pod_fixed_ms:g} ms + {config.pod_per_row_ms:g} ms/row; the gateway sends "
        f"its batches to the pod over {config.backend_protocol}. "
        "ratio = gateway req/s / direct req/s.",
        "CPU-µs/req: the process's CPU time over the measurement windows / requests completed.",
        machine_note(),
    ]
    errors = {
        f"{f.protocol} {p}": getattr(f, p).result.errors
        for f in figures
        for p in ("direct", "gateway")
        if getattr(f, p).result.errors
    }
    if errors:
        notes.append(f"ERRORS: {errors}")
    print_table(
        "Gateway data path vs direct to the pod", COLUMNS, [f.row() for f in figures], notes
    )
    write_json(config.json_path, datapath_doc(config, figures, started))
    print(f"wrote {config.json_path}")


def datapath_doc(
    config: BenchConfig, figures: list[ProtocolFigures], started: float
) -> dict[str, Any]:
    """The JSON report of a run started at ``started`` (Unix seconds)."""
    return report_doc("datapath", config, started, results=[f.as_dict() for f in figures])
