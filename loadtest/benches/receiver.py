"""``loadtest receiver-bench``: how many LoadReports a second the autoscaler takes on one core.

The fleet it sizes for: ``gateways`` gateway replicas x ``models`` models, each replica sending
a report per model every 250 ms (100 x 200 x 4 = 80,000 reports/s offered). Three figures:

- **in-process**: serialized ``LoadReport`` bytes → ``LoadReport.FromString`` →
  ``receiver.decode_report`` → ``ReportStore.record``, in a loop on this process's one thread;
  reports per CPU-second (= per core), and µs per report (decode and record apart too).
- **gRPC**: the autoscaler's ``LoadReceiver`` served by grpc.aio in this process, fed by
  ``client_processes`` processes with one ``StreamLoad`` stream each (pre-serialized bytes, so
  the clients cost little); reports per second of the server process's CPU (gRPC's threads
  included) and per wall second.
- **tick**: ``Controller.tick`` (observe, decide, metrics) over ``models`` models whose store
  holds every gateway's report (no actuator: a dry run), in ms per tick; its ``ReportStore.load``
  share apart. The store's TTL is made long so every report stays live between ticks.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Any

from autoscaler.aggregate import ReportStore
from autoscaler.controller import Controller, Target
from autoscaler.metrics import AutoscalerMetrics
from autoscaler.receiver import decode_report
from autoscaler.spec import Mode, ScalingSpec
from loadtest.results.report import machine_note, print_table
from protos import autoscaler_pb2 as pb

__all__ = ["ReceiverBenchConfig", "fleet_reports", "run_receiver_bench", "time_tick"]

REPORTS_PER_S = 4.0  # per replica and model: the gateway's default 250 ms interval


@dataclass(frozen=True, slots=True)
class ReceiverBenchConfig:
    gateways: int = 100
    models: int = 200
    duration_s: float = 3.0  # per in-process and gRPC measurement
    ticks: int = 20
    client_processes: int = 2
    grpc_reports: int = 200_000  # sent over gRPC in all

    @property
    def offered_per_s(self) -> float:
        return self.gateways * self.models * REPORTS_PER_S


def _report(gateway: int, model: int, seq: int) -> Any:
    msg = pb.LoadReport(
        replica_id=f"gateway-{gateway}",
        model=f"model-{model}",
        seq=seq,
        interval_s=0.25,
        queued_requests=3 + seq % 5,
        queued_rows=12 + seq % 7,
        inflight_rows=32,
        arrived_requests=50,
        arrival_rows_per_s=200.0 + gateway,
        completed_rows=48,
        rejected_requests=seq % 2,
        slots_per_pod=2,
        max_batch_size=32,
        ready_endpoints=4,
        starting_endpoints=1,
        devices_per_pod=1,
    )
    msg.batch_cost.fixed_s = 0.008
    msg.batch_cost.per_row_s = 0.00025
    return msg


def fleet_reports(gateways: int, models: int, rounds: int = 2) -> list[bytes]:
    """Serialized reports of every (gateway, model), ``rounds`` rounds (seq 1, 2, ...)."""
    return [
        _report(g, m, seq).SerializeToString()
        for seq in range(1, rounds + 1)
        for g in range(gateways)
        for m in range(models)
    ]


def _timed(fn: Any, items: list[Any], duration_s: float) -> tuple[int, float, float]:
    """Run ``fn`` over ``items`` again and again for at least ``duration_s``: (n, cpu, wall)."""
    n = 0
    cpu0, wall0 = time.process_time(), time.perf_counter()
    while True:
        for item in items:
            fn(item)
        n += len(items)
        if time.perf_counter() - wall0 >= duration_s:
            return n, time.process_time() - cpu0, time.perf_counter() - wall0


def in_process(config: ReceiverBenchConfig, reports: list[bytes]) -> dict[str, Any]:
    """Decode + record on this thread; reports per CPU-second and µs per report."""
    store = ReportStore(ttl_s=1.0, missing_hold_s=60.0)
    now = time.monotonic
    from_string = pb.LoadReport.FromString
    n, cpu, wall = _timed(
        lambda b: store.record(decode_report(from_string(b)), now()), reports, config.duration_s
    )
    decoded = [decode_report(from_string(b)) for b in reports]
    n_dec, cpu_dec, _ = _timed(
        lambda b: decode_report(from_string(b)), reports, config.duration_s / 3
    )
    n_rec, cpu_rec, _ = _timed(lambda r: store.record(r, now()), decoded, config.duration_s / 3)
    return {
        "reports": n,
        "cpu_s": round(cpu, 3),
        "wall_s": round(wall, 3),
        "reports_per_core_s": round(n / cpu),
        "us_per_report": round(cpu / n * 1e6, 2),
        "decode_us": round(cpu_dec / n_dec * 1e6, 2),
        "record_us": round(cpu_rec / n_rec * 1e6, 2),
    }


def _filled_store(config: ReceiverBenchConfig, reports: list[bytes]) -> ReportStore:
    store = ReportStore(ttl_s=1e9, missing_hold_s=60.0)
    for b in reports:
        store.record(decode_report(pb.LoadReport.FromString(b)), 0.0)
    return store


def time_tick(config: ReceiverBenchConfig, reports: list[bytes]) -> dict[str, Any]:
    """ms per ``Controller.tick`` over every model, and per round of ``ReportStore.load``."""
    store = _filled_store(config, reports)
    spec = ScalingSpec(mode=Mode.CAPACITY, max_replicas=100)
    targets = [Target(f"model-{m}", "models", f"model-{m}", spec) for m in range(config.models)]
    clock = [0.0]
    controller = Controller(
        targets=targets,
        store=store,
        metrics=AutoscalerMetrics(),
        scaler=None,
        dry_run=True,
        clock=lambda: clock[0],
    )

    async def ticks() -> list[float]:
        out = []
        for _ in range(config.ticks):
            clock[0] += 0.5
            t0 = time.process_time()
            await controller.tick()
            out.append(time.process_time() - t0)
        return out

    tick_s = asyncio.run(ticks())
    loads = []
    for _ in range(config.ticks):
        t0 = time.process_time()
        for t in targets:
            store.load(t.model, clock[0])
        loads.append(time.process_time() - t0)
    tick_ms = statistics.median(tick_s) * 1000
    return {
        "models": config.models,
        "reports_kept": config.gateways * config.models,
        "tick_ms_median": round(tick_ms, 2),
        "tick_ms_max": round(max(tick_s) * 1000, 2),
        "store_load_ms_median": round(statistics.median(loads) * 1000, 2),
        "tick_share_of_500ms": round(tick_ms / 500, 4),
    }


def run_receiver_bench(config: ReceiverBenchConfig) -> dict[str, Any]:
    """All three measurements; prints a table, returns the JSON document."""
    from loadtest.benches.receiver_grpc import over_grpc

    started = time.time()
    reports = fleet_reports(config.gateways, config.models)
    local = in_process(config, reports)
    remote = over_grpc(config, reports)
    tick = time_tick(config, reports)
    offered = config.offered_per_s
    rows = [
        [
            "in-process (decode + record)",
            f"{local['reports_per_core_s']:,}",
            f"{local['us_per_report']:.2f}",
            f"{local['reports_per_core_s'] / offered:.2f}",
        ],
        ["  decode only", f"{1e6 / local['decode_us']:,.0f}", f"{local['decode_us']:.2f}", "-"],
        ["  record only", f"{1e6 / local['record_us']:,.0f}", f"{local['record_us']:.2f}", "-"],
        [
            "gRPC stream (server CPU)",
            f"{remote['reports_per_core_s']:,}",
            f"{remote['us_per_report']:.2f}",
            f"{remote['reports_per_core_s'] / offered:.2f}",
        ],
    ]
    notes = [
        f"offered by {config.gateways} gateways x {config.models} models at "
        f"{REPORTS_PER_S:g} reports/s: {offered:,.0f} reports/s; 'x offered': reports/s per "
        "core over that",
        f"gRPC: {remote['streams']} streams from {remote['streams']} client processes, "
        f"{remote['reports']:,} reports, {remote['reports_per_wall_s']:,} reports/s wall",
        f"tick over {tick['models']} models ({tick['reports_kept']:,} reports kept): "
        f"{tick['tick_ms_median']:.1f} ms median, {tick['tick_ms_max']:.1f} ms max; "
        f"ReportStore.load alone {tick['store_load_ms_median']:.1f} ms (tick period 500 ms)",
        machine_note(),
    ]
    print_table(
        "receiver-bench: LoadReports per core",
        ["path", "reports/s per core", "µs/report", "x offered"],
        rows,
        notes,
    )
    return {
        "benchmark": "receiver-bench",
        "started_unix": round(started, 3),
        "config": asdict(config),
        "offered_reports_per_s": offered,
        "note": machine_note(),
        "in_process": local,
        "grpc": remote,
        "tick": tick,
    }
