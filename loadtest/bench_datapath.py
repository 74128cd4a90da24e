"""``loadtest bench`` (``make bench``): what the gateway's data path costs, per protocol.

One zero-cost simulated pod (``--fixed-ms 0 --per-row-ms 0``) and a gateway in front of it. For
each protocol (HTTP JSON, HTTP binary, gRPC) the same closed-loop load runs first straight to
the pod, then through the gateway, alternating, in one run; the CPU time of the gateway and of
the pod is read over each measurement window. The figures that matter are the side-by-side
ratios and the CPU-µs per request, not the absolute rates: everything shares one machine.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from loadtest.clients import CLIENT_KINDS, ClientSpec
from loadtest.closed_loop import ClosedLoopConfig, run_closed_loop
from loadtest.load_result import LoadResult
from loadtest.payload import SimPayload
from loadtest.procs import GatewayProc, PodProc, Proc, running, start_gateway, start_pod
from loadtest.report import fmt_rate, fmt_ratio, fmt_us, machine_note, print_table, write_json

__all__ = ["BenchConfig", "CpuProbe", "ProtocolFigures", "run_bench"]

DEFAULT_JSON = Path("reports/bench-datapath.json")


@dataclass(frozen=True, slots=True)
class BenchConfig:
    protocols: tuple[str, ...] = CLIENT_KINDS
    concurrency: int = 16
    rows: int = 1
    duration_s: float = 5.0
    warmup_s: float = 1.0
    processes: int = 1
    rounds: int = 1
    max_batch: int = 32
    pod_fixed_ms: float = 0.0
    pod_per_row_ms: float = 0.0
    verify_every: int = 16
    json_path: Path = DEFAULT_JSON

    def load(self) -> ClosedLoopConfig:
        return ClosedLoopConfig(
            concurrency=self.concurrency,
            duration_s=self.duration_s,
            warmup_s=self.warmup_s,
            processes=self.processes,
        )


class CpuProbe:
    """CPU seconds each process used over the measurement window."""

    def __init__(self, procs: dict[str, Proc]) -> None:
        self._procs = procs
        self._before: dict[str, float] = {}
        self.seconds: dict[str, float] = {}

    def start(self) -> None:
        self._before = {name: p.cpu_seconds() for name, p in self._procs.items()}

    def stop(self) -> None:
        self.seconds = {
            name: p.cpu_seconds() - self._before[name] for name, p in self._procs.items()
        }


@dataclass(slots=True)
class Leg:
    """One path's runs (all rounds merged) and the CPU seconds each process used in them."""

    result: LoadResult = field(default_factory=LoadResult)
    cpu_s: dict[str, float] = field(default_factory=dict)

    def add(self, result: LoadResult, cpu_s: dict[str, float]) -> None:
        runs = [self.result, result] if self.result.window_s else [result]
        self.result = LoadResult.combine(runs, sequential=True)
        for name, seconds in cpu_s.items():
            self.cpu_s[name] = self.cpu_s.get(name, 0.0) + seconds

    def cpu_us_per_request(self, name: str) -> float | None:
        if name not in self.cpu_s or self.result.ok == 0:
            return None
        return self.cpu_s[name] * 1e6 / self.result.ok

    def as_dict(self) -> dict[str, Any]:
        cpu = {f"{k}_cpu_us_per_req": _round(self.cpu_us_per_request(k)) for k in self.cpu_s}
        return {**self.result.as_dict(), "cpu_s": self.cpu_s, **cpu}


@dataclass(slots=True)
class ProtocolFigures:
    protocol: str
    direct: Leg = field(default_factory=Leg)
    gateway: Leg = field(default_factory=Leg)

    @property
    def ratio(self) -> float | None:
        """Gateway throughput as a fraction of direct throughput."""
        direct = self.direct.result.throughput
        return self.gateway.result.throughput / direct if direct else None

    def row(self) -> list[str]:
        d, g = self.direct.result.summary(), self.gateway.result.summary()
        pod = (
            f"{fmt_ratio_us(self.direct.cpu_us_per_request('pod'))} / "
            f"{fmt_ratio_us(self.gateway.cpu_us_per_request('pod'))}"
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
            fmt_ratio_us(self.gateway.cpu_us_per_request("gateway")),
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


def fmt_ratio_us(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


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


def _targets(kind: str, pod: PodProc, gateway: GatewayProc) -> dict[str, str]:
    if kind == "grpc":
        return {"direct": pod.grpc_address, "gateway": gateway.grpc_address}
    return {"direct": pod.http_url, "gateway": gateway.http_url}


def _measure(
    config: BenchConfig, figures: list[ProtocolFigures], pod: PodProc, gateway: GatewayProc
) -> None:
    payload = SimPayload(rows=config.rows)
    for round_no in range(config.rounds):
        for fig in figures:
            targets = _targets(fig.protocol, pod, gateway)
            for path in ("direct", "gateway"):
                spec = ClientSpec(
                    fig.protocol, targets[path], payload, verify_every=config.verify_every
                )
                watched: dict[str, Proc] = {"pod": pod}
                if path == "gateway":
                    watched["gateway"] = gateway
                probe = CpuProbe(watched)
                print(f"round {round_no + 1}: {fig.protocol:<11} {path:<7} ...", flush=True)
                result = run_closed_loop(spec, config.load(), probe)
                getattr(fig, path).add(result, probe.seconds)
                if result.error_count:
                    print(f"  errors {result.errors}: {result.error_sample}", flush=True)


def run_bench(config: BenchConfig) -> list[ProtocolFigures]:
    """Start the pod and the gateway, run every protocol both ways, print and write the report."""
    pod_args = ["--fixed-ms", f"{config.pod_fixed_ms:g}", "--per-row-ms"]
    pod_args += [f"{config.pod_per_row_ms:g}", "--max-batch", str(config.max_batch)]
    figures = [ProtocolFigures(kind) for kind in config.protocols]
    started = time.time()
    pod = start_pod(pod_args)
    with running(pod):
        model = {
            "name": "sim",
            "endpoints": [pod.grpc_address],
            "dynamic_batching": {"max_queue_delay_microseconds": 5000},
        }
        gateway = start_gateway([model])
        with running(gateway):
            _measure(config, figures, pod, gateway)
    _report(config, figures, started)
    return figures


def _report(config: BenchConfig, figures: list[ProtocolFigures], started: float) -> None:
    notes = [
        f"Closed loop: {config.concurrency} concurrent requests x {config.processes or 1} "
        f"process(es), {config.rows} row(s) each, {config.duration_s:g} s measured after "
        f"{config.warmup_s:g} s warm-up, x {config.rounds} round(s), direct and via the "
        "gateway alternating. Pod device cost per batch: "
        f"{config.pod_fixed_ms:g} ms + {config.pod_per_row_ms:g} ms/row. "
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
    doc = {
        "benchmark": "datapath",
        "started_unix": round(started, 3),
        "config": {**asdict(config), "json_path": str(config.json_path)},
        "note": machine_note(),
        "results": [f.as_dict() for f in figures],
    }
    write_json(config.json_path, doc)
    print(f"wrote {config.json_path}")
